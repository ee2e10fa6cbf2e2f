//! `report export`: the stack samples `report profile` would count, as a file for other
//! tools: pprof (`go tool pprof`, Pyroscope, Parca) or speedscope (its time-ordered view).

use std::{io::Write, path::PathBuf};

use anyhow::{bail, Context, Result};
use damo_profile::{
    export,
    stacks::{self, Namer},
};
use damo_record::{
    model::StackSample,
    output_file::{OutputFile, OutputOptions},
};

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
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub samples: SampleArgs,
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

impl From<Format> for export::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Pprof => export::Format::Pprof,
            Format::Speedscope => export::Format::Speedscope,
        }
    }
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let Some(format) = args.format.map(export::Format::from).or_else(|| export::Format::of_path(&args.output)) else {
        bail!("cannot tell the format of {} from its name: give --format pprof or --format speedscope", args.output.display());
    };
    let Selected { record, spans, what } = selection::load(&args.samples.input, &args.samples.filter)?;
    let selected: Vec<&StackSample> = stacks::select(&record, spans.as_deref());
    if selected.is_empty() {
        bail!("no samples in the selection ({what}): nothing to export");
    }
    let period = export::period(&record, args.sample_hz);
    let path = &args.output;
    // Before symbolizing, which can take seconds: a destination that cannot be written fails now.
    let mut w = std::io::BufWriter::new(OutputFile::create(path, OutputOptions::REPORT)?);
    let mut namer = Namer::new(&record, &args.samples.symbols.search_dirs);
    let title = format!("damo-trace: {what}");
    let written = export::write(format, &record, &selected, &mut namer, period.ns, &title, &mut w);
    let file = written.and_then(|()| w.into_inner().map_err(|e| e.into_error().into())).with_context(|| format!("failed to write {}", path.display()))?;
    file.commit()?;
    writeln!(out, "{}: {} samples ({what}), {} ns each (from {})", path.display(), selected.len(), period.ns, period.source)?;
    Ok(())
}
