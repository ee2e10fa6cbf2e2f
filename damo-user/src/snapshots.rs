//! Rebuilds DAMON snapshots from `damon_aggregated` events.
//!
//! The tracepoint fires once per region at the end of each aggregation interval and has no
//! snapshot marker, but every event carries the target's `nr_regions`: a snapshot is complete
//! when that many regions of one (kdamond, target) arrived in a row.
//!
//! `damos_before_apply` events ([`SchemePasses`]) only cover the regions a scheme acts on,
//! so their count says nothing; a scheme's pass over a target ends instead when its kdamond
//! reports the aggregation that follows it, or when the addresses start over.

use std::collections::HashMap;

use damo_common::{RegionEvent, SchemeRegionEvent};
use damo_record::model::{Region, Snapshot};

/// Which target (or which scheme's view of a target) a snapshot belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TargetKey {
    pub kdamond_pid: u32,
    pub target_id: u64,
    pub context_idx: u32,
    /// Set for the regions a DAMOS scheme tried (`--schemes_target_regions`).
    pub scheme_idx: Option<u32>,
}

impl TargetKey {
    pub fn target(kdamond_pid: u32, target_id: u64) -> Self {
        Self { kdamond_pid, target_id, context_idx: 0, scheme_idx: None }
    }
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
    /// The kdamonds ran before the recorder attached (`record --observe`): a target's first
    /// events may be the tail of a snapshot it reported before, which is dropped, not counted.
    joined_running: bool,
}

impl SnapshotAssembler {
    /// For kdamonds that were already running when the tracepoint was attached.
    pub fn joining_running() -> Self {
        Self { joined_running: true, ..Self::default() }
    }

    /// Adds one event; returns the snapshot it completed, if any.
    pub fn push(&mut self, event: &RegionEvent) -> Option<(TargetKey, Snapshot)> {
        let key = TargetKey::target(event.kdamond_pid, event.target_id);
        let pending = self.pending.entry(key).or_default();
        // A changed nr_regions, or addresses going backwards, start a new snapshot: the rest
        // of the previous one was lost.
        let restarts = !pending.regions.is_empty() && (pending.nr_regions != event.nr_regions || pending.regions.last().is_some_and(|r| r.start >= event.start));
        if restarts {
            let joined_mid_snapshot = self.joined_running && pending.prev_end_ns.is_none();
            self.incomplete += u64::from(!joined_mid_snapshot);
            pending.regions.clear();
        }
        pending.nr_regions = event.nr_regions;
        pending.last_ts_ns = event.ts_ns;
        pending.regions.push(Region { start: event.start, end: event.end, nr_accesses: event.nr_accesses, age: Some(event.age) });
        if pending.regions.len() < event.nr_regions as usize {
            return None;
        }
        let end_ns = pending.last_ts_ns;
        let snapshot = Snapshot { start_ns: pending.prev_end_ns.unwrap_or(end_ns), end_ns, regions: std::mem::take(&mut pending.regions), total_bytes: None };
        pending.prev_end_ns = Some(end_ns);
        Some((key, snapshot))
    }
}

#[derive(Debug, Default)]
struct Pass {
    regions: Vec<Region>,
    last_ts_ns: u64,
}

/// Assembles the regions each DAMOS scheme tried into one snapshot per pass (damo's
/// `--schemes_target_regions` records).
#[derive(Debug, Default)]
pub struct SchemePasses {
    open: HashMap<TargetKey, Pass>,
    /// End of each key's previous pass: the start of its next one.
    prev_end_ns: HashMap<TargetKey, u64>,
}

impl SchemePasses {
    /// Adds one event; returns the previous pass of its scheme and target if this one starts
    /// a new pass (its address is not above the last one's).
    pub fn push(&mut self, event: &SchemeRegionEvent) -> Option<(TargetKey, Snapshot)> {
        let key = TargetKey { kdamond_pid: event.kdamond_pid, target_id: event.target_idx, context_idx: event.context_idx, scheme_idx: Some(event.scheme_idx) };
        let restarts = self.open.get(&key).and_then(|p| p.regions.last()).is_some_and(|r| r.start >= event.start);
        let closed = if restarts { self.close(key) } else { None };
        let pass = self.open.entry(key).or_default();
        pass.last_ts_ns = event.ts_ns;
        pass.regions.push(Region { start: event.start, end: event.end, nr_accesses: event.nr_accesses, age: Some(event.age) });
        closed
    }

    /// Ends every open pass of `kdamond_pid`: it reported an aggregation, which comes after
    /// the schemes were applied in the same kdamond iteration.
    pub fn end_of_iteration(&mut self, kdamond_pid: u32) -> Vec<(TargetKey, Snapshot)> {
        let keys: Vec<TargetKey> = self.open.keys().filter(|k| k.kdamond_pid == kdamond_pid).copied().collect();
        keys.into_iter().filter_map(|k| self.close(k)).collect()
    }

    /// Ends every open pass (the recording ends).
    pub fn finish(&mut self) -> Vec<(TargetKey, Snapshot)> {
        let keys: Vec<TargetKey> = self.open.keys().copied().collect();
        let mut closed: Vec<_> = keys.into_iter().filter_map(|k| self.close(k)).collect();
        closed.sort_by_key(|(_, s)| s.end_ns);
        closed
    }

    fn close(&mut self, key: TargetKey) -> Option<(TargetKey, Snapshot)> {
        let pass = self.open.remove(&key)?;
        let end_ns = pass.last_ts_ns;
        let start_ns = self.prev_end_ns.insert(key, end_ns).unwrap_or(end_ns);
        Some((key, Snapshot { start_ns, end_ns, regions: pass.regions, total_bytes: None }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(target_id: u64, nr_regions: u32, start: u64, ts_ns: u64) -> RegionEvent {
        RegionEvent { kind: damo_common::EventKind::Region as u32, kdamond_pid: 100, ts_ns, target_id, start, end: start + 4096, nr_regions, nr_accesses: 3, age: 1, _pad: 0 }
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

    /// Attached to a running kdamond in the middle of its report: the first events are a
    /// snapshot's tail. Dropped, and not a loss; a tail lost later still is.
    #[test]
    fn joining_a_running_kdamond_mid_snapshot_is_not_a_loss() {
        let mut asm = SnapshotAssembler::joining_running();
        assert!(asm.push(&event(0, 3, 8192, 1)).is_none());
        assert!(asm.push(&event(0, 3, 0, 50)).is_none());
        assert_eq!(asm.incomplete, 0);
        asm.push(&event(0, 3, 4096, 50));
        let (_, snap) = asm.push(&event(0, 3, 8192, 50)).expect("the first whole snapshot");
        assert_eq!(snap.regions.len(), 3);
        asm.push(&event(0, 3, 0, 100));
        assert!(asm.push(&event(0, 3, 0, 150)).is_none());
        assert_eq!(asm.incomplete, 1, "a tail lost after the first snapshot is counted");
    }

    fn tried(scheme_idx: u32, start: u64, ts_ns: u64) -> SchemeRegionEvent {
        SchemeRegionEvent {
            kind: damo_common::EventKind::SchemeRegion as u32,
            kdamond_pid: 100,
            ts_ns,
            target_idx: 0,
            start,
            end: start + 4096,
            context_idx: 0,
            scheme_idx,
            nr_regions: 10,
            nr_accesses: 5,
            age: 2,
            _pad: 0,
        }
    }

    #[test]
    fn a_scheme_pass_ends_at_its_kdamonds_next_aggregation() {
        let mut passes = SchemePasses::default();
        // Schemes 0 and 1 interleave region by region, as kdamond_apply_schemes walks them.
        for (i, start) in [0u64, 8192, 16384].into_iter().enumerate() {
            assert!(passes.push(&tried(0, start, 10 + i as u64)).is_none());
            assert!(passes.push(&tried(1, start, 10 + i as u64)).is_none());
        }
        assert!(passes.end_of_iteration(999).is_empty(), "another kdamond's aggregation ends nothing");
        let mut closed = passes.end_of_iteration(100);
        closed.sort_by_key(|(k, _)| k.scheme_idx);
        assert_eq!(closed.len(), 2);
        let (key, snap) = &closed[1];
        assert_eq!((key.scheme_idx, key.target_id), (Some(1), 0));
        assert_eq!(snap.regions.iter().map(|r| r.start).collect::<Vec<_>>(), [0, 8192, 16384]);
        assert_eq!((snap.start_ns, snap.end_ns), (12, 12));
        passes.push(&tried(0, 4096, 110));
        let (_, next) = passes.finish().pop().expect("the open pass ends with the recording");
        assert_eq!((next.start_ns, next.end_ns, next.regions.len()), (12, 110, 1), "starts where the previous pass ended");
    }

    #[test]
    fn a_scheme_pass_also_ends_when_addresses_start_over() {
        // Schemes applied more often than aggregations: no damon_aggregated between passes.
        let mut passes = SchemePasses::default();
        passes.push(&tried(0, 0, 1));
        passes.push(&tried(0, 4096, 1));
        let (_, first) = passes.push(&tried(0, 0, 5)).expect("a new pass");
        assert_eq!(first.regions.len(), 2);
        assert_eq!(passes.finish().len(), 1);
        assert!(passes.finish().is_empty());
    }
}
