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
        let first_start = (from_perf_script && s.len() >= 2).then(|| {
            let (first, last) = (s[0].end_ns, s[s.len() - 1].end_ns);
            let mean = (last - first) as f64 / (s.len() - 1) as f64;
            first as f64 - mean
        });
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

/// Aggregation intervals a region kept its pattern (damo uses 0 for unknown ages here).
pub fn age(region: &Region) -> i128 {
    i128::from(region.age.unwrap_or(0))
}
