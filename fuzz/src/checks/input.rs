//! Turning the fuzzer's bytes into structured inputs, deterministically and without panicking.
//!
//! This plays the role `arbitrary::Unstructured` plays in most cargo-fuzz crates, but it is ours:
//! the stable replay (`proto/tests/fuzz_corpus.rs`) must decode a committed input into exactly
//! the same operations as the fuzz target did, and proto's tests can use no crate beyond proto's
//! own dependencies. Every read succeeds: past the end of the input, numbers are zero and byte
//! strings are empty, so any input (including the empty one) is a valid scenario.

/// A cursor over the fuzzer's input.
#[derive(Debug, Clone)]
pub(crate) struct Source<'a> {
    data: &'a [u8],
}

impl<'a> Source<'a> {
    /// A cursor at the start of `data`.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether every byte was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (0 past the end).
    pub(crate) fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, little-endian.
    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// The next four bytes, little-endian.
    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A flag from the low bit of the next byte.
    pub(crate) fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A number in `0..n` (`n` of at most 256 takes one byte, more takes two). 0 when `n == 0`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        let raw = if n <= 256 {
            usize::from(self.byte())
        } else {
            usize::from(self.u16())
        };
        raw % n
    }

    /// One of `items` (the first when the input is exhausted).
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        let i = self.below(items.len());
        items[i]
    }

    /// Up to `len` bytes (fewer at the end of the input).
    pub(crate) fn bytes(&mut self, len: usize) -> &'a [u8] {
        let n = len.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// A byte string whose length (at most `max`) is read first: one byte for `max < 256`,
    /// two bytes otherwise.
    pub(crate) fn string(&mut self, max: usize) -> &'a [u8] {
        let len = if max < 256 {
            usize::from(self.byte())
        } else {
            usize::from(self.u16())
        };
        self.bytes(len % (max + 1))
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    /// Cut points for `len` bytes: a sorted list of offsets in `0..=len`, at most `max`.
    pub(crate) fn cuts(&mut self, len: usize, max: usize) -> Vec<usize> {
        let count = self.below(max + 1);
        let mut cuts: Vec<usize> = (0..count).map(|_| self.below(len + 1)).collect();
        cuts.sort_unstable();
        cuts
    }
}

/// `data` cut at `cuts` (sorted offsets within `0..=data.len()`) into consecutive pieces.
pub(crate) fn pieces<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut at = 0;
    for &cut in cuts {
        let cut = cut.clamp(at, data.len());
        out.push(&data[at..cut]);
        at = cut;
    }
    out.push(&data[at..]);
    out
}
