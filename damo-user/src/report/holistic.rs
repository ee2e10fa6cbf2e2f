//! `report holistic`: the whole record on one page — the access heatmap, the working set
//! size over time and which functions ran, on one time axis with the phases marked (layout
//! in `damo_report::holistic`). SVG, PNG or HTML (the SVG and a phase table) by extension.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use damo_profile::{
    phases::{find_in, Found, Named},
    stacks::Namer,
    timeline,
};
use damo_record::{
    cache::Whole,
    native::Rest,
    output_file::{self, OutputOptions},
};
use damo_report::{
    heatmap::{self, guide::HeatAdder, Grid},
    holistic::{self, html, svg, Holistic, NamedSample, PhaseMark, Timeline},
    image,
    phases::{self, PhaseRequest, SnapshotPasses},
};

use super::{
    heatmap::{build_streamed, pass_of_drawn, FirstPass},
    options::{load_with_format, InputArgs, Passes, Streamed, SymbolArgs},
    phases::{PhaseArgs, Spans, TargetPasses},
};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub symbols: SymbolArgs,
    /// The file to write: .svg, .png, or .html (the SVG and a table of the phases).
    #[arg(short = 'o', long = "output", default_value = "holistic.svg", value_name = "FILE")]
    pub output: PathBuf,
    /// Time buckets of the function timeline.
    #[arg(long = "time_buckets", default_value_t = 100)]
    pub time_buckets: usize,
    /// Functions (rows) of the function timeline; the rest share one row.
    #[arg(long = "top_functions", default_value_t = 8)]
    pub top_functions: usize,
    #[command(flatten)]
    pub phases: PhaseArgs,
}

/// Functions named per phase in the HTML table.
const PHASE_TOP: usize = 3;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// SVG or PNG, as `image::write_svg_as` picks by extension.
    Image,
    Html,
}

pub fn run(args: Args) -> Result<()> {
    let kind = match args.output.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("svg" | "png") => Kind::Image,
        Some("html" | "htm") => Kind::Html,
        _ => bail!("-o {}: unsupported type (use .svg, .png or .html)", args.output.display()),
    };
    if args.time_buckets == 0 {
        bail!("--time_buckets must be at least 1");
    }
    let request = args.phases.request()?;
    let path = &args.input.input;
    let Drawn { record, maps, found, wss, stacks } = match Passes::open(path)? {
        Passes::Stream(src) => match streamed(src, path, &request, &args.symbols)? {
            Some(drawn) => drawn,
            None => {
                let (record, perf) = load_with_format(path)?;
                loaded((record.into(), perf), path, &request, &args.symbols)?
            }
        },
        Passes::Loaded(record, perf) => loaded((record, perf), path, &request, &args.symbols)?,
    };
    let time = holistic::grid_span(&maps[0]);
    let named: Vec<NamedSample> = record.samples.iter().zip(&stacks.stacks).map(|(s, n)| (s.ts_ns, timeline::function_of(s, n))).collect();
    // The timeline counts samples per bucket for every function named (and draws the top
    // ones per bucket): --time_buckets 100000000 would take gigabytes per function.
    let functions = named.iter().map(|(_, f)| f.as_str()).collect::<std::collections::HashSet<_>>().len() as u64;
    let per_bucket = (functions + 1) * 8 + (args.top_functions as u64 + 1) * 64;
    damo_record::budget::check((args.time_buckets as u64).saturating_mul(per_bucket), || format!("--time_buckets {} ({functions} functions)", args.time_buckets))?;
    let page = Holistic {
        title: path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
        timeline: (!named.is_empty()).then(|| Timeline::build(&named, time, args.time_buckets, args.top_functions)),
        phases: found.into_iter().map(|f| PhaseMark::new(f.phase, &named, PHASE_TOP).responsible(f.attribution.responsible, f.attribution.chain)).collect(),
        wss,
        maps,
        time,
    };
    write(&args.output, kind, &page)
}

/// What the page draws of the record: its maps, phases and working set, and the record
/// (without its snapshots when streamed) with its samples named.
struct Drawn {
    record: Whole,
    maps: Vec<Grid>,
    found: Vec<Found>,
    wss: Vec<(u64, u64, u64)>,
    stacks: Named,
}

/// [`Drawn`] of a record in memory (`perf`: damo's perf_script).
fn loaded((record, perf): (Whole, bool), path: &Path, request: &PhaseRequest, symbols: &SymbolArgs) -> Result<Drawn> {
    let Some(target) = phases::main_target(&record).filter(|t| !t.snapshots.is_empty()) else {
        bail!("{} has no DAMON snapshots: the page draws them", path.display());
    };
    let maps = heatmap::build(&record, perf, &holistic::bands::heatmap_request(&record, perf, target))?;
    let mut namer = (!record.samples.is_empty()).then(|| Namer::new(&record, &symbols.search_dirs));
    let stacks = Named::new(&record, namer.as_mut());
    let found = damo_profile::phases::find(target, &request.options(target), &stacks);
    let wss = holistic::wss_series(target);
    Ok(Drawn { record, maps, found, wss, stacks })
}

/// [`Drawn`] of a record streamed from its file, pass after pass, as `report heatmap` and
/// `report phases` read it (a day of recording does not fit in memory); `None` when its
/// targets share a guide (the maps then need it whole).
fn streamed(mut src: Streamed, path: &Path, request: &PhaseRequest, symbols: &SymbolArgs) -> Result<Option<Drawn>> {
    let mut spans = Spans::default();
    let Some((first, record)) = FirstPass::read(&mut src, Rest::Keep, &mut spans)? else { return Ok(None) };
    let Some((main, span)) = spans.main(record.targets.len()) else {
        bail!("{} has no DAMON snapshots: the page draws them", path.display());
    };
    let target = &record.targets[main];
    // The hot bands, or the hottest contiguous ranges when nothing was hot (`bands::drawn`).
    let mut ranges = first.hot_bands(&mut src, main)?;
    if ranges.is_empty() {
        if let Some(guide) = first.guides.iter().find(|g| g.matches(target)) {
            let mut heats = HeatAdder::new(guide.clone());
            pass_of_drawn(&mut src, Some(main), &mut heats)?;
            ranges = holistic::bands::guide_ranges(&heats.finish());
        }
    }
    let maps = build_streamed(&mut src, &first, &holistic::bands::request_for(target, span.last_end.saturating_sub(span.first.0), &ranges))?;
    let mut namer = (!record.samples.is_empty()).then(|| Namer::new(&record, &symbols.search_dirs));
    let stacks = Named::new(&record, namer.as_mut());
    let intervals = target.intervals;
    let found = find_in(&mut TargetPasses { src: &mut src, index: main }, intervals, &request.options_for(intervals, span.first), &stacks)?;
    let mut wss = Vec::new();
    TargetPasses { src: &mut src, index: main }.pass(&mut |s| wss.push(holistic::wss_of(s)))?;
    Ok(Some(Drawn { record: record.into(), maps, found, wss, stacks }))
}

fn write(path: &Path, kind: Kind, page: &Holistic) -> Result<()> {
    match kind {
        Kind::Image => image::write_svg_as(path, &svg::render(page))?,
        Kind::Html => output_file::write(path, html::page(page).as_bytes(), OutputOptions::REPORT)?,
    }
    Ok(())
}
