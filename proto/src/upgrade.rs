//! The upgrade decision: what the client offered, and whether a 101 may start a tunnel.
//!
//! Once a tunnel starts, the proxy stops parsing: every later byte of the client connection goes
//! to the upstream unexamined. A tunnel that starts when it should not is therefore request
//! smuggling (the "SSRF-forged 101" of T088, h2c smuggling). nginx tunnels on any 101 as soon as
//! the client sent *some* `Upgrade` field (its source even says "TODO: prevent upgrade if not
//! requested or not possible"). Switchyard decides in two typed steps instead:
//!
//! 1. [`client_offer`] reads the request: only an HTTP/1.1 request with the `upgrade` connection
//!    option (RFC 9110 §7.8) and an allow-listed, well-formed protocol makes an [`UpgradeOffer`].
//!    `h2c` is never offered, and `websocket` only on `GET` (RFC 6455 §4.1). Without an offer the
//!    request is forwarded as a plain request (without `Upgrade`).
//! 2. [`accept_switch`] checks a 101 against that offer: HTTP/1.1, exactly one protocol, one the
//!    client offered, and (strict WebSocket mode) a matching `Sec-WebSocket-Accept`. Only then does
//!    it hand out an [`UpgradeAccepted`], the token that entering the tunnel requires.
//!
//! A 101 that fails the check is a 502, and the upstream connection is closed.

use bytes::Bytes;

use crate::config::Config;
use crate::error::ResponseError;
use crate::head::request::RequestHead;
use crate::head::response::ResponseHead;
use crate::head::{is_token, list_elements, FieldKind, Headers, Version};

/// The protocols a client offered to switch to that the proxy is willing to tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeOffer {
    /// The allowed `Upgrade` tokens, as the client wrote them, in its order.
    pub protocols: Vec<Bytes>,
    /// The client's `Sec-WebSocket-Key`, for strict WebSocket mode.
    pub websocket_key: Option<Bytes>,
}

impl UpgradeOffer {
    /// Whether `protocol` (a whole `name[/version]` token) is one of the offered protocols,
    /// compared ASCII case-insensitively.
    pub fn contains(&self, protocol: &[u8]) -> bool {
        self.protocols
            .iter()
            .any(|p| p.eq_ignore_ascii_case(protocol))
    }
}

/// Proof that a 101 was validated against the client's offer. Only [`accept_switch`] makes one,
/// and entering the tunnel requires one, so tunnelling an unvalidated 101 does not compile.
#[derive(Debug)]
pub struct UpgradeAccepted {
    protocol: Bytes,
}

impl UpgradeAccepted {
    /// The protocol switched to, as the upstream named it.
    pub fn protocol(&self) -> &[u8] {
        &self.protocol
    }

    /// [`protocol`](Self::protocol) as shared bytes (no copy).
    pub(crate) fn protocol_bytes(&self) -> Bytes {
        self.protocol.clone()
    }
}

/// What the client offered, filtered by the allow-list. `None`: this is not an upgrade request.
///
/// An offer needs HTTP/1.1, the `upgrade` connection option and at least one `Upgrade` element
/// that is a valid `token ["/" token]` allowed by [`Config::allows_upgrade`] (never `h2c`);
/// `websocket` counts only on `GET`. Duplicates (ignoring case) are kept once.
pub fn client_offer(request: &RequestHead, config: &Config) -> Option<UpgradeOffer> {
    if request.version != Version::Http11 || !request.connection.upgrade {
        return None;
    }
    let is_get = request.method_is("GET");
    let mut protocols: Vec<Bytes> = Vec::new();
    for field in request.headers.of_kind(FieldKind::Upgrade) {
        for element in list_elements(field.value) {
            let acceptable = is_protocol(element)
                && config.allows_upgrade(element)
                && (is_get || !is_websocket(element));
            if acceptable && !protocols.iter().any(|p| p.eq_ignore_ascii_case(element)) {
                protocols.push(request.headers.share(element));
            }
        }
    }
    if protocols.is_empty() {
        return None;
    }
    Some(UpgradeOffer {
        protocols,
        websocket_key: single_value(&request.headers, FieldKind::SecWebSocketKey),
    })
}

/// Validates a 101 against the offer.
///
/// - [`ResponseError::UnsolicitedSwitch`]: no offer was made, or the status is not 101.
/// - [`ResponseError::SwitchOnHttp10`]: the 101 is HTTP/1.0 (there is no 101 in HTTP/1.0).
/// - [`ResponseError::UpgradeMismatch`]: the 101's `Upgrade` fields do not hold exactly one
///   element, or that element is not (ignoring case) one of the offered protocols.
/// - [`ResponseError::WebSocketAcceptMismatch`]: strict WebSocket mode and `Sec-WebSocket-Accept`
///   is wrong. With the `websocket-accept` feature it must equal
///   `websocket_accept_value` of the client's key; without it, strict mode only requires
///   exactly one non-empty `Sec-WebSocket-Accept` field.
///
/// `Connection: upgrade` is not required in the 101: servers omit it in practice, and the
/// decision rests on the status and the `Upgrade` token.
pub fn accept_switch(
    offer: Option<&UpgradeOffer>,
    response: &ResponseHead,
    config: &Config,
) -> Result<UpgradeAccepted, ResponseError> {
    let offer = match offer {
        Some(offer) if response.status == 101 => offer,
        _ => return Err(ResponseError::UnsolicitedSwitch),
    };
    if response.version == Version::Http10 {
        return Err(ResponseError::SwitchOnHttp10);
    }
    let mut chosen: Option<&[u8]> = None;
    for field in response.headers.of_kind(FieldKind::Upgrade) {
        for element in list_elements(field.value) {
            if chosen.is_some() {
                return Err(ResponseError::UpgradeMismatch);
            }
            chosen = Some(element);
        }
    }
    let protocol = chosen.ok_or(ResponseError::UpgradeMismatch)?;
    if !offer.contains(protocol) {
        return Err(ResponseError::UpgradeMismatch);
    }
    if config.strict_websocket && is_websocket(protocol) {
        check_websocket_accept(offer, response)?;
    }
    Ok(UpgradeAccepted {
        protocol: response.headers.share(protocol),
    })
}

/// The `Sec-WebSocket-Accept` value a server must send for the client's `key` (RFC 6455 §4.2.2):
/// base64 of the SHA-1 of the key followed by the protocol's GUID.
#[cfg(feature = "websocket-accept")]
pub fn websocket_accept_value(key: &[u8]) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key);
    sha1.update(WEBSOCKET_GUID);
    base64(&sha1.digest().bytes())
}

/// The GUID RFC 6455 §1.3 appends to the key.
#[cfg(feature = "websocket-accept")]
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Strict mode: the 101's `Sec-WebSocket-Accept` matches the client's key.
#[cfg(feature = "websocket-accept")]
fn check_websocket_accept(
    offer: &UpgradeOffer,
    response: &ResponseHead,
) -> Result<(), ResponseError> {
    let key = offer
        .websocket_key
        .as_ref()
        .ok_or(ResponseError::WebSocketAcceptMismatch)?;
    let accept = single_value(&response.headers, FieldKind::SecWebSocketAccept)
        .ok_or(ResponseError::WebSocketAcceptMismatch)?;
    if accept.as_ref() == websocket_accept_value(key).as_bytes() {
        Ok(())
    } else {
        Err(ResponseError::WebSocketAcceptMismatch)
    }
}

/// Strict mode without SHA-1: the 101 carries exactly one non-empty `Sec-WebSocket-Accept`.
#[cfg(not(feature = "websocket-accept"))]
fn check_websocket_accept(
    _offer: &UpgradeOffer,
    response: &ResponseHead,
) -> Result<(), ResponseError> {
    match single_value(&response.headers, FieldKind::SecWebSocketAccept) {
        Some(_) => Ok(()),
        None => Err(ResponseError::WebSocketAcceptMismatch),
    }
}

/// The value of the only field of `kind`, if there is exactly one and it is not empty.
fn single_value(headers: &Headers, kind: FieldKind) -> Option<Bytes> {
    let mut fields = headers.of_kind(kind);
    match (fields.next(), fields.next()) {
        (Some(field), None) if !field.value.is_empty() => Some(headers.share(field.value)),
        _ => None,
    }
}

/// Whether `element` is a protocol: `token ["/" token]` (RFC 9110 §7.8).
fn is_protocol(element: &[u8]) -> bool {
    match element.iter().position(|&b| b == b'/') {
        None => is_token(element),
        Some(slash) => {
            let (name, version) = element.split_at(slash);
            is_token(name) && is_token(version.get(1..).unwrap_or_default())
        }
    }
}

/// Whether the protocol name (before any `/`) is `websocket`, ignoring case.
fn is_websocket(protocol: &[u8]) -> bool {
    let name = protocol.split(|&b| b == b'/').next().unwrap_or(protocol);
    name.eq_ignore_ascii_case(b"websocket")
}

/// Standard base64 with padding (RFC 4648 §4).
#[cfg(feature = "websocket-accept")]
fn base64(input: &[u8]) -> String {
    fn symbol(six: u32) -> char {
        // `six` is masked to 0..=63, so every arm's arithmetic stays in range.
        let six = (six & 0x3f) as u8;
        char::from(match six {
            0..=25 => b'A' + six,
            26..=51 => b'a' + (six - 26),
            52..=61 => b'0' + (six - 52),
            62 => b'+',
            _ => b'/',
        })
    }
    let mut out = String::with_capacity(input.len().div_ceil(3).saturating_mul(4));
    for chunk in input.chunks(3) {
        let mut group = [0u8; 3];
        for (slot, &b) in group.iter_mut().zip(chunk) {
            *slot = b;
        }
        let n = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        let symbols = chunk.len() + 1;
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            out.push(if i < symbols { symbol(n >> shift) } else { '=' });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::response::parse_response_head;
    use crate::head::{BodyFraming, ConnectionOptions};

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    #[cfg(feature = "websocket-accept")]
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    /// `⟨WS⟩` of the case catalogue, as fields.
    const WS: &[(&str, &str)] = &[
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ];
    /// `⟨101⟩` of the case catalogue.
    const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    /// A request head built directly (the request parser is tested on its own).
    fn request(method: &str, version: Version, fields: &[(&str, &str)]) -> RequestHead {
        let headers = Headers::from_pairs(fields.iter().copied());
        RequestHead {
            method: Bytes::copy_from_slice(method.as_bytes()),
            target: Bytes::from_static(b"/ws"),
            path: Bytes::from_static(b"/ws"),
            version,
            connection: ConnectionOptions::from_headers(&headers),
            headers,
            host: Some(Bytes::from_static(b"a")),
            framing: BodyFraming::None,
            expect_continue: false,
        }
    }

    fn response(head: &[u8]) -> ResponseHead {
        parse_response_head(Bytes::copy_from_slice(head), &Config::default())
            .expect("test responses are valid heads")
    }

    fn allowing(protocols: &[&str]) -> Config {
        Config {
            upgrade_protocols: protocols.iter().map(|p| (*p).to_owned()).collect(),
            ..Config::default()
        }
    }

    fn strict() -> Config {
        Config {
            strict_websocket: true,
            ..Config::default()
        }
    }

    fn protocols(offer: &Option<UpgradeOffer>) -> Option<Vec<&[u8]>> {
        offer
            .as_ref()
            .map(|o| o.protocols.iter().map(|p| p.as_ref()).collect())
    }

    /// `name: config, method version [fields] => Some([protocols]) | None;`
    macro_rules! offers {
        ($($name:ident: $config:expr, $method:literal $version:ident $fields:expr
            => $expected:expr;)*) => {$(
            #[test]
            fn $name() {
                let offer = client_offer(&request($method, Version::$version, $fields), &$config);
                let expected: Option<&[&str]> = $expected;
                let expected = expected.map(|e| e.iter().map(|p| p.as_bytes()).collect());
                assert_eq!(protocols(&offer), expected);
            }
        )*};
    }

    offers! {
        t084_a_websocket_get_is_offered: Config::default(), "GET" Http11 WS
            => Some(&["websocket"]);
        t088_a_websocket_post_is_not_offered: Config::default(), "POST" Http11 WS
            => None;
        t088_a_websocket_head_is_not_offered: Config::default(), "HEAD" Http11 WS
            => None;
        methods_are_case_sensitive_for_the_get_rule: Config::default(), "get" Http11 WS
            => None;
        other_allowed_protocols_may_use_any_method: allowing(&["foo"]), "POST" Http11
            &[("Upgrade", "foo/2"), ("Connection", "upgrade")] => Some(&["foo/2"]);
        t096_upgrade_without_the_connection_option_is_not_an_offer: Config::default(), "GET" Http11
            &[("Upgrade", "websocket"), ("Sec-WebSocket-Key", KEY)] => None;
        t096_the_connection_option_without_upgrade_is_not_an_offer: Config::default(), "GET" Http11
            &[("Connection", "upgrade")] => None;
        the_connection_option_may_share_a_list: Config::default(), "GET" Http11
            &[("Connection", "keep-alive, UPGRADE"), ("Upgrade", "websocket")] => Some(&["websocket"]);
        an_http_10_request_is_not_an_offer: Config::default(), "GET" Http10 WS
            => None;
        t098_an_unknown_token_is_not_offered: Config::default(), "GET" Http11
            &[("Connection", "Upgrade"), ("Upgrade", "totally-made-up/1.0")] => None;
        t098_a_tls_token_is_not_offered: Config::default(), "GET" Http11
            &[("Connection", "Upgrade"), ("Upgrade", "TLS/1.0")] => None;
        h2c_is_never_offered: Config::default(), "GET" Http11
            &[("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c")] => None;
        h2c_is_never_offered_even_when_configured: allowing(&["h2c", "websocket"]), "GET" Http11
            &[("Connection", "Upgrade"), ("Upgrade", "h2c")] => None;
        a_mixed_list_keeps_only_websocket: Config::default(), "GET" Http11
            &[("Connection", "Upgrade"), ("Upgrade", "h2c, websocket")] => Some(&["websocket"]);
        the_case_the_client_wrote_is_kept: Config::default(), "GET" Http11
            &[("Connection", "Upgrade"), ("Upgrade", "WebSocket")] => Some(&["WebSocket"]);
        a_versioned_websocket_is_offered_whole: Config::default(), "GET" Http11
            &[("Connection", "Upgrade"), ("Upgrade", "websocket/13")] => Some(&["websocket/13"]);
        elements_of_all_upgrade_lines_are_collected_in_order: allowing(&["foo", "websocket"]), "GET" Http11
            &[("Connection", "Upgrade"), ("Upgrade", "foo"), ("upgrade", " , websocket ,")]
            => Some(&["foo", "websocket"]);
        duplicates_are_kept_once: Config::default(), "GET" Http11
            &[("Connection", "Upgrade"), ("Upgrade", "websocket, WEBSOCKET")] => Some(&["websocket"]);
        malformed_protocols_are_not_offered: Config::default(), "GET" Http11
            &[("Connection", "Upgrade"),
              ("Upgrade", "websocket/, /13, websocket/13/1, \"websocket\", web socket, websocket;v=1")]
            => None;
        an_empty_upgrade_value_is_not_an_offer: Config::default(), "GET" Http11
            &[("Connection", "Upgrade"), ("Upgrade", "")] => None;
    }

    #[test]
    fn the_websocket_key_is_kept_only_when_sent_once() {
        let key = |fields: &[(&str, &str)]| {
            let mut all = vec![("Upgrade", "websocket"), ("Connection", "upgrade")];
            all.extend_from_slice(fields);
            client_offer(&request("GET", Version::Http11, &all), &Config::default())
                .expect("an offer")
                .websocket_key
        };
        assert_eq!(
            key(&[("Sec-WebSocket-Key", KEY)]).as_deref(),
            Some(KEY.as_bytes())
        );
        assert_eq!(key(&[]), None);
        assert_eq!(key(&[("Sec-WebSocket-Key", "")]), None);
        assert_eq!(
            key(&[("Sec-WebSocket-Key", KEY), ("sec-websocket-key", KEY)]),
            None
        );
    }

    /// The offer of T084's request.
    fn ws_offer() -> UpgradeOffer {
        client_offer(&request("GET", Version::Http11, WS), &Config::default()).expect("an offer")
    }

    fn foo_offer() -> UpgradeOffer {
        UpgradeOffer {
            protocols: vec![Bytes::from_static(b"foo")],
            websocket_key: None,
        }
    }

    /// `name: offer, config, response => Ok("protocol") | Err(Variant);`
    macro_rules! switches {
        ($($name:ident: $offer:expr, $config:expr, $response:expr => $expected:expr;)*) => {$(
            #[test]
            fn $name() {
                let offer: Option<UpgradeOffer> = $offer;
                let result = accept_switch(offer.as_ref(), &response($response), &$config);
                let expected: Result<&str, ResponseError> = $expected;
                assert_eq!(
                    result.map(|a| a.protocol().to_vec()),
                    expected.map(|p| p.as_bytes().to_vec())
                );
            }
        )*};
    }

    switches! {
        t084_the_baseline_switch_is_accepted: Some(ws_offer()), Config::default(), SWITCH
            => Ok("websocket");
        t084_the_baseline_switch_is_accepted_in_strict_mode: Some(ws_offer()), strict(), SWITCH
            => Ok("websocket");
        t086_a_200_is_not_a_switch: Some(ws_offer()), Config::default(),
            b"HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 2\r\n\r\n"
            => Err(ResponseError::UnsolicitedSwitch);
        an_interim_100_is_not_a_switch: Some(ws_offer()), Config::default(),
            b"HTTP/1.1 100 Continue\r\n\r\n" => Err(ResponseError::UnsolicitedSwitch);
        t088_a_101_without_an_offer_is_unsolicited: None, Config::default(),
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n" => Err(ResponseError::UnsolicitedSwitch);
        t096_a_full_101_without_an_offer_is_unsolicited: None, Config::default(), SWITCH
            => Err(ResponseError::UnsolicitedSwitch);
        t090_a_wrong_accept_is_relayed_when_not_strict: Some(ws_offer()), Config::default(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"
            => Ok("websocket");
        t090_a_101_in_http_10_is_refused: Some(ws_offer()), Config::default(),
            b"HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            => Err(ResponseError::SwitchOnHttp10);
        a_101_without_upgrade_is_a_mismatch: Some(ws_offer()), Config::default(),
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n"
            => Err(ResponseError::UpgradeMismatch);
        a_101_with_an_empty_upgrade_is_a_mismatch: Some(ws_offer()), Config::default(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: \r\n\r\n"
            => Err(ResponseError::UpgradeMismatch);
        a_101_to_a_protocol_not_offered_is_a_mismatch: Some(ws_offer()), Config::default(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"
            => Err(ResponseError::UpgradeMismatch);
        a_101_naming_two_protocols_is_a_mismatch: Some(ws_offer()), Config::default(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket, foo\r\n\r\n"
            => Err(ResponseError::UpgradeMismatch);
        a_101_with_two_upgrade_lines_is_a_mismatch: Some(ws_offer()), Config::default(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nUpgrade: websocket\r\n\r\n"
            => Err(ResponseError::UpgradeMismatch);
        a_101_adding_a_version_is_a_mismatch: Some(ws_offer()), Config::default(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket/13\r\n\r\n"
            => Err(ResponseError::UpgradeMismatch);
        the_token_matches_ignoring_case_and_keeps_the_upstream_spelling: Some(ws_offer()), Config::default(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n\r\n"
            => Ok("WebSocket");
        connection_upgrade_is_not_required_in_the_101: Some(ws_offer()), Config::default(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
            => Ok("websocket");
        strict_mode_requires_an_accept_field: Some(ws_offer()), strict(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
            => Err(ResponseError::WebSocketAcceptMismatch);
        strict_mode_refuses_an_empty_accept: Some(ws_offer()), strict(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept:\r\n\r\n"
            => Err(ResponseError::WebSocketAcceptMismatch);
        strict_mode_refuses_two_accept_fields: Some(ws_offer()), strict(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
            => Err(ResponseError::WebSocketAcceptMismatch);
        strict_mode_does_not_apply_to_other_protocols: Some(foo_offer()), strict(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\n\r\n"
            => Ok("foo");
    }

    #[cfg(feature = "websocket-accept")]
    switches! {
        t090_a_wrong_accept_is_refused_in_strict_mode: Some(ws_offer()), strict(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"
            => Err(ResponseError::WebSocketAcceptMismatch);
        strict_mode_refuses_a_switch_when_the_client_sent_no_key: Some(UpgradeOffer {
                protocols: vec![Bytes::from_static(b"websocket")],
                websocket_key: None,
            }), strict(), SWITCH
            => Err(ResponseError::WebSocketAcceptMismatch);
        the_accept_comparison_is_case_sensitive: Some(ws_offer()), strict(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Accept: S3PPLMBITXAQ9KYGZZHZRBK+XOO=\r\n\r\n"
            => Err(ResponseError::WebSocketAcceptMismatch);
    }

    #[cfg(not(feature = "websocket-accept"))]
    switches! {
        t090_without_sha1_strict_mode_only_needs_a_non_empty_accept: Some(ws_offer()), strict(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"
            => Ok("websocket");
    }

    #[test]
    fn t086_a_200_with_upgrade_fields_keeps_its_length_framing() {
        let head = response(
            b"HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 2\r\n\r\n",
        );
        assert_eq!(head.framing(false), BodyFraming::Length(2));
    }

    #[cfg(feature = "websocket-accept")]
    #[test]
    fn the_rfc_6455_sample_key_gives_the_sample_accept() {
        assert_eq!(websocket_accept_value(KEY.as_bytes()), ACCEPT);
    }

    #[cfg(feature = "websocket-accept")]
    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, output) in vectors {
            assert_eq!(base64(input.as_bytes()), output, "{input:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }
}
