//! `damo-trace monitor`: damo's `monitor`. Watches a target (or the running kdamonds,
//! `ongoing`) and every `--delay` seconds reports the window just recorded with `report
//! heatmap --resol 10 80` (`heats`) or `report wss`, as damo's runs `damo record` and `damo
//! report` in turn. Here one recording runs throughout (the same stream as `top`), cut into
//! windows, so no aggregation falls between two of them.

use std::{
    collections::HashMap,
    io::Write,
    path::Path,
    sync::{mpsc, Arc},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use clap::Parser;
use damo_record::model::Snapshot;

use super::{
    feed::{Feed, LiveOutput},
    private_dir::PrivateDir,
};
use crate::{
    record::{
        self,
        file::{KdamondInfo, RecordFile},
    },
    snapshots::TargetKey,
};

#[derive(Debug, clap::Args)]
#[command(rename_all = "snake_case")]
#[group(id = "monitor_args")]
pub struct Args {
    /// What to monitor: a "command", a pid, paddr, or ongoing (the running kdamonds, read
    /// only).
    pub target: String,
    /// What each update shows: heats (a text heatmap) or wss (working set sizes).
    #[arg(long, default_value = "heats", value_parser = ["heats", "wss"])]
    pub report_type: String,
    /// Seconds between updates (each reports the window since the previous one).
    #[arg(long, default_value_t = 3.0)]
    pub delay: f64,
    /// Updates to show; 0 runs until the target ends or SIGINT.
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Where DAMON's sysfs admin directory is (ongoing reads it; for tests).
    #[arg(long = "damon_admin", default_value = damo_sysfs::ADMIN, hide = true)]
    pub damon_admin: std::path::PathBuf,
    /// DAMON parameters of the kdamond started for the target (damo's options).
    #[command(flatten)]
    pub damon: crate::control::args::DamonArgs,
}

/// `report`'s command line, parsed as the CLI parses it: each update is the report a user
/// would get from the same window.
#[derive(Debug, Parser)]
struct ReportLine {
    #[command(flatten)]
    report: crate::report::ReportArgs,
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    if !(args.delay.is_finite() && args.delay > 0.0 && args.delay <= 1e6) {
        bail!("--delay {}: give a number of seconds above 0", args.delay);
    }
    let ongoing = args.target == "ongoing";
    let observe = super::recording((!ongoing).then(|| args.target.clone()), ongoing, 0, args.damon.clone());
    let (plan, mut kdamonds) = record::args::plan(observe, &args.damon_admin)?;
    let dir = PrivateDir::create("monitor")?;
    let window_file = dir.file("window.data");
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(tokio::sync::Notify::new());
    let delay = Duration::from_secs_f64(args.delay);
    std::thread::scope(|scope| -> Result<()> {
        let recorder = scope.spawn(|| {
            let mut output = LiveOutput::new(tx, None);
            record::run_until(&plan, &mut output, stop.notified())
        });
        let mut window: Vec<(TargetKey, Snapshot)> = Vec::new();
        let mut reports = 0;
        let mut due = Instant::now() + delay;
        let reported = loop {
            match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(Feed::Kdamond { pid, index, intervals }) => {
                    kdamonds.insert(pid, KdamondInfo { index, intervals });
                }
                Ok(Feed::Snapshot(key, snapshot)) => window.push((key, snapshot)),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break Ok(()),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    due += delay;
                    if let Err(e) = report(&window_file, &kdamonds, &std::mem::take(&mut window), &args.report_type, out) {
                        break Err(e);
                    }
                    reports += 1;
                    if args.count > 0 && reports >= args.count {
                        break Ok(());
                    }
                }
            }
        };
        stop.notify_one();
        let recorded = recorder.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the recording thread panicked")));
        reported.and(recorded.map(|_| ()))
    })
}

/// Writes `window` as a record and prints its report.
fn report(path: &Path, kdamonds: &HashMap<u32, KdamondInfo>, window: &[(TargetKey, Snapshot)], report_type: &str, out: &mut dyn Write) -> Result<()> {
    if window.is_empty() {
        writeln!(out, "no snapshot in this window")?;
        return Ok(());
    }
    RecordFile::write_snapshots(path, true, kdamonds.clone(), window).context("cannot write the window's record")?;
    let input = path.to_str().context("the temporary directory's path is not UTF-8")?;
    let line: Vec<&str> = match report_type {
        "heats" => vec!["report", "heatmap", "-i", input, "--resol", "10", "80"],
        _ => vec!["report", "wss", "-i", input],
    };
    let parsed = ReportLine::try_parse_from(&line).with_context(|| format!("cannot run {}", line.join(" ")))?;
    let mut text = Vec::new();
    crate::report::run(parsed.report, &mut text)?;
    // damo's heats leave out the heatmap's comment lines.
    let text = String::from_utf8_lossy(&text);
    for l in text.lines().filter(|l| report_type != "heats" || !l.starts_with('#')) {
        writeln!(out, "{l}")?;
    }
    writeln!(out)?;
    out.flush()?;
    Ok(())
}
