//! Scenarios of the upgrade path: request → 101 → tunnel, driven with a simulated clock.
//! Category 1F of the shared hostile-input cases, and the nginx checklist items we keep.

mod support;

use support::*;
use switchyard_proto::{Config, Event, HalfClose, ResponseError, Side};

fn upgraded() -> Harness {
    let mut h = Harness::default_config();
    h.client_sends(WS_REQUEST);
    h.upstream_sends(WS_101);
    assert!(h.tunnel_established(), "events: {:?}", h.events);
    h.take_client();
    h.take_upstream();
    h
}

#[test]
fn websocket_request_is_rewritten_with_upgrade_headers_automatically() {
    let mut h = Harness::default_config();
    h.client_sends(WS_REQUEST);
    assert_eq!(h.connects, 1);
    let up = h.take_upstream();
    assert!(
        up.starts_with(b"GET /chat HTTP/1.1\r\nHost: example.com\r\n"),
        "{}",
        String::from_utf8_lossy(&up)
    );
    assert_eq!(field(&up, "upgrade").as_deref(), Some("websocket"));
    assert_eq!(field(&up, "connection").as_deref(), Some("upgrade"));
    assert_eq!(
        field(&up, "sec-websocket-key").as_deref(),
        Some("dGhlIHNhbXBsZSBub25jZQ==")
    );
    assert_eq!(field(&up, "sec-websocket-version").as_deref(), Some("13"));
    assert_eq!(
        field(&up, "sec-websocket-protocol").as_deref(),
        Some("chat, superchat")
    );
    assert_eq!(
        field(&up, "sec-websocket-extensions").as_deref(),
        Some("permessage-deflate; client_max_window_bits")
    );
    assert_eq!(field(&up, "x-forwarded-for").as_deref(), Some("192.0.2.7"));
    assert_eq!(h.session.phase_name(), "awaiting-response-head");
}

#[test]
fn baseline_websocket_tunnel_relays_frames_both_ways_unmodified() {
    let mut h = Harness::default_config();
    h.client_sends(WS_REQUEST);
    h.take_upstream();
    h.upstream_sends(WS_101);
    let to_client = h.take_client();
    assert!(to_client.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    assert_eq!(field(&to_client, "connection").as_deref(), Some("upgrade"));
    assert_eq!(field(&to_client, "upgrade").as_deref(), Some("websocket"));
    assert_eq!(
        field(&to_client, "sec-websocket-accept").as_deref(),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(
        field(&to_client, "sec-websocket-protocol").as_deref(),
        Some("chat")
    );
    assert_eq!(
        field(&to_client, "sec-websocket-extensions").as_deref(),
        Some("permessage-deflate")
    );
    assert!(h.session.is_tunnel());
    h.client_sends(MASKED_FRAME);
    assert_eq!(h.take_upstream(), MASKED_FRAME);
    h.upstream_sends(b"\x81\x05Hello");
    assert_eq!(h.take_client(), b"\x81\x05Hello");
    let c = h.session.counters();
    assert_eq!(c.tunnel_to_upstream, MASKED_FRAME.len() as u64);
    assert_eq!(c.tunnel_to_client, 7);
}

#[test]
fn client_bytes_sent_with_the_request_are_held_until_the_101() {
    let mut h = Harness::default_config();
    let mut first = WS_REQUEST.to_vec();
    first.extend_from_slice(MASKED_FRAME);
    h.client_sends(&first);
    let up = h.take_upstream();
    assert_eq!(
        split_head(&up).1,
        b"",
        "early frame must not reach the upstream before the 101"
    );
    h.upstream_sends(WS_101);
    assert_eq!(h.take_upstream(), MASKED_FRAME);
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::TunnelEstablished {
            held_client_bytes: 11,
            early_upstream_bytes: 0,
            ..
        }
    )));
}

#[test]
fn upstream_bytes_in_the_same_read_as_the_101_follow_its_head() {
    let mut h = Harness::default_config();
    h.client_sends(WS_REQUEST);
    let mut answer = WS_101.to_vec();
    answer.extend_from_slice(b"\x81\x05Hello");
    h.upstream_sends(&answer);
    let to_client = h.take_client();
    let (head, rest) = split_head(&to_client);
    assert!(head.starts_with(b"HTTP/1.1 101"));
    assert_eq!(rest, b"\x81\x05Hello");
}

#[test]
fn a_200_answer_to_an_upgrade_is_an_ordinary_response_and_never_a_tunnel() {
    let mut h = Harness::default_config();
    let mut first = WS_REQUEST.to_vec();
    first.extend_from_slice(b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n");
    h.client_sends(&first);
    h.take_upstream();
    h.upstream_sends(b"HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 2\r\n\r\nok");
    assert!(!h.tunnel_established());
    let to_client = h.take_client();
    assert_eq!(status_of(&to_client), Some(200));
    assert_eq!(split_head(&to_client).1, b"ok");
    assert_eq!(field(&to_client, "upgrade"), None);
    // The held bytes are the next pipelined request: validated and sent on their own.
    let up = h.take_upstream();
    assert!(
        up.starts_with(b"GET /smuggled HTTP/1.1\r\nHost: a\r\n"),
        "{}",
        String::from_utf8_lossy(&up)
    );
    assert_eq!(h.connects, 2);
}

#[test]
fn a_101_to_a_request_without_an_accepted_offer_is_a_502() {
    for request in [
        &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: TLS/1.0\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"POST /api HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 3\r\n\r\nabc",
    ] {
        let mut h = Harness::default_config();
        h.client_sends(request);
        let up = h.take_upstream();
        assert_eq!(field(&up, "upgrade"), None, "{}", String::from_utf8_lossy(request));
        h.upstream_sends(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
        h.client_sends(b"GET /flag HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert!(!h.tunnel_established());
        assert_eq!(status_of(&h.take_client()), Some(502), "{}", String::from_utf8_lossy(request));
        assert!(h.take_upstream().is_empty());
        let summary = h.closed().cloned().or_else(|| {
            h.client_fin();
            h.closed().cloned()
        });
        assert_eq!(
            summary.and_then(|s| s.error),
            Some(switchyard_proto::Error::Response(ResponseError::UnsolicitedSwitch))
        );
    }
}

#[test]
fn a_101_naming_another_protocol_is_a_502() {
    for answer in [
        &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"[..],
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket, foo\r\n\r\n",
        b"HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    ] {
        let mut h = Harness::default_config();
        h.client_sends(WS_REQUEST);
        h.upstream_sends(answer);
        assert!(
            !h.tunnel_established(),
            "{}",
            String::from_utf8_lossy(answer)
        );
        assert_eq!(status_of(&h.take_client()), Some(502));
    }
}

#[test]
fn interim_responses_before_the_101_are_relayed_and_the_wait_goes_on() {
    let mut h = Harness::default_config();
    h.client_sends(WS_REQUEST);
    let mut answer = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n".to_vec();
    answer.extend_from_slice(WS_101);
    h.upstream_sends(&answer);
    let to_client = h.take_client();
    let (first, rest) = split_head(&to_client);
    assert_eq!(status_of(first), Some(103));
    assert_eq!(
        field(first, "link").as_deref(),
        Some("</s.css>; rel=preload")
    );
    assert_eq!(status_of(rest), Some(101));
    assert!(h.tunnel_established());
}

#[test]
fn an_upgrade_request_with_a_body_sends_the_body_first() {
    let mut h = Harness::default_config();
    h.client_sends(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhelloEARLY");
    let up = h.take_upstream();
    let (head, body) = split_head(&up);
    assert_eq!(field(head, "content-length").as_deref(), Some("5"));
    assert_eq!(body, b"hello");
    h.upstream_sends(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
    assert!(h.tunnel_established());
    assert_eq!(h.take_upstream(), b"EARLY");
}

#[test]
fn a_101_before_the_request_body_ends_is_refused() {
    let mut h = Harness::default_config();
    h.client_sends(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 1024\r\n\r\n0123456789");
    h.upstream_sends(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
    assert!(!h.tunnel_established());
    assert_eq!(status_of(&h.take_client()), Some(502));
}

#[test]
fn client_fin_is_propagated_as_a_shutdown_and_the_other_direction_keeps_flowing() {
    let mut h = upgraded();
    h.client_sends(b"abc");
    h.client_fin();
    assert_eq!(h.take_upstream(), b"abc");
    assert_eq!(h.shutdowns(), vec![Side::Upstream]);
    assert!(h.closed().is_none());
    h.upstream_sends(b"late answer");
    assert_eq!(h.take_client(), b"late answer");
    h.upstream_fin();
    assert_eq!(h.shutdowns(), vec![Side::Upstream]);
    let summary = h.closed().expect("both directions ended");
    assert!(summary.tunnelled);
    assert_eq!(summary.status, Some(101));
    assert_eq!(summary.error, None);
}

#[test]
fn upstream_fin_is_delivered_after_all_buffered_bytes() {
    let mut h = upgraded();
    h.client_stalled = true;
    let big = vec![7u8; 40_000];
    h.upstream_sends(&big);
    h.upstream_fin();
    assert!(
        h.shutdowns().is_empty(),
        "no shutdown before the bytes are written"
    );
    h.client_stalled = false;
    h.pump();
    assert_eq!(h.take_client(), big);
    assert_eq!(h.shutdowns(), vec![Side::Client]);
}

#[test]
fn nginx_mode_closes_both_on_the_first_eof_after_draining() {
    let mut config = Config::default();
    config.half_close = HalfClose::CloseBoth;
    let mut h = Harness::new(config);
    h.client_sends(WS_REQUEST);
    h.upstream_sends(WS_101);
    h.take_client();
    h.upstream_sends(b"bye");
    h.upstream_fin();
    assert_eq!(h.take_client(), b"bye");
    assert!(h.closed().is_some());
    assert!(h.shutdowns().is_empty());
}

#[test]
fn a_full_direction_closes_its_read_window_until_drained() {
    let mut h = upgraded();
    h.upstream_stalled = true;
    let flood = vec![1u8; 100_000];
    h.client_sends(&flood);
    assert_eq!(h.session.read_window(Side::Client), 0);
    assert!(h.session.pending(Side::Upstream) <= 16 * 1024);
    // The other direction is independent.
    assert!(h.session.read_window(Side::Upstream) > 0);
    h.upstream_stalled = false;
    h.pump();
    assert_eq!(h.take_upstream(), flood);
}

#[test]
fn the_tunnel_read_window_starts_small_and_grows_with_full_reads() {
    let mut h = upgraded();
    assert_eq!(
        h.session.read_window(Side::Client),
        2048,
        "small messages, small buffers"
    );
    let mut expected = 2048;
    for _ in 0..5 {
        let w = h.session.read_window(Side::Client);
        assert_eq!(w, expected);
        assert_eq!(h.session.read_buf(Side::Client).len(), w);
        h.session.handle_read(Side::Client, w, h.now);
        h.pump();
        expected = (expected * 2).min(16 * 1024);
    }
    assert_eq!(
        h.session.read_window(Side::Client),
        16 * 1024,
        "capped at the buffer size"
    );
    h.advance(std::time::Duration::from_secs(2));
    assert_eq!(
        h.session.read_window(Side::Client),
        2048,
        "back to small once idle"
    );
}

#[test]
fn an_idle_tunnel_gives_its_buffers_back_and_a_busy_one_keeps_them() {
    let mut h = upgraded();
    // A full read keeps its receive buffer: more is probably coming.
    let window = h.session.read_window(Side::Client);
    h.session.read_buf(Side::Client).fill(5);
    h.session.handle_read(Side::Client, window, h.now);
    assert!(
        h.session.buffer_memory() > 0,
        "a busy direction keeps its buffer"
    );
    // A short read that leaves nothing waiting frees it at once, even before the written
    // bytes are gone (they keep their own part of the allocation alive).
    h.session.read_buf(Side::Client)[..7].fill(5);
    h.session.handle_read(Side::Client, 7, h.now);
    assert_eq!(
        h.session.buffer_memory(),
        window + 7,
        "only the queued output is left"
    );
    h.pump();
    assert_eq!(h.session.buffer_memory(), 0, "paused: no data buffer held");
    assert_eq!(h.take_upstream(), vec![5u8; window + 7]);
    // Bounded by the head buffer plus one window per direction, however much flows.
    let bound = 2 * (32 * 1024 + 1) + 2 * 16 * 1024;
    for _ in 0..50 {
        h.client_sends(&[5u8; 4000]);
        h.upstream_sends(&[6u8; 4000]);
        assert!(
            h.session.buffer_memory() <= bound,
            "{}",
            h.session.buffer_memory()
        );
    }
    h.advance(std::time::Duration::from_millis(1500));
    assert_eq!(h.session.buffer_memory(), 0, "idle: no data buffer held");
    h.client_sends(b"again");
    assert_eq!(h.take_upstream().len(), 4000 * 50 + 5);
    assert_eq!(h.take_client().len(), 4000 * 50);
}

#[test]
fn a_read_that_finds_nothing_gives_the_lent_buffer_back() {
    let mut h = upgraded();
    assert!(!h.session.read_buf(Side::Upstream).is_empty());
    assert!(h.session.buffer_memory() > 0, "lent");
    h.session.handle_read(Side::Upstream, 0, h.now);
    assert_eq!(h.session.buffer_memory(), 0, "WouldBlock: nothing kept");
}

#[test]
fn a_driver_shutdown_ends_the_session_with_its_summary() {
    let mut h = upgraded();
    h.client_sends(b"abc");
    let summary = h.session.handle_shutdown();
    assert!(h.session.is_closed());
    assert!(summary.tunnelled);
    assert_eq!(summary.status, Some(101));
    assert_eq!(summary.counters.tunnel_to_upstream, 3);
    assert_eq!(h.session.poll_event(), None, "no event follows");
}
