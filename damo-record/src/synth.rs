//! Synthetic but DAMON-like records, for benchmarks, differential tests and fuzz seeds:
//! regions that split and merge, hot spots that move between phases, ages that grow while a
//! region's access rate holds and reset when it changes — as DAMON's own regions behave.

use crate::model::{Intervals, Record, Region, Snapshot, TargetRecord};

#[derive(Debug, Clone, Copy)]
pub struct SynthSpec {
    pub targets: usize,
    pub snapshots_per_target: usize,
    /// Regions per snapshot (about: splits and merges move it a little).
    pub regions: usize,
    pub seed: u64,
}

pub const INTERVALS: Intervals = Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 };

/// xorshift64*: deterministic, dependency-free, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

pub fn record(spec: SynthSpec) -> Record {
    let mut rng = Rng(spec.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let targets = (0..spec.targets).map(|t| target(spec, t, &mut rng)).collect();
    Record { targets, ..Default::default() }
}

fn target(spec: SynthSpec, t: usize, rng: &mut Rng) -> TargetRecord {
    let max = INTERVALS.max_nr_accesses() as u32;
    let base = 0x5555_0000_0000u64 + ((t as u64) << 40);
    let mut bounds = vec![base];
    for _ in 0..spec.regions.max(1) {
        let scale = rng.below(14);
        let pages = 1 + rng.below(1 << scale);
        bounds.push(bounds[bounds.len() - 1] + pages * 4096);
    }
    let mut state: Vec<(u32, u32)> = vec![(0, 0); spec.regions.max(1)];
    let mut snapshots = Vec::with_capacity(spec.snapshots_per_target);
    let start = 100_000_000_000u64 + t as u64 * 1_000;
    for i in 0..spec.snapshots_per_target {
        reshape(&mut bounds, &mut state, rng);
        let n = state.len();
        // A hot window that jumps to a new place every phase.
        let phase = i / 50;
        let mut phase_rng = Rng((phase as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1) ^ t as u64);
        let hot_start = phase_rng.below(n as u64) as usize;
        let hot_len = 1 + phase_rng.below((n / 8).max(1) as u64) as usize;
        let mut regions = Vec::with_capacity(n);
        for (r, st) in state.iter_mut().enumerate() {
            let hot = (r + n - hot_start) % n < hot_len;
            let nr = if hot {
                max - rng.below(u64::from(max / 4) + 1) as u32
            } else if rng.below(10) == 0 {
                rng.below(3) as u32
            } else {
                0
            };
            st.1 = if nr.abs_diff(st.0) <= max / 10 { st.1 + 1 } else { 0 };
            st.0 = nr;
            regions.push(Region { start: bounds[r], end: bounds[r + 1], nr_accesses: nr, age: Some(st.1) });
        }
        let end_ns = start + (i as u64 + 1) * INTERVALS.aggr_us * 1_000;
        snapshots.push(Snapshot { start_ns: end_ns - INTERVALS.aggr_us * 1_000, end_ns, regions, total_bytes: None });
    }
    TargetRecord { kdamond_idx: 0, context_idx: 0, scheme_idx: None, target_id: t as u64, intervals: Some(INTERVALS), snapshots }
}

/// Splits a few regions and merges as many neighbours, like DAMON's adaptation.
fn reshape(bounds: &mut Vec<u64>, state: &mut Vec<(u32, u32)>, rng: &mut Rng) {
    let changes = 1 + state.len() / 100;
    for _ in 0..changes {
        let r = rng.below(state.len() as u64) as usize;
        let (lo, hi) = (bounds[r], bounds[r + 1]);
        let pages = (hi - lo) / 4096;
        if pages < 2 {
            continue;
        }
        bounds.insert(r + 1, lo + (1 + rng.below(pages - 1)) * 4096);
        state.insert(r + 1, state[r]);
        if state.len() > 2 {
            let m = rng.below(state.len() as u64 - 1) as usize;
            bounds.remove(m + 1);
            let merged = (state[m].0.max(state[m + 1].0), state[m].1.min(state[m + 1].1));
            state[m] = merged;
            state.remove(m + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_sorted_disjoint_and_hot_spots_exist() {
        let rec = record(SynthSpec { targets: 2, snapshots_per_target: 120, regions: 200, seed: 7 });
        assert_eq!(rec.targets.len(), 2);
        for t in &rec.targets {
            assert_eq!(t.snapshots.len(), 120);
            for s in &t.snapshots {
                assert!(s.regions.windows(2).all(|w| w[0].end == w[1].start && w[0].start < w[0].end));
                assert!(s.regions.len().abs_diff(200) <= 10);
                assert!(s.regions.iter().any(|r| r.nr_accesses >= 15), "a hot window in every snapshot");
            }
        }
        assert_eq!(rec, record(SynthSpec { targets: 2, snapshots_per_target: 120, regions: 200, seed: 7 }), "deterministic");
    }
}
