//! `damo-trace record`'s command line, turned into a [`Plan`] and a record file.

use std::{collections::HashMap, io::Write as _, path::PathBuf, time::Duration};

use anyhow::{bail, Context, Result};
use damo_record::{
    output_file,
    units::{self, TimeUnit},
};
use damo_sysfs::tree::SysfsTree;

use super::{file::KdamondInfo, file::RecordFile, target::TargetSpec, Plan};
use crate::unwind::CallGraph;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to record: a pid or a "command with args" (started by damo-trace and recorded from
    /// its first instruction). Optional with --observe.
    pub target: Option<String>,
    /// The record file.
    #[arg(short = 'o', long = "out", default_value = "damon.data")]
    pub out: PathBuf,
    /// Permission bits of the record file, in octal.
    #[arg(long = "output_permission", default_value = "600", value_parser = output_file::parse_mode)]
    pub output_permission: u32,
    /// Replace the record file if it exists (the old one stays whole until this recording
    /// ends; a symlink, FIFO or device is never written to).
    #[arg(long)]
    pub force: bool,
    /// Stop after this long (damo's units: 30s, 5m, 100ms; a bare number is seconds, as
    /// damo's `--timeout <seconds>`).
    #[arg(long, value_parser = parse_seconds)]
    pub timeout: Option<Duration>,
    /// cpu-clock samples per second per CPU for call stacks; 0 records no stacks.
    #[arg(long = "sample_hz", default_value_t = 99)]
    pub sample_hz: u64,
    /// How user call stacks are taken (perf's option): "fp" walks frame pointers in the
    /// kernel; "dwarf[,SIZE]" copies SIZE bytes of user stack per sample (default 16384) and
    /// unwinds them with the binaries' DWARF CFI while recording, so stacks of binaries built
    /// without frame pointers reach main. The record keeps frames, not stack bytes.
    #[arg(long = "call-graph", default_value = "dwarf", value_parser = CallGraph::parse)]
    pub call_graph: CallGraph,
    /// Sample only the target process, not the children it starts.
    #[arg(long = "no-follow")]
    pub no_follow: bool,
    /// Run a command target as this user (a name or a uid) instead of root, with the user's
    /// groups and a clean environment (HOME, USER, LOGNAME, SHELL from passwd; PATH
    /// /usr/local/bin:/usr/bin:/bin; TERM, COLORTERM, LANG, LANGUAGE, LC_*, TZ kept).
    #[arg(long)]
    pub user: Option<String>,
    /// Leave a command target running when the recording ends (by --timeout, SIGINT or
    /// SIGTERM). By default damo-trace ends a command it started, as perf does: SIGTERM to its
    /// process group, SIGKILL 2 s later. A pid target is never signalled.
    #[arg(long = "keep_running")]
    pub keep_running: bool,
    /// Record the kdamonds that already run, without touching them (read-only).
    #[arg(long)]
    pub observe: bool,
    /// Record CPU stacks only; no DAMON.
    #[arg(long = "no-damon", conflicts_with = "observe")]
    pub no_damon: bool,
    /// Record the regions DAMOS schemes tried to apply their actions to (one snapshot per
    /// scheme pass, from damon:damos_before_apply, Linux 6.9+) instead of every aggregation.
    #[arg(long = "schemes_target_regions")]
    pub schemes_target_regions: bool,
    /// What to record, in damo's words: access (DAMON snapshots), cpu_profile (call stacks),
    /// mem_footprint, vmas and proc_stats (read from /proc about once a second). Give it after
    /// the target: it takes every word that follows.
    #[arg(long = "do_record", num_args = 1.., value_parser = DO_RECORD, default_values = DO_RECORD)]
    pub do_record: Vec<String>,
    /// DAMON parameters of the kdamond started for the target (damo's options).
    #[command(flatten)]
    pub damon: crate::control::args::DamonArgs,
}

/// damo's `--do_record` choices (but damon_trace_events), all recorded by default.
const DO_RECORD: [&str; 5] = ["access", "cpu_profile", "mem_footprint", "vmas", "proc_stats"];

/// A duration option with damo's time units where a bare number is seconds (`--timeout`).
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    units::parse_duration(text, TimeUnit::S).map_err(|e| e.to_string())
}

/// Runs `record` and prints the summary line.
pub fn run(args: Args) -> Result<()> {
    let (out, permission, force) = (args.out.clone(), args.output_permission, args.force);
    let (plan, kdamonds) = plan(args, std::path::Path::new(damo_sysfs::ADMIN))?;
    let mut file = RecordFile::create(&out, permission, force, kdamonds).context("cannot start the record")?;
    if let Some(at) = file.streaming_path().filter(|at| *at != out) {
        eprintln!("recording into {}; it replaces {} when the recording ends", at.display(), out.display());
    }
    let recorded = file.metadata(&super::metadata::of(&plan)).and_then(|()| super::run(&plan, &mut file));
    let summary = match recorded {
        Ok(summary) => summary,
        Err(e) => {
            // Nothing recorded: our file goes (and a record it was to replace stays as it was).
            return Err(match file.abandon() {
                Some(kept) => e.context(format!("the record so far is in {}", kept.display())),
                None => e,
            });
        }
    };
    // Ignored if stderr is gone: the record is written, the run succeeded.
    let _ = writeln!(std::io::stderr(), "\r{summary} -> {}", out.display());
    Ok(())
}

/// The recording `args` ask for, and what the record says about the kdamonds it observes
/// (`record` and the live view share it). `--observe` reads the kdamonds under `damon_admin`.
pub fn plan(args: Args, damon_admin: &std::path::Path) -> Result<(Plan, HashMap<u32, KdamondInfo>)> {
    let doing = |what: &str| args.do_record.iter().any(|w| w == what);
    let (access, cpu_profile) = (doing("access"), doing("cpu_profile"));
    let proc_samples = super::ProcSampling { footprints: doing("mem_footprint"), vmas: doing("vmas"), stats: doing("proc_stats") };
    let mut args = args;
    if !access {
        if args.observe {
            bail!("--observe records DAMON's snapshots: --do_record needs access");
        }
        args.no_damon = true;
    }
    if !cpu_profile {
        args.sample_hz = 0;
    }
    let target = args.target.as_deref().map(TargetSpec::parse);
    if target.is_none() && !args.observe {
        bail!("nothing to record: give a pid, a \"command\", paddr or a kdamonds.json, or --observe");
    }
    // Without --observe or --no-damon, damo-trace starts kdamonds for the recording.
    let start_damon = match (&target, args.observe || args.no_damon) {
        (_, true) => None,
        (Some(TargetSpec::KdamondsJson(path)), false) => Some(crate::control::args::load_document(path)?),
        (Some(TargetSpec::Paddr), false) => {
            let damon = crate::control::args::DamonArgs { ops: Some(args.damon.ops.clone().unwrap_or_else(|| "paddr".into())), ..args.damon.clone() };
            Some(damon.document(None)?)
        }
        (Some(_), false) => {
            let mut doc = args.damon.document(Some(0))?;
            // The pid is filled in once known: a command gets one when it is started.
            doc.kdamonds.iter_mut().flat_map(|k| &mut k.contexts).flat_map(|c| &mut c.targets).for_each(|t| t.pid = None);
            Some(doc)
        }
        (None, false) => None,
    };
    if args.schemes_target_regions {
        if args.no_damon {
            bail!("--schemes_target_regions records DAMOS schemes: it cannot go with --no-damon");
        }
        if start_damon.as_ref().is_some_and(|doc| doc.kdamonds.iter().flat_map(|k| &k.contexts).all(|c| c.schemes.is_empty())) {
            bail!("--schemes_target_regions records what DAMOS schemes try: give one, e.g. --damos_action stat");
        }
    }
    if matches!(target, Some(TargetSpec::Paddr | TargetSpec::KdamondsJson(_))) && args.no_damon {
        bail!("--no-damon records CPU stacks of a process: give a pid or a command");
    }
    let mut kdamonds = HashMap::new();
    let mut monitored_pids = Vec::new();
    if args.observe {
        // Read-only: whose they are does not matter.
        for k in damo_sysfs::summary::list(&SysfsTree::new(damon_admin), &[]).context("--observe")? {
            let (Some(pid), "on") = (k.pid, k.state.as_str()) else { continue };
            kdamonds.insert(pid, KdamondInfo { index: k.index as u32, intervals: k.intervals() });
            monitored_pids.extend(&k.target_pids);
        }
        if kdamonds.is_empty() {
            bail!("--observe: no kdamond is running (see damo-trace sysinfo)");
        }
    }
    let plan = Plan {
        target,
        user: args.user,
        kdamond_pids: kdamonds.keys().copied().collect(),
        monitored_pids,
        sample_hz: args.sample_hz,
        call_graph: args.call_graph,
        follow_children: !args.no_follow,
        timeout: args.timeout,
        start_damon,
        schemes_target_regions: args.schemes_target_regions,
        proc_samples,
        keep_running: args.keep_running,
    };
    Ok((plan, kdamonds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_in_damo_units_with_bare_seconds() {
        assert_eq!(parse_seconds("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_seconds("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_seconds("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_seconds("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1s").is_err());
        assert!(parse_seconds("10 parsecs").is_err());
        assert!(parse_seconds("s").is_err());
    }
}
