//! Which upstream connection a request gets: round-robin over a group, failover past a server
//! that is down, and the pool of idle connections — reused while alive, never handed out once
//! the upstream closed it, replaced without the client noticing when it dies under a request,
//! and bounded.
//!
//! The proxies run with the default pool (`PoolConfig::default()`: what the binary uses), and
//! everything is observed from the peers: which server answered, how many connections each
//! upstream accepted, which ones the proxy closed.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use switchyard_proto::PoolConfig;

use crate::harness::{wait_until, Proxy, ProxyUnderTest, Setup, PATIENCE};
use crate::peers::http::{self, echo_server, named_echo_server, Message, MessageReader};
use crate::peers::raw::closed_by_peer;
use crate::peers::{closed_port, Upstream};

fn client(proxy: &Proxy) -> MessageReader<TcpStream> {
    MessageReader::new(proxy.connect())
}

/// Sends a POST with `body` to `target` and returns the response.
fn post(client: &mut MessageReader<TcpStream>, target: &str, body: &[u8]) -> Message {
    client.send(&http::request("POST", target, Some(body)));
    client.expect_response()
}

/// Answers one request with `200` (keep-alive, nothing says otherwise) and returns the request.
fn answer_one(reader: &mut MessageReader<TcpStream>) -> Option<Message> {
    let request = reader.request().ok()??;
    let body = &request.body;
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nX-Target: {}\r\nContent-Length: {}\r\n\r\n",
        request.head.target,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    reader.get_mut().write_all(&out).ok()?;
    Some(request)
}

/// A group of two live servers: requests on one client connection alternate between them, and
/// each server's connection is pooled and reused on its next turn (the pool is per server).
pub fn round_robin_across_upstreams<P: ProxyUnderTest>() {
    let (a, b) = (
        Upstream::spawn(named_echo_server("a")),
        Upstream::spawn(named_echo_server("b")),
    );
    let proxy = Proxy::start::<P>(&Setup::group(vec![a.addr(), b.addr()]));
    let mut client = client(&proxy);
    let served: Vec<String> = (0..6)
        .map(|i| {
            let answer = post(&mut client, &format!("/rr/{i}"), b"round");
            assert_eq!(answer.head.status, 200, "request {i}");
            answer.head.header("x-server").unwrap_or("?").to_owned()
        })
        .collect();
    let alternates = served.windows(2).all(|pair| pair[0] != pair[1]);
    assert!(
        alternates,
        "{}: requests were not spread round-robin: {served:?}",
        proxy.name()
    );
    assert_eq!(
        (a.accepted(), b.accepted()),
        (1, 1),
        "{}: each server's connection is reused on its next turn",
        proxy.name()
    );
}

/// With a group whose first server is down, every request still succeeds (failover on connect
/// errors). The first request's order starts with the dead server, and so does every other one.
pub fn failover_to_next_upstream<P: ProxyUnderTest>() {
    let upstream = Upstream::spawn(echo_server);
    let proxy = Proxy::start::<P>(&Setup::group(vec![closed_port(), upstream.addr()]));
    for i in 0..4 {
        let mut client = client(&proxy);
        client.send(&http::request("GET", &format!("/f/{i}"), None));
        let answer = client.expect_response();
        assert_eq!(answer.head.status, 200, "request {i}");
        assert_eq!(
            answer.head.header("x-target"),
            Some(format!("/f/{i}").as_str())
        );
    }
}

/// A pooled connection that the upstream closed while it sat idle is not handed out: the next
/// request — a POST with a body, which the proxy may not send twice — goes on a new connection
/// and succeeds. (A proxy that reused the closed connection would have to answer 502.)
pub fn idle_connection_closed_by_upstream_is_not_reused<P: ProxyUnderTest>() {
    let (closed_tx, closed) = mpsc::channel();
    let closed_tx = Mutex::new(closed_tx);
    let upstream = Upstream::spawn(move |stream| {
        let closed = closed_tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut reader = MessageReader::new(stream);
        if answer_one(&mut reader).is_some() {
            // Long enough for the proxy to pool the connection, then close it while idle.
            thread::sleep(Duration::from_millis(200));
        }
        drop(reader);
        let _ = closed.send(());
    });
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()));
    let mut client = client(&proxy);
    let first = post(&mut client, "/first", b"one");
    assert_eq!(
        (first.head.status, first.body.as_slice()),
        (200, &b"one"[..])
    );
    closed
        .recv_timeout(PATIENCE)
        .expect("the upstream closes its idle connection");
    thread::sleep(Duration::from_millis(50));

    let second = post(&mut client, "/second", b"two");
    assert_eq!(
        second.head.status,
        200,
        "{}: a request on a pooled connection the upstream had closed",
        proxy.name()
    );
    assert_eq!(second.head.header("x-target"), Some("/second"));
    assert_eq!(second.body, b"two");
    assert_eq!(
        upstream.accepted(),
        2,
        "one new connection for the second request"
    );
}

/// A pooled connection that looks alive but that the upstream closes when the next request
/// arrives, unanswered: the proxy sends the (idempotent, bodiless) request again on a new
/// connection, and the client gets its answer as if nothing happened.
pub fn connection_lost_under_a_request_is_replaced<P: ProxyUnderTest>() {
    let (lost_tx, lost) = mpsc::channel();
    let lost_tx = Mutex::new(lost_tx);
    let connections = AtomicUsize::new(0);
    let upstream = Upstream::spawn(move |stream| {
        if connections.fetch_add(1, Ordering::SeqCst) > 0 {
            return echo_server(stream);
        }
        // The first connection answers one request, then drops the next one unanswered.
        let mut reader = MessageReader::new(stream);
        if answer_one(&mut reader).is_none() {
            return;
        }
        if let Ok(Some(dropped)) = reader.request() {
            let lost = lost_tx.lock().unwrap_or_else(|e| e.into_inner());
            let _ = lost.send(dropped.head.target);
        }
    });
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()));
    let mut client = client(&proxy);
    client.send(&http::request("GET", "/first", None));
    assert_eq!(client.expect_response().head.status, 200);

    client.send(&http::request("GET", "/second", None));
    let second = client.expect_response();
    assert_eq!(
        second.head.status,
        200,
        "{}: the request the pooled connection lost was not sent again",
        proxy.name()
    );
    assert_eq!(second.head.header("x-target"), Some("/second"));
    assert_eq!(
        lost.recv_timeout(PATIENCE).ok().as_deref(),
        Some("/second"),
        "{}: the second request did not go to the pooled connection first",
        proxy.name()
    );
    assert_eq!(upstream.accepted(), 2);
}

/// More connections come back to the pool at once than it keeps idle: the proxy closes the
/// extra ones and keeps (and later reuses) the rest.
pub fn idle_connections_beyond_the_pool_limit_are_closed<P: ProxyUnderTest>() {
    let keep = PoolConfig::default().max_idle_per_upstream;
    let extra = 4;
    let total = keep + extra;
    // Every connection holds its first answer until all of them have a request, so that all
    // of them are in use at once and come back to the pool together.
    let waiting = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let upstream = {
        let (waiting, closed) = (Arc::clone(&waiting), Arc::clone(&closed));
        Upstream::spawn(move |stream| {
            let mut reader = MessageReader::new(stream);
            let Ok(Some(first)) = reader.request() else {
                return;
            };
            waiting.fetch_add(1, Ordering::SeqCst);
            wait_until(PATIENCE, || waiting.load(Ordering::SeqCst) >= total);
            let answer = format!(
                "HTTP/1.1 200 OK\r\nX-Target: {}\r\nContent-Length: 0\r\n\r\n",
                first.head.target
            );
            if reader.get_mut().write_all(answer.as_bytes()).is_err() {
                return;
            }
            while answer_one(&mut reader).is_some() {}
            // `answer_one` ends at EOF (or a reset): the proxy closed this connection.
            if reader.buffered().is_empty() && closed_by_peer(reader.get_mut()) {
                closed.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()));
    let addr = proxy.addr();
    let clients: Vec<_> = (0..total)
        .map(|i| {
            thread::spawn(move || {
                let stream = TcpStream::connect(addr).expect("connect to the proxy");
                stream.set_read_timeout(Some(PATIENCE)).unwrap();
                let mut client = MessageReader::new(stream);
                client.send(&http::request("GET", &format!("/burst/{i}"), None));
                assert_eq!(client.expect_response().head.status, 200, "request {i}");
                client
            })
        })
        .collect();
    let clients: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(upstream.accepted(), total);

    let settled = wait_until(PATIENCE, || closed.load(Ordering::SeqCst) >= extra);
    thread::sleep(Duration::from_millis(200));
    assert!(
        settled && closed.load(Ordering::SeqCst) == extra,
        "{}: {total} connections came back to a pool of {keep}: {} closed, expected {extra}",
        proxy.name(),
        closed.load(Ordering::SeqCst)
    );
    // The ones kept are reused.
    let mut again = client(&proxy);
    again.send(&http::request("GET", "/after-the-burst", None));
    assert_eq!(again.expect_response().head.status, 200);
    assert_eq!(upstream.accepted(), total, "a pooled connection was reused");
    drop(clients);
}
