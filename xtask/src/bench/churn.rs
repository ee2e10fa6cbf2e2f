//! `cargo xtask bench --churn`: recording a workload that starts processes all the time (a
//! C program of ours, with and without frame pointers, and `head | gzip`, ~50 processes a
//! second), side by side: damo-trace with mappings from the perf side-band (the default),
//! damo-trace reading /proc when a process's first sample arrives (the old way,
//! `DAMO_TRACE_MAPPINGS=proc`), and `perf record -g`. All at 999 Hz cpu-clock, each on its own
//! run of the same script. A benchmark, not a test: nothing passes or fails here.
//!
//! Each recorder attaches to the script's pid (so it does not wait for the workload, and its
//! own rusage is its cost alone), is released, and gets SIGINT when the script ends.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

const APP_C: &str = r#"
#include <stdlib.h>
#include <time.h>
__attribute__((noinline)) long app_hot(long n) { volatile long x = 0; for (long i = 0; i < n; i++) x += i * i; return x; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
    double until = now() + atof(argv[1]) / 1000.0;
    long sum = 0;
    while (now() < until) sum += app_hot(20000);
    return sum == 42;
}
"#;

/// What one recorder cost and kept.
struct Run {
    name: &'static str,
    samples: u64,
    lost: String,
    cpu: Duration,
    wall: Duration,
    bytes: u64,
    /// (seconds since the start, VmRSS KiB), every 5 s.
    rss: Vec<(u64, u64)>,
}

pub fn run(damo_trace: &Path, dir: &Path, seconds: u64) -> Result<()> {
    let dir = dir.join("churn");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("app.c"), APP_C)?;
    for (name, flag) in [("app_fp", "-fno-omit-frame-pointer"), ("app_nofp", "-fomit-frame-pointer")] {
        let status = Command::new("gcc").args(["-O2", flag, "-o"]).arg(dir.join(name)).arg(dir.join("app.c")).status().context("gcc is needed for the churn bench")?;
        if !status.success() {
            bail!("gcc failed to build {name}");
        }
    }
    std::fs::write(dir.join("data.bin"), (0..200_000u32).flat_map(|i| (i.wrapping_mul(2_654_435_761) >> 7).to_le_bytes()).collect::<Vec<u8>>())?;
    let script = dir.join("churn.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nd={}\nend=$(($(date +%s) + {seconds}))\nwhile [ $(date +%s) -lt $end ]; do \"$d/app_fp\" 10; \"$d/app_nofp\" 10; head -c 100000 \"$d/data.bin\" | gzip -6 > /dev/null; done\n",
            dir.display()
        ),
    )?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;

    let ours = |name, out: PathBuf, env: Option<(&'static str, &'static str)>| {
        let out2 = out.clone();
        let record = move |pid: u32| {
            let mut c = Command::new(damo_trace);
            c.args(["record", "--no-damon", "--sample_hz", "999", "--do_record", "cpu_profile", "--force", "-o"]).arg(&out2).arg(pid.to_string());
            if let Some((k, v)) = env {
                c.env(k, v);
            }
            c
        };
        (name, out, record)
    };
    let mut runs = Vec::new();
    for (name, out, command) in [ours("damo-trace (side-band)", dir.join("sideband.data"), None), ours("damo-trace (/proc)", dir.join("proc.data"), Some(("DAMO_TRACE_MAPPINGS", "proc")))] {
        let Measured { cpu, wall, rss, stderr } = measure(&script, command)?;
        let read = damo_record::native::read(&std::fs::read(&out)?).context("read the record")?;
        let losses = read.record.losses.unwrap_or_default();
        let lost = format!("{} unnormalized, {} other", losses.unnormalized_samples, losses.total() - losses.unnormalized_samples);
        eprintln!("{}", stderr.lines().last().unwrap_or(""));
        runs.push(Run { name, samples: read.record.samples.len() as u64, lost, cpu, wall, bytes: size(&out), rss });
    }
    let perf_data = dir.join("perf.data");
    let perf = |pid: u32| {
        let mut c = Command::new("perf");
        c.args(["record", "-q", "-g", "-e", "cpu-clock", "-F", "999", "-o"]).arg(&perf_data).args(["-p", &pid.to_string()]);
        c
    };
    let Measured { cpu, wall, rss, .. } = measure(&script, perf)?;
    let script_out = Command::new("perf").args(["script", "-F", "pid", "-i"]).arg(&perf_data).stderr(Stdio::null()).output()?;
    let samples = String::from_utf8_lossy(&script_out.stdout).lines().filter(|l| !l.trim().is_empty()).count() as u64;
    let stats = Command::new("perf").args(["report", "--stats", "-i"]).arg(&perf_data).stderr(Stdio::null()).output()?;
    let lost = String::from_utf8_lossy(&stats.stdout).lines().find(|l| l.trim_start().starts_with("LOST events")).map_or("0 LOST events".into(), |l| l.trim().to_string());
    runs.push(Run { name: "perf record -g", samples, lost, cpu, wall, bytes: size(&perf_data), rss });

    println!("\nchurn bench: {seconds} s of fork churn (app_fp 10 ms, app_nofp 10 ms, head | gzip), 999 Hz cpu-clock, {} CPUs", std::thread::available_parallelism().map_or(0, |n| n.get()));
    println!("| recorder | samples kept | lost | recorder CPU | record size | RSS over time (s: MiB) |");
    println!("|---|---|---|---|---|---|");
    for r in &runs {
        let rss: Vec<String> = r.rss.iter().map(|(s, kib)| format!("{s}: {:.1}", *kib as f64 / 1024.0)).collect();
        println!(
            "| {} | {} | {} | {:.2} s ({:.2} % of a core) | {:.2} MB | {} |",
            r.name,
            r.samples,
            r.lost,
            r.cpu.as_secs_f64(),
            r.cpu.as_secs_f64() * 100.0 / r.wall.as_secs_f64(),
            r.bytes as f64 / 1e6,
            rss.join(", ")
        );
    }
    Ok(())
}

/// A recorder's own cost over one run.
struct Measured {
    cpu: Duration,
    wall: Duration,
    rss: Vec<(u64, u64)>,
    stderr: String,
}

/// Starts the script held before exec, attaches `recorder` to it, releases it, and ends the
/// recorder with SIGINT once the script is done.
fn measure(script: &Path, recorder: impl Fn(u32) -> Command) -> Result<Measured> {
    let mut workload = Command::new("sh").arg("-c").arg(format!("read _ && exec {}", script.display())).stdin(Stdio::piped()).spawn()?;
    let mut rec = recorder(workload.id()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().context("start the recorder")?;
    // Time to load and attach (damo-trace loads eBPF; perf opens its events).
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    workload.stdin.take().context("workload stdin")?.write_all(b"go\n")?;
    let mut rss = Vec::new();
    let mut next = Duration::ZERO;
    while workload.try_wait()?.is_none() {
        if started.elapsed() >= next {
            if let Some(kib) = rss_kib(rec.id()) {
                rss.push((next.as_secs(), kib));
            }
            next += Duration::from_secs(5);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let wall = started.elapsed();
    if let Some(kib) = rss_kib(rec.id()) {
        rss.push((wall.as_secs(), kib));
    }
    // SAFETY: signalling the recorder we started, by pid.
    unsafe { libc::kill(rec.id() as i32, libc::SIGINT) };
    let mut stderr = String::new();
    std::io::Read::read_to_string(rec.stderr.as_mut().context("recorder stderr")?, &mut stderr)?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, whose pid we hold.
    if unsafe { libc::wait4(rec.id() as i32, &mut status, 0, &mut usage) } < 0 {
        bail!("failed to wait for the recorder: {}", std::io::Error::last_os_error());
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Measured { cpu: tv(usage.ru_utime) + tv(usage.ru_stime), wall, rss, stderr })
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
