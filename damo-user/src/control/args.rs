//! `start`, `tune`, `stop` and `status`: damo's option names and units, turned into a
//! parameter [`Document`].

use std::{io::Write, path::PathBuf};

use anyhow::{bail, Context as _, Result};
use damo_record::units;

use damo_sysfs::{
    modules::Modules,
    ownership::Ownership,
    params::{AccessPattern, AddrRange, Context, Document, Filter, Intervals, Kdamond, MinMax, NrRegions, PercentRange, Scheme, Target, Watermarks, Weights},
    read, snapshot,
    tree::{SysfsTree, Tree, ADMIN},
};

use crate::{
    launch::{GatedChild, LaunchOptions},
    privilege,
    record::target::TargetSpec,
};

/// DAMON parameters, as damo's options name them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DamonArgs {
    /// Operation set: vaddr (a process), fvaddr (fixed ranges of a process) or paddr.
    #[arg(long)]
    pub ops: Option<String>,
    /// Sampling interval (5ms; a bare number is µs).
    #[arg(short = 's', long = "sample")]
    pub sample: Option<String>,
    /// Aggregation interval (100ms).
    #[arg(short = 'a', long = "aggr")]
    pub aggr: Option<String>,
    /// Operations update interval (1s).
    #[arg(short = 'u', long = "updr")]
    pub updr: Option<String>,
    /// Minimum number of regions.
    #[arg(short = 'n', long = "minr")]
    pub minr: Option<String>,
    /// Maximum number of regions.
    #[arg(short = 'm', long = "maxr")]
    pub maxr: Option<String>,
    /// Initial monitoring regions: "<start>-<end> ...".
    #[arg(short = 'r', long = "regions")]
    pub regions: Option<String>,
    /// The process to monitor (instead of the positional target).
    #[arg(long = "target_pid")]
    pub target_pid: Option<u32>,
    /// A DAMOS scheme's action (stat, pageout, cold, hot, lru_prio, lru_deprio, hugepage,
    /// nohugepage, willneed, …); repeat for more schemes. The options below apply, in order,
    /// to the schemes given.
    #[arg(long = "damos_action", action = clap::ArgAction::Append)]
    pub damos_action: Vec<String>,
    /// Access rate range of the regions a scheme acts on (0%, 50%, max).
    #[arg(long = "damos_access_rate", num_args = 2, value_names = ["MIN", "MAX"], action = clap::ArgAction::Append)]
    pub damos_access_rate: Vec<String>,
    /// Size range of the regions a scheme acts on (4K, 2M, max).
    #[arg(long = "damos_sz_region", num_args = 2, value_names = ["MIN", "MAX"], action = clap::ArgAction::Append)]
    pub damos_sz_region: Vec<String>,
    /// Age range of the regions a scheme acts on (5s, max; a bare number is µs).
    #[arg(long = "damos_age", num_args = 2, value_names = ["MIN", "MAX"], action = clap::ArgAction::Append)]
    pub damos_age: Vec<String>,
    /// How often a scheme is applied (0: every aggregation interval).
    #[arg(long = "damos_apply_interval", action = clap::ArgAction::Append)]
    pub damos_apply_interval: Vec<String>,
    /// Quota reset interval (1s; a bare number is ms, as in damo).
    #[arg(long = "damos_quota_interval", action = clap::ArgAction::Append)]
    pub damos_quota_interval: Vec<String>,
    /// CPU time a scheme may use per quota interval (10ms; a bare number is ms; 0: unlimited).
    #[arg(long = "damos_quota_time", action = clap::ArgAction::Append)]
    pub damos_quota_time: Vec<String>,
    /// Bytes a scheme may act on per quota interval (100M; 0: unlimited).
    #[arg(long = "damos_quota_space", action = clap::ArgAction::Append)]
    pub damos_quota_space: Vec<String>,
    /// Priority weights of size, access rate and age under a quota (permil).
    #[arg(long = "damos_quota_weights", num_args = 3, value_names = ["SZ", "ACCESS_RATE", "AGE"], action = clap::ArgAction::Append)]
    pub damos_quota_weights: Vec<String>,
    /// Watermarks: metric (none, free_mem_rate), check interval, high, mid, low (permil).
    #[arg(long = "damos_wmarks", num_args = 5, value_names = ["METRIC", "INTERVAL", "HIGH", "MID", "LOW"], action = clap::ArgAction::Append)]
    pub damos_wmarks: Vec<String>,
    /// A filter of the last scheme: "<allow|reject> [non] <type> [arg]" with type anon,
    /// active, young, unmapped, memcg <path>, addr <start> <end>, target <index>,
    /// hugepage_size <min> <max>. Repeatable.
    #[arg(long = "damos_filter", num_args = 1.., allow_hyphen_values = true, action = clap::ArgAction::Append)]
    pub damos_filter: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// What to monitor: a pid, a "command with args" (started by damo-trace; it keeps
    /// running after damo-trace exits), paddr, or a kdamonds JSON document.
    pub target: Option<String>,
    #[command(flatten)]
    pub damon: DamonArgs,
    /// A kdamonds JSON document (as `status --json` prints it, or damo's).
    #[arg(long = "kdamonds")]
    pub kdamonds: Option<PathBuf>,
    /// Run a command target as this user (a name or a uid) with the user's groups and a clean
    /// environment, as `record --user` does.
    #[arg(long)]
    pub user: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct TuneArgs {
    /// The new parameters: a kdamonds JSON document or options as for `start`.
    pub target: Option<String>,
    #[command(flatten)]
    pub damon: DamonArgs,
    #[arg(long = "kdamonds")]
    pub kdamonds: Option<PathBuf>,
    /// Which of our kdamonds (default: the only one running).
    #[arg(long = "kdamond_idx")]
    pub kdamond_idx: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Stop only these of our kdamonds (default: all of ours).
    #[arg(long = "kdamond_idx")]
    pub kdamond_idx: Vec<usize>,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print the parameter document as JSON (`start --kdamonds` takes it back).
    #[arg(long)]
    pub json: bool,
    /// Also take a live snapshot of this kdamond's regions (ours only: it writes to it).
    #[arg(long = "snapshot", value_name = "KDAMOND_IDX")]
    pub snapshot: Option<usize>,
    /// Write the snapshot as a record here (any reader of damo-trace takes it).
    #[arg(short = 'o', long = "output", requires = "snapshot")]
    pub output: Option<PathBuf>,
}

fn system() -> (SysfsTree, Ownership) {
    (SysfsTree::new(ADMIN), Ownership::system())
}

fn need_root(what: &str) -> Result<()> {
    if !privilege::Privileges::current().root {
        bail!("{what} writes DAMON's sysfs and needs root (run it with sudo)");
    }
    Ok(())
}

pub fn start(args: StartArgs, out: &mut dyn Write) -> Result<()> {
    need_root("start")?;
    let (tree, owned) = system();
    let spec = args.target.as_deref().map(TargetSpec::parse);
    let mut child = None;
    let doc = match (&spec, &args.kdamonds) {
        (Some(TargetSpec::KdamondsJson(p)), _) | (None, Some(p)) => load_document(p)?,
        (Some(TargetSpec::Command(cmd)), None) => {
            let gated = GatedChild::spawn(cmd, &LaunchOptions { user: args.user.as_deref(), own_group: false })?;
            let doc = args.damon.document(Some(gated.pid()))?;
            child = Some(gated);
            doc
        }
        (Some(TargetSpec::Pid(pid)), None) => args.damon.document(Some(*pid))?,
        (Some(TargetSpec::Paddr), None) => DamonArgs { ops: Some(args.damon.ops.clone().unwrap_or_else(|| "paddr".into())), ..args.damon.clone() }.document(None)?,
        (None, None) => args.damon.document(args.damon.target_pid)?,
        (Some(_), Some(_)) => bail!("give either a target or --kdamonds, not both"),
    };
    let started = match damo_sysfs::start(&tree, &owned, &doc) {
        Ok(started) => started,
        Err(e) => {
            if let Some(gated) = child {
                let _ = gated.abandon();
            }
            return Err(e);
        }
    };
    if let Some(gated) = child {
        let c = gated.release()?;
        writeln!(out, "started the command, pid {}", c.id())?;
    }
    for (idx, pid) in started {
        writeln!(out, "started kdamond {idx} (pid {pid})")?;
    }
    Ok(())
}

pub fn tune(args: TuneArgs, out: &mut dyn Write) -> Result<()> {
    need_root("tune")?;
    let (tree, owned) = system();
    let idx = match args.kdamond_idx {
        Some(i) => i,
        None => {
            let ours: Vec<usize> = damo_sysfs::present(&tree, &owned)?.into_iter().filter(|k| k.ours && k.running).map(|k| k.index).collect();
            match ours[..] {
                [only] => only,
                [] => bail!("no kdamond started by damo-trace is running"),
                _ => bail!("several of our kdamonds run ({ours:?}): choose one with --kdamond_idx"),
            }
        }
    };
    let path = args.kdamonds.or_else(|| match args.target.as_deref().map(TargetSpec::parse) {
        Some(TargetSpec::KdamondsJson(p)) => Some(p),
        _ => None,
    });
    let kdamond = match path {
        Some(p) => load_document(&p)?.kdamonds.into_iter().next().context("the document has no kdamond")?,
        None => {
            // Unset options keep the running values, as damo's tune does with its defaults.
            let current = read::document(&tree, &owned)?.kdamonds.into_iter().nth(idx).context("the kdamond vanished")?;
            let pid = match args.target.as_deref().map(TargetSpec::parse) {
                Some(TargetSpec::Pid(p)) => Some(p),
                _ => args.damon.target_pid.or_else(|| current.contexts.first().and_then(|c| c.targets.first()).and_then(|t| t.pid)),
            };
            let mut new = args.damon.document_over(pid, current.contexts.first())?.kdamonds.remove(0);
            new.state = None;
            new
        }
    };
    damo_sysfs::tune(&tree, &owned, idx, &kdamond)?;
    writeln!(out, "tuned kdamond {idx}")?;
    Ok(())
}

pub fn stop(args: StopArgs, out: &mut dyn Write) -> Result<()> {
    need_root("stop")?;
    let (tree, owned) = system();
    let only = (!args.kdamond_idx.is_empty()).then_some(args.kdamond_idx.as_slice());
    let stopped = damo_sysfs::stop(&tree, &owned, only)?;
    if stopped.is_empty() {
        writeln!(out, "no kdamond started by damo-trace was running; others are never touched")?;
    }
    for idx in stopped {
        writeln!(out, "stopped kdamond {idx}")?;
    }
    Ok(())
}

pub fn status(args: StatusArgs, out: &mut dyn Write) -> Result<()> {
    let (tree, owned) = system();
    if !tree.exists("kdamonds/nr_kdamonds") {
        bail!("DAMON's sysfs interface is missing ({ADMIN}); the kernel needs CONFIG_DAMON_SYSFS");
    }
    // Scheme stats are as fresh as the last `update_schemes_stats`: ask our own kdamonds for
    // fresh ones (when we may write); others show what their owner last asked for.
    if privilege::Privileges::current().root {
        for k in damo_sysfs::present(&tree, &owned)?.into_iter().filter(|k| k.ours && k.running) {
            let _ = damo_sysfs::tree::write_state(&tree, k.index, "update_schemes_stats");
        }
    }
    let doc = read::document(&tree, &owned)?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        print_status(&doc, out)?;
        print_modules(&Modules::system(), out)?;
    }
    if let Some(idx) = args.snapshot {
        need_root("a live snapshot")?;
        let now = damo_record::clock::monotonic_ns();
        let record = snapshot::take(&tree, &owned, idx, now)?;
        match &args.output {
            Some(path) => {
                damo_record::output_file::write_with(path, damo_record::output_file::OutputOptions::exact(0o600, true), |w| -> Result<()> {
                    let mut writer = damo_record::native::NativeWriter::new(w)?.summarizing();
                    for t in &record.targets {
                        for s in &t.snapshots {
                            writer.snapshot(t, s)?;
                        }
                    }
                    writer.finish()?;
                    Ok(())
                })?;
            }
            None => {
                for t in &record.targets {
                    for s in &t.snapshots {
                        writeln!(out, "# kdamond {idx} target {} ({} regions)", t.target_id, s.regions.len())?;
                        for r in &s.regions {
                            writeln!(out, "{:x}-{:x} ({}) nr_accesses {} age {}", r.start, r.end, units::format_sz(r.size() as f64, false), r.nr_accesses, r.age.unwrap_or(0))?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

pub fn print_status(doc: &Document, out: &mut dyn Write) -> Result<()> {
    if doc.kdamonds.is_empty() {
        writeln!(out, "no kdamonds")?;
    }
    for (i, k) in doc.kdamonds.iter().enumerate() {
        let owner = if k.ours == Some(true) { "ours" } else { "not ours (never touched)" };
        writeln!(out, "kdamond {i}: {} {} — {owner}", k.state.as_deref().unwrap_or("?"), k.pid.map_or(String::new(), |p| format!("pid {p}")))?;
        for (c, ctx) in k.contexts.iter().enumerate() {
            let iv = ctx.intervals;
            writeln!(
                out,
                "  context {c}: ops {}, intervals sample {} us aggr {} us update {} us, regions {}..{}",
                ctx.ops, iv.sample_us, iv.aggr_us, iv.ops_update_us, ctx.nr_regions.min, ctx.nr_regions.max
            )?;
            for (t, target) in ctx.targets.iter().enumerate() {
                writeln!(out, "    target {t}: {}", target.pid.map_or("no pid (physical memory)".into(), |p| format!("pid {p}")))?;
            }
            for (s, scheme) in ctx.schemes.iter().enumerate() {
                let st = scheme.stats.unwrap_or_default();
                writeln!(
                    out,
                    "    scheme {s}: {} — tried {} regions ({}), applied {} ({}), quota exceeded {}",
                    scheme.action,
                    st.nr_tried,
                    units::format_sz(st.sz_tried as f64, false),
                    st.nr_applied,
                    units::format_sz(st.sz_applied as f64, false),
                    st.qt_exceeds
                )?;
            }
        }
    }
    Ok(())
}

/// The DAMON modules' own kdamonds (not in DAMON's sysfs), named as the module's.
fn print_modules(modules: &Modules, out: &mut dyn Write) -> Result<()> {
    for m in modules.statuses().into_iter().filter(|m| m.present) {
        match (m.kdamond_pid, m.enabled, &m.error) {
            (Some(pid), ..) => writeln!(out, "{} kdamond: running pid {pid} — the module's (`damo-trace module {}` controls it; start/stop/tune never touch it)", m.title(), m.name)?,
            // DAMON_STAT publishes no kdamond_pid.
            (None, Some(true), _) => writeln!(out, "{}: enabled, its kdamond's pid unknown", m.title())?,
            (None, Some(false), _) => writeln!(out, "{}: disabled", m.title())?,
            (None, None, error) => writeln!(out, "{}: unknown ({})", m.title(), error.as_deref().unwrap_or("unreadable"))?,
        }
    }
    Ok(())
}

pub fn load_document(path: &std::path::Path) -> Result<Document> {
    let text = std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a kdamonds document", path.display()))
}

impl DamonArgs {
    /// One kdamond with one context from these options (damo's defaults otherwise).
    pub fn document(&self, pid: Option<u32>) -> Result<Document> {
        self.document_over(pid, None)
    }

    /// Like [`document`](Self::document), starting from `base` instead of the defaults.
    fn document_over(&self, pid: Option<u32>, base: Option<&Context>) -> Result<Document> {
        let time = |v: &Option<String>, what: &str, default: u64| -> Result<u64> { v.as_deref().map_or(Ok(default), |t| units::parse_us(t).with_context(|| format!("bad {what}"))) };
        let count = |v: &Option<String>, what: &str, default: u64| -> Result<u64> { v.as_deref().map_or(Ok(default), |t| units::parse_count(t).with_context(|| format!("bad {what}"))) };
        let defaults = base.map_or_else(|| (Intervals::default(), NrRegions::default()), |c| (c.intervals, c.nr_regions));
        let intervals = Intervals {
            sample_us: time(&self.sample, "--sample", defaults.0.sample_us)?,
            aggr_us: time(&self.aggr, "--aggr", defaults.0.aggr_us)?,
            ops_update_us: time(&self.updr, "--updr", defaults.0.ops_update_us)?,
        };
        let nr_regions = NrRegions { min: count(&self.minr, "--minr", defaults.1.min)?, max: count(&self.maxr, "--maxr", defaults.1.max)? };
        let ops = self.ops.clone().or_else(|| base.map(|c| c.ops.clone())).unwrap_or_else(|| if pid.is_some() { "vaddr".into() } else { "paddr".into() });
        if ops != "paddr" && pid.is_none() {
            bail!("--ops {ops} monitors a process: give a pid or a command (or use paddr)");
        }
        let regions = match &self.regions {
            Some(text) => parse_regions(text)?,
            None => base.and_then(|c| c.targets.first()).map(|t| t.regions.clone()).unwrap_or_default(),
        };
        if ops == "fvaddr" && regions.is_empty() {
            bail!("--ops fvaddr needs --regions");
        }
        let schemes = if self.damos_action.is_empty() { base.map(|c| c.schemes.iter().cloned().map(|s| Scheme { stats: None, ..s }).collect()).unwrap_or_default() } else { self.schemes()? };
        let target = Target { pid: if ops == "paddr" { None } else { pid }, regions };
        let context = Context { ops, targets: vec![target], intervals, nr_regions, schemes };
        Ok(Document { kdamonds: vec![Kdamond { contexts: vec![context], ..Default::default() }] })
    }

    fn schemes(&self) -> Result<Vec<Scheme>> {
        let n = self.damos_action.len();
        let too_many = |opt: &str, given: usize| -> Result<()> {
            if given > n {
                bail!("{opt} is given {given} times but there are only {n} --damos_action schemes");
            }
            Ok(())
        };
        too_many("--damos_access_rate", self.damos_access_rate.len() / 2)?;
        too_many("--damos_sz_region", self.damos_sz_region.len() / 2)?;
        too_many("--damos_age", self.damos_age.len() / 2)?;
        too_many("--damos_apply_interval", self.damos_apply_interval.len())?;
        too_many("--damos_quota_interval", self.damos_quota_interval.len())?;
        too_many("--damos_quota_time", self.damos_quota_time.len())?;
        too_many("--damos_quota_space", self.damos_quota_space.len())?;
        too_many("--damos_quota_weights", self.damos_quota_weights.len() / 3)?;
        too_many("--damos_wmarks", self.damos_wmarks.len() / 5)?;
        let mut schemes = Vec::with_capacity(n);
        for (i, action) in self.damos_action.iter().enumerate() {
            let mut s = Scheme {
                action: action.clone(),
                access_pattern: AccessPattern::default(),
                apply_interval_us: 0,
                quotas: Default::default(),
                watermarks: Watermarks::default(),
                filters: Vec::new(),
                stats: None,
            };
            if let Some(p) = self.damos_access_rate.chunks(2).nth(i) {
                s.access_pattern.nr_accesses = PercentRange { min: units::parse_percent(&p[0])?, max: units::parse_percent(&p[1])? };
            }
            if let Some(p) = self.damos_sz_region.chunks(2).nth(i) {
                s.access_pattern.sz_bytes = MinMax { min: units::parse_bytes(&p[0])?, max: units::parse_bytes(&p[1])? };
            }
            if let Some(p) = self.damos_age.chunks(2).nth(i) {
                s.access_pattern.age = MinMax { min: units::parse_us(&p[0])?, max: units::parse_us(&p[1])? };
            }
            if let Some(v) = self.damos_apply_interval.get(i) {
                s.apply_interval_us = units::parse_us(v)?;
            }
            if let Some(v) = self.damos_quota_interval.get(i) {
                s.quotas.reset_interval_ms = parse_ms(v)?;
                // damo weighs size, access rate and age equally under a quota unless told.
                s.quotas.weights = Weights { sz_permil: 1, nr_accesses_permil: 1, age_permil: 1 };
            }
            if let Some(v) = self.damos_quota_time.get(i) {
                s.quotas.time_ms = parse_ms(v)?;
            }
            if let Some(v) = self.damos_quota_space.get(i) {
                s.quotas.sz_bytes = units::parse_bytes(v)?;
            }
            if let Some(w) = self.damos_quota_weights.chunks(3).nth(i) {
                s.quotas.weights = Weights { sz_permil: units::parse_count(&w[0])?, nr_accesses_permil: units::parse_count(&w[1])?, age_permil: units::parse_count(&w[2])? };
            }
            if let Some(w) = self.damos_wmarks.chunks(5).nth(i) {
                s.watermarks = Watermarks {
                    metric: w[0].clone(),
                    interval_us: units::parse_us(&w[1])?,
                    high_permil: units::parse_count(&w[2])?,
                    mid_permil: units::parse_count(&w[3])?,
                    low_permil: units::parse_count(&w[4])?,
                };
            }
            if let (Some(ap), true) = (Some(&s.access_pattern), s.access_pattern.nr_accesses.min > s.access_pattern.nr_accesses.max) {
                bail!("--damos_access_rate: the minimum {} is above the maximum {}", ap.nr_accesses.min, ap.nr_accesses.max);
            }
            schemes.push(s);
        }
        if !self.damos_filter.is_empty() {
            let last = schemes.last_mut().context("--damos_filter needs a --damos_action")?;
            last.filters = parse_filters(&self.damos_filter)?;
        }
        Ok(schemes)
    }
}

/// A time in ms; a bare number is ms, as damo's `<milliseconds>` options take it.
fn parse_ms(text: &str) -> Result<u64> {
    let ns = units::parse_time(text, units::TimeUnit::Ms)?;
    Ok(if ns == u64::MAX { u64::MAX } else { ns / 1_000_000 })
}

/// "<start>-<end> ..." as damo's `--regions` takes it.
fn parse_regions(text: &str) -> Result<Vec<AddrRange>> {
    text.split_whitespace()
        .map(|r| {
            let (s, e) = r.split_once('-').with_context(|| format!("bad region {r:?} (expected <start>-<end>)"))?;
            let range = AddrRange { start: units::parse_bytes(s)?, end: units::parse_bytes(e)? };
            if range.start >= range.end {
                bail!("region {r:?} is empty or reversed");
            }
            Ok(range)
        })
        .collect()
}

/// Filters from the flattened `--damos_filter` words: each starts at "allow" or "reject".
fn parse_filters(words: &[String]) -> Result<Vec<Filter>> {
    let mut filters = Vec::new();
    let mut rest: &[String] = words;
    while let Some((head, tail)) = rest.split_first() {
        let allow = match head.as_str() {
            "allow" => true,
            "reject" => false,
            other => bail!("--damos_filter: expected allow or reject, found {other:?}"),
        };
        let (matching, tail) = match tail.split_first() {
            Some((w, t)) if w == "non" => (false, t),
            _ => (true, tail),
        };
        let (kind, args) = tail.split_first().context("--damos_filter: missing the filter type")?;
        let end = args.iter().position(|w| w == "allow" || w == "reject").unwrap_or(args.len());
        let (args, next) = args.split_at(end);
        let mut f = Filter { kind: kind.clone(), matching, allow, memcg_path: None, addr_range: None, target_idx: None, hugepage_size: None };
        match (kind.as_str(), args) {
            ("anon" | "active" | "young" | "unmapped", []) => {}
            ("memcg", [path]) => f.memcg_path = Some(path.clone()),
            ("addr", [s, e]) => f.addr_range = Some(AddrRange { start: units::parse_bytes(s)?, end: units::parse_bytes(e)? }),
            ("target", [i]) => f.target_idx = Some(i.parse().context("--damos_filter target: bad index")?),
            ("hugepage_size", [min, max]) => {
                let (min, max) = (units::parse_bytes(min)?, units::parse_bytes(max)?);
                if min > max {
                    bail!("--damos_filter hugepage_size: the minimum {min} is above the maximum {max}");
                }
                f.hugepage_size = Some([min, max]);
            }
            (k, a) => bail!("--damos_filter: unknown filter {k:?} with arguments {a:?}"),
        }
        filters.push(f);
        rest = next;
    }
    Ok(filters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_the_document_damo_would_start() {
        let args = DamonArgs { damos_action: vec!["pageout".into()], damos_access_rate: vec!["0%".into(), "0%".into()], damos_age: vec!["5s".into(), "max".into()], ..Default::default() };
        let doc = args.document(Some(1234)).unwrap();
        let ctx = &doc.kdamonds[0].contexts[0];
        assert_eq!((ctx.ops.as_str(), ctx.targets[0].pid, ctx.intervals, ctx.nr_regions), ("vaddr", Some(1234), Intervals::default(), NrRegions::default()));
        let ap = ctx.schemes[0].access_pattern;
        assert_eq!((ap.nr_accesses, ap.age, ap.sz_bytes), (PercentRange { min: 0.0, max: 0.0 }, MinMax { min: 5_000_000, max: u64::MAX }, AccessPattern::default().sz_bytes));
    }

    #[test]
    fn filters_parse_damos_syntax() {
        let args = DamonArgs {
            damos_action: vec!["pageout".into()],
            damos_filter: "reject non anon allow addr 4K 8K reject memcg /workload allow hugepage_size 2M 1G".split(' ').map(String::from).collect(),
            ..Default::default()
        };
        let f = &args.document(Some(1)).unwrap().kdamonds[0].contexts[0].schemes[0].filters;
        assert_eq!(f.len(), 4);
        assert_eq!((f[0].kind.as_str(), f[0].matching, f[0].allow), ("anon", false, false));
        assert_eq!(f[1].addr_range.map(|r| (r.start, r.end)), Some((4096, 8192)));
        assert_eq!(f[2].memcg_path.as_deref(), Some("/workload"));
        assert_eq!(f[3].hugepage_size, Some([2 << 20, 1 << 30]));
        let reversed = DamonArgs { damos_action: vec!["stat".into()], damos_filter: "allow hugepage_size 1G 2M".split(' ').map(String::from).collect(), ..Default::default() };
        assert!(format!("{:#}", reversed.document(Some(1)).unwrap_err()).contains("minimum"));
    }
}
