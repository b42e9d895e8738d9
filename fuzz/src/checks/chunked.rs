//! The `chunked` target: body framing, decoded and re-encoded.
//!
//! Two properties, chosen by the first input byte:
//! * **round trip** — data cut into arbitrary pieces, framed by `BodyEncoder(Chunked)`, then fed
//!   to `BodyDecoder(Chunked)` in other arbitrary pieces, gives back exactly the data and ends
//!   exactly at the end of the encoding; the reference decoder agrees;
//! * **differential** — arbitrary bytes fed to `BodyDecoder(Chunked)` in arbitrary pieces give
//!   the same data, the same announced size and the same ending (end at the same offset, error,
//!   or need more) as the reference decoder reading them whole; `eof()` agrees too.
//!
//! `Length` framing gets the same differential against the obvious model.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use switchyard_proto::body::{BodyChunk, BodyDecoder, BodyEncoder, BodyError};
use switchyard_proto::head::BodyFraming;

use super::input::{pieces, Source};
use super::reference::{self, Stop};
use super::wire::show;
use super::{Checked, Violation};

/// How a streaming decode ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    /// `End` was returned; the bytes after the body (left in the buffer or never fed).
    End(Vec<u8>),
    /// The framing was refused.
    Error,
    /// Every byte was fed and consumed; more is needed.
    More,
}

/// What a streaming decode produced.
#[derive(Debug)]
struct Streamed {
    data: Vec<u8>,
    ending: Ending,
    announced: u64,
    decoded: u64,
    eof: Result<BodyChunk, BodyError>,
}

/// Feeds `input` to a fresh decoder in the pieces cut at `cuts`, draining after each piece, and
/// checks the decoder's per-call contract on the way.
fn stream(
    framing: BodyFraming,
    max_line: usize,
    input: &[u8],
    cuts: &[usize],
) -> Result<Streamed, Violation> {
    let mut decoder = BodyDecoder::new(framing, max_line);
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    let mut fed = 0;
    let mut pending = pieces(input, cuts).into_iter();
    let ending = loop {
        match decoder.decode(&mut buf) {
            Ok(Some(BodyChunk::Data(d))) => {
                ensure!(
                    !d.is_empty(),
                    "chunked.empty-data",
                    "decode returned an empty Data"
                );
                data.extend_from_slice(&d);
            }
            Ok(Some(BodyChunk::End)) => {
                let before = buf.clone();
                let again = decoder.decode(&mut buf);
                ensure!(
                    again == Ok(Some(BodyChunk::End)) && buf == before,
                    "chunked.end-sticky",
                    "after End, decode gave {again:?} and consumed {} bytes",
                    before.len() - buf.len()
                );
                ensure!(
                    decoder.is_done(),
                    "chunked.end-sticky",
                    "End but not is_done()"
                );
                let mut rest = buf.to_vec();
                rest.extend_from_slice(&input[fed..]);
                break Ending::End(rest);
            }
            Err(e) => {
                let again = decoder.decode(&mut buf);
                ensure!(
                    again == Err(e),
                    "chunked.error-sticky",
                    "error {e:?} then {again:?}"
                );
                break Ending::Error;
            }
            Ok(None) => {
                if framing != BodyFraming::CloseDelimited {
                    ensure!(
                        buf.is_empty(),
                        "chunked.none-consumes",
                        "decode returned None with {} framing bytes left",
                        buf.len()
                    );
                }
                match pending.next() {
                    Some(piece) => {
                        buf.extend_from_slice(piece);
                        fed += piece.len();
                    }
                    None => break Ending::More,
                }
            }
        }
    };
    let decoded = decoder.decoded_bytes();
    let announced = decoder.announced_bytes();
    let eof = decoder.eof();
    Ok(Streamed {
        data,
        ending,
        announced,
        decoded,
        eof,
    })
}

/// The streaming decoder and the reference decoder agree on `input`.
fn differential(max_line: usize, input: &[u8], cuts: &[usize]) -> Checked {
    let got = stream(BodyFraming::Chunked, max_line, input, cuts)?;
    let want = reference::decode(input, max_line);
    let want_ending = match want.end {
        Ok(end) => Ending::End(input[end..].to_vec()),
        Err(Stop::Bad) => Ending::Error,
        Err(Stop::More) => Ending::More,
    };
    let context = || {
        format!(
            "max_line {max_line}, cuts {cuts:?}, input {:?}",
            show(input)
        )
    };
    ensure!(
        got.data == want.data,
        "chunked.same-data",
        "decoder data {:?} != reference {:?}; {}",
        show(&got.data),
        show(&want.data),
        context()
    );
    ensure!(
        got.ending == want_ending,
        "chunked.same-ending",
        "decoder ended {:?}, reference {:?}; {}",
        got.ending,
        want_ending,
        context()
    );
    ensure!(
        got.decoded == got.data.len() as u64,
        "chunked.decoded-bytes",
        "decoded_bytes {} != {} data bytes; {}",
        got.decoded,
        got.data.len(),
        context()
    );
    // Announced sizes only differ once the decoder failed (it stops counting at the error).
    if got.ending != Ending::Error {
        ensure!(
            got.announced == want.announced,
            "chunked.announced",
            "announced_bytes {} != reference {}; {}",
            got.announced,
            want.announced,
            context()
        );
    }
    let want_eof = match got.ending {
        Ending::End(_) => Ok(BodyChunk::End),
        Ending::Error => Err(BodyError::InvalidChunked),
        Ending::More => Err(BodyError::Incomplete),
    };
    ensure!(
        got.eof == want_eof,
        "chunked.eof",
        "eof() gave {:?} after ending {:?}; {}",
        got.eof,
        got.ending,
        context()
    );
    Ok(())
}

/// `BodyEncoder(Chunked)` output decodes back to the data, ending exactly at its end.
fn round_trip(data: &[u8], write_cuts: &[usize], read_cuts: &[usize], trailing: &[u8]) -> Checked {
    let mut encoder = BodyEncoder::new(BodyFraming::Chunked);
    let mut queue = VecDeque::new();
    for piece in pieces(data, write_cuts) {
        encoder.data(Bytes::copy_from_slice(piece), &mut queue);
    }
    encoder.finish(&mut queue);
    encoder.finish(&mut queue);
    encoder.data(Bytes::from_static(b"after the end"), &mut queue);
    let mut wire: Vec<u8> = queue.iter().flat_map(|b| b.iter().copied()).collect();
    let encoded_len = wire.len();
    wire.extend_from_slice(trailing);
    let got = stream(BodyFraming::Chunked, 64, &wire, read_cuts)?;
    ensure!(
        got.data == data && got.ending == Ending::End(trailing.to_vec()),
        "chunked.round-trip",
        "encoded {:?} (pieces at {write_cuts:?}) decoded to {:?} ending {:?}",
        show(&wire[..encoded_len]),
        show(&got.data),
        got.ending
    );
    differential(64, &wire, read_cuts)
}

/// `Length(n)`: the first `n` bytes are the body, the rest is left.
fn length(n: u64, input: &[u8], cuts: &[usize]) -> Checked {
    let got = stream(BodyFraming::Length(n), 64, input, cuts)?;
    let take = usize::try_from(n).map_or(input.len(), |n| n.min(input.len()));
    let want = if (take as u64) == n {
        Ending::End(input[take..].to_vec())
    } else {
        Ending::More
    };
    ensure!(
        got.data == input[..take] && got.ending == want,
        "chunked.length",
        "Length({n}) on {} bytes gave {} bytes, ending {:?}",
        input.len(),
        got.data.len(),
        got.ending
    );
    Ok(())
}

/// The `chunked` fuzz target.
pub(crate) fn run(data: &[u8]) -> Checked {
    let mut src = Source::new(data);
    match src.byte() % 4 {
        0 => {
            let write_cuts = raw_cuts(&mut src);
            let read_seed = src.byte();
            let trailing_len = src.below(8);
            let trailing = src.bytes(trailing_len);
            let body = src.rest();
            let write_cuts = fit(write_cuts, body.len());
            let encoded_guess = body.len() * 2 + 16;
            round_trip(
                body,
                &write_cuts,
                &spread(read_seed, encoded_guess),
                trailing,
            )
        }
        1 => {
            let n = u64::from(src.u16() % 512);
            let seed = src.byte();
            let input = src.rest();
            length(n, input, &spread(seed, input.len()))
        }
        2 => {
            let max_line = src.pick(&[1, 2, 3, 8, 64, 4096]);
            let seed = src.byte();
            let input = src.rest();
            differential(max_line, input, &spread(seed, input.len()))
        }
        _ => {
            let max_line = src.pick(&[1, 2, 3, 8, 64, 4096]);
            let cuts = raw_cuts(&mut src);
            let input = src.rest();
            differential(max_line, input, &fit(cuts, input.len()))
        }
    }
}

/// Up to 32 raw cut offsets.
fn raw_cuts(src: &mut Source<'_>) -> Vec<usize> {
    let count = src.below(33);
    (0..count).map(|_| usize::from(src.u16())).collect()
}

/// Raw offsets folded into `0..=len` and sorted.
fn fit(raw: Vec<usize>, len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = raw.into_iter().map(|c| c % (len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

/// Cut points derived from one seed byte: 0 feeds all at once, 1 byte by byte, otherwise
/// pieces of `seed % 17 + 1` bytes with the first piece `seed / 17` bytes long.
fn spread(seed: u8, len: usize) -> Vec<usize> {
    match seed {
        0 => Vec::new(),
        1 => (1..len).collect(),
        _ => {
            let step = usize::from(seed % 17) + 1;
            let first = usize::from(seed / 17);
            let mut cuts = vec![first.min(len)];
            let mut at = first;
            while at + step < len {
                at += step;
                cuts.push(at);
            }
            cuts
        }
    }
}
