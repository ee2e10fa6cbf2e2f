//! `--sort_temperature`: within each address range, regions are laid out coldest first, so
//! the address axis shows how much memory is how hot.

use damo_record::model::{Intervals, Record, Region, Snapshot, TargetRecord};

use super::{pynum::Num, HeatmapError, Maps, Span};
use crate::accumulate::Accumulate;

/// damo's `temperature_of` with no size weight: access rate (%) × `freq_weight` + age (µs)
/// × `age_weight`, negated for regions that were not accessed.
fn temperature(r: &Region, iv: Intervals, (freq_weight, age_weight): (f64, f64)) -> f64 {
    let max_samples = iv.aggr_us as f64 / iv.sample_us as f64;
    let percent = (f64::from(r.nr_accesses) * 100.0 / max_samples).trunc();
    let age_us = u64::from(r.age.unwrap_or(0)) * iv.aggr_us;
    let score = percent * freq_weight + age_us as f64 * age_weight;
    if percent > 0.0 {
        score
    } else {
        -score
    }
}

/// The intervals `--sort_temperature` needs of a target: temperatures are in them.
pub fn intervals_of(target: &TargetRecord) -> Result<Intervals, HeatmapError> {
    target.intervals.filter(|iv| iv.sample_us > 0 && iv.aggr_us > 0).ok_or_else(|| HeatmapError::new("--sort_temperature needs the record's monitoring intervals, and this record has none"))
}

/// The maps' address ranges as whole bytes, where regions are packed.
pub fn byte_ranges(addrs: &[Span]) -> Result<Vec<(u64, u64)>, HeatmapError> {
    addrs
        .iter()
        .map(|(s, e)| match (s, e) {
            (Num::Int(s), Num::Int(e)) => Ok((u64::try_from(*s).unwrap_or(0), u64::try_from(*e).unwrap_or(u64::MAX))),
            _ => Err(HeatmapError::new("--sort_temperature needs whole-byte address ranges")),
        })
        .collect()
}

/// Rewrites every snapshot's regions as [`sort_snapshot`] does.
pub fn sort_by_temperature(record: &mut Record, ranges: &[(u64, u64)], weights: (f64, f64)) -> Result<(), HeatmapError> {
    for t in &mut record.targets {
        let iv = intervals_of(t)?;
        for snap in &mut t.snapshots {
            let mut sorted = Vec::with_capacity(snap.regions.len());
            sort_snapshot(&snap.regions, ranges, iv, weights, &mut sorted);
            snap.regions = sorted;
        }
    }
    Ok(())
}

/// `regions` clipped to each of `ranges`, sorted by temperature and packed from the range's
/// start, into `sorted` (emptied first).
pub fn sort_snapshot(regions: &[Region], ranges: &[(u64, u64)], iv: Intervals, weights: (f64, f64), sorted: &mut Vec<Region>) {
    sorted.clear();
    for &(start, end) in ranges {
        let mut in_range: Vec<(f64, Region)> = regions
            .iter()
            .filter(|r| !(end < r.start || r.end < start))
            .map(|r| {
                let clipped = Region { start: r.start.max(start), end: r.end.min(end), ..*r };
                (temperature(&clipped, iv, weights), clipped)
            })
            .collect();
        in_range.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        let mut next = start;
        for (_, mut r) in in_range {
            let size = r.size();
            r.start = next;
            r.end = next + size;
            next = r.end;
            sorted.push(r);
        }
    }
}

/// Maps of snapshots laid out by temperature, fed a snapshot at a time (a streamed record's).
pub struct SortedMaps {
    pub maps: Maps,
    ranges: Vec<(u64, u64)>,
    weights: (f64, f64),
    sorted: Snapshot,
}

impl SortedMaps {
    /// `maps` of `ranges` (from [`byte_ranges`]), each snapshot's regions sorted by
    /// temperature with `weights`; every target drawn must have intervals ([`intervals_of`]).
    pub fn new(maps: Maps, ranges: Vec<(u64, u64)>, weights: (f64, f64)) -> Self {
        Self { maps, ranges, weights, sorted: Snapshot::default() }
    }
}

impl Accumulate for SortedMaps {
    fn push(&mut self, index: usize, target: &TargetRecord, snapshot: &Snapshot) {
        if !self.maps.draws(target) {
            return;
        }
        let Ok(iv) = intervals_of(target) else { return };
        let Snapshot { start_ns, end_ns, total_bytes, .. } = *snapshot;
        let mut regions = std::mem::take(&mut self.sorted.regions);
        sort_snapshot(&snapshot.regions, &self.ranges, iv, self.weights, &mut regions);
        self.sorted = Snapshot { start_ns, end_ns, regions, total_bytes };
        self.maps.push(index, target, &self.sorted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_regions_go_last() {
        let iv = Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 };
        let regions = vec![Region { start: 0, end: 10, nr_accesses: 20, age: Some(1) }, Region { start: 10, end: 40, nr_accesses: 0, age: Some(5) }];
        let mut rec = Record {
            targets: vec![TargetRecord { intervals: Some(iv), snapshots: vec![Snapshot { start_ns: 0, end_ns: 1, regions, total_bytes: None }], ..Default::default() }],
            ..Default::default()
        };
        sort_by_temperature(&mut rec, &[(5, 40)], (1.0, 1.0)).unwrap();
        let r = &rec.targets[0].snapshots[0].regions;
        assert_eq!((r[0].start, r[0].end, r[0].nr_accesses), (5, 35, 0));
        assert_eq!((r[1].start, r[1].end, r[1].nr_accesses), (35, 40, 20));
    }
}
