//! Which address ranges the page's heatmap draws: where the accesses were, not the whole
//! monitored span. A vaddr target's span often covers hundreds of GiB between the mappings
//! and the stack, where a few hot MiB would be a line too thin to see.

use std::cmp::Reverse;

use damo_record::model::{Record, TargetRecord};

use crate::heatmap::{self, guide::GuideRegion, Request};

const PAGE_MASK: u64 = 4096 - 1;

/// The hottest address ranges of `target`, at most `max`, highest addresses first: regions
/// accessed in at least a tenth of the busiest region's samples, merged where they touch or
/// nearly do, ranked by accesses × bytes × time, each padded by a twentieth of its size (out
/// to whole pages, so the axis reads in round addresses).
/// Empty when nothing was accessed.
pub fn hot_bands(target: &TargetRecord, max: usize) -> Vec<(u64, u64)> {
    let busiest = target.snapshots.iter().flat_map(|s| &s.regions).map(|r| r.nr_accesses).max().unwrap_or(0);
    if busiest == 0 {
        return Vec::new();
    }
    let threshold = (busiest / 10).max(1);
    let mut hot: Vec<(u64, u64, f64)> = target
        .snapshots
        .iter()
        .flat_map(|s| {
            let secs = s.end_ns.saturating_sub(s.start_ns).max(1) as f64 / 1e9;
            s.regions.iter().filter(|r| r.nr_accesses >= threshold).map(move |r| (r.start, r.end, r.size() as f64 * f64::from(r.nr_accesses) * secs))
        })
        .collect();
    hot.sort_by_key(|&(start, _, _)| start);
    let mut merged: Vec<(u64, u64, f64)> = Vec::new();
    for (start, end, heat) in hot {
        match merged.last_mut() {
            // Touching, or apart by less than a quarter of the smaller one: one band.
            Some(last) if start <= last.1.saturating_add((last.1 - last.0).min(end - start) / 4) => {
                last.1 = last.1.max(end);
                last.2 += heat;
            }
            _ => merged.push((start, end, heat)),
        }
    }
    merged.sort_by(|a, b| b.2.total_cmp(&a.2));
    merged.truncate(max);
    let mut bands: Vec<(u64, u64)> = merged
        .into_iter()
        .map(|(start, end, _)| {
            let pad = (end - start) / 20;
            (start.saturating_sub(pad) & !PAGE_MASK, end.saturating_add(pad).saturating_add(PAGE_MASK) & !PAGE_MASK)
        })
        .collect();
    bands.sort_by_key(|&(start, _)| std::cmp::Reverse(start));
    bands
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
    let guides = heatmap::guide::guides(&heatmap::sources(record, perf));
    let Some(guide) = guides.iter().find(|g| g.matches(target)) else { return Vec::new() };
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
    let ranges = drawn(record, perf, target);
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
}
