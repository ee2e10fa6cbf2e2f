//! `report phases`: the record split into phases (`damo_profile::phases`: where the hot set
//! or the code that ran changed), each with its time span, working set, hottest address
//! ranges and, when the record has stacks, the function responsible for it
//! (`damo_profile::attribution`), the caller chain down to its hot leaf, its most
//! distinctive frames and its self-time top, and optionally a flamegraph.
//!
//! One numbering and one time axis for every view of phases: phases count from 1 (here, in
//! the JSON, the flamegraph files `phase-N.svg` and on the holistic page) and times are
//! seconds since the record's first snapshot (the JSON adds the record's own clock,
//! CLOCK_MONOTONIC ns, as `start_ns`/`end_ns`; `report record_info` prints both clocks).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use damo_profile::{
    attribution,
    folded::FoldedStacks,
    json,
    phases::{find, find_in, Found, Named},
    stacks::Namer,
    summary::{HotRange, PhaseJson, StepJson},
    table::Table,
};
use damo_record::{
    cache::Whole,
    model::{Intervals, Snapshot, TargetRecord},
    native::Rest,
    text::printable,
    units,
};
use damo_report::{
    accumulate::Accumulate,
    phases::{self, PhaseRequest, SnapshotPasses},
};

use super::options::{InputArgs, Passes, Streamed, SymbolArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub symbols: SymbolArgs,
    #[command(flatten)]
    pub phases: PhaseArgs,
    /// Functions to list per phase.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    /// Write one flamegraph SVG per phase into this directory.
    #[arg(long, value_name = "DIR")]
    pub flamegraphs: Option<PathBuf>,
    /// Print the phases as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How phases are found; `report holistic` takes the same options.
#[derive(Debug, clap::Args)]
pub struct PhaseArgs {
    /// The shortest phase (1s; a bare number is µs).
    #[arg(long = "min_phase", default_value = phases::defaults::MIN_PHASE)]
    pub min_phase: String,
    /// The most phases to find.
    #[arg(long = "max_phases", default_value_t = phases::defaults::MAX_PHASES)]
    pub max_phases: usize,
}

impl PhaseArgs {
    pub fn request(&self) -> Result<PhaseRequest> {
        let min_phase_us = units::parse_us(&self.min_phase).context("bad --min_phase")?;
        Ok(PhaseRequest { min_phase_us, max_phases: self.max_phases })
    }
}

/// Seconds since `origin` (ns): the one time axis of phase reports.
pub fn secs(ns: u64, origin: u64) -> f64 {
    (ns as f64 - origin as f64) / 1e9
}

/// The record `find` reads: a damo-trace record (or a damo file's cached copy) is streamed,
/// pass after pass, keeping per snapshot only what phase finding needs (a day of recording
/// does not fit in memory); other inputs are loaded whole.
struct Input {
    /// Without its snapshots when streamed.
    record: Whole,
    streamed: Option<(Streamed, MainTarget)>,
}

/// The target phases are found in, of a streamed record.
struct MainTarget {
    index: usize,
    intervals: Option<Intervals>,
    /// Its first snapshot's start and end, ns.
    first: (u64, u64),
}

impl Input {
    fn open(path: &Path) -> Result<Input> {
        let mut src = match Passes::open(path)? {
            Passes::Stream(src) => src,
            Passes::Loaded(record, _) => {
                if phases::main_target(&record).is_none_or(|t| t.snapshots.is_empty()) {
                    bail!("{} has no DAMON snapshots to find phases in", path.display());
                }
                return Ok(Input { record, streamed: None });
            }
        };
        let mut spans = Spans::default();
        let record = src.pass(Rest::Keep, &mut spans, true)?;
        let Some((index, span)) = spans.main(record.targets.len()) else {
            bail!("{} has no DAMON snapshots to find phases in", path.display());
        };
        let main = MainTarget { index, intervals: record.targets[index].intervals, first: span.first };
        Ok(Input { record: record.into(), streamed: Some((src, main)) })
    }

    /// The main target's phases and where its first snapshot starts.
    fn find(&mut self, request: &PhaseRequest, named: &Named, path: &Path) -> Result<(Vec<Found>, u64)> {
        let Some((src, main)) = &mut self.streamed else {
            let Some(target) = phases::main_target(&self.record).filter(|t| !t.snapshots.is_empty()) else {
                bail!("{} has no DAMON snapshots to find phases in", path.display());
            };
            return Ok((find(target, &request.options(target), named), target.snapshots[0].start_ns));
        };
        let mut passes = TargetPasses { src, index: main.index };
        Ok((find_in(&mut passes, main.intervals, &request.options_for(main.intervals, main.first), named)?, main.first.0))
    }
}

/// Per target (by index), how many snapshots it has and when they start and end.
#[derive(Default)]
pub(super) struct Spans(Vec<Span>);

#[derive(Clone, Copy, Default)]
pub(super) struct Span {
    pub snapshots: usize,
    /// The first snapshot's start and end, ns.
    pub first: (u64, u64),
    /// The last snapshot's end.
    pub last_end: u64,
}

impl Spans {
    /// The target with the most snapshots (the last of equals, as `phases::main_target`
    /// picks), if it has any, with its span.
    pub fn main(&self, targets: usize) -> Option<(usize, Span)> {
        let main = (0..targets).max_by_key(|&i| self.0.get(i).map_or(0, |s| s.snapshots))?;
        self.0.get(main).filter(|s| s.snapshots > 0).map(|&s| (main, s))
    }
}

impl Accumulate for Spans {
    fn push(&mut self, index: usize, _target: &TargetRecord, snapshot: &Snapshot) {
        if self.0.len() <= index {
            self.0.resize(index + 1, Span::default());
        }
        let span = &mut self.0[index];
        if span.snapshots == 0 {
            span.first = (snapshot.start_ns, snapshot.end_ns);
        }
        span.snapshots += 1;
        span.last_end = snapshot.end_ns;
    }
}

/// One target's snapshots of a streamed record, a pass at a time.
pub(super) struct TargetPasses<'a> {
    pub src: &'a mut Streamed,
    pub index: usize,
}

impl SnapshotPasses for TargetPasses<'_> {
    type Error = anyhow::Error;

    fn pass(&mut self, each: &mut dyn FnMut(&Snapshot)) -> Result<()> {
        self.src.pass_of_target(self.index, &mut OfTarget { index: self.index, each })
    }
}

/// Hands the snapshots of the target of `index` to `each`.
struct OfTarget<'f> {
    index: usize,
    each: &'f mut dyn FnMut(&Snapshot),
}

impl Accumulate for OfTarget<'_> {
    fn push(&mut self, index: usize, _target: &TargetRecord, snapshot: &Snapshot) {
        if index == self.index {
            (self.each)(snapshot);
        }
    }
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let request = args.phases.request()?;
    let path = &args.input.input;
    let mut input = Input::open(path)?;
    if let Some(dir) = &args.flamegraphs {
        std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    }
    let mut namer = (!input.record.samples.is_empty()).then(|| Namer::new(&input.record, &args.symbols.search_dirs));
    let named = Named::new(&input.record, namer.as_mut());
    let (found, origin) = input.find(&request, &named, path)?;
    let record = &input.record;
    let mut docs = Vec::new();
    for (i, f) in found.iter().enumerate() {
        let (n, p, a) = (i + 1, &f.phase, &f.attribution);
        let mut table = Table::default();
        let mut folded = FoldedStacks::default();
        for &s in &f.samples {
            let (sample, stack) = (&record.samples[s], &named.stacks[s]);
            table.add(&sample.comm, &stack.object, &stack.symbol);
            folded.add(stack.frames.iter().map(AsRef::as_ref), 1);
        }
        let (start_s, end_s) = (secs(p.start_ns, origin), secs(p.end_ns, origin));
        if let (Some(dir), true) = (&args.flamegraphs, folded.total() > 0) {
            let path = dir.join(format!("phase-{n}.svg"));
            let who = a.responsible.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
            super::profile::write_file(&path, |w| folded.write_flamegraph(&format!("phase {n}{who} ({start_s:.3}-{end_s:.3} s since the first snapshot)"), w))?;
        }
        let rows = table.rows(args.top);
        let distinctive = &a.frames[..a.frames.len().min(args.top)];
        if args.json {
            docs.push(PhaseJson {
                phase: n,
                start_s,
                end_s,
                start_ns: p.start_ns,
                end_ns: p.end_ns,
                snapshots: [p.first, p.last],
                mean_wss_bytes: p.mean_wss,
                hot_ranges: p.hot_ranges.iter().map(|&(start, end, access_rate)| HotRange { start, end, access_rate }).collect(),
                samples: table.total(),
                incomplete_stacks: a.incomplete(),
                responsible: a.responsible.as_deref(),
                chain: &a.chain,
                step: f.step_driver.as_deref().map(|driver| StepJson { phases: [f.step.start + 1, f.step.end], driver }),
                distinctive,
                top: rows,
            });
            continue;
        }
        writeln!(
            out,
            "phase {n}: {start_s:.3}-{end_s:.3} s ({}), snapshots {}-{}, mean wss {}",
            units::format_time_ns((p.end_ns - p.start_ns) as f64, false),
            p.first,
            p.last,
            units::format_sz(p.mean_wss as f64, false)
        )?;
        for &(s, e, heat) in &p.hot_ranges {
            writeln!(out, "  hot {s:#x}-{e:#x} ({}) at {:.0}% access rate", units::format_sz((e - s) as f64, false), heat * 100.0)?;
        }
        if table.total() == 0 {
            continue;
        }
        match &a.responsible {
            Some(r) => writeln!(out, "  responsible: {r} (call chain to the hot leaf: {})", a.chain.join(" > "))?,
            None => writeln!(out, "  responsible: none (no function is in {:.0}% more of its stacks than of the rest's)", attribution::MIN_DISTINCTIVE * 100.0)?,
        }
        if a.incomplete() > 0 {
            writeln!(out, "  {} of {} stacks do not reach main and are left out of the attribution", a.incomplete(), a.samples)?;
        }
        let rest = match &f.step_driver {
            Some(driver) => {
                writeln!(out, "  one step with phases {}-{}: {driver} ran all of them; named against the record outside them", f.step.start + 1, f.step.end)?;
                "of the record's outside the step"
            }
            None => "of the rest's",
        };
        writeln!(out, "  by distinctive share (of this phase's stacks / {rest}):")?;
        for d in distinctive {
            writeln!(out, "  {:+7.1}%  {}  ({:.1}% / {:.1}%)", d.distinctive * 100.0, d.function, d.inside * 100.0, d.rest * 100.0)?;
        }
        writeln!(out, "  by self time:")?;
        for r in rows {
            writeln!(out, "  {:6.2}%  {}  ({})", r.overhead_percent, printable(&r.symbol), printable(&r.object))?;
        }
    }
    if args.json {
        json::write_sorted(&docs, out)?;
    }
    Ok(())
}
