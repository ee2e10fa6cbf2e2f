//! `report footprints` options, as damo's `report footprints` names them.

use std::{io::Write, path::Path};

use anyhow::{bail, Context, Result};
use damo_record::model::Record;
use damo_report::{
    chart, dist,
    footprints::{self, FootprintsOptions, Metric},
    image,
};

use super::options::{load_record, InputArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to show of each footprint snapshot: the recorded processes' summed virtual (vsz)
    /// or resident (rss) size, the system's used memory (sys_used), or all three.
    #[arg(value_parser = ["vsz", "rss", "sys_used", "all"], default_value = "all")]
    pub metric: String,
    /// The record: damo-trace's, or damo's `<record>.mem_footprint` (found beside a damo
    /// record given here).
    #[command(flatten)]
    pub input: InputArgs,
    /// Percentiles to print: START STOP STEP, like Python's range().
    #[arg(short = 'r', long = "range", num_args = 3, value_names = ["START", "STOP", "STEP"], default_values_t = [0, 101, 25], allow_negative_numbers = true)]
    pub range: Vec<i64>,
    /// Sort by size (percentiles, the default) or keep time order.
    #[arg(short = 's', long = "sortby", value_parser = ["size", "time"], default_value = "size")]
    pub sortby: String,
    /// Draw the distribution into an image (.svg or .png) instead of printing it.
    #[arg(short = 'p', long = "plot", value_name = "FILE")]
    pub plot: Option<std::path::PathBuf>,
    /// Columns of the bar beside each value (0: no bar).
    #[arg(long = "nr_cols_bar", default_value_t = 59)]
    pub nr_cols_bar: usize,
    /// Machine-friendly numbers.
    #[arg(long = "raw_number")]
    pub raw_number: bool,
    /// Print every footprint value, not percentiles.
    #[arg(long = "all_footprint")]
    pub all_footprint: bool,
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let [start, stop, step] = args.range[..] else { bail!("--range takes three numbers") };
    if step == 0 {
        bail!("--range: the step must not be 0");
    }
    super::options::check_percentile_range(start, stop, step, args.nr_cols_bar)?;
    let metrics = match args.metric.as_str() {
        "vsz" => vec![Metric::Vsz],
        "rss" => vec![Metric::Rss],
        "sys_used" => vec![Metric::SysUsed],
        _ => Metric::ALL.to_vec(),
    };
    let options =
        FootprintsOptions { metrics, range: (start, stop, step), sort_by_size: args.sortby != "time", raw_number: args.raw_number, all_footprint: args.all_footprint, bar_cols: args.nr_cols_bar };
    let record = load(&args.input.input)?;
    if let Some(path) = &args.plot {
        let percentiles = dist::percentiles(start, stop, step);
        let series: Vec<chart::Series> = options
            .metrics
            .iter()
            .map(|&m| {
                let values = footprints::distribution(&record, m, options.sort_by_size);
                let points = if values.is_empty() {
                    Vec::new()
                } else if options.all_footprint {
                    values.iter().enumerate().map(|(i, &v)| (i as f64, v as f64)).collect()
                } else {
                    percentiles.iter().map(|&p| (p as f64, values[dist::percentile_index(p, values.len())] as f64)).collect()
                };
                chart::Series { label: m.name().to_string(), points }
            })
            .collect();
        let x_label = if options.sort_by_size { "percentile" } else { "runtime (percent)" };
        image::write_svg_as(path, &chart::svg(&series, x_label, "memory footprint (bytes)"))?;
        return Ok(());
    }
    out.write_all(footprints::report(&record, &options).as_bytes())?;
    Ok(())
}

/// The footprints of `path`: a damo-trace record's, or damo's mem_footprint file (given, or
/// beside the damo record given). A record without any is an error that says so.
fn load(path: &Path) -> Result<Record> {
    if let Some(footprints) = damo_footprint_file(path)? {
        return Ok(Record { footprints, ..Default::default() });
    }
    let record = load_record(path)?;
    if !record.footprints.is_empty() {
        return Ok(record);
    }
    let beside = path.with_file_name(format!("{}.mem_footprint", path.file_name().unwrap_or_default().to_string_lossy()));
    if let Some(footprints) = damo_footprint_file(&beside)? {
        return Ok(Record { footprints, ..Default::default() });
    }
    bail!("{} has no memory footprints (nor is there a damo {} beside it): damo-trace record samples them unless --do_record leaves out mem_footprint", path.display(), beside.display())
}

/// damo's mem_footprint JSON at `path`, if that is what the file is.
fn damo_footprint_file(path: &Path) -> Result<Option<Vec<damo_record::model::FootprintSnapshot>>> {
    // A regular file only, within the memory limit: the path may be one beside the record
    // that someone else made (a FIFO there must not hang the report).
    let mut file = match damo_record::input::open_regular(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
    };
    let data = damo_record::input::read_all(&mut file, &mut damo_record::budget::Meter::new()).with_context(|| format!("failed to read {}", path.display()))?;
    // A JSON list whose first snapshot names its footprints; damo's records are not that.
    let head = &data[..data.len().min(4096)];
    let looks_like = head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') && head.windows(12).any(|w| w == b"\"footprints\"");
    if !looks_like {
        return Ok(None);
    }
    let footprints = footprints::from_damo_json(&data).with_context(|| format!("failed to read {}", path.display()))?;
    Ok(Some(footprints))
}
