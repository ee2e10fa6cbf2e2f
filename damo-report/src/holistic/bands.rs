//! Which address ranges the page's heatmap draws: where the accesses were, not the whole
//! monitored span. A vaddr target's span often covers hundreds of GiB between the mappings
//! and the stack, where a few hot MiB would be a line too thin to see.

use std::{cmp::Reverse, collections::BTreeMap};

use damo_record::model::{Record, Snapshot, TargetRecord};

use crate::{
    accumulate::{slot, Accumulate},
    heatmap::{self, guide::GuideRegion, Guide, Request},
};

const PAGE_MASK: u64 = 4096 - 1;

/// Disjoint components at most: past it the closest neighbours merge early, so a record of
/// any length (a day of scattered hot pages) keeps the builder's memory bounded.
const MAX_COMPONENTS: usize = 1 << 16;

/// The busiest region's `nr_accesses` over `snapshots`: regions with at least a tenth of it
/// are hot ([`BandBuilder::new`]).
pub fn busiest<'a>(snapshots: impl IntoIterator<Item = &'a Snapshot>) -> u32 {
    snapshots.into_iter().flat_map(|s| &s.regions).map(|r| r.nr_accesses).max().unwrap_or(0)
}

/// A target's hot bands, gathered a snapshot at a time from a record in memory or streamed
/// from its file (the state is the hot address ranges, not the snapshots): hot regions that
/// overlap or touch are one component, whose heat is the sum of theirs, in integers, so the
/// answer does not depend on the order regions come in.
#[derive(Debug)]
pub struct BandBuilder {
    threshold: u32,
    /// start → (end, heat), disjoint and not touching.
    components: BTreeMap<u64, (u64, u128)>,
}

impl BandBuilder {
    /// For a target whose busiest region had `busiest` accesses; `None` when that is 0
    /// (nothing was accessed: no band).
    pub fn new(busiest: u32) -> Option<BandBuilder> {
        (busiest > 0).then(|| BandBuilder { threshold: (busiest / 10).max(1), components: BTreeMap::new() })
    }

    /// Adds a snapshot's hot regions (in address order): each run of touching hot regions is
    /// added at once, usually into a component that already holds it.
    pub fn add(&mut self, snap: &Snapshot) {
        let ns = u128::from(snap.end_ns.saturating_sub(snap.start_ns).max(1));
        let threshold = self.threshold;
        let mut run: Option<(u64, u64, u128)> = None;
        for r in snap.regions.iter().filter(|r| r.nr_accesses >= threshold && r.end > r.start) {
            let heat = u128::from(r.end - r.start).saturating_mul(u128::from(r.nr_accesses)).saturating_mul(ns);
            run = match run {
                Some((start, end, sum)) if r.start <= end => Some((start, end.max(r.end), sum.saturating_add(heat))),
                Some(done) => {
                    self.insert(done);
                    Some((r.start, r.end, heat))
                }
                None => Some((r.start, r.end, heat)),
            };
        }
        if let Some(done) = run {
            self.insert(done);
        }
    }

    /// Adds `[start, end)` with `heat`, merging the components it overlaps or touches.
    fn insert(&mut self, (mut start, mut end, mut heat): (u64, u64, u128)) {
        if let Some((&s, &mut (e, ref mut h))) = self.components.range_mut(..=start).next_back() {
            if e >= end {
                *h = h.saturating_add(heat);
                return;
            }
            if e >= start {
                start = s;
            }
        }
        // The components starting inside it, taken out one at a time (no list to allocate).
        while let Some(s) = self.components.range(start..=end).next().map(|(&s, _)| s) {
            let (e, h) = self.components.remove(&s).expect("just found");
            end = end.max(e);
            heat = heat.saturating_add(h);
        }
        self.components.insert(start, (end, heat));
        if self.components.len() > MAX_COMPONENTS {
            self.coarsen();
        }
    }

    /// Halves the components by merging each with its right neighbour where the gap between
    /// them is at most the median gap.
    fn coarsen(&mut self) {
        let list: Vec<(u64, u64, u128)> = std::mem::take(&mut self.components).into_iter().map(|(s, (e, h))| (s, e, h)).collect();
        let mut gaps: Vec<u64> = list.windows(2).map(|w| w[1].0 - w[0].1).collect();
        let middle = gaps.len() / 2;
        let median = *gaps.select_nth_unstable(middle).1;
        let mut merged: Vec<(u64, u64, u128)> = Vec::with_capacity(list.len() / 2 + 1);
        for c in list {
            match merged.last_mut() {
                Some(last) if c.0 - last.1 <= median => {
                    last.1 = c.1;
                    last.2 = last.2.saturating_add(c.2);
                }
                _ => merged.push(c),
            }
        }
        self.components = merged.into_iter().map(|(s, e, h)| (s, (e, h))).collect();
    }

    /// The hottest bands, at most `max`, highest addresses first: neighbouring components
    /// apart by less than a quarter of the smaller one are one band; bands are ranked by
    /// accesses × bytes × time and padded by a twentieth of their size (out to whole pages,
    /// so the axis reads in round addresses).
    pub fn finish(self, max: usize) -> Vec<(u64, u64)> {
        let mut merged: Vec<(u64, u64, u128)> = Vec::new();
        for (start, (end, heat)) in self.components {
            match merged.last_mut() {
                Some(last) if start <= last.1.saturating_add((last.1 - last.0).min(end - start) / 4) => {
                    last.1 = end;
                    last.2 = last.2.saturating_add(heat);
                }
                _ => merged.push((start, end, heat)),
            }
        }
        // Stable: equally hot bands keep their address order.
        merged.sort_by_key(|b| Reverse(b.2));
        merged.truncate(max);
        let mut bands: Vec<(u64, u64)> = merged
            .into_iter()
            .map(|(start, end, _)| {
                let pad = (end - start) / 20;
                (start.saturating_sub(pad) & !PAGE_MASK, end.saturating_add(pad).saturating_add(PAGE_MASK) & !PAGE_MASK)
            })
            .collect();
        bands.sort_by_key(|&(start, _)| Reverse(start));
        bands
    }
}

/// Per target (by index), its snapshots and its busiest region's `nr_accesses`: what picks
/// the target whose bands are drawn and their threshold, in the pass before them.
#[derive(Debug, Default)]
pub struct BandTally {
    targets: Vec<Option<(usize, u32)>>,
}

impl BandTally {
    pub fn snapshots(&self, index: usize) -> usize {
        self.targets.get(index).copied().flatten().map_or(0, |t| t.0)
    }

    pub fn busiest(&self, index: usize) -> u32 {
        self.targets.get(index).copied().flatten().map_or(0, |t| t.1)
    }

    /// What pushing every snapshot leaves, from what they add up to (by target index).
    pub fn of_summaries(summaries: &[damo_record::summary::TargetSummary]) -> Self {
        BandTally { targets: summaries.iter().map(|s| Some((usize::try_from(s.snapshots).unwrap_or(usize::MAX), s.busiest))).collect() }
    }
}

impl Accumulate for BandTally {
    fn push(&mut self, index: usize, _target: &TargetRecord, snapshot: &Snapshot) {
        let t = slot(&mut self.targets, index, || (0, 0));
        t.0 += 1;
        t.1 = t.1.max(busiest([snapshot]));
    }
}

/// The bands of one target (by index) of a record fed snapshot by snapshot.
pub struct TargetBands {
    pub index: usize,
    pub builder: BandBuilder,
}

impl Accumulate for TargetBands {
    fn push(&mut self, index: usize, _target: &TargetRecord, snapshot: &Snapshot) {
        if index == self.index {
            self.builder.add(snapshot);
        }
    }
}

/// The hottest address ranges of `target`, at most `max`, highest addresses first (see
/// [`BandBuilder`]): regions accessed in at least a tenth of the busiest region's samples,
/// merged where they touch or nearly do. Empty when nothing was accessed.
pub fn hot_bands(target: &TargetRecord, max: usize) -> Vec<(u64, u64)> {
    let Some(mut builder) = BandBuilder::new(busiest(&target.snapshots)) else { return Vec::new() };
    for s in &target.snapshots {
        builder.add(s);
    }
    builder.finish(max)
}

/// Address ranges drawn at most (the hottest); DAMON's vaddr ops monitor three.
pub const MAX_BANDS: usize = 3;

/// Heatmap cells along time on the page (about 3.5 px each).
const TIME_CELLS: u64 = 250;

/// The address ranges the page draws, highest first as on an address axis: the hot bands,
/// or when nothing was accessed, the contiguous ranges of the heatmap's guide (the hottest,
/// at most [`MAX_BANDS`]).
pub fn drawn(record: &Record, perf: bool, target: &TargetRecord) -> Vec<(u64, u64)> {
    let hot = hot_bands(target, MAX_BANDS);
    if !hot.is_empty() {
        return hot;
    }
    let sources = heatmap::sources(record, perf);
    let outline = heatmap::guide::outlines(&sources).into_iter().find(|g| g.matches(target));
    outline.map_or_else(Vec::new, |g| guide_ranges(&heatmap::guide::heated(g, &sources)))
}

/// What [`drawn`] draws when nothing was hot: the hottest contiguous ranges of the target's
/// guide (`guide` with its heats), at most [`MAX_BANDS`], highest first.
pub fn guide_ranges(guide: &Guide) -> Vec<(u64, u64)> {
    let mut ranges: Vec<&GuideRegion> = guide.contig_regions.iter().collect();
    ranges.sort_by_key(|r| Reverse(r.heats.unwrap_or(0)));
    ranges.truncate(ranges.iter().filter(|r| r.heats.is_some_and(|h| h > 0)).count().clamp(1, MAX_BANDS));
    ranges.sort_by_key(|r| Reverse(r.start));
    ranges.iter().map(|r| (r.start, r.end)).collect()
}

/// The page's heatmaps: `target`'s [`drawn`] ranges over its whole time, one map each.
/// `target` has snapshots.
pub fn heatmap_request(record: &Record, perf: bool, target: &TargetRecord) -> Request {
    let snaps = &target.snapshots;
    let span_ns = snaps[snaps.len() - 1].end_ns.saturating_sub(snaps[0].start_ns);
    request_for(target, span_ns, &drawn(record, perf, target))
}

/// [`heatmap_request`] of `target`, whose snapshots span `span_ns`, drawing `ranges`.
pub fn request_for(target: &TargetRecord, span_ns: u64, ranges: &[(u64, u64)]) -> Request {
    Request {
        kdamond_idx: Some(target.kdamond_idx),
        context_idx: Some(target.context_idx),
        scheme_idx: target.scheme_idx,
        tid: Some(target.target_id),
        // A cell must span at least a nanosecond.
        resol: (TIME_CELLS.min(span_ns / 2).max(1) as usize, super::address_cells(ranges.len())),
        address_ranges: (!ranges.is_empty()).then(|| ranges.iter().map(|&(s, e)| vec![s.to_string(), e.to_string()]).collect()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use damo_record::model::{Region, Snapshot};

    use super::*;

    fn snapshot(t: u64, regions: &[(u64, u64, u32)]) -> Snapshot {
        let regions = regions.iter().map(|&(start, end, nr_accesses)| Region { start, end, nr_accesses, age: None }).collect();
        Snapshot { start_ns: t * 100_000_000, end_ns: (t + 1) * 100_000_000, regions, total_bytes: None }
    }

    #[test]
    fn bands_are_the_accessed_ranges_not_the_monitored_span() {
        const MIB: u64 = 1 << 20;
        const GIB: u64 = 1 << 30;
        let base = 0x7f00_0000_0000;
        // A 300 GiB span: two hot buffers next to each other, a lukewarm one far above,
        // and a huge region that only ever got one access (under the threshold).
        let target = TargetRecord {
            snapshots: (0..10)
                .map(|t| snapshot(t, &[(base, base + 64 * MIB, 20), (base + 64 * MIB, base + 96 * MIB, 15), (base + 96 * MIB, base + 300 * GIB, 1), (base + 300 * GIB, base + 300 * GIB + 8 * MIB, 5)]))
                .collect(),
            ..Default::default()
        };
        let bands = hot_bands(&target, 3);
        // Padded by a twentieth (409.6 KiB and 4.8 MiB), out to whole pages.
        let (far, near) = ((base + 0x4a_fff9_9000, base + 0x4b_0086_7000), (base - 5_033_984, base + 0x64c_d000));
        assert_eq!(bands, [far, near]);
        assert_eq!(hot_bands(&target, 1), [near], "the hottest band alone");
        let cold = TargetRecord { snapshots: vec![snapshot(0, &[(base, base + MIB, 0)])], ..Default::default() };
        assert!(hot_bands(&cold, 3).is_empty());
    }

    #[test]
    fn bands_do_not_depend_on_the_order_snapshots_come_in() {
        const MIB: u64 = 1 << 20;
        let snaps: Vec<Snapshot> = (0..40u64)
            .map(|t| {
                let lo = (t % 7) * MIB;
                snapshot(t, &[(lo, lo + 3 * MIB, 9 + (t % 3) as u32), (lo + 3 * MIB, 64 * MIB, 0), (64 * MIB + t * 4096, 65 * MIB + t * 4096, 12)])
            })
            .collect();
        let forward = TargetRecord { snapshots: snaps.clone(), ..Default::default() };
        let backward = TargetRecord { snapshots: snaps.into_iter().rev().collect(), ..Default::default() };
        assert_eq!(hot_bands(&forward, 3), hot_bands(&backward, 3));
        assert_eq!(hot_bands(&forward, 3).len(), 2, "{:?}", hot_bands(&forward, 3));
    }

    /// Hot pages scattered over a day of snapshots: the builder keeps at most
    /// MAX_COMPONENTS components, however many it was given.
    #[test]
    fn scattered_hot_pages_keep_the_builder_bounded() {
        let mut builder = BandBuilder::new(10).unwrap();
        for t in 0..(3 * MAX_COMPONENTS as u64 / 500) {
            let regions: Vec<(u64, u64, u32)> = (0..500).map(|i| ((t * 500 + i) * 3 * 4096, ((t * 500 + i) * 3 + 1) * 4096, 10)).collect();
            builder.add(&snapshot(t, &regions));
            assert!(builder.components.len() <= MAX_COMPONENTS);
        }
        let bands = builder.finish(3);
        assert!(!bands.is_empty() && bands.len() <= 3, "{bands:?}");
    }
}
