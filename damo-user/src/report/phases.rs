//! `report phases`: the record split into access phases (see `damo_report::phases` for the
//! method), each with its time span, working set, hottest address ranges and, when the
//! record has stacks, the function responsible for it (`damo_profile::attribution`), the
//! caller chain down to its hot leaf, its most distinctive frames and its self-time top,
//! and optionally a flamegraph.
//!
//! One numbering and one time axis for every view of phases: phases count from 1 (here, in
//! the JSON, the flamegraph files `phase-N.svg` and on the holistic page) and times are
//! seconds since the record's first snapshot (the JSON adds the record's own clock,
//! CLOCK_MONOTONIC ns, as `start_ns`/`end_ns`; `report record_info` prints both clocks).

use std::{io::Write, path::PathBuf};

use anyhow::{bail, Context, Result};
use damo_profile::{
    attribution::{self, Attribution},
    folded::FoldedStacks,
    json,
    stacks::{NamedStack, Namer},
    summary::{HotRange, PhaseJson},
    table::Table,
};
use damo_record::{
    model::{Record, TargetRecord},
    text::printable,
    units,
};
use damo_report::phases::{self, Phase, PhaseOptions, PhaseRequest};

use super::options::{InputArgs, SymbolArgs};

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

/// A phase with the samples that ran in it, named, and what they say.
pub struct Found {
    pub phase: Phase,
    /// Indices into the record's samples.
    pub samples: Vec<usize>,
    pub attribution: Attribution,
}

/// The record's samples named once, in time order, for phase finding and attribution.
pub struct Named {
    pub stacks: Vec<NamedStack>,
    /// Sample times, ascending, parallel to `order`.
    times: Vec<u64>,
    /// Sample indices in time order.
    order: Vec<usize>,
}

impl Named {
    pub fn new(record: &Record, namer: Option<&mut Namer>) -> Self {
        let stacks: Vec<NamedStack> = match namer {
            Some(namer) => record.samples.iter().map(|s| namer.name(s)).collect(),
            None => Vec::new(),
        };
        let mut order: Vec<usize> = (0..stacks.len()).collect();
        order.sort_by_key(|&i| record.samples[i].ts_ns);
        let times = order.iter().map(|&i| record.samples[i].ts_ns).collect();
        Named { stacks, times, order }
    }

    /// Sample indices in `[start, end)` ns.
    fn between(&self, start: u64, end: u64) -> Vec<usize> {
        let (a, b) = (self.times.partition_point(|&t| t < start), self.times.partition_point(|&t| t < end));
        self.order[a..b].to_vec()
    }

    /// The stacks in `[start, end)` and the rest of the record's.
    fn split(&self, start: u64, end: u64) -> (Vec<&NamedStack>, Vec<&NamedStack>) {
        let (a, b) = (self.times.partition_point(|&t| t < start), self.times.partition_point(|&t| t < end));
        let pick = |range: &[usize]| range.iter().map(|&i| &self.stacks[i]).collect::<Vec<_>>();
        let mut rest = pick(&self.order[..a]);
        rest.extend(pick(&self.order[b..]));
        (pick(&self.order[a..b]), rest)
    }
}

/// The phases of `target` with the code that ran in each. Neighbouring phases that ran the
/// same code on much the same memory are one phase: a hot set still settling at a phase's
/// start does not split it off. The same code: the same function is responsible for each
/// against the rest of the record, or no frame is distinctive of one against the other.
pub fn find(target: &TargetRecord, options: &PhaseOptions, named: &Named) -> Vec<Found> {
    let same_code = |a: &Phase, b: &Phase| {
        let ((first, first_rest), (second, second_rest)) = (named.split(a.start_ns, a.end_ns), named.split(b.start_ns, b.end_ns));
        if first.is_empty() || second.is_empty() {
            return false;
        }
        let (ra, rb) = (attribution::attribute(&first, &first_rest).responsible, attribution::attribute(&second, &second_rest).responsible);
        (ra.is_some() && ra == rb) || (attribution::attribute(&first, &second).responsible.is_none() && attribution::attribute(&second, &first).responsible.is_none())
    };
    phases::segment_with(target, options, same_code)
        .into_iter()
        .map(|phase| {
            let (inside, rest) = named.split(phase.start_ns, phase.end_ns);
            let attribution = attribution::attribute(&inside, &rest);
            Found { samples: named.between(phase.start_ns, phase.end_ns), phase, attribution }
        })
        .collect()
}

/// Seconds since `origin` (ns): the one time axis of phase reports.
pub fn secs(ns: u64, origin: u64) -> f64 {
    (ns as f64 - origin as f64) / 1e9
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let request = args.phases.request()?;
    let record = args.input.load()?;
    let Some(target) = phases::main_target(&record).filter(|t| !t.snapshots.is_empty()) else {
        bail!("{} has no DAMON snapshots to find phases in", args.input.input.display());
    };
    if let Some(dir) = &args.flamegraphs {
        std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    }
    let mut namer = (!record.samples.is_empty()).then(|| Namer::new(&record, &args.symbols.search_dirs));
    let named = Named::new(&record, namer.as_mut());
    let found = find(target, &request.options(target), &named);
    let origin = target.snapshots[0].start_ns;
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
        writeln!(out, "  by distinctive share (of this phase's stacks / of the rest's):")?;
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
