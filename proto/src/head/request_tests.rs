//! Tests of the parent module.
use proptest::prelude::*;

use super::*;
use crate::error::{Error, StatusCode};

fn parse_with(input: &[u8], config: &Config) -> Result<RequestHead, RequestError> {
    parse_request_head(Bytes::copy_from_slice(input), config)
}

fn parse(input: &[u8]) -> Result<RequestHead, RequestError> {
    parse_with(input, &Config::default())
}

fn ok(input: &[u8]) -> RequestHead {
    match parse(input) {
        Ok(head) => head,
        Err(e) => panic!("{:?} refused: {e:?}", String::from_utf8_lossy(input)),
    }
}

/// `GET / HTTP/1.1`, `Host: a`, then `fields` (each ending in CRLF) and the blank line.
fn get(fields: &[u8]) -> Vec<u8> {
    [&b"GET / HTTP/1.1\r\nHost: a\r\n"[..], fields, b"\r\n"].concat()
}

/// Like [`get`], with `POST`.
fn post(fields: &[u8]) -> Vec<u8> {
    [&b"POST / HTTP/1.1\r\nHost: a\r\n"[..], fields, b"\r\n"].concat()
}

/// `line` as the request line, then `Host: a` and the blank line.
fn rl(line: &[u8]) -> Vec<u8> {
    [line, b"\r\nHost: a\r\n\r\n"].concat()
}

/// `GET target HTTP/1.1` with `Host: a`.
fn target(target: &[u8]) -> Vec<u8> {
    [&b"GET "[..], target, b" HTTP/1.1\r\nHost: a\r\n\r\n"].concat()
}

/// `GET / HTTP/1.1` with `Host: value`.
fn host(value: &[u8]) -> Vec<u8> {
    [&b"GET / HTTP/1.1\r\nHost: "[..], value, b"\r\n\r\n"].concat()
}

/// A `POST` with `Content-Length: value`.
fn cl(value: &[u8]) -> Vec<u8> {
    post(&[&b"Content-Length: "[..], value, b"\r\n"].concat())
}

/// A `POST` with `Transfer-Encoding: value`.
fn te(value: &[u8]) -> Vec<u8> {
    post(&[&b"Transfer-Encoding: "[..], value, b"\r\n"].concat())
}

/// The value of the first field `name` of the accepted `input`.
fn value(input: &[u8], name: &str) -> Option<Vec<u8>> {
    ok(input).header(name).map(|v| v.to_vec())
}

/// A default config with some limits changed.
fn limits(change: impl FnOnce(&mut crate::config::Limits)) -> Config {
    let mut config = Config::default();
    change(&mut config.limits);
    config
}

/// `name: [with config;] [heads] => Error status;`: each head is refused so.
macro_rules! refuses {
    (@config) => { Config::default() };
    (@config $config:expr) => { $config };
    ($($name:ident: $(with $config:expr;)? [$($input:expr),+ $(,)?]
        => $err:ident $status:literal;)*) => {$(
        #[test]
        fn $name() {
            let config = refuses!(@config $($config)?);
            for input in [$(&$input[..]),+] {
                let shown = String::from_utf8_lossy(input);
                let err = parse_with(input, &config).err();
                assert_eq!(err, Some(RequestError::$err), "{shown:?}");
                let status = Error::from(RequestError::$err).status();
                assert_eq!(status, StatusCode($status), "{shown:?}");
            }
        }
    )*};
}

/// `name: [with config;] [heads] => framing;` — every head is accepted with that framing.
macro_rules! frames {
    ($($name:ident: $(with $config:expr;)? [$($input:expr),+ $(,)?] => $framing:expr;)*) => {$(
        #[test]
        fn $name() {
            let config = refuses!(@config $($config)?);
            for input in [$(&$input[..]),+] {
                let shown = String::from_utf8_lossy(input);
                let head = parse_with(input, &config);
                let head = head.unwrap_or_else(|e| panic!("{shown:?}: {e:?}"));
                assert_eq!(head.framing, $framing, "{shown:?}");
            }
        }
    )*};
}

// Rule 1: request line (category 1D: T072, T074, T076, T078).
refuses! {
    refuses_http09_two_part_lines_t076:
        [b"GET /\r\n", b"GET /\r\n\r\n", b"GET /\nHTTP/1.1\r\n\r\n"]
        => MalformedRequestLine 400;
    refuses_lines_without_single_sp_separators: [rl(b"GET  / HTTP/1.1"), rl(b"GET /  HTTP/1.1"),
        rl(b" GET / HTTP/1.1"), rl(b"GET\t/\tHTTP/1.1"), rl(b"GET / HTTP/1.1 "), rl(b"GET"),
        b"\r\n\r\n", b"", b"GET / HTTP/1.1"] => MalformedRequestLine 400;
    refuses_malformed_versions_t074: [b"GET / HTTP/1.32\r\n\r\n", b"GET / http/1.1\r\n\r\n",
        b"GET / HTTP/\r\r1.1\r\n\r\n", b"GET / HTTP/4294967295.255\r\n\r\n",
        rl(b"GET / HTTP/1"), rl(b"GET / HTTP/1.1\r"), rl(b"GET / HTTP/1.x"),
        rl(b"GET / HTTPS/1.1")]
        => MalformedRequestLine 400;
    refuses_other_versions_with_505_t074: [rl(b"GET / HTTP/2.0"), rl(b"GET / HTTP/1.2"),
        b"GET / HTTP/0.9\r\n\r\n", b"GET / HTTP/3.0\r\n\r\n"] => UnsupportedVersion 505;
    refuses_request_lines_over_the_limit_t078:
        [target(&[&b"/"[..], &[b'a'; 20000]].concat())] => RequestLineTooLong 414;
}

// Rule 2: method.
refuses! {
    refuses_methods_that_are_not_tokens: [rl(b"G@T / HTTP/1.1"), rl(b"GET\x00 / HTTP/1.1"),
        rl(b"\"GET\" / HTTP/1.1"), rl(b"G\xc3\x89T / HTTP/1.1")] => InvalidMethod 400;
    refuses_connect_and_trace_with_405: [rl(b"CONNECT a:443 HTTP/1.1"), rl(b"TRACE / HTTP/1.1"),
        b"CONNECT / HTTP/1.0\r\n\r\n"] => MethodNotAllowed 405;
}

// Rule 3: target (T070, T072, CVE-2023-45539).
refuses! {
    refuses_targets_with_whitespace_ctl_or_non_ascii_t072: [target(b"/a b"), target(b"/\x01"),
        target(b"/\x7f"), target(b"/\xff"), target(b"/a\tb"), target(b"/\x00")]
        => InvalidTarget 400;
    refuses_fragments_in_targets:
        [target(b"/a#b"), target(b"http://a/#x")] => InvalidTarget 400;
    refuses_authority_relative_and_foreign_scheme_targets: [target(b"a:443"), target(b"a/b"),
        target(b"ftp://a/"), target(b"http:/a"), target(b"http:a"), target(b"ws://a/"),
        target(b"**")] => InvalidTarget 400;
    refuses_asterisk_form_except_for_options_t070:
        [target(b"*"), rl(b"POST * HTTP/1.1")] => AsteriskForm 400;
    refuses_bad_absolute_form_authorities: [target(b"http://user@a/"), target(b"http:///x"),
        target(b"http://a:99999/"), target(b"http://a..b/"), target(b"https://[::1/")]
        => InvalidHost 400;
}

// Rule 4: field lines (category 1C: T052-T066).
refuses! {
    refuses_obs_fold_t052:
        [get(b"X-A: 1\r\n 2\r\n"), b"GET / HTTP/1.1\nHost: a\nX-A: 1\n\t2\n\n"] => ObsFold 400;
    refuses_whitespace_before_the_first_field_t054: [
        b"GET / HTTP/1.1\r\n\tContent-Length: 1\r\n\r\n", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
    ] => ObsFold 400;
    refuses_nul_and_ctl_in_values_t056: [host(b"google.com\x00.kallus.org"),
        get(b"Test: test\x00THESE BYTES GET DROPPED\r\n"), get(b"X: a\x7fb\r\n"),
        get(b"X: a\x1bb\r\n"), get(b"X: a\rb\r\n"), get(b"X_Y: a\x00b\r\n")]
        => InvalidHeaderValue 400;
    refuses_field_lines_without_colon_t058: [b"GET / HTTP/1.1\r\nContent-Length 10\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: whatever\r\nTransfer-\r\nEncoding: chunked\r\n\
          Content-Length: 5\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nJunk\n\n"] => InvalidHeaderName 400;
    refuses_ctl_space_and_empty_names_t060: [
        post(b"\x01Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
        post(b"Transfer-Encoding\x00: chunked\r\n"), get(b"X-A\x7f: 1\r\n"),
        rl(b"GET / HTTP/1.1\r\nHost : a"), get(b"Content-Length\t: 5\r\n"), get(b": x\r\n"),
        get(b"X A: 1\r\n"), get(b"\"X\": 1\r\n"), get(b"X\xc3\xa9: 1\r\n"),
    ] => InvalidHeaderName 400;
    refuses_heads_without_the_final_blank_line:
        [b"GET / HTTP/1.1\r\nHost: a\r\n", b"GET / HTTP/1.1\r\nHost: a"]
        => InvalidHeaderName 400;
    refuses_a_cr_ending_the_field_block_t066:
        [get(b"\rZGET /evil: HTTP/1.1\r\nHost: a\r\n")] => BareCr 400;
    refuses_bytes_after_the_blank_line: [[get(b""), get(b"")].concat()] => UnexpectedData 400;
}

// Rule 5: Host (T064).
refuses! {
    refuses_two_host_fields:
        [get(b"Host: a\r\n"), b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"]
        => DuplicateHost 400;
    refuses_http11_without_host: [b"GET / HTTP/1.1\r\n\r\n", b"GET http://b/x HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost_: a\r\n\r\n"] => MissingHost 400;
    refuses_invalid_host_values_t064: [host(b"a, b"), host(b"a b"), host(b"a/b"),
        host(b"a:99999"), host(b"a:"), host(b""), host(b":80"), host(b"a:123456"),
        host(b"a:8x"), host(b"a:80:80"), host(b"user@a"), host(b"a..b"), host(b"a\\b"),
        host(b"a?b"), host(b"a%zz"), host(b"[::1"), host(b"[::1]x"), host(b"[zz]"),
        host(b"[fe80::1%25eth0]"), host(b"[v1.]"), host(b"a\xffb"),
        b"GET / HTTP/1.0\r\nHost: a b\r\n\r\n",
        b"GET http://b/ HTTP/1.1\r\nHost: a b\r\n\r\n"] => InvalidHost 400;
}

#[test]
fn accepts_every_form_of_valid_host() {
    let valid = "a a:80 a:0 a:65535 127.0.0.1:8080 [::1] [::1]:8443 [::ffff:1.2.3.4] [v1.x:y] \
        xn--bcher-kva.example a%20b a-b_c~d.e A.EXAMPLE.";
    for value in valid.split(' ') {
        assert_eq!(
            ok(&host(value.as_bytes())).host.as_deref(),
            Some(value.as_bytes())
        );
    }
}

// Rule 6: framing (category 1A: T002-T026, and T050).
refuses! {
    refuses_content_length_with_transfer_encoding_t002_t016_t050: [
        post(b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"),
        post(b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n"),
        post(b"Content-Length: x\r\nTransfer-Encoding: chunked\r\n"),
        post(b"Content-Length: 5\r\nTransfer-Encoding: \xa0chunked\xa0\r\n"),
        post(b"Content-Length: 5\r\nTransfer-Encoding: \"chunked\"\r\n"),
        post(b"Content-Length: 5\r\nTransfer-Encoding: ch\x96nked\r\n"),
        post(b"Content-Length: 5\r\nTransfer-Encoding: chunk\r\n"),
        post(b"Transfer-Encoding: chunked;ext=val\r\nContent-Length: 5\r\n"),
    ] => ContentLengthWithTransferEncoding 400;
    refuses_duplicate_content_length_even_identical_t004: [cl(b"5\r\nContent-Length: 5"),
        cl(b"5, 5"), cl(b"5\r\ncontent-length: 6"), cl(b"5,")] => DuplicateContentLength 400;
    refuses_content_length_that_is_not_digits_t006_t008: [cl(b"+5"), cl(b"-5"), cl(b"0x5"),
        cl(b"5Z"), cl(b"5_0"), cl(b"5.0"), cl(b"5 5"), cl(b"+1_0"), cl(b"1e3"), cl(b"\"5\""),
        cl(b"\xef\xbc\x95"), cl(b""), cl(b"18446744073709551616"), cl(b"99999999999999999999")]
        => InvalidContentLength 400;
    refuses_control_bytes_around_framing_values_t016: [
        post(b"Content-Length: 5\r\nTransfer-Encoding:\x0bchunked\r\n"),
        post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\x0c\r\n"), cl(b"5\x0b"),
    ] => InvalidHeaderValue 400;
    refuses_transfer_encoding_on_http10_t018: [
        b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\
          Content-Length: 5\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] => TransferEncodingOnHttp10 400;
    refuses_unknown_codings_with_501_t016_t050: [te(b"gzip"), te(b"gzip, deflate"),
        te(b"\xa0chunked\xa0"), te(b"\"chunked\""), te(b"ch\x96nked"), te(b"chunk"),
        te(b"chunked;ext=val"), te(b"xchunked"), te(b"identity"), te(b""),
        te(b"gzip, chunked")]
        => UnsupportedTransferCoding 501;
    refuses_chunked_twice_or_not_final_t014: [
        te(b"chunked\r\nTransfer-Encoding: chunked"),
        te(b"chunked, chunked"), te(b"chunked, gzip"), te(b"chunked,"), te(b",chunked"),
        te(b"gzip\r\nTransfer-Encoding: chunked")] => ChunkedNotFinal 400;
    refuses_bodies_over_the_configured_limit_with_413_t008:
        with limits(|l| l.max_body_size = Some(1024));
        [cl(b"1025"), cl(b"18446744073709551615")] => BodyTooLarge 413;
    refuses_more_fields_than_max_headers_with_431: with limits(|l| l.max_headers = 2);
        [get(b"X: 1\r\nY: 2\r\n"), get(b"X_1: 1\r\nX_2: 2\r\n")] => TooManyHeaders 431;
    refuses_heads_over_the_size_limit_with_431: with limits(|l| l.max_head_bytes = 20);
        [get(b"")] => HeadTooLarge 431;
}

frames! {
    frames_by_content_length_even_for_get_t020_t024:
        [get(b"Content-Length: 10\r\n"), cl(b"10"), cl(b"010")] => BodyFraming::Length(10);
    frames_content_length_zero_as_a_length_t022: [cl(b"0")] => BodyFraming::Length(0);
    frames_chunked_in_any_case_t024:
        [te(b"chunked"), te(b"CHUNKED \t")] => BodyFraming::Chunked;
    frames_htab_ows_as_the_rfc_says_not_as_nginx_t010:
        [post(b"Content-Length:\t5\r\n")] => BodyFraming::Length(5);
    frames_htab_ows_before_chunked_t010:
        [post(b"Transfer-Encoding:\tchunked\r\n")] => BodyFraming::Chunked;
    frames_nothing_without_framing_fields:
        [get(b""), b"POST / HTTP/1.0\r\n\r\n"] => BodyFraming::None;
    frames_by_the_real_content_length_next_to_a_long_name_t062: [
        post(&[&b"Content-Length0"[..], &[b'a'; 300],
            b": x\r\nContent-Length: 5\r\n"].concat()),
    ] => BodyFraming::Length(5);
    frames_ignore_dropped_underscore_fields:
        [post(b"Content_Length: 5\r\nTransfer_Encoding: chunked\r\n")] => BodyFraming::None;
    frames_bodies_up_to_the_configured_limit: with limits(|l| l.max_body_size = Some(1024));
        [cl(b"1024")] => BodyFraming::Length(1024);
    frames_bodies_of_any_size_by_default:
        [cl(b"18446744073709551615")] => BodyFraming::Length(u64::MAX);
    frames_up_to_max_headers_fields: with limits(|l| l.max_headers = 2);
        [get(b"X: 1\r\n")] => BodyFraming::None;
    frames_whatever_the_size_of_max_headers: with limits(|l| l.max_headers = usize::MAX);
        [get(b"X: 1\r\nY: 2\r\n")] => BodyFraming::None;
}

// Rule 7 and positive cases.
#[test]
fn expect_100_continue_is_recognised_in_any_case_t026() {
    let head = ok(&post(b"Content-Length: 5\r\nExpect: 100-Continue\r\n"));
    assert!(head.expect_continue);
    assert_eq!(head.framing, BodyFraming::Length(5));
    assert!(!ok(&post(b"Expect: 200-ok\r\n")).expect_continue);
}

#[test]
fn accepts_a_websocket_upgrade_request_t084() {
    let input = b"GET /ws?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let head = ok(input);
    assert!(head.method_is("GET") && !head.method_is("get"));
    assert_eq!(
        (&head.path[..], head.version),
        (&b"/ws?x=1"[..], Version::Http11)
    );
    assert_eq!(head.host.as_deref(), Some(&b"a"[..]));
    assert!(head.connection.upgrade && !head.connection.close);
    assert_eq!(value(input, "upgrade").as_deref(), Some(&b"websocket"[..]));
    let key = value(input, "sec-websocket-key");
    assert_eq!(key.as_deref(), Some(&b"dGhlIHNhbXBsZSBub25jZQ=="[..]));
    assert_eq!((head.headers.len(), head.framing), (5, BodyFraming::None));
}

#[test]
fn absolute_form_authority_replaces_host_t068() {
    let cases: [(&[u8], &[u8], &[u8]); 6] = [
        (b"http://b.example/x", b"b.example", b"/x"),
        (b"HTTPS://B.example:8443?q=1", b"B.example:8443", b"/?q=1"),
        (b"https://b", b"b", b"/"),
        (b"http://[::1]:80/a?b=c/d", b"[::1]:80", b"/a?b=c/d"),
        (b"hTTp://b//x", b"b", b"//x"),
        (b"http://b?", b"b", b"/?"),
    ];
    for (target, host, path) in cases {
        let head = ok(&[&b"GET "[..], target, b" HTTP/1.1\r\nHost: a\r\n\r\n"].concat());
        assert_eq!(head.host.as_deref(), Some(host));
        assert_eq!((&head.path[..], &head.target[..]), (path, target));
    }
}

#[test]
fn accepts_options_asterisk_t070() {
    let head = ok(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((&head.path[..], &head.target[..]), (&b"*"[..], &b"*"[..]));
}

#[test]
fn accepts_http10_without_host() {
    let head = ok(b"GET /x HTTP/1.0\r\n\r\n");
    assert_eq!(
        (head.version, head.host, head.headers.len()),
        (Version::Http10, None, 0)
    );
}

#[test]
fn accepts_bare_lf_line_ends() {
    let input = b"POST /p HTTP/1.1\nHost: a\nContent-Length: 2\nX-Empty:\n\n";
    assert_eq!(ok(input).framing, BodyFraming::Length(2));
    assert_eq!(value(input, "x-empty"), Some(Vec::new()));
}

#[test]
fn preserves_name_case_and_trims_values() {
    let head = ok(b"GET / HTTP/1.1\r\nhOsT: a\r\nX-CaSe: \t v a l \t \r\n\r\n");
    let names: Vec<&[u8]> = head.headers.iter().map(|f| f.name).collect();
    assert_eq!(names, [&b"hOsT"[..], b"X-CaSe"]);
    assert_eq!(head.headers.get(1).map(|f| f.value), Some(&b"v a l"[..]));
}

#[test]
fn fields_are_slices_of_the_received_head() {
    let input = Bytes::from_static(b"GET /p HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n");
    let head = parse_request_head(input.clone(), &Config::default()).unwrap();
    let within = |b: &[u8]| input.as_ptr_range().contains(&b.as_ptr());
    let value = head.headers.get(1).expect("two fields").value;
    assert!(within(&head.method) && within(&head.path) && within(value));
}

#[test]
fn underscore_fields_are_dropped_unless_configured() {
    let input = get(b"X_Forwarded_For: 1.2.3.4\r\nX-Ok: 1\r\nHost_: b\r\n");
    let head = ok(&input);
    let names: Vec<&[u8]> = head.headers.iter().map(|f| f.name).collect();
    assert_eq!(names, [&b"Host"[..], b"X-Ok"]);
    let config = Config {
        underscores_in_headers: true,
        ..Config::default()
    };
    let head = parse_with(&input, &config).unwrap();
    let xff = head.header("x_forwarded_for").map(|v| v.to_vec());
    assert_eq!(xff.as_deref(), Some(&b"1.2.3.4"[..]));
    // `Host_` is kept, but it is not `Host`.
    assert_eq!(
        (head.host.as_deref(), head.headers.len()),
        (Some(&b"a"[..]), 4)
    );
}

#[test]
fn connection_options_come_from_every_connection_line() {
    let head = ok(&get(
        b"Connection:\r\nConnection: X-Foo, close\r\nX-Foo: 1\r\n",
    ));
    assert!(head.connection.close && head.connection.nominates(b"x-foo"));
}

/// The invariant of every accepted head: nothing that travels upstream holds CR, LF or NUL.
fn assert_clean(head: &RequestHead) {
    let clean = |b: &[u8]| !b.iter().any(|&c| matches!(c, b'\r' | b'\n' | 0));
    assert!(clean(&head.path) && clean(&head.method) && clean(&head.target));
    assert!(head.host.as_deref().map_or(true, clean));
    for f in head.headers.iter() {
        assert!(
            clean(f.name) && clean(f.value) && !f.name.is_empty(),
            "{f:?}"
        );
    }
}

/// Mostly bytes from `benign`, with a sprinkling of the ones that break parsers.
fn sprinkled(benign: &'static [u8]) -> impl Strategy<Value = u8> {
    prop_oneof![
        12 => prop::sample::select(benign.to_vec()),
        1 => prop::sample::select(b"\r\n\0\t \x0b\x7f\xff\x80#\":".to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(head) = parse(&bytes) {
            assert_clean(&head);
        }
    }

    #[test]
    fn accepted_structured_heads_never_carry_cr_lf_or_nul(
        method in prop::sample::select(vec!["GET", "POST", "OPTIONS", "G_T"]),
        target in prop::collection::vec(sprinkled(b"aZ09-_./:?=%@,"), 1..20),
        version in prop::sample::select(vec!["HTTP/1.1", "HTTP/1.0"]),
        fields in prop::collection::vec(
            (prop::collection::vec(sprinkled(b"aZ-_"), 0..8),
             prop::collection::vec(sprinkled(b"aZ09-_./:?=%@, "), 0..12)),
            0..6),
        host in prop::sample::select(vec!["a", "a:80", "[::1]", "", "a b"]),
        lf_only in any::<bool>(),
    ) {
        let eol: &[u8] = if lf_only { b"\n" } else { b"\r\n" };
        let line = [method.as_bytes(), b" /", &target, b" ", version.as_bytes()].concat();
        let mut input = [&line[..], eol].concat();
        input.extend_from_slice(&[&b"Host: "[..], host.as_bytes(), eol].concat());
        for (name, value) in &fields {
            input.extend_from_slice(&[&name[..], b":", value, eol].concat());
        }
        input.extend_from_slice(eol);
        if let Ok(head) = parse(&input) {
            assert_clean(&head);
        }
    }

    #[test]
    fn one_changed_byte_never_panics(index in 0..200usize, byte in any::<u8>()) {
        let mut input = b"POST http://b:80/x?y HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\
            Upgrade: websocket\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n".to_vec();
        let len = input.len();
        input[index % len] = byte;
        if let Ok(head) = parse(&input) {
            assert_clean(&head);
        }
    }
}

#[test]
fn underscores_are_found_at_every_offset() {
    for len in 1..20 {
        let plain = get(format!("{}: v\r\n", "a".repeat(len)).as_bytes());
        assert_eq!(ok(&plain).headers.len(), 2, "{len}");
        for at in 0..len {
            let mut name = vec![b'^'; len];
            name[at] = b'_';
            let mut fields = name.clone();
            fields.extend_from_slice(b": v\r\n");
            let head = ok(&get(&fields));
            assert_eq!(head.headers.len(), 1, "{len} {at}: only Host is left");
            let kept = parse_with(
                &get(&fields),
                &Config {
                    underscores_in_headers: true,
                    ..Config::default()
                },
            )
            .expect("valid");
            assert_eq!(kept.headers.get(1).map(|f| f.name), Some(&name[..]));
        }
    }
}

/// `is_valid_host` as first written (split, then each part checked): the reference for the
/// one-pass version.
fn is_valid_host_reference(authority: &[u8]) -> bool {
    if authority.windows(2).any(|w| w == b"..") {
        return false;
    }
    let port = if let Some(rest) = authority.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let (literal, after) = rest.split_at(close);
        if !is_ip_literal(literal) {
            return false;
        }
        match after.get(1..).unwrap_or_default() {
            [] => None,
            [b':', port @ ..] => Some(port),
            _ => return false,
        }
    } else {
        let (host, port) = match authority.iter().position(|&b| b == b':') {
            Some(i) => (&authority[..i], Some(&authority[i + 1..])),
            None => (authority, None),
        };
        let mut rest = host;
        while let Some((&b, tail)) = rest.split_first() {
            rest = match (b, tail) {
                (b'%', [h1, h2, after @ ..])
                    if h1.is_ascii_hexdigit() && h2.is_ascii_hexdigit() =>
                {
                    after
                }
                (b'%', _) => return false,
                _ if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b) => tail,
                _ => return false,
            };
        }
        if host.is_empty() {
            return false;
        }
        port
    };
    port.map_or(true, is_port)
}

proptest::proptest! {
    #[test]
    fn host_check_agrees_with_the_reference(
        authority in proptest::collection::vec(
            proptest::sample::select(b"a1F.:%[]@-_~!$&'()*+,;=/ 9".to_vec()), 0..16),
    ) {
        proptest::prop_assert_eq!(
            is_valid_host(&authority),
            is_valid_host_reference(&authority),
            "{:?}", String::from_utf8_lossy(&authority)
        );
    }
}
