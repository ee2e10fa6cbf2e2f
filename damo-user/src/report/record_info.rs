//! `report record_info` options.

use std::io::Write;

use anyhow::Result;
use damo_report::record_info;

use damo_record::native::Rest;

use super::options::{accumulate, InputArgs};

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
    // damo's per-target scheme information (null target ids change the guides' keys) comes
    // only in damo's records, which are loaded whole: known after the snapshots were fed.
    let mut acc = record_info::Accumulator::new(None);
    let rest = accumulate(&args.input.input, Rest::Keep, &mut acc)?;
    let text = match rest.damos.is_some() {
        true => record_info::report(&rest, args.raw_numbers),
        false => acc.finish(&rest, args.raw_numbers),
    };
    if !text.is_empty() {
        writeln!(out, "{text}")?;
    }
    Ok(())
}
