//! Serializing the heads the proxy sends: upstream requests, and 101 / 1xx / final / error
//! responses to the client.
//!
//! The proxy never forwards a head as received. It writes its own, so that every framing and
//! connection-management field the next hop sees was generated here, from values the parsers
//! validated:
//! - hop-by-hop fields (`Connection` and every field it nominates, `Keep-Alive`,
//!   `Proxy-Connection`, `TE`, `Trailer`, `Upgrade`) and the framing fields (`Content-Length`,
//!   `Transfer-Encoding`) of the received head are dropped, and framing is regenerated from the
//!   decided [`BodyFraming`] (RFC 9110 §7.6.1, RFC 9112 §6). Nominated fields are dropped for every
//!   `Connection` line, empty ones included (CVE-2021-33197);
//! - `X-Forwarded-*` are regenerated *after* hop-by-hop removal, so a client's
//!   `Connection: X-Forwarded-For` cannot strip what the proxy adds (CVE-2022-31813);
//! - an upgrade request carries `Upgrade: <offered protocols>` and `Connection: upgrade`, the
//!   built-in equivalent of nginx's `map $http_upgrade $connection_upgrade`; other requests carry
//!   no `Connection` field (HTTP/1.1 keeps the upstream connection alive by default);
//! - the 101 sent to the client starts with `Connection: upgrade` and `Upgrade: <accepted>`, as
//!   nginx's does. Unlike nginx, the upstream's `Date` and `Server` are passed through (nginx hides
//!   them and writes its own; a sans-IO core has no clock and no product name to announce).
//!
//! Everything is written straight into the caller's `BytesMut`, with CRLF line ends and field name
//! case preserved; nothing is allocated per field.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use bytes::BytesMut;

use crate::config::{Config, HostHeader};
use crate::error::StatusCode;
use crate::head::request::RequestHead;
use crate::head::response::ResponseHead;
use crate::head::{BodyFraming, ConnectionOptions, FieldKind, Headers, Version};
use crate::rules::{HeaderAction, RuleContext};
use crate::upgrade::{UpgradeAccepted, UpgradeOffer};

/// Facts about the client connection that rewriting needs.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's address (`$remote_addr`, `X-Forwarded-For`).
    pub addr: Option<SocketAddr>,
    /// Whether the client connection is TLS (`$scheme`, `X-Forwarded-Proto`).
    pub secure: bool,
}

/// Appends `n` in decimal without allocating.
pub(crate) fn put_u64(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at = at.saturating_sub(1);
        if let Some(d) = digits.get_mut(at) {
            // n % 10 < 10, so the cast cannot truncate.
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

/// Appends an IP address as `$remote_addr` shows it (IPv6 without brackets). IPv4, the common
/// case, avoids the formatting machinery.
pub(crate) fn put_ip(out: &mut BytesMut, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // At most `255.255.255.255` (15 bytes, so every index is in bounds): written on the
            // stack, appended once.
            let mut text = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                let digits = [octet / 100, octet / 10 % 10, octet % 10];
                let skip = match octet {
                    0..=9 => 2,
                    10..=99 => 1,
                    _ => 0,
                };
                for d in &digits[skip..] {
                    text[len] = b'0' + d;
                    len += 1;
                }
            }
            out.extend_from_slice(&text[..len]);
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn put_status_line(out: &mut BytesMut, status: u16, reason: &[u8]) {
    out.extend_from_slice(b"HTTP/1.1 ");
    put_u64(out, u64::from(status));
    out.extend_from_slice(b" ");
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
}

fn put_framing(out: &mut BytesMut, framing: BodyFraming) {
    match framing {
        BodyFraming::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            put_u64(out, n);
            out.extend_from_slice(b"\r\n");
        }
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyFraming::None | BodyFraming::CloseDelimited => {}
    }
}

/// The first non-empty value of the fields of `kind` that survived hop-by-hop removal.
fn first_value<'h>(
    headers: &'h Headers,
    kind: FieldKind,
    connection: &ConnectionOptions,
) -> Option<&'h [u8]> {
    headers
        .of_kind(kind)
        .filter(|f| !f.value.is_empty())
        .find(|f| !connection.nominates(f.name))
        .map(|f| f.value)
}

/// The configured upstream authority, or `localhost` if it is not a valid `host[:port]`
/// ([`Config::validate`] refuses such a configuration; this keeps a head from being split by
/// one that was never validated).
fn upstream_authority(config: &Config) -> &[u8] {
    let authority = config.upstream_authority.as_bytes();
    if crate::head::request::is_valid_host(authority) {
        authority
    } else {
        b"localhost"
    }
}

/// Whether any rule at index `from` or later replaces or removes `name`.
fn suppressed_by_rules(config: &Config, from: usize, name: &[u8]) -> bool {
    config
        .header_rules
        .get(from..)
        .unwrap_or_default()
        .iter()
        .any(|rule| rule.suppresses(name))
}

/// Writes the upstream request head for `request`.
///
/// Order: request line (always `HTTP/1.1`), `Host`, the client's end-to-end fields in order,
/// framing from `framing`, `Upgrade` + `Connection: upgrade` when `offer` is given, the
/// `X-Forwarded-*` fields when [`Config::forwarded_headers`], then the output of
/// [`Config::header_rules`], then the blank line. A field a `Set`/`Remove` rule names is left out
/// wherever it would have been (a `Set` field is written in the rule's place; `Host` stays first).
pub fn write_upstream_request(
    request: &RequestHead,
    offer: Option<&UpgradeOffer>,
    framing: BodyFraming,
    client: &ClientInfo,
    config: &Config,
    out: &mut BytesMut,
) {
    let ctx = RuleContext {
        request,
        client,
        config,
        upgrading: offer.is_some(),
    };
    let rules = &config.header_rules;
    let has_rules = !rules.is_empty();
    let connection = &request.connection;

    out.reserve(
        request
            .path
            .len()
            .saturating_add(request.headers.len().saturating_mul(48))
            .saturating_add(256),
    );
    out.extend_from_slice(&request.method);
    out.extend_from_slice(b" ");
    out.extend_from_slice(&request.path);
    out.extend_from_slice(b" HTTP/1.1\r\n");

    // Host first. A `Set Host` rule wins; if it evaluates empty, fall back to our authority.
    out.extend_from_slice(b"Host: ");
    let wrote_host = match rules.iter().rev().find(|r| r.is_host()) {
        Some(rule) => rule.append_value(&ctx, out),
        None => match (&config.host_header, &request.host) {
            (HostHeader::Preserve, Some(host)) => {
                out.extend_from_slice(host);
                true
            }
            _ => false,
        },
    };
    if !wrote_host {
        out.extend_from_slice(upstream_authority(config));
    }
    out.extend_from_slice(b"\r\n");

    // The client's end-to-end fields.
    request.headers.write_lines(out, |field| {
        let kind = field.kind();
        let dropped = kind == FieldKind::Host
            || kind == FieldKind::Expect
            || kind.is_hop_or_framing()
            || (config.forwarded_headers && kind.is_forwarded())
            || connection.nominates_field(&field)
            || (has_rules && suppressed_by_rules(config, 0, field.name));
        !dropped
    });

    put_framing(out, framing);
    if let Some(offer) = offer {
        out.extend_from_slice(b"Upgrade: ");
        for (i, protocol) in offer.protocols.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(protocol);
        }
        out.extend_from_slice(b"\r\nConnection: upgrade\r\n");
    }

    if config.forwarded_headers {
        write_forwarded(request, client, config, out);
    }

    for (i, rule) in rules.iter().enumerate() {
        if rule.action() == HeaderAction::Remove || rule.is_host() {
            continue;
        }
        if suppressed_by_rules(config, i.saturating_add(1), rule.name().as_bytes()) {
            continue;
        }
        let start = out.len();
        out.extend_from_slice(rule.name().as_bytes());
        out.extend_from_slice(b": ");
        if rule.append_value(&ctx, out) {
            out.extend_from_slice(b"\r\n");
        } else {
            out.truncate(start);
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// `X-Forwarded-For`, `-Proto` and `-Host`, built from what survived hop-by-hop removal.
fn write_forwarded(
    request: &RequestHead,
    client: &ClientInfo,
    config: &Config,
    out: &mut BytesMut,
) {
    let connection = &request.connection;
    let trusted = client.addr.is_some_and(|a| config.is_trusted_proxy(a.ip()));
    let rules_drop = |name: &str| suppressed_by_rules(config, 0, name.as_bytes());

    if let Some(addr) = client.addr.filter(|_| !rules_drop("X-Forwarded-For")) {
        out.extend_from_slice(b"X-Forwarded-For: ");
        if trusted {
            let existing = request
                .headers
                .of_kind(FieldKind::XForwardedFor)
                .filter(|f| !f.value.is_empty() && !connection.nominates(f.name));
            for field in existing {
                out.extend_from_slice(field.value);
                out.extend_from_slice(b", ");
            }
        }
        put_ip(out, addr.ip());
        out.extend_from_slice(b"\r\n");
    }

    if !rules_drop("X-Forwarded-Proto") {
        let own: &[u8] = if client.secure { b"https" } else { b"http" };
        let proto = trusted
            .then(|| first_value(&request.headers, FieldKind::XForwardedProto, connection))
            .flatten()
            .unwrap_or(own);
        put_field(out, b"X-Forwarded-Proto", proto);
    }

    if !rules_drop("X-Forwarded-Host") {
        let existing = trusted
            .then(|| first_value(&request.headers, FieldKind::XForwardedHost, connection))
            .flatten();
        if let Some(host) = existing.or(request.host.as_deref()) {
            put_field(out, b"X-Forwarded-Host", host);
        }
    }
}

/// Relays the fields of a response minus hop-by-hop, framing and nominated fields.
fn put_end_to_end_fields(response: &ResponseHead, out: &mut BytesMut) {
    response.headers.write_lines(out, |field| {
        !field.kind().is_hop_or_framing() && !response.connection.nominates_field(&field)
    });
}

fn reserve_for(response: &ResponseHead, out: &mut BytesMut) {
    out.reserve(
        response
            .headers
            .len()
            .saturating_mul(48)
            .saturating_add(response.reason.len())
            .saturating_add(128),
    );
}

/// Writes the 101 head sent to the client.
///
/// `HTTP/1.1 101 <reason verbatim>`, `Connection: upgrade`, `Upgrade: <accepted protocol>`, then
/// the upstream's end-to-end fields in order (`Sec-WebSocket-*` byte for byte, so subprotocol and
/// extension negotiation survive; `Date` and `Server` too, unlike nginx).
pub fn write_switch_response(
    response: &ResponseHead,
    accepted: &UpgradeAccepted,
    out: &mut BytesMut,
) {
    write_switch_head(response, accepted.protocol(), out);
}

/// [`write_switch_response`] with the accepted protocol given as bytes.
pub(crate) fn write_switch_head(response: &ResponseHead, protocol: &[u8], out: &mut BytesMut) {
    reserve_for(response, out);
    put_status_line(out, 101, &response.reason);
    out.extend_from_slice(b"Connection: upgrade\r\n");
    put_field(out, b"Upgrade", protocol);
    put_end_to_end_fields(response, out);
    out.extend_from_slice(b"\r\n");
}

/// Writes a relayed 1xx (other than 101) head.
pub fn write_interim_response(response: &ResponseHead, out: &mut BytesMut) {
    reserve_for(response, out);
    put_status_line(out, response.status, &response.reason);
    put_end_to_end_fields(response, out);
    out.extend_from_slice(b"\r\n");
}

/// Writes a relayed final response head.
///
/// Framing is regenerated from `framing` (the caller's decision). With `BodyFraming::None`, a
/// response to `HEAD` or a 304 keeps the upstream's `Content-Length` value (it describes the
/// representation, not this message). `Connection: close` is added when the client connection
/// will not be kept alive, `Connection: keep-alive` when an HTTP/1.0 client's will.
pub fn write_final_response(
    response: &ResponseHead,
    framing: BodyFraming,
    client_version: Version,
    keep_alive: bool,
    out: &mut BytesMut,
) {
    reserve_for(response, out);
    put_status_line(out, response.status, &response.reason);
    put_end_to_end_fields(response, out);
    match (framing, response.content_length) {
        (BodyFraming::None, Some(n)) if response.status >= 200 && response.status != 204 => {
            put_framing(out, BodyFraming::Length(n));
        }
        _ => put_framing(out, framing),
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if client_version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes the proxy's own complete error response (head and body, `Connection: close`).
///
/// The body is `<code> <reason>\n` in `text/plain`; the answer to a `HEAD` request
/// (`head_request`) has the same head and no body (RFC 9110 §9.3.2).
pub fn write_error_response(status: StatusCode, head_request: bool, out: &mut BytesMut) {
    let reason = status.reason().as_bytes();
    let mut code = BytesMut::with_capacity(3);
    put_u64(&mut code, u64::from(status.0));
    let body_len = code.len().saturating_add(reason.len()).saturating_add(2);
    out.reserve(body_len.saturating_add(128));
    put_status_line(out, status.0, reason);
    out.extend_from_slice(b"Content-Type: text/plain\r\nContent-Length: ");
    put_u64(out, body_len as u64);
    out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    if head_request {
        return;
    }
    out.extend_from_slice(&code);
    out.extend_from_slice(b" ");
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\n");
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
