//! The records a heatmap reads, with snapshot times as damo sees them.

use damo_record::model::{Region, Snapshot, TargetRecord};

use super::pynum::Num;

/// One target's record.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    pub target: &'a TargetRecord,
    /// damo's start of the first snapshot when the record does not store it exactly: a
    /// perf-script trace has end times only, and damo starts the first snapshot the mean
    /// snapshot duration before its end, a fractional nanosecond.
    pub first_start: Option<f64>,
}

impl<'a> Source<'a> {
    /// A record read from a file; `from_perf_script` when it came from a perf-script trace.
    pub fn new(target: &'a TargetRecord, from_perf_script: bool) -> Self {
        let s = &target.snapshots;
        let first_start = match (from_perf_script, s.first(), s.last()) {
            (true, Some(first), Some(last)) => perf_script_first_start(first.end_ns, last.end_ns, s.len()),
            _ => None,
        };
        Source { target, first_start }
    }

    /// damo's `snapshot.start_time` of snapshot `idx`.
    pub fn start(&self, idx: usize) -> Num {
        match (idx, self.first_start) {
            (0, Some(f)) => Num::Float(f),
            _ => Num::Int(i128::from(self.target.snapshots[idx].start_ns)),
        }
    }

    pub fn snapshots(&self) -> &'a [Snapshot] {
        &self.target.snapshots
    }
}

/// damo's start of a perf-script target's first snapshot: the mean snapshot duration before
/// its end (`count` snapshots, the first and last ending at `first_end` and `last_end`).
pub fn perf_script_first_start(first_end: u64, last_end: u64, count: usize) -> Option<f64> {
    (count >= 2).then(|| {
        let mean = last_end.wrapping_sub(first_end) as f64 / (count - 1) as f64;
        first_end as f64 - mean
    })
}

/// Aggregation intervals a region kept its pattern (damo uses 0 for unknown ages here).
pub fn age(region: &Region) -> i128 {
    i128::from(region.age.unwrap_or(0))
}
