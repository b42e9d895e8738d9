//! The fuzz corpus as ordinary tests, on stable: every committed seed (`fuzz/corpus-seed/`) and
//! every minimized crash (`fuzz/regressions/`) goes through the same invariant checks as the
//! cargo-fuzz targets. The checks live in `fuzz/src/checks` and are included here by path, so a
//! property found by fuzzing is guarded by `cargo test` from then on.
//!
//! `fuzz/regressions/KNOWN` lists regressions whose bug is not fixed yet, each with the
//! invariant it still breaks (`<target>/<file> <invariant>`): those must keep failing with that
//! invariant, so that fixing the bug makes this test ask for the line to be removed.

#[path = "../../fuzz/src/checks/mod.rs"]
mod checks;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use checks::Target;

/// The fuzz directory, next to proto.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// `target/file` → invariant, from `fuzz/regressions/KNOWN`.
fn known_failures() -> BTreeMap<String, String> {
    let text = fs::read_to_string(fuzz_dir().join("regressions/KNOWN")).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect()
}

/// Replays every file of `<dir>/<target>/`; returns how many there were.
fn replay(dir: &str, target: Target, known: &BTreeMap<String, String>) -> usize {
    let folder = fuzz_dir().join(dir).join(target.name());
    let Ok(entries) = fs::read_dir(&folder) else {
        return 0;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut failures = Vec::new();
    for path in &paths {
        let data = fs::read(path).expect("readable corpus file");
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = format!("{}/{file}", target.name());
        let outcome = target.run(&data);
        match (known.get(&key), outcome) {
            (None, Ok(())) => {}
            (None, Err(v)) => failures.push(format!("{dir}/{key}: {v}")),
            (Some(want), Err(v)) if v.invariant == want => {}
            (Some(want), Err(v)) => {
                failures.push(format!("{dir}/{key}: expected {want} to break, got {v}"));
            }
            (Some(want), Ok(())) => failures.push(format!(
                "{dir}/{key}: {want} holds now; remove the line from fuzz/regressions/KNOWN"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    paths.len()
}

fn replay_target(target: Target) {
    let known = known_failures();
    let seeds = replay("corpus-seed", target, &known);
    let regressions = replay("regressions", target, &known);
    assert!(
        seeds > 0,
        "no seed for {} in fuzz/corpus-seed (run fuzz/make-seeds)",
        target.name()
    );
    eprintln!(
        "{}: {seeds} seeds, {regressions} regressions",
        target.name()
    );
}

#[test]
fn request_head_corpus_keeps_its_invariants() {
    replay_target(Target::RequestHead);
}

#[test]
fn response_head_corpus_keeps_its_invariants() {
    replay_target(Target::ResponseHead);
}

#[test]
fn chunked_corpus_keeps_its_invariants() {
    replay_target(Target::Chunked);
}

#[test]
fn session_corpus_keeps_its_invariants() {
    replay_target(Target::Session);
}

#[test]
fn rewrite_corpus_keeps_its_invariants() {
    replay_target(Target::Rewrite);
}

#[test]
fn every_target_is_replayed() {
    assert_eq!(Target::ALL.len(), 5);
}
