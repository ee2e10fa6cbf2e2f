//! `cargo xtask demo`: the README's first command. Boots the project's VM (any host kernel
//! will do), records the bundled three-phase workload with damo-trace — DAMON snapshots and
//! call stacks in one record — and writes reports into a folder: per-phase profiles and
//! flamegraphs selected by access pattern, the working set over time, the whole profile, and
//! `holistic.svg`/`.html`: heatmap, working set and function timeline on one page.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use damo_record::output_file::{self, OutputOptions};

use crate::{setup::workspace_root, test::cargo, vm};

#[derive(clap::Args)]
pub struct Options {
    /// The folder to write the record and reports into.
    #[arg(long, default_value = "demo-output")]
    pub out: PathBuf,
}

/// The workload's buffers, the function that works on each, and the part it makes hot.
const PHASES: [(&str, &str, Option<u64>); 3] = [("sequential", "phase_sequential_scan", None), ("random", "phase_random_update", None), ("hotspot", "phase_hot_spot", Some(8 << 20))];

pub fn run(opts: Options) -> Result<()> {
    let started = Instant::now();
    let root = workspace_root();
    let out = if opts.out.is_absolute() { opts.out.clone() } else { root.join(&opts.out) };
    std::fs::create_dir_all(&out).with_context(|| format!("failed to create {}", out.display()))?;
    cargo(&["build", "--release", "-p", "damo-user", "--bin", "damo-trace"])?;
    let damo_trace = root.join("target/release/damo-trace");

    let prepared = vm::prepare()?;
    println!("demo: recording the three-phase workload in the VM (about a minute under emulation)");
    let boot = vm::boot(&prepared.kernel, &prepared.initramfs, "demo", Duration::from_secs(900))?;
    if boot.results.iter().any(|(_, ok)| !ok) {
        bail!("recording in the VM failed; see its console above");
    }
    let record = out.join("phases.dtr");
    // The demo's files are made like damo-trace's own outputs (never written through a link).
    output_file::write(&record, &decode_record(&boot.console)?, OutputOptions::REPORT)?;
    println!("demo: record {} ({} KiB)", record.display(), std::fs::metadata(&record)?.len() / 1024);

    let report = |args: &[&str], save_as: Option<&str>| -> Result<String> {
        let output = Command::new(&damo_trace).arg("report").args(args).current_dir(&out).output()?;
        if !output.status.success() {
            return Err(ReportFailed { args: args.join(" "), stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned() }.into());
        }
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if let Some(name) = save_as {
            output_file::write(&out.join(name), text.as_bytes(), OutputOptions::REPORT)?;
        }
        Ok(text)
    };
    // The VM ran the static builds: symbols come from them (matched by build-id).
    let binaries = root.join("target/x86_64-unknown-linux-musl/release");
    let search = binaries.to_str().context("a non-UTF-8 path")?;
    report(&["profile", "-i", "phases.dtr", "--search_dir", search, "--flamegraph", "flamegraph-all.svg"], Some("profile-all.txt"))?;
    report(&["phases", "-i", "phases.dtr", "--search_dir", search, "--flamegraphs", "phases"], Some("phases.txt"))?;
    report(&["wss", "-i", "phases.dtr", "--sortby", "time", "--exclude_samples", "0", "--all_wss", "--plot", "wss-over-time.svg"], None)?;
    report(&["heatmap", "-i", "phases.dtr", "--output", "heatmap.svg"], None)?;
    report(&["holistic", "-i", "phases.dtr", "--search_dir", search, "-o", "holistic.svg"], None)?;
    report(&["holistic", "-i", "phases.dtr", "--search_dir", search, "-o", "holistic.html"], None)?;
    println!("\ndemo: the function that ran while each buffer was hot (--access_rate 20% 100% --address <its middle half>):");
    // A buffer DAMON never saw at 20 % or more has no selection: said, and the rest still drawn.
    let mut unseen = Vec::new();
    for (name, function, hot_part) in PHASES {
        let (start, end) = buffer(&boot.console, name)?;
        let end = hot_part.map_or(end, |len| start + len);
        // The middle half, at 20 % (as the VM's phase test selects): the buffers are adjacent,
        // and a DAMON region still spanning the edge of a hot neighbour would make a buffer look
        // hot during the neighbour's phase; a sweep of the sequential buffer takes several
        // sampling intervals under emulation, so its pages are seen accessed in only part of them.
        let quarter = (end - start) / 4;
        let (start, end) = (start + quarter, end - quarter);
        let (s, e) = (start.to_string(), end.to_string());
        let (svg, diff) = (format!("flamegraph-{name}.svg"), format!("diff-{name}.svg"));
        let args = ["profile", "-i", "phases.dtr", "--search_dir", search, "--access_rate", "20%", "100%", "--address", &s, &e, "--flamegraph", &svg, "--diff", &diff, "--top", "5"];
        let text = match report(&args, Some(&format!("profile-{name}.txt"))) {
            Ok(text) => text,
            Err(e) if e.downcast_ref::<ReportFailed>().is_some_and(ReportFailed::empty_selection) => {
                println!("  {name:10} buffer {start:#x}-{end:#x}: DAMON never saw it at 20 % or more in this boot: no samples to attribute   (expected {function})");
                unseen.push(name);
                continue;
            }
            Err(e) => return Err(e),
        };
        let top = text.lines().find(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit())).unwrap_or("(no samples)");
        println!("  {name:10} buffer {start:#x}-{end:#x}: {}   (expected {function})", top.trim());
    }
    println!("\ndemo: diff-<buffer>.svg: that time against the rest (red: more of the samples than otherwise)");
    println!("demo: holistic.html (or .svg): the heatmap, working set and function timeline on one page, phases marked");
    println!("\ndemo: done in {:.0?}; open the SVGs in {}:", started.elapsed(), out.display());
    let mut files: Vec<String> = std::fs::read_dir(&out)?.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    println!("  {}", files.join("  "));
    if !unseen.is_empty() {
        bail!("DAMON did not see the {} buffer(s) hot in this boot; run the demo again", unseen.join(", "));
    }
    Ok(())
}

/// A report that exited non-zero, with what it printed.
#[derive(Debug)]
struct ReportFailed {
    args: String,
    stderr: String,
}

impl ReportFailed {
    /// The access pattern never held over the buffer: nothing to profile, not a fault.
    fn empty_selection(&self) -> bool {
        self.stderr.contains("no samples in the selection")
    }
}

impl std::fmt::Display for ReportFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "damo-trace report {} failed: {}", self.args, self.stderr)
    }
}

impl std::error::Error for ReportFailed {}

fn decode_record(console: &[String]) -> Result<Vec<u8>> {
    crate::vm::console_files(console)?.into_iter().find(|(name, _)| name == "demo.dtr").map(|(_, bytes)| bytes).context("the VM sent no record")
}

/// A buffer's range as the workload printed it ("buffer <name> 0x…-0x…").
fn buffer(console: &[String], name: &str) -> Result<(u64, u64)> {
    let prefix = format!("buffer {name} ");
    let line = console.iter().find_map(|l| l.trim_start_matches([' ', '|']).strip_prefix(&prefix)).with_context(|| format!("the workload did not print its {name} buffer"))?;
    let (a, b) = line.trim().split_once('-').context("bad buffer line")?;
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).context("bad buffer address");
    Ok((hex(a)?, hex(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_console() {
        let console: Vec<String> = ["  | buffer random 0x7f00-0x8f00", "DAMO-FILE-BEGIN demo.dtr", "aGVs", "bG8=", "DAMO-FILE-END"].map(String::from).to_vec();
        assert_eq!(buffer(&console, "random").unwrap(), (0x7f00, 0x8f00));
        assert_eq!(decode_record(&console).unwrap(), b"hello");
        assert!(buffer(&console, "hotspot").is_err());
    }
}
