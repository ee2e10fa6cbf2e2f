//! Tier 2 (root): `record` of our own workload, perf sampling only (the host's kdamond is
//! never touched). The workload spends its time in known functions of its own binary and in
//! libc's memset; the recorded stacks must symbolize to them after the workload exited.
//! `cargo xtask test` builds the workload first.

use std::{collections::HashMap, path::PathBuf, time::Duration};

mod common;

use blazesym::symbolize::{source::Elf, source::Source, Input, Symbolizer};
use common::Memory;
use damo_user::{normalize::UNKNOWN_MODULE, record};

fn workload() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("damo-workload");
    assert!(path.is_file(), "{} is missing: cargo build --release -p damo-workload", path.display());
    path
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn stacks_of_a_recorded_command_symbolize_to_its_functions() {
    let plan = common::command_plan(format!("{} known --seconds 2", workload().display()), 499, Default::default());
    let mut out = Memory::default();
    let summary = record::run(&plan, &mut out).expect("record");
    assert!(summary.duration < Duration::from_secs(20), "did not end when the workload exited: {summary}");
    assert!(out.snapshots.is_empty(), "no kdamond was recorded, yet snapshots arrived");
    let losses = out.losses.expect("finish was called");
    assert_eq!(losses.kernel, [0; damo_common::lost::RECORDED], "kernel-side losses");
    assert!(out.samples.len() >= 300, "{} samples in ~2 s at 499 Hz", out.samples.len());

    // Symbolize every sample's innermost frame now that the workload is gone.
    let symbolizer = Symbolizer::new();
    let mut leaf_functions: HashMap<String, usize> = HashMap::new();
    let mut any_frame_functions: HashMap<String, usize> = HashMap::new();
    for sample in &out.samples {
        for (depth, frame) in sample.user.iter().enumerate() {
            if frame.module == UNKNOWN_MODULE {
                continue;
            }
            let module = &out.modules[frame.module as usize];
            let source = Source::Elf(Elf::new(&module.path));
            // Return addresses point after the call; step back into it for outer frames.
            let offset = if depth == 0 { frame.offset } else { frame.offset - 1 };
            let Ok(sym) = symbolizer.symbolize_single(&source, Input::FileOffset(offset)) else { continue };
            let Some(sym) = sym.as_sym() else { continue };
            let name = sym.name.to_string();
            if depth == 0 {
                *leaf_functions.entry(name.clone()).or_default() += 1;
            }
            *any_frame_functions.entry(name).or_default() += 1;
        }
    }
    let total = out.samples.len();
    let compute = leaf_functions.get("workload_compute").copied().unwrap_or(0);
    let memset = leaf_functions.iter().filter(|(n, _)| n.contains("memset")).map(|(_, c)| c).sum::<usize>();
    assert!(compute * 10 >= total, "workload_compute is the leaf of only {compute}/{total}: {leaf_functions:?}");
    assert!(memset * 10 >= total, "memset (libc) is the leaf of only {memset}/{total}: {leaf_functions:?}");
    // Frame pointers unwind whole stacks up to main. (memset's direct caller, workload_fill,
    // is skipped: a leaf without a frame of its own hides its caller from FP unwinding.)
    let main = any_frame_functions.get("damo_workload::main").copied().unwrap_or(0);
    assert!(main * 10 >= total * 9, "only {main}/{total} stacks unwind to main: {any_frame_functions:?}");
    let libc = out.modules.iter().any(|m| m.path.to_string_lossy().contains("libc"));
    assert!(libc, "libc is not among the recorded modules: {:?}", out.modules);
}

/// Runs `damo-trace record --no-damon` on the workload, sends `signal` after `after`, and
/// reads the file back.
fn record_and_signal(signal: i32, after: Duration) -> damo_record::native::NativeRead {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.data");
    let mut recorder = std::process::Command::new(env!("CARGO_BIN_EXE_damo-trace"))
        .args(["record", "--no-damon", "--sample_hz", "199", "-o"])
        .arg(&out)
        .arg(format!("{} known --seconds 6", workload().display()))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start damo-trace record");
    std::thread::sleep(after);
    // SAFETY: signalling a child we started.
    unsafe { libc::kill(recorder.id() as i32, signal) };
    recorder.wait().unwrap();
    let bytes = std::fs::read(&out).expect("the record file exists");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&out).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "records are private by default");
    damo_record::native::read(&bytes).expect("the record reads back")
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_killed_recorder_leaves_a_readable_record() {
    let read = record_and_signal(libc::SIGKILL, Duration::from_millis(3500));
    assert!(!read.complete, "a killed recorder cannot have finished the file");
    // Samples are flushed at least once a second: ~2 s of 199 Hz must be there.
    assert!(read.record.samples.len() >= 200, "only {} samples survived kill -9", read.record.samples.len());
    assert!(!read.record.modules.is_empty());
    // How it was made is the first thing written, so even a killed recording says it.
    let metadata = read.record.metadata.as_ref().expect("the record's metadata");
    assert!(metadata.recorder.starts_with("damo-trace ") && metadata.command_line.iter().any(|a| a == "record"), "{metadata:?}");
    assert!(metadata.sample_hz > 0 && metadata.realtime_offset_ns.is_some(), "{metadata:?}");
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn sigint_ends_the_recording_with_a_complete_record() {
    let read = record_and_signal(libc::SIGINT, Duration::from_millis(2500));
    assert!(read.complete, "SIGINT must finish the file");
    assert_eq!(read.damaged_at, None);
    assert!(read.record.samples.len() >= 200, "{} samples", read.record.samples.len());
    assert_eq!(read.record.losses.map(|l| l.kernel), Some([0; 4]));
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn the_record_has_footprints_mappings_and_cpu_times_of_the_workload() {
    let read = record_and_signal(libc::SIGINT, Duration::from_millis(3500));
    let r = &read.record;
    // The workload's pid is the one its stacks were sampled in.
    let pids: std::collections::HashSet<u32> = r.samples.iter().map(|s| s.pid).collect();
    assert!(r.footprints.len() >= 2, "{} footprint snapshots in ~3.5 s (one a second)", r.footprints.len());
    assert!(r.footprints.iter().all(|f| f.system.is_some_and(|m| m.total > m.free)), "meminfo in every footprint snapshot");
    let rss = r.footprints.iter().flat_map(|f| &f.processes).filter(|p| pids.contains(&p.pid)).map(|p| p.rss).max();
    assert!(rss.is_some_and(|rss| rss > 0), "no footprint of the workload ({pids:?}) with rss > 0: {:?}", r.footprints);
    let mapped = r.vmas.iter().filter(|v| pids.contains(&v.pid)).flat_map(|v| &v.vmas);
    assert!(mapped.clone().any(|v| v.name.contains("damo-workload")), "the workload's own binary is not among its recorded mappings");
    let cpu = r.proc_stats.iter().filter(|s| pids.contains(&s.pid)).map(|s| s.utime_ns + s.stime_ns).max();
    assert!(cpu.is_some_and(|ns| ns > 0), "no CPU time of the busy workload: {:?}", r.proc_stats);
}
