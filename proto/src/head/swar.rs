//! Eight bytes at a time: the word tests the head scanner and parsers use to skip over ordinary
//! bytes ("SIMD within a register", no `unsafe`, no platform code).
//!
//! Most bytes of a head are unremarkable (letters of a value, of a target): testing them one by
//! one costs a load, a compare and a branch each. These tests look at a little-endian `u64` of
//! eight bytes and answer "is any byte special?" in a handful of instructions; only a word that
//! holds a special byte is then looked at byte by byte.

/// `0x01` in every byte.
pub(crate) const ONES: u64 = u64::from_le_bytes([0x01; 8]);
/// `0x80` in every byte.
pub(crate) const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

/// `byte` in every byte of a word.
pub(crate) const fn splat(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// The eight bytes of `buf` at `at`, little-endian, if there are eight.
pub(crate) fn word(buf: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = buf.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Non-zero iff some byte of `x` is zero. The lowest set bit (`0x80` of its byte) marks the
/// first zero byte exactly; bits above it may be false positives.
pub(crate) fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Non-zero iff some byte of `x` equals `byte`; the lowest set bit marks the first one.
pub(crate) fn bytes_equal(x: u64, byte: u8) -> u64 {
    zero_bytes(x ^ splat(byte))
}

/// Non-zero iff some byte of `x` is below `n` (`n <= 0x80`).
pub(crate) fn bytes_below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(splat(n)) & !x & HIGHS
}

/// Non-zero iff some byte of `x` is `0x7f` or above (DEL or not ASCII).
pub(crate) fn bytes_from_del(x: u64) -> u64 {
    // Adding 1 carries out of a byte only if its high bit is already set, so the carry cannot
    // hide anything: a byte >= 0x80 is caught by `| x`.
    (x.wrapping_add(ONES) | x) & HIGHS
}

/// The offset of the first `byte` in `buf` at or after `from`.
pub(crate) fn find_byte(buf: &[u8], from: usize, byte: u8) -> Option<usize> {
    let mut at = from;
    while let Some(x) = word(buf, at) {
        let found = bytes_equal(x, byte);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    buf.get(at..)?
        .iter()
        .position(|&b| b == byte)
        .map(|p| at + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(x: [u8; 8]) -> u64 {
        u64::from_le_bytes(x)
    }

    #[test]
    fn bytes_are_found_at_every_offset() {
        for len in 0..40 {
            for at in 0..len {
                let mut buf = vec![b'\r'; len];
                buf[at] = b'\n';
                for from in 0..=at {
                    assert_eq!(find_byte(&buf, from, b'\n'), Some(at));
                }
                assert_eq!(find_byte(&buf, at + 1, b'\n'), None);
            }
        }
        assert_eq!(find_byte(b"abc", 7, b'a'), None);
    }

    #[test]
    fn word_tests_agree_with_byte_tests() {
        for special in 0..=255u8 {
            for at in 0..8 {
                for fill in [b'a', b' ', 0x21, 0x7e, 0x20] {
                    let mut x = [fill; 8];
                    x[at] = special;
                    let any = |f: &dyn Fn(u8) -> bool| x.iter().any(|&b| f(b));
                    assert_eq!(zero_bytes(bytes(x)) != 0, any(&|b| b == 0));
                    assert_eq!(bytes_equal(bytes(x), b'#') != 0, any(&|b| b == b'#'));
                    assert_eq!(bytes_below(bytes(x), 0x21) != 0, any(&|b| b < 0x21));
                    assert_eq!(bytes_below(bytes(x), 0x20) != 0, any(&|b| b < 0x20));
                    assert_eq!(bytes_from_del(bytes(x)) != 0, any(&|b| b >= 0x7f));
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn word_tests_agree_on_any_word(x: [u8; 8], n in 0u8..=0x80) {
            let any = |f: &dyn Fn(u8) -> bool| x.iter().any(|&b| f(b));
            proptest::prop_assert_eq!(bytes_below(bytes(x), n) != 0, any(&|b| b < n));
            proptest::prop_assert_eq!(bytes_from_del(bytes(x)) != 0, any(&|b| b >= 0x7f));
            proptest::prop_assert_eq!(bytes_equal(bytes(x), n) != 0, any(&|b| b == n));
            let first = x.iter().position(|&b| b == n).map(|p| p as u32 * 8 + 7);
            let found = bytes_equal(bytes(x), n);
            proptest::prop_assert_eq!((found != 0).then(|| found.trailing_zeros()), first);
        }
    }
}
