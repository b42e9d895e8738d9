//! Criterion benches for the sans-IO core, and the helpers they share.
//!
//! The benches live in `benches/` (run them with `cargo bench -p switchyard-benches`); this
//! library holds what they have in common, so that it is compiled once and tested by
//! `cargo test`: a benchmark that measures a session which silently failed (a 400 instead of a
//! tunnel) would report a fast, meaningless number, so every scenario a bench drives is also
//! checked end to end by the tests of [`driver`].
//!
//! | module | concept |
//! |---|---|
//! | [`fixtures`] | the bytes the benches send: a real Chrome WebSocket upgrade, a 101, a GET, a chunked POST |
//! | [`driver`] | a minimal deterministic driver for a `Session` (no sockets, no clock reads) |
//! | [`report`] | the ratios between two benches, read from criterion's saved estimates |
//!
//! The numbers of one run, with the machine and the command, are in `benches/README.md`.

pub mod driver;
pub mod fixtures;
pub mod report;
