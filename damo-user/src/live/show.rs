//! `damo-trace show`: damo's `show`, read-only. The current snapshot of every running
//! kdamond, taken from the `damon_aggregated` tracepoint (it waits for the next aggregation;
//! nothing under DAMON's sysfs is written), printed by `report access` itself: the snapshot
//! is written as a one-snapshot record and reported, so every style, sort, filter and
//! `--format_*` template of `report access` applies, and the output equals `report access`
//! of the same snapshot.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use damo_record::model::{Losses, Snapshot};
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
    /// Show this many snapshots, one after another (printed together at the end, as one
    /// record's snapshots).
    #[arg(long, default_value_t = 1)]
    pub repeat: u64,
    /// Time between two shows (damo's units: 1s, 500ms).
    #[arg(long, default_value = "1s", value_parser = record::args::parse_seconds)]
    pub interval: Duration,
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
    let running = damo_sysfs::summary::list(&damo_sysfs::tree::SysfsTree::new(&args.damon_admin), &[]).context("show")?.into_iter().filter(|k| k.state == "on" && k.pid.is_some()).count();
    if running == 0 {
        bail!("show: no kdamond is running (see damo-trace sysinfo)");
    }
    if !Privileges::current().can_trace() {
        bail!("show reads DAMON's tracepoint through eBPF and needs root (or CAP_BPF and CAP_PERFMON)");
    }
    let dir = PrivateDir::create("show")?;
    let mut access = args.access;
    access.input.input = dir.file("snapshot.data");
    let mut shown = Vec::new();
    for i in 0..args.repeat.max(1) {
        if i > 0 {
            std::thread::sleep(args.interval);
        }
        shown.push(next_snapshots(&args.damon_admin)?);
    }
    write_record(&access.input.input, &shown)?;
    // Reported by `report access` as it reports any record.
    crate::report::access::run(access, out)
}

/// The snapshots of one aggregation of every running kdamond, with what the record says
/// about their kdamonds.
type Shown = (HashMap<u32, KdamondInfo>, Vec<(TargetKey, Snapshot)>);

fn write_record(path: &Path, shown: &[Shown]) -> Result<()> {
    let kdamonds = shown.iter().flat_map(|(k, _)| k.iter().map(|(&pid, &info)| (pid, info))).collect();
    let mut file = RecordFile::create(path, 0o600, false, kdamonds)?;
    for (key, snapshot) in shown.iter().flat_map(|(_, s)| s) {
        file.snapshot(*key, snapshot)?;
    }
    file.finish(&Losses::default())
}

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
