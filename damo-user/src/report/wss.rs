//! `report wss` options, as damo's `report wss` names them.

use std::io::Write;

use anyhow::{bail, Result};
use damo_report::wss::{self, WssOptions};

use super::options::InputArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// Percentiles to print: START STOP STEP, like Python's range().
    #[arg(short = 'r', long = "range", num_args = 3, value_names = ["START", "STOP", "STEP"], default_values_t = [0, 101, 25], allow_negative_numbers = true)]
    pub range: Vec<i64>,
    /// Snapshots at the start to ignore (DAMON adapts its regions first).
    #[arg(long = "exclude_samples", default_value_t = 20)]
    pub exclude_samples: usize,
    /// Regions with fewer accesses than this are not in the working set.
    #[arg(short = 't', long = "acc_thres", default_value_t = 1)]
    pub acc_thres: u64,
    /// Regions smaller than this (bytes) are not in the working set.
    #[arg(long = "sz_thres", default_value_t = 1)]
    pub sz_thres: u64,
    /// Time of one unit of work (µs): snapshots are merged into one per unit.
    #[arg(long = "work_time", default_value_t = 1)]
    pub work_time: u64,
    /// Sort by size (percentiles, the default) or keep time order.
    #[arg(short = 's', long = "sortby", value_parser = ["size", "time"])]
    pub sortby: Option<String>,
    /// Columns of the bar beside each value (0: no bar).
    #[arg(long = "nr_cols_bar", default_value_t = 59)]
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

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let [start, stop, step] = args.range[..] else { bail!("--range takes three numbers") };
    if step == 0 {
        bail!("--range: the step must not be 0");
    }
    super::options::check_percentile_range(start, stop, step, args.nr_cols_bar)?;
    let options = WssOptions {
        range: (start, stop, step),
        exclude_samples: args.exclude_samples,
        acc_thres: args.acc_thres,
        sz_thres: args.sz_thres,
        work_time_us: args.work_time,
        sort_by_size: args.sortby.as_deref() != Some("time"),
        raw_number: args.raw_number,
        all_wss: args.all_wss,
        collapse_targets: !args.per_target,
        bar_cols: args.nr_cols_bar,
    };
    let record = args.input.load()?;
    if let Some(path) = &args.plot {
        let series = wss::distributions(record, &options);
        let x_label = if options.sort_by_size { "percentile" } else { "runtime (percent)" };
        return super::plot::write_distribution(path, &series, &damo_report::dist::percentiles(start, stop, step), options.all_wss, x_label, "working set size (bytes)");
    }
    out.write_all(wss::report(record, &options).as_bytes())?;
    Ok(())
}
