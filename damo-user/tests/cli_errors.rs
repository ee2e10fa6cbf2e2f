//! How the binary fails: each cause once, documented exit codes, a closed pipe ending a
//! report quietly, and names from a record printed without the escapes they carry.

#[path = "planted/mod.rs"]
mod planted;

use std::process::{Command, Stdio};

fn damo_trace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_damo-trace"))
}

#[test]
fn an_error_says_its_cause_once_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    // An OS error under context (it used to print "No such file or directory" twice).
    let out = damo_trace().args(["report", "access", "-i"]).arg(dir.path().join("missing")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "the cause is printed once: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // Not a regular file: one line that says so.
    let out = damo_trace().args(["report", "access", "-i"]).arg(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is a directory, not a regular file") && stderr.lines().count() == 1, "{stderr}");
}

#[test]
fn usage_errors_exit_2_and_help_says_so() {
    let out = damo_trace().args(["report", "--no-such-option"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let help = damo_trace().arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Exit status: 0 success, 1 an error") && text.contains("2 a usage error"), "{text}");
}

#[test]
fn a_closed_pipe_ends_a_report_quietly() {
    use std::os::unix::process::ExitStatusExt;
    // 74 KB of heatmap, far more than the output buffer: the write fails mid-report. The
    // reader is gone before anything is written, as with `| head -0`.
    let record = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/damo-report-data/damon.data");
    let mut child = damo_trace().args(["report", "heatmap", "-i", record]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "a closed pipe is not an error to report: {stderr}");
    assert!(out.status.success() || out.status.signal() == Some(libc::SIGPIPE), "{:?}", out.status);
}

#[test]
fn escapes_in_names_from_a_record_reach_the_terminal_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("evil.dtr");
    // Function names that would clear the screen and retitle the terminal.
    planted::write_named(&record, true, &["scan\x1b[2J", "update\x1b]0;owned\x07", "hot\u{202e}spot"]);
    let out = damo_trace().args(["report", "profile", "-i"]).arg(&record).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!out.stdout.iter().any(|&b| b == 0x1b || b == 0x07), "raw control bytes in the report");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("scan\\x1b[2J") && text.contains("update\\x1b]0;owned\\x07") && text.contains("hot\\u{202e}spot"), "{text}");
}
