//! `damo-trace show`: damo's `show`, read-only. The current snapshot of every running
//! kdamond, taken from the `damon_aggregated` tracepoint (it waits for the next aggregation;
//! nothing under DAMON's sysfs is written), printed by `report access` itself: the snapshot
//! is written as a one-snapshot record and reported, so every style, sort, filter and
//! `--format_*` template of `report access` applies, and the output equals `report access`
//! of the same snapshot.
//!
//! `--stat_scheme` takes the snapshot as damo's `show` always does, from a DAMOS `stat`
//! scheme's tried regions (no wait for an aggregation, no eBPF), which writes to the kdamond:
//! only for kdamonds damo-trace started, refused for any other. `--repeat` shows a snapshot
//! again and again, each printed as it comes, as damo's `--repeat`.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use damo_record::model::Snapshot;
use tokio::sync::Notify;

use super::private_dir::PrivateDir;
use crate::{
    privilege::Privileges,
    record::{
        self,
        file::{KdamondInfo, RecordFile},
        RecordOutput,
    },
    snapshots::TargetKey,
};

#[derive(Debug, clap::Args)]
#[command(rename_all = "snake_case")]
#[group(id = "show_args")]
pub struct Args {
    /// Show this many snapshots, each printed as it comes, --interval apart; or damo's
    /// `--repeat <delay> <count>`.
    #[arg(long, num_args = 1..=2, value_names = ["COUNT"])]
    pub repeat: Vec<String>,
    /// Time between two shows (damo's units: 1s, 500ms).
    #[arg(long, default_value = "1s", value_parser = record::args::parse_seconds)]
    pub interval: Duration,
    /// Read the snapshot from a DAMOS `stat` scheme's tried regions, as damo does (added and
    /// committed when the kdamond has none): a write, so only for kdamonds damo-trace started.
    #[arg(long)]
    pub stat_scheme: bool,
    /// Where DAMON's sysfs admin directory is (read only; for tests).
    #[arg(long = "damon_admin", default_value = damo_sysfs::ADMIN, hide = true)]
    pub damon_admin: PathBuf,
    /// How the snapshot is printed: `report access`'s options (its -i is not used).
    #[command(flatten)]
    pub access: crate::report::access::Args,
}

/// How long after the first snapshot of a kdamond's aggregation its other targets' are
/// waited for (they are reported together, within microseconds).
const SAME_AGGREGATION: Duration = Duration::from_millis(100);

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    if args.access.input.input != Path::new("damon.data") {
        bail!("show reports the running kdamonds: -i/--input is for `report access`");
    }
    let (count, interval) = repetition(&args.repeat, args.interval)?;
    let tree = damo_sysfs::tree::SysfsTree::new(&args.damon_admin);
    let running: Vec<usize> = damo_sysfs::summary::list(&tree, &[]).context("show")?.into_iter().filter(|k| k.state == "on" && k.pid.is_some()).map(|k| k.index).collect();
    if running.is_empty() {
        bail!("show: no kdamond is running (see damo-trace sysinfo)");
    }
    let owned = damo_sysfs::ownership::Ownership::system();
    if args.stat_scheme {
        let present = damo_sysfs::present(&tree, &owned).context("show --stat_scheme")?;
        if let Some(k) = present.iter().find(|k| running.contains(&k.index) && !k.ours) {
            bail!("show --stat_scheme: kdamond {} was not started by damo-trace, and a stat scheme writes to it; `show` without --stat_scheme reads it without writing", k.index);
        }
        if !Privileges::current().root {
            bail!("show --stat_scheme writes DAMON's sysfs and needs root (run it with sudo)");
        }
    } else if !Privileges::current().can_trace() {
        bail!("show reads DAMON's tracepoint through eBPF and needs root (or CAP_BPF and CAP_PERFMON)");
    }
    let dir = PrivateDir::create("show")?;
    for i in 0..count {
        if i > 0 {
            std::thread::sleep(interval);
        }
        let (kdamonds, snapshots) = if args.stat_scheme { stat_snapshots(&tree, &owned, &running)? } else { next_snapshots(&args.damon_admin)? };
        let mut access = args.access.clone();
        access.input.input = dir.file(&format!("snapshot-{i}.data"));
        RecordFile::write_snapshots(&access.input.input, false, kdamonds, &snapshots)?;
        // Reported by `report access` as it reports any record, one snapshot at a time.
        crate::report::access::run(access, out)?;
        out.flush()?;
    }
    Ok(())
}

/// How many snapshots `--repeat` asks for, and how far apart: `--repeat COUNT` (with
/// `--interval`), or damo's `--repeat DELAY COUNT`.
fn repetition(repeat: &[String], interval: Duration) -> Result<(u64, Duration)> {
    let count = |text: &str| text.parse::<u64>().ok().filter(|&n| n > 0).with_context(|| format!("--repeat {text}: give a number of snapshots above 0"));
    match repeat {
        [] => Ok((1, interval)),
        [n] => Ok((count(n)?, interval)),
        [delay, n] => Ok((count(n)?, record::args::parse_seconds(delay).map_err(|e| anyhow::anyhow!("--repeat {delay} {n}: {e}"))?)),
        _ => bail!("--repeat takes a count, or a delay and a count"),
    }
}

/// The snapshot of each running kdamond from its stat scheme's tried regions (all ours).
fn stat_snapshots(tree: &damo_sysfs::tree::SysfsTree, owned: &damo_sysfs::ownership::Ownership, running: &[usize]) -> Result<Shown> {
    let mut kdamonds = HashMap::new();
    let mut snapshots = Vec::new();
    let present = damo_sysfs::present(tree, owned)?;
    for &idx in running {
        let pid = present.iter().find(|k| k.index == idx).and_then(|k| k.pid).with_context(|| format!("kdamond {idx} stopped"))?;
        let record = damo_sysfs::snapshot::take(tree, owned, idx, damo_record::clock::monotonic_ns()).with_context(|| format!("show --stat_scheme: kdamond {idx}"))?;
        for t in record.targets {
            kdamonds.insert(pid, KdamondInfo { index: idx as u32, intervals: t.intervals });
            // The same key the tracepoint gives, so both paths print alike.
            let key = TargetKey { kdamond_pid: pid, target_id: t.target_id, context_idx: t.context_idx, scheme_idx: None };
            snapshots.extend(t.snapshots.into_iter().filter(|s| !s.regions.is_empty()).map(|s| (key, s)));
        }
    }
    Ok((kdamonds, snapshots))
}

/// The snapshots of one aggregation of every running kdamond, with what the record says
/// about their kdamonds.
type Shown = (HashMap<u32, KdamondInfo>, Vec<(TargetKey, Snapshot)>);

/// The next snapshot of every running kdamond's targets, read from the tracepoint.
fn next_snapshots(damon_admin: &Path) -> Result<Shown> {
    let observe = super::recording(None, true, 0, Default::default());
    let (mut plan, kdamonds) = record::args::plan(observe, damon_admin)?;
    let slowest = kdamonds.values().filter_map(|k| k.intervals).map(|i| Duration::from_micros(i.aggr_us)).max().unwrap_or(Duration::from_secs(1));
    // A kdamond that never aggregates (stuck, or its interval is long) ends the wait.
    plan.timeout = Some(slowest * 3 + Duration::from_secs(5));
    let wanted = kdamonds.len();
    let mut latest = Latest { snapshots: HashMap::new(), kdamonds: Vec::new(), wanted, all_seen: Arc::new(Notify::new()) };
    let all_seen = latest.all_seen.clone();
    let stop = async move {
        all_seen.notified().await;
        tokio::time::sleep(SAME_AGGREGATION).await;
    };
    record::run_until(&plan, &mut latest, stop)?;
    if latest.kdamonds.len() < wanted {
        bail!("show: no aggregation of {} of the {wanted} running kdamonds within {:.0?}", wanted - latest.kdamonds.len(), plan.timeout.unwrap_or_default());
    }
    let mut snapshots: Vec<_> = latest.snapshots.into_iter().collect();
    snapshots.sort_by_key(|(key, _)| (key.kdamond_pid, key.context_idx, key.target_id));
    Ok((kdamonds, snapshots))
}

/// The first complete snapshot of each target; says when every kdamond has reported.
struct Latest {
    snapshots: HashMap<TargetKey, Snapshot>,
    kdamonds: Vec<u32>,
    wanted: usize,
    all_seen: Arc<Notify>,
}

impl RecordOutput for Latest {
    fn snapshot(&mut self, target: TargetKey, snapshot: &Snapshot) -> Result<()> {
        self.snapshots.entry(target).or_insert_with(|| snapshot.clone());
        if !self.kdamonds.contains(&target.kdamond_pid) {
            self.kdamonds.push(target.kdamond_pid);
            if self.kdamonds.len() == self.wanted {
                self.all_seen.notify_one();
            }
        }
        Ok(())
    }
}
