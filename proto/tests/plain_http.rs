//! Ordinary requests through a session: the request is rewritten and the response relayed with
//! its framing regenerated.

mod support;

use support::*;

fn exchange(request: &[u8], response: &[u8], upstream_closes: bool) -> (Vec<u8>, Vec<u8>) {
    let mut h = Harness::default_config();
    h.client_sends(request);
    h.upstream_sends(response);
    if upstream_closes {
        h.upstream_fin();
    }
    (h.take_upstream(), h.take_client())
}

#[test]
fn hop_by_hop_fields_are_removed_and_framing_regenerated() {
    let (up, _) = exchange(
        b"POST /p?q=1 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Foo\r\nX-Foo: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X\r\nExpect: 100-continue\r\nX-Keep: yes\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: v\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        false,
    );
    let (head, body) = split_head(&up);
    assert!(head.starts_with(b"POST /p?q=1 HTTP/1.1\r\nHost: a\r\n"));
    for gone in [
        "connection",
        "x-foo",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "expect",
    ] {
        assert_eq!(field(head, gone), None, "{gone} must not be forwarded");
    }
    assert_eq!(field(head, "x-keep").as_deref(), Some("yes"));
    assert_eq!(field(head, "transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(
        body, b"5\r\nhello\r\n0\r\n\r\n",
        "canonical chunks, no extension, no trailer"
    );
}

#[test]
fn expect_100_continue_is_answered_by_the_proxy() {
    let mut h = Harness::default_config();
    h.client_sends(
        b"PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(h.take_client(), b"HTTP/1.1 100 Continue\r\n\r\n");
    h.client_sends(b"hello");
    let up = h.take_upstream();
    assert_eq!(split_head(&up).1, b"hello");
    // The upstream's own 100 is not relayed a second time.
    h.upstream_sends(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
    );
    let to_client = h.take_client();
    assert_eq!(status_of(&to_client), Some(201));
}

#[test]
fn absolute_form_targets_go_upstream_in_origin_form_with_their_authority_as_host() {
    let (up, _) = exchange(
        b"GET http://b.example/x?y HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        false,
    );
    assert!(
        up.starts_with(b"GET /x?y HTTP/1.1\r\nHost: b.example\r\n"),
        "{}",
        String::from_utf8_lossy(&up)
    );
}

#[test]
fn content_length_responses_are_relayed_and_the_connection_kept() {
    let (_, to_client) = exchange(
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nhello",
        false,
    );
    let (head, body) = split_head(&to_client);
    assert_eq!(field(head, "content-length").as_deref(), Some("5"));
    assert_eq!(field(head, "connection"), None, "HTTP/1.1 stays persistent");
    assert_eq!(field(head, "keep-alive"), None);
    assert_eq!(body, b"hello");
}

#[test]
fn chunked_responses_are_re_encoded_canonically() {
    let (_, to_client) = exchange(
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n",
        false,
    );
    let (head, body) = split_head(&to_client);
    assert_eq!(field(head, "transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(body, b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
}

#[test]
fn close_delimited_bodies_are_chunked_for_http11_clients_and_raw_for_http10() {
    let (_, to_client) = exchange(
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nuntil close",
        true,
    );
    let (head, body) = split_head(&to_client);
    assert_eq!(field(head, "transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(body, b"b\r\nuntil close\r\n0\r\n\r\n");

    let (_, to_client) = exchange(
        b"GET / HTTP/1.0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nuntil close",
        true,
    );
    let (head, body) = split_head(&to_client);
    assert_eq!(field(head, "transfer-encoding"), None);
    assert_eq!(body, b"until close");
}

#[test]
fn head_204_and_304_responses_have_no_body_whatever_the_fields_say() {
    for (request, response) in [
        (
            &b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            &b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n"[..],
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\n\r\n",
        ),
    ] {
        let mut h = Harness::default_config();
        h.client_sends(request);
        h.upstream_sends(response);
        let to_client = h.take_client();
        let (_, body) = split_head(&to_client);
        assert!(body.is_empty());
        assert!(h
            .events
            .iter()
            .any(|e| matches!(e, switchyard_proto::Event::ReleaseUpstream { .. })));
    }
}

#[test]
fn interim_responses_are_not_sent_to_http10_clients() {
    let (_, to_client) = exchange(
        b"GET / HTTP/1.0\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        false,
    );
    assert_eq!(status_of(&to_client), Some(200));
}

#[test]
fn a_client_leaving_mid_body_closes_the_upstream_unpooled() {
    let mut h = Harness::default_config();
    h.client_sends(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345");
    h.client_fin();
    assert!(h.closed().is_some());
    assert!(h
        .events
        .iter()
        .any(|e| *e == switchyard_proto::Event::ReleaseUpstream { reusable: false }));
}
