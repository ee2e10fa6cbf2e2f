//! `report nr_regions`: the distribution of the number of regions per snapshot, as damo's
//! `damo_nr_regions.py` prints it.

use damo_record::model::Record;

use crate::{
    chart,
    dist::{self, SortBy},
};

/// damo skips the first 20 snapshots: DAMON has not adapted its regions yet.
const SKIPPED: usize = 20;

/// `report nr_regions` options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NrRegionsOptions {
    /// Percentiles: Python `range(start, stop, step)`; `None`: damo's 0, 25, 50, 75 and 100.
    pub range: Option<(i64, i64, i64)>,
    pub sort: SortBy,
}

impl NrRegionsOptions {
    /// The percentiles to print (damo's default differs from the other distributions').
    pub fn percentiles(&self) -> Result<Vec<i64>, dist::RangeError> {
        match self.range {
            None => Ok(vec![0, 25, 50, 75, 100]),
            Some(range) => dist::checked_percentiles(range, 0),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NrRegionsError {
    #[error(transparent)]
    Range(#[from] dist::RangeError),
    /// Where damo divides by zero.
    #[error("target {0} has no snapshot after the first {SKIPPED}, which nr_regions skips")]
    TooFewSnapshots(u64),
}

pub fn distributions(record: &Record, sort: SortBy) -> Vec<(u64, Vec<u64>)> {
    record
        .targets
        .iter()
        .map(|t| {
            let mut d: Vec<u64> = t.snapshots.iter().skip(SKIPPED).map(|s| s.regions.len() as u64).collect();
            if sort == SortBy::Size {
                d.sort_unstable();
            }
            (t.target_id, d)
        })
        .collect()
}

/// Errors where damo divides by zero: a target with no snapshot after the first 20.
pub fn report(record: &Record, o: &NrRegionsOptions) -> Result<String, NrRegionsError> {
    let percentiles = o.percentiles()?;
    let mut out = String::from("# <percentile> <# regions>\n");
    for (id, d) in distributions(record, o.sort) {
        if d.is_empty() {
            return Err(NrRegionsError::TooFewSnapshots(id));
        }
        out.push_str(&format!("# target_id\t{id}\n"));
        let sum: u128 = d.iter().map(|&v| u128::from(v)).sum();
        out.push_str(&format!("# avr:\t{}\n", sum / d.len() as u128));
        for &p in &percentiles {
            out.push_str(&format!("{p}\t{}\n", d[dist::percentile_index(p, d.len())]));
        }
    }
    Ok(out)
}

/// `--plot`: the distributions as a chart (SVG).
pub fn plot(record: &Record, o: &NrRegionsOptions) -> Result<String, dist::RangeError> {
    let percentiles = o.percentiles()?;
    let series: Vec<chart::Series> = distributions(record, o.sort).into_iter().map(|(id, d)| chart::distribution_series(format!("target {id}"), &d, &percentiles, false)).collect();
    Ok(chart::svg(&series, chart::distribution_x_label(o.sort), "number of monitoring target regions"))
}
