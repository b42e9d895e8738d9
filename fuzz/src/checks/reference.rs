//! A second chunked decoder, written from RFC 9112 §7.1 and proto's documented strictness, to
//! compare proto's streaming `BodyDecoder` against.
//!
//! It is deliberately built the other way round: proto's decoder is a byte-at-a-time state
//! machine fed in pieces; this one is a recursive-descent parser over the whole input that
//! reports "needs more" when it runs off the end. The accepted grammar (proto's module docs):
//!
//! ```text
//! chunked-body = *chunk last-chunk trailer-section CRLF
//! chunk        = 1*HEXDIG [ chunk-ext ] CRLF chunk-data CRLF   ; size fits in u64
//! chunk-ext    = *( ";" token [ "=" ( token / quoted-string ) ] )   ; no whitespace
//! trailer      = *( token ":" *( field-vchar / SP / HTAB ) CRLF )
//! ```
//!
//! plus two bounds: a size line (size and extensions, without CRLF) longer than `max_line`
//! fails, and so does a trailer section (everything after the last chunk's CRLF, final CRLF
//! included) longer than [`MAX_TRAILER_BYTES`].

use switchyard_proto::body::chunked::MAX_TRAILER_BYTES;

use super::wire::is_tchar;

/// Why decoding stopped before the end of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The input is a valid prefix: more is needed.
    More,
    /// The input is malformed.
    Bad,
}

/// What decoding a whole input gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// The data bytes, in order (up to where decoding stopped).
    pub(crate) data: Vec<u8>,
    /// `Ok(end)`: the body ends at `end` (the rest is not part of it).
    pub(crate) end: Result<usize, Stop>,
    /// Sum of the sizes of the chunks whose size line was complete (saturating).
    pub(crate) announced: u64,
}

struct Cursor<'a> {
    input: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Result<u8, Stop> {
        self.input.get(self.at).copied().ok_or(Stop::More)
    }

    /// Consumes the next byte if `ok(byte)`; `Bad` if it is not.
    fn take(&mut self, ok: impl Fn(u8) -> bool) -> Result<u8, Stop> {
        let b = self.peek()?;
        if !ok(b) {
            return Err(Stop::Bad);
        }
        self.at += 1;
        Ok(b)
    }

    fn crlf(&mut self) -> Result<(), Stop> {
        self.take(|b| b == b'\r')?;
        self.take(|b| b == b'\n')?;
        Ok(())
    }

    /// `1*HEXDIG` as a u64 (overflow is `Bad`).
    fn size(&mut self) -> Result<u64, Stop> {
        let mut size: u64 = 0;
        let first = self.take(|b| b.is_ascii_hexdigit())?;
        let mut digit = Some(first);
        while let Some(d) = digit {
            let value = char::from(d).to_digit(16).map_or(0, u64::from);
            size = size
                .checked_mul(16)
                .and_then(|s| s.checked_add(value))
                .ok_or(Stop::Bad)?;
            digit = match self.peek()? {
                b if b.is_ascii_hexdigit() => {
                    self.at += 1;
                    Some(b)
                }
                _ => None,
            };
        }
        Ok(size)
    }

    fn token(&mut self) -> Result<(), Stop> {
        self.take(is_tchar)?;
        while is_tchar(self.peek()?) {
            self.at += 1;
        }
        Ok(())
    }

    fn quoted_string(&mut self) -> Result<(), Stop> {
        self.take(|b| b == b'"')?;
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Ok(());
                }
                b'\\' => {
                    self.at += 1;
                    self.take(|b| {
                        b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
                    })?;
                }
                b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => self.at += 1,
                _ => return Err(Stop::Bad),
            }
        }
    }

    /// `*( ";" token [ "=" ( token / quoted-string ) ] )`, stopping before the CR.
    fn extensions(&mut self) -> Result<(), Stop> {
        while self.peek()? == b';' {
            self.at += 1;
            self.token()?;
            if self.peek()? == b'=' {
                self.at += 1;
                if self.peek()? == b'"' {
                    self.quoted_string()?;
                } else {
                    self.token()?;
                }
            }
        }
        Ok(())
    }

    /// One trailer field line without its CRLF: `token ":" *(VCHAR / obs-text / SP / HTAB)`.
    fn trailer_line(&mut self) -> Result<(), Stop> {
        self.token()?;
        self.take(|b| b == b':')?;
        loop {
            match self.peek()? {
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => self.at += 1,
                _ => return Ok(()),
            }
        }
    }

    fn trailers(&mut self) -> Result<(), Stop> {
        loop {
            if self.peek()? == b'\r' {
                return self.crlf();
            }
            self.trailer_line()?;
            self.crlf()?;
        }
    }
}

/// Decodes a whole chunked body from the start of `input`.
pub(crate) fn decode(input: &[u8], max_line: usize) -> Decoded {
    let mut cur = Cursor { input, at: 0 };
    let mut data = Vec::new();
    let mut announced: u64 = 0;
    let end = (|| loop {
        // The size line's extent is fixed by its first CR; too long fails even if incomplete.
        let line_start = cur.at;
        let extent = input[line_start..]
            .iter()
            .position(|&b| b == b'\r')
            .unwrap_or(input.len() - line_start);
        if extent > max_line {
            return Err(Stop::Bad);
        }
        let size = cur.size()?;
        cur.extensions()?;
        cur.crlf()?;
        if size == 0 {
            let trailer_start = cur.at;
            let trailers = cur.trailers();
            if cur.at - trailer_start > MAX_TRAILER_BYTES {
                return Err(Stop::Bad);
            }
            trailers?;
            return Ok(cur.at);
        }
        announced = announced.saturating_add(size);
        let available = input.len() - cur.at;
        let take = usize::try_from(size).map_or(available, |s| s.min(available));
        data.extend_from_slice(&input[cur.at..cur.at + take]);
        cur.at += take;
        if (take as u64) < size {
            return Err(Stop::More);
        }
        cur.crlf()?;
    })();
    Decoded {
        data,
        end,
        announced,
    }
}
