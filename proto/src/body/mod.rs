//! Message bodies: decoding what a peer sends, encoding what the proxy forwards
//! (STUB: being written).

pub mod chunked;

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::head::BodyFraming;

/// A piece of a decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyChunk {
    /// Body data (a zero-copy slice of the input).
    Data(Bytes),
    /// The body is complete.
    End,
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyError {
    /// The chunked framing is malformed.
    InvalidChunked,
    /// The sender closed before the body was complete.
    Incomplete,
}

/// Decodes one body of a given framing from a receive buffer.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    framing: BodyFraming,
}

impl BodyDecoder {
    /// A decoder for a body of `framing`; chunk-size lines longer than `max_chunk_line` are refused.
    pub fn new(framing: BodyFraming, max_chunk_line: usize) -> Self {
        let _ = max_chunk_line;
        Self { framing }
    }

    /// Takes what it can from the front of `input`. `Ok(None)`: more input is needed.
    pub fn decode(&mut self, input: &mut BytesMut) -> Result<Option<BodyChunk>, BodyError> {
        let _ = (input, self.framing);
        Ok(None)
    }

    /// The sender closed. `Ok(BodyChunk::End)` for a close-delimited body, else `Incomplete`.
    pub fn eof(&mut self) -> Result<BodyChunk, BodyError> {
        Err(BodyError::Incomplete)
    }
}

/// Frames body data for the next hop.
#[derive(Debug, Clone)]
pub struct BodyEncoder {
    framing: BodyFraming,
}

impl BodyEncoder {
    /// An encoder producing `framing` (`Length` passes data through; `Chunked` re-chunks).
    pub fn new(framing: BodyFraming) -> Self {
        Self { framing }
    }

    /// Appends `data`, framed, to `out`.
    pub fn data(&mut self, data: Bytes, out: &mut VecDeque<Bytes>) {
        let _ = self.framing;
        out.push_back(data);
    }

    /// Appends the end of the body (the last chunk for chunked) to `out`.
    pub fn finish(&mut self, out: &mut VecDeque<Bytes>) {
        let _ = out;
    }
}
