//! Message bodies: decoding what a peer sends, encoding what the proxy forwards.
//!
//! The proxy never forwards body framing as received: it decodes the body into its data bytes
//! ([`BodyDecoder`]) and frames them again for the next hop ([`BodyEncoder`]). That is the only
//! sound way to stop request smuggling through framing tricks: whatever the peer's framing said,
//! the next hop sees one canonical framing that matches the head the proxy wrote. Chunk
//! extensions and trailers are dropped on the way (see [`chunked`]).
//!
//! Both halves are streaming and sans-IO. The decoder takes bytes from the front of the caller's
//! receive buffer and hands out zero-copy `Bytes` slices of it, so memory stays bounded by the
//! caller's buffer whatever the body size, and every byte is looked at once at most (chunk data
//! not at all). The encoder pushes `Bytes` into the caller's output queue, again without copying
//! data.

pub mod chunked;

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use self::chunked::ChunkedDecoder;
use crate::head::BodyFraming;

/// A piece of a decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyChunk {
    /// Body data (a zero-copy slice of the input). Never empty.
    Data(Bytes),
    /// The body is complete.
    End,
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyError {
    /// The chunked framing is malformed (any deviation from RFC 9112 §7.1, an overlong size
    /// line, an overflowing size, or an oversized trailer section).
    InvalidChunked,
    /// The sender closed before the body was complete.
    Incomplete,
}

/// How the decoder is progressing, per framing.
#[derive(Debug, Clone)]
enum Decoding {
    /// `Length(n)`, and `None` as `Length(0)`: this many bytes still to come.
    Length { remaining: u64 },
    /// Everything until the sender closes; `closed` once `eof` was called.
    CloseDelimited { closed: bool },
    /// The chunked coding.
    Chunked(ChunkedDecoder),
}

/// Decodes one body of a given framing from a receive buffer.
///
/// Call [`decode`](Self::decode) after each read until it returns `Ok(None)` (read more),
/// `Ok(Some(BodyChunk::End))` (the body is complete; what is left in the buffer belongs to the
/// next message) or an error (the framing is malformed: close the connection). Call
/// [`eof`](Self::eof) when the peer closes.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    framing: BodyFraming,
    decoding: Decoding,
    /// Data bytes handed out so far.
    decoded: u64,
}

impl BodyDecoder {
    /// A decoder for a body of `framing`; chunk-size lines longer than `max_chunk_line` are refused.
    pub fn new(framing: BodyFraming, max_chunk_line: usize) -> Self {
        let decoding = match framing {
            BodyFraming::None => Decoding::Length { remaining: 0 },
            BodyFraming::Length(n) => Decoding::Length { remaining: n },
            BodyFraming::CloseDelimited => Decoding::CloseDelimited { closed: false },
            BodyFraming::Chunked => Decoding::Chunked(ChunkedDecoder::new(max_chunk_line)),
        };
        Self {
            framing,
            decoding,
            decoded: 0,
        }
    }

    /// Takes what it can from the front of `input`. `Ok(None)`: more input is needed.
    ///
    /// Returns at most one item per call: `Some(Data(bytes))` split off the front of `input`,
    /// `Some(End)` once the body is complete (and again on every later call, consuming nothing:
    /// bytes after the body stay in `input`), or `None` once every byte of `input` was consumed
    /// as framing and more is needed. Errors are final: later calls return the same error.
    pub fn decode(&mut self, input: &mut BytesMut) -> Result<Option<BodyChunk>, BodyError> {
        let item = match &mut self.decoding {
            Decoding::Length { remaining: 0 } => return Ok(Some(BodyChunk::End)),
            Decoding::Length { remaining } => {
                if input.is_empty() {
                    return Ok(None);
                }
                let n = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                *remaining = remaining.saturating_sub(as_u64(n));
                BodyChunk::Data(input.split_to(n).freeze())
            }
            Decoding::CloseDelimited { closed: true } => return Ok(Some(BodyChunk::End)),
            Decoding::CloseDelimited { closed: false } => {
                if input.is_empty() {
                    return Ok(None);
                }
                BodyChunk::Data(input.split().freeze())
            }
            Decoding::Chunked(chunked) => match chunked.decode(input)? {
                Some(item) => item,
                None => return Ok(None),
            },
        };
        if let BodyChunk::Data(data) = &item {
            self.decoded = self.decoded.saturating_add(as_u64(data.len()));
        }
        Ok(Some(item))
    }

    /// The sender closed. `Ok(BodyChunk::End)` for a close-delimited body, else `Incomplete`.
    ///
    /// A body that was already complete also gives `End`; a chunked body already found malformed
    /// gives `InvalidChunked`.
    pub fn eof(&mut self) -> Result<BodyChunk, BodyError> {
        match &mut self.decoding {
            Decoding::Length { remaining: 0 } => Ok(BodyChunk::End),
            Decoding::Length { .. } => Err(BodyError::Incomplete),
            Decoding::CloseDelimited { closed } => {
                *closed = true;
                Ok(BodyChunk::End)
            }
            Decoding::Chunked(chunked) => chunked.eof(),
        }
    }

    /// The framing this decoder was made for.
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// Whether the body is complete (`decode` would return `End`).
    pub fn is_done(&self) -> bool {
        match &self.decoding {
            Decoding::Length { remaining } => *remaining == 0,
            Decoding::CloseDelimited { closed } => *closed,
            Decoding::Chunked(chunked) => chunked.is_done(),
        }
    }

    /// Data bytes still to come for a `Length` (or `None`) body; `None` for the other framings.
    pub fn remaining(&self) -> Option<u64> {
        match &self.decoding {
            Decoding::Length { remaining } => Some(*remaining),
            Decoding::CloseDelimited { .. } | Decoding::Chunked(_) => None,
        }
    }

    /// For a chunked body, the data bytes of the current chunk not handed out yet (0 between
    /// chunks and for the other framings). Passed to [`BodyEncoder::chunk_data`] so that chunk
    /// boundaries survive the proxy whatever the read sizes were.
    pub fn remaining_in_chunk(&self) -> u64 {
        match &self.decoding {
            Decoding::Chunked(chunked) => chunked.remaining_in_chunk(),
            _ => 0,
        }
    }

    /// Data bytes handed out so far (saturating at `u64::MAX`).
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded
    }

    /// Data bytes the peer has committed to send so far: the `Content-Length`, the sum of the
    /// chunk sizes read (known before the chunk's data arrives), or what was decoded of a
    /// close-delimited body. Compare it with a body limit to refuse (413) before reading data.
    pub fn announced_bytes(&self) -> u64 {
        match &self.decoding {
            Decoding::Length { .. } => match self.framing {
                BodyFraming::Length(n) => n,
                _ => 0,
            },
            Decoding::CloseDelimited { .. } => self.decoded,
            Decoding::Chunked(chunked) => chunked.announced_bytes(),
        }
    }
}

/// `n` as a u64 (usize is at most 64 bits on every supported target).
fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Frames body data for the next hop.
///
/// `Length` and `CloseDelimited` pass data through unchanged (the head the proxy wrote already
/// says how long the body is); `Chunked` frames each piece as one chunk, without extensions, and
/// `finish` writes the last chunk with no trailers. For `None` there is no body: callers never
/// pass data, and any they pass is ignored rather than corrupting the stream.
#[derive(Debug, Clone)]
pub struct BodyEncoder {
    framing: BodyFraming,
    finished: bool,
    /// Data bytes still owed to the chunk whose header was written by `chunk_data`.
    open_chunk: u64,
}

impl BodyEncoder {
    /// An encoder producing `framing` (`Length` passes data through; `Chunked` re-chunks).
    pub fn new(framing: BodyFraming) -> Self {
        Self {
            framing,
            finished: false,
            open_chunk: 0,
        }
    }

    /// Appends `data`, a piece of a chunk that has `rest` more data bytes to come (from
    /// [`BodyDecoder::remaining_in_chunk`]), framed, to `out`.
    ///
    /// For `Chunked` output this re-creates the sender's chunk sizes: the chunk header is written
    /// with the first piece (size = piece + rest), the following pieces pass as-is, and the chunk
    /// ends after its last piece. So the bytes sent do not depend on how reads split the input
    /// (and no chunk is ever buffered whole). Other framings pass data through as [`data`](Self::data).
    pub fn chunk_data(&mut self, data: Bytes, rest: u64, out: &mut VecDeque<Bytes>) {
        if self.framing != BodyFraming::Chunked || (self.open_chunk == 0 && rest == 0) {
            return self.data(data, out);
        }
        if data.is_empty() || self.finished {
            return;
        }
        if self.open_chunk == 0 {
            let size = as_u64(data.len()).saturating_add(rest);
            out.push_back(chunked::chunk_header_u64(size));
        }
        self.open_chunk = rest;
        out.push_back(data);
        if rest == 0 {
            out.push_back(Bytes::from_static(chunked::CHUNK_END));
        }
    }

    /// Appends `data`, framed, to `out`.
    ///
    /// `data` itself is pushed as-is (zero-copy). Empty data is skipped: as a chunk it would end
    /// the body. Data after [`finish`](Self::finish) is ignored: the body has already ended.
    pub fn data(&mut self, data: Bytes, out: &mut VecDeque<Bytes>) {
        if data.is_empty() || self.finished {
            return;
        }
        match self.framing {
            BodyFraming::None => {}
            BodyFraming::Length(_) | BodyFraming::CloseDelimited => out.push_back(data),
            BodyFraming::Chunked => {
                out.push_back(chunked::chunk_header(data.len()));
                out.push_back(data);
                out.push_back(Bytes::from_static(chunked::CHUNK_END));
            }
        }
    }

    /// Appends the end of the body (the last chunk for chunked) to `out`. Only the first call
    /// writes anything.
    pub fn finish(&mut self, out: &mut VecDeque<Bytes>) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.framing == BodyFraming::Chunked {
            out.push_back(Bytes::from_static(chunked::LAST_CHUNK));
        }
    }

    /// Whether [`finish`](Self::finish) was called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::chunked::tests::{reference, Stop};
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;

    /// How feeding an input ended.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Outcome {
        /// End, with the bytes left after the body (in the buffer or not yet fed).
        Ended(Vec<u8>),
        /// The framing was refused.
        Failed(BodyError),
        /// Every byte was consumed and more is needed.
        Waiting,
    }

    /// Feeds `input` to a decoder in the pieces cut at `cuts` (sorted offsets), draining it after
    /// each piece. Returns the concatenated data and how it ended.
    fn feed(
        framing: BodyFraming,
        max_line: usize,
        input: &[u8],
        cuts: &[usize],
    ) -> (Vec<u8>, Outcome) {
        let mut decoder = BodyDecoder::new(framing, max_line);
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
        bounds.push(input.len());
        let mut fed = 0;
        let mut pieces = bounds.into_iter();
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(BodyChunk::Data(d))) => {
                    assert!(!d.is_empty(), "empty Data item");
                    data.extend_from_slice(&d);
                    assert!(as_u64(data.len()) <= as_u64(fed), "more data than input");
                    assert_eq!(decoder.decoded_bytes(), as_u64(data.len()));
                }
                Ok(Some(BodyChunk::End)) => {
                    assert!(decoder.is_done());
                    let before = buf.clone();
                    assert_eq!(decoder.decode(&mut buf), Ok(Some(BodyChunk::End)));
                    assert_eq!(buf, before, "End consumed bytes");
                    let mut rest = buf.to_vec();
                    rest.extend_from_slice(&input[fed..]);
                    return (data, Outcome::Ended(rest));
                }
                Err(e) => return (data, Outcome::Failed(e)),
                Ok(None) => {
                    if framing != BodyFraming::CloseDelimited {
                        assert!(buf.is_empty(), "None left framing bytes unconsumed");
                    }
                    match pieces.next() {
                        Some(end) if end >= fed => {
                            buf.extend_from_slice(&input[fed..end]);
                            fed = end;
                        }
                        Some(_) => {}
                        None => return (data, Outcome::Waiting),
                    }
                }
            }
        }
    }

    fn whole(framing: BodyFraming, input: &[u8]) -> (Vec<u8>, Outcome) {
        feed(framing, 64, input, &[])
    }

    fn bytewise(framing: BodyFraming, input: &[u8]) -> (Vec<u8>, Outcome) {
        let cuts: Vec<usize> = (0..input.len()).collect();
        feed(framing, 64, input, &cuts)
    }

    /// Each row: framing, input, expected data, expected outcome; run whole and byte by byte.
    macro_rules! framing {
        ($($name:ident: $framing:expr, $input:expr => $data:expr, $outcome:expr;)*) => {$(
            #[test]
            fn $name() {
                let expected = ($data.to_vec(), $outcome);
                assert_eq!(whole($framing, $input), expected, "whole");
                assert_eq!(bytewise($framing, $input), expected, "byte by byte");
            }
        )*};
    }

    fn ended(rest: &[u8]) -> Outcome {
        Outcome::Ended(rest.to_vec())
    }

    framing! {
        no_body_ends_at_once_and_consumes_nothing:
            BodyFraming::None, b"GET / HTTP/1.1\r\n" => b"", ended(b"GET / HTTP/1.1\r\n");
        zero_length_ends_at_once: BodyFraming::Length(0), b"next" => b"", ended(b"next");
        length_body_stops_at_its_length:
            BodyFraming::Length(5), b"helloGET / HTTP/1.1\r\n\r\n" => b"hello", ended(b"GET / HTTP/1.1\r\n\r\n");
        t022_cl_zero_leaves_the_next_request:
            BodyFraming::Length(0), b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
            => b"", ended(b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n");
        t026_length_body_then_pipelined_request:
            BodyFraming::Length(5), b"helloGET / HTTP/1.1\r\nHost: a\r\n\r\n"
            => b"hello", ended(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        t024_truncated_length_body_waits: BodyFraming::Length(10), b"12345" => b"12345", Outcome::Waiting;
        close_delimited_takes_everything:
            BodyFraming::CloseDelimited, b"0\r\n\r\nanything" => b"0\r\n\r\nanything", Outcome::Waiting;
        chunked_body_leaves_the_next_request:
            BodyFraming::Chunked, b"5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\nGET / HTTP/1.1\r\n"
            => b"hello", ended(b"GET / HTTP/1.1\r\n");
        chunked_error_is_invalid_chunked:
            BodyFraming::Chunked, b"5\r\nhello\n" => b"hello", Outcome::Failed(BodyError::InvalidChunked);
    }

    #[test]
    fn eof_ends_only_complete_or_close_delimited_bodies() {
        let mut d = BodyDecoder::new(BodyFraming::CloseDelimited, 64);
        assert!(!d.is_done());
        assert_eq!(d.eof(), Ok(BodyChunk::End));
        assert!(d.is_done());
        assert_eq!(
            d.decode(&mut BytesMut::from(&b"x"[..])),
            Ok(Some(BodyChunk::End))
        );

        for framing in [BodyFraming::None, BodyFraming::Length(0)] {
            assert_eq!(BodyDecoder::new(framing, 64).eof(), Ok(BodyChunk::End));
        }
        let mut d = BodyDecoder::new(BodyFraming::Length(10), 64);
        let mut buf = BytesMut::from(&b"12345"[..]);
        assert!(matches!(d.decode(&mut buf), Ok(Some(BodyChunk::Data(_)))));
        assert_eq!(d.remaining(), Some(5));
        assert_eq!(d.eof(), Err(BodyError::Incomplete));

        let mut d = BodyDecoder::new(BodyFraming::Chunked, 64);
        assert_eq!(d.eof(), Err(BodyError::Incomplete));
        let mut buf = BytesMut::from(&b"0\r\n\r\n"[..]);
        assert_eq!(d.decode(&mut buf), Ok(Some(BodyChunk::End)));
        assert_eq!(d.eof(), Ok(BodyChunk::End));

        let mut d = BodyDecoder::new(BodyFraming::Chunked, 64);
        let mut buf = BytesMut::from(&b"5 \r\n"[..]);
        assert_eq!(d.decode(&mut buf), Err(BodyError::InvalidChunked));
        assert_eq!(d.eof(), Err(BodyError::InvalidChunked));
    }

    #[test]
    fn t042_announced_bytes_allow_a_413_before_the_data() {
        let mut d = BodyDecoder::new(BodyFraming::Chunked, 64);
        let mut buf = BytesMut::from(&b"100001\r\n"[..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert!(d.announced_bytes() > 1024 * 1024);
        assert_eq!(d.decoded_bytes(), 0);
        assert_eq!(
            BodyDecoder::new(BodyFraming::Length(7), 64).announced_bytes(),
            7
        );
    }

    #[test]
    fn huge_length_body_streams_what_arrives() {
        let mut d = BodyDecoder::new(BodyFraming::Length(u64::MAX), 64);
        let mut buf = BytesMut::from(&b"abc"[..]);
        assert_eq!(
            d.decode(&mut buf),
            Ok(Some(BodyChunk::Data(Bytes::from_static(b"abc"))))
        );
        assert_eq!(d.remaining(), Some(u64::MAX - 3));
    }

    fn encode(framing: BodyFraming, pieces: &[&[u8]]) -> Vec<u8> {
        let mut enc = BodyEncoder::new(framing);
        let mut out = VecDeque::new();
        for p in pieces {
            enc.data(Bytes::copy_from_slice(p), &mut out);
        }
        enc.finish(&mut out);
        enc.finish(&mut out);
        assert!(enc.is_finished());
        enc.data(Bytes::from_static(b"late"), &mut out);
        out.iter().flat_map(|b| b.iter().copied()).collect()
    }

    #[test]
    fn chunked_encoder_frames_each_piece_and_skips_empty_ones() {
        assert_eq!(
            encode(
                BodyFraming::Chunked,
                &[b"hello", b"", b"0123456789abcdefXY"]
            ),
            b"5\r\nhello\r\n12\r\n0123456789abcdefXY\r\n0\r\n\r\n"
        );
        assert_eq!(encode(BodyFraming::Chunked, &[]), b"0\r\n\r\n");
    }

    #[test]
    fn length_and_close_delimited_encoders_pass_data_through() {
        for framing in [BodyFraming::Length(10), BodyFraming::CloseDelimited] {
            assert_eq!(encode(framing, &[b"hello", b"", b"world"]), b"helloworld");
        }
        assert_eq!(encode(BodyFraming::None, &[b"ignored"]), b"");
    }

    #[test]
    fn chunked_encoder_pushes_data_without_copying() {
        let mut enc = BodyEncoder::new(BodyFraming::Chunked);
        let mut out = VecDeque::new();
        let data = Bytes::from(vec![7u8; 100]);
        enc.data(data.clone(), &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[1].as_ptr(), data.as_ptr());
    }

    fn agree_with_reference(
        input: &[u8],
        max_line: usize,
        cuts: &[usize],
    ) -> Result<(), TestCaseError> {
        let (ref_data, ref_result) = reference(input, max_line);
        let (data, outcome) = feed(BodyFraming::Chunked, max_line, input, cuts);
        prop_assert_eq!(&data, &ref_data);
        match (ref_result, outcome) {
            (Ok(end), Outcome::Ended(rest)) => prop_assert_eq!(&rest[..], &input[end..]),
            (Err(Stop::Bad), Outcome::Failed(BodyError::InvalidChunked)) => {}
            (Err(Stop::More), Outcome::Waiting) => {}
            (r, o) => prop_assert!(false, "reference {:?}, decoder {:?}", r, o),
        }
        Ok(())
    }

    #[test]
    fn reference_decoder_agrees_on_the_table_cases() {
        for (input, ends) in [
            (
                &b"5;a=\"b\\\"c\"\r\nhello\r\n0\r\nX: y\r\n\r\nrest"[..],
                true,
            ),
            (b"5 \r\nhello\r\n0\r\n\r\n", false),
            (b"2\r\r;a\r\n", false),
            (b"10000000000000000", false),
        ] {
            let (_, r) = reference(input, 64);
            assert_eq!(r.is_ok(), ends, "{input:?}");
            agree_with_reference(input, 64, &[]).unwrap();
        }
    }

    // ---- Generators. ----

    fn token() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,6}"
    }

    fn ext_value() -> impl Strategy<Value = String> {
        prop_oneof![
            token(),
            "([ \t!#-\\[\\]-~]|\\\\[ -~]){0,6}".prop_map(|s| format!("\"{s}\"")),
        ]
    }

    fn extensions() -> impl Strategy<Value = String> {
        prop::collection::vec((token(), prop::option::of(ext_value())), 0..3).prop_map(|exts| {
            exts.into_iter()
                .map(|(n, v)| match v {
                    Some(v) => format!(";{n}={v}"),
                    None => format!(";{n}"),
                })
                .collect()
        })
    }

    fn size_line(len: usize) -> impl Strategy<Value = Vec<u8>> {
        (0usize..3, any::<bool>(), extensions()).prop_map(move |(zeros, upper, ext)| {
            let hex = if upper {
                format!("{len:X}")
            } else {
                format!("{len:x}")
            };
            format!("{}{hex}{ext}\r\n", "0".repeat(zeros)).into_bytes()
        })
    }

    fn chunk() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
        prop::collection::vec(any::<u8>(), 1..24)
            .prop_flat_map(|data| (size_line(data.len()), Just(data)))
    }

    /// A valid chunked body followed by some next-message bytes; also returns its data.
    fn valid_chunked() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, usize)> {
        (
            prop::collection::vec(chunk(), 0..5),
            size_line(0),
            prop::collection::vec((token(), "[ \t!-~]{0,8}"), 0..3),
            prop::collection::vec(any::<u8>(), 0..8),
        )
            .prop_map(|(chunks, last, trailers, rest)| {
                let mut input = Vec::new();
                let mut data = Vec::new();
                for (line, d) in chunks {
                    input.extend_from_slice(&line);
                    input.extend_from_slice(&d);
                    input.extend_from_slice(b"\r\n");
                    data.extend_from_slice(&d);
                }
                input.extend_from_slice(&last);
                for (name, value) in trailers {
                    input.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
                }
                input.extend_from_slice(b"\r\n");
                let end = input.len();
                input.extend_from_slice(&rest);
                (input, data, end)
            })
    }

    /// Bytes that matter to the chunked grammar, for mutations (replace, insert, delete, cut).
    const INTERESTING: &[u8] = b"\r\n \t;=\"\\:0aF9xZ+-\x00\x7f\x80";

    fn mutated_chunked() -> impl Strategy<Value = Vec<u8>> {
        (
            valid_chunked(),
            prop::collection::vec(
                (any::<Index>(), 0u8..7, prop::sample::select(INTERESTING)),
                1..4,
            ),
        )
            .prop_map(|((mut input, _, _), edits)| {
                for (at, kind, byte) in edits {
                    if input.is_empty() {
                        input.push(byte);
                        continue;
                    }
                    let i = at.index(input.len());
                    match kind {
                        0 | 1 => input[i] = byte,
                        2 | 3 => input.insert(i, byte),
                        4 | 5 => {
                            input.remove(i);
                        }
                        _ => input.truncate(i),
                    }
                }
                input
            })
    }

    fn cuts() -> impl Strategy<Value = Vec<Index>> {
        prop::collection::vec(any::<Index>(), 0..8)
    }

    fn cut_points(cuts: &[Index], len: usize) -> Vec<usize> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
        points.sort_unstable();
        points
    }

    fn framing() -> impl Strategy<Value = BodyFraming> {
        prop_oneof![
            Just(BodyFraming::None),
            (0u64..40).prop_map(BodyFraming::Length),
            Just(BodyFraming::Length(u64::MAX)),
            Just(BodyFraming::Chunked),
            Just(BodyFraming::CloseDelimited),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn decoding_what_the_encoder_wrote_gives_back_the_data(
            pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..8),
            rest in prop::collection::vec(any::<u8>(), 0..8),
            cuts in cuts(),
        ) {
            let slices: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
            let mut wire = encode(BodyFraming::Chunked, &slices);
            wire.extend_from_slice(&rest);
            let (data, outcome) = feed(BodyFraming::Chunked, 64, &wire, &cut_points(&cuts, wire.len()));
            prop_assert_eq!(data, pieces.concat());
            prop_assert_eq!(outcome, Outcome::Ended(rest));
        }

        #[test]
        fn valid_chunked_bodies_decode_the_same_however_they_are_split(
            (input, data, end) in valid_chunked(),
            cuts in cuts(),
        ) {
            let expected = (data, Outcome::Ended(input[end..].to_vec()));
            prop_assert_eq!(whole(BodyFraming::Chunked, &input), expected.clone());
            prop_assert_eq!(feed(BodyFraming::Chunked, 64, &input, &cut_points(&cuts, input.len())), expected.clone());
            prop_assert_eq!(bytewise(BodyFraming::Chunked, &input), expected);
        }

        #[test]
        fn mutated_chunked_bodies_decode_the_same_however_they_are_split(
            input in mutated_chunked(),
            cuts in cuts(),
        ) {
            let expected = whole(BodyFraming::Chunked, &input);
            prop_assert_eq!(feed(BodyFraming::Chunked, 64, &input, &cut_points(&cuts, input.len())), expected.clone());
            prop_assert_eq!(bytewise(BodyFraming::Chunked, &input), expected);
        }

        #[test]
        fn the_decoder_agrees_with_the_reference_on_valid_bodies(
            (input, _, _) in valid_chunked(),
            max_line in 1usize..40,
            cuts in cuts(),
        ) {
            agree_with_reference(&input, max_line, &cut_points(&cuts, input.len()))?;
        }

        #[test]
        fn the_decoder_agrees_with_the_reference_on_mutated_bodies(
            input in mutated_chunked(),
            max_line in 1usize..40,
            cuts in cuts(),
        ) {
            agree_with_reference(&input, max_line, &cut_points(&cuts, input.len()))?;
        }

        #[test]
        fn the_decoder_agrees_with_the_reference_on_grammar_soup(
            input in prop::collection::vec(prop::sample::select(INTERESTING), 0..40),
            max_line in 1usize..40,
        ) {
            agree_with_reference(&input, max_line, &[])?;
        }

        #[test]
        fn arbitrary_bytes_never_panic_nor_yield_more_than_was_fed(
            framing in framing(),
            input in prop::collection::vec(any::<u8>(), 0..200),
            max_line in 0usize..80,
            cuts in cuts(),
        ) {
            let (data, outcome) = feed(framing, max_line, &input, &cut_points(&cuts, input.len()));
            prop_assert!(data.len() <= input.len());
            if let BodyFraming::Length(n) = framing {
                prop_assert!(as_u64(data.len()) <= n);
            }
            if let Outcome::Ended(rest) = outcome {
                prop_assert!(data.len() + rest.len() <= input.len());
            }
        }
    }
}
