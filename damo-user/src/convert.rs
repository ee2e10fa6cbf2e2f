//! `damo-trace convert`: a record (any format this tool reads) rewritten in one of damo's
//! formats, so damo and scripts written for it can read damo-trace's records; memory
//! footprints go beside it in damo's `<output>.mem_footprint`.

use std::{
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use damo_record::{
    damo::{self, DamoFormat},
    output_file::{self, OutputFile, OutputOptions},
};
use damo_report::footprints;

use crate::report::options::load_record;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The record to convert.
    #[arg(short = 'i', long = "input", default_value = "damon.data", value_name = "FILE")]
    pub input: PathBuf,
    /// The new file.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Its format, named as damo names it (json_compressed, json, perf_script).
    #[arg(long = "format", default_value = "json_compressed")]
    pub format: DamoFormat,
    /// Replace the outputs if they exist (regular files only: never a symlink or device).
    #[arg(long)]
    pub force: bool,
    /// Permission bits of the new file, in octal.
    #[arg(long = "output_permission", default_value = "600", value_parser = output_file::parse_mode)]
    pub output_permission: u32,
}

pub fn run(args: Args) -> Result<()> {
    crate::report::options::memory_limit_from_env()?;
    let record = load_record(&args.input)?;
    let options = OutputOptions::exact(args.output_permission, args.force);
    // Both destinations are checked (and their temporary files made) before anything is
    // written, and both are moved into place only when both are written.
    let mut out = BufWriter::with_capacity(1 << 16, OutputFile::create(&args.output, options)?);
    // damo keeps memory footprints in a file of their own beside the record.
    let footprint_path = PathBuf::from(format!("{}.mem_footprint", args.output.display()));
    let mut footprint_out = if record.footprints.is_empty() { None } else { Some(BufWriter::new(OutputFile::create(&footprint_path, options)?)) };
    damo::write(&record, args.format, &mut out).and_then(|()| out.flush()).with_context(|| format!("failed to write {}", args.output.display()))?;
    if let Some(w) = footprint_out.as_mut() {
        let json = footprints::to_damo_json(&record.footprints, record.metadata.as_ref().and_then(|m| m.realtime_offset_ns));
        serde_json::to_writer(&mut *w, &json).map_err(std::io::Error::from).and_then(|()| w.flush()).with_context(|| format!("failed to write {}", footprint_path.display()))?;
    }
    commit(out, &args.output)?;
    if let Some(w) = footprint_out {
        commit(w, &footprint_path)?;
    }
    Ok(())
}

fn commit(w: BufWriter<OutputFile>, path: &Path) -> Result<()> {
    w.into_inner().map_err(|e| e.into_error()).with_context(|| format!("failed to write {}", path.display()))?.commit()?;
    Ok(())
}
