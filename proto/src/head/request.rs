//! Client request heads: parsing with httparse and validation.
//!
//! A proxy is the place where two parsers meet, so every ambiguity in a request head is a potential
//! smuggling vector: this module refuses anything the upstream could read differently, instead of
//! repairing it. The request line is parsed by hand (httparse cannot tell a 505 from a 400 and
//! accepts non-ASCII targets); the field lines are parsed by httparse, zero-copy: every `Bytes` in
//! the returned `RequestHead` is a slice of the received head, and its [`Headers`] are ranges of
//! it.
//!
//! # Order of checks
//!
//! The first failing check decides the [`RequestError`], always in this order:
//!
//! 0. Defensive size limits (also enforced by the scanner): request line (`RequestLineTooLong`,
//!    414), whole head (`HeadTooLarge`, 431).
//! 1. Request line, left to right: shape `method SP target SP version` (`MalformedRequestLine`),
//!    method is a token (`InvalidMethod`), target bytes (`InvalidTarget`), version syntax
//!    (`MalformedRequestLine`) then version support (`UnsupportedVersion`, 505), method policy
//!    (`MethodNotAllowed`, 405), target form (`AsteriskForm`, `InvalidTarget`, and
//!    `InvalidHost` for the authority of an absolute-form target).
//! 2. Field lines: obs-fold anywhere (`ObsFold`), then httparse and our own name/value checks in
//!    line order (`InvalidHeaderName`, `InvalidHeaderValue`, `BareCr`, `TooManyHeaders`); a
//!    missing final blank line is `InvalidHeaderName`, bytes after it `UnexpectedData`.
//!    Fields whose names hold `_` are then dropped unless `underscores_in_headers` is set.
//! 3. Host: `DuplicateHost`, `MissingHost` (HTTP/1.1), `InvalidHost`.
//! 4. Framing: `TransferEncodingOnHttp10`, `ContentLengthWithTransferEncoding`,
//!    `ChunkedNotFinal` / `UnsupportedTransferCoding` (501), `DuplicateContentLength`,
//!    `InvalidContentLength`, `BodyTooLarge` (413).

use std::net::Ipv6Addr;

use bytes::Bytes;

use super::swar::{bytes_below, bytes_equal, bytes_from_del, find_byte, word};
use super::{
    content_length, is_token, transfer_coding, trim_ows, BodyFraming, ConnectionOptions, FieldKind,
    Headers, LengthError, TransferCoding, Version,
};
use crate::config::Config;
use crate::error::RequestError;

/// A validated client request head.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// The method, as received (a valid token).
    pub method: Bytes,
    /// The request target, as received.
    pub target: Bytes,
    /// The target to send upstream, in origin-form (`/path?query`), or `*` for `OPTIONS *`.
    pub path: Bytes,
    /// The protocol version.
    pub version: Version,
    /// The received fields in order (minus fields dropped by policy, such as `_` in names).
    pub headers: Headers,
    /// The effective authority: an absolute-form target's authority, else the `Host` value.
    pub host: Option<Bytes>,
    /// How the request body is delimited: `None`, `Length` or `Chunked`.
    pub framing: BodyFraming,
    /// The options of the `Connection` fields.
    pub connection: ConnectionOptions,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
}

impl RequestHead {
    /// Whether the client wants its connection kept open after this exchange: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive` (RFC 9112 §9.3).
    pub fn wants_keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.connection.close,
            Version::Http10 => self.connection.keep_alive && !self.connection.close,
        }
    }

    /// Whether the method is idempotent (RFC 9110 §9.2.2), so that a request that never reached
    /// the upstream's application may be sent again.
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self.method.as_ref(),
            b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE"
        )
    }

    /// Whether the method is `name` (methods are case-sensitive).
    pub fn method_is(&self, name: &str) -> bool {
        self.method.as_ref() == name.as_bytes()
    }

    /// The value of the first field named `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.value(name)
    }
}

/// Parses and validates a complete request head (first line through the blank line).
///
/// `head` must start with the request line (leading empty lines already skipped) and end with the
/// blank line; lines may end in CRLF or a bare LF. Any byte sequence is handled without panicking;
/// checks run in the order documented in the [module docs](self).
pub fn parse_request_head(head: Bytes, config: &Config) -> Result<RequestHead, RequestError> {
    parse(head, config, false)
}

/// [`parse_request_head`] when the head is valid and its field section is plain (one that
/// `lines::parse` accepts: every line a valid `name: value` ending in CRLF or LF, the first blank
/// line exactly at the end, at most `max_headers` fields); `None` for anything else.
///
/// For a session that received a whole head in one read: a plain head has the same end and the
/// same limits whether or not the scanner looked for them first, so the scanner can be skipped.
pub(crate) fn parse_plain_request_head(head: Bytes, config: &Config) -> Option<RequestHead> {
    parse(head, config, true).ok()
}

/// Both of the above; `plain_only` refuses (with an error that is never shown) a field section
/// that `lines::parse` does not accept.
fn parse(head: Bytes, config: &Config, plain_only: bool) -> Result<RequestHead, RequestError> {
    let buf: &[u8] = &head;
    let newline = find_byte(buf, 0, b'\n').ok_or(RequestError::MalformedRequestLine)?;
    let (line, rest) = buf.split_at(newline);
    let fields = rest.get(1..).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > config.limits.max_request_line {
        return Err(RequestError::RequestLineTooLong);
    }
    if buf.len() > config.limits.max_head_bytes {
        return Err(RequestError::HeadTooLarge);
    }

    let request_line = parse_request_line(line)?;
    let headers = parse_fields(&head, fields, config, plain_only)?;
    let host = effective_host(&head, &headers, &request_line)?;
    let framing = body_framing(&headers, request_line.version, config)?;
    let connection = ConnectionOptions::from_headers(&headers);
    let expect_continue = headers
        .of_kind(FieldKind::Expect)
        .any(|f| f.value.eq_ignore_ascii_case(b"100-continue"));

    let RequestLine {
        method,
        target,
        version,
        form,
    } = request_line;
    let path = match form {
        TargetForm::Origin | TargetForm::Asterisk => head.slice_ref(target),
        TargetForm::Absolute { path, .. } => match path {
            AbsolutePath::Slice(p) => head.slice_ref(p),
            AbsolutePath::Root => Bytes::from_static(b"/"),
            AbsolutePath::RootThenQuery(q) => Bytes::from([&b"/"[..], q].concat()),
        },
    };
    Ok(RequestHead {
        method: head.slice_ref(method),
        target: head.slice_ref(target),
        path,
        version,
        headers,
        host,
        framing,
        connection,
        expect_continue,
    })
}

/// The request line, split and validated, borrowing from the head.
#[derive(Debug)]
struct RequestLine<'a> {
    method: &'a [u8],
    target: &'a [u8],
    version: Version,
    form: TargetForm<'a>,
}

/// The four request-target forms of RFC 9112 §3.2 (authority-form is refused).
#[derive(Debug)]
enum TargetForm<'a> {
    /// `/path?query`.
    Origin,
    /// `http://authority/path?query`: the authority replaces `Host`.
    Absolute {
        authority: &'a [u8],
        path: AbsolutePath<'a>,
    },
    /// `*`, for `OPTIONS` only.
    Asterisk,
}

/// The origin-form path of an absolute-form target.
#[derive(Debug)]
enum AbsolutePath<'a> {
    /// The target has a path (`/…`, with its query): sent as is.
    Slice(&'a [u8]),
    /// No path and no query: `/`.
    Root,
    /// No path but a query (`?…`): `/` followed by it (the only copy this module makes).
    RootThenQuery(&'a [u8]),
}

/// Splits and validates `method SP target SP version` (line terminator removed).
fn parse_request_line(line: &[u8]) -> Result<RequestLine<'_>, RequestError> {
    let first = line.iter().position(|&b| b == b' ');
    let last = line.iter().rposition(|&b| b == b' ');
    let (first, last) = match (first, last) {
        (Some(first), Some(last)) if first < last => (first, last),
        // No space, or a single one (HTTP/0.9 `GET /`).
        _ => return Err(RequestError::MalformedRequestLine),
    };
    let (method, after_method) = line.split_at(first);
    let (target_with_sp, version_with_sp) = after_method.split_at(last - first);
    let target = target_with_sp.get(1..).unwrap_or_default();
    let version = version_with_sp.get(1..).unwrap_or_default();
    if method.is_empty()
        || version.is_empty()
        || target.is_empty()
        || target.first() == Some(&b' ')
        || target.last() == Some(&b' ')
    {
        return Err(RequestError::MalformedRequestLine);
    }

    if !is_token(method) {
        return Err(RequestError::InvalidMethod);
    }
    // Visible ASCII only: no whitespace, CTL, DEL or obs-text; no fragment (CVE-2023-45539).
    if !is_visible_target(target) {
        return Err(RequestError::InvalidTarget);
    }
    let version = parse_version(version)?;
    if method == b"CONNECT" || method == b"TRACE" {
        return Err(RequestError::MethodNotAllowed);
    }
    let form = target_form(method, target)?;
    Ok(RequestLine {
        method,
        target,
        version,
        form,
    })
}

/// Whether every byte of `target` is visible ASCII (`0x21..=0x7e`) other than `#`, eight bytes
/// at a time.
fn is_visible_target(target: &[u8]) -> bool {
    let mut at = 0;
    while let Some(x) = word(target, at) {
        if bytes_below(x, 0x21) | bytes_from_del(x) | bytes_equal(x, b'#') != 0 {
            return false;
        }
        at += 8;
    }
    target
        .get(at..)
        .unwrap_or_default()
        .iter()
        .all(|&b| (0x21..=0x7e).contains(&b) && b != b'#')
}

/// `HTTP/` DIGIT `.` DIGIT, case-sensitive (RFC 9112 §2.3); only 1.0 and 1.1 are spoken.
fn parse_version(version: &[u8]) -> Result<Version, RequestError> {
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            match (major, minor) {
                (b'1', b'0') => Ok(Version::Http10),
                (b'1', b'1') => Ok(Version::Http11),
                _ => Err(RequestError::UnsupportedVersion),
            }
        }
        _ => Err(RequestError::MalformedRequestLine),
    }
}

/// Classifies a target whose bytes are already known to be visible ASCII.
fn target_form<'a>(method: &[u8], target: &'a [u8]) -> Result<TargetForm<'a>, RequestError> {
    if target == b"*" {
        return if method == b"OPTIONS" {
            Ok(TargetForm::Asterisk)
        } else {
            Err(RequestError::AsteriskForm)
        };
    }
    if target.first() == Some(&b'/') {
        return Ok(TargetForm::Origin);
    }
    let colon = target
        .iter()
        .position(|&b| b == b':')
        .ok_or(RequestError::InvalidTarget)?;
    let (scheme, rest) = target.split_at(colon);
    let rest = rest
        .strip_prefix(b"://")
        .ok_or(RequestError::InvalidTarget)?;
    if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
        return Err(RequestError::InvalidTarget);
    }
    let authority_end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if !is_valid_host(authority) {
        return Err(RequestError::InvalidHost);
    }
    let path = match tail.first() {
        None => AbsolutePath::Root,
        Some(b'?') => AbsolutePath::RootThenQuery(tail),
        Some(_) => AbsolutePath::Slice(tail),
    };
    Ok(TargetForm::Absolute { authority, path })
}

/// Parses the field lines (everything after the request line) into zero-copy fields.
fn parse_fields(
    head: &Bytes,
    fields: &[u8],
    config: &Config,
    plain_only: bool,
) -> Result<Headers, RequestError> {
    let max = config.limits.max_headers;
    let start = head.len().saturating_sub(fields.len());
    if let Some(headers) = super::lines::parse(head, start, max, !config.underscores_in_headers) {
        return Ok(headers);
    }
    if plain_only {
        return Err(RequestError::InvalidHeaderName);
    }
    // Not a plain valid field section: httparse decides. It validates every name as a token,
    // every value as field-vchar/SP/HTAB/obs-text, and refuses lines that start with whitespace;
    // `field_error` only runs to name the error.
    let parsed = super::with_header_slots(fields, max, |slots| {
        match httparse::parse_headers(fields, slots)? {
            httparse::Status::Complete((consumed, parsed)) => {
                Ok(Some((consumed, collect(head, parsed, config))))
            }
            httparse::Status::Partial => Ok(None),
        }
    });
    match parsed {
        // Bytes after the blank line: the caller's framing and ours disagree.
        Ok(Some((consumed, _))) if consumed != fields.len() => Err(RequestError::UnexpectedData),
        Ok(Some((_, headers))) => Ok(headers),
        // No blank line at the end: the last line is not a complete field line.
        Ok(None) => Err(RequestError::InvalidHeaderName),
        Err(e) => Err(field_error(fields, e)),
    }
}

/// The parsed fields as ranges of `head`, minus those dropped by policy.
fn collect(head: &Bytes, parsed: &[httparse::Header<'_>], config: &Config) -> Headers {
    let mut headers = Headers::with_capacity(head.clone(), parsed.len());
    for field in parsed {
        let name = field.name.as_bytes();
        // nginx `underscores_in_headers off` + `ignore_invalid_headers on`: drop silently.
        if !config.underscores_in_headers && name.contains(&b'_') {
            continue;
        }
        headers.push(name, trim_ows(field.value));
    }
    headers
}

/// Names the rule a field section broke, once httparse refused it. A fold is reported as such
/// whatever httparse said, since a fold can hide a whole line from one of two parsers.
fn field_error(fields: &[u8], error: httparse::Error) -> RequestError {
    for line in fields.split(|&b| b == b'\n') {
        match line.first() {
            None | Some(b'\r') => break,
            Some(b' ' | b'\t') => return RequestError::ObsFold,
            Some(_) => {}
        }
    }
    match error {
        httparse::Error::TooManyHeaders => RequestError::TooManyHeaders,
        httparse::Error::HeaderValue => RequestError::InvalidHeaderValue,
        httparse::Error::NewLine => RequestError::BareCr,
        _ => RequestError::InvalidHeaderName,
    }
}

/// Checks the `Host` fields and picks the effective authority (RFC 9112 §3.2.2: an absolute-form
/// target's authority wins over `Host`).
fn effective_host(
    head: &Bytes,
    headers: &Headers,
    line: &RequestLine<'_>,
) -> Result<Option<Bytes>, RequestError> {
    let mut hosts = headers.of_kind(FieldKind::Host);
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(RequestError::DuplicateHost);
    }
    match host {
        None if line.version == Version::Http11 => return Err(RequestError::MissingHost),
        Some(field) if !is_valid_host(field.value) => return Err(RequestError::InvalidHost),
        _ => {}
    }
    Ok(match line.form {
        TargetForm::Absolute { authority, .. } => Some(head.slice_ref(authority)),
        _ => host.map(|f| headers.share(f.value)),
    })
}

/// Decides how the body is delimited (RFC 9112 §6.3), refusing every ambiguous combination.
fn body_framing(
    headers: &Headers,
    version: Version,
    config: &Config,
) -> Result<BodyFraming, RequestError> {
    let coding = transfer_coding(headers);
    if coding != TransferCoding::Absent {
        if version == Version::Http10 {
            return Err(RequestError::TransferEncodingOnHttp10);
        }
        if headers.has(FieldKind::ContentLength) {
            return Err(RequestError::ContentLengthWithTransferEncoding);
        }
        return match coding {
            TransferCoding::Chunked => Ok(BodyFraming::Chunked),
            TransferCoding::ChunkedNotFinal => Err(RequestError::ChunkedNotFinal),
            _ => Err(RequestError::UnsupportedTransferCoding),
        };
    }
    match content_length(headers) {
        Ok(None) => Ok(BodyFraming::None),
        Ok(Some(n)) if config.limits.max_body_size.is_some_and(|max| n > max) => {
            Err(RequestError::BodyTooLarge)
        }
        Ok(Some(n)) => Ok(BodyFraming::Length(n)),
        Err(LengthError::Duplicate) => Err(RequestError::DuplicateContentLength),
        Err(LengthError::Invalid) => Err(RequestError::InvalidContentLength),
    }
}

/// `uri-host [":" port]` (RFC 9110 §7.2, RFC 3986 §3.2.2), stricter than the RFC in two ways:
/// the host is never empty and never holds `..` (as nginx). No userinfo: `@` is not allowed.
pub(crate) fn is_valid_host(authority: &[u8]) -> bool {
    if authority.first() != Some(&b'[') {
        return is_valid_name_and_port(authority);
    }
    if authority.windows(2).any(|w| w == b"..") {
        return false;
    }
    let rest = authority.get(1..).unwrap_or_default();
    let Some(close) = rest.iter().position(|&b| b == b']') else {
        return false;
    };
    let (literal, after) = rest.split_at(close);
    if !is_ip_literal(literal) {
        return false;
    }
    match after.get(1..).unwrap_or_default() {
        [] => true,
        [b':', port @ ..] => is_port(port),
        _ => false,
    }
}

/// `reg-name [":" port]` with a non-empty host and no `..`, in one pass over the bytes (this
/// runs for every request's `Host`).
fn is_valid_name_and_port(authority: &[u8]) -> bool {
    let mut at = 0;
    let mut after_dot = false;
    while let Some(&b) = authority.get(at) {
        match b {
            b':' => break,
            b'.' if after_dot => return false,
            b'%' => match authority.get(at + 1..at + 3) {
                Some([h1, h2]) if h1.is_ascii_hexdigit() && h2.is_ascii_hexdigit() => {
                    at += 3;
                    after_dot = false;
                    continue;
                }
                _ => return false,
            },
            _ if REG_NAME[usize::from(b)] => {}
            _ => return false,
        }
        after_dot = b == b'.';
        at += 1;
    }
    match authority.get(at..).unwrap_or_default() {
        _ if at == 0 => false,
        [] => true,
        [_colon, port @ ..] => is_port(port),
    }
}

/// The bytes a `reg-name` holds besides `%` escapes: unreserved and sub-delims.
static REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        // `b < 256`, so the cast is exact.
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        b += 1;
    }
    table
};

/// `1*5DIGIT`, at most 65535.
fn is_port(port: &[u8]) -> bool {
    (1..=5).contains(&port.len())
        && port.iter().all(u8::is_ascii_digit)
        && port.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 65535
}

/// The inside of `[…]`: an IPv6 address or `v` 1*HEXDIG `.` 1*( unreserved / sub-delims / `:` ).
fn is_ip_literal(literal: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = literal {
        let Some(dot) = rest.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, tail) = rest.split_at(dot);
        let tail = tail.get(1..).unwrap_or_default();
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail
                .iter()
                .all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':');
    }
    std::str::from_utf8(literal).is_ok_and(|s| s.parse::<Ipv6Addr>().is_ok())
}

/// RFC 3986 `unreserved`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 `sub-delims`.
fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
