//! damo's record filters (`--sz_region`, `--access_rate`, `--age`, `--address`,
//! `--sz_snapshot`, `--snapshot_time`, `--snapshot_idx`, `--temperature`), applied in damo's
//! order and with its arithmetic, so the same options keep the same regions.

use damo_record::model::{Intervals, Record, Region, Snapshot};

/// Inclusive `[min, max]` bounds, as damo's `<min> <max>` option pairs mean them.
pub type Range<T> = (T, T);

#[derive(Debug, Clone, PartialEq)]
pub struct RecordFilter {
    pub sz_region: Range<u64>,
    /// Percent of the most accesses an aggregation interval can see (`aggr / sample`).
    pub access_rate: Range<f64>,
    pub age_us: Range<u64>,
    /// Address ranges `[start, end)` to keep (regions are clipped to them).
    pub address: Option<Vec<Range<u64>>>,
    /// Snapshots whose total bytes are in one of these ranges.
    pub sz_snapshot: Option<Vec<Range<u64>>>,
    /// Snapshots that start and end inside one of these ranges (ns).
    pub snapshot_time: Option<Vec<Range<u64>>>,
    /// Snapshot indices, counted after the time filter like damo.
    pub snapshot_idx: Option<Vec<Range<u64>>>,
    pub temperature: Option<Vec<Range<i64>>>,
    /// Weights of size, access rate and age in the temperature (damo's filter ignores size).
    pub temperature_weights: [i64; 3],
}

impl Default for RecordFilter {
    fn default() -> Self {
        Self {
            sz_region: (0, u64::MAX),
            access_rate: (0.0, u64::MAX as f64),
            age_us: (0, u64::MAX),
            address: None,
            sz_snapshot: None,
            snapshot_time: None,
            snapshot_idx: None,
            temperature: None,
            temperature_weights: [0, 100, 100],
        }
    }
}

/// A region's access rate in whole percent, truncated like damo (`int(samples * 100 / max)`).
pub fn access_rate_percent(nr_accesses: u32, intervals: &Intervals) -> i64 {
    let max = intervals.aggr_us as f64 / intervals.sample_us as f64;
    (f64::from(nr_accesses) * 100.0 / max) as i64
}

/// A region's age in µs; unknown ages count as 0.
pub fn age_us(region: &Region, intervals: &Intervals) -> u64 {
    u64::from(region.age.unwrap_or(0)).saturating_mul(intervals.aggr_us)
}

/// damo's temperature: a weighted sum of size, access rate and age, negative for regions
/// with no access.
pub fn temperature(region: &Region, intervals: &Intervals, weights: [i64; 3]) -> i128 {
    let rate = access_rate_percent(region.nr_accesses, intervals);
    let score = i128::from(region.size()) * i128::from(weights[0]) + i128::from(rate) * i128::from(weights[1]) + i128::from(age_us(region, intervals)) * i128::from(weights[2]);
    if rate > 0 {
        score
    } else {
        -score
    }
}

impl RecordFilter {
    /// Whether this filter keeps everything.
    pub fn is_noop(&self) -> bool {
        *self == Self::default()
    }

    pub fn apply(&self, record: &mut Record) {
        for target in &mut record.targets {
            let intervals = target.intervals;
            let mut index = 0;
            target.snapshots.retain_mut(|s| self.apply_snapshot(s, intervals.as_ref(), &mut index));
        }
    }

    /// [`Self::apply`] on one snapshot of a target whose intervals are `intervals`: whether
    /// it is kept. `index` counts the target's snapshots the snapshot filters kept so far
    /// (damo numbers `--snapshot_idx` after the time filter); start it at 0 per target.
    /// Each of damo's steps looks at one snapshot, so applying them snapshot by snapshot
    /// keeps what damo's step by step keeps.
    pub fn apply_snapshot(&self, s: &mut Snapshot, intervals: Option<&Intervals>, index: &mut u64) -> bool {
        self.apply_to_regions(s, intervals);
        if !self.selects(s, index) {
            return false;
        }
        self.apply_temperature(s, intervals);
        true
    }

    /// Whether [`Self::apply_snapshot`] keeps `s`, decided before its regions are filtered,
    /// and `index` counted as it counts it: `None` when that depends on them (a snapshot size
    /// filter).
    fn selects_before_regions(&self, s: &Snapshot, index: &mut u64) -> Option<bool> {
        self.sz_snapshot.is_none().then(|| self.selects(s, index))
    }

    /// What [`Self::apply_snapshot`] keeps of `s`, copied only when the snapshot filters can
    /// drop it before its regions are looked at: a streamed report that keeps few snapshots
    /// copies only those.
    pub fn kept_of(&self, s: &Snapshot, intervals: Option<&Intervals>, index: &mut u64) -> Option<Snapshot> {
        match self.selects_before_regions(s, index) {
            Some(false) => None,
            Some(true) => {
                let mut s = s.clone();
                self.apply_to_regions(&mut s, intervals);
                self.apply_temperature(&mut s, intervals);
                Some(s)
            }
            None => {
                let mut s = s.clone();
                self.apply_snapshot(&mut s, intervals, index).then_some(s)
            }
        }
    }

    /// The access pattern and address filters.
    fn apply_to_regions(&self, s: &mut Snapshot, intervals: Option<&Intervals>) {
        s.total_bytes.get_or_insert_with(|| total_bytes(&s.regions));
        // Like damo: access rate and age filter only when the intervals are known, and this
        // filter leaves `total_bytes` as it was.
        s.regions.retain(|r| self.pattern_keeps(r, intervals));
        if let Some(ranges) = &self.address {
            s.regions = clip_to(&s.regions, ranges);
            s.total_bytes = Some(total_bytes(&s.regions));
        }
    }

    /// The snapshot filters: size, time and index.
    fn selects(&self, s: &Snapshot, index: &mut u64) -> bool {
        if let Some(ranges) = &self.sz_snapshot {
            if !ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&s.total_bytes.unwrap_or(0))) {
                return false;
            }
        }
        if let Some(ranges) = &self.snapshot_time {
            if !ranges.iter().any(|&(lo, hi)| s.start_ns >= lo && s.end_ns <= hi) {
                return false;
            }
        }
        if let Some(ranges) = &self.snapshot_idx {
            *index += 1;
            if !ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&(*index - 1))) {
                return false;
            }
        }
        true
    }

    fn apply_temperature(&self, s: &mut Snapshot, intervals: Option<&Intervals>) {
        if let (Some(ranges), Some(intervals)) = (&self.temperature, intervals) {
            s.regions.retain(|r| {
                let t = temperature(r, intervals, self.temperature_weights);
                ranges.iter().any(|&(lo, hi)| i128::from(lo) <= t && t <= i128::from(hi))
            });
            s.total_bytes = Some(total_bytes(&s.regions));
        }
    }

    fn pattern_keeps(&self, r: &Region, intervals: Option<&Intervals>) -> bool {
        let size = r.size();
        if size < self.sz_region.0 || self.sz_region.1 < size {
            return false;
        }
        let Some(intervals) = intervals else { return true };
        let rate = access_rate_percent(r.nr_accesses, intervals) as f64;
        if rate < self.access_rate.0 || self.access_rate.1 < rate {
            return false;
        }
        // An unknown age passes (damo fails on it).
        let Some(_) = r.age else { return true };
        let age = age_us(r, intervals);
        self.age_us.0 <= age && age <= self.age_us.1
    }
}

pub fn total_bytes(regions: &[Region]) -> u64 {
    regions.iter().map(Region::size).sum()
}

/// The parts of `regions` inside any of `ranges`.
fn clip_to(regions: &[Region], ranges: &[Range<u64>]) -> Vec<Region> {
    let mut out = Vec::with_capacity(regions.len());
    for r in regions {
        for &(start, end) in ranges {
            if r.end <= start || end <= r.start {
                continue;
            }
            out.push(Region { start: r.start.max(start), end: r.end.min(end), ..*r });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use damo_record::model::{Snapshot, TargetRecord};

    fn region(start: u64, end: u64, nr_accesses: u32, age: u32) -> Region {
        Region { start, end, nr_accesses, age: Some(age) }
    }

    fn record(intervals: Option<Intervals>) -> Record {
        let snapshot =
            |i: u64| Snapshot { start_ns: i * 100, end_ns: (i + 1) * 100, regions: vec![region(0, 4096, 0, 10), region(4096, 12288, 10, 2), region(12288, 16384, 20, 0)], total_bytes: None };
        Record { targets: vec![TargetRecord { intervals, snapshots: (0..4).map(snapshot).collect(), ..Default::default() }], ..Default::default() }
    }

    const INTERVALS: Intervals = Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 };

    #[test]
    fn access_rate_is_truncated_whole_percent() {
        assert_eq!(access_rate_percent(10, &INTERVALS), 50);
        let odd = Intervals { sample_us: 3, aggr_us: 10, ..INTERVALS };
        assert_eq!(access_rate_percent(1, &odd), 30, "1 of 3.33 samples is 30.0%, not 30.03");
    }

    #[test]
    fn access_rate_and_age_filter_only_with_intervals() {
        let f = RecordFilter { access_rate: (50.0, 100.0), age_us: (0, 300_000), ..Default::default() };
        let mut with = record(Some(INTERVALS));
        f.apply(&mut with);
        let kept: Vec<_> = with.targets[0].snapshots[0].regions.iter().map(|r| r.start).collect();
        assert_eq!(kept, [4096, 12288]);
        assert_eq!(with.targets[0].snapshots[0].total_bytes, Some(16384), "damo keeps the total");
        let mut without = record(None);
        f.apply(&mut without);
        assert_eq!(without.targets[0].snapshots[0].regions.len(), 3);
    }

    #[test]
    fn address_clips_and_snapshot_filters_count_after_time() {
        let f = RecordFilter { address: Some(vec![(2048, 6144)]), snapshot_time: Some(vec![(100, 400)]), snapshot_idx: Some(vec![(1, 1)]), ..Default::default() };
        let mut r = record(Some(INTERVALS));
        f.apply(&mut r);
        let snaps = &r.targets[0].snapshots;
        assert_eq!(snaps.len(), 1);
        assert_eq!(snaps[0].start_ns, 200, "index 1 of the snapshots left by the time filter");
        let ranges: Vec<_> = snaps[0].regions.iter().map(|r| (r.start, r.end)).collect();
        assert_eq!(ranges, [(2048, 4096), (4096, 6144)]);
        assert_eq!(snaps[0].total_bytes, Some(4096));
    }

    #[test]
    fn temperature_is_negative_when_cold() {
        let r = region(0, 4096, 0, 10);
        assert_eq!(temperature(&r, &INTERVALS, [0, 100, 100]), -100_000_000);
        let hot = region(0, 4096, 10, 1);
        assert_eq!(temperature(&hot, &INTERVALS, [0, 100, 100]), 50 * 100 + 100_000 * 100);
    }
}
