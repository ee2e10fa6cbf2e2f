//! `report wss` options, as damo's `report wss` names them.

use std::io::Write;

use anyhow::{bail, Result};
use damo_report::{
    dist::{self, SortBy},
    wss::{self, defaults, WssOptions},
};

use damo_record::native::Rest;

use super::options::{accumulate, named, print_or_plot, InputArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// Percentiles to print: START STOP STEP, like Python's range().
    #[arg(short = 'r', long = "range", num_args = 3, value_names = ["START", "STOP", "STEP"], default_values_t = dist::defaults::RANGE, allow_negative_numbers = true)]
    pub range: Vec<i64>,
    /// Snapshots at the start to ignore (DAMON adapts its regions first).
    #[arg(long = "exclude_samples", default_value_t = defaults::EXCLUDE_SAMPLES)]
    pub exclude_samples: usize,
    /// Regions with fewer accesses than this are not in the working set.
    #[arg(short = 't', long = "acc_thres", default_value_t = defaults::ACC_THRES)]
    pub acc_thres: u64,
    /// Regions smaller than this (bytes) are not in the working set.
    #[arg(long = "sz_thres", default_value_t = defaults::SZ_THRES)]
    pub sz_thres: u64,
    /// Time of one unit of work (µs): snapshots are merged into one per unit.
    #[arg(long = "work_time", default_value_t = defaults::WORK_TIME_US)]
    pub work_time: u64,
    /// Sort by size (percentiles, the default) or keep time order.
    #[arg(short = 's', long = "sortby", default_value = SortBy::default().name(), value_parser = named::<SortBy>())]
    pub sortby: SortBy,
    /// Columns of the bar beside each value (0: no bar).
    #[arg(long = "nr_cols_bar", default_value_t = dist::defaults::NR_COLS_BAR)]
    pub nr_cols_bar: usize,
    /// Machine-friendly numbers.
    #[arg(long = "raw_number")]
    pub raw_number: bool,
    /// Print every working set size, not percentiles.
    #[arg(long = "all_wss")]
    pub all_wss: bool,
    /// One distribution per target instead of their sum.
    #[arg(long = "per_target")]
    pub per_target: bool,
    /// Sum the targets into one distribution (the default).
    #[arg(long = "collapse_targets", conflicts_with = "per_target")]
    pub collapse_targets: bool,
    /// Draw the distribution into an image (.svg or .png) instead of printing it.
    #[arg(short = 'p', long = "plot", value_name = "FILE")]
    pub plot: Option<std::path::PathBuf>,
}

impl Args {
    pub(crate) fn options(&self) -> Result<WssOptions> {
        let [start, stop, step] = self.range[..] else { bail!("--range takes three numbers") };
        Ok(WssOptions {
            range: (start, stop, step),
            exclude_samples: self.exclude_samples,
            acc_thres: self.acc_thres,
            sz_thres: self.sz_thres,
            work_time_us: self.work_time,
            sort: self.sortby,
            raw_number: self.raw_number,
            all_wss: self.all_wss,
            collapse_targets: !self.per_target,
            bar_cols: self.nr_cols_bar,
        })
    }
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let options = args.options()?;
    // Before reading: a range that does not fit fails at once.
    dist::checked_percentiles(options.range, options.bar_cols)?;
    let mut acc = wss::Accumulator::new(&options);
    let record = accumulate(&args.input.input, Rest::Drop, &mut acc)?;
    let dists = std::cell::Cell::new(Some(acc.finish(&record.targets)));
    drop(record);
    let take = || dists.take().expect("one output");
    print_or_plot(args.plot.as_deref(), out, || Ok(wss::report_of(take(), &options)?), || Ok(wss::plot_of(take(), &options)?))
}
