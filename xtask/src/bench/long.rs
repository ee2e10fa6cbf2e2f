//! `cargo xtask bench --long`: the one-pass reports (and `adjust`) on long records, which they stream
//! (damo_record::native::stream). Native records of 10 M and 50 M regions (1000 regions a
//! snapshot, DAMON's default maximum; 10 000 snapshots a target, 17 minutes at 100 ms) are
//! generated once into .cache/bench (again when the format version changes); each report
//! runs as a child process, and its wall time and peak RSS (wait4's ru_maxrss) are printed.
//! Goals: under 3 s and 200 MB at 50 M regions, cost linear in regions. For comparison, the 10 M record is also reported loaded
//! whole (DAMO_TRACE_NO_STREAM=1), as every report read it before.

use std::{
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use damo_record::{
    native::{self, NativeWriter},
    synth::{self, SynthSpec},
};

const REGIONS: usize = 1000;
const SNAPSHOTS_PER_TARGET: usize = 10_000;

/// The last snapshot of each target, as `--snapshot_idx` numbers it (`run` checks it is
/// `SNAPSHOTS_PER_TARGET - 1`).
const LAST_SNAPSHOT: &str = "9999";

const REPORTS: &[(&str, &[&str])] = &[
    ("wss", &["report", "wss"]),
    ("nr_regions", &["report", "nr_regions"]),
    ("times --access_rate 50% 100%", &["report", "times", "--access_rate", "50%", "100%"]),
    ("record_info", &["report", "record_info"]),
    // Three passes over the file: the guide, the hottest range's heats, the map.
    ("heatmap --draw_range hottest --output raw", &["report", "heatmap", "--draw_range", "hottest", "--output", "raw"]),
    // Two passes: the guide, the maps.
    ("heatmap --draw_range all", &["report", "heatmap", "--draw_range", "all"]),
    // The default, three passes: the guide and each target's busiest region, the chosen
    // target's hot bands, the maps.
    ("heatmap --output raw (hot bands)", &["report", "heatmap", "--output", "raw"]),
    ("access (last snapshot)", &["report", "access", "--snapshot_idx", LAST_SNAPSHOT, LAST_SNAPSHOT]),
    // Six passes: counts, the address space (two), the per-snapshot series, each phase's
    // hot ranges (two).
    ("phases", &["report", "phases"]),
    // Heatmap's and phases' passes and one more (written beside the record).
    ("holistic", &["report", "holistic", "-o", "long-holistic.svg"]),
    // Not a report: the record streamed in, 100 snapshots (10 s of 100 ms ones) merged into
    // each one written, in damo's json_compressed (compressed on the other core).
    ("adjust --aggregate_interval 10s", &["adjust", "--aggregate_interval", "10s", "-o", "long-adjusted.data", "--force"]),
];

pub fn run(damo_trace: &Path, dir: &Path) -> Result<()> {
    assert_eq!(LAST_SNAPSHOT.parse::<usize>().ok(), Some(SNAPSHOTS_PER_TARGET - 1), "LAST_SNAPSHOT is not the last snapshot");
    let sizes = [("10M", 1), ("50M", 5)];
    let mut files = Vec::new();
    for (name, targets) in sizes {
        let path = dir.join(format!("long-{name}.dtr"));
        // Records of an older format version are made again: the bench measures what
        // recording writes now.
        if version(&path) != Some(native::VERSION) {
            let t = Instant::now();
            generate_apart(&path, targets)?;
            println!("generated {} in {:.1} s", path.display(), t.elapsed().as_secs_f64());
        }
        let regions = targets * SNAPSHOTS_PER_TARGET * REGIONS;
        println!("{}: {targets} target(s) × {SNAPSHOTS_PER_TARGET} snapshots × ~{REGIONS} regions = ~{} M regions, {:.1} MB", path.display(), regions / 1_000_000, size(&path) as f64 / 1e6);
        files.push((name, regions, path));
    }
    // What a child's peak RSS starts from: the binary, and the high-water mark of this
    // process's memory, which a vfork-spawned child inherits.
    let floor = measure(damo_trace, &["--version"], None, false)?;
    println!("\npeak RSS of `damo-trace --version` (the floor of the numbers below): {:.1} MB", floor.max_rss_mb);
    println!("\nreports, streamed (wall time and peak RSS of the process, one run each):");
    println!("  {:42} {:>5} {:>9} {:>9} {:>12}", "report", "input", "wall", "peak RSS", "M regions/s");
    for (label, args) in REPORTS {
        for (name, regions, path) in &files {
            let m = measure(damo_trace, args, Some(path), false)?;
            println!("  {label:42} {name:>5} {:>8.3}s {:>6.1} MB {:>12.1}", m.wall.as_secs_f64(), m.max_rss_mb, *regions as f64 / m.wall.as_secs_f64() / 1e6);
        }
    }
    let (name, regions, path) = &files[0];
    println!("\nthe same on {name}, loaded whole (DAMO_TRACE_NO_STREAM=1, as before streaming):");
    for (label, args) in REPORTS {
        let m = measure(damo_trace, args, Some(path), true)?;
        println!("  {label:42} {name:>5} {:>8.3}s {:>6.1} MB {:>12.1}", m.wall.as_secs_f64(), m.max_rss_mb, *regions as f64 / m.wall.as_secs_f64() / 1e6);
    }
    Ok(())
}

/// [`generate`] in a forked child. A child's ru_maxrss starts from the high-water mark of
/// the memory it execs from, and Rust spawns with vfork (the parent's memory): a bench that
/// had generated 300 MB of regions itself would report every report at 300 MB or more.
fn generate_apart(path: &Path, targets: usize) -> Result<()> {
    // SAFETY: xtask runs one thread here (its cargo builds were waited for), so the child
    // may allocate; it leaves by _exit, running nothing of the parent's.
    match unsafe { libc::fork() } {
        -1 => bail!("fork failed: {}", std::io::Error::last_os_error()),
        0 => {
            let code = match generate(path, targets) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("failed to generate {}: {e:#}", path.display());
                    1
                }
            };
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        pid => {
            let mut status = 0;
            // SAFETY: waits for the child just forked.
            if unsafe { libc::waitpid(pid, &mut status, 0) } != pid || !std::process::ExitStatus::from_raw(status).success() {
                bail!("generating {} failed", path.display());
            }
            Ok(())
        }
    }
}

/// `targets` targets of [`SNAPSHOTS_PER_TARGET`] snapshots, generated and written one target
/// at a time (a whole 50 M-region record would take 1.6 GB here), into a temporary file
/// renamed into place, so an interrupted run leaves no half record to reuse.
fn generate(path: &Path, targets: usize) -> Result<()> {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let file = std::fs::File::create(&tmp).with_context(|| format!("failed to create {}", tmp.display()))?;
    let mut w = NativeWriter::new(std::io::BufWriter::with_capacity(1 << 20, file))?.summarizing();
    for t in 0..targets {
        let mut record = synth::record(SynthSpec { targets: 1, snapshots_per_target: SNAPSHOTS_PER_TARGET, regions: REGIONS, seed: t as u64 + 1 });
        let mut target = record.targets.remove(0);
        target.target_id = t as u64;
        for s in &target.snapshots {
            w.snapshot(&target, s)?;
        }
    }
    w.finish()?.into_inner().map_err(|e| e.into_error())?;
    std::fs::rename(&tmp, path).with_context(|| format!("failed to rename {}", tmp.display()))
}

struct Measured {
    wall: Duration,
    max_rss_mb: f64,
}

/// Runs `damo-trace report <args> -i <input>` (without `input`: `damo-trace <args>`) to its
/// end, output discarded: its wall time and peak resident set (wait4's ru_maxrss, KiB).
fn measure(damo_trace: &Path, args: &[&str], input: Option<&Path>, whole: bool) -> Result<Measured> {
    let mut cmd = Command::new(damo_trace);
    match input {
        // Run beside the record: what a report writes goes there.
        Some(input) => cmd.args(args).arg("-i").arg(input).current_dir(input.parent().unwrap_or(Path::new("."))),
        None => cmd.args(args),
    };
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    if whole {
        cmd.env("DAMO_TRACE_NO_STREAM", "1");
    }
    let started = Instant::now();
    let mut child = cmd.spawn().context("cannot start damo-trace")?;
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut stderr)?;
    }
    let pid = child.id() as i32;
    let mut status = 0;
    // SAFETY: waiting for our own child; rusage is a plain struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let wall = started.elapsed();
    let exit = std::process::ExitStatus::from_raw(status);
    if !exit.success() {
        bail!("damo-trace {} failed ({exit}): {stderr}", args.join(" "));
    }
    Ok(Measured { wall, max_rss_mb: usage.ru_maxrss as f64 / 1024.0 })
}

/// The format version in a native record's header; `None` if it cannot be read.
fn version(path: &Path) -> Option<u32> {
    let mut head = [0u8; 12];
    std::io::Read::read_exact(&mut std::fs::File::open(path).ok()?, &mut head).ok()?;
    (head[..8] == native::MAGIC).then(|| u32::from_le_bytes(head[8..12].try_into().unwrap()))
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
