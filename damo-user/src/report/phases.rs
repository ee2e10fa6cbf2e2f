//! `report phases`: the record split into access phases (see `damo_report::phases` for the
//! method), each with its time span, working set, hottest address ranges and, when the
//! record has stacks, its top functions and optionally a flamegraph.

use std::{io::Write, path::PathBuf};

use anyhow::{bail, Context, Result};
use damo_profile::{
    folded::FoldedStacks,
    stacks::{self, Namer},
    table::Table,
};
use damo_record::{model::TargetRecord, text::printable, units};
use damo_report::phases::{self, PhaseOptions};

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
    #[arg(long = "min_phase", default_value = "1s")]
    pub min_phase: String,
    /// The most phases to find.
    #[arg(long = "max_phases", default_value_t = 12)]
    pub max_phases: usize,
}

impl PhaseArgs {
    /// The segmentation options for `target`: the shortest phase in its aggregation intervals
    /// (or, without intervals, in its first snapshot's length).
    pub fn options(&self, target: &TargetRecord) -> Result<PhaseOptions> {
        let min_us = units::parse_us(&self.min_phase).context("bad --min_phase")?;
        let aggr_us = target.intervals.map(|i| i.aggr_us).filter(|&a| a > 0).unwrap_or_else(|| {
            let s = &target.snapshots[0];
            (s.end_ns.saturating_sub(s.start_ns) / 1000).max(1)
        });
        Ok(PhaseOptions { min_snapshots: (min_us / aggr_us).max(1) as usize, max_phases: self.max_phases.max(1), ..Default::default() })
    }
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let record = args.input.load()?;
    let Some(target) = phases::main_target(&record).filter(|t| !t.snapshots.is_empty()) else {
        bail!("{} has no DAMON snapshots to find phases in", args.input.input.display());
    };
    let found = phases::segment(target, &args.phases.options(target)?);
    if let Some(dir) = &args.flamegraphs {
        std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    }
    let mut namer = (!record.samples.is_empty()).then(|| Namer::new(&record, &args.symbols.search_dirs));
    let mut json = Vec::new();
    for (i, p) in found.iter().enumerate() {
        let span = [(p.start_ns, p.end_ns)];
        let selected = stacks::select(&record, Some(&span));
        let mut table = Table::default();
        let mut folded = FoldedStacks::default();
        if let Some(namer) = namer.as_mut() {
            for s in &selected {
                let named = namer.name(s);
                table.add(&s.comm, &named.object, &named.symbol);
                folded.add(named.frames.iter().map(AsRef::as_ref), 1);
            }
        }
        if let (Some(dir), true) = (&args.flamegraphs, folded.total() > 0) {
            let path = dir.join(format!("phase-{i}.svg"));
            super::profile::write_file(&path, |w| folded.write_flamegraph(&format!("phase {i}: {:.3}-{:.3} s", p.start_ns as f64 / 1e9, p.end_ns as f64 / 1e9), w))?;
        }
        let rows = table.rows(args.top);
        if args.json {
            json.push(serde_json::json!({
                "phase": i,
                "start_ns": p.start_ns,
                "end_ns": p.end_ns,
                "snapshots": [p.first, p.last],
                "mean_wss_bytes": p.mean_wss,
                "hot_ranges": p.hot_ranges.iter().map(|&(s, e, heat)| serde_json::json!({"start": s, "end": e, "access_rate": heat})).collect::<Vec<_>>(),
                "samples": table.total(),
                "top": rows,
            }));
            continue;
        }
        writeln!(
            out,
            "phase {i}: {:.3}-{:.3} s ({}), snapshots {}-{}, mean wss {}",
            p.start_ns as f64 / 1e9,
            p.end_ns as f64 / 1e9,
            units::format_time_ns((p.end_ns - p.start_ns) as f64, false),
            p.first,
            p.last,
            units::format_sz(p.mean_wss as f64, false)
        )?;
        for &(s, e, heat) in &p.hot_ranges {
            writeln!(out, "  hot {s:#x}-{e:#x} ({}) at {:.0}% access rate", units::format_sz((e - s) as f64, false), heat * 100.0)?;
        }
        for r in rows {
            writeln!(out, "  {:6.2}%  {}  ({})", r.overhead_percent, printable(&r.symbol), printable(&r.object))?;
        }
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &json)?;
        writeln!(out)?;
    }
    Ok(())
}
