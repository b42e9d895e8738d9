//! Refused requests and failed upstreams: the client gets a complete response with the right
//! status and `Connection: close`, and nothing reaches the upstream.

mod support;

use std::time::Duration;

use support::*;
use switchyard_proto::{Config, Error, Side, Timeout};

/// Sends `request`; asserts the status the client gets and that no upstream was involved.
fn refused(request: &[u8], status: u16) {
    for chunk in [usize::MAX, 1, 7] {
        let mut h = Harness::default_config();
        h.read_chunk = chunk;
        h.client_sends(request);
        h.client_fin();
        let to_client = h.take_client();
        assert_eq!(
            status_of(&to_client),
            Some(status),
            "{:?} (reads of {chunk}) got {}",
            String::from_utf8_lossy(request),
            String::from_utf8_lossy(&to_client)
        );
        assert_eq!(field(&to_client, "connection").as_deref(), Some("close"));
        let (head, body) = split_head(&to_client);
        let length: usize = field(head, "content-length").unwrap().parse().unwrap();
        assert_eq!(body.len(), length, "a complete response");
        assert_eq!(
            h.connects, 0,
            "no upstream connection for a refused request"
        );
        assert!(h.upstream_received.is_empty());
        assert!(h.closed().is_some());
    }
}

#[test]
fn framing_conflicts_are_refused_before_the_upstream_sees_anything() {
    refused(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", 400);
    refused(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        400,
    );
    refused(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
        400,
    );
    refused(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
        400,
    );
    refused(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n",
        400,
    );
    refused(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    );
    refused(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        400,
    );
    refused(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    );
    refused(b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello", 400);
}

#[test]
fn malformed_heads_are_refused() {
    refused(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", 400);
    refused(b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400);
    refused(
        b"GET / HTTP/1.1\r\nHost: a\r\nTest: test\x00bytes\r\n\r\n",
        400,
    );
    refused(
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n",
        400,
    );
    refused(
        b"GET / HTTP/1.1\r\nHost: a\r\n\rZGET /evil HTTP/1.1\r\nHost: a\r\n\r\n",
        400,
    );
    refused(b"GET / HTTP/1.1\r\n\r\n", 400);
    refused(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    refused(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
    refused(b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    refused(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    refused(b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

#[test]
fn versions_lengths_and_methods_get_their_own_status() {
    refused(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
    let mut long = b"GET /".to_vec();
    long.extend(std::iter::repeat(b'a').take(20_000));
    long.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
    refused(&long, 414);
    let mut big = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..200 {
        big.extend_from_slice(format!("X-{i}: {}\r\n", "v".repeat(300)).as_bytes());
    }
    big.extend_from_slice(b"\r\n");
    refused(&big, 431);
    let mut many = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..101 {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    refused(&many, 431);
    refused(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405);
}

#[test]
fn an_incomplete_head_gets_408_at_the_header_deadline() {
    let mut h = Harness::default_config();
    h.client_sends(b"GET / HTTP/1.1\r\nHost: a\r\n");
    // Slow bytes do not push the deadline back (slowloris).
    for _ in 0..5 {
        h.advance(Duration::from_secs(10));
        h.client_sends(b"X-a: b\r\n");
    }
    assert!(h.take_client().is_empty());
    h.advance(Duration::from_secs(10));
    assert_eq!(status_of(&h.take_client()), Some(408));
    assert_eq!(h.connects, 0);
}

#[test]
fn connect_failure_is_a_502_and_connect_timeout_a_504() {
    let mut h = Harness::default_config();
    h.auto_connect = false;
    h.client_sends(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    h.session.handle_connect_failed(h.now);
    h.pump();
    assert_eq!(status_of(&h.take_client()), Some(502));

    let mut h = Harness::default_config();
    h.auto_connect = false;
    h.client_sends(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    h.advance(Duration::from_secs(59));
    assert!(h.take_client().is_empty());
    h.advance(Duration::from_secs(1));
    assert_eq!(status_of(&h.take_client()), Some(504));
}

#[test]
fn a_silent_upstream_is_a_504_and_a_closing_one_a_502() {
    let mut h = Harness::default_config();
    h.client_sends(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    h.advance(Duration::from_secs(60));
    assert_eq!(status_of(&h.take_client()), Some(504));
    h.client_fin();
    assert_eq!(
        h.closed().and_then(|s| s.error.clone()),
        Some(Error::Timeout(Timeout::UpstreamResponse))
    );

    let mut h = Harness::default_config();
    h.client_sends(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    h.upstream_sends(b"HTTP/1.1 200 OK\r\nContent-");
    h.upstream_fin();
    assert_eq!(status_of(&h.take_client()), Some(502));
}

#[test]
fn invalid_upstream_heads_are_a_502() {
    for answer in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ] {
        let mut h = Harness::default_config();
        h.client_sends(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        h.upstream_sends(answer);
        assert_eq!(
            status_of(&h.take_client()),
            Some(502),
            "{}",
            String::from_utf8_lossy(answer)
        );
    }
}

#[test]
fn an_upstream_closing_mid_body_closes_the_client_without_a_complete_response() {
    let mut h = Harness::default_config();
    h.client_sends(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    h.upstream_sends(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345");
    h.upstream_fin();
    let to_client = h.take_client();
    assert_eq!(split_head(&to_client).1, b"12345");
    let summary = h.closed().expect("closed at once");
    assert!(summary.error.is_some());
}

#[test]
fn a_client_that_never_reads_is_given_up_after_the_send_timeout() {
    let mut h = Harness::default_config();
    h.client_sends(WS_REQUEST);
    h.upstream_sends(WS_101);
    h.client_stalled = true;
    h.upstream_sends(&[0u8; 1000]);
    h.advance(Duration::from_secs(61));
    assert_eq!(
        h.closed().and_then(|s| s.error.clone()),
        Some(Error::Timeout(Timeout::SendStall))
    );
}

#[test]
fn an_idle_tunnel_lives_an_hour_then_closes() {
    let mut h = Harness::default_config();
    h.client_sends(WS_REQUEST);
    h.upstream_sends(WS_101);
    h.advance(Duration::from_secs(59 * 60));
    assert!(h.closed().is_none());
    h.client_sends(b"ping");
    h.advance(Duration::from_secs(59 * 60));
    assert!(h.closed().is_none(), "traffic resets the idle deadline");
    h.advance(Duration::from_secs(60));
    assert_eq!(
        h.closed().and_then(|s| s.error.clone()),
        Some(Error::Timeout(Timeout::TunnelIdle))
    );
}

#[test]
fn a_half_closed_tunnel_times_out_separately() {
    let mut config = Config::default();
    config.timeouts.half_closed = Duration::from_secs(30);
    let mut h = Harness::new(config);
    h.client_sends(WS_REQUEST);
    h.upstream_sends(WS_101);
    h.client_fin();
    assert_eq!(h.shutdowns(), vec![Side::Upstream]);
    h.advance(Duration::from_secs(31));
    assert_eq!(
        h.closed().and_then(|s| s.error.clone()),
        Some(Error::Timeout(Timeout::HalfClosed))
    );
}

#[test]
fn poll_timeout_reports_the_earliest_deadline() {
    let h = Harness::default_config();
    let next = h.session.poll_timeout().expect("header deadline armed");
    assert_eq!(next, h.now + Duration::from_secs(60));
}

#[test]
fn the_proxys_own_answer_to_head_has_no_body() {
    let mut h = Harness::default_config();
    h.auto_connect = false;
    h.client_sends(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    h.session.handle_connect_failed(h.now);
    h.pump();
    let to_client = h.take_client();
    assert_eq!(status_of(&to_client), Some(502));
    assert_eq!(field(&to_client, "content-length").as_deref(), Some("16"));
    assert_eq!(split_head(&to_client).1, b"", "no body after the head");
}

#[test]
fn a_flood_of_interim_responses_waits_for_the_client() {
    let mut config = Config::default();
    config.limits.buffer_size = 256;
    let mut h = Harness::new(config);
    h.client_stalled = true;
    h.client_sends(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    h.upstream_sends(&b"HTTP/1.1 100 Continue\r\n\r\n".repeat(2000));
    assert!(
        h.session.pending(Side::Client) <= 256 + 25,
        "{}",
        h.session.pending(Side::Client)
    );
    h.client_stalled = false;
    h.upstream_sends(b"HTTP/1.1 204 No Content\r\n\r\n");
    let to_client = h.take_client();
    assert_eq!(
        to_client
            .windows(12)
            .filter(|w| w == b"HTTP/1.1 100")
            .count(),
        2000
    );
    assert!(to_client.ends_with(b"\r\n\r\n"));
}
