//! `report times`: the time intervals in which a record's (filtered) snapshots have regions,
//! as damo's `damo_report_times.py` prints them — typically with `--access_rate 50% 100%` to
//! ask "when was something hot".

use damo_record::model::{Record, Snapshot, TargetRecord};

use crate::{
    accumulate::{self, Accumulate},
    filter::RecordFilter,
};

/// Intervals `[start, end)` in ns; consecutive snapshots with regions join into one.
pub fn intervals(record: &Record) -> Vec<(u64, u64)> {
    let mut acc = Accumulator::new(None);
    accumulate::feed(record, &mut acc);
    acc.finish()
}

/// The intervals of a record's snapshots, fed one at a time, after damo's record filters.
#[derive(Clone)]
pub struct Accumulator<'f> {
    filter: Option<&'f RecordFilter>,
    targets: Vec<Option<TargetTimes>>,
    /// The snapshot being filtered, reused.
    scratch: Snapshot,
}

/// A target's count for the snapshot filters, and its intervals.
type TargetTimes = (u64, Vec<(u64, u64)>);

impl<'f> Accumulator<'f> {
    /// With `filter`, snapshots are filtered first (as [`RecordFilter::apply`] filters them).
    pub fn new(filter: Option<&'f RecordFilter>) -> Self {
        Self { filter, targets: Vec::new(), scratch: Snapshot::default() }
    }

    /// The intervals of [`intervals`]: the targets' one after another, joined where one ends
    /// as the next starts, as joining their snapshots in record order joins them.
    pub fn finish(self) -> Vec<(u64, u64)> {
        let mut times: Vec<(u64, u64)> = Vec::new();
        for (_, target) in self.targets.into_iter().flatten() {
            for (start, end) in target {
                join(&mut times, start, end);
            }
        }
        times
    }
}

fn join(times: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    match times.last_mut() {
        Some(last) if last.1 == start => last.1 = end,
        _ => times.push((start, end)),
    }
}

impl Accumulate for Accumulator<'_> {
    fn push(&mut self, index: usize, target: &TargetRecord, s: &Snapshot) {
        let (kept, times) = accumulate::slot(&mut self.targets, index, Default::default);
        let s = match self.filter {
            None => s,
            Some(filter) => {
                self.scratch.clone_from(s);
                if !filter.apply_snapshot(&mut self.scratch, target.intervals.as_ref(), kept) {
                    return;
                }
                &self.scratch
            }
        };
        if !s.regions.is_empty() {
            join(times, s.start_ns, s.end_ns);
        }
    }
}

/// damo's lines: `start-end` in seconds with 6 decimals, each followed by `# (seconds)`.
pub fn report(record: &Record) -> String {
    report_of(&intervals(record))
}

/// [`report`] of the intervals an [`Accumulator`] found.
pub fn report_of(intervals: &[(u64, u64)]) -> String {
    let mut out = String::new();
    for (start, end) in intervals {
        out.push_str(&format!("{:.6}-{:.6}\n# (seconds)\n", *start as f64 / 1e9, *end as f64 / 1e9));
    }
    out
}

/// The times a pattern held, for reports on what ran then (`report profile`, `export`).
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// `[start, end)` ns; `None`: all of the record.
    pub spans: Option<Vec<(u64, u64)>>,
    /// What was selected, for titles.
    pub what: String,
}

/// The times `filter` (damo's record filters) picks from `record`'s snapshots, applying it
/// to `record`. A filter that keeps everything selects all of the record.
pub fn select(record: &mut Record, filter: &crate::filter::RecordFilter) -> Selection {
    if filter.is_noop() {
        return Selection::all();
    }
    filter.apply(record);
    Selection::of(intervals(record))
}

impl Selection {
    /// All of the record: no filter.
    pub fn all() -> Selection {
        Selection { spans: None, what: "all samples".into() }
    }

    /// The `spans` a filter picked.
    pub fn of(spans: Vec<(u64, u64)>) -> Selection {
        let what = format!("{:.3} s in {} spans where the pattern held", spans.iter().map(|(a, b)| (b - a) as f64 / 1e9).sum::<f64>(), spans.len());
        Selection { spans: Some(spans), what }
    }
}
