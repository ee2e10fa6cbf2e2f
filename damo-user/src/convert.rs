//! `damo-trace convert`: a record (any format this tool reads) rewritten in one of damo's
//! formats, so damo and scripts written for it can read damo-trace's records; memory
//! footprints go beside it in damo's `<output>.mem_footprint`.

use std::{
    fs::OpenOptions,
    io::{BufWriter, Write},
    os::unix::fs::OpenOptionsExt,
    path::PathBuf,
};

use anyhow::{Context, Result};
use damo_record::damo::{self, DamoFormat};
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
    /// Overwrite the output if it exists.
    #[arg(long)]
    pub force: bool,
    /// Permission bits of the new file, in octal.
    #[arg(long = "output_permission", default_value = "600", value_parser = parse_octal)]
    pub output_permission: u32,
}

fn parse_octal(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8).ok().filter(|m| *m <= 0o777).ok_or_else(|| format!("{s:?} is not an octal permission (000-777)"))
}

pub fn run(args: Args) -> Result<()> {
    crate::report::options::memory_limit_from_env()?;
    let record = load_record(&args.input)?;
    let mut out = create(&args, &args.output)?;
    damo::write(&record, args.format, &mut out).and_then(|()| out.flush()).with_context(|| format!("failed to write {}", args.output.display()))?;
    // damo keeps memory footprints in a file of their own beside the record.
    if !record.footprints.is_empty() {
        let path = PathBuf::from(format!("{}.mem_footprint", args.output.display()));
        let json = footprints::to_damo_json(&record.footprints, record.metadata.as_ref().and_then(|m| m.realtime_offset_ns));
        let mut out = create(&args, &path)?;
        serde_json::to_writer(&mut out, &json).map_err(std::io::Error::from).and_then(|()| out.flush()).with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(())
}

/// Creates `path` with the requested permission, refusing to overwrite without `--force`.
fn create(args: &Args, path: &std::path::Path) -> Result<BufWriter<std::fs::File>> {
    let mut options = OpenOptions::new();
    options.write(true).mode(args.output_permission);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let file = options.open(path).with_context(|| format!("failed to create {}{}", path.display(), if args.force { "" } else { " (use --force to overwrite)" }))?;
    Ok(BufWriter::new(file))
}
