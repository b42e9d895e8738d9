//! Keep-alive, pipelining, upstream reuse and retries: many exchanges on one client connection.

mod support;

use std::time::Duration;

use support::*;
use switchyard_proto::{Config, ConnectReason, Event};

const GET: &[u8] = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

fn releases(h: &Harness) -> Vec<bool> {
    h.events
        .iter()
        .filter_map(|e| match e {
            Event::ReleaseUpstream { reusable } => Some(*reusable),
            _ => None,
        })
        .collect()
}

/// Splits a byte stream into the heads and bodies of consecutive Content-Length messages.
fn messages(mut bytes: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (head, rest) = split_head(bytes);
        let n: usize = field(head, "content-length").map_or(0, |v| v.parse().unwrap());
        out.push((head.to_vec(), rest[..n].to_vec()));
        bytes = &rest[n..];
    }
    out
}

#[test]
fn several_requests_share_one_client_connection() {
    let mut h = Harness::default_config();
    for i in 0..3 {
        h.client_sends(format!("GET /{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
        let up = h.take_upstream();
        assert!(up.starts_with(format!("GET /{i} HTTP/1.1\r\n").as_bytes()));
        h.upstream_sends(format!("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n{i}").as_bytes());
        let to_client = h.take_client();
        assert_eq!(split_head(&to_client).1, format!("{i}").as_bytes());
        assert_eq!(field(&to_client, "connection"), None);
    }
    assert!(h.closed().is_none());
    assert_eq!(
        releases(&h),
        vec![true, true, true],
        "clean responses leave the upstream reusable"
    );
    assert_eq!(h.connects, 3);
}

#[test]
fn a_pipelined_burst_is_answered_strictly_in_order() {
    let mut h = Harness::default_config();
    let mut burst = Vec::new();
    for i in 0..20 {
        burst.extend_from_slice(format!("GET /{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
    }
    h.client_sends(&burst);
    for i in 0..20 {
        let up = h.take_upstream();
        assert_eq!(
            up,
            format!("GET /{i} HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n\r\n").as_bytes(),
            "one request at a time, in order"
        );
        h.upstream_sends(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{i}",
                i.to_string().len()
            )
            .as_bytes(),
        );
    }
    let answers = messages(&h.take_client());
    assert_eq!(answers.len(), 20);
    for (i, (_, body)) in answers.iter().enumerate() {
        assert_eq!(body, i.to_string().as_bytes());
    }
}

#[test]
fn a_pipelining_flood_is_read_only_as_fast_as_it_is_answered() {
    let mut config = Config::default();
    config.limits.buffer_size = 1024;
    config.max_requests_per_connection = 5000;
    let mut h = Harness::new(config);
    let flood: Vec<u8> = GET.repeat(2000);
    h.client_sends(&flood);
    // Far less than the flood (54 KB) was taken in: the read window closed at one head's worth
    // (32 KiB) plus the buffer.
    let taken = h.session.counters().client_received;
    assert!(taken <= 32 * 1024 + 1 + 1024, "{taken}");
    h.take_upstream();
    for _ in 0..2000 {
        h.upstream_sends(OK);
        h.take_upstream();
    }
    assert_eq!(messages(&h.take_client()).len(), 2000);
}

#[test]
fn connection_close_from_the_client_ends_after_the_response() {
    let mut h = Harness::default_config();
    h.client_sends(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: h\r\n\r\n");
    h.upstream_sends(OK);
    let to_client = h.take_client();
    assert_eq!(field(&to_client, "connection").as_deref(), Some("close"));
    assert_eq!(split_head(&to_client).1, b"ok");
    assert!(!h.take_upstream().windows(6).any(|w| w == b"/never"));
    h.client_fin();
    assert!(h.closed().is_some());
    assert_eq!(h.connects, 1);
}

#[test]
fn connection_close_from_the_upstream_is_not_pooled_but_the_client_stays() {
    let mut h = Harness::default_config();
    h.client_sends(GET);
    h.upstream_sends(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    assert_eq!(releases(&h), vec![false]);
    let to_client = h.take_client();
    assert_eq!(field(&to_client, "connection"), None);
    h.client_sends(GET);
    assert_eq!(h.connects, 2);
}

#[test]
fn close_delimited_and_leftover_bytes_make_the_upstream_unreusable() {
    let mut h = Harness::default_config();
    h.client_sends(GET);
    h.upstream_sends(b"HTTP/1.1 200 OK\r\n\r\nbody");
    h.upstream_fin();
    assert_eq!(releases(&h), vec![false]);
    assert!(
        h.closed().is_none(),
        "chunked to the client, so it stays alive"
    );

    let mut h = Harness::default_config();
    h.client_sends(GET);
    h.upstream_sends(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA");
    assert_eq!(
        releases(&h),
        vec![false],
        "bytes after the response: never reused"
    );
}

#[test]
fn http10_clients_get_keep_alive_only_when_they_ask() {
    let mut h = Harness::default_config();
    h.client_sends(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    h.upstream_sends(OK);
    let to_client = h.take_client();
    assert_eq!(
        field(&to_client, "connection").as_deref(),
        Some("keep-alive")
    );
    h.client_sends(b"GET / HTTP/1.0\r\n\r\n");
    h.upstream_sends(OK);
    let to_client = h.take_client();
    assert_eq!(field(&to_client, "connection").as_deref(), Some("close"));

    // A chunked answer is de-chunked for HTTP/1.0 and delimited by the close.
    let mut h = Harness::default_config();
    h.client_sends(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    h.upstream_sends(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
    let to_client = h.take_client();
    assert_eq!(field(&to_client, "connection").as_deref(), Some("close"));
    assert_eq!(field(&to_client, "transfer-encoding"), None);
    assert_eq!(split_head(&to_client).1, b"ok");
}

#[test]
fn the_last_allowed_request_gets_connection_close() {
    let mut config = Config::default();
    config.max_requests_per_connection = 3;
    let mut h = Harness::new(config);
    for i in 0..3 {
        h.client_sends(GET);
        h.upstream_sends(OK);
        let to_client = h.take_client();
        let expected = if i == 2 { Some("close") } else { None };
        assert_eq!(field(&to_client, "connection").as_deref(), expected);
    }
}

#[test]
fn an_idle_keep_alive_connection_closes_quietly_after_75_seconds() {
    let mut h = Harness::default_config();
    h.client_sends(GET);
    h.upstream_sends(OK);
    h.take_client();
    h.advance(Duration::from_secs(74));
    assert!(h.closed().is_none());
    h.advance(Duration::from_secs(1));
    assert!(h.take_client().is_empty(), "no 408 on an idle connection");
    h.client_fin();
    assert!(h.closed().is_some());
}

#[test]
fn the_next_request_gets_the_header_timeout_once_it_starts() {
    let mut h = Harness::default_config();
    h.client_sends(GET);
    h.upstream_sends(OK);
    h.take_client();
    h.advance(Duration::from_secs(70));
    h.client_sends(b"GET / HTTP/1.1\r\n");
    h.advance(Duration::from_secs(59));
    assert!(h.take_client().is_empty());
    h.advance(Duration::from_secs(1));
    assert_eq!(status_of(&h.take_client()), Some(408));
}

#[test]
fn plain_requests_then_a_final_upgrade_on_one_connection() {
    let mut h = Harness::default_config();
    h.client_sends(GET);
    h.upstream_sends(OK);
    h.client_sends(
        b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    h.upstream_sends(OK);
    h.take_upstream();
    h.client_sends(WS_REQUEST);
    h.upstream_sends(WS_101);
    assert!(h.tunnel_established());
    h.client_sends(MASKED_FRAME);
    let up = h.take_upstream();
    assert!(up.ends_with(MASKED_FRAME));
    let answers = h.take_client();
    assert_eq!(
        answers.windows(12).filter(|w| w == b"HTTP/1.1 200").count(),
        2
    );
}

#[test]
fn a_body_the_upstream_did_not_wait_for_ends_the_client_connection() {
    let mut h = Harness::default_config();
    h.client_sends(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\npartial");
    h.upstream_sends(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n");
    let to_client = h.take_client();
    assert_eq!(status_of(&to_client), Some(413));
    assert_eq!(field(&to_client, "connection").as_deref(), Some("close"));
    assert_eq!(releases(&h), vec![false]);
}

#[test]
fn cl0_follow_up_is_a_separate_request() {
    let mut h = Harness::default_config();
    h.client_sends(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n");
    let first = h.take_upstream();
    assert!(first.starts_with(b"POST / HTTP/1.1\r\n"));
    assert_eq!(
        split_head(&first).1,
        b"",
        "the second request is not body bytes"
    );
    h.upstream_sends(OK);
    let second = h.take_upstream();
    assert!(second.starts_with(b"GET /admin HTTP/1.1\r\n"));
}

#[test]
fn a_connect_failure_can_be_retried_on_another_server() {
    let mut h = Harness::default_config();
    h.auto_connect = false;
    h.client_sends(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
    assert!(
        h.session.can_retry(),
        "nothing was sent: any request may be retried"
    );
    assert!(h.session.retry(h.now));
    h.pump();
    assert_eq!(h.connects, 2);
    h.session.handle_connected(h.now);
    h.pump();
    let up = h.take_upstream();
    assert_eq!(split_head(&up).1, b"abc");
}

#[test]
fn a_stale_pooled_connection_is_replaced_for_an_idempotent_request() {
    let mut h = Harness::default_config();
    h.auto_connect = false;
    h.client_sends(GET);
    h.session.handle_connected_reused(h.now);
    h.pump();
    assert!(!h.take_upstream().is_empty());
    h.upstream_fin();
    assert_eq!(h.connects, 2, "asked for a new connection by itself");
    assert_eq!(h.session.connect_reason(), ConnectReason::StaleConnection);
    assert_eq!(releases(&h), vec![false]);
    h.session.handle_connected(h.now);
    h.pump();
    let up = h.take_upstream();
    assert!(
        up.starts_with(b"GET /a HTTP/1.1\r\n"),
        "the request is sent again"
    );
    h.upstream_sends(OK);
    assert_eq!(split_head(&h.take_client()).1, b"ok");
}

#[test]
fn a_request_with_a_body_is_never_resent() {
    let mut h = Harness::default_config();
    h.auto_connect = false;
    h.client_sends(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
    h.session.handle_connected_reused(h.now);
    h.pump();
    assert!(!h.session.can_retry());
    h.upstream_fin();
    assert_eq!(h.connects, 1);
    assert_eq!(status_of(&h.take_client()), Some(502));
}

#[test]
fn nothing_is_retried_once_the_upstream_answered() {
    let mut h = Harness::default_config();
    h.client_sends(GET);
    h.upstream_sends(b"HTTP/1.1 200 OK\r\nContent-Le");
    assert!(!h.session.can_retry());
    h.upstream_fin();
    assert_eq!(status_of(&h.take_client()), Some(502));
}
