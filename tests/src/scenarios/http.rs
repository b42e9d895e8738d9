//! Plain HTTP/1.1 through the proxy: bodies in both framings, keep-alive with upstream reuse,
//! pipelining, and the error answers the proxy itself produces (502, 504). How upstream
//! connections are chosen and kept is in [`upstreams`](super::upstreams).

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{Proxy, ProxyUnderTest, Setup};
use crate::peers::http::{self, echo_server, pattern_body, MessageReader};
use crate::peers::raw::{closed_by_peer, read_head};
use crate::peers::{closed_port, Upstream};
use crate::rng::Rng;

fn reader(proxy: &Proxy) -> MessageReader<TcpStream> {
    MessageReader::new(proxy.connect())
}

/// A Content-Length request body reaches the upstream intact and a Content-Length response
/// body comes back.
pub fn content_length_bodies<P: ProxyUnderTest>() {
    let upstream = Upstream::spawn(echo_server);
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()));
    let body = Rng::new(0xb0d1).bytes(300_000);
    let mut client = reader(&proxy);
    client.send(&http::request("POST", "/upload", Some(&body)));
    let answer = client.expect_response();
    assert_eq!(answer.head.status, 200);
    assert_eq!(answer.head.header("x-framing"), Some("length"));
    assert_eq!(answer.framing, "length");
    assert!(answer.body == body, "the echoed body differs");
}

/// A chunked request body is re-framed and delivered intact; a chunked response is decoded
/// to the same bytes.
pub fn chunked_bodies<P: ProxyUnderTest>() {
    let upstream = Upstream::spawn(echo_server);
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()));
    let data = Rng::new(0xc4c4).bytes(100_000);
    let mut rng = Rng::new(7);
    let mut chunks = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let n = rng.range(1, 20_000).min(data.len() - at);
        chunks.push(&data[at..at + n]);
        at += n;
    }
    let mut client = reader(&proxy);
    client.send(&http::chunked_request("POST", "/chunks", &chunks));
    let answer = client.expect_response();
    assert_eq!(answer.head.status, 200);
    assert_eq!(
        answer.head.header("x-framing"),
        Some("chunked"),
        "the upstream gets a chunked body"
    );
    assert_eq!(answer.framing, "chunked");
    assert!(
        answer.body == data,
        "the chunked body differs after two re-framings"
    );
}

/// A 4 MiB response body streams through intact.
pub fn large_response<P: ProxyUnderTest>() {
    let upstream = Upstream::spawn(echo_server);
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()));
    let mut client = reader(&proxy);
    client.send(&http::request("GET", "/bytes/4194304", None));
    let answer = client.expect_response();
    assert_eq!(answer.head.status, 200);
    assert!(
        answer.body == pattern_body(4 * 1024 * 1024),
        "the 4 MiB body differs"
    );
}

/// Three requests in turn on one client connection are all answered, and the proxy reuses its
/// upstream connection for them (the pool).
pub fn keep_alive_and_upstream_reuse<P: ProxyUnderTest>() {
    let upstream = Upstream::spawn(echo_server);
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()));
    let mut client = reader(&proxy);
    for i in 1..=3 {
        let body = format!("request {i}");
        client.send(&http::request(
            "POST",
            &format!("/ka/{i}"),
            Some(body.as_bytes()),
        ));
        let answer = client.expect_response();
        assert_eq!(answer.head.status, 200);
        assert_eq!(
            answer.head.header("x-target"),
            Some(format!("/ka/{i}").as_str())
        );
        assert_eq!(answer.body, body.as_bytes());
    }
    assert_eq!(
        upstream.accepted(),
        1,
        "{}: the upstream connection was not reused",
        proxy.name()
    );
    // A second client connection gets the pooled upstream connection too.
    let mut second = reader(&proxy);
    second.send(&http::request("GET", "/second", None));
    assert_eq!(second.expect_response().head.status, 200);
    assert_eq!(
        upstream.accepted(),
        1,
        "{}: the pooled connection was not reused by the next client",
        proxy.name()
    );
}

/// Three requests written at once are answered in order.
pub fn pipelining<P: ProxyUnderTest>() {
    let upstream = Upstream::spawn(echo_server);
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()));
    let mut client = reader(&proxy);
    let mut batch = http::request("GET", "/p/1", None);
    batch.extend(http::request("POST", "/p/2", Some(b"second body")));
    batch.extend(http::chunked_request("POST", "/p/3", &[b"thi", b"rd"]));
    client.send(&batch);
    let expected: [(&str, &[u8]); 3] =
        [("/p/1", b""), ("/p/2", b"second body"), ("/p/3", b"third")];
    for (target, body) in expected {
        let answer = client.expect_response();
        assert_eq!(answer.head.status, 200);
        assert_eq!(
            answer.head.header("x-target"),
            Some(target),
            "responses out of order"
        );
        assert_eq!(answer.body, body);
    }
}

/// No upstream listening: 502.
pub fn upstream_down_is_502<P: ProxyUnderTest>() {
    let proxy = Proxy::start::<P>(&Setup::new(closed_port()));
    let mut client = reader(&proxy);
    client.send(&http::request("GET", "/", None));
    assert_eq!(client.expect_response().head.status, 502);
    proxy.assert_no_sessions("after a 502");
}

/// An upstream that accepts and never answers: 504 after the read timeout.
pub fn upstream_silent_is_504<P: ProxyUnderTest>() {
    const TIMEOUT: Duration = Duration::from_millis(500);
    let upstream = Upstream::spawn(|mut stream| {
        let _ = read_head(&mut stream);
        // Say nothing until the proxy gives up.
        let _ = closed_by_peer(&mut stream);
    });
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()).upstream_response(TIMEOUT));
    let mut client = reader(&proxy);
    let started = Instant::now();
    client.send(&http::request("GET", "/silence", None));
    assert_eq!(client.expect_response().head.status, 504);
    let waited = started.elapsed();
    assert!(
        waited >= TIMEOUT - Duration::from_millis(100) && waited < TIMEOUT + Duration::from_secs(3),
        "504 after {waited:?}, timeout {TIMEOUT:?}"
    );
    proxy.assert_no_sessions("after a 504");
}
