//! What the peers see: heads re-parsed with httparse (an independent parser, as the next hop
//! would use), and the byte-level properties every head the proxy writes must have.

use super::{Checked, Violation};

/// A head as httparse read it. Names and values are copies (the checks compare them freely).
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    /// Request method (empty for a response).
    pub(crate) method: Vec<u8>,
    /// Request target (empty for a response).
    pub(crate) path: Vec<u8>,
    /// Status code (0 for a request).
    pub(crate) status: u16,
    /// Minor version (`HTTP/1.x`).
    pub(crate) minor: u8,
    /// The fields, in order.
    pub(crate) fields: Vec<(Vec<u8>, Vec<u8>)>,
    /// Bytes the head took, blank line included.
    pub(crate) len: usize,
}

impl Parsed {
    /// How many fields are named `name` (ASCII case-insensitive).
    pub(crate) fn count(&self, name: &str) -> usize {
        self.values(name).count()
    }

    /// The values of the fields named `name`, in order.
    pub(crate) fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }

    /// The value of the only field named `name`, if there is exactly one.
    pub(crate) fn single<'s>(&'s self, name: &'s str) -> Option<&'s [u8]> {
        let mut values = self.values(name);
        match (values.next(), values.next()) {
            (Some(v), None) => Some(v),
            _ => None,
        }
    }
}

/// Slots for httparse: one per line is always enough.
fn slots(bytes: &[u8]) -> Vec<httparse::Header<'static>> {
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    vec![httparse::EMPTY_HEADER; lines + 1]
}

fn copy_fields(headers: &[httparse::Header<'_>]) -> Vec<(Vec<u8>, Vec<u8>)> {
    headers
        .iter()
        .map(|h| (h.name.as_bytes().to_vec(), h.value.to_vec()))
        .collect()
}

/// What parsing the start of a byte stream gave.
#[derive(Debug)]
pub(crate) enum Head {
    /// A complete head.
    Complete(Parsed),
    /// A valid prefix of a head.
    Partial,
}

/// Parses a request head at the start of `bytes` with httparse; an error is a violation.
pub(crate) fn request(bytes: &[u8], invariant: &'static str) -> Result<Head, Violation> {
    let mut headers = slots(bytes);
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => Ok(Head::Complete(Parsed {
            method: req.method.unwrap_or_default().as_bytes().to_vec(),
            path: req.path.unwrap_or_default().as_bytes().to_vec(),
            status: 0,
            minor: req.version.unwrap_or(0),
            fields: copy_fields(req.headers),
            len,
        })),
        Ok(httparse::Status::Partial) => Ok(Head::Partial),
        Err(e) => Err(Violation::new(
            invariant,
            format!("httparse refuses the request head ({e}): {:?}", show(bytes)),
        )),
    }
}

/// Parses a response head at the start of `bytes` with httparse; an error is a violation.
pub(crate) fn response(bytes: &[u8], invariant: &'static str) -> Result<Head, Violation> {
    let mut headers = slots(bytes);
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => Ok(Head::Complete(Parsed {
            method: Vec::new(),
            path: Vec::new(),
            status: resp.code.unwrap_or(0),
            minor: resp.version.unwrap_or(0),
            fields: copy_fields(resp.headers),
            len,
        })),
        Ok(httparse::Status::Partial) => Ok(Head::Partial),
        Err(e) => Err(Violation::new(
            invariant,
            format!(
                "httparse refuses the response head ({e}): {:?}",
                show(bytes)
            ),
        )),
    }
}

/// A whole head that must parse completely and take exactly `bytes`.
pub(crate) fn whole(
    bytes: &[u8],
    is_request: bool,
    invariant: &'static str,
) -> Result<Parsed, Violation> {
    let head = if is_request {
        request(bytes, invariant)?
    } else {
        response(bytes, invariant)?
    };
    match head {
        Head::Complete(p) if p.len == bytes.len() => Ok(p),
        Head::Complete(p) => Err(Violation::new(
            invariant,
            format!(
                "the head ends after {} of {} bytes: {:?}",
                p.len,
                bytes.len(),
                show(bytes)
            ),
        )),
        Head::Partial => Err(Violation::new(
            invariant,
            format!("the head is incomplete: {:?}", show(bytes)),
        )),
    }
}

/// Every line of a written head ends in CRLF: no bare LF, no CR without LF.
pub(crate) fn only_crlf(bytes: &[u8], invariant: &'static str) -> Checked {
    for (i, &b) in bytes.iter().enumerate() {
        let bad = match b {
            b'\n' => i == 0 || bytes[i - 1] != b'\r',
            b'\r' => bytes.get(i + 1) != Some(&b'\n'),
            _ => false,
        };
        if bad {
            return Err(Violation::new(
                invariant,
                format!("bare CR or LF at byte {i}: {:?}", show(bytes)),
            ));
        }
    }
    Ok(())
}

/// No CR, LF or NUL.
pub(crate) fn clean(bytes: &[u8]) -> bool {
    !bytes.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
}

/// RFC 9110 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A non-empty RFC 9110 `token`.
pub(crate) fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| is_tchar(b))
}

/// Where a head lies in a byte stream, by the rules of proto's scanner (RFC 9112 §2.2): leading
/// empty lines are skipped, lines end at LF (an optional CR before it), the head ends with the
/// first empty line after the first line, and a CR not followed by LF makes it no head at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Span {
    /// The head is `start..end` (`end` just past the blank line's LF).
    Complete { start: usize, end: usize },
    /// No blank line yet.
    Partial,
    /// A bare CR before the end of the head.
    Invalid,
}

/// Finds the first head in `bytes` (see [`Span`]).
pub(crate) fn find_head(bytes: &[u8]) -> Span {
    let mut start = None;
    let mut line_start = 0;
    let mut first = true;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\r' if bytes.get(i + 1).is_some_and(|&n| n != b'\n') => return Span::Invalid,
            b'\r' => {}
            b'\n' => {
                let Some(start) = start else {
                    line_start = i + 1;
                    continue;
                };
                let content = &bytes[line_start.max(start)..i];
                let content = content.strip_suffix(b"\r").unwrap_or(content);
                if !first && content.is_empty() {
                    return Span::Complete { start, end: i + 1 };
                }
                first = false;
                line_start = i + 1;
            }
            _ if start.is_none() => start = Some(i),
            _ => {}
        }
    }
    Span::Partial
}

/// Bytes shown as a string for messages (lossy, escaped), cut to a readable length.
pub(crate) fn show(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(600)];
    let mut s = String::new();
    for chunk in cut.utf8_chunks() {
        s.push_str(chunk.valid());
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > cut.len() {
        s.push_str(&format!("…(+{} bytes)", bytes.len() - cut.len()));
    }
    s
}

/// The core's fields of a head it accepted are exactly those httparse reads in the same bytes
/// (names, and values without surrounding whitespace), minus the names with `_` when
/// `drop_underscored`. The core parses plain field sections itself (`proto/src/head/lines.rs`)
/// and falls back to httparse for anything else: the two must never disagree on what a head
/// says. `httparse_view` is httparse's reading of the same bytes.
pub(crate) fn same_fields(
    invariant: &'static str,
    httparse_view: Result<Head, Violation>,
    core: impl Iterator<Item = (Vec<u8>, Vec<u8>)>,
    drop_underscored: bool,
) -> Checked {
    let parsed = match httparse_view {
        Ok(Head::Complete(parsed)) => parsed,
        Ok(Head::Partial) => {
            return Err(Violation::new(
                invariant,
                "the core accepted a head httparse finds incomplete".to_owned(),
            ))
        }
        Err(e) => return Err(e),
    };
    let trim = |v: &[u8]| {
        let start = v.iter().position(|b| !matches!(b, b' ' | b'\t'));
        let end = v.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
        match (start, end) {
            (Some(s), Some(e)) => v[s..=e].to_vec(),
            _ => Vec::new(),
        }
    };
    let want: Vec<(Vec<u8>, Vec<u8>)> = parsed
        .fields
        .iter()
        .filter(|(name, _)| !(drop_underscored && name.contains(&b'_')))
        .map(|(name, value)| (name.clone(), trim(value)))
        .collect();
    let got: Vec<(Vec<u8>, Vec<u8>)> = core.collect();
    if want == got {
        Ok(())
    } else {
        Err(Violation::new(
            invariant,
            format!("httparse reads {want:?}, the core {got:?}"),
        ))
    }
}
