//! `report nr_regions` options, as damo names them.

use std::io::Write;

use anyhow::{anyhow, bail, Result};
use damo_report::{dist, nr_regions};

use super::options::InputArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// Percentiles to print: START STOP STEP, like Python's range() (default 0 25 50 75 100).
    #[arg(short = 'r', long = "range", num_args = 3, value_names = ["START", "STOP", "STEP"], allow_negative_numbers = true)]
    pub range: Option<Vec<i64>>,
    /// Sort by size (percentiles, the default) or keep time order.
    #[arg(short = 's', long = "sortby", value_parser = ["size", "time"])]
    pub sortby: Option<String>,
    /// Draw the distribution into an image (.svg or .png) instead of printing it.
    #[arg(short = 'p', long = "plot", value_name = "FILE")]
    pub plot: Option<std::path::PathBuf>,
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let percentiles = match args.range.as_deref() {
        None => vec![0, 25, 50, 75, 100],
        Some(&[_, _, 0]) => bail!("--range: the step must not be 0"),
        Some(&[start, stop, step]) => {
            super::options::check_percentile_range(start, stop, step, 0)?;
            dist::percentiles(start, stop, step)
        }
        Some(_) => bail!("--range takes three numbers"),
    };
    let sort = args.sortby.as_deref() != Some("time");
    let record = args.input.load()?;
    if let Some(path) = &args.plot {
        let series = nr_regions::distributions(&record, sort);
        let x_label = if sort { "percentile" } else { "runtime (percent)" };
        return super::plot::write_distribution(path, &series, &percentiles, false, x_label, "number of monitoring target regions");
    }
    let text = nr_regions::report(&record, &percentiles, sort).map_err(|e| anyhow!(e))?;
    out.write_all(text.as_bytes())?;
    Ok(())
}
