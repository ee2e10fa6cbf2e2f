//! damo's `adjust_records`: drop the first snapshots (DAMON's regions are not yet adapted),
//! then merge consecutive snapshots into one per "work time" (`report wss --work_time`).

use std::borrow::Cow;

use damo_record::{
    budget::OverBudget,
    model::{Record, Region, Snapshot, TargetRecord},
};

use crate::{
    accumulate::{slot, Accumulate, Held},
    filter::RecordFilter,
};

/// `damo adjust` on a record fed snapshot by snapshot: `filter` first, then, with a work
/// time, [`Runs`] per target. Only what it writes is held, not the record: a day of 100 ms
/// snapshots adjusted to 10 s holds a hundredth of it. What it holds (the runs being merged
/// and the snapshots made) is charged to the memory limit: past it, it keeps nothing more
/// and [`Self::into_record`] fails.
#[derive(Debug, Clone)]
pub struct Adjusted<'f> {
    filter: &'f RecordFilter,
    /// The new aggregation interval (µs) and the snapshots to skip; `None`: filter only.
    work: Option<(u64, usize)>,
    /// Per target: snapshots the snapshot filters passed (damo's index), the run being
    /// merged, and the snapshots made.
    targets: Vec<Option<(u64, Runs, Vec<Snapshot>)>>,
    held: Held,
}

impl<'f> Adjusted<'f> {
    /// `work`: the new aggregation interval in µs and how many snapshots to drop first.
    pub fn new(filter: &'f RecordFilter, work: Option<(u64, usize)>) -> Self {
        Adjusted { filter, work, targets: Vec::new(), held: Held::new("the adjusted record") }
    }

    /// `rest` (the fed record without its snapshots) with the adjusted ones, its aggregation
    /// interval the new one. A trailing run shorter than the work time is dropped, as damo
    /// drops it.
    pub fn into_record(self, mut rest: Record) -> Result<Record, OverBudget> {
        self.held.check()?;
        let made = self.targets.into_iter().chain(std::iter::repeat_with(|| None));
        for (t, made) in rest.targets.iter_mut().zip(made) {
            t.snapshots = made.map(|(_, _, s)| s).unwrap_or_default();
            if let (Some(i), Some((us, _))) = (t.intervals.as_mut(), self.work) {
                i.aggr_us = us;
            }
        }
        Ok(rest)
    }
}

impl Accumulate for Adjusted<'_> {
    fn push(&mut self, index: usize, target: &TargetRecord, snapshot: &Snapshot) {
        if self.held.is_over() {
            return;
        }
        let (work_us, skip) = self.work.unwrap_or_default();
        let (passed, runs, made) = slot(&mut self.targets, index, || (0, Runs::new(work_us, skip), Vec::new()));
        let Some(kept) = self.filter.kept_of(snapshot, target.intervals.as_ref(), passed) else { return };
        let in_run = runs.held_regions();
        let mut added = 0;
        match self.work {
            None => {
                added = kept.regions.len();
                made.push(kept);
            }
            Some(_) => runs.push(Cow::Owned(kept), |merged| {
                added = merged.regions.len();
                made.push(Snapshot { total_bytes: None, ..merged.into_owned() });
            }),
        }
        self.held.change(in_run, runs.held_regions() + added);
    }
}

/// damo's merging of runs of snapshots, one snapshot at a time, for reports that stream a
/// record.
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

    /// The regions of the run not merged yet.
    pub fn held_regions(&self) -> usize {
        self.run.iter().map(|s| s.regions.len()).sum()
    }

    /// Feeds a target's next snapshot; `done` gets the merged snapshot of each run it ends.
    /// A run of one snapshot is that snapshot as it came (no copy when it came borrowed;
    /// its `total_bytes` as it was, which [`Adjusted`] unsets).
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
    use crate::accumulate::feed;
    use damo_record::synth::{self, SynthSpec};

    fn snap(start_ns: u64, regions: &[(u64, u64, u32)]) -> Snapshot {
        Snapshot { start_ns, end_ns: start_ns + 100_000, regions: regions.iter().map(|&(start, end, n)| Region { start, end, nr_accesses: n, age: Some(0) }).collect(), total_bytes: None }
    }

    /// `snapshots` of one target adjusted to `work_us` after skipping `skip`.
    fn adjust(snapshots: Vec<Snapshot>, work_us: u64, skip: usize) -> Vec<Snapshot> {
        let record = Record { targets: vec![TargetRecord { snapshots, ..Default::default() }], ..Default::default() };
        let filter = RecordFilter::default();
        let mut adjusted = Adjusted::new(&filter, Some((work_us, skip)));
        feed(&record, &mut adjusted);
        let rest = Record { targets: vec![TargetRecord::default()], ..Default::default() };
        adjusted.into_record(rest).unwrap().targets.remove(0).snapshots
    }

    #[test]
    fn overlapping_regions_add_the_largest_overlap() {
        // damo's own example: 1-10:5, then 1-5:2 and 5-10:4 make 1-10:9.
        let adjusted = adjust(vec![snap(0, &[(1, 10, 5)]), snap(100_000, &[(1, 5, 2), (5, 10, 4)])], 0, 0);
        assert_eq!(adjusted.len(), 2, "work time 0 keeps every snapshot");
        let adjusted = adjust(vec![snap(0, &[(1, 10, 5)]), snap(100_000, &[(1, 5, 2), (5, 10, 4), (10, 20, 7)])], 150, 0);
        let got: Vec<_> = adjusted[0].regions.iter().map(|r| (r.start, r.end, r.nr_accesses)).collect();
        assert_eq!(got, [(1, 10, 9), (10, 20, 7)]);
    }

    #[test]
    fn skips_and_drops_the_short_tail() {
        assert_eq!(adjust((0..5).map(|i| snap(i * 100_000, &[(0, 10, 1)])).collect(), 0, 2).len(), 3);
        // Runs of 3 snapshots (300 µs): 7 make 2, the last one too short and dropped.
        assert_eq!(adjust((0..7).map(|i| snap(i * 100_000, &[(0, 10, 1)])).collect(), 300, 0).len(), 2);
    }

    #[test]
    fn filters_first_then_merges_each_target_apart() {
        let record = synth::record(SynthSpec { targets: 2, snapshots_per_target: 40, regions: 30, seed: 7 });
        assert!(record.targets.iter().all(|t| t.intervals.is_some()), "access rates filter only with intervals");
        let filter = RecordFilter { snapshot_idx: Some(vec![(2, 35)]), sz_region: (8192, u64::MAX), ..Default::default() };
        let mut adjusted = Adjusted::new(&filter, Some((350_000, 3)));
        feed(&record, &mut adjusted);
        let mut rest = record.clone();
        rest.targets.iter_mut().for_each(|t| t.snapshots.clear());
        let got = adjusted.into_record(rest).unwrap();
        // The same steps on the whole record, one after the other.
        let mut want = record;
        filter.apply(&mut want);
        for t in &mut want.targets {
            t.intervals.as_mut().unwrap().aggr_us = 350_000;
            let mut runs = Runs::new(350_000, 3);
            for s in std::mem::take(&mut t.snapshots) {
                runs.push(Cow::Owned(s), |m| t.snapshots.push(Snapshot { total_bytes: None, ..m.into_owned() }));
            }
        }
        // 34 snapshots kept of each target's 40, 3 skipped, runs of 4 (350 ms of 100 ms ones).
        assert!(want.targets.iter().all(|t| t.snapshots.len() == 7), "{:?}", want.targets.iter().map(|t| t.snapshots.len()).collect::<Vec<_>>());
        assert_eq!(got, want);
    }
}
