//! `report phases`: splits a record into access phases.
//!
//! Each snapshot becomes a vector of how hot each of `BUCKETS` equal slices of the target's
//! address space is (gaps between mappings left out, so slices land on memory). Phases are
//! found by binary segmentation: split the run of snapshots where the split most reduces the
//! squared distance of snapshots to their segment's mean, keep splitting while a split gains
//! more than a penalty, like the BIC of a piecewise-constant model. The penalty scales with
//! the noise, estimated from consecutive snapshots' differences, so a steady workload with
//! noisy samples stays one phase and a real change of the hot set splits. Neighbouring
//! phases whose mean hot sets still point the same way (cosine similarity ≥ 0.9: the same
//! memory, only hotter or colder, as while DAMON adapts its regions) are joined again.

use damo_record::model::{Record, Snapshot, TargetRecord};

pub const BUCKETS: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Snapshot indices `[first, last]` in the target.
    pub first: usize,
    pub last: usize,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Mean bytes of regions with any access.
    pub mean_wss: u64,
    /// The hottest address ranges, hottest first: (start, end, mean access rate 0..1).
    pub hot_ranges: Vec<(u64, u64, f64)>,
}

#[derive(Debug, Clone, Copy)]
pub struct PhaseOptions {
    /// The shortest phase, in snapshots.
    pub min_snapshots: usize,
    pub max_phases: usize,
    /// Multiplies the split penalty: higher finds fewer phases.
    pub sensitivity_penalty: f64,
}

impl Default for PhaseOptions {
    fn default() -> Self {
        Self { min_snapshots: 5, max_phases: 12, sensitivity_penalty: 1.0 }
    }
}

/// The address space slices: the union of all regions' extents with the gaps cut out.
struct Space {
    /// Covered intervals, sorted, with the linear offset where each starts.
    spans: Vec<(u64, u64, u64)>,
    total: u64,
}

impl Space {
    fn new(target: &TargetRecord) -> Self {
        let mut extents: Vec<(u64, u64)> = target.snapshots.iter().flat_map(|s| s.regions.iter().map(|r| (r.start, r.end))).collect();
        extents.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (s, e) in extents {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        let mut offset = 0;
        let spans = merged
            .into_iter()
            .map(|(s, e)| {
                let span = (s, e, offset);
                offset += e - s;
                span
            })
            .collect();
        Self { spans, total: offset }
    }

    /// Adds `weight` per byte of `[start, end)` into the buckets it covers.
    fn add(&self, v: &mut [f64], start: u64, end: u64, weight: f64) {
        let i = self.spans.partition_point(|&(_, e, _)| e <= start);
        for &(s, e, off) in &self.spans[i..] {
            if s >= end {
                break;
            }
            let (a, b) = (start.max(s) - s + off, end.min(e) - s + off);
            let width = self.total as f64 / BUCKETS as f64;
            let (mut pos, stop) = (a as f64, b as f64);
            while pos < stop {
                let bucket = ((pos / width) as usize).min(BUCKETS - 1);
                let bucket_end = ((bucket + 1) as f64 * width).min(stop);
                v[bucket] += (bucket_end - pos) / width * weight;
                pos = bucket_end.max(pos + 1.0);
            }
        }
    }

    /// The address range of a bucket: its part in the mapping that holds its middle (a
    /// bucket may straddle the gap between two mappings).
    fn bucket_range(&self, bucket: usize) -> (u64, u64) {
        let width = self.total as f64 / BUCKETS as f64;
        let (lo, hi) = ((bucket as f64 * width) as u64, (((bucket + 1) as f64 * width) as u64).max(1));
        let mid = lo + (hi - lo) / 2;
        let i = self.spans.partition_point(|&(s, e, off)| off + (e - s) <= mid).min(self.spans.len().saturating_sub(1));
        let (s, e, off) = self.spans[i];
        let len = e - s;
        (s + lo.saturating_sub(off).min(len), s + hi.saturating_sub(off).min(len))
    }
}

fn features(target: &TargetRecord, space: &Space) -> Vec<[f64; BUCKETS]> {
    let max = target.intervals.map(|i| i.max_nr_accesses()).filter(|&m| m > 0).unwrap_or_else(|| {
        target.snapshots.iter().flat_map(|s| &s.regions).map(|r| u64::from(r.nr_accesses)).max().unwrap_or(1).max(1)
    }) as f64;
    target
        .snapshots
        .iter()
        .map(|s| {
            let mut v = [0.0; BUCKETS];
            for r in s.regions.iter().filter(|r| r.nr_accesses > 0) {
                space.add(&mut v, r.start, r.end, (f64::from(r.nr_accesses) / max).min(1.0));
            }
            v
        })
        .collect()
}

/// Prefix sums for O(BUCKETS) segment costs.
struct Prefix {
    sum: Vec<[f64; BUCKETS]>,
    sq: Vec<f64>,
}

impl Prefix {
    fn new(x: &[[f64; BUCKETS]]) -> Self {
        let mut sum = vec![[0.0; BUCKETS]; x.len() + 1];
        let mut sq = vec![0.0; x.len() + 1];
        for (t, v) in x.iter().enumerate() {
            for b in 0..BUCKETS {
                sum[t + 1][b] = sum[t][b] + v[b];
            }
            sq[t + 1] = sq[t] + v.iter().map(|a| a * a).sum::<f64>();
        }
        Self { sum, sq }
    }

    /// Σ‖x_t − mean‖² over `[a, b)`.
    fn cost(&self, a: usize, b: usize) -> f64 {
        let n = (b - a) as f64;
        let s: f64 = (0..BUCKETS).map(|k| (self.sum[b][k] - self.sum[a][k]).powi(2)).sum();
        (self.sq[b] - self.sq[a]) - s / n
    }
}

/// Splits the target's snapshots into phases.
pub fn segment(target: &TargetRecord, o: &PhaseOptions) -> Vec<Phase> {
    let n = target.snapshots.len();
    if n == 0 {
        return Vec::new();
    }
    let space = Space::new(target);
    let x = features(target, &space);
    let prefix = Prefix::new(&x);
    // Noise: half the median squared step between consecutive snapshots, per bucket.
    let mut steps: Vec<f64> = x.windows(2).map(|w| w[0].iter().zip(&w[1]).map(|(a, b)| (a - b).powi(2)).sum()).collect();
    steps.sort_by(f64::total_cmp);
    let noise = steps.get(steps.len() / 2).copied().unwrap_or(0.0) / 2.0;
    let penalty = o.sensitivity_penalty * (noise.max(1e-3) * 2.0 * (n as f64).ln().max(1.0) + 0.5);
    let min = o.min_snapshots.max(1);
    let mut cuts = vec![0, n];
    loop {
        if cuts.len() > o.max_phases {
            break;
        }
        let best = cuts
            .windows(2)
            .filter_map(|w| {
                let (a, b) = (w[0], w[1]);
                let whole = prefix.cost(a, b);
                (a + min..=b.saturating_sub(min)).map(|k| (whole - prefix.cost(a, k) - prefix.cost(k, b), k)).max_by(|p, q| p.0.total_cmp(&q.0))
            })
            .max_by(|p, q| p.0.total_cmp(&q.0));
        match best {
            Some((gain, k)) if gain > penalty => {
                let at = cuts.partition_point(|&c| c < k);
                cuts.insert(at, k);
            }
            _ => break,
        }
    }
    // A split must change what is hot, not only how hot: neighbours whose mean hot sets
    // point the same way (DAMON still adapting its regions, a rate drifting) join again.
    let mean = |a: usize, b: usize| -> Vec<f64> { (0..BUCKETS).map(|k| (prefix.sum[b][k] - prefix.sum[a][k]) / (b - a) as f64).collect() };
    let mut i = 1;
    while i + 1 < cuts.len() {
        if cosine(&mean(cuts[i - 1], cuts[i]), &mean(cuts[i], cuts[i + 1])) >= SAME_HOT_SET {
            cuts.remove(i);
        } else {
            i += 1;
        }
    }
    cuts.windows(2).map(|w| describe(target, &space, &x, w[0], w[1])).collect()
}

/// Cosine similarity of two phases' mean hot sets above which they are one phase.
const SAME_HOT_SET: f64 = 0.9;

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    match norm(a) * norm(b) {
        0.0 => if norm(a) == norm(b) { 1.0 } else { 0.0 },
        n => dot / n,
    }
}

fn describe(target: &TargetRecord, space: &Space, x: &[[f64; BUCKETS]], a: usize, b: usize) -> Phase {
    let snaps: &[Snapshot] = &target.snapshots[a..b];
    let wss: u128 = snaps.iter().map(|s| s.regions.iter().filter(|r| r.nr_accesses > 0).map(|r| u128::from(r.size())).sum::<u128>()).sum();
    let mut mean = [0.0; BUCKETS];
    for v in &x[a..b] {
        for k in 0..BUCKETS {
            mean[k] += v[k] / (b - a) as f64;
        }
    }
    // Runs of adjacent hot buckets become ranges, ranked by their mean heat.
    let mut ranges: Vec<(u64, u64, f64)> = Vec::new();
    let mut k = 0;
    while k < BUCKETS {
        if mean[k] < 0.05 {
            k += 1;
            continue;
        }
        let start = k;
        while k + 1 < BUCKETS && mean[k + 1] >= 0.05 && space.bucket_range(k).1 == space.bucket_range(k + 1).0 {
            k += 1;
        }
        let heat = mean[start..=k].iter().sum::<f64>() / (k - start + 1) as f64;
        ranges.push((space.bucket_range(start).0, space.bucket_range(k).1, heat));
        k += 1;
    }
    ranges.sort_by(|p, q| q.2.total_cmp(&p.2));
    ranges.truncate(3);
    Phase {
        first: a,
        last: b - 1,
        start_ns: snaps[0].start_ns,
        end_ns: snaps[snaps.len() - 1].end_ns,
        mean_wss: (wss / (b - a) as u128) as u64,
        hot_ranges: ranges,
    }
}

/// The target phases are computed for: the one with the most snapshots.
pub fn main_target(record: &Record) -> Option<&TargetRecord> {
    record.targets.iter().max_by_key(|t| t.snapshots.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use damo_record::model::{Intervals, Region};

    /// Three phases of 30 snapshots, each with a different hot quarter of a 4-region space,
    /// with noise: some cold regions see an access now and then.
    fn planted() -> TargetRecord {
        let mut snapshots = Vec::new();
        let mut noise = 7u64;
        for i in 0..90u64 {
            let hot = i / 30;
            let regions = (0..4u64)
                .map(|r| {
                    noise = noise.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let n = if r == hot { 15 + (noise >> 60) as u32 % 5 } else if noise >> 62 == 0 { 1 } else { 0 };
                    Region { start: 0x1000_0000 + r * 0x100_0000, end: 0x1000_0000 + (r + 1) * 0x100_0000, nr_accesses: n, age: Some(0) }
                })
                .collect();
            snapshots.push(Snapshot { start_ns: i * 100_000_000, end_ns: (i + 1) * 100_000_000, regions, total_bytes: None });
        }
        TargetRecord { intervals: Some(Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 }), snapshots, ..Default::default() }
    }

    #[test]
    fn finds_the_planted_phases_and_their_hot_ranges() {
        let phases = segment(&planted(), &PhaseOptions::default());
        let spans: Vec<(usize, usize)> = phases.iter().map(|p| (p.first, p.last)).collect();
        assert_eq!(spans, [(0, 29), (30, 59), (60, 89)]);
        for (i, p) in phases.iter().enumerate() {
            let (start, end, heat) = p.hot_ranges[0];
            let region_start = 0x1000_0000 + i as u64 * 0x100_0000;
            assert!(start >= region_start && end <= region_start + 0x100_0000, "phase {i}: hottest {start:#x}-{end:#x}");
            assert!(heat > 0.7, "phase {i}: heat {heat}");
            assert_eq!(p.mean_wss / 0x100_0000, 1, "one hot region, plus noise");
        }
    }

    #[test]
    fn hotter_or_colder_on_the_same_memory_is_one_phase() {
        let mut t = planted();
        t.snapshots.truncate(30);
        for (i, s) in t.snapshots.iter_mut().enumerate() {
            for r in &mut s.regions {
                if r.nr_accesses >= 15 && i < 15 {
                    r.nr_accesses = 8; // DAMON still adapting: the same region, less hot
                }
            }
        }
        assert_eq!(segment(&t, &PhaseOptions::default()).len(), 1);
    }

    #[test]
    fn a_steady_noisy_record_is_one_phase() {
        let mut t = planted();
        t.snapshots.truncate(30);
        assert_eq!(segment(&t, &PhaseOptions::default()).len(), 1);
        assert!(segment(&TargetRecord::default(), &PhaseOptions::default()).is_empty());
    }
}
