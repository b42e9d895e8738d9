//! The field lines of a head in one pass, straight into [`Headers`]: the fast path in front of
//! httparse.
//!
//! httparse fills an array of slices that then has to be walked again to record each field as
//! ranges of the head (and to classify and filter it). For the heads every real peer sends —
//! valid, with a final blank line and nothing after it — [`parse`] does both at once, skipping
//! over value bytes eight at a time. It accepts exactly the lines httparse accepts with the
//! configuration the core uses (token names, no whitespace before the colon, values of HTAB / SP
//! / VCHAR / obs-text, CRLF or bare LF, no obs-fold) and records the same name and trimmed value.
//! Anything else — an invalid byte, a head without its blank line, bytes after it, too many
//! fields — makes it return `None`, and the caller parses the head again with httparse, which
//! decides the error exactly as before. The tests check both paths agree on every input.

use std::ops::Range;

use bytes::Bytes;

use super::swar::{bytes_below, bytes_equal, splat, word, HIGHS};
use super::{is_tchar, Headers};

/// Name byte classes, as a table: 0 ends the name, [`TCHAR`] continues it, [`UNDERSCORE`] too
/// (and is remembered, for the `underscores_in_headers` policy).
const TCHAR: u8 = 1;
const UNDERSCORE: u8 = 2 | TCHAR;

static NAME_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        // `b < 256`, so the cast is exact.
        let byte = b as u8;
        table[b] = if byte == b'_' {
            UNDERSCORE
        } else if is_tchar(byte) {
            TCHAR
        } else {
            0
        };
        b += 1;
    }
    table
};

/// Parses the field lines of `head` from `start` (just past the first line) to its end.
///
/// `Some` only when the field section is valid, ends with the blank line exactly at the end of
/// `head` and holds at most `max` fields; fields whose names hold `_` are left out when
/// `drop_underscored` (and still count toward `max`, as they do for httparse).
pub(crate) fn parse(
    head: &Bytes,
    start: usize,
    max: usize,
    drop_underscored: bool,
) -> Option<Headers> {
    let buf: &[u8] = head;
    // About one field per 20 bytes in real heads: one allocation, rarely a second.
    let capacity = (buf.len().saturating_sub(start) / 20 + 1).min(max);
    let mut headers = Headers::with_capacity(head.clone(), capacity);
    let mut at = start;
    let mut count = 0usize;
    loop {
        match *buf.get(at)? {
            b'\n' => return (at + 1 == buf.len()).then_some(headers),
            b'\r' => {
                let end = buf.get(at + 1) == Some(&b'\n') && at + 2 == buf.len();
                return end.then_some(headers);
            }
            _ => {}
        }
        let line = field_line(buf, at)?;
        count += 1;
        if count > max {
            return None;
        }
        if !(drop_underscored && line.underscore) {
            headers.push_span(line.name, line.value, line.canonical);
        }
        at = line.next;
    }
}

/// One field line, as offsets into the head.
struct FieldLine {
    name: Range<usize>,
    /// Without surrounding SP / HTAB.
    value: Range<usize>,
    /// The name holds `_`.
    underscore: bool,
    /// The line is exactly `name: value\r\n` with a non-empty value.
    canonical: bool,
    /// Where the next line starts.
    next: usize,
}

/// The field line at `at`, if it is one httparse accepts.
fn field_line(buf: &[u8], at: usize) -> Option<FieldLine> {
    let name_start = at;
    let (name_end, underscore) = name_bytes_end(buf, at)?;
    if name_end == name_start || buf.get(name_end) != Some(&b':') {
        return None;
    }
    let mut at = name_end;
    at += 1;
    while matches!(buf.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    let value_start = at;
    let stop = value_bytes_end(buf, at);
    let next = match buf.get(stop)? {
        b'\n' => stop + 1,
        b'\r' if buf.get(stop + 1) == Some(&b'\n') => stop + 2,
        _ => return None,
    };
    let mut value_end = stop;
    while value_end > value_start && matches!(buf.get(value_end - 1), Some(b' ' | b'\t')) {
        value_end -= 1;
    }
    let canonical = value_end > value_start
        && value_start == name_end + 2
        && buf.get(name_end + 1) == Some(&b' ')
        && next == value_end + 2
        && buf.get(value_end) == Some(&b'\r');
    Some(FieldLine {
        name: name_start..name_end,
        value: value_start..value_end,
        underscore,
        canonical,
        next,
    })
}

/// The offset of the first byte at or after `at` that cannot be in a field value (anything
/// but HTAB, SP, VCHAR and obs-text: CR, LF, other controls, DEL), or `buf.len()`.
fn value_bytes_end(buf: &[u8], mut at: usize) -> usize {
    // Eight bytes at a time: the first byte below SP or DEL in a word is found exactly (the
    // lowest bit of either test is); an HTAB there is a value byte, and the search goes on.
    while let Some(x) = word(buf, at) {
        let special = bytes_below(x, 0x20) | bytes_equal(x, 0x7f);
        if special == 0 {
            at += 8;
            continue;
        }
        at += (special.trailing_zeros() / 8) as usize;
        if buf.get(at) != Some(&b'\t') {
            return at;
        }
        at += 1;
    }
    while let Some(&b) = buf.get(at) {
        if !(b == b'\t' || (b >= 0x20 && b != 0x7f)) {
            break;
        }
        at += 1;
    }
    at
}

/// The offset of the first byte at or after `at` that cannot be in a field name (not a
/// `tchar`), and whether a `_` was passed; `None` if the name runs to the end of `buf`.
fn name_bytes_end(buf: &[u8], mut at: usize) -> Option<(usize, bool)> {
    // Most name bytes are letters, digits and `-`: whole words of them are skipped; the first
    // other byte (usually the colon) is found exactly and the table takes over from there.
    while let Some(x) = word(buf, at) {
        let other = not_alphanumeric_or_dash(x);
        if other == 0 {
            at += 8;
            continue;
        }
        at += (other.trailing_zeros() / 8) as usize;
        break;
    }
    let mut class = 0;
    loop {
        let c = NAME_CLASS[usize::from(*buf.get(at)?)];
        if c == 0 {
            return Some((at, class == UNDERSCORE));
        }
        class |= c;
        at += 1;
    }
}

/// `0x80` in each byte of `x` that is not an ASCII letter, digit or `-`, exactly when every
/// byte is ASCII; otherwise only the first byte is flagged (the byte path sorts the word out).
fn not_alphanumeric_or_dash(x: u64) -> u64 {
    if x & HIGHS != 0 {
        return 0x80;
    }
    // Every byte is below 0x80, so none of these additions carries into the next byte: the
    // high bit of `b + (0x80 - lo)` says `b >= lo`, that of `b + (0x7f - hi)` says `b > hi`.
    let in_range = |v: u64, lo: u8, hi: u8| {
        v.wrapping_add(splat(0x80 - lo)) & !v.wrapping_add(splat(0x7f - hi)) & HIGHS
    };
    let letter = in_range(x | splat(0x20), b'a', b'z');
    let digit = in_range(x, b'0', b'9');
    let dash = !(x ^ splat(b'-')).wrapping_add(splat(0x7f)) & HIGHS;
    !(letter | digit | dash) & HIGHS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What httparse plus the old per-field collection produce: the reference.
    fn reference(head: &Bytes, start: usize, max: usize, drop: bool) -> Option<Headers> {
        let fields = head.get(start..)?;
        let mut slots = vec![httparse::EMPTY_HEADER; max];
        match httparse::parse_headers(fields, &mut slots) {
            Ok(httparse::Status::Complete((n, parsed))) if n == fields.len() => {
                let mut headers = Headers::with_capacity(head.clone(), parsed.len());
                for f in parsed {
                    if !(drop && f.name.contains('_')) {
                        headers.push(f.name.as_bytes(), super::super::trim_ows(f.value));
                    }
                }
                Some(headers)
            }
            _ => None,
        }
    }

    fn check(input: &[u8], max: usize, drop: bool) {
        let head = Bytes::copy_from_slice(input);
        let fast = parse(&head, 0, max, drop);
        let slow = reference(&head, 0, max, drop);
        if let Some(fast) = &fast {
            assert_eq!(
                Some(fast),
                slow.as_ref(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
            // Same bytes written back, canonical runs or not.
            let (mut a, mut b) = (bytes::BytesMut::new(), bytes::BytesMut::new());
            fast.write_lines(&mut a, |_| true);
            if let Some(slow) = &slow {
                slow.write_lines(&mut b, |_| true);
            }
            assert_eq!(a, b);
        }
        // The fast path may only decline what httparse would not accept as a whole head.
        if fast.is_none() {
            assert!(
                slow.is_none(),
                "declined {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn real_heads_take_the_fast_path() {
        let head = Bytes::from_static(
            b"Host: a\r\nX-A:  b c \t\r\nX-Empty:\r\nX-Ws: \t \r\nY: v\nUser_Agent: x\r\n\r\n",
        );
        let headers = parse(&head, 0, 16, false).expect("valid");
        assert_eq!(
            headers,
            Headers::from_pairs([
                ("Host", "a"),
                ("X-A", "b c"),
                ("X-Empty", ""),
                ("X-Ws", ""),
                ("Y", "v"),
                ("User_Agent", "x")
            ])
        );
        assert_eq!(parse(&head, 0, 16, true).map(|h| h.len()), Some(5));
        assert!(parse(&head, 0, 5, false).is_none(), "too many fields");
        assert_eq!(parse(&head, 0, 6, true).map(|h| h.len()), Some(5));
        for input in [&b"\r\n"[..], b"\n", b"A: b\r\n\n"] {
            assert!(parse(&Bytes::from_static(input), 0, 4, false).is_some());
        }
    }

    #[test]
    fn anything_unusual_is_left_to_httparse() {
        for input in [
            &b""[..],
            b"A: b\r\n",
            b"A: b\r\n\r\nextra",
            b"A: b\r\n\r",
            b"A : b\r\n\r\n",
            b" A: b\r\n\r\n",
            b"A: b\r\n c\r\n\r\n",
            b"A: b\rc\r\n\r\n",
            b"A: b\x00\r\n\r\n",
            b"A: b\x7f\r\n\r\n",
            b"A\x80: b\r\n\r\n",
            b": b\r\n\r\n",
            b"A b\r\n\r\n",
            b"\r\r\n",
        ] {
            assert!(
                parse(&Bytes::from_static(input), 0, 4, false).is_none(),
                "{input:?}"
            );
            check(input, 4, false);
        }
    }

    #[test]
    fn values_agree_with_httparse_for_every_byte_at_every_offset() {
        for b in 0..=255u8 {
            for at in 0..20 {
                let mut value = vec![b'v'; 20];
                value[at] = b;
                let mut input = b"Name: ".to_vec();
                input.extend_from_slice(&value);
                input.extend_from_slice(b"\r\n\r\n");
                check(&input, 4, false);
                let mut name = b"Na".to_vec();
                name.push(b);
                name.extend_from_slice(b"me: v\r\n\r\n");
                check(&name, 4, true);
            }
        }
    }

    #[test]
    fn name_words_flag_exactly_the_other_bytes() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut bytes = *b"aZ09-xYz";
                bytes[at] = b;
                let flags = not_alphanumeric_or_dash(u64::from_le_bytes(bytes));
                let want = b.is_ascii_alphanumeric() || b == b'-';
                assert_eq!(flags == 0, want, "{b:#x} at {at}");
                if !want && b.is_ascii() {
                    assert_eq!(flags.trailing_zeros() / 8, at as u32, "{b:#x} at {at}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn name_words_agree_with_bytes(bytes: [u8; 8]) {
            let flags = not_alphanumeric_or_dash(u64::from_le_bytes(bytes));
            let first = bytes.iter().position(|&b| !(b.is_ascii_alphanumeric() || b == b'-'));
            let found = (flags != 0).then(|| (flags.trailing_zeros() / 8) as usize);
            if bytes.is_ascii() {
                proptest::prop_assert_eq!(found, first);
            } else {
                proptest::prop_assert_eq!(found, Some(0));
            }
        }

        #[test]
        fn both_paths_agree(
            input in proptest::collection::vec(
                proptest::sample::select(b"aZ_-: \t\r\n\x7f\x80\x00,".to_vec()), 0..120),
            max in 0usize..6,
            drop: bool,
        ) {
            check(&input, max, drop);
        }

        #[test]
        fn both_paths_agree_on_line_shaped_input(
            lines in proptest::collection::vec(
                ("[a-zA-Z_-]{0,12}", "[ \t]{0,2}", "[ -~\t\u{80}]{0,30}", "[ \t]{0,2}",
                 proptest::sample::select(vec!["\r\n", "\n", "\r"])),
                0..8),
            end in proptest::sample::select(vec!["\r\n", "\n", "", "\r\nx"]),
        ) {
            let mut input = Vec::new();
            for (name, ws1, value, ws2, eol) in &lines {
                input.extend_from_slice(name.as_bytes());
                input.push(b':');
                input.extend_from_slice(ws1.as_bytes());
                input.extend_from_slice(value.as_bytes());
                input.extend_from_slice(ws2.as_bytes());
                input.extend_from_slice(eol.as_bytes());
            }
            input.extend_from_slice(end.as_bytes());
            check(&input, 8, false);
        }
    }
}
