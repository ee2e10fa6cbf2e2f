//! `report record_info` options.

use std::io::Write;

use anyhow::Result;
use damo_report::record_info;

use super::options::InputArgs;

#[derive(Debug, clap::Args)]
#[command(rename_all = "snake_case")]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// Print numbers in raw format.
    #[arg(long)]
    pub raw_numbers: bool,
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let record = args.input.load()?;
    let text = record_info::report(&record, args.raw_numbers);
    if !text.is_empty() {
        writeln!(out, "{text}")?;
    }
    Ok(())
}
