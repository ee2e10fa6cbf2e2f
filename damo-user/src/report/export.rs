//! `report export`: the stack samples `report profile` would count, as a file for other
//! tools: pprof (`go tool pprof`, Pyroscope, Parca; each sample labelled with the access
//! pattern of its moment, `damo_fleet::labels`) or speedscope (its time-ordered view); or the
//! whole record as a Parquet dataset for DuckDB and Spark (`damo_fleet`, docs/fleet.md).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use damo_profile::{
    pprof, speedscope,
    stacks::{self, Namer},
};
use damo_record::{
    model::{Record, StackSample},
    output_file::{OutputFile, OutputOptions},
};
use damo_report::phases::Phase;

use super::{
    options::{FilterArgs, InputArgs, SymbolArgs},
    selection::{self, Selected},
};

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
    pub input: InputArgs,
    #[command(flatten)]
    pub symbols: SymbolArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
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

/// The format an output name implies.
fn format_of(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".pb.gz") || name.ends_with(".pprof") {
        Some(Format::Pprof)
    } else if name.ends_with(".json") {
        Some(Format::Speedscope)
    } else {
        None
    }
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let Some(format) = args.format.or_else(|| format_of(&args.output)) else {
        bail!("cannot tell the format of {} from its name: give --format pprof, speedscope or parquet", args.output.display());
    };
    if format == Format::Parquet {
        return parquet(&args, out);
    }
    if args.all_samples && format != Format::Pprof {
        bail!("--all_samples labels pprof samples: give --format pprof");
    }
    // The labels' phases and working set sizes come from the whole record, before filtering.
    let filtered = !args.filter.to_filter()?.is_noop();
    let unfiltered = (format == Format::Pprof && filtered).then(|| args.input.load()).transpose()?;
    let Selected { record, spans, mut what } = selection::load(&args.input, &args.filter)?;
    if args.all_samples && filtered {
        what = format!("all samples, labelled by whether the pattern held ({what})");
    }
    let selected: Vec<&StackSample> = stacks::select(&record, spans.as_deref().filter(|_| !args.all_samples));
    if selected.is_empty() {
        bail!("no samples in the selection ({what}): nothing to export");
    }
    let recorded_hz = record.metadata.as_ref().map_or(0, |m| m.sample_hz);
    let (period_ns, how) = match args.sample_hz {
        Some(hz) => (1_000_000_000 / hz, "--sample_hz"),
        None if recorded_hz > 0 => (1_000_000_000 / recorded_hz, "the record's sampling rate"),
        None => match stacks::sampling_period_ns(&record.samples) {
            (p, true) => (p, "the median gap between samples"),
            (p, false) => (p, "the default 99 Hz: too few samples to measure the rate"),
        },
    };
    let path = &args.output;
    // Before symbolizing, which can take seconds: a destination that cannot be written fails now.
    let mut w = std::io::BufWriter::new(OutputFile::create(path, OutputOptions::REPORT)?);
    let mut namer = Namer::new(&record, &args.symbols.search_dirs);
    let title = format!("damo-trace: {what}");
    let written = match format {
        Format::Pprof => {
            let whole = unfiltered.as_ref().unwrap_or(&record);
            let moments = damo_fleet::labels::Moments::new(whole, &phases_of(whole, &args.phases, &mut namer)?, spans);
            let labels: Vec<_> = selected.iter().map(|s| moments.labels(s.ts_ns)).collect();
            let mut profile = pprof::build_labelled(&record.modules, &selected, &labels, &mut namer, period_ns, &title);
            // Record times are CLOCK_MONOTONIC; pprof wants the wall clock, when it is known.
            if let Some(offset) = record.metadata.as_ref().and_then(|m| m.realtime_offset_ns) {
                profile.time_nanos = profile.time_nanos.saturating_add(offset);
            }
            pprof::write(&profile, &mut w)
        }
        Format::Speedscope => serde_json::to_writer(&mut w, &speedscope::build(&record.modules, &selected, &mut namer, period_ns, &title)).map_err(Into::into),
        Format::Parquet => unreachable!("written above"),
    };
    let file = written.and_then(|()| w.into_inner().map_err(|e| e.into_error())).with_context(|| format!("failed to write {}", path.display()))?;
    file.commit()?;
    writeln!(out, "{}: {} samples ({what}), {period_ns} ns each (from {how})", path.display(), selected.len())?;
    Ok(())
}

/// `report phases`' phases of the record's main target (none without snapshots).
fn phases_of(record: &Record, args: &super::phases::PhaseArgs, namer: &mut Namer) -> Result<Vec<Phase>> {
    let Some(target) = damo_report::phases::main_target(record).filter(|t| !t.snapshots.is_empty()) else { return Ok(Vec::new()) };
    let named = super::phases::Named::new(record, Some(namer));
    Ok(super::phases::find(target, &args.options(target)?, &named).into_iter().map(|f| f.phase).collect())
}

/// `--format parquet`: the whole record into the dataset directory, as one host's record.
fn parquet(args: &Args, out: &mut dyn Write) -> Result<()> {
    if !args.filter.to_filter()?.is_noop() || args.all_samples || args.sample_hz.is_some() {
        bail!("--format parquet exports the whole record: filter with SQL over the dataset (docs/fleet.md)");
    }
    let record = args.input.load()?;
    let recorded_host = record.metadata.as_ref().map(|m| m.hostname.clone()).filter(|h| !h.is_empty());
    let Some(host) = args.host.clone().or(recorded_host) else { bail!("{} does not name its host: give --host NAME", args.input.input.display()) };
    let name = args.record_name.clone().unwrap_or_else(|| args.input.input.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()));
    let partition = damo_fleet::Partition::new(&host, &name)?;
    let mut namer = Namer::new(&record, &args.symbols.search_dirs);
    let named = super::phases::Named::new(&record, (!record.samples.is_empty()).then_some(&mut namer));
    let target = damo_report::phases::main_target(&record).filter(|t| !t.snapshots.is_empty());
    let found = match target {
        Some(t) => super::phases::find(t, &args.phases.options(t)?, &named),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_output_name() {
        assert_eq!(format_of(Path::new("out/cpu.pb.gz")), Some(Format::Pprof));
        assert_eq!(format_of(Path::new("cpu.PPROF")), Some(Format::Pprof));
        assert_eq!(format_of(Path::new("run.speedscope.json")), Some(Format::Speedscope));
        assert_eq!(format_of(Path::new("run.gz")), None);
        assert_eq!(format_of(Path::new("profile")), None);
    }
}
