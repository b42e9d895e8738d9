//! Finding the end of a head in a growing buffer, in O(n) overall.
//!
//! httparse re-parses from the start on every call, so feeding it a slowly growing head is
//! quadratic (the tungstenite CVE-2023-43669 pattern). The scanner instead remembers how far it
//! looked and only inspects new bytes. It enforces every size bound *before* anything is parsed,
//! so a hostile head costs at most `max_bytes` of memory and one pass of CPU.

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
    /// A CR not followed by LF.
    BareCr,
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
    /// Start of the first line, once a non-empty line began.
    first_line_start: Option<usize>,
    /// Whether the first line has ended.
    first_line_done: bool,
    /// Field lines seen.
    fields: usize,
    /// The previous byte was a CR.
    after_cr: bool,
}

impl HeadScanner {
    /// Inspects the bytes of `buf` not seen yet. `buf` must start with the bytes given before.
    pub(crate) fn scan(
        &mut self,
        buf: &[u8],
        limits: &HeadLimits,
    ) -> Result<Option<HeadSpan>, ScanError> {
        let mut i = self.pos;
        while i < buf.len() {
            let b = buf[i];
            if self.after_cr && b != b'\n' {
                return Err(ScanError::BareCr);
            }
            match b {
                b'\r' => self.after_cr = true,
                b'\n' => {
                    self.after_cr = false;
                    let content_end = if i > self.line_start && buf[i - 1] == b'\r' {
                        i - 1
                    } else {
                        i
                    };
                    let empty = content_end == self.line_start;
                    if let Some(span) = self.end_line(empty, i)? {
                        self.pos = i + 1;
                        return Ok(Some(span));
                    }
                    if self.fields > limits.max_fields {
                        return Err(ScanError::TooManyFields);
                    }
                }
                _ if self.first_line_start.is_none() => {
                    self.first_line_start = Some(i);
                    self.line_start = i;
                }
                _ => {}
            }
            i += 1;
            self.check_size(i, limits)?;
        }
        self.pos = i;
        Ok(None)
    }

    /// Handles the LF at `lf` that ends a line (`empty` if it had no content).
    fn end_line(&mut self, empty: bool, lf: usize) -> Result<Option<HeadSpan>, ScanError> {
        self.line_start = lf + 1;
        let Some(start) = self.first_line_start else {
            // Leading empty lines before the first line are skipped (RFC 9112 §2.2).
            return Ok(None);
        };
        if !self.first_line_done {
            self.first_line_done = true;
        } else if empty {
            return Ok(Some(HeadSpan { start, end: lf + 1 }));
        } else {
            self.fields += 1;
        }
        Ok(None)
    }

    fn check_size(&self, scanned: usize, limits: &HeadLimits) -> Result<(), ScanError> {
        if let (Some(start), false) = (self.first_line_start, self.first_line_done) {
            // `scanned` may include the line's CR; the terminator is not part of the line.
            let len = scanned - start;
            if len > limits.max_first_line + 1 {
                return Err(ScanError::FirstLineTooLong);
            }
        }
        if scanned > limits.max_bytes {
            return Err(ScanError::TooLarge);
        }
        Ok(())
    }
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
    fn bare_cr_is_refused() {
        assert_eq!(
            both(b"GET / HTTP/1.1\r\nHost: a\r\n\rZ"),
            Err(ScanError::BareCr)
        );
        assert_eq!(both(b"GET / HTTP/1.1\rX"), Err(ScanError::BareCr));
        assert_eq!(
            both(b"GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n"),
            Err(ScanError::BareCr)
        );
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
