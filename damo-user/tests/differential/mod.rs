//! Runs damo and damo-trace on the same inputs, for tests that compare their answers.
//!
//! damo comes from `DAMO_BIN`, else from the virtualenv `cargo xtask test` installs damo 3.4.3
//! into (`.cache/damo-venv`). Without either these tests fail, so a plain `cargo test` is never
//! green while comparing nothing; `DAMO_TRACE_SKIP_DAMO=1` skips them on purpose, and each
//! skipped test says so on stderr (`cargo test -- --nocapture 2>&1 | grep -c skipped:` counts
//! them).

#![allow(dead_code, reason = "each test file uses a different part")]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The damo fixtures (real records from damo's own test suite).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/damo-report-data").join(name)
}

/// The damo executable, or `None` (after saying so) when the run asked to skip damo.
pub fn damo() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("DAMO_BIN") {
        return Some(PathBuf::from(bin));
    }
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/damo-venv/bin/damo-sandboxed");
    if installed.is_file() {
        return Some(installed);
    }
    if std::env::var_os("DAMO_TRACE_SKIP_DAMO").is_some_and(|v| v != "0") {
        eprintln!("skipped: a comparison with damo (DAMO_TRACE_SKIP_DAMO is set)");
        return None;
    }
    panic!(
        "damo is needed for this comparison: run `cargo xtask test` once (it installs damo 3.4.3 into .cache/damo-venv), \
         set DAMO_BIN, or set DAMO_TRACE_SKIP_DAMO=1 to skip the comparisons"
    )
}

/// Stdout of a successful run of `program args` in `dir`.
fn stdout_of(program: &Path, args: &[&str], dir: &Path) -> String {
    let out = Command::new(program).args(args).current_dir(dir).output().unwrap_or_else(|e| panic!("failed to run {}: {e}", program.display()));
    assert!(out.status.success(), "{} {args:?} failed ({}):\n{}{}", program.display(), out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("output is UTF-8")
}

/// `damo report <args>`, run in `dir`.
pub fn damo_report(damo: &Path, args: &[&str], dir: &Path) -> String {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    stdout_of(damo, &all, dir)
}

/// `damo-trace report <args>`, run in `dir`.
pub fn ours_report(args: &[&str], dir: &Path) -> String {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    stdout_of(Path::new(env!("CARGO_BIN_EXE_damo-trace")), &all, dir)
}

/// `damo-trace <args>`: its exit success, stdout and stderr.
pub fn ours(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_damo-trace")).args(args).output().expect("failed to run damo-trace");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}
