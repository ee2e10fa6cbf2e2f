//! `damo-trace diagnose`: one read-only report to attach to a bug (damo's `diagnose`): the
//! build, what the machine offers, every kdamond's parameters, the DAMON modules' parameters,
//! and what the running kdamonds emitted on the DAMON tracepoint for a few seconds (attached
//! with `record --observe`, which writes nothing to DAMON's sysfs). A section that cannot be
//! had (not root, no tracefs) says why, and the rest is still printed.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result};
use clap::Parser;
use damo_record::{
    output_file::{self, OutputOptions},
    units,
};

use crate::{control, dist, record, sysinfo};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long to watch the running kdamonds' tracepoint (damo's units: 3s, 500ms). By
    /// default 3 s, or two aggregation intervals of the slowest running kdamond (at most 30 s),
    /// so each shows at least one snapshot.
    #[arg(long, value_parser = record::args::parse_seconds)]
    pub duration: Option<Duration>,
    /// Write the report here instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The DAMON modules whose parameters are reported, if the kernel has them.
const MODULES: [&str; 3] = ["damon_reclaim", "damon_lru_sort", "damon_stat"];

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let mut report = Vec::new();
    write_report(&args, &mut report)?;
    match &args.output {
        Some(path) => output_file::write(path, &report, OutputOptions::REPORT)?,
        None => out.write_all(&report)?,
    }
    Ok(())
}

fn write_report(args: &Args, out: &mut Vec<u8>) -> Result<()> {
    writeln!(out, "# damo-trace diagnose\n\n## version\n{}\n", dist::LONG_VERSION.trim_end())?;
    writeln!(out, "## sysinfo")?;
    section(out, |o| sysinfo::run(sysinfo::Args { json: false }, o))?;
    writeln!(out, "\n## status")?;
    section(out, |o| control::args::status(control::args::StatusArgs { json: false, snapshot: None, output: None }, o))?;
    writeln!(out, "\n## DAMON modules")?;
    modules(Path::new("/sys/module"), out)?;
    let info = sysinfo::gather(&sysinfo::Roots::system());
    let running: Vec<&damo_sysfs::summary::Kdamond> = info.kdamonds.iter().filter(|k| k.state == "on").collect();
    let slowest_aggr_us = running.iter().filter_map(|k| k.intervals_us.map(|i| i[1])).max().unwrap_or(0);
    let duration = args.duration.unwrap_or_else(|| Duration::from_micros(slowest_aggr_us.saturating_mul(2)).clamp(Duration::from_secs(3), Duration::from_secs(30)));
    writeln!(out, "\n## DAMON tracepoint activity ({})", units::format_time_ns(duration.as_nanos() as f64, false))?;
    if running.is_empty() {
        writeln!(out, "no kdamond runs: nothing to watch")?;
        return Ok(());
    }
    section(out, |o| tracepoint_activity(duration, o))
}

/// Runs `fill`; its error becomes the section's one line, so the report goes on.
fn section(out: &mut Vec<u8>, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let mut text = Vec::new();
    match fill(&mut text) {
        Ok(()) => out.extend_from_slice(&text),
        Err(e) => writeln!(out, "unavailable: {}", crate::errors::message(&e))?,
    }
    Ok(())
}

/// `<module>: <parameter>=<value> …` for each DAMON module the kernel has (built in or loaded).
pub fn modules(sys_module: &Path, out: &mut dyn Write) -> Result<()> {
    for module in MODULES {
        let dir = sys_module.join(module).join("parameters");
        let Ok(entries) = fs::read_dir(&dir) else {
            writeln!(out, "{module}: not in this kernel")?;
            continue;
        };
        let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        let values: Vec<String> = names
            .iter()
            .map(|n| {
                let value = fs::read_to_string(dir.join(n)).map_or_else(|e| format!("({e})"), |v| v.trim().to_owned());
                damo_record::text::printable(&format!("{n}={value}")).into_owned()
            })
            .collect();
        writeln!(out, "{module}: {}", values.join(" "))?;
    }
    Ok(())
}

#[derive(Parser)]
struct Observe {
    #[command(flatten)]
    args: record::args::Args,
}

/// Records the running kdamonds read-only for `duration` into a private temporary record and
/// summarizes it per target: snapshots, regions, the aggregation interval seen, losses.
fn tracepoint_activity(duration: Duration, out: &mut dyn Write) -> Result<()> {
    let dir = private_dir()?;
    let path = dir.join("observed.data");
    let result = observe_into(&path, duration).and_then(|()| summarize(&path, out));
    let _ = fs::remove_file(&path);
    fs::remove_dir(&dir).with_context(|| format!("failed to remove {}", dir.display()))?;
    result
}

fn observe_into(path: &Path, duration: Duration) -> Result<()> {
    let timeout = format!("{}ms", duration.as_millis().max(1));
    let argv = ["observe", "--observe", "--sample_hz", "0", "--timeout", &timeout, "--do_record", "access", "-o"];
    let parsed = Observe::try_parse_from(argv.iter().copied().chain([path.to_str().context("temporary path is not UTF-8")?])).context("internal: bad observe options")?;
    record::args::run(parsed.args)
}

fn summarize(path: &Path, out: &mut dyn Write) -> Result<()> {
    let loaded = damo_record::load::load(path)?;
    if let Some(damage) = &loaded.damage {
        writeln!(out, "note: {damage}")?;
    }
    let record = loaded.record;
    if record.targets.is_empty() {
        writeln!(out, "no damon:damon_aggregated events: the running kdamonds aggregated nothing in that time")?;
    }
    for t in &record.targets {
        let regions: usize = t.snapshots.iter().map(|s| s.regions.len()).sum();
        // Between the ends of snapshots: the first one's start is only known from the kdamond.
        let span_ns = t.snapshots.last().map_or(0, |l| l.end_ns).saturating_sub(t.snapshots.first().map_or(0, |f| f.end_ns));
        let every = match t.snapshots.len() {
            0 | 1 => "(one snapshot: no interval seen)".to_owned(),
            n => format!("one per {}", units::format_time_ns(span_ns as f64 / (n - 1) as f64, false)),
        };
        writeln!(
            out,
            "kdamond {} context {} target {}: {} snapshots, {:.1} regions each, {every}",
            t.kdamond_idx,
            t.context_idx,
            t.target_id,
            t.snapshots.len(),
            regions as f64 / t.snapshots.len().max(1) as f64,
        )?;
    }
    if let Some(losses) = &record.losses {
        let causes: Vec<String> = losses.breakdown().into_iter().filter(|(_, n)| *n > 0).map(|(cause, n)| format!("{n} {cause}")).collect();
        writeln!(out, "lost: {}", if causes.is_empty() { "nothing".to_owned() } else { causes.join(", ") })?;
    }
    Ok(())
}

/// A new directory only root can enter; `create_dir` fails rather than follow anything there.
fn private_dir() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("damo-trace-diagnose-{}-{nanos}", std::process::id()));
    fs::DirBuilder::new().mode(0o700).create(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    Ok(dir)
}
