//! Tests of the parent module.
use super::*;
use crate::config::IpNet;
use crate::rules::tests::{
    assert_only_crlf, assert_request_parses, assert_response_parses, field_list,
    request as request_with, response, value,
};
use crate::rules::HeaderRule;
use bytes::Bytes;
use proptest::prelude::*;

/// `GET /` whose effective host is the `Host` field (as the request parser computes it).
fn get(list: &[(&str, &str)]) -> RequestHead {
    let host = list
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| *v);
    request_with("/", "/", host, list)
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("socket address")
}

struct Case {
    request: RequestHead,
    config: Config,
    client: ClientInfo,
    offer: Option<UpgradeOffer>,
    framing: BodyFraming,
}

impl Case {
    fn new(request: RequestHead) -> Self {
        let config = Config {
            upstream_authority: "backend:8080".to_owned(),
            forwarded_headers: false,
            ..Config::default()
        };
        let client = ClientInfo {
            addr: Some(addr("192.0.2.7:5000")),
            secure: false,
        };
        Self {
            request,
            config,
            client,
            offer: None,
            framing: BodyFraming::None,
        }
    }
    fn forwarded(mut self) -> Self {
        self.config.forwarded_headers = true;
        self
    }
    fn trusted(mut self) -> Self {
        let addr = "192.0.2.0".parse().expect("net");
        self.config.trusted_proxies.push(IpNet { addr, prefix: 24 });
        self
    }
    fn offer(mut self, protocols: &[&str]) -> Self {
        let protocols = protocols
            .iter()
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect();
        self.offer = Some(UpgradeOffer {
            protocols,
            websocket_key: None,
        });
        self
    }
    fn with(mut self, change: impl FnOnce(&mut Self)) -> Self {
        change(&mut self);
        self
    }
    fn rule(mut self, action: HeaderAction, name: &str, template: &str) -> Self {
        self.config
            .header_rules
            .push(HeaderRule::new(action, name, template).expect("rule"));
        self
    }
    fn write(&self) -> String {
        let mut out = BytesMut::new();
        let offer = self.offer.as_ref();
        write_upstream_request(
            &self.request,
            offer,
            self.framing,
            &self.client,
            &self.config,
            &mut out,
        );
        assert_request_parses(&out);
        assert_only_crlf(&out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// What a table row produces: a head already rendered, or an upstream request to write.
trait Produced {
    fn text(self) -> String;
}
impl Produced for String {
    fn text(self) -> String {
        self
    }
}
impl Produced for Case {
    fn text(self) -> String {
        self.write()
    }
}

macro_rules! head_cases {
    ($($test:ident: $produced:expr => [$($line:expr),* $(,)?];)*) => {$(
        #[test]
        fn $test() {
            let expected = [$($line),*].iter().map(|l| format!("{l}\r\n")).collect::<String>() + "\r\n";
            assert_eq!(Produced::text($produced), expected);
        }
    )*};
}

use BodyFraming::{Chunked, CloseDelimited, Length};
use HeaderAction::{Add, Remove, Set};
use Version::{Http10, Http11};
head_cases! {
    forwards_end_to_end_fields_in_order_with_host_first:
        Case::new(get(&[("user-AGENT", "x"), ("Host", "a"), ("Accept", "*/*")]))
        => ["GET / HTTP/1.1", "Host: a", "user-AGENT: x", "Accept: */*"];
    t080_removes_a_field_the_connection_header_nominates:
        Case::new(get(&[("Host", "a"), ("Connection", "X-Foo"), ("X-Foo", "1"), ("X-Bar", "2")]))
        => ["GET / HTTP/1.1", "Host: a", "X-Bar: 2"];
    t080_removes_nominated_fields_after_an_empty_connection_line:
        Case::new(get(&[("Host", "a"), ("Connection", ""), ("Connection", "X-Foo"), ("x-foo", "1")]))
        => ["GET / HTTP/1.1", "Host: a"];
    t082_removes_legacy_hop_by_hop_fields:
        Case::new(get(&[("Host", "a"), ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers, gzip"), ("Trailer", "X")]))
        => ["GET / HTTP/1.1", "Host: a"];
    drops_client_framing_expect_and_upgrade_and_writes_our_framing:
        Case::new(get(&[("Host", "a"), ("Content-Length", "5"), ("Expect", "100-continue"),
            ("Upgrade", "websocket"), ("Connection", "upgrade")])).with(|c| c.framing = Length(5))
        => ["GET / HTTP/1.1", "Host: a", "Content-Length: 5"];
    writes_content_length_zero: Case::new(get(&[("Host", "a")])).with(|c| c.framing = Length(0))
        => ["GET / HTTP/1.1", "Host: a", "Content-Length: 0"];
    writes_chunked_framing:
        Case::new(get(&[("Host", "a"), ("Transfer-Encoding", "chunked")])).with(|c| c.framing = Chunked)
        => ["GET / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"];
    t068_takes_host_from_the_absolute_form_target:
        Case::new(request_with("http://b.example/x", "/x", Some("b.example"), &[("Host", "a")]))
        => ["GET /x HTTP/1.1", "Host: b.example"];
    upstream_host_mode_sends_the_upstream_authority:
        Case::new(get(&[("Host", "a")])).with(|c| c.config.host_header = HostHeader::Upstream)
        => ["GET / HTTP/1.1", "Host: backend:8080"];
    a_request_without_host_gets_the_upstream_authority:
        Case::new(request_with("/", "/", None, &[]))
        => ["GET / HTTP/1.1", "Host: backend:8080"];
    an_offer_adds_upgrade_and_connection_upgrade:
        Case::new(get(&[("Host", "a"), ("Upgrade", "websocket, h2c"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")])).offer(&["websocket"])
        => ["GET / HTTP/1.1", "Host: a", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Upgrade: websocket", "Connection: upgrade"];
    an_offer_of_several_protocols_is_joined:
        Case::new(get(&[("Host", "a")])).offer(&["websocket", "foo/2"])
        => ["GET / HTTP/1.1", "Host: a", "Upgrade: websocket, foo/2", "Connection: upgrade"];
    untrusted_forwarded_fields_are_replaced:
        Case::new(get(&[("Host", "a:81"), ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil")])).forwarded().with(|c| c.client.addr = Some(addr("203.0.113.9:1")))
        => ["GET / HTTP/1.1", "Host: a:81", "X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: http",
            "X-Forwarded-Host: a:81"];
    trusted_forwarded_fields_are_appended_or_kept:
        Case::new(get(&[("Host", "a"), ("X-Forwarded-For", "10.0.0.1"), ("x-forwarded-for", "10.0.0.2"),
            ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "public.example")])).forwarded().trusted()
        => ["GET / HTTP/1.1", "Host: a", "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 192.0.2.7",
            "X-Forwarded-Proto: https", "X-Forwarded-Host: public.example"];
    a_tls_client_is_forwarded_as_https:
        Case::new(get(&[("Host", "a")])).forwarded().with(|c| c.client = ClientInfo { addr: Some(addr("[2001:db8::1]:443")), secure: true })
        => ["GET / HTTP/1.1", "Host: a", "X-Forwarded-For: 2001:db8::1", "X-Forwarded-Proto: https",
            "X-Forwarded-Host: a"];
    connection_cannot_remove_the_regenerated_xff:
        Case::new(get(&[("Host", "a"), ("Connection", "X-Forwarded-For, X-Forwarded-Proto"),
            ("X-Forwarded-For", "1.1.1.1")])).forwarded()
        => ["GET / HTTP/1.1", "Host: a", "X-Forwarded-For: 192.0.2.7", "X-Forwarded-Proto: http",
            "X-Forwarded-Host: a"];
    a_trusted_peer_cannot_keep_a_nominated_xff:
        Case::new(get(&[("Host", "a"), ("Connection", "x-forwarded-for"), ("X-Forwarded-For", "1.1.1.1")]))
            .forwarded().trusted()
        => ["GET / HTTP/1.1", "Host: a", "X-Forwarded-For: 192.0.2.7", "X-Forwarded-Proto: http",
            "X-Forwarded-Host: a"];
    without_an_address_xff_is_omitted_and_the_client_one_dropped:
        Case::new(request_with("/", "/", None, &[("X-Forwarded-For", "1.1.1.1")])).forwarded().with(|c| c.client.addr = None)
        => ["GET / HTTP/1.1", "Host: backend:8080", "X-Forwarded-Proto: http"];
    with_forwarded_headers_off_client_values_pass_through:
        Case::new(get(&[("Host", "a"), ("X-Forwarded-For", "1.1.1.1")]))
        => ["GET / HTTP/1.1", "Host: a", "X-Forwarded-For: 1.1.1.1"];
    set_replaces_every_client_field_of_that_name:
        Case::new(get(&[("Host", "a"), ("X-A", "1"), ("B", "2"), ("x-a", "3")])).rule(Set, "X-A", "$remote_addr")
        => ["GET / HTTP/1.1", "Host: a", "B: 2", "X-A: 192.0.2.7"];
    set_with_an_empty_value_removes_the_client_field:
        Case::new(get(&[("Host", "a"), ("Cookie", "s=1")])).rule(Set, "cookie", "$http_x_absent")
        => ["GET / HTTP/1.1", "Host: a"];
    add_appends_and_an_empty_add_adds_nothing:
        Case::new(get(&[("Host", "a"), ("X-A", "1")])).rule(Add, "X-A", "two").rule(Add, "X-B", "")
        => ["GET / HTTP/1.1", "Host: a", "X-A: 1", "X-A: two"];
    remove_removes_client_and_earlier_rule_fields:
        Case::new(get(&[("Host", "a"), ("X-A", "1")])).rule(Add, "X-A", "2").rule(Remove, "x-a", "")
        => ["GET / HTTP/1.1", "Host: a"];
    a_later_set_replaces_an_earlier_add:
        Case::new(get(&[("Host", "a")])).rule(Add, "X-A", "1").rule(Set, "X-A", "2").rule(Add, "X-A", "3")
        => ["GET / HTTP/1.1", "Host: a", "X-A: 2", "X-A: 3"];
    set_host_keeps_host_first:
        Case::new(get(&[("Host", "A.Example:81"), ("X-A", "1")])).rule(Set, "Host", "$host")
        => ["GET / HTTP/1.1", "Host: a.example", "X-A: 1"];
    an_empty_host_set_falls_back_to_the_upstream_authority:
        Case::new(get(&[("Host", "a")])).rule(Set, "Host", "$http_x_absent")
        => ["GET / HTTP/1.1", "Host: backend:8080"];
    a_rule_overrides_the_generated_xff:
        Case::new(get(&[("Host", "a"), ("X-Forwarded-For", "1.1.1.1")])).forwarded()
            .rule(Set, "X-Forwarded-For", "$proxy_add_x_forwarded_for").rule(Remove, "X-Forwarded-Host", "")
        => ["GET / HTTP/1.1", "Host: a", "X-Forwarded-Proto: http",
            "X-Forwarded-For: 1.1.1.1, 192.0.2.7"];
    connection_upgrade_variable_follows_the_offer:
        Case::new(get(&[("Host", "a")])).offer(&["websocket"]).rule(Set, "X-Conn", "$connection_upgrade")
        => ["GET / HTTP/1.1", "Host: a", "Upgrade: websocket", "Connection: upgrade", "X-Conn: upgrade"];
}

#[test]
fn an_http10_request_is_sent_as_http11() {
    let mut request = request_with("/old?q", "/old?q", None, &[]);
    request.version = Http10;
    request.method = Bytes::from_static(b"POST");
    let out = Case::new(request).with(|c| c.framing = Length(3)).write();
    assert_eq!(
        out,
        "POST /old?q HTTP/1.1\r\nHost: backend:8080\r\nContent-Length: 3\r\n\r\n"
    );
}

/// Writes a response head with `write`, checks it re-parses, and returns it as text.
fn render(write: impl FnOnce(&mut BytesMut)) -> String {
    let mut out = BytesMut::new();
    write(&mut out);
    assert_eq!(assert_response_parses(&out), out.len());
    assert_only_crlf(&out);
    String::from_utf8_lossy(&out).into_owned()
}

fn switch(response: &ResponseHead, protocol: &str) -> String {
    render(|out| write_switch_head(response, protocol.as_bytes(), out))
}

fn interim(response: &ResponseHead) -> String {
    render(|out| write_interim_response(response, out))
}

fn final_head(response: &ResponseHead, framing: BodyFraming, v: Version, keep: bool) -> String {
    render(|out| write_final_response(response, framing, v, keep, out))
}

head_cases! {
    switch_regenerates_connection_and_upgrade_and_keeps_websocket_fields:
        switch(&response(101, "Switching Protocols", &[("Upgrade", "WebSocket"), ("Connection", "Upgrade, X-Hop"),
            ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), ("X-Hop", "1"),
            ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=10"),
            ("Sec-WebSocket-Protocol", "chat"), ("Date", "Mon"), ("Server", "up"), ("Keep-Alive", "timeout=5")]),
            "WebSocket")
        => ["HTTP/1.1 101 Switching Protocols", "Connection: upgrade", "Upgrade: WebSocket",
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10",
            "Sec-WebSocket-Protocol: chat", "Date: Mon", "Server: up"];
    switch_with_an_empty_reason_keeps_the_trailing_space:
        switch(&response(101, "", &[("Content-Length", "0"), ("Transfer-Encoding", "chunked"), ("TE", "x"),
            ("Trailer", "y"), ("Proxy-Connection", "z")]), "websocket")
        => ["HTTP/1.1 101 ", "Connection: upgrade", "Upgrade: websocket"];
    interim_drops_hop_by_hop_and_framing:
        interim(&response(103, "Early Hints", &[("Link", "</s.css>; rel=preload"), ("Connection", "close"),
            ("Content-Length", "0")]))
        => ["HTTP/1.1 103 Early Hints", "Link: </s.css>; rel=preload"];
    interim_100_continue_is_bare: interim(&response(100, "Continue", &[])) => ["HTTP/1.1 100 Continue"];
    final_regenerates_content_length:
        final_head(&response(200, "OK", &[("Content-Length", "12"), ("Content-Type", "text/html"),
            ("Connection", "keep-alive, X-A"), ("X-A", "1")]), Length(12), Http11, true)
        => ["HTTP/1.1 200 OK", "Content-Type: text/html", "Content-Length: 12"];
    final_writes_chunked: final_head(&response(200, "OK", &[("Transfer-Encoding", "chunked")]), Chunked, Http11, true)
        => ["HTTP/1.1 200 OK", "Transfer-Encoding: chunked"];
    final_close_delimited_says_connection_close:
        final_head(&response(200, "OK", &[("Upgrade", "h2c")]), CloseDelimited, Http11, false)
        => ["HTTP/1.1 200 OK", "Connection: close"];
    final_to_head_keeps_the_upstream_content_length:
        final_head(&response(200, "OK", &[("Content-Length", "42")]), BodyFraming::None, Http11, true)
        => ["HTTP/1.1 200 OK", "Content-Length: 42"];
    final_304_keeps_the_upstream_content_length:
        final_head(&response(304, "Not Modified", &[("ETag", "\"x\""), ("Content-Length", "42")]),
            BodyFraming::None, Http11, true)
        => ["HTTP/1.1 304 Not Modified", "ETag: \"x\"", "Content-Length: 42"];
    final_204_never_carries_content_length:
        final_head(&response(204, "No Content", &[("Content-Length", "0")]), BodyFraming::None, Http11, true)
        => ["HTTP/1.1 204 No Content"];
    final_to_an_http10_client_says_keep_alive:
        final_head(&response(200, "OK", &[]), Length(0), Http10, true)
        => ["HTTP/1.1 200 OK", "Content-Length: 0", "Connection: keep-alive"];
    final_to_an_http10_client_closing_says_close:
        final_head(&response(200, "", &[]), Length(0), Http10, false)
        => ["HTTP/1.1 200 ", "Content-Length: 0", "Connection: close"];
}

#[test]
fn error_responses_are_complete_and_close() {
    for code in [400u16, 405, 408, 413, 414, 431, 501, 502, 504, 505] {
        let status = StatusCode(code);
        let mut out = BytesMut::new();
        write_error_response(status, false, &mut out);
        let head_len = assert_response_parses(&out);
        let body = format!("{code} {}\n", status.reason());
        let expected = format!(
            "HTTP/1.1 {code} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            status.reason(),
            body.len()
        );
        assert_eq!(String::from_utf8(out.to_vec()).expect("utf-8"), expected);
        assert_eq!(out.len() - head_len, body.len());
    }
}

#[test]
fn decimal_formatting_covers_the_extremes() {
    for n in [0u64, 7, 10, 99, 1000, u64::MAX] {
        let mut out = BytesMut::new();
        put_u64(&mut out, n);
        assert_eq!(&out[..], n.to_string().as_bytes());
    }
}

proptest! {
    #[test]
    fn any_valid_request_rewrites_to_a_parsable_head(
        headers in field_list(),
        rule_name in "[A-Za-z0-9-]{1,8}",
        upgrading: bool,
        trusted: bool,
        chunked: bool,
    ) {
        let mut case = Case::new(get(&[])).forwarded();
        case.request.connection = ConnectionOptions::from_headers(&headers);
        case.request.host = headers.value("host").map(Bytes::copy_from_slice);
        case.request.headers = headers;
        case.framing = if chunked { Chunked } else { Length(1) };
        if trusted {
            case = case.trusted();
        }
        if upgrading {
            case = case.offer(&["websocket"]);
        }
        let var = format!("${{http_{}}}", rule_name.replace('-', "_"));
        for action in [Set, Add] {
            if let Ok(rule) = HeaderRule::new(action, &rule_name, &format!("v {var} $proxy_add_x_forwarded_for")) {
                case.config.header_rules.push(rule);
            }
        }
        case.write();
    }

    #[test]
    fn any_valid_response_rewrites_to_a_parsable_head(
        headers in field_list(),
        reason in value(),
        status in 100u16..600,
    ) {
        let mut head = response(status, "", &[]);
        head.connection = ConnectionOptions::from_headers(&headers);
        head.headers = headers;
        head.reason = Bytes::from(reason);
        for write in [0, 1, 2] {
            let mut out = BytesMut::new();
            match write {
                0 => write_switch_head(&head, b"websocket", &mut out),
                1 => write_interim_response(&head, &mut out),
                _ => write_final_response(&head, Chunked, Http10, true, &mut out),
            }
            prop_assert_eq!(assert_response_parses(&out), out.len());
            assert_only_crlf(&out);
        }
    }
}

#[test]
fn error_responses_to_head_requests_have_no_body() {
    let mut out = BytesMut::new();
    write_error_response(StatusCode(502), true, &mut out);
    assert!(out.ends_with(b"Content-Length: 16\r\nConnection: close\r\n\r\n"));
}

#[test]
fn ipv4_addresses_are_written_as_display_writes_them() {
    for octets in [
        [0, 0, 0, 0],
        [255, 255, 255, 255],
        [192, 0, 2, 7],
        [10, 99, 100, 9],
    ] {
        for rotate in 0..4 {
            let mut octets = octets;
            octets.rotate_left(rotate);
            let ip = IpAddr::from(octets);
            let mut out = BytesMut::new();
            put_ip(&mut out, ip);
            assert_eq!(out, ip.to_string().as_bytes());
        }
    }
    for n in 0..=255u8 {
        let ip = IpAddr::from([n, n / 3, 255 - n, n % 10]);
        let mut out = BytesMut::new();
        put_ip(&mut out, ip);
        assert_eq!(out, ip.to_string().as_bytes());
    }
}
