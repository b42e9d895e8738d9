//! The field lines of one parsed head, stored as ranges of the head's bytes.
//!
//! A head holds a dozen fields or more, and every one of them is looked at several times (by the
//! validation of `Host` and framing, by the upgrade decision, by rewriting). Keeping each name and
//! value as its own `Bytes` would cost two reference-count updates per field to build and two to
//! drop; [`Headers`] instead keeps one `Bytes` of the whole head and, per field, the offsets of
//! its name and value plus the [`FieldKind`] of its name, classified once at parse time, so that
//! the later passes compare a byte instead of a name.

use std::fmt;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// The field names the core treats specially, classified once per field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Host,
    Connection,
    KeepAlive,
    ProxyConnection,
    Te,
    Trailer,
    TransferEncoding,
    ContentLength,
    Upgrade,
    Expect,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    SecWebSocketKey,
    SecWebSocketAccept,
    Other,
}

impl FieldKind {
    /// Classifies a field name (case-insensitive), dispatching on the length and first byte
    /// first so that most names cost one comparison at most.
    pub(crate) fn of(name: &[u8]) -> Self {
        let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
        let first = name.first().map_or(0, u8::to_ascii_lowercase);
        match (name.len(), first) {
            (2, b't') if is("te") => Self::Te,
            (4, b'h') if is("host") => Self::Host,
            (6, b'e') if is("expect") => Self::Expect,
            (7, b't') if is("trailer") => Self::Trailer,
            (7, b'u') if is("upgrade") => Self::Upgrade,
            (10, b'c') if is("connection") => Self::Connection,
            (10, b'k') if is("keep-alive") => Self::KeepAlive,
            (14, b'c') if is("content-length") => Self::ContentLength,
            (15, b'x') if is("x-forwarded-for") => Self::XForwardedFor,
            (16, b'p') if is("proxy-connection") => Self::ProxyConnection,
            (16, b'x') if is("x-forwarded-host") => Self::XForwardedHost,
            (17, b's') if is("sec-websocket-key") => Self::SecWebSocketKey,
            (17, b't') if is("transfer-encoding") => Self::TransferEncoding,
            (17, b'x') if is("x-forwarded-proto") => Self::XForwardedProto,
            (20, b's') if is("sec-websocket-accept") => Self::SecWebSocketAccept,
            _ => Self::Other,
        }
    }

    /// This kind's bit in [`Headers`]' set of present kinds.
    fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// Hop-by-hop or framing: never relayed as received, in either direction.
    pub(crate) fn is_hop_or_framing(self) -> bool {
        matches!(
            self,
            Self::Connection
                | Self::KeepAlive
                | Self::ProxyConnection
                | Self::Te
                | Self::Trailer
                | Self::TransferEncoding
                | Self::ContentLength
                | Self::Upgrade
        )
    }

    /// One of the `X-Forwarded-*` fields the proxy regenerates.
    pub(crate) fn is_forwarded(self) -> bool {
        matches!(
            self,
            Self::XForwardedFor | Self::XForwardedProto | Self::XForwardedHost
        )
    }
}

/// One field line as received: name case preserved, value trimmed of surrounding whitespace.
/// Borrowed from the [`Headers`] it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderField<'h> {
    /// The field name, as received.
    pub name: &'h [u8],
    /// The field value without leading or trailing SP/HTAB.
    pub value: &'h [u8],
    kind: FieldKind,
}

impl HeaderField<'_> {
    /// Whether this field's name is `name` (ASCII case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The kind of the name, classified when the field was stored.
    pub(crate) fn kind(&self) -> FieldKind {
        self.kind
    }
}

/// Where one field lies in the buffer of its [`Headers`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Span {
    name: Range<usize>,
    value: Range<usize>,
    kind: FieldKind,
    /// The line is exactly `name: value\r\n` in the buffer (the form the proxy writes), so it
    /// can be copied as it lies.
    canonical: bool,
}

/// The fields of one head, in order (minus any dropped by policy), zero-copy: one `Bytes` of
/// the head and the offsets of each name and value in it.
#[derive(Clone, Default)]
pub struct Headers {
    bytes: Bytes,
    spans: Vec<Span>,
    /// One bit per [`FieldKind`] present (`FieldKind::bit`): the checks that look for a kind
    /// most heads lack (`Transfer-Encoding`, `Expect`...) cost one test instead of a pass.
    kinds: u32,
}

impl Headers {
    /// Fields stored as slices of `bytes`, with room for `capacity` of them (see `push`).
    pub(crate) fn with_capacity(bytes: Bytes, capacity: usize) -> Self {
        Self {
            bytes,
            spans: Vec::with_capacity(capacity),
            kinds: 0,
        }
    }

    /// Appends the field whose name and value lie at `name` and `value` in the buffer given to
    /// `with_capacity` (ranges outside it read as empty). `canonical`: the line is exactly
    /// `name: value\r\n` there (the parser knows; see `Span::canonical`).
    pub(crate) fn push_span(&mut self, name: Range<usize>, value: Range<usize>, canonical: bool) {
        let kind = FieldKind::of(self.bytes.get(name.clone()).unwrap_or_default());
        self.kinds |= kind.bit();
        self.spans.push(Span {
            name,
            value,
            kind,
            canonical,
        });
    }

    /// Appends a field whose name and value are slices of the buffer given to `with_capacity`
    /// (a slice from elsewhere is ignored: it cannot be stored as a range).
    pub(crate) fn push(&mut self, name: &[u8], value: &[u8]) {
        if let (Some(name_at), Some(value_at)) = (self.offset_of(name), self.offset_of(value)) {
            let byte = |at: usize| self.bytes.get(at).copied();
            let canonical = !value.is_empty()
                && value_at.start == name_at.end.saturating_add(2)
                && byte(name_at.end) == Some(b':')
                && byte(name_at.end.saturating_add(1)) == Some(b' ')
                && byte(value_at.end) == Some(b'\r')
                && byte(value_at.end.saturating_add(1)) == Some(b'\n');
            let kind = FieldKind::of(name);
            self.kinds |= kind.bit();
            self.spans.push(Span {
                name: name_at,
                value: value_at,
                kind,
                canonical,
            });
        }
    }

    /// Headers holding copies of `fields` (names and values stored as given, not trimmed):
    /// for tests, and for heads built by hand.
    pub fn from_pairs<N, V>(fields: impl IntoIterator<Item = (N, V)>) -> Self
    where
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut bytes = BytesMut::new();
        let mut ranges = Vec::new();
        for (name, value) in fields {
            let (name, value) = (name.as_ref(), value.as_ref());
            let name_start = bytes.len();
            bytes.extend_from_slice(name);
            let value_start = bytes.len();
            bytes.extend_from_slice(value);
            ranges.push((name_start..value_start, value_start..bytes.len()));
        }
        let mut headers = Self::with_capacity(bytes.freeze(), ranges.len());
        for (name, value) in ranges {
            headers.push_span(name, value, false);
        }
        headers
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there is no field.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The field at `index` (in received order), if any.
    pub fn get(&self, index: usize) -> Option<HeaderField<'_>> {
        self.spans.get(index).map(|span| self.field(span))
    }

    /// Every field, in received order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            headers: self,
            spans: self.spans.iter(),
        }
    }

    /// The value of the first field named `name` (case-insensitive), if any.
    pub fn value(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|f| f.is(name)).map(|f| f.value)
    }

    /// The values of every field named `name` (case-insensitive), in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter().filter(move |f| f.is(name)).map(|f| f.value)
    }

    /// The fields of one kind, in order.
    pub(crate) fn of_kind(&self, kind: FieldKind) -> impl Iterator<Item = HeaderField<'_>> + '_ {
        // No field of `kind`: nothing to look through.
        let spans = if self.has(kind) { &self.spans[..] } else { &[] };
        spans
            .iter()
            .filter(move |span| span.kind == kind)
            .map(|span| self.field(span))
    }

    /// Whether some field is of `kind`.
    pub(crate) fn has(&self, kind: FieldKind) -> bool {
        self.kinds & kind.bit() != 0
    }

    /// `part` (a slice of a field of these headers) as a zero-copy `Bytes`; a slice from
    /// anywhere else is copied.
    pub(crate) fn share(&self, part: &[u8]) -> Bytes {
        match self.offset_of(part) {
            Some(range) => self.bytes.slice(range),
            None => Bytes::copy_from_slice(part),
        }
    }

    /// Writes the fields `keep` selects as `name: value\r\n` lines, in order. Consecutive
    /// lines that already have that form in the head are copied together, as they lie.
    pub(crate) fn write_lines(
        &self,
        out: &mut BytesMut,
        mut keep: impl FnMut(HeaderField<'_>) -> bool,
    ) {
        // The run of canonical lines not written yet, as a range of `self.bytes`.
        let mut run = 0..0;
        for span in &self.spans {
            if !keep(self.field(span)) {
                continue;
            }
            if span.canonical && !run.is_empty() && run.end == span.name.start {
                run.end = span.value.end.saturating_add(2);
                continue;
            }
            out.extend_from_slice(self.bytes.get(run.clone()).unwrap_or_default());
            run = 0..0;
            if span.canonical {
                run = span.name.start..span.value.end.saturating_add(2);
            } else {
                let field = self.field(span);
                out.extend_from_slice(field.name);
                out.extend_from_slice(b": ");
                out.extend_from_slice(field.value);
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(self.bytes.get(run).unwrap_or_default());
    }

    fn field(&self, span: &Span) -> HeaderField<'_> {
        HeaderField {
            name: self.bytes.get(span.name.clone()).unwrap_or_default(),
            value: self.bytes.get(span.value.clone()).unwrap_or_default(),
            kind: span.kind,
        }
    }

    /// Where `part` lies in `self.bytes`, if it is a slice of it (an empty `part` is the empty
    /// range at 0, wherever it points).
    fn offset_of(&self, part: &[u8]) -> Option<Range<usize>> {
        if part.is_empty() {
            return Some(0..0);
        }
        let base = self.bytes.as_ptr() as usize;
        let start = (part.as_ptr() as usize).checked_sub(base)?;
        let end = start.checked_add(part.len())?;
        (end <= self.bytes.len()).then_some(start..end)
    }
}

impl<'h> IntoIterator for &'h Headers {
    type Item = HeaderField<'h>;
    type IntoIter = Iter<'h>;

    fn into_iter(self) -> Iter<'h> {
        self.iter()
    }
}

/// The fields of [`Headers`], in order.
#[derive(Debug, Clone)]
pub struct Iter<'h> {
    headers: &'h Headers,
    spans: std::slice::Iter<'h, Span>,
}

impl<'h> Iterator for Iter<'h> {
    type Item = HeaderField<'h>;

    fn next(&mut self) -> Option<HeaderField<'h>> {
        self.spans.next().map(|span| self.headers.field(span))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.spans.next_back().map(|span| self.headers.field(span))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|field| {
                (
                    String::from_utf8_lossy(field.name),
                    String::from_utf8_lossy(field.value),
                )
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_ranges_of_the_head() {
        let head = Bytes::from_static(b"Host: a\r\nX-A:  b \r\n\r\n");
        let mut headers = Headers::with_capacity(head.clone(), 2);
        headers.push(&head[0..4], &head[6..7]);
        headers.push(&head[9..12], &head[15..16]);
        headers.push(b"Elsewhere", b"ignored");
        assert_eq!(headers, Headers::from_pairs([("Host", "a"), ("X-A", "b")]));
        assert_eq!(headers.value("x-a"), Some(&b"b"[..]));
        assert_eq!(headers.of_kind(FieldKind::Host).count(), 1);
        assert!(headers.has(FieldKind::Host) && !headers.has(FieldKind::Upgrade));
        let shared = headers.share(headers.get(1).expect("two fields").value);
        assert_eq!(shared.as_ptr(), head[15..].as_ptr(), "zero-copy");
        assert_eq!(headers.share(b"copy"), Bytes::from_static(b"copy"));
    }

    #[test]
    fn lines_are_written_as_the_proxy_writes_them_whatever_their_form() {
        let head =
            Bytes::from_static(b"A: 1\r\nB: 2\r\nC:3\r\nD: 4\nE: 5\r\nF: 6\r\nG: \r\nH: 8\r\n\r\n");
        let mut headers = Headers::with_capacity(head.clone(), 8);
        let mut lines = head.split(|&b| b == b'\n');
        for _ in 0..8 {
            let line = lines.next().expect("eight lines");
            let colon = line.iter().position(|&b| b == b':').expect("a colon");
            let value = crate::head::trim_ows(&line[colon + 1..]);
            let value = value.strip_suffix(b"\r").unwrap_or(value);
            headers.push(&line[..colon], value);
        }
        for skip in [None, Some(b"A"), Some(b"B"), Some(b"E"), Some(b"H")] {
            let mut out = BytesMut::new();
            headers.write_lines(&mut out, |f| Some(f.name) != skip.map(|s| &s[..]));
            let mut want = BytesMut::new();
            for f in headers
                .iter()
                .filter(|f| Some(f.name) != skip.map(|s| &s[..]))
            {
                want.extend_from_slice(&[f.name, b": ", f.value, b"\r\n"].concat());
            }
            assert_eq!(out, want, "skipping {skip:?}");
        }
    }

    #[test]
    fn kinds_match_names_in_any_case() {
        for (name, kind) in [
            ("HOST", FieldKind::Host),
            ("sec-WebSocket-key", FieldKind::SecWebSocketKey),
            ("Sec-WebSocket-Accept", FieldKind::SecWebSocketAccept),
            ("transfer-encodinG", FieldKind::TransferEncoding),
            ("X-Forwarded-For", FieldKind::XForwardedFor),
            ("hosts", FieldKind::Other),
            ("", FieldKind::Other),
        ] {
            assert_eq!(FieldKind::of(name.as_bytes()), kind, "{name}");
        }
    }
}
