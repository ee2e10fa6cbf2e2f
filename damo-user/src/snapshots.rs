//! Rebuilds DAMON snapshots from `damon_aggregated` events.
//!
//! The tracepoint fires once per region at the end of each aggregation interval and has no
//! snapshot marker, but every event carries the target's `nr_regions`: a snapshot is complete
//! when that many regions of one (kdamond, target) arrived in a row.

use std::collections::HashMap;

use damo_common::RegionEvent;
use damo_record::model::{Region, Snapshot};

/// Which target a snapshot belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TargetKey {
    pub kdamond_pid: u32,
    pub target_id: u64,
}

#[derive(Debug, Default)]
struct Pending {
    nr_regions: u32,
    regions: Vec<Region>,
    last_ts_ns: u64,
    /// End of the previous complete snapshot: the start of this one.
    prev_end_ns: Option<u64>,
}

/// Assembles snapshots per target; counts what could not be completed.
#[derive(Debug, Default)]
pub struct SnapshotAssembler {
    pending: HashMap<TargetKey, Pending>,
    /// Incomplete snapshots thrown away because a new one started (events were lost).
    pub incomplete: u64,
}

impl SnapshotAssembler {
    /// Adds one event; returns the snapshot it completed, if any.
    pub fn push(&mut self, event: &RegionEvent) -> Option<(TargetKey, Snapshot)> {
        let key = TargetKey { kdamond_pid: event.kdamond_pid, target_id: event.target_id };
        let pending = self.pending.entry(key).or_default();
        // A changed nr_regions, or addresses going backwards, start a new snapshot: the rest
        // of the previous one was lost.
        let restarts = !pending.regions.is_empty()
            && (pending.nr_regions != event.nr_regions
                || pending.regions.last().is_some_and(|r| r.start >= event.start));
        if restarts {
            self.incomplete += 1;
            pending.regions.clear();
        }
        pending.nr_regions = event.nr_regions;
        pending.last_ts_ns = event.ts_ns;
        pending.regions.push(Region {
            start: event.start,
            end: event.end,
            nr_accesses: event.nr_accesses,
            age: Some(event.age),
        });
        if pending.regions.len() < event.nr_regions as usize {
            return None;
        }
        let end_ns = pending.last_ts_ns;
        let snapshot = Snapshot {
            start_ns: pending.prev_end_ns.unwrap_or(end_ns),
            end_ns,
            regions: std::mem::take(&mut pending.regions),
            total_bytes: None,
        };
        pending.prev_end_ns = Some(end_ns);
        Some((key, snapshot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(target_id: u64, nr_regions: u32, start: u64, ts_ns: u64) -> RegionEvent {
        RegionEvent {
            kind: damo_common::EventKind::Region as u32,
            kdamond_pid: 100,
            ts_ns,
            target_id,
            start,
            end: start + 4096,
            nr_regions,
            nr_accesses: 3,
            age: 1,
            _pad: 0,
        }
    }

    #[test]
    fn completes_a_snapshot_after_nr_regions_events() {
        let mut asm = SnapshotAssembler::default();
        assert!(asm.push(&event(0, 2, 0, 10)).is_none());
        let (key, snap) = asm.push(&event(0, 2, 4096, 11)).expect("complete");
        assert_eq!(key.target_id, 0);
        assert_eq!(snap.regions.len(), 2);
        assert_eq!((snap.start_ns, snap.end_ns), (11, 11));
        asm.push(&event(0, 2, 0, 100));
        let (_, next) = asm.push(&event(0, 2, 4096, 101)).expect("second snapshot");
        assert_eq!((next.start_ns, next.end_ns), (11, 101), "starts where the previous ended");
        assert_eq!(asm.incomplete, 0);
    }

    #[test]
    fn interleaved_targets_are_kept_apart() {
        let mut asm = SnapshotAssembler::default();
        assert!(asm.push(&event(1, 2, 0, 1)).is_none());
        assert!(asm.push(&event(2, 1, 0, 1)).is_some());
        assert!(asm.push(&event(1, 2, 4096, 2)).is_some());
    }

    #[test]
    fn a_lost_tail_is_counted_not_merged() {
        let mut asm = SnapshotAssembler::default();
        asm.push(&event(0, 3, 0, 1));
        asm.push(&event(0, 3, 4096, 1));
        // The third region was lost; the next snapshot begins at address 0 again.
        assert!(asm.push(&event(0, 3, 0, 50)).is_none());
        assert_eq!(asm.incomplete, 1);
        asm.push(&event(0, 3, 4096, 50));
        let (_, snap) = asm.push(&event(0, 3, 8192, 50)).expect("complete after the loss");
        assert_eq!(snap.regions.len(), 3);
    }
}
