//! Upstream response heads: parsing with httparse, then validation.
//!
//! The upstream is trusted less than one would think: whatever it sends is relayed to a client
//! that may share a connection with others (through a downstream proxy), so a response with
//! ambiguous framing or a smuggled line break is response splitting. This module turns the bytes
//! of one complete head (found by `scan`) into a [`ResponseHead`] whose every field is known to be
//! well formed, and refuses everything else with a typed [`ResponseError`] (the client gets 502).
//!
//! The rules mirror nginx's upstream parser where nginx is strict (duplicate `Content-Length`,
//! `Content-Length` with `Transfer-Encoding`, any coding other than a lone `chunked`, a non-101
//! 1xx in HTTP/1.0) and are stricter where nginx is lenient: obs-fold, NUL and other control bytes
//! are refused rather than passed on, and a status outside 100..=599 is refused rather than
//! relayed. Underscores in field names are allowed, as nginx allows them from upstreams.
//!
//! Parsing is zero-copy: the reason phrase is a `Bytes` slice of the head, the fields are
//! [`Headers`] (ranges of it).

use bytes::Bytes;

use super::{
    content_length, transfer_coding, trim_ows, BodyFraming, ConnectionOptions, FieldKind, Headers,
    LengthError, TransferCoding, Version,
};
use crate::config::Config;
use crate::error::ResponseError;

/// A validated upstream response head.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// The protocol version of the status line.
    pub version: Version,
    /// The status code.
    pub status: u16,
    /// The reason phrase, as received (may be empty).
    pub reason: Bytes,
    /// The received fields in order.
    pub headers: Headers,
    /// The `Content-Length`, if any (validated).
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked` (validated as the single, final coding).
    pub chunked: bool,
    /// The options of the `Connection` fields.
    pub connection: ConnectionOptions,
}

impl ResponseHead {
    /// Whether the upstream lets its connection be reused after this response: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub fn allows_reuse(&self) -> bool {
        match self.version {
            Version::Http11 => !self.connection.close,
            Version::Http10 => self.connection.keep_alive && !self.connection.close,
        }
    }

    /// Whether this is an interim (1xx) response other than 101.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// How the body of this response is delimited, given whether the request was `HEAD`
    /// (RFC 9112 §6.3 rules 1, 4 and 6-8; rule 3's "invalid" cases never get this far).
    ///
    /// A 101 has no body: what follows it is the tunnel.
    pub fn framing(&self, request_was_head: bool) -> BodyFraming {
        if request_was_head || self.status < 200 || self.status == 204 || self.status == 304 {
            BodyFraming::None
        } else if self.chunked {
            BodyFraming::Chunked
        } else if let Some(n) = self.content_length {
            BodyFraming::Length(n)
        } else {
            BodyFraming::CloseDelimited
        }
    }

    /// The values of every field named `name` (ASCII case-insensitive), in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers.values(name)
    }
}

/// Parses and validates a complete response head (status line through the blank line).
///
/// `head` must hold exactly one head: leading empty lines are skipped (as RFC 9112 §2.2 allows),
/// but bytes after the blank line, or a head that does not end with one, are refused as
/// [`ResponseError::InvalidHead`]. Line ends may be CRLF or a bare LF. Never panics.
pub fn parse_response_head(head: Bytes, config: &Config) -> Result<ResponseHead, ResponseError> {
    parse(head, config, false)
}

/// [`parse_response_head`] when the head is valid and plain (a plain status line and a field
/// section `lines::parse` accepts: the first blank line exactly at the end, at most
/// `max_response_headers` fields); `None` for anything else.
///
/// For a session that received a whole head in one read: a plain head has the same end and the
/// same limits whether or not the scanner looked for them first, so the scanner can be skipped.
pub(crate) fn parse_plain_response_head(head: Bytes, config: &Config) -> Option<ResponseHead> {
    parse(head, config, true).ok()
}

/// Both of the above; `plain_only` refuses (with an error that is never shown) a head that
/// `plain_head` does not accept.
fn parse(head: Bytes, config: &Config, plain_only: bool) -> Result<ResponseHead, ResponseError> {
    if head.len() > config.limits.max_response_head_bytes {
        return Err(ResponseError::HeadTooLarge);
    }
    let buf: &[u8] = &head;
    let max = config.limits.max_response_headers;
    // httparse validates names as tokens, values as field-vchar/SP/HTAB/obs-text and refuses
    // folded lines; the fold check only runs to name the error. A plain head takes the one-pass
    // path, which accepts only what httparse accepts and yields the same parts.
    let parsed = match plain_head(&head, max) {
        Some(parsed) => Ok(Some(parsed)),
        None if plain_only => return Err(ResponseError::InvalidHead),
        None => parse_with_httparse(&head, max),
    };
    let (end, version, code, parsed_reason, headers) = match parsed {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Err(ResponseError::InvalidHead),
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::TooManyHeaders),
        Err(_) => {
            reject_obs_fold(&head)?;
            return Err(ResponseError::InvalidHead);
        }
    };
    if end != head.len() {
        return Err(ResponseError::InvalidHead);
    }

    let version = match version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(ResponseError::InvalidHead),
    };
    let status = code.ok_or(ResponseError::InvalidHead)?;
    if !(100..=599).contains(&status) {
        return Err(ResponseError::InvalidHead);
    }
    // nginx refuses a 103 in HTTP/1.0; no 1xx exists in HTTP/1.0. A 101 still parses, so that the
    // upgrade check can name the precise fault (`SwitchOnHttp10`).
    if version == Version::Http10 && status < 200 && status != 101 {
        return Err(ResponseError::InvalidHead);
    }
    // httparse's reason is the raw phrase unless it is empty (none, or one holding obs-text).
    let reason = match parsed_reason {
        Some(reason) if !reason.is_empty() => head.slice_ref(reason),
        _ => head.slice_ref(reason_phrase(buf)?),
    };

    let (content_length, chunked) = framing_fields(version, &headers)?;
    let connection = ConnectionOptions::from_headers(&headers);
    Ok(ResponseHead {
        version,
        status,
        reason,
        headers,
        content_length,
        chunked,
        connection,
    })
}

/// The parts of a head as httparse sees them: `(end, version, code, reason, headers)`.
type Parts<'a> = (usize, Option<u8>, Option<u16>, Option<&'a [u8]>, Headers);

/// A status line the way every server writes it (`HTTP/1.x SP 3DIGIT [SP reason]`, the reason
/// in VCHAR / SP / HTAB) followed by a plain field section ending exactly at the end of `head`:
/// its parts, the same httparse finds, without httparse. `None` for anything else.
fn plain_head(head: &Bytes, max: usize) -> Option<Parts<'_>> {
    let buf: &[u8] = head;
    let version = match buf.get(..9)? {
        b"HTTP/1.1 " => 1,
        b"HTTP/1.0 " => 0,
        _ => return None,
    };
    let code = match *buf.get(9..12)? {
        [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return None,
    };
    let (reason, fields) = match *buf.get(12)? {
        b' ' => {
            let len = buf
                .get(13..)?
                .iter()
                .position(|&b| !(b == b'\t' || (0x20..=0x7e).contains(&b)))?;
            let end = 13 + len;
            match buf.get(end..end + 2) {
                Some(b"\r\n") => (buf.get(13..end)?, end + 2),
                _ if buf.get(end) == Some(&b'\n') => (buf.get(13..end)?, end + 1),
                _ => return None,
            }
        }
        b'\n' => (&buf[..0], 13),
        b'\r' if buf.get(13) == Some(&b'\n') => (&buf[..0], 14),
        _ => return None,
    };
    let headers = super::lines::parse(head, fields, max, false)?;
    Some((buf.len(), Some(version), Some(code), Some(reason), headers))
}

/// The parts of `head` as httparse parses it.
fn parse_with_httparse(head: &Bytes, max: usize) -> Result<Option<Parts<'_>>, httparse::Error> {
    let buf: &[u8] = head;
    super::with_header_slots(buf, max, |slots| {
        let mut parsed = httparse::Response::new(slots);
        Ok(match parsed.parse(buf)? {
            httparse::Status::Complete(end) => Some((
                end,
                parsed.version,
                parsed.code,
                parsed.reason.map(str::as_bytes),
                collect(head, parsed.headers),
            )),
            httparse::Status::Partial => None,
        })
    })
}

/// The parsed fields as ranges of `head`, values trimmed.
fn collect(head: &Bytes, parsed: &[httparse::Header<'_>]) -> Headers {
    let mut headers = Headers::with_capacity(head.clone(), parsed.len());
    for field in parsed {
        headers.push(field.name.as_bytes(), trim_ows(field.value));
    }
    headers
}

/// Validates `Content-Length` and `Transfer-Encoding` together: `(content_length, chunked)`.
fn framing_fields(
    version: Version,
    headers: &Headers,
) -> Result<(Option<u64>, bool), ResponseError> {
    let coding = transfer_coding(headers);
    let has_length = headers.has(FieldKind::ContentLength);
    if coding != TransferCoding::Absent && has_length {
        return Err(ResponseError::ContentLengthWithTransferEncoding);
    }
    let chunked = match coding {
        TransferCoding::Absent => false,
        // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means the framing is faulty.
        TransferCoding::Chunked if version == Version::Http10 => {
            return Err(ResponseError::UnsupportedTransferCoding)
        }
        TransferCoding::Chunked => true,
        // nginx answers 502 to any coding but a lone `chunked` (T104); so do we.
        TransferCoding::ChunkedNotFinal | TransferCoding::Unsupported => {
            return Err(ResponseError::UnsupportedTransferCoding)
        }
    };
    let content_length = content_length(headers).map_err(|e| match e {
        LengthError::Duplicate => ResponseError::DuplicateContentLength,
        LengthError::Invalid => ResponseError::InvalidContentLength,
    })?;
    Ok((content_length, chunked))
}

/// Refuses a field line that starts with SP or HTAB (obs-fold, RFC 9112 §5.2), including one
/// right after the status line. httparse would report it as a bad name; the typed error is
/// clearer in logs.
fn reject_obs_fold(head: &[u8]) -> Result<(), ResponseError> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .skip_while(|line| line.is_empty());
    let _status_line = lines.next();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            return Err(ResponseError::ObsFold);
        }
    }
    Ok(())
}

/// The reason phrase of a status line httparse accepted, as a slice of `head`.
///
/// httparse returns an empty reason when it holds obs-text; the raw bytes are recovered here.
/// The line is `HTTP/1.x SP 3DIGIT [SP reason]` with single spaces, so the reason starts at
/// byte 13 of the line.
fn reason_phrase(head: &[u8]) -> Result<&[u8], ResponseError> {
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(ResponseError::InvalidHead)?;
    let rest = head.get(start..).ok_or(ResponseError::InvalidHead)?;
    let line = rest.split(|&b| b == b'\n').next().unwrap_or(rest);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let reason = line.get(13..).unwrap_or(&[]);
    if reason.iter().all(|&b| is_field_vchar(b)) {
        Ok(reason)
    } else {
        Err(ResponseError::InvalidHead)
    }
}

/// HTAB, SP, VCHAR or obs-text: what a field value or reason phrase may hold (no CTL, no DEL).
fn is_field_vchar(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<ResponseHead, ResponseError> {
        parse_response_head(Bytes::copy_from_slice(input), &Config::default())
    }

    fn value<'a>(head: &'a ResponseHead, name: &'a str) -> Option<&'a [u8]> {
        head.values(name).next()
    }

    /// `name: input => |head| checks;` – the head parses and the checks hold.
    macro_rules! parses {
        ($($name:ident: $input:expr => |$h:ident| $check:block)*) => {$(
            #[test]
            fn $name() {
                let $h = parse($input).expect("the head should parse");
                $check
            }
        )*};
    }

    /// `name: input => Variant;` – the head is refused with that error.
    macro_rules! refuses {
        ($($name:ident: $input:expr => $err:ident;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(parse($input).map(|_| ()), Err(ResponseError::$err));
            }
        )*};
    }

    parses! {
        a_plain_200_parses_with_all_its_parts: b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 2\r\n\r\n" => |h| {
            assert_eq!(h.version, Version::Http11);
            assert_eq!(h.status, 200);
            assert_eq!(h.reason.as_ref(), b"OK");
            assert_eq!(h.headers.len(), 2);
            assert_eq!(h.content_length, Some(2));
            assert!(!h.chunked);
            assert_eq!(h.framing(false), BodyFraming::Length(2));
        }
        a_101_without_reason_phrase_parses: b"HTTP/1.1 101\r\nUpgrade: websocket\r\n\r\n" => |h| {
            assert_eq!(h.status, 101);
            assert!(h.reason.is_empty());
            assert!(!h.is_interim());
        }
        a_status_line_with_an_empty_reason_after_the_space_parses: b"HTTP/1.1 204 \r\n\r\n" => |h| {
            assert!(h.reason.is_empty());
            assert_eq!(h.framing(false), BodyFraming::None);
        }
        a_reason_with_obs_text_is_kept_as_received: b"HTTP/1.1 200 \xc3\x9cberall gut\r\n\r\n" => |h| {
            assert_eq!(h.reason.as_ref(), b"\xc3\x9cberall gut");
        }
        a_reason_with_spaces_and_tabs_is_kept: b"HTTP/1.1 404 Not\tFound here\r\n\r\n" => |h| {
            assert_eq!(h.reason.as_ref(), b"Not\tFound here");
        }
        bare_lf_line_ends_are_accepted: b"HTTP/1.1 200 OK\nX-A: 1\n\n" => |h| {
            assert_eq!(value(&h, "x-a"), Some(&b"1"[..]));
            assert_eq!(h.framing(false), BodyFraming::CloseDelimited);
        }
        leading_empty_lines_are_skipped: b"\r\n\nHTTP/1.1 200 OK\r\n\r\n" => |h| {
            assert_eq!(h.reason.as_ref(), b"OK");
        }
        an_http_10_response_parses: b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n" => |h| {
            assert_eq!(h.version, Version::Http10);
            assert!(h.connection.keep_alive);
        }
        a_101_in_http_10_parses_so_the_upgrade_check_can_refuse_it: b"HTTP/1.0 101 Switching\r\n\r\n" => |h| {
            assert_eq!(h.version, Version::Http10);
            assert_eq!(h.status, 101);
        }
        underscores_in_names_are_allowed_from_upstreams: b"HTTP/1.1 200 OK\r\nX_Custom_Thing: yes\r\n\r\n" => |h| {
            assert_eq!(h.headers.get(0).map(|f| f.name), Some(&b"X_Custom_Thing"[..]));
        }
        values_are_trimmed_and_keep_inner_whitespace: b"HTTP/1.1 200 OK\r\nX-A: \t a  b \t\r\nX-B:\r\nX-C:    \r\n\r\n" => |h| {
            assert_eq!(value(&h, "X-A"), Some(&b"a  b"[..]));
            assert_eq!(value(&h, "X-B"), Some(&b""[..]));
            assert_eq!(value(&h, "X-C"), Some(&b""[..]));
        }
        values_may_hold_obs_text: b"HTTP/1.1 200 OK\r\nX-A: caf\xe9\r\n\r\n" => |h| {
            assert_eq!(value(&h, "x-a"), Some(&b"caf\xe9"[..]));
        }
        names_keep_their_case_and_order: b"HTTP/1.1 200 OK\r\nset-COOKIE: a\r\nSet-Cookie: b\r\n\r\n" => |h| {
            let values: Vec<&[u8]> = h.values("set-cookie").collect();
            assert_eq!(values, vec![&b"a"[..], b"b"]);
            assert_eq!(h.headers.get(0).map(|f| f.name), Some(&b"set-COOKIE"[..]));
        }
        a_lone_chunked_coding_is_chunked_framing: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n" => |h| {
            assert!(h.chunked);
            assert_eq!(h.framing(false), BodyFraming::Chunked);
            assert_eq!(h.framing(true), BodyFraming::None);
        }
        a_304_with_a_length_has_no_body: b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n" => |h| {
            assert_eq!(h.content_length, Some(10));
            assert_eq!(h.framing(false), BodyFraming::None);
        }
        a_100_is_interim_and_has_no_body: b"HTTP/1.1 100 Continue\r\n\r\n" => |h| {
            assert!(h.is_interim());
            assert_eq!(h.framing(false), BodyFraming::None);
        }
        a_103_in_http_11_is_interim: b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" => |h| {
            assert!(h.is_interim());
        }
        connection_options_are_collected: b"HTTP/1.1 200 OK\r\nConnection: close, X-Foo\r\n\r\n" => |h| {
            assert!(h.connection.close);
            assert!(h.connection.nominates(b"x-foo"));
        }
        a_200_with_upgrade_fields_is_still_a_length_framed_200_t086: b"HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 2\r\n\r\n" => |h| {
            assert_eq!(h.framing(false), BodyFraming::Length(2));
            assert!(!h.is_interim());
        }
        status_599_is_the_highest_accepted: b"HTTP/1.1 599 Odd\r\n\r\n" => |h| {
            assert_eq!(h.status, 599);
        }
    }

    refuses! {
        a_status_below_100_is_invalid: b"HTTP/1.1 99 Low\r\n\r\n" => InvalidHead;
        a_three_digit_status_below_100_is_invalid: b"HTTP/1.1 099 Low\r\n\r\n" => InvalidHead;
        a_status_above_599_is_invalid: b"HTTP/1.1 600 High\r\n\r\n" => InvalidHead;
        a_four_digit_status_is_invalid: b"HTTP/1.1 2000 OK\r\n\r\n" => InvalidHead;
        http_2_in_a_status_line_is_invalid: b"HTTP/2 200\r\n\r\n" => InvalidHead;
        http_1_2_is_invalid: b"HTTP/1.2 200 OK\r\n\r\n" => InvalidHead;
        an_icy_status_line_is_invalid: b"ICY 200 OK\r\n\r\n" => InvalidHead;
        a_lower_case_protocol_name_is_invalid: b"http/1.1 200 OK\r\n\r\n" => InvalidHead;
        two_spaces_before_the_status_are_invalid: b"HTTP/1.1  200 OK\r\n\r\n" => InvalidHead;
        a_tab_after_the_status_is_invalid: b"HTTP/1.1 200\tOK\r\n\r\n" => InvalidHead;
        a_nul_in_the_reason_is_invalid: b"HTTP/1.1 200 O\x00K\r\n\r\n" => InvalidHead;
        a_bare_cr_in_the_reason_is_invalid: b"HTTP/1.1 200 O\rK\r\n\r\n" => InvalidHead;
        a_103_in_http_10_is_invalid_as_nginx_says: b"HTTP/1.0 103 Early Hints\r\n\r\n" => InvalidHead;
        a_100_in_http_10_is_invalid: b"HTTP/1.0 100 Continue\r\n\r\n" => InvalidHead;
        an_empty_input_is_invalid: b"" => InvalidHead;
        a_head_without_its_blank_line_is_invalid: b"HTTP/1.1 200 OK\r\nX-A: 1\r\n" => InvalidHead;
        bytes_after_the_blank_line_are_invalid: b"HTTP/1.1 200 OK\r\n\r\nbody" => InvalidHead;
        obs_fold_is_refused_t106: b"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n" => ObsFold;
        a_tab_fold_is_refused: b"HTTP/1.1 200 OK\r\nX-A: 1\n\t2\n\n" => ObsFold;
        whitespace_before_the_first_field_is_refused: b"HTTP/1.1 200 OK\r\n X-A: 1\r\n\r\n" => ObsFold;
        a_bare_cr_in_a_value_is_invalid_t106: b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n" => InvalidHead;
        a_nul_in_a_value_is_invalid_t106: b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n" => InvalidHead;
        a_control_byte_in_a_value_is_invalid: b"HTTP/1.1 200 OK\r\nX-A: a\x1bb\r\n\r\n" => InvalidHead;
        a_del_in_a_value_is_invalid: b"HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\n\r\n" => InvalidHead;
        a_space_before_the_colon_is_invalid: b"HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n" => InvalidHead;
        a_line_without_a_colon_is_invalid: b"HTTP/1.1 200 OK\r\nX-A\r\n\r\n" => InvalidHead;
        an_empty_name_is_invalid: b"HTTP/1.1 200 OK\r\n: 1\r\n\r\n" => InvalidHead;
        a_non_token_name_is_invalid: b"HTTP/1.1 200 OK\r\nX(A): 1\r\n\r\n" => InvalidHead;
        a_non_ascii_name_is_invalid: b"HTTP/1.1 200 OK\r\nX-\xc3\xa9: 1\r\n\r\n" => InvalidHead;
        a_transfer_coding_other_than_chunked_is_refused_t104: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n" => UnsupportedTransferCoding;
        chunked_not_last_is_refused: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" => UnsupportedTransferCoding;
        chunked_after_another_coding_is_refused_like_nginx: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" => UnsupportedTransferCoding;
        two_transfer_encoding_lines_are_refused: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" => UnsupportedTransferCoding;
        chunked_in_an_http_10_response_is_refused: b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" => UnsupportedTransferCoding;
        length_and_chunked_together_are_refused: b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" => ContentLengthWithTransferEncoding;
        length_and_an_unknown_coding_together_are_refused: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n" => ContentLengthWithTransferEncoding;
        two_identical_lengths_are_refused: b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n" => DuplicateContentLength;
        a_length_list_is_refused: b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n" => DuplicateContentLength;
        a_signed_length_is_refused: b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n" => InvalidContentLength;
        an_overflowing_length_is_refused: b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n" => InvalidContentLength;
        an_empty_length_is_refused: b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n" => InvalidContentLength;
    }

    #[test]
    fn too_many_fields_are_refused_and_the_limit_itself_is_fine() {
        let mut config = Config::default();
        config.limits.max_response_headers = 2;
        let two = Bytes::from_static(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n");
        let three = Bytes::from_static(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
        assert!(parse_response_head(two, &config).is_ok());
        assert_eq!(
            parse_response_head(three, &config).map(|_| ()),
            Err(ResponseError::TooManyHeaders)
        );
        config.limits.max_response_headers = 0;
        let none = Bytes::from_static(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert!(parse_response_head(none, &config).is_ok());
    }

    #[test]
    fn a_head_over_the_byte_limit_is_too_large() {
        let mut config = Config::default();
        config.limits.max_response_head_bytes = 16;
        let head = Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(
            parse_response_head(head, &config).map(|_| ()),
            Err(ResponseError::HeadTooLarge)
        );
    }

    #[test]
    fn fields_are_slices_of_the_received_head() {
        let head = Bytes::from_static(b"HTTP/1.1 200 OK\r\nX-A: v\r\n\r\n");
        let range = head.as_ptr_range();
        let parsed = parse_response_head(head.clone(), &Config::default()).expect("parses");
        let field = parsed.headers.get(0).expect("one field");
        for part in [&parsed.reason[..], field.name, field.value] {
            assert!(range.contains(&part.as_ptr()), "{part:?} was copied");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Bytes that tend to matter to a head parser, so random heads get past the status line.
        fn head_byte() -> impl Strategy<Value = u8> {
            prop_oneof![
                4 => prop::sample::select(b"aZ09-_:;, \t\r\n".to_vec()),
                1 => any::<u8>(),
            ]
        }

        fn almost_a_head() -> impl Strategy<Value = Vec<u8>> {
            let start = prop::sample::select(vec![
                &b"HTTP/1.1 "[..],
                b"HTTP/1.0 ",
                b"HTTP/1.1 101",
                b"HTTP/1.1 200 OK\r\n",
                b"\r\nHTTP/1.1 204\n",
            ]);
            let end = prop::sample::select(vec![&b"\r\n\r\n"[..], b"\n\n", b"\r\n", b""]);
            (start, prop::collection::vec(head_byte(), 0..96), end).prop_map(|(s, mid, e)| {
                let mut v = s.to_vec();
                v.extend_from_slice(&mid);
                v.extend_from_slice(e);
                v
            })
        }

        fn check(input: Vec<u8>) {
            if let Ok(h) = parse(&input) {
                assert!((100..=599).contains(&h.status));
                let clean = |s: &[u8]| !s.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0));
                assert!(clean(&h.reason), "reason {:?}", h.reason);
                for f in h.headers.iter() {
                    assert!(crate::head::is_token(f.name), "name {:?}", f.name);
                    assert!(clean(f.value), "value {:?}", f.value);
                    assert_eq!(trim_ows(f.value), f.value);
                }
            }
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..256)) {
                check(input);
            }

            #[test]
            fn near_heads_never_panic_and_accepted_ones_are_clean(input in almost_a_head()) {
                check(input);
            }
        }
    }

    /// The one-pass path, where it answers, gives exactly httparse's parts.
    fn same_parts(input: &[u8], max: usize) {
        let head = Bytes::copy_from_slice(input);
        let Some(fast) = plain_head(&head, max) else {
            return;
        };
        let slow = parse_with_httparse(&head, max);
        let Ok(Some(slow)) = slow else {
            panic!(
                "{:?}: httparse says {slow:?}",
                String::from_utf8_lossy(input)
            );
        };
        assert_eq!(fast.0, slow.0);
        assert_eq!((fast.1, fast.2), (slow.1, slow.2));
        assert_eq!(fast.3.unwrap_or_default(), slow.3.unwrap_or_default());
        assert_eq!(fast.4, slow.4);
    }

    #[test]
    fn plain_heads_take_the_one_pass_path() {
        for input in [
            &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"[..],
            b"HTTP/1.0 200 OK\nA: b\n\n",
            b"HTTP/1.1 204\r\n\r\n",
            b"HTTP/1.1 204 \r\n\r\n",
            b"HTTP/1.1 200  two  spaces\t\r\n\r\n",
        ] {
            assert!(
                plain_head(&Bytes::from_static(input), 8).is_some(),
                "{input:?}"
            );
            same_parts(input, 8);
        }
        for input in [
            &b"\r\nHTTP/1.1 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 200 \xc3\x9c\r\n\r\n",
            b"HTTP/1.2 200 OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 200OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nextra",
        ] {
            assert!(
                plain_head(&Bytes::from_static(input), 8).is_none(),
                "{input:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn the_one_pass_path_agrees_with_httparse(
            version in proptest::sample::select(vec!["HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "http/1.1"]),
            code in "[0-9]{2,4}",
            reason in "( [ -~\t\u{80}]{0,12})?",
            eol in proptest::sample::select(vec!["\r\n", "\n", "\r"]),
            fields in "([A-Za-z_-]{1,6}:[ \t]?[ -~]{0,8}\r?\n){0,4}",
            end in proptest::sample::select(vec!["\r\n", "\n", "", "\r\nx"]),
            max in 0usize..5,
        ) {
            let input = format!("{version} {code}{reason}{eol}{fields}{end}");
            same_parts(input.as_bytes(), max);
        }
    }
}
