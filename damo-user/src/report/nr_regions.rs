//! `report nr_regions` options, as damo names them.

use std::io::Write;

use anyhow::{bail, Result};
use damo_report::{
    dist::SortBy,
    nr_regions::{self, NrRegionsOptions},
};

use damo_record::native::Rest;

use super::options::{accumulate, named, print_or_plot, InputArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// Percentiles to print: START STOP STEP, like Python's range() (default 0 25 50 75 100).
    #[arg(short = 'r', long = "range", num_args = 3, value_names = ["START", "STOP", "STEP"], allow_negative_numbers = true)]
    pub range: Option<Vec<i64>>,
    /// Sort by size (percentiles, the default) or keep time order.
    #[arg(short = 's', long = "sortby", default_value = SortBy::default().name(), value_parser = named::<SortBy>())]
    pub sortby: SortBy,
    /// Draw the distribution into an image (.svg or .png) instead of printing it.
    #[arg(short = 'p', long = "plot", value_name = "FILE")]
    pub plot: Option<std::path::PathBuf>,
}

impl Args {
    pub(crate) fn options(&self) -> Result<NrRegionsOptions> {
        let range = match self.range.as_deref() {
            None => None,
            Some(&[start, stop, step]) => Some((start, stop, step)),
            Some(_) => bail!("--range takes three numbers"),
        };
        Ok(NrRegionsOptions { range, sort: self.sortby })
    }
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let options = args.options()?;
    // Before reading: a range that does not fit fails at once.
    options.percentiles()?;
    let mut acc = nr_regions::Accumulator::default();
    let record = accumulate(&args.input.input, Rest::Drop, &mut acc)?;
    let dists = std::cell::Cell::new(Some(acc.finish(&record.targets, options.sort)));
    drop(record);
    let take = || dists.take().expect("one output");
    print_or_plot(args.plot.as_deref(), out, || Ok(nr_regions::report_of(take(), &options)?), || Ok(nr_regions::plot_of(take(), &options)?))
}
