//! The invariants the fuzz targets check, shared by the cargo-fuzz targets (`fuzz/fuzz_targets`)
//! and the stable replay of the committed corpus (`proto/tests/fuzz_corpus.rs`).
//!
//! "No panic" is the least a fuzz target checks. These check what the proxy promises: heads it
//! accepts are clean, heads it writes re-parse with an independent parser (httparse) and carry
//! exactly one framing and no hop-by-hop field, the chunked decoder agrees with a reference
//! decoder, and a session never forwards an unvalidated byte, never opens an unsolicited tunnel,
//! delivers tunnel bytes exactly, respects its read windows and buffer bounds, and goes quiet
//! after `Close`.
//!
//! The module uses only proto's public API and proto's own dependencies (httparse, bytes), so the
//! replay test can include it with `#[path]`; it has no libFuzzer dependency. Each target is one
//! function from the fuzzer's bytes to `Ok(())` or the [`Violation`] that names the broken
//! invariant; inputs are decoded by [`input::Source`] so that a committed input means the same
//! thing to the fuzz target and to the replay.
#![allow(dead_code)]

use std::fmt;

/// Returns a [`Violation`] with the invariant id and the formatted evidence unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $id:literal, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::checks::Violation::new($id, format!($($fmt)+)));
        }
    };
}

mod chunked;
mod input;
mod reference;
mod request;
mod response;
mod rewrite;
mod scenario;
mod session;
mod streams;
mod wire;

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// A stable id, `target.what` (e.g. `session.tunnel-exact`), listed in fuzz/README.md.
    pub(crate) invariant: &'static str,
    /// The evidence.
    pub(crate) detail: String,
}

impl Violation {
    /// A violation of `invariant`, with the evidence.
    pub(crate) fn new(invariant: &'static str, detail: String) -> Self {
        Self { invariant, detail }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant {} broken: {}", self.invariant, self.detail)
    }
}

/// The outcome of one check.
pub(crate) type Checked = Result<(), Violation>;

/// One fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `parse_request_head` on raw bytes, and the upstream request written from what it accepts.
    RequestHead,
    /// `parse_response_head` on raw bytes, and the heads written to the client from it.
    ResponseHead,
    /// Chunked decoding against a reference decoder; encode/decode round trips.
    Chunked,
    /// A whole session driven by a decoded list of driver operations.
    Session,
    /// Upstream request rewriting with user header rules.
    Rewrite,
}

impl Target {
    /// Every target.
    pub(crate) const ALL: [Self; 5] = [
        Self::RequestHead,
        Self::ResponseHead,
        Self::Chunked,
        Self::Session,
        Self::Rewrite,
    ];

    /// The cargo-fuzz target name (also the corpus directory name).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::RequestHead => "request_head",
            Self::ResponseHead => "response_head",
            Self::Chunked => "chunked",
            Self::Session => "session",
            Self::Rewrite => "rewrite",
        }
    }

    /// Runs the target's checks on one input.
    pub(crate) fn run(self, data: &[u8]) -> Checked {
        match self {
            Self::RequestHead => request::run(data),
            Self::ResponseHead => response::run(data),
            Self::Chunked => chunked::run(data),
            Self::Session => session::run(data),
            Self::Rewrite => rewrite::run(data),
        }
    }
}

/// Runs `target` on `data` the way a fuzz target does: a violation panics with its message,
/// unless its invariant is listed in `SWITCHYARD_FUZZ_ALLOW` (comma-separated ids), which lets a
/// campaign go on past a known, reported bug.
pub(crate) fn fuzz(target: Target, data: &[u8]) {
    if let Err(violation) = target.run(data) {
        let allowed = std::env::var("SWITCHYARD_FUZZ_ALLOW").unwrap_or_default();
        if !allowed
            .split(',')
            .any(|id| id.trim() == violation.invariant)
        {
            panic!("{violation}");
        }
    }
}
