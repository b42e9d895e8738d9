//! Finding the end of a head in a growing buffer, in O(n) overall.
//!
//! httparse re-parses from the start on every call, so feeding it a slowly growing head is
//! quadratic (the tungstenite CVE-2023-43669 pattern). The scanner instead remembers how far it
//! looked and only inspects new bytes, jumping from line feed to line feed eight bytes at a time.
//! It enforces every size bound *before* anything is parsed, so a hostile head costs at most
//! `max_bytes` of memory and one pass of CPU. It only looks at line ends: a CR anywhere but right
//! before an LF is left for the parsers to refuse (they do, with 400/502), and cannot change
//! where the head ends, since only LF ends a line.

/// The bounds one head must respect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    /// Longest first line (request line or status line), line terminator excluded.
    pub(crate) max_first_line: usize,
    /// Largest head, leading empty lines and the final blank line included.
    pub(crate) max_bytes: usize,
    /// Most field lines.
    pub(crate) max_fields: usize,
}

/// Why scanning stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// The first line is longer than `max_first_line`.
    FirstLineTooLong,
    /// The head is larger than `max_bytes`.
    TooLarge,
    /// More than `max_fields` field lines.
    TooManyFields,
}

/// Where a complete head lies in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadSpan {
    /// Offset of the first line (after skipped leading empty lines).
    pub(crate) start: usize,
    /// Offset just past the blank line that ends the head.
    pub(crate) end: usize,
}

/// An incremental end-of-head finder. Feed it the same buffer, grown, until it reports a span.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeadScanner {
    /// Bytes of the buffer already inspected.
    pos: usize,
    /// Start of the line being scanned.
    line_start: usize,
    /// Start of the first line, once it ended (leading empty lines are skipped).
    first_line: Option<usize>,
    /// Field lines seen.
    fields: usize,
}

impl HeadScanner {
    /// Inspects the bytes of `buf` not seen yet. `buf` must start with the bytes given before.
    pub(crate) fn scan(
        &mut self,
        buf: &[u8],
        limits: &HeadLimits,
    ) -> Result<Option<HeadSpan>, ScanError> {
        while let Some(lf) = find_line_feed(buf, self.pos) {
            self.pos = lf + 1;
            if self.pos > limits.max_bytes {
                return Err(ScanError::TooLarge);
            }
            // The line without its terminator (LF, or CRLF).
            let end = if lf > self.line_start && buf.get(lf - 1) == Some(&b'\r') {
                lf - 1
            } else {
                lf
            };
            let line_start = std::mem::replace(&mut self.line_start, lf + 1);
            let empty = end == line_start;
            match self.first_line {
                // Leading empty lines before the first line are skipped (RFC 9112 §2.2).
                None if empty => {}
                None => {
                    if end - line_start > limits.max_first_line {
                        return Err(ScanError::FirstLineTooLong);
                    }
                    self.first_line = Some(line_start);
                }
                Some(start) if empty => {
                    return Ok(Some(HeadSpan {
                        start,
                        end: self.pos,
                    }))
                }
                Some(_) => {
                    self.fields += 1;
                    if self.fields > limits.max_fields {
                        return Err(ScanError::TooManyFields);
                    }
                }
            }
        }
        // No complete line in the rest: bound what is buffered.
        self.pos = buf.len();
        if self.first_line.is_none() && self.pos - self.line_start > limits.max_first_line + 1 {
            // (+1: the line's CR may already be here.)
            return Err(ScanError::FirstLineTooLong);
        }
        if self.pos > limits.max_bytes {
            return Err(ScanError::TooLarge);
        }
        Ok(None)
    }
}

/// The offset of the first LF in `buf` at or after `from`, eight bytes at a time.
fn find_line_feed(buf: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    const LF: u64 = u64::from_le_bytes([b'\n'; 8]);
    let rest = buf.get(from..)?;
    let mut chunks = rest.chunks_exact(8);
    let mut at = from;
    for chunk in &mut chunks {
        let bytes: [u8; 8] = chunk.try_into().ok()?;
        // The classic has-zero-byte test on `word ^ LF`: the lowest set bit marks the first LF
        // exactly (a false positive can only sit above a real one), in little-endian order.
        let word = u64::from_le_bytes(bytes) ^ LF;
        let found = word.wrapping_sub(ONES) & !word & HIGHS;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| at + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_first_line: 32,
        max_bytes: 128,
        max_fields: 3,
    };

    fn whole(input: &[u8]) -> Result<Option<HeadSpan>, ScanError> {
        HeadScanner::default().scan(input, &LIMITS)
    }

    fn bytewise(input: &[u8]) -> Result<Option<HeadSpan>, ScanError> {
        let mut s = HeadScanner::default();
        for n in 1..=input.len() {
            if let Some(span) = s.scan(&input[..n], &LIMITS)? {
                return Ok(Some(span));
            }
        }
        Ok(None)
    }

    fn both(input: &[u8]) -> Result<Option<HeadSpan>, ScanError> {
        let a = whole(input);
        assert_eq!(a, bytewise(input), "split changed the result for {input:?}");
        a
    }

    #[test]
    fn line_feeds_are_found_at_every_offset() {
        for len in 0..40 {
            for at in 0..len {
                let mut buf = vec![b'\r'; len];
                buf[at] = b'\n';
                for from in 0..=at {
                    assert_eq!(find_line_feed(&buf, from), Some(at));
                }
                assert_eq!(find_line_feed(&buf, at + 1), None);
            }
        }
    }

    #[test]
    fn finds_the_end_of_crlf_and_lf_heads() {
        let h = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        assert_eq!(
            both(h),
            Ok(Some(HeadSpan {
                start: 0,
                end: h.len() - 4
            }))
        );
        let h = b"GET / HTTP/1.1\nHost: a\n\nrest";
        assert_eq!(
            both(h),
            Ok(Some(HeadSpan {
                start: 0,
                end: h.len() - 4
            }))
        );
        let h = b"GET / HTTP/1.1\r\n\r\n";
        assert_eq!(
            both(h),
            Ok(Some(HeadSpan {
                start: 0,
                end: h.len()
            }))
        );
    }

    #[test]
    fn skips_leading_empty_lines() {
        let h = b"\r\n\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(
            both(h),
            Ok(Some(HeadSpan {
                start: 3,
                end: h.len()
            }))
        );
    }

    #[test]
    fn partial_heads_need_more() {
        assert_eq!(both(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
        assert_eq!(both(b"GET / HTTP/1.1\r\nHost: a\r\n\r"), Ok(None));
    }

    #[test]
    fn a_cr_not_before_an_lf_never_ends_a_line_or_the_head() {
        // T066: `\r\n\rZ...` is not the end of the head; the line goes to the parser (400).
        let h = b"GET / HTTP/1.1\r\nHost: a\r\n\rZGET /evil: HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(
            both(h),
            Ok(Some(HeadSpan {
                start: 0,
                end: h.len()
            }))
        );
        assert_eq!(both(b"GET / HTTP/1.1\r\nX-A: a\rb\r\n\r"), Ok(None));
        let h = b"GET / HTTP/1.1\r\n\r\r\n\r\n";
        assert_eq!(
            both(h),
            Ok(Some(HeadSpan {
                start: 0,
                end: h.len()
            }))
        );
    }

    proptest::proptest! {
        #[test]
        fn any_split_finds_the_same_end(
            input in proptest::collection::vec(proptest::sample::select(b"ab: \r\n".to_vec()), 0..200),
            cut in 0usize..200,
        ) {
            let whole = whole(&input);
            let mut s = HeadScanner::default();
            let cut = cut.min(input.len());
            let split = match s.scan(&input[..cut], &LIMITS) {
                Ok(None) => s.scan(&input, &LIMITS),
                other => other,
            };
            proptest::prop_assert_eq!(whole, split);
        }
    }

    #[test]
    fn limits_are_enforced_early() {
        let long_line = [b'A'; 40];
        assert_eq!(both(&long_line), Err(ScanError::FirstLineTooLong));
        let mut exact = vec![b'A'; 32];
        exact.extend_from_slice(b"\r\n\r\n");
        assert_eq!(both(&exact), Ok(Some(HeadSpan { start: 0, end: 36 })));
        let many = b"GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\n\r\n";
        assert_eq!(both(many), Err(ScanError::TooManyFields));
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        big.extend_from_slice(&[b'x'; 200]);
        assert_eq!(both(&big), Err(ScanError::TooLarge));
    }
}
