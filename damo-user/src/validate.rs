//! `damo-trace validate`: damo's record checks, plus the native format's framing and
//! checksums (a damaged record is invalid here, where reports read what came before).

use anyhow::{bail, Context, Result};
use damo_record::units;
use damo_report::validate::{self, Limits};

use crate::report::options::InputArgs;

#[derive(Debug, clap::Args)]
#[command(rename_all = "snake_case")]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// Valid aggregation intervals, µs.
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"], default_values = ["75000", "125000"])]
    pub aggr: Vec<u64>,
    /// Valid numbers of regions per snapshot.
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"], default_values = ["3", "1200"])]
    pub nr_regions: Vec<u64>,
    /// Valid sampled accesses of a region per aggregation interval.
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"], default_values = ["0", "24"])]
    pub nr_accesses: Vec<u64>,
    /// Percent of a target's snapshots whose interval or region count may be out of range.
    #[arg(long, default_value = "2")]
    pub allow_error: String,
    /// Ranges every region must lie in: "<start>-<end> ...".
    #[arg(long, num_args = 1.., value_name = "START-END")]
    pub regions_boundary: Vec<String>,
}

/// Silent and exit 0 when valid, as damo; otherwise the first problem is the error.
pub fn run(args: Args) -> Result<()> {
    let pair = |v: &[u64]| [v[0], v[1]];
    let allow_error_percent = units::parse_percent(&args.allow_error).with_context(|| format!("bad --allow_error {:?}", args.allow_error))?;
    let boundaries = args.regions_boundary.iter().map(|b| parse_boundary(b)).collect::<Result<_>>()?;
    let limits = Limits { aggr_us: pair(&args.aggr), nr_regions: pair(&args.nr_regions), nr_accesses: pair(&args.nr_accesses), allow_error_percent, boundaries };
    let path = &args.input.input;
    let loaded = damo_record::load::load(path)?;
    if let Some(damage) = loaded.damage {
        bail!("{}: {damage}", path.display());
    }
    validate::validate(&loaded.record, &limits).map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))
}

fn parse_boundary(text: &str) -> Result<[u64; 2]> {
    let parsed = text.split_once('-').and_then(|(a, b)| Some([units::parse_bytes(a).ok()?, units::parse_bytes(b).ok()?]));
    match parsed {
        Some([start, end]) if start < end => Ok([start, end]),
        _ => bail!("bad --regions_boundary {text:?}: expected <start>-<end> with start < end"),
    }
}
