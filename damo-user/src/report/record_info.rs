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
    // damo's per-target scheme information comes only in damo's records, known once their
    // snapshots were fed: null target ids change the guides' keys, so those snapshots are
    // fed again, from the record read whole (DAMOS snapshots: small).
    let mut acc = record_info::Accumulator::new(None);
    let rest = accumulate(&args.input.input, Rest::Keep, &mut acc)?;
    let null_ids = rest.damos.as_ref().is_some_and(|d| d.iter().any(|t| t.target_id_null));
    let text = match (null_ids, rest.targets.iter().any(|t| !t.snapshots.is_empty())) {
        (false, _) => acc.finish(&rest, args.raw_numbers),
        (true, true) => record_info::report(&rest, args.raw_numbers),
        (true, false) => record_info::report(&args.input.load()?, args.raw_numbers),
    };
    if !text.is_empty() {
        writeln!(out, "{text}")?;
    }
    Ok(())
}
