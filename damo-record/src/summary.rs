//! What a target's snapshots add up to, in file order: how many there are, when the first
//! and the last were, the busiest region and the address space monitored throughout.
//! A heatmap chooses its target and ranges from this alone: a record ends with it when its
//! writer sums its snapshots as it writes them ([`crate::native::NativeWriter::summarizing`]:
//! the cache's copies, `record`), so a heatmap skips the pass that decoded every target.

use crate::model::Snapshot;

/// One target's snapshots, summed up as they come ([`Self::add`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSummary {
    pub snapshots: u64,
    pub first_start_ns: u64,
    pub first_end_ns: u64,
    pub last_end_ns: u64,
    /// The age of the first snapshot's oldest region (aggregation intervals; unknown is 0).
    pub first_longest_age: u32,
    /// The most accesses any region had.
    pub busiest: u32,
    pub coverage: Coverage,
}

impl TargetSummary {
    /// The summary of one snapshot.
    pub fn new(first: &Snapshot) -> Self {
        let first_longest_age = first.regions.iter().map(|r| r.age.unwrap_or(0)).max().unwrap_or(0);
        let mut summary =
            TargetSummary { snapshots: 0, first_start_ns: first.start_ns, first_end_ns: first.end_ns, last_end_ns: first.end_ns, first_longest_age, busiest: 0, coverage: Coverage::default() };
        summary.add(first);
        summary
    }

    /// Adds the snapshot after the last one added.
    pub fn add(&mut self, snap: &Snapshot) {
        self.snapshots += 1;
        self.last_end_ns = snap.end_ns;
        self.busiest = snap.regions.iter().map(|r| r.nr_accesses).fold(self.busiest, u32::max);
        self.coverage.add(&snap.regions);
    }
}

/// What a target's snapshots monitored, as damo's guide tracks it: the lowest and highest
/// address seen and the gaps between regions that every snapshot had (so what lies between
/// the gaps was monitored throughout). `report heatmap --guide` and `report record_info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// damo treats address 0 as unset, like `None`.
    pub lowest: u64,
    pub highest: u64,
    pub gaps: Vec<(u64, u64)>,
}

impl Coverage {
    /// Adds a snapshot's regions (in address order).
    pub fn add(&mut self, regions: &[crate::model::Region]) {
        let mut gaps = Vec::new();
        let mut last_addr = 0u64;
        for r in regions {
            if self.lowest == 0 || r.start < self.lowest {
                self.lowest = r.start;
            }
            if self.highest == 0 || r.end > self.highest {
                self.highest = r.end;
            }
            if last_addr == 0 {
                last_addr = r.end;
                continue;
            }
            if last_addr != r.start {
                gaps.push((last_addr, r.start));
            }
            last_addr = r.end;
        }
        self.gaps = if self.gaps.is_empty() { gaps } else { overlapping(&self.gaps, &gaps) };
    }

    /// The ranges monitored throughout: from the lowest address to the highest, cut at the gaps.
    pub fn contiguous(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::with_capacity(self.gaps.len() + 1);
        let mut start = self.lowest;
        for &(gap_start, gap_end) in &self.gaps {
            out.push((start, gap_start));
            start = gap_end;
        }
        out.push((start, self.highest));
        out
    }
}

/// Whether the closed ranges are sorted by start with non-decreasing ends, so the ones
/// touching a range are found by binary search.
pub fn sorted(ranges: &[(u64, u64)]) -> bool {
    ranges.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
}

/// damo's `overlapping_regions`: each old gap shrinks to its overlap with the new gaps it
/// meets, in order; a gap meeting none stays as it was.
fn overlapping(old: &[(u64, u64)], new: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let is_sorted = sorted(new);
    old.iter()
        .map(|&(mut s, mut e)| {
            let first = if is_sorted { new.partition_point(|r| r.1 < s) } else { 0 };
            for r in &new[first..] {
                if is_sorted && r.0 > e {
                    break;
                }
                if !(e < r.0 || r.1 < s) {
                    s = s.max(r.0);
                    e = e.min(r.1);
                }
            }
            (s, e)
        })
        .collect()
}
