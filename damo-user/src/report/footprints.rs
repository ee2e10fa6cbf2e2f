//! `report footprints` options, as damo's `report footprints` names them.

use std::{io::Write, path::Path};

use anyhow::{bail, Result};
use damo_record::{model::Record, native::Rest};
use damo_report::{
    dist::{self, SortBy},
    footprints::{self, FootprintsOptions, Metrics},
};

use super::options::{accumulate, named, print_or_plot, InputArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to show of each footprint snapshot: the recorded processes' summed virtual (vsz)
    /// or resident (rss) size, the system's used memory (sys_used), or all three.
    #[arg(value_parser = named::<Metrics>(), default_value = Metrics::default().name())]
    pub metric: Metrics,
    /// The record: damo-trace's, or damo's `<record>.mem_footprint` (found beside a damo
    /// record given here).
    #[command(flatten)]
    pub input: InputArgs,
    /// Percentiles to print: START STOP STEP, like Python's range().
    #[arg(short = 'r', long = "range", num_args = 3, value_names = ["START", "STOP", "STEP"], default_values_t = dist::defaults::RANGE, allow_negative_numbers = true)]
    pub range: Vec<i64>,
    /// Sort by size (percentiles, the default) or keep time order.
    #[arg(short = 's', long = "sortby", default_value = SortBy::default().name(), value_parser = named::<SortBy>())]
    pub sortby: SortBy,
    /// Draw the distribution into an image (.svg or .png) instead of printing it.
    #[arg(short = 'p', long = "plot", value_name = "FILE")]
    pub plot: Option<std::path::PathBuf>,
    /// Columns of the bar beside each value (0: no bar).
    #[arg(long = "nr_cols_bar", default_value_t = dist::defaults::NR_COLS_BAR)]
    pub nr_cols_bar: usize,
    /// Machine-friendly numbers.
    #[arg(long = "raw_number")]
    pub raw_number: bool,
    /// Print every footprint value, not percentiles.
    #[arg(long = "all_footprint")]
    pub all_footprint: bool,
}

impl Args {
    pub(crate) fn options(&self) -> Result<FootprintsOptions> {
        let [start, stop, step] = self.range[..] else { bail!("--range takes three numbers") };
        Ok(FootprintsOptions { metrics: self.metric.list(), range: (start, stop, step), sort: self.sortby, raw_number: self.raw_number, all_footprint: self.all_footprint, bar_cols: self.nr_cols_bar })
    }
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let options = args.options()?;
    // Before loading: a range that does not fit fails at once.
    dist::checked_percentiles(options.range, options.bar_cols)?;
    let record = load(&args.input.input)?;
    print_or_plot(args.plot.as_deref(), out, || Ok(footprints::report(&record, &options)?), || Ok(footprints::plot(&record, &options)?))
}

/// The footprints of `path`: a damo-trace record's, or damo's mem_footprint file (given, or
/// beside the damo record given). A record without any is an error that says so.
fn load(path: &Path) -> Result<Record> {
    if let Some(footprints) = footprints::read_damo_file(path)? {
        return Ok(Record { footprints, ..Default::default() });
    }
    // Only the footprints are kept: a damo-trace record is streamed past its snapshots (a
    // day of recording does not fit in memory; its footprints, one a second, do).
    let record = accumulate(path, Rest::Keep, &mut ())?;
    if !record.footprints.is_empty() {
        return Ok(record);
    }
    let beside = footprints::damo_file_beside(path);
    if let Some(footprints) = footprints::read_damo_file(&beside)? {
        return Ok(Record { footprints, ..Default::default() });
    }
    bail!("{} has no memory footprints (nor is there a damo {} beside it): damo-trace record samples them unless --do_record leaves out mem_footprint", path.display(), beside.display())
}
