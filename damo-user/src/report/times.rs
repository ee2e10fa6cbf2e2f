//! `report times` options. damo takes `--inputs <access record> <profile record>`; the
//! second is unused by this report, so `--input` alone works too.

use std::{io::Write, path::PathBuf};

use anyhow::Result;
use damo_report::times;

use damo_record::native::Rest;

use super::options::{accumulate, FilterArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The access record (damo's form; the profile record is not needed).
    #[arg(long = "inputs", num_args = 2, value_names = ["ACCESS", "PROFILE"], conflicts_with = "input")]
    pub inputs: Option<Vec<PathBuf>>,
    /// The access record.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: Option<PathBuf>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let filter = args.filter.to_filter()?;
    let path = args.input.or_else(|| args.inputs.and_then(|v| v.into_iter().next())).unwrap_or_else(|| "damon.data".into());
    let mut acc = times::Accumulator::new(Some(&filter));
    accumulate(&path, Rest::Drop, &mut acc)?;
    out.write_all(times::report_of(&acc.finish()).as_bytes())?;
    Ok(())
}
