//! `report export`: the stack samples `report profile` would count, as a file for other
//! tools: pprof (`go tool pprof`, Pyroscope, Parca; each sample labelled with the access
//! pattern of its moment, `damo_fleet::labels`) or speedscope (its time-ordered view); or the
//! whole record as a Parquet dataset for DuckDB and Spark (`damo_fleet`, docs/fleet.md).

use std::{io::Write, path::PathBuf};

use anyhow::{bail, Context, Result};
use damo_profile::{
    export,
    stacks::{self, Namer},
};
use damo_record::{
    model::{Record, StackSample},
    output_file::{OutputFile, OutputOptions},
};
use damo_report::phases::Phase;

use super::{
    options::SampleArgs,
    selection::{self, Selected},
};

/// `--format`: the names of [`export::Format`]'s variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// google/pprof's profile.proto, gzip-compressed.
    Pprof,
    /// speedscope's JSON file format.
    Speedscope,
    /// The whole record as Parquet tables in the dataset directory `-o DIR` (docs/fleet.md).
    Parquet,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub samples: SampleArgs,
    /// The file to write (the dataset directory for parquet).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// The format; by default from the output's name: .pb.gz or .pprof for pprof, .json for
    /// speedscope.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// The rate the stacks were sampled at (record's --sample_hz); by default the rate the
    /// record says, else the median gap between a thread's samples, or 99 when there are few.
    #[arg(long = "sample_hz", value_name = "HZ", value_parser = clap::value_parser!(u64).range(1..))]
    pub sample_hz: Option<u64>,
    /// pprof: with damo's filters, export every sample, labelled `damon_pattern_held=yes` or
    /// `no` by them, instead of only the samples they select.
    #[arg(long = "all_samples")]
    pub all_samples: bool,
    /// The phases the `damon_phase` labels and the parquet `phases` table name, found as
    /// `report phases` finds them.
    #[command(flatten)]
    pub phases: super::phases::PhaseArgs,
    /// parquet: the host partition (by default the hostname the record names).
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// parquet: the record partition (by default the input's file name).
    #[arg(long = "record_name", value_name = "NAME")]
    pub record_name: Option<String>,
}

impl From<export::Format> for Format {
    fn from(f: export::Format) -> Self {
        match f {
            export::Format::Pprof => Format::Pprof,
            export::Format::Speedscope => Format::Speedscope,
        }
    }
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let Some(format) = args.format.or_else(|| export::Format::of_path(&args.output).map(Format::from)) else {
        bail!("cannot tell the format of {} from its name: give --format pprof, speedscope or parquet", args.output.display());
    };
    let format = match format {
        Format::Parquet => return parquet(&args, out),
        Format::Pprof => export::Format::Pprof,
        Format::Speedscope => export::Format::Speedscope,
    };
    if args.all_samples && format != export::Format::Pprof {
        bail!("--all_samples labels pprof samples: give --format pprof");
    }
    let (input, filter) = (&args.samples.input, &args.samples.filter);
    // The labels' phases and working set sizes come from the whole record, before filtering.
    let filtered = !filter.to_filter()?.is_noop();
    let unfiltered = (format == export::Format::Pprof && filtered).then(|| input.load()).transpose()?;
    // Unfiltered, the labels come from the record itself: it is loaded whole.
    let Selected { record, spans, mut what } = selection::load(input, filter, format == export::Format::Pprof && !filtered)?;
    if args.all_samples && filtered {
        what = format!("all samples, labelled by whether the pattern held ({what})");
    }
    let selected: Vec<&StackSample> = stacks::select(&record, spans.as_deref().filter(|_| !args.all_samples));
    if selected.is_empty() {
        bail!("no samples in the selection ({what}): nothing to export");
    }
    let period = export::period(&record, args.sample_hz);
    let path = &args.output;
    // Before symbolizing, which can take seconds: a destination that cannot be written fails now.
    let mut w = std::io::BufWriter::new(OutputFile::create(path, OutputOptions::REPORT)?);
    let mut namer = Namer::new(&record, &args.samples.symbols.search_dirs);
    let title = format!("damo-trace: {what}");
    let labels: Vec<_> = match format {
        export::Format::Pprof => {
            let whole = unfiltered.as_ref().unwrap_or(&record);
            let moments = damo_fleet::labels::Moments::new(whole, &phases_of(whole, &args.phases, &mut namer)?, spans);
            selected.iter().map(|s| moments.labels(s.ts_ns)).collect()
        }
        export::Format::Speedscope => Vec::new(),
    };
    let output = export::Output { format, period_ns: period.ns, title: &title };
    let written = export::write(&output, &record, &selected, &labels, &mut namer, &mut w);
    let file = written.and_then(|()| w.into_inner().map_err(|e| e.into_error().into())).with_context(|| format!("failed to write {}", path.display()))?;
    file.commit()?;
    writeln!(out, "{}: {} samples ({what}), {} ns each (from {})", path.display(), selected.len(), period.ns, period.source)?;
    Ok(())
}

/// `report phases`' phases of the record's main target (none without snapshots).
fn phases_of(record: &Record, args: &super::phases::PhaseArgs, namer: &mut Namer) -> Result<Vec<Phase>> {
    let Some(target) = damo_report::phases::main_target(record).filter(|t| !t.snapshots.is_empty()) else { return Ok(Vec::new()) };
    let named = damo_profile::phases::Named::new(record, Some(namer));
    Ok(damo_profile::phases::find(target, &args.request()?.options(target), &named).into_iter().map(|f| f.phase).collect())
}

/// `--format parquet`: the whole record into the dataset directory, as one host's record.
fn parquet(args: &Args, out: &mut dyn Write) -> Result<()> {
    if !args.samples.filter.to_filter()?.is_noop() || args.all_samples || args.sample_hz.is_some() {
        bail!("--format parquet exports the whole record: filter with SQL over the dataset (docs/fleet.md)");
    }
    let record = args.samples.input.load()?;
    let recorded_host = record.metadata.as_ref().map(|m| m.hostname.clone()).filter(|h| !h.is_empty());
    let Some(host) = args.host.clone().or(recorded_host) else { bail!("{} does not name its host: give --host NAME", args.samples.input.input.display()) };
    let name = args.record_name.clone().unwrap_or_else(|| args.samples.input.input.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()));
    let partition = damo_fleet::Partition::new(&host, &name)?;
    let mut namer = Namer::new(&record, &args.samples.symbols.search_dirs);
    let named = damo_profile::phases::Named::new(&record, (!record.samples.is_empty()).then_some(&mut namer));
    let target = damo_report::phases::main_target(&record).filter(|t| !t.snapshots.is_empty());
    let found = match target {
        Some(t) => damo_profile::phases::find(t, &args.phases.request()?.options(t), &named),
        None => Vec::new(),
    };
    let index = target.and_then(|t| record.targets.iter().position(|r| std::ptr::eq(r, t))).unwrap_or(0);
    let rows: Vec<damo_fleet::PhaseRow> =
        found.iter().map(|f| damo_fleet::PhaseRow { target: index, phase: &f.phase, responsible: f.attribution.responsible.as_deref(), samples: f.samples.len() }).collect();
    for w in damo_fleet::export(&args.output, &partition, &record, &mut namer, &rows)? {
        writeln!(out, "{}: {} rows, {} bytes", w.path.display(), w.rows, w.bytes)?;
    }
    Ok(())
}
