//! `cargo xtask bench --live`: what `top` costs. First the view alone (damo-user/benches/
//! live.rs: a stream at DAMON's default intervals and 99 Hz through the model and the
//! drawing, natively); then, as root, the same workload watched by `top --plain --no-damon`
//! and recorded by `record --no-damon` at 99 Hz: the collector's share from record's summary
//! line, and top's whole process next to record's. (The host's DAMON is never written, so
//! the real-DAMON side of a native run is left to the replay.)

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use super::stacks::{parse_collector_cpu, wait_with_rusage};
use crate::test::cargo;

const SECONDS: u32 = 10;

pub fn run(damo_trace: &Path, dir: &Path) -> Result<()> {
    cargo(&["bench", "-p", "damo-user", "--bench", "live"])?;
    // SAFETY: geteuid only reads the process's credentials.
    if unsafe { libc::geteuid() } != 0 {
        println!("native top vs record: skipped (needs root to load eBPF programs)");
        return Ok(());
    }
    cargo(&["build", "--release", "-p", "damo-workload"])?;
    let workload = crate::setup::workspace_root().join("target/release/damo-workload");
    // The workload is started here and given by pid: a command damo-trace started would be
    // its child, and wait4 would count the workload's CPU as damo-trace's.
    let workload_pid = || -> Result<(std::process::Child, String)> {
        let child = Command::new(&workload).args(["known", "--seconds", &SECONDS.to_string()]).stdout(Stdio::null()).spawn().context("cannot start the workload")?;
        let pid = child.id().to_string();
        Ok((child, pid))
    };
    let record = dir.join("live-bench.dtr");
    let (mut w, pid) = workload_pid()?;
    let (stderr, record_cpu, record_wall) =
        measure(Command::new(damo_trace).args(["record", "--no-damon", "--force", "--sample_hz", "99", "--do_record", "cpu_profile", "-o"]).arg(&record).arg(&pid))?;
    w.wait()?;
    let collector = parse_collector_cpu(&stderr).with_context(|| format!("no summary line from record: {stderr}"))?;
    let (mut w, pid) = workload_pid()?;
    let (_, top_cpu, top_wall) = measure(Command::new(damo_trace).args(["top", "--plain", "--no-damon", "--sample_hz", "99", &pid]))?;
    w.wait()?;
    let pct = |cpu: Duration, wall: Duration| cpu.as_secs_f64() * 100.0 / wall.as_secs_f64();
    println!("native, {SECONDS} s of `damo-workload known` at 99 Hz (whole processes: loading eBPF and naming code included):");
    println!("  collector (record's summary)   {:6.3} s  {:5.2}% of a core", collector.as_secs_f64(), pct(collector, record_wall));
    println!("  record --no-damon, process     {:6.3} s  {:5.2}% of a core", record_cpu.as_secs_f64(), pct(record_cpu, record_wall));
    println!("  top --plain --no-damon, process{:6.3} s  {:5.2}% of a core", top_cpu.as_secs_f64(), pct(top_cpu, top_wall));
    let view = top_cpu.saturating_sub(record_cpu);
    println!("  top's view beyond record       {:6.3} s  {:5.2}% of a core", view.as_secs_f64(), pct(view, top_wall));
    Ok(())
}

/// Runs `cmd` to its end: its stderr, CPU time (wait4) and wall time.
fn measure(cmd: &mut Command) -> Result<(String, Duration, Duration)> {
    let started = Instant::now();
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().context("cannot start damo-trace")?;
    let pid = child.id() as i32;
    let (stderr, cpu) = wait_with_rusage(child, pid)?;
    Ok((stderr, cpu, started.elapsed()))
}
