//! Benches (skeleton until the benches issue).
