//! `report export`: the stack samples `report profile` would count, as a file for other
//! tools: pprof (`go tool pprof`, Pyroscope, Parca) or speedscope (its time-ordered view).

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
    model::StackSample,
    output_file::{OutputFile, OutputOptions},
};

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
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub symbols: SymbolArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// The file to write.
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
        bail!("cannot tell the format of {} from its name: give --format pprof or --format speedscope", args.output.display());
    };
    let Selected { record, spans, what } = selection::load(&args.input, &args.filter)?;
    let selected: Vec<&StackSample> = stacks::select(&record, spans.as_deref());
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
            let mut profile = pprof::build(&record.modules, &selected, &mut namer, period_ns, &title);
            // Record times are CLOCK_MONOTONIC; pprof wants the wall clock, when it is known.
            if let Some(offset) = record.metadata.as_ref().and_then(|m| m.realtime_offset_ns) {
                profile.time_nanos = profile.time_nanos.saturating_add(offset);
            }
            pprof::write(&profile, &mut w)
        }
        Format::Speedscope => serde_json::to_writer(&mut w, &speedscope::build(&record.modules, &selected, &mut namer, period_ns, &title)).map_err(Into::into),
    };
    let file = written.and_then(|()| w.into_inner().map_err(|e| e.into_error())).with_context(|| format!("failed to write {}", path.display()))?;
    file.commit()?;
    writeln!(out, "{}: {} samples ({what}), {period_ns} ns each (from {how})", path.display(), selected.len())?;
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
