//! The chunked transfer coding (RFC 9112 §7.1), decoded strictly and one byte at a time.
//!
//! Chunked framing is where request smuggling lives: whenever two hops disagree about where a
//! chunked body ends, the bytes one of them treats as body become the other's next request
//! (`TERM.EXT`, `SPILL`, CR-in-BWS, bare-LF line ends, junk after the size, `0x`/`+` sizes, u64
//! wrap-around, `\r\nXX` taken as the end of the trailers, ...). This decoder therefore accepts
//! exactly the RFC grammar and nothing else:
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size     = 1*HEXDIG                       ; must fit in a u64
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext      = *( ";" ext-name [ "=" ext-val ] ) ; no BWS: strict
//! ext-name       = token
//! ext-val        = token / quoted-string          ; quoted-pair allowed
//! trailer-section = *( field-line CRLF )          ; field-name ":" field-value, no obs-fold
//! ```
//!
//! Deliberate strictness beyond the RFC's MUSTs (each one is a known desync vector):
//! no whitespace anywhere in a size line (the RFC's `BWS` is refused, as Http11Probe expects),
//! a bare `;` is refused, every line ends with exactly CRLF (bare LF or CR + anything else is an
//! error, CVE-2025-22871), chunk data must be followed by exactly CRLF (CVE-2025-43859), and
//! trailer lines must be well-formed fields (CVE-2023-40175).
//!
//! Chunk extensions and trailers are validated and then dropped: they are specific to one
//! connection (§7.1.1) and nginx does not forward trailers by default. Memory is bounded: the
//! decoder keeps a fixed-size state (no line buffer); size lines are bounded by the caller's
//! `max_chunk_line` and trailer sections by [`MAX_TRAILER_BYTES`]. Work is O(n): every framing
//! byte is looked at exactly once, and data bytes are never looked at (they are split off the
//! input without copying).

use bytes::{Buf, Bytes, BytesMut};

use super::{BodyChunk, BodyError};
use crate::head::is_tchar;

/// Most bytes a trailer section may take, counting every field line with its CRLF and the final
/// CRLF. 16 KiB is two of nginx's 8 KiB `large_client_header_buffers`: far above any real
/// trailer (they are rare and small), low enough that a peer cannot make the proxy read an
/// endless trailer section. Trailers are discarded, so this bounds work, not memory.
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// The last chunk followed by an empty trailer section: how the proxy ends a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The CRLF that follows each chunk's data.
pub const CHUNK_END: &[u8] = b"\r\n";

/// The size line the proxy writes before a chunk of `len` data bytes: lower-case hex, no leading
/// zeros, no extensions.
pub fn chunk_header(len: usize) -> Bytes {
    chunk_header_u64(u64::try_from(len).unwrap_or(u64::MAX))
}

/// The size line for a chunk of `size` data bytes: lower-case hex, no extensions, CRLF.
pub fn chunk_header_u64(size: u64) -> Bytes {
    Bytes::from(format!("{size:x}\r\n"))
}

/// Where the decoder stands in the chunked grammar. Everything except `Data` waits for one
/// framing byte; `Data` hands out up to `remaining` bytes without looking at them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Start of a chunk-size line: the first HEXDIG must come.
    SizeStart,
    /// Inside chunk-size: another HEXDIG, `;` or CR.
    Size,
    /// Just after `;`: the first byte of an ext-name.
    ExtNameStart,
    /// Inside an ext-name: tchar, `=`, `;` or CR.
    ExtName,
    /// Just after `=`: a tchar or `"`.
    ExtValueStart,
    /// Inside a token ext-val: tchar, `;` or CR.
    ExtToken,
    /// Inside a quoted-string ext-val.
    ExtQuoted,
    /// Just after a `\` inside a quoted-string.
    ExtQuotedPair,
    /// Just after the closing `"`: `;` or CR.
    ExtQuotedEnd,
    /// The size line's CR was seen: LF must come.
    SizeLf,
    /// Chunk data, this many bytes still to come.
    Data {
        /// Data bytes of the current chunk not yet handed out.
        remaining: u64,
    },
    /// Chunk data is complete: CR must come.
    DataCr,
    /// Chunk data's CR was seen: LF must come.
    DataLf,
    /// Start of a trailer line: CR (end of the body) or the first byte of a field-name.
    TrailerStart,
    /// Inside a trailer field-name: tchar or `:`.
    TrailerName,
    /// Inside a trailer field-value (OWS included): field-vchar, SP, HTAB or CR.
    TrailerValue,
    /// A trailer line's CR was seen: LF must come.
    TrailerLf,
    /// The final CR was seen: LF must come.
    EndLf,
    /// The body is complete; nothing more is consumed.
    Done,
    /// The framing was malformed; the decoder refuses everything from now on.
    Failed,
}

impl State {
    /// Whether a byte consumed in this state belongs to a chunk-size line's size + extensions.
    fn in_size_line(self) -> bool {
        matches!(
            self,
            Self::SizeStart
                | Self::Size
                | Self::ExtNameStart
                | Self::ExtName
                | Self::ExtValueStart
                | Self::ExtToken
                | Self::ExtQuoted
                | Self::ExtQuotedPair
                | Self::ExtQuotedEnd
        )
    }

    /// Whether a byte consumed in this state belongs to the trailer section.
    fn in_trailers(self) -> bool {
        matches!(
            self,
            Self::TrailerStart
                | Self::TrailerName
                | Self::TrailerValue
                | Self::TrailerLf
                | Self::EndLf
        )
    }
}

/// `qdtext` (RFC 9110 §5.6.4): HTAB, SP, VCHAR except `"` and `\`, obs-text.
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff)
}

/// What may follow `\` in a quoted-pair: HTAB, SP, VCHAR, obs-text.
fn is_quoted_pair_char(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff)
}

/// A byte of a field-value (RFC 9110 §5.5) including its surrounding OWS: no CTL but HTAB.
fn is_field_value_char(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff)
}

/// The value of a HEXDIG (the caller has checked `b.is_ascii_hexdigit()`).
fn hex_value(b: u8) -> u64 {
    let v = match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b.wrapping_sub(b'A').wrapping_add(10),
    };
    u64::from(v)
}

/// Streaming decoder of one chunked body. See the module doc for the accepted grammar.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// The chunk-size being read (valid in the size-line states and `SizeLf`).
    size: u64,
    /// Bytes of the current size line (size + extensions, without CRLF).
    line_len: usize,
    /// Bytes of the trailer section so far.
    trailer_len: usize,
    /// Longest size line accepted.
    max_line: usize,
    /// Sum of the chunk sizes announced so far (saturating).
    announced: u64,
}

impl ChunkedDecoder {
    /// A decoder refusing size lines (size + extensions) longer than `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        Self {
            state: State::SizeStart,
            size: 0,
            line_len: 0,
            trailer_len: 0,
            max_line,
            announced: 0,
        }
    }

    /// Whether the whole body, trailers included, has been consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Data bytes of the current chunk not handed out yet (0 between chunks).
    pub fn remaining_in_chunk(&self) -> u64 {
        match self.state {
            State::Data { remaining } => remaining,
            _ => 0,
        }
    }

    /// Whether the framing was found malformed.
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// The sum of every chunk-size read so far (saturating at `u64::MAX`). It grows as soon as a
    /// size line is complete, before the chunk's data arrives, so a body limit can be enforced
    /// without reading the data (nginx answers 413 the same way).
    pub fn announced_bytes(&self) -> u64 {
        self.announced
    }

    /// Takes what it can from the front of `input`: see [`super::BodyDecoder::decode`].
    pub fn decode(&mut self, input: &mut BytesMut) -> Result<Option<BodyChunk>, BodyError> {
        loop {
            match self.state {
                State::Done => return Ok(Some(BodyChunk::End)),
                State::Failed => return Err(BodyError::InvalidChunked),
                State::Data { remaining } => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
                    // n <= remaining, so this never saturates; `u64::try_from` of a usize too.
                    let left = remaining.saturating_sub(u64::try_from(n).unwrap_or(u64::MAX));
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining: left }
                    };
                    return Ok(Some(BodyChunk::Data(input.split_to(n).freeze())));
                }
                _ => {
                    let mut used = 0;
                    let mut outcome = Ok(());
                    for &b in input.iter() {
                        used += 1;
                        outcome = self.step(b);
                        if outcome.is_err()
                            || matches!(self.state, State::Data { .. } | State::Done)
                        {
                            break;
                        }
                    }
                    input.advance(used);
                    if let Err(e) = outcome {
                        self.state = State::Failed;
                        return Err(e);
                    }
                    if !matches!(self.state, State::Data { .. } | State::Done) {
                        // Every byte was framing and was consumed: wait for more.
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// The sender closed: `End` if the body was complete, else an error.
    pub fn eof(&mut self) -> Result<BodyChunk, BodyError> {
        match self.state {
            State::Done => Ok(BodyChunk::End),
            State::Failed => Err(BodyError::InvalidChunked),
            _ => Err(BodyError::Incomplete),
        }
    }

    /// Consumes one framing byte: the whole transition table.
    fn step(&mut self, b: u8) -> Result<(), BodyError> {
        use State::*;
        if self.state.in_size_line() && b != b'\r' {
            self.line_len = self.line_len.saturating_add(1);
            if self.line_len > self.max_line {
                return Err(BodyError::InvalidChunked);
            }
        }
        if self.state.in_trailers() {
            self.trailer_len = self.trailer_len.saturating_add(1);
            if self.trailer_len > MAX_TRAILER_BYTES {
                return Err(BodyError::InvalidChunked);
            }
        }
        let next = match (self.state, b) {
            // chunk-size = 1*HEXDIG, checked against u64 overflow digit by digit.
            (SizeStart | Size, _) if b.is_ascii_hexdigit() => {
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(hex_value(b)))
                    .ok_or(BodyError::InvalidChunked)?;
                Size
            }
            // chunk-ext = *( ";" ext-name [ "=" ext-val ] )
            (Size | ExtName | ExtToken | ExtQuotedEnd, b';') => ExtNameStart,
            (ExtNameStart | ExtName, _) if is_tchar(b) => ExtName,
            (ExtName, b'=') => ExtValueStart,
            (ExtValueStart, b'"') => ExtQuoted,
            (ExtValueStart | ExtToken, _) if is_tchar(b) => ExtToken,
            (ExtQuoted, b'"') => ExtQuotedEnd,
            (ExtQuoted, b'\\') => ExtQuotedPair,
            (ExtQuoted, _) if is_qdtext(b) => ExtQuoted,
            (ExtQuotedPair, _) if is_quoted_pair_char(b) => ExtQuoted,
            // The size line ends with exactly CRLF.
            (Size | ExtName | ExtToken | ExtQuotedEnd, b'\r') => SizeLf,
            (SizeLf, b'\n') if self.size == 0 => {
                self.trailer_len = 0;
                TrailerStart
            }
            (SizeLf, b'\n') => {
                self.announced = self.announced.saturating_add(self.size);
                Data {
                    remaining: self.size,
                }
            }
            // chunk-data is followed by exactly CRLF.
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => {
                self.size = 0;
                self.line_len = 0;
                SizeStart
            }
            // trailer-section = *( field-line CRLF ), then the final CRLF.
            (TrailerStart, b'\r') => EndLf,
            (TrailerStart | TrailerName, _) if is_tchar(b) => TrailerName,
            (TrailerName, b':') => TrailerValue,
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, _) if is_field_value_char(b) => TrailerValue,
            (TrailerLf, b'\n') => TrailerStart,
            (EndLf, b'\n') => Done,
            // Anything else: whitespace, bare LF, CR not followed by LF, CTLs, non-hex sizes,
            // obs-fold (a trailer line starting with SP/HTAB), empty names or values, ...
            // `Data`, `Done` and `Failed` never reach here (`decode` handles them).
            _ => return Err(BodyError::InvalidChunked),
        };
        self.state = next;
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// What feeding a whole input produced.
    #[derive(Debug, PartialEq, Eq)]
    enum Outcome {
        /// The body ended: its data, and the bytes left after it.
        Ends(Vec<u8>, Vec<u8>),
        /// The framing was refused after this much data.
        Fails(Vec<u8>),
        /// More input is needed after this much data.
        Waits(Vec<u8>),
    }
    use Outcome::*;

    /// Feeds `input` in pieces of `step` bytes (all at once for `usize::MAX`).
    fn run(input: &[u8], max_line: usize, step: usize) -> Outcome {
        let mut decoder = ChunkedDecoder::new(max_line);
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(BodyChunk::Data(d))) => {
                    assert!(!d.is_empty(), "empty Data item");
                    data.extend_from_slice(&d);
                }
                Ok(Some(BodyChunk::End)) => {
                    let mut rest = buf.to_vec();
                    rest.extend_from_slice(&input[fed..]);
                    // End is sticky and consumes nothing.
                    assert_eq!(decoder.decode(&mut buf), Ok(Some(BodyChunk::End)));
                    assert_eq!(decoder.eof(), Ok(BodyChunk::End));
                    return Ends(data, rest);
                }
                Err(e) => {
                    assert_eq!(e, BodyError::InvalidChunked);
                    assert_eq!(decoder.decode(&mut buf), Err(BodyError::InvalidChunked));
                    return Fails(data);
                }
                Ok(None) => {
                    assert!(buf.is_empty(), "None left bytes unconsumed: {buf:?}");
                    if fed == input.len() {
                        assert_eq!(decoder.eof(), Err(BodyError::Incomplete));
                        return Waits(data);
                    }
                    let end = fed.saturating_add(step).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
            }
        }
    }

    /// The same outcome, from the reference decoder below.
    fn by_reference(input: &[u8], max_line: usize) -> Outcome {
        match reference(input, max_line) {
            (data, Ok(end)) => Ends(data, input[end..].to_vec()),
            (data, Err(Stop::Bad)) => Fails(data),
            (data, Err(Stop::More)) => Waits(data),
        }
    }

    fn ends(data: &[u8], rest: &[u8]) -> Outcome {
        Ends(data.to_vec(), rest.to_vec())
    }
    fn fails(data: &[u8]) -> Outcome {
        Fails(data.to_vec())
    }
    fn waits(data: &[u8]) -> Outcome {
        Waits(data.to_vec())
    }

    /// Each row: a sentence-named test feeding the body whole, byte by byte and 3 bytes at a time.
    macro_rules! chunked {
        ($($name:ident: $input:expr => $expected:expr;)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = $input;
                let expected: Outcome = $expected;
                for step in [usize::MAX, 1, 3] {
                    assert_eq!(run(input, 64, step), expected, "step {step}");
                }
                assert_eq!(by_reference(input, 64), expected, "reference decoder");
            }
        )*};
    }

    // Category 1B of the smuggling cases: the bytes after the head.
    chunked! {
        t028_extensions_are_stripped: b"5;foo=bar\r\nhello\r\n0\r\n\r\n" => ends(b"hello", b"");
        t030_lf_inside_an_extension_is_refused:
            b"2;\nXX\r\n10\r\n1f\r\nAAAABBBBCCCC\r\n0\r\n\r\nDDDDEEEEFFFF\r\n0\r\n\r\n" => fails(b"");
        t032_cr_before_semicolon_is_refused:
            b"2\r\r;a\r\n02\r\n41\r\n0\r\n\r\nGET /bad_path/pwned HTTP/1.1\r\n" => fails(b"");
        t034_nul_in_extension_is_refused: b"5;\x00ext\r\nhello\r\n0\r\n\r\n" => fails(b"");
        t034_bare_semicolon_is_refused: b"5;\r\nhello\r\n0\r\n\r\n" => fails(b"");
        t036_chunk_data_longer_than_its_size_is_refused: b"5\r\nhello!!\r\n0\r\n\r\n" => fails(b"hello");
        t036_lf_after_chunk_data_is_refused:
            b"5\r\nAAAAA\nc\r\n17\r\nAAAABBBB\r\n0\r\n\r\nCCCCDDDD\r\n0\r\n\r\n" => fails(b"AAAAA");
        t038_junk_after_the_size_is_refused:
            b"1these-bytes-never-get-validated\r\nZ\r\n0\r\n\r\n" => fails(b"");
        t038_non_hex_size_is_refused: b"Z\r\nZZ\r\nZZZ\r\n\r\n" => fails(b"");
        t040_trailing_space_after_the_size_is_refused: b"5 \r\nhello\r\n0\r\n\r\n" => fails(b"");
        t042_a_large_size_is_read_before_its_data: b"100001\r\nab" => waits(b"ab");
        t044_empty_size_line_is_refused: b"\r\n\r\n" => fails(b"");
        t046_trailers_are_discarded: b"5\r\nhello\r\n0\r\nX-T: v\r\n\r\n" => ends(b"hello", b"");
        t046_a_request_line_lookalike_trailer_is_discarded:
            b"0\r\nX:POST / HTTP/1.1\r\n\r\n" => ends(b"", b"");
        t048_lf_ending_the_trailers_is_refused: b"5\r\nhello\r\n0\r\n\n" => fails(b"hello");
        t048_lf_before_a_trailer_is_refused: b"2\r\nXX\r\n0\r\n\nxxx: yyy\r\n\r\n" => fails(b"XX");

        // Size-line junk, the whole family.
        hex_prefix_is_refused: b"0x5\r\nhello\r\n0\r\n\r\n" => fails(b"");
        plus_sign_is_refused: b"+5\r\nhello\r\n0\r\n\r\n" => fails(b"");
        minus_sign_is_refused: b"-5\r\nhello\r\n0\r\n\r\n" => fails(b"");
        underscore_in_size_is_refused: b"5_0\r\n" => fails(b"");
        leading_space_is_refused: b" 5\r\nhello\r\n0\r\n\r\n" => fails(b"");
        leading_tab_is_refused: b"\t5\r\nhello\r\n0\r\n\r\n" => fails(b"");
        trailing_tab_is_refused: b"5\t\r\nhello\r\n0\r\n\r\n" => fails(b"");
        space_before_semicolon_is_refused: b"5 ;a\r\nhello\r\n0\r\n\r\n" => fails(b"");
        space_after_semicolon_is_refused: b"5; a\r\nhello\r\n0\r\n\r\n" => fails(b"");
        space_around_equals_is_refused: b"5;a =b\r\n" => fails(b"");
        space_after_equals_is_refused: b"5;a= b\r\n" => fails(b"");
        space_after_ext_value_is_refused: b"5;a=b \r\n" => fails(b"");
        extension_without_size_is_refused: b";a\r\nhello\r\n0\r\n\r\n" => fails(b"");
        empty_ext_name_is_refused: b"5;=b\r\n" => fails(b"");
        empty_ext_value_is_refused: b"5;a=\r\n" => fails(b"");
        double_semicolon_is_refused: b"5;;a\r\n" => fails(b"");
        trailing_semicolon_is_refused: b"5;a;\r\n" => fails(b"");
        second_equals_is_refused: b"5;a=b=c\r\n" => fails(b"");
        unterminated_quote_is_refused: b"5;a=\"b\r\nhello\r\n0\r\n\r\n" => fails(b"");
        crlf_inside_a_quoted_extension_is_refused:
            b"5;a=\"b\r\n0\r\n\r\n\"\r\nhello\r\n0\r\n\r\n" => fails(b"");
        cr_inside_a_quoted_extension_is_refused: b"5;a=\"b\r\"\r\nhello\r\n0\r\n\r\n" => fails(b"");
        lf_inside_a_quoted_extension_is_refused: b"5;a=\"b\n\"\r\nhello\r\n0\r\n\r\n" => fails(b"");
        ctl_inside_a_quoted_extension_is_refused: b"5;a=\"b\x01\"\r\n" => fails(b"");
        del_inside_a_quoted_extension_is_refused: b"5;a=\"b\x7f\"\r\n" => fails(b"");
        bytes_after_a_closing_quote_are_refused: b"5;a=\"b\"c\r\n" => fails(b"");
        quote_inside_a_token_value_is_refused: b"5;a=b\"c\"\r\n" => fails(b"");
        quoted_pair_escaping_a_ctl_is_refused: b"5;a=\"\\\x01\"\r\n" => fails(b"");
        non_token_ext_name_is_refused: b"5;a@b\r\n" => fails(b"");
        seventeen_hex_digits_overflow: b"10000000000000000\r\n" => fails(b"");
        sixteen_f_digits_overflow_later: b"FFFFFFFFFFFFFFFF0\r\n" => fails(b"");
        sixteen_hex_digits_fit: b"FFFFFFFFFFFFFFFF\r\nabc" => waits(b"abc");
        leading_zeros_do_not_count_as_overflow: b"000000000000000000001\r\nZ\r\n0\r\n\r\n" => ends(b"Z", b"");
        leading_zeros_are_accepted: b"0005\r\nhello\r\n0000\r\n\r\n" => ends(b"hello", b"");
        upper_and_lower_case_hex_are_accepted: b"a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n"
            => ends(b"01234567890123456789", b"");
        overlong_size_line_is_refused:
            b"00000000000000000000000000000000000000000000000000000000000000005\r\n" => fails(b"");
        overlong_extension_is_refused:
            b"5;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n" => fails(b"");

        // Line ends: bare LF or CR + something else, at every position.
        lf_after_size_is_refused: b"5\nhello\r\n0\r\n\r\n" => fails(b"");
        cr_without_lf_after_size_is_refused: b"5\rhello\r\n0\r\n\r\n" => fails(b"");
        lf_after_extension_is_refused: b"5;a=b\nhello\r\n0\r\n\r\n" => fails(b"");
        lf_after_quoted_extension_is_refused: b"5;a=\"b\"\nhello\r\n" => fails(b"");
        lf_after_last_chunk_is_refused: b"5\r\nhello\r\n0\n\r\n" => fails(b"hello");
        cr_cr_after_last_chunk_is_refused: b"0\r\r\n\r\n" => fails(b"");
        lf_after_chunk_data_is_refused: b"5\r\nhello\n0\r\n\r\n" => fails(b"hello");
        cr_without_lf_after_chunk_data_is_refused: b"5\r\nhello\rX0\r\n\r\n" => fails(b"hello");
        any_two_bytes_after_chunk_data_are_refused: b"5\r\nhelloXX0\r\n\r\n" => fails(b"hello");
        lf_after_a_trailer_line_is_refused: b"0\r\nX: v\n\r\n" => fails(b"");
        cr_without_lf_after_a_trailer_is_refused: b"0\r\nX: v\rY: w\r\n\r\n" => fails(b"");
        cr_then_junk_at_the_end_is_refused: b"0\r\n\rX" => fails(b"");
        lf_only_everywhere_is_refused: b"5\nhello\n0\n\n" => fails(b"");

        // Trailer lines must be fields.
        obs_fold_in_trailers_is_refused: b"0\r\nX: a\r\n b\r\n\r\n" => fails(b"");
        trailer_starting_with_space_is_refused: b"0\r\n X: a\r\n\r\n" => fails(b"");
        space_before_trailer_colon_is_refused: b"0\r\nX : a\r\n\r\n" => fails(b"");
        trailer_without_colon_is_refused: b"0\r\nX\r\n\r\n" => fails(b"");
        trailer_with_empty_name_is_refused: b"0\r\n: a\r\n\r\n" => fails(b"");
        nul_in_trailer_value_is_refused: b"0\r\nX: a\x00b\r\n\r\n" => fails(b"");
        del_in_trailer_value_is_refused: b"0\r\nX: a\x7fb\r\n\r\n" => fails(b"");
        empty_trailer_value_is_accepted: b"0\r\nX:\r\n\r\n" => ends(b"", b"");
        tabs_and_obs_text_in_trailer_value_are_accepted:
            b"0\r\nX:\ta\tb \xff\r\nY: z\r\n\r\nNEXT" => ends(b"", b"NEXT");

        // Positive cases.
        valid_extensions_of_every_form_are_stripped:
            b"5;a;b=c;d=\"e f\";g=\"\\\"\\\\\";h=\"\";i=\"\t\x80\"\r\nhello\r\n0;last=1\r\n\r\n"
            => ends(b"hello", b"");
        multiple_chunks_are_concatenated: b"3\r\nabc\r\n1\r\nd\r\n2\r\nef\r\n0\r\n\r\n"
            => ends(b"abcdef", b"");
        bytes_after_the_body_are_left_in_input:
            b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
            => ends(b"hello", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        empty_body_ends_at_once: b"0\r\n\r\n0\r\n\r\n" => ends(b"", b"0\r\n\r\n");
        chunk_data_may_contain_crlf_and_zero_lines: b"7\r\n0\r\n\r\n\r\n\r\n0\r\n\r\n"
            => ends(b"0\r\n\r\n\r\n", b"");

        // Truncated bodies wait (eof() then reports Incomplete).
        t024_truncated_chunk_waits: b"a\r\n01234" => waits(b"01234");
        truncated_size_line_waits: b"5;a=\"b" => waits(b"");
        truncated_trailers_wait: b"5\r\nhello\r\n0\r\nX: v\r\n" => waits(b"hello");
        missing_final_lf_waits: b"0\r\n\r" => waits(b"");
    }

    #[test]
    fn size_line_limit_is_inclusive() {
        assert_eq!(
            run(b"00000005\r\nhello\r\n0\r\n\r\n", 8, 1),
            ends(b"hello", b"")
        );
        assert_eq!(run(b"000000005\r\nhello\r\n0\r\n\r\n", 8, 1), fails(b""));
        assert_eq!(
            run(b"5;abcdef\r\nhello\r\n0\r\n\r\n", 8, 2),
            ends(b"hello", b"")
        );
        assert_eq!(run(b"5;abcdefg\r\nhello\r\n0\r\n\r\n", 8, 2), fails(b""));
        // The limit counts each line afresh.
        assert_eq!(
            run(b"5;abcdef\r\nhello\r\n0;abcdef\r\n\r\n", 8, 5),
            ends(b"hello", b"")
        );
    }

    #[test]
    fn trailer_section_is_bounded() {
        let section = |len: usize| {
            // "0\r\n" + "X:" + value + "\r\n" + "\r\n": the section is value + 6 bytes.
            let mut v = b"0\r\nX:".to_vec();
            v.extend(std::iter::repeat(b'v').take(len - 6));
            v.extend_from_slice(b"\r\n\r\n");
            v
        };
        for (len, expected) in [
            (MAX_TRAILER_BYTES, ends(b"", b"")),
            (MAX_TRAILER_BYTES + 1, fails(b"")),
        ] {
            assert_eq!(run(&section(len), 64, 1000), expected);
            assert_eq!(by_reference(&section(len), 64), expected);
        }
    }

    #[test]
    fn announced_bytes_grow_before_the_data_arrives() {
        let mut decoder = ChunkedDecoder::new(64);
        let mut buf = BytesMut::from(&b"100001\r\n"[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(decoder.announced_bytes(), 0x10_0001);
        assert!(buf.is_empty());
    }

    #[test]
    fn data_is_a_zero_copy_slice_of_the_input() {
        let mut decoder = ChunkedDecoder::new(64);
        let mut buf = BytesMut::from(&b"5\r\nhello\r\n"[..]);
        let base = buf.as_ptr() as usize;
        match decoder.decode(&mut buf) {
            Ok(Some(BodyChunk::Data(d))) => assert_eq!(d.as_ptr() as usize, base + 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chunk_header_is_lower_case_hex() {
        assert_eq!(chunk_header(1), Bytes::from_static(b"1\r\n"));
        assert_eq!(chunk_header(0xabc), Bytes::from_static(b"abc\r\n"));
    }

    // ---- An independent reference decoder: whole input, recursive descent over a slice. ----
    // (Also used by the proptests in `body/mod.rs`.)

    /// Why the reference parser stopped.
    #[derive(Debug, PartialEq, Eq)]
    pub(in crate::body) enum Stop {
        /// It ran out of input.
        More,
        /// The input is malformed.
        Bad,
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn peek(&self) -> Result<u8, Stop> {
            self.s.get(self.i).copied().ok_or(Stop::More)
        }
        fn eat(&mut self, want: u8) -> Result<(), Stop> {
            if self.peek()? != want {
                return Err(Stop::Bad);
            }
            self.i += 1;
            Ok(())
        }
        fn eat_if(&mut self, ok: impl Fn(u8) -> bool) -> Result<bool, Stop> {
            let b = self.peek()?;
            if ok(b) {
                self.i += 1;
            }
            Ok(ok(b))
        }
        fn token(&mut self) -> Result<(), Stop> {
            if !self.eat_if(is_tchar)? {
                return Err(Stop::Bad);
            }
            while self.eat_if(is_tchar)? {}
            Ok(())
        }
        fn quoted(&mut self) -> Result<(), Stop> {
            self.eat(b'"')?;
            loop {
                match self.peek()? {
                    b'"' => return self.eat(b'"'),
                    b'\\' => {
                        self.i += 1;
                        if !self.eat_if(|b| b == b'\t' || b == b' ' || (b > 0x20 && b != 0x7f))? {
                            return Err(Stop::Bad);
                        }
                    }
                    b if b == b'\t' || b == b' ' || (b > 0x20 && b != 0x7f) => self.i += 1,
                    _ => return Err(Stop::Bad),
                }
            }
        }
        /// chunk-size [ chunk-ext ], up to (not including) the CR.
        fn size_line(&mut self) -> Result<u64, Stop> {
            let start = self.i;
            let digits = loop {
                match self.peek() {
                    Ok(b) if b.is_ascii_hexdigit() => self.i += 1,
                    Ok(_) => break &self.s[start..self.i],
                    Err(stop) => {
                        let digits = &self.s[start..self.i];
                        let significant = digits.iter().skip_while(|&&d| d == b'0').count();
                        return Err(if significant > 16 { Stop::Bad } else { stop });
                    }
                }
            };
            let significant: Vec<u8> = digits.iter().copied().skip_while(|&d| d == b'0').collect();
            if digits.is_empty() || significant.len() > 16 {
                return Err(Stop::Bad);
            }
            let text = std::str::from_utf8(&significant).map_err(|_| Stop::Bad)?;
            let size = if text.is_empty() {
                0
            } else {
                u64::from_str_radix(text, 16).map_err(|_| Stop::Bad)?
            };
            while self.peek()? == b';' {
                self.i += 1;
                self.token()?;
                if self.peek()? == b'=' {
                    self.i += 1;
                    if self.peek()? == b'"' {
                        self.quoted()?;
                    } else {
                        self.token()?;
                    }
                }
            }
            if self.peek()? != b'\r' {
                return Err(Stop::Bad);
            }
            Ok(size)
        }
        fn trailers(&mut self) -> Result<(), Stop> {
            while self.peek()? != b'\r' {
                self.token()?;
                self.eat(b':')?;
                while self.eat_if(|b| b == b'\t' || b == b' ' || (b > 0x20 && b != 0x7f))? {}
                self.eat(b'\r')?;
                self.eat(b'\n')?;
            }
            self.eat(b'\r')?;
            self.eat(b'\n')
        }
    }

    /// Decodes a whole chunked input: the data, then the offset where the body ended or why not.
    pub(in crate::body) fn reference(
        input: &[u8],
        max_line: usize,
    ) -> (Vec<u8>, Result<usize, Stop>) {
        let mut p = Parser { s: input, i: 0 };
        let mut data = Vec::new();
        let result = (|| loop {
            let start = p.i;
            let size = p.size_line();
            if p.i - start > max_line {
                return Err(Stop::Bad);
            }
            let size = size?;
            p.eat(b'\r')?;
            p.eat(b'\n')?;
            if size == 0 {
                let start = p.i;
                let trailers = p.trailers();
                if p.i - start > MAX_TRAILER_BYTES {
                    return Err(Stop::Bad);
                }
                trailers?;
                return Ok(p.i);
            }
            let available = input.len() - p.i;
            let take = usize::try_from(size).map_or(available, |s| s.min(available));
            data.extend_from_slice(&input[p.i..p.i + take]);
            p.i += take;
            if u64::try_from(take).unwrap_or(u64::MAX) < size {
                return Err(Stop::More);
            }
            p.eat(b'\r')?;
            p.eat(b'\n')?;
        })();
        (data, result)
    }
}
