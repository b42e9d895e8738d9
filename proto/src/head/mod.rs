//! Message heads: the shared vocabulary (fields, versions, list syntax) and the parsers.
//!
//! A head travels through three steps: `scan` finds where it ends (in O(n) over a growing
//! buffer, enforcing the size limits before anything is parsed), [`request`] / [`response`] parse
//! and validate the complete head with httparse, and `rewrite` serializes the head that goes out.
//! Fields are [`Headers`]: ranges of the received head, so nothing is copied (nor reference
//! counted per field) until serialization.

mod fields;
mod lines;
pub mod request;
pub mod response;
pub(crate) mod scan;
mod swar;

use bytes::Bytes;

pub(crate) use fields::FieldKind;
pub use fields::{HeaderField, Headers, Iter};

/// The HTTP versions the proxy speaks. Anything else is refused with 505.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

impl Version {
    /// The version as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http10 => "HTTP/1.0",
            Self::Http11 => "HTTP/1.1",
        }
    }
}

/// How a message body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the sender closes (responses only).
    CloseDelimited,
}

/// What a `Connection` field (all of its lines together) says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// The `close` option is present.
    pub close: bool,
    /// The `keep-alive` option is present.
    pub keep_alive: bool,
    /// The `upgrade` option is present.
    pub upgrade: bool,
    /// The values of the `Connection` lines (zero-copy), kept only when some option is not one
    /// of the three above (the usual head needs no allocation here).
    values: Vec<Bytes>,
}

impl ConnectionOptions {
    /// Collects the options of every `Connection` field in `headers`.
    pub fn from_headers(headers: &Headers) -> Self {
        let mut options = Self::default();
        let mut others = false;
        for field in headers.of_kind(FieldKind::Connection) {
            for token in list_elements(field.value) {
                if token.eq_ignore_ascii_case(b"close") {
                    options.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    options.keep_alive = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    options.upgrade = true;
                } else {
                    others = true;
                }
            }
        }
        if others {
            options.values = headers
                .of_kind(FieldKind::Connection)
                .map(|field| headers.share(field.value))
                .collect();
        }
        options
    }

    /// The options other than `close`, `keep-alive` and `upgrade` (those are the flags), as
    /// received: each names a hop-by-hop field to remove.
    pub fn others(&self) -> impl Iterator<Item = &[u8]> {
        self.values
            .iter()
            .flat_map(|v| list_elements(v))
            .filter(|t| {
                !t.eq_ignore_ascii_case(b"close")
                    && !t.eq_ignore_ascii_case(b"keep-alive")
                    && !t.eq_ignore_ascii_case(b"upgrade")
            })
    }

    /// [`nominates`](Self::nominates) for a field of parsed headers: its kind, worked out at
    /// parse time, stands for the comparisons with `upgrade` and `keep-alive`.
    #[inline]
    pub(crate) fn nominates_field(&self, field: &HeaderField<'_>) -> bool {
        (self.upgrade && field.kind() == FieldKind::Upgrade)
            || (self.keep_alive && field.kind() == FieldKind::KeepAlive)
            || (self.close && field.name.eq_ignore_ascii_case(b"close"))
            || (!self.values.is_empty() && self.nominates_other(field.name))
    }

    /// Whether `name` is one of [`others`](Self::others).
    #[inline(never)]
    fn nominates_other(&self, name: &[u8]) -> bool {
        self.others().any(|t| t.eq_ignore_ascii_case(name))
    }

    /// Whether the field `name` was nominated as hop-by-hop (case-insensitive).
    pub fn nominates(&self, name: &[u8]) -> bool {
        (self.upgrade && name.eq_ignore_ascii_case(b"upgrade"))
            || (self.keep_alive && name.eq_ignore_ascii_case(b"keep-alive"))
            || (self.close && name.eq_ignore_ascii_case(b"close"))
            || (!self.values.is_empty() && self.others().any(|t| t.eq_ignore_ascii_case(name)))
    }
}

/// The elements of a comma-separated list value (RFC 9110 §5.6.1): OWS trimmed, empty elements
/// skipped.
pub fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// `value` without leading and trailing SP/HTAB.
pub fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// Whether `b` is a `tchar` (RFC 9110 §5.6.2).
pub const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`'
        | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// Whether `s` is a non-empty `token`.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Header slots parsed on the stack before falling back to the heap.
const STACK_FIELDS: usize = 32;

/// Runs `parse` with at most `max` httparse header slots: 32 on the stack first (no allocation,
/// little to initialize) and, only if they are not enough, a heap array bounded by the number of
/// lines of `head` (so a huge configured limit never becomes a huge allocation).
pub(crate) fn with_header_slots<'b, T>(
    head: &'b [u8],
    max: usize,
    mut parse: impl FnMut(&mut [httparse::Header<'b>]) -> Result<T, httparse::Error>,
) -> Result<T, httparse::Error> {
    let mut stack = [httparse::EMPTY_HEADER; STACK_FIELDS];
    let first = parse(stack.get_mut(..max.min(STACK_FIELDS)).unwrap_or_default());
    match first {
        Err(httparse::Error::TooManyHeaders) if max > STACK_FIELDS => {
            let lines = head.iter().filter(|&&b| b == b'\n').count();
            let mut heap = vec![httparse::EMPTY_HEADER; max.min(lines)];
            parse(&mut heap)
        }
        other => other,
    }
}

/// Parses `Content-Length` values of all the given fields. `Ok(None)` when there is none.
///
/// Strict: exactly one field whose value is `1*DIGIT` that fits in u64. Identical duplicates and
/// comma lists are refused (`Duplicate`), as nginx does.
pub(crate) fn content_length(headers: &Headers) -> Result<Option<u64>, LengthError> {
    let mut found = None;
    for field in headers.of_kind(FieldKind::ContentLength) {
        if found.is_some() {
            return Err(LengthError::Duplicate);
        }
        let v = field.value;
        if v.contains(&b',') {
            return Err(LengthError::Duplicate);
        }
        if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
            return Err(LengthError::Invalid);
        }
        let mut n: u64 = 0;
        for &d in v.iter() {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or(LengthError::Invalid)?;
        }
        found = Some(n);
    }
    Ok(found)
}

/// Why `Content-Length` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LengthError {
    Duplicate,
    Invalid,
}

/// What the `Transfer-Encoding` fields say, strictly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransferCoding {
    /// No `Transfer-Encoding` field.
    Absent,
    /// Exactly one field whose value is `chunked` (case-insensitive).
    Chunked,
    /// `chunked` appears, but not as the only, final coding (or twice, or on two lines).
    ChunkedNotFinal,
    /// A coding other than chunked, with no `chunked` at all.
    Unsupported,
}

/// Classifies the `Transfer-Encoding` fields.
pub(crate) fn transfer_coding(headers: &Headers) -> TransferCoding {
    if !headers.has(FieldKind::TransferEncoding) {
        return TransferCoding::Absent;
    }
    let mut lines = 0;
    let mut elements: Vec<&[u8]> = Vec::new();
    for field in headers.of_kind(FieldKind::TransferEncoding) {
        lines += 1;
        // Keep empty elements visible: `chunked,` is not a clean single coding.
        elements.extend(field.value.split(|&b| b == b',').map(trim_ows));
    }
    if lines == 0 {
        return TransferCoding::Absent;
    }
    let chunked_at: Vec<usize> = elements
        .iter()
        .enumerate()
        .filter(|(_, e)| e.eq_ignore_ascii_case(b"chunked"))
        .map(|(i, _)| i)
        .collect();
    let last = elements.len().saturating_sub(1);
    match (lines, chunked_at.as_slice()) {
        (_, []) => TransferCoding::Unsupported,
        (1, [0]) if elements.len() == 1 => TransferCoding::Chunked,
        // `gzip, chunked`: chunked is final, but another coding is applied (RFC 9112 §6.1: 501).
        (1, [i]) if *i == last && elements[..last].iter().all(|e| is_token(e)) => {
            TransferCoding::Unsupported
        }
        // `chunked, gzip`, `chunked, chunked`, two lines, empty elements: faulty framing.
        _ => TransferCoding::ChunkedNotFinal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(list: &[(&str, &str)]) -> Headers {
        Headers::from_pairs(list.iter().copied())
    }

    #[test]
    fn content_length_is_strict() {
        assert_eq!(
            content_length(&fields(&[("Content-Length", "5")])),
            Ok(Some(5))
        );
        assert_eq!(content_length(&fields(&[])), Ok(None));
        for bad in [
            "+5",
            "-5",
            "0x5",
            "5Z",
            "5_0",
            "5.0",
            "5 5",
            "",
            "18446744073709551616",
        ] {
            assert_eq!(
                content_length(&fields(&[("Content-Length", bad)])),
                Err(LengthError::Invalid),
                "{bad:?}"
            );
        }
        assert_eq!(
            content_length(&fields(&[("Content-Length", "5"), ("content-length", "5")])),
            Err(LengthError::Duplicate)
        );
        assert_eq!(
            content_length(&fields(&[("Content-Length", "5, 5")])),
            Err(LengthError::Duplicate)
        );
        assert_eq!(
            content_length(&fields(&[("Content-Length", "18446744073709551615")])),
            Ok(Some(u64::MAX))
        );
    }

    #[test]
    fn transfer_coding_classification() {
        let tc = |v: &[&str]| {
            let list: Vec<(&str, &str)> = v.iter().map(|v| ("Transfer-Encoding", *v)).collect();
            transfer_coding(&fields(&list))
        };
        assert_eq!(tc(&[]), TransferCoding::Absent);
        assert_eq!(tc(&["chunked"]), TransferCoding::Chunked);
        assert_eq!(tc(&["CHUNKED"]), TransferCoding::Chunked);
        assert_eq!(tc(&["gzip"]), TransferCoding::Unsupported);
        assert_eq!(tc(&["chunk"]), TransferCoding::Unsupported);
        assert_eq!(tc(&["\"chunked\""]), TransferCoding::Unsupported);
        assert_eq!(tc(&["chunked;ext=val"]), TransferCoding::Unsupported);
        assert_eq!(tc(&["gzip, chunked"]), TransferCoding::Unsupported);
        assert_eq!(tc(&["gzip", "chunked"]), TransferCoding::ChunkedNotFinal);
        assert_eq!(tc(&["chunked, gzip"]), TransferCoding::ChunkedNotFinal);
        assert_eq!(tc(&["chunked, chunked"]), TransferCoding::ChunkedNotFinal);
        assert_eq!(tc(&["chunked", "chunked"]), TransferCoding::ChunkedNotFinal);
        assert_eq!(tc(&["chunked,"]), TransferCoding::ChunkedNotFinal);
    }

    #[test]
    fn connection_options_collect_all_lines() {
        let opts = ConnectionOptions::from_headers(&fields(&[
            ("Connection", ""),
            ("Connection", "X-Foo, Upgrade"),
            ("connection", "close"),
        ]));
        assert!(opts.upgrade && opts.close && !opts.keep_alive);
        assert!(opts.nominates(b"x-foo"));
        assert!(opts.nominates(b"X-FOO"));
    }

    #[test]
    fn trims_and_splits_lists() {
        assert_eq!(trim_ows(b" \ta b\t "), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        let v: Vec<&[u8]> = list_elements(b" a, ,b ,, c").collect();
        assert_eq!(v, vec![&b"a"[..], b"b", b"c"]);
    }
}
