//! The chunked transfer coding, strictly (STUB: being written).
