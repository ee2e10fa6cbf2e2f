//! `cargo xtask bench --stacks`: call stacks of a program built without frame pointers
//! (workload/c/nofp.c), natively on the host, side by side: damo-trace `--call-graph dwarf`,
//! damo-trace `--call-graph fp` and `perf record --call-graph dwarf`, at 99 and 999 Hz. For
//! each: the recorder's CPU per sample, the workload's slowdown, the record's size and the
//! share of samples whose stack reaches `_start`. Needs root (eBPF, perf). Not a test.

use std::{
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use blazesym::symbolize::{source::Elf, source::Source, Input, Symbolizer};

const SECONDS: u32 = 10;

pub fn run(damo_trace: &Path, dir: &Path) -> Result<()> {
    let workload = build_workload(dir)?;
    let alone = run_workload(&workload)?.wait_rate()?;
    println!("\ncall stacks of {} (gcc -O2 -fomit-frame-pointer), {SECONDS} s per run, recorder attached by pid:", workload.display());
    println!("workload alone: {alone:.0} calls/s");
    println!("  {:42} {:>8} {:>11} {:>12} {:>9} {:>12} {:>10}", "recorder", "samples", "CPU/sample", "recorder CPU", "slowdown", "record", "at _start");
    for hz in [99, 999] {
        for mode in [Mode::DamoDwarf, Mode::DamoFp, Mode::PerfDwarf] {
            let r = measure(damo_trace, &workload, dir, mode, hz)?;
            println!(
                "  {:42} {:>8} {:>9.1}µs {:>11.3}s {:>8.1}% {:>10} B {:>9.1}%",
                format!("{} at {hz} Hz", mode.name()),
                r.samples,
                r.cpu.as_secs_f64() * 1e6 / r.samples.max(1) as f64,
                r.cpu.as_secs_f64(),
                (1.0 - r.rate / alone) * 100.0,
                r.bytes,
                r.rooted * 100.0
            );
        }
    }
    println!("CPU/sample: damo-trace's collector CPU while recording (its summary line, unwinding included);");
    println!("perf's whole CPU time (wait4). slowdown: calls/s against the workload alone.");
    Ok(())
}

#[derive(Clone, Copy)]
enum Mode {
    DamoDwarf,
    DamoFp,
    PerfDwarf,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::DamoDwarf => "damo-trace --call-graph dwarf",
            Mode::DamoFp => "damo-trace --call-graph fp",
            Mode::PerfDwarf => "perf record --call-graph dwarf",
        }
    }
}

struct Measured {
    samples: u64,
    cpu: Duration,
    rate: f64,
    bytes: u64,
    rooted: f64,
}

fn build_workload(dir: &Path) -> Result<PathBuf> {
    let source = crate::setup::workspace_root().join("workload/c/nofp.c");
    let out = dir.join("nofp");
    let status = Command::new("gcc").args(["-O2", "-fomit-frame-pointer", "-fno-optimize-sibling-calls", "-o"]).arg(&out).arg(&source).status().context("failed to run gcc")?;
    if !status.success() {
        bail!("gcc failed to build {}", source.display());
    }
    Ok(out)
}

struct Workload(Child);

impl Workload {
    /// Waits for the workload and returns the calls per second it printed.
    fn wait_rate(self) -> Result<f64> {
        let out = self.0.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim().parse().with_context(|| format!("the workload printed {text:?}"))
    }
}

fn run_workload(workload: &Path) -> Result<Workload> {
    let child = Command::new(workload).arg(SECONDS.to_string()).stdout(Stdio::piped()).spawn().context("failed to start the workload")?;
    Ok(Workload(child))
}

fn measure(damo_trace: &Path, workload: &Path, dir: &Path, mode: Mode, hz: u32) -> Result<Measured> {
    let target = run_workload(workload)?;
    let pid = target.0.id().to_string();
    let out = dir.join(match mode {
        Mode::DamoDwarf => "stacks-dwarf.dtr",
        Mode::DamoFp => "stacks-fp.dtr",
        Mode::PerfDwarf => "stacks-perf.data",
    });
    let _ = std::fs::remove_file(&out);
    let mut recorder = match mode {
        Mode::DamoDwarf | Mode::DamoFp => {
            let call_graph = if matches!(mode, Mode::DamoDwarf) { "dwarf" } else { "fp" };
            let mut c = Command::new(damo_trace);
            c.args(["record", "--no-damon", "--force", "--do_record", "cpu_profile"]);
            c.args(["--sample_hz", &hz.to_string(), "--call-graph", call_graph, "-o"]).arg(&out).arg(&pid);
            c
        }
        Mode::PerfDwarf => {
            let mut c = Command::new("perf");
            c.args(["record", "-q", "-e", "cpu-clock", "-F", &hz.to_string(), "--call-graph", "dwarf", "-p", &pid, "-o"]).arg(&out);
            c
        }
    };
    let child = recorder.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().with_context(|| format!("failed to start {}", mode.name()))?;
    let recorder_pid = child.id() as i32;
    let rate = target.wait_rate()?;
    let (stderr, cpu) = wait_with_rusage(child, recorder_pid)?;
    let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    let (samples, rooted, cpu) = match mode {
        Mode::DamoDwarf | Mode::DamoFp => {
            let collector = parse_collector_cpu(&stderr).with_context(|| format!("no summary line from damo-trace: {stderr}"))?;
            let (samples, rooted) = damo_rooted(&out)?;
            (samples, rooted, collector)
        }
        Mode::PerfDwarf => {
            let (samples, rooted) = perf_rooted(&out)?;
            (samples, rooted, cpu)
        }
    };
    Ok(Measured { samples, cpu, rate, bytes, rooted })
}

/// Waits for `child` and returns its stderr and CPU time (user + system, from wait4).
pub(super) fn wait_with_rusage(mut child: Child, pid: i32) -> Result<(String, Duration)> {
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut stderr)?;
    }
    let mut status = 0;
    // SAFETY: waiting for our own child; rusage is a plain struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let exit = std::process::ExitStatus::from_raw(status);
    if !exit.success() {
        bail!("the recorder failed ({exit}): {stderr}");
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok((stderr, tv(usage.ru_utime) + tv(usage.ru_stime)))
}

/// "collector CPU 0.123s" from damo-trace's summary line.
pub(super) fn parse_collector_cpu(stderr: &str) -> Option<Duration> {
    let rest = &stderr[stderr.rfind("collector CPU ")? + "collector CPU ".len()..];
    let secs: f64 = rest[..rest.find('s')?].parse().ok()?;
    Some(Duration::from_secs_f64(secs))
}

/// Samples in a damo-trace record and the share whose outermost user frame is `_start`.
fn damo_rooted(path: &Path) -> Result<(u64, f64)> {
    let bytes = std::fs::read(path)?;
    let record = damo_record::native::read(&bytes).with_context(|| format!("failed to read {}", path.display()))?.record;
    let symbolizer = Symbolizer::new();
    let mut rooted = 0;
    for sample in &record.samples {
        let Some(frame) = sample.user.last() else { continue };
        let Some(module) = record.modules.get(frame.module as usize) else { continue };
        let offset = if sample.user.len() > 1 { frame.offset.saturating_sub(1) } else { frame.offset };
        let name = symbolizer.symbolize_single(&Source::Elf(Elf::new(&module.path)), Input::FileOffset(offset)).ok().and_then(|s| s.as_sym().map(|s| s.name.to_string()));
        rooted += u64::from(name.as_deref() == Some("_start"));
    }
    let n = record.samples.len() as u64;
    Ok((n, rooted as f64 / n.max(1) as f64))
}

/// Samples in a perf.data and the share whose outermost frame is `_start` (`perf script`).
fn perf_rooted(path: &Path) -> Result<(u64, f64)> {
    let out = Command::new("perf").args(["script", "-F", "ip,sym", "-i"]).arg(path).stderr(Stdio::null()).output().context("failed to run perf script")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut samples, mut rooted) = (0u64, 0u64);
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        samples += 1;
        let last = block.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        rooted += u64::from(last.split_whitespace().nth(1) == Some("_start"));
    }
    Ok((samples, rooted as f64 / samples.max(1) as f64))
}
