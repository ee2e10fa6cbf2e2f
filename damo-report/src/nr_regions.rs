//! `report nr_regions`: the distribution of the number of regions per snapshot, as damo's
//! `damo_nr_regions.py` prints it.

use damo_record::model::{Record, Snapshot, TargetRecord};

use crate::{
    accumulate::{self, Accumulate},
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
    let mut acc = Accumulator::default();
    accumulate::feed(record, &mut acc);
    acc.finish(&record.targets, sort)
}

/// The region counts of a record's snapshots, fed one at a time.
#[derive(Debug, Default, Clone)]
pub struct Accumulator {
    /// Per target: snapshots seen, and the counts of those after the skipped ones.
    targets: Vec<Option<(usize, Vec<u64>)>>,
}

impl Accumulator {
    /// The distributions of [`distributions`], given the record's targets.
    pub fn finish(self, targets: &[TargetRecord], sort: SortBy) -> Vec<(u64, Vec<u64>)> {
        let mut counts = self.targets.into_iter().map(|t| t.map(|(_, d)| d));
        targets
            .iter()
            .map(|t| {
                let mut d = counts.next().flatten().unwrap_or_default();
                if sort == SortBy::Size {
                    d.sort_unstable();
                }
                (t.target_id, d)
            })
            .collect()
    }
}

impl Accumulate for Accumulator {
    fn push(&mut self, index: usize, _: &TargetRecord, s: &Snapshot) {
        let (seen, d) = accumulate::slot(&mut self.targets, index, Default::default);
        *seen += 1;
        if *seen > SKIPPED {
            d.push(s.regions.len() as u64);
        }
    }
}

/// Errors where damo divides by zero: a target with no snapshot after the first 20.
pub fn report(record: &Record, o: &NrRegionsOptions) -> Result<String, NrRegionsError> {
    report_of(distributions(record, o.sort), o)
}

/// [`report`] of the distributions an [`Accumulator`] made.
pub fn report_of(dists: Vec<(u64, Vec<u64>)>, o: &NrRegionsOptions) -> Result<String, NrRegionsError> {
    let percentiles = o.percentiles()?;
    let mut out = String::from("# <percentile> <# regions>\n");
    for (id, d) in dists {
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
    plot_of(distributions(record, o.sort), o)
}

/// [`plot`] of the distributions an [`Accumulator`] made.
pub fn plot_of(dists: Vec<(u64, Vec<u64>)>, o: &NrRegionsOptions) -> Result<String, dist::RangeError> {
    let percentiles = o.percentiles()?;
    let series: Vec<chart::Series> = dists.into_iter().map(|(id, d)| chart::distribution_series(format!("target {id}"), &d, &percentiles, false)).collect();
    Ok(chart::svg(&series, chart::distribution_x_label(o.sort), "number of monitoring target regions"))
}
