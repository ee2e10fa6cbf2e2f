//! `damo-trace adjust`: a record re-aggregated to a longer interval and/or filtered, written
//! in one of damo's formats, with damo's semantics (`damo adjust`): the filters apply first,
//! then the first `--skip` snapshots are dropped and each run of snapshots spanning
//! `--aggregate_interval` becomes one (`damo_report::adjust`). The record streams in: only
//! what is written is held.

use std::path::PathBuf;

use anyhow::{Context, Result};
use damo_record::{
    damo::{self, DamoFormat},
    native::Rest,
    output_file::{self, OutputOptions},
};
use damo_report::adjust::Adjusted;

use crate::report::options::{accumulate, FilterArgs};

#[derive(Debug, clap::Args)]
#[command(rename_all = "snake_case")]
pub struct Args {
    /// The new aggregation interval, µs (as damo; 1s, 500ms also work). Without it the record
    /// is only filtered and rewritten.
    #[arg(long, value_name = "MICROSECONDS")]
    pub aggregate_interval: Option<String>,
    /// The record to adjust.
    #[arg(short = 'i', long = "input", default_value = "damon.data", value_name = "FILE")]
    pub input: PathBuf,
    /// The adjusted record.
    #[arg(short = 'o', long = "output", default_value = "damon.adjusted.data", value_name = "FILE")]
    pub output: PathBuf,
    /// Its format, named as damo names it (json_compressed, json, perf_script).
    #[arg(long = "output_type", default_value = "json_compressed")]
    pub output_type: DamoFormat,
    /// Permission bits of the new file, in octal.
    #[arg(long = "output_permission", default_value = "600", value_parser = output_file::parse_mode)]
    pub output_permission: u32,
    /// Replace the output if it exists (a regular file only).
    #[arg(long)]
    pub force: bool,
    /// Snapshots to drop first: DAMON's regions are not yet adapted in them.
    #[arg(long, default_value_t = 20)]
    pub skip: usize,
    #[command(flatten)]
    pub filter: FilterArgs,
}

pub fn run(args: Args) -> Result<()> {
    crate::report::options::memory_limit_from_env()?;
    let filter = args.filter.to_filter()?;
    let interval_us = args.aggregate_interval.as_deref().map(|t| damo_record::units::parse_us(t).with_context(|| format!("bad --aggregate_interval {t:?}"))).transpose()?;
    if interval_us == Some(0) {
        anyhow::bail!("--aggregate_interval must be more than 0");
    }
    // Streamed (a damo-trace record, a damo file's cached copy or its first read): only the
    // adjusted snapshots are held. damo's formats keep snapshots only, so nothing else is kept.
    let mut adjusted = Adjusted::new(&filter, interval_us.map(|us| (us, args.skip)));
    let rest = accumulate(&args.input, Rest::Drop, &mut adjusted)?;
    let record = adjusted.into_record(rest).map_err(|over| anyhow::anyhow!("{}: {over}", args.input.display()))?;
    let path = &args.output;
    output_file::write_with(path, OutputOptions::exact(args.output_permission, args.force), |w| -> Result<()> {
        damo::write(&record, args.output_type, w).with_context(|| format!("failed to write {}", path.display()))
    })
}
