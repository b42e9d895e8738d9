//! The checklist at the end of the shared nginx behaviour spec, item by item: what we keep is
//! asserted as nginx does it; where we deliberately differ (see the `manual` module) the test
//! asserts our behaviour and says so.

mod support;

use std::time::Duration;

use support::*;
use switchyard_proto::{Config, Error, Event, HalfClose, Side, Timeout};

fn tunnel_with(config: Config) -> Harness {
    let mut h = Harness::new(config);
    h.client_sends(WS_REQUEST);
    h.upstream_sends(WS_101);
    assert!(h.tunnel_established());
    h.take_client();
    h.take_upstream();
    h
}

#[test]
fn item_3_after_a_tunnel_neither_connection_is_reused() {
    let mut h = tunnel_with(Config::default());
    h.client_fin();
    h.upstream_fin();
    assert!(h.closed().is_some());
    assert!(!h
        .events
        .iter()
        .any(|e| *e == Event::ReleaseUpstream { reusable: true }));
}

#[test]
fn item_6_the_101_status_line_copies_the_upstream_reason() {
    let mut h = Harness::default_config();
    h.client_sends(WS_REQUEST);
    h.upstream_sends(b"HTTP/1.1 101 Web Socket Protocol Handshake\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n");
    let to_client = h.take_client();
    assert!(to_client.starts_with(b"HTTP/1.1 101 Web Socket Protocol Handshake\r\n"));
    assert_eq!(field(&to_client, "upgrade").as_deref(), Some("WebSocket"));
}

#[test]
fn item_7_10_the_101_carries_one_generated_connection_and_no_framing() {
    let mut h = Harness::default_config();
    h.client_sends(WS_REQUEST);
    h.upstream_sends(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, Keep-Alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\nX-App: 1\r\n\r\n");
    let to_client = h.take_client();
    let fields = fields_of(&to_client);
    assert_eq!(fields.iter().filter(|(n, _)| n == "connection").count(), 1);
    assert_eq!(field(&to_client, "connection").as_deref(), Some("upgrade"));
    for gone in ["keep-alive", "content-length", "transfer-encoding"] {
        assert_eq!(field(&to_client, gone), None, "{gone}");
    }
    assert_eq!(field(&to_client, "x-app").as_deref(), Some("1"));
}

#[test]
fn item_9_differs_upstream_date_and_server_pass_through() {
    let mut h = Harness::default_config();
    h.client_sends(WS_REQUEST);
    h.upstream_sends(b"HTTP/1.1 101 Switching Protocols\r\nServer: app/1\r\nDate: Sun, 22 Nov 2026 01:00:00 GMT\r\nUpgrade: websocket\r\n\r\n");
    let to_client = h.take_client();
    assert_eq!(field(&to_client, "server").as_deref(), Some("app/1"));
    assert!(field(&to_client, "date").is_some());
}

#[test]
fn item_18_nginx_mode_closes_on_client_eof_after_delivering_its_bytes() {
    let mut config = Config::default();
    config.half_close = HalfClose::CloseBoth;
    let mut h = tunnel_with(config);
    h.upstream_stalled = true;
    h.client_sends(b"last words");
    h.client_fin();
    assert!(h.closed().is_none(), "not before the bytes are written");
    h.upstream_stalled = false;
    h.pump();
    assert_eq!(h.take_upstream(), b"last words");
    assert!(h.closed().is_some());
}

#[test]
fn item_19_differs_both_eofs_still_deliver_every_pending_byte() {
    let mut h = tunnel_with(Config::default());
    h.client_stalled = true;
    h.upstream_stalled = true;
    h.client_sends(b"to upstream");
    h.upstream_sends(b"to client");
    h.client_fin();
    h.upstream_fin();
    assert!(h.closed().is_none());
    h.client_stalled = false;
    h.upstream_stalled = false;
    h.pump();
    assert_eq!(h.take_upstream(), b"to upstream");
    assert_eq!(h.take_client(), b"to client");
    assert!(h.closed().is_some());
}

#[test]
fn item_20_an_io_error_in_the_tunnel_closes_both() {
    let mut h = tunnel_with(Config::default());
    h.session.handle_error(Side::Client, h.now);
    h.pump();
    assert!(h.closed().is_some());
}

#[test]
fn item_21_differs_a_client_fin_before_the_101_is_kept_and_propagated() {
    let mut h = Harness::default_config();
    let mut first = WS_REQUEST.to_vec();
    first.extend_from_slice(MASKED_FRAME);
    h.client_sends(&first);
    h.client_fin();
    assert!(h.closed().is_none(), "nginx would abort with 499 here");
    h.take_upstream();
    h.upstream_sends(WS_101);
    assert!(h.tunnel_established());
    assert_eq!(h.take_upstream(), MASKED_FRAME, "the held frame first");
    assert_eq!(h.shutdowns(), vec![Side::Upstream], "then the client's FIN");
    h.upstream_sends(b"reply");
    assert!(h.take_client().ends_with(b"reply"));
}

#[test]
fn item_22_a_refusal_lingers_then_closes() {
    let mut h = Harness::default_config();
    h.client_sends(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(status_of(&h.take_client()), Some(400));
    assert_eq!(
        h.shutdowns(),
        vec![Side::Client],
        "write side shut after the response"
    );
    h.client_sends(b"more junk is read and discarded");
    assert!(h.take_upstream().is_empty());
    assert!(h.closed().is_none());
    h.advance(Duration::from_secs(5));
    assert!(h.closed().is_some(), "lingering ends after 5 s");
}

#[test]
fn item_24_an_upstream_that_stops_reading_is_given_up() {
    let mut h = tunnel_with(Config::default());
    h.upstream_stalled = true;
    h.client_sends(&[1u8; 1000]);
    h.advance(Duration::from_secs(60));
    assert_eq!(
        h.closed().and_then(|s| s.error.clone()),
        Some(Error::Timeout(Timeout::UpstreamSendStall))
    );
}

#[test]
fn item_24_an_upstream_that_does_not_read_the_request_is_a_504() {
    let mut h = Harness::default_config();
    h.upstream_stalled = true;
    h.client_sends(b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
    h.advance(Duration::from_secs(60));
    assert_eq!(status_of(&h.take_client()), Some(504));
}

#[test]
fn item_28_the_summary_reports_101_and_the_tunnel_counters() {
    let mut h = tunnel_with(Config::default());
    h.client_sends(b"12345");
    h.upstream_sends(b"123");
    h.client_fin();
    h.upstream_fin();
    let summary = h.closed().unwrap();
    assert_eq!(summary.status, Some(101));
    assert!(summary.tunnelled);
    assert_eq!(summary.counters.tunnel_to_upstream, 5);
    assert_eq!(summary.counters.tunnel_to_client, 3);
}

#[test]
fn item_32_33_34_end_to_end_fields_and_the_target_pass_as_received() {
    let mut h = Harness::default_config();
    h.client_sends(b"GET /a%20b/../c?x=1&y=%2F HTTP/1.1\r\nHost: h\r\nx-lower: v\r\nX_Under: dropped\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n");
    let up = h.take_upstream();
    assert!(up.starts_with(b"GET /a%20b/../c?x=1&y=%2F HTTP/1.1\r\nHost: h\r\nx-lower: v\r\nCookie: a=1\r\nCookie: b=2\r\n"), "{}", String::from_utf8_lossy(&up));
    assert_eq!(
        field(&up, "x_under"),
        None,
        "underscores are dropped like nginx"
    );
    assert_eq!(
        field(&up, "connection"),
        None,
        "no Connection field by default"
    );
}

#[test]
fn item_43_a_body_over_the_limit_is_413_before_it_is_read() {
    let mut config = Config::default();
    config.limits.max_body_size = Some(10);
    let mut h = Harness::new(config.clone());
    h.client_sends(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n");
    assert_eq!(status_of(&h.take_client()), Some(413));
    assert_eq!(h.connects, 0);

    let mut h = Harness::new(config);
    h.client_sends(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n");
    assert_eq!(status_of(&h.take_client()), Some(413));
}

#[test]
fn item_44_trace_is_refused() {
    let mut h = Harness::default_config();
    h.client_sends(b"TRACE / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(status_of(&h.take_client()), Some(405));
}
