//! `report record_info` options.

use std::{io::Write, path::PathBuf};

use anyhow::Result;
use damo_report::record_info;

use super::options::load_record;

#[derive(Debug, clap::Args)]
#[command(rename_all = "snake_case")]
pub struct Args {
    /// The record to describe.
    #[arg(
        short = 'i',
        long = "input",
        value_name = "FILE",
        default_value = "damon.data"
    )]
    pub input: PathBuf,
    /// Print numbers in raw format.
    #[arg(long)]
    pub raw_numbers: bool,
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let record = load_record(&args.input)?;
    let text = record_info::report(&record, args.raw_numbers);
    if !text.is_empty() {
        writeln!(out, "{text}")?;
    }
    Ok(())
}
