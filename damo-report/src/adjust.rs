//! damo's `adjust_records`: drop the first snapshots (DAMON's regions are not yet adapted),
//! then merge consecutive snapshots into one per "work time" (`report wss --work_time`).

use std::borrow::Cow;

use damo_record::model::{Region, Snapshot, TargetRecord};

/// Skips `skip` snapshots, then merges runs of snapshots spanning at least `work_time_us`.
/// A trailing run shorter than that is dropped, as damo drops it.
pub fn adjust(target: &mut TargetRecord, work_time_us: u64, skip: usize) {
    if let Some(i) = target.intervals.as_mut() {
        i.aggr_us = work_time_us;
    }
    let mut runs = Runs::new(work_time_us, skip);
    for s in std::mem::take(&mut target.snapshots) {
        runs.push(Cow::Owned(s), |merged| target.snapshots.push(Snapshot { total_bytes: None, ..merged.into_owned() }));
    }
}

/// [`adjust`] one snapshot at a time, for reports that stream a record.
#[derive(Debug, Clone)]
pub struct Runs {
    skip: usize,
    work_ns: u128,
    run: Vec<Snapshot>,
}

impl Runs {
    pub fn new(work_time_us: u64, skip: usize) -> Self {
        Self { skip, work_ns: u128::from(work_time_us) * 1000, run: Vec::new() }
    }

    /// Feeds a target's next snapshot; `done` gets the merged snapshot of each run it ends.
    /// A run of one snapshot is that snapshot as it came (no copy when it came borrowed;
    /// its `total_bytes` as it was, which [`adjust`] unsets).
    pub fn push<'s>(&mut self, s: Cow<'s, Snapshot>, done: impl FnOnce(Cow<'s, Snapshot>)) {
        if self.skip > 0 {
            self.skip -= 1;
            return;
        }
        let first_start = self.run.first().map_or(s.start_ns, |f| f.start_ns);
        let ends_run = u128::from(s.end_ns.saturating_sub(first_start)) >= self.work_ns;
        if self.run.is_empty() && ends_run {
            done(s);
            return;
        }
        self.run.push(s.into_owned());
        if ends_run {
            done(Cow::Owned(merge(std::mem::take(&mut self.run))));
        }
    }
}

/// One snapshot for a run: where regions of later snapshots overlap earlier ones, the
/// earlier region keeps its bounds and gains the most accesses of the regions overlapping
/// it; parts that overlap nothing become regions of their own.
fn merge(run: Vec<Snapshot>) -> Snapshot {
    let (start_ns, end_ns) = (run[0].start_ns, run[run.len() - 1].end_ns);
    let mut iter = run.into_iter();
    let first = iter.next().expect("runs are never empty");
    if iter.len() == 0 {
        return Snapshot { total_bytes: None, ..first };
    }
    // Disjoint regions sorted by start, so overlaps are found by binary search.
    let mut merged: Vec<Region> = first.regions;
    merged.sort_unstable_by_key(|r| r.start);
    for s in iter {
        let mut added = vec![0u32; merged.len()];
        let mut fresh = Vec::new();
        for r in &s.regions {
            let mut cursor = r.start;
            let mut i = merged.partition_point(|m| m.end <= r.start);
            while cursor < r.end {
                match merged.get(i) {
                    Some(m) if m.start < r.end => {
                        if cursor < m.start {
                            fresh.push(Region { start: cursor, end: m.start, ..*r });
                        }
                        added[i] = added[i].max(r.nr_accesses);
                        cursor = m.end;
                        i += 1;
                    }
                    _ => {
                        fresh.push(Region { start: cursor, end: r.end, ..*r });
                        cursor = r.end;
                    }
                }
            }
        }
        for (m, add) in merged.iter_mut().zip(added) {
            m.nr_accesses = m.nr_accesses.saturating_add(add);
        }
        merged.extend(fresh);
        merged.sort_unstable_by_key(|r| r.start);
    }
    Snapshot { start_ns, end_ns, regions: merged, total_bytes: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(start_ns: u64, regions: &[(u64, u64, u32)]) -> Snapshot {
        Snapshot { start_ns, end_ns: start_ns + 100_000, regions: regions.iter().map(|&(start, end, n)| Region { start, end, nr_accesses: n, age: Some(0) }).collect(), total_bytes: None }
    }

    #[test]
    fn overlapping_regions_add_the_largest_overlap() {
        // damo's own example: 1-10:5, then 1-5:2 and 5-10:4 make 1-10:9.
        let mut t = TargetRecord { snapshots: vec![snap(0, &[(1, 10, 5)]), snap(100_000, &[(1, 5, 2), (5, 10, 4)])], ..Default::default() };
        adjust(&mut t, 0, 0);
        assert_eq!(t.snapshots.len(), 2, "work time 0 keeps every snapshot");
        let mut t = TargetRecord { snapshots: vec![snap(0, &[(1, 10, 5)]), snap(100_000, &[(1, 5, 2), (5, 10, 4), (10, 20, 7)])], ..Default::default() };
        adjust(&mut t, 150, 0);
        let s = &t.snapshots[0];
        let got: Vec<_> = s.regions.iter().map(|r| (r.start, r.end, r.nr_accesses)).collect();
        assert_eq!(got, [(1, 10, 9), (10, 20, 7)]);
    }

    #[test]
    fn skips_and_drops_the_short_tail() {
        let snaps = (0..5).map(|i| snap(i * 100_000, &[(0, 10, 1)])).collect();
        let mut t = TargetRecord { snapshots: snaps, ..Default::default() };
        adjust(&mut t, 0, 2);
        assert_eq!(t.snapshots.len(), 3);
    }
}
