//! A report's output into a pipe: the pipe is grown to 1 MiB for it (fewer hand-overs
//! between the report and its reader), and the output is whole.

use std::{
    io::Read,
    os::fd::AsRawFd,
    process::{Command, Stdio},
};

#[test]
fn a_report_grows_the_pipe_it_writes_into_and_writes_all_of_its_output() {
    let record = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/damo-report-data/damon.data");
    let args = ["report", "heatmap", "--output", "raw", "--draw_range", "hottest", "-i", record];
    let mut child = Command::new(env!("CARGO_BIN_EXE_damo-trace")).args(args).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut text = Vec::new();
    stdout.read_to_end(&mut text).unwrap();
    assert!(child.wait().unwrap().success());
    // SAFETY: F_GETPIPE_SZ on the read end of the pipe this test owns.
    let size = unsafe { libc::fcntl(stdout.as_raw_fd(), libc::F_GETPIPE_SZ) };
    assert_eq!(size, 1 << 20, "the pipe was not grown");
    // Into a file, the same bytes (nothing is grown there, nor lost through the pipe).
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::create(dir.path().join("out")).unwrap();
    assert!(Command::new(env!("CARGO_BIN_EXE_damo-trace")).args(args).stdout(file).status().unwrap().success());
    assert_eq!(std::fs::read(dir.path().join("out")).unwrap(), text);
    assert!(text.len() > 64 << 10, "the output ({} B) should fill a default pipe", text.len());
}
