//! `report wss`: the distribution of working set sizes over a record's snapshots, as damo's
//! `damo_wss.py` computes it.

use std::borrow::Cow;

use damo_record::{
    model::{Record, Snapshot, TargetRecord},
    units,
};

use crate::{
    accumulate::{self, Accumulate},
    adjust, chart,
    dist::{self, SortBy},
};

/// damo's defaults of `report wss` (the range and bar: [`dist::defaults`]).
pub mod defaults {
    pub const EXCLUDE_SAMPLES: usize = 20;
    pub const ACC_THRES: u64 = 1;
    pub const SZ_THRES: u64 = 1;
    pub const WORK_TIME_US: u64 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WssOptions {
    /// Percentiles: Python `range(start, stop, step)`.
    pub range: (i64, i64, i64),
    /// Leading snapshots to ignore (DAMON's regions adapt first).
    pub exclude_samples: usize,
    /// A region counts when it saw at least this many accesses...
    pub acc_thres: u64,
    /// ...and is at least this large.
    pub sz_thres: u64,
    /// Snapshots are merged into one per this many µs.
    pub work_time_us: u64,
    /// Sort sizes (percentiles) or keep them in time order.
    pub sort: SortBy,
    pub raw_number: bool,
    /// Print every working set size instead of percentiles.
    pub all_wss: bool,
    /// One distribution for all targets (damo's default) instead of one per target.
    pub collapse_targets: bool,
    pub bar_cols: usize,
}

impl Default for WssOptions {
    fn default() -> Self {
        let [start, stop, step] = dist::defaults::RANGE;
        Self {
            range: (start, stop, step),
            exclude_samples: defaults::EXCLUDE_SAMPLES,
            acc_thres: defaults::ACC_THRES,
            sz_thres: defaults::SZ_THRES,
            work_time_us: defaults::WORK_TIME_US,
            sort: SortBy::default(),
            raw_number: false,
            all_wss: false,
            collapse_targets: true,
            bar_cols: dist::defaults::NR_COLS_BAR,
        }
    }
}

/// Working set sizes per target id (one entry with id 0 when collapsed), in record order.
pub fn distributions(record: &Record, o: &WssOptions) -> Vec<(u64, Vec<u64>)> {
    let mut acc = Accumulator::new(o);
    accumulate::feed(record, &mut acc);
    acc.finish(&record.targets)
}

/// The working set sizes of a record's snapshots, fed one at a time.
#[derive(Clone)]
pub struct Accumulator<'o> {
    o: &'o WssOptions,
    /// Per target: its snapshots merged per work time, and their working set sizes.
    targets: Vec<Option<(adjust::Runs, Vec<u64>)>>,
}

impl<'o> Accumulator<'o> {
    pub fn new(o: &'o WssOptions) -> Self {
        Self { o, targets: Vec::new() }
    }

    /// The distributions of [`distributions`], given the record's targets.
    pub fn finish(self, targets: &[TargetRecord]) -> Vec<(u64, Vec<u64>)> {
        let o = self.o;
        let mut sizes = self.targets.into_iter().map(|t| t.map(|(_, wss)| wss));
        let mut dists: Vec<(u64, Vec<u64>)> = Vec::new();
        for target in targets {
            let mut wss = sizes.next().flatten().unwrap_or_default();
            if o.sort == SortBy::Size {
                wss.sort_unstable();
            }
            // damo keys by target id: a later target with the same id replaces the earlier one.
            match dists.iter_mut().find(|(id, _)| *id == target.target_id) {
                Some(d) => d.1 = wss,
                None => dists.push((target.target_id, wss)),
            }
        }
        if o.collapse_targets {
            let mut sum: Vec<u64> = Vec::new();
            for (_, d) in &dists {
                for (i, &w) in d.iter().enumerate() {
                    match sum.get_mut(i) {
                        Some(s) => *s += w,
                        None => sum.push(w),
                    }
                }
            }
            dists = vec![(0, sum)];
        }
        dists
    }
}

impl Accumulate for Accumulator<'_> {
    fn push(&mut self, index: usize, _: &TargetRecord, s: &Snapshot) {
        let o = self.o;
        let (runs, wss) = accumulate::slot(&mut self.targets, index, || (adjust::Runs::new(o.work_time_us, o.exclude_samples), Vec::new()));
        runs.push(Cow::Borrowed(s), |merged| wss.push(merged.regions.iter().filter(|r| u64::from(r.nr_accesses) >= o.acc_thres && r.size() >= o.sz_thres).map(|r| r.size()).sum()));
    }
}

/// The text report, line for line as damo prints it.
pub fn report(record: &Record, o: &WssOptions) -> Result<String, dist::RangeError> {
    report_of(distributions(record, o), o)
}

/// [`report`] of the distributions an [`Accumulator`] made.
pub fn report_of(dists: Vec<(u64, Vec<u64>)>, o: &WssOptions) -> Result<String, dist::RangeError> {
    let percentiles = dist::checked_percentiles(o.range, o.bar_cols)?;
    let mut out = String::new();
    for (id, d) in dists {
        out.push_str(&format!("# target_id\t{id}\n"));
        out.push_str(&dist::format("wss", &d, &percentiles, o.all_wss, units::format_sz, o.raw_number, o.bar_cols));
        out.push('\n');
    }
    Ok(out)
}

/// `--plot`: the distributions as a chart (SVG).
pub fn plot(record: &Record, o: &WssOptions) -> Result<String, dist::RangeError> {
    plot_of(distributions(record, o), o)
}

/// [`plot`] of the distributions an [`Accumulator`] made.
pub fn plot_of(dists: Vec<(u64, Vec<u64>)>, o: &WssOptions) -> Result<String, dist::RangeError> {
    let percentiles = dist::checked_percentiles(o.range, o.bar_cols)?;
    let series: Vec<chart::Series> = dists.into_iter().map(|(id, d)| chart::distribution_series(format!("target {id}"), &d, &percentiles, o.all_wss)).collect();
    Ok(chart::svg(&series, chart::distribution_x_label(o.sort), "working set size (bytes)"))
}
