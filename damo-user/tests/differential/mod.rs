//! Runs damo and damo-trace on the same inputs, for tests that compare their answers.
//!
//! damo comes from `DAMO_BIN` (`cargo xtask test` installs damo 3.4.3 into a virtualenv and
//! sets it). Without it these tests print why and pass, unless `DAMO_TRACE_REQUIRE_DAMO=1`
//! (set by `cargo xtask test`, so CI never skips them).

#![allow(dead_code, reason = "each test file uses a different part")]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The damo fixtures (real records from damo's own test suite).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/damo-report-data").join(name)
}

/// The damo executable, or `None` (after saying why) when the test should not run.
pub fn damo() -> Option<PathBuf> {
    match std::env::var_os("DAMO_BIN") {
        Some(bin) => Some(PathBuf::from(bin)),
        None if std::env::var_os("DAMO_TRACE_REQUIRE_DAMO").is_some() => {
            panic!("DAMO_TRACE_REQUIRE_DAMO is set but DAMO_BIN is not: run `cargo xtask test`")
        }
        None => {
            eprintln!("skipped: DAMO_BIN is not set (`cargo xtask test` installs damo 3.4.3 and sets it)");
            None
        }
    }
}

/// Stdout of a successful run of `program args` in `dir`.
fn stdout_of(program: &Path, args: &[&str], dir: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("failed to run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}):\n{}{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
