//! damo's guide (`damo report heatmap --guide`): per target, the time span and the
//! contiguous address ranges, with how hot each is. It also picks the default ranges.

pub use damo_record::summary::Coverage;
use damo_record::{
    model::{Intervals, Snapshot, TargetRecord},
    summary::{sorted, TargetSummary},
    units::{format_sz, format_time_ns},
};

use super::{
    pynum::Num,
    source::{perf_script_first_start, Source},
};
use crate::accumulate::Accumulate;

/// A contiguous address range of a target: no snapshot had a gap inside it.
#[derive(Debug, Clone, PartialEq)]
pub struct GuideRegion {
    pub start: u64,
    pub end: u64,
    /// Sum of size × accesses of the regions touching it; `None` when none was accessed.
    pub heats: Option<u128>,
}

impl GuideRegion {
    pub fn heat_per_byte(&self) -> f64 {
        match self.heats {
            Some(h) if self.end > self.start => h as f64 / (self.end - self.start) as f64,
            _ => 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Guide {
    pub kdamond_idx: u32,
    pub context_idx: u32,
    pub scheme_idx: Option<u32>,
    pub tid: u64,
    pub start_time: Num,
    pub end_time: Num,
    pub contig_regions: Vec<GuideRegion>,
}

impl Guide {
    fn total_space(&self) -> u128 {
        self.contig_regions.iter().map(|r| u128::from(r.end.saturating_sub(r.start))).sum()
    }

    /// Whether `source` belongs to this guide's kdamond, context, scheme and target.
    pub fn matches(&self, t: &TargetRecord) -> bool {
        key(t) == (self.kdamond_idx, self.context_idx, self.scheme_idx, self.tid)
    }

    /// The hottest contiguous range (the first of equally hot ones).
    pub fn hottest(&self) -> Option<&GuideRegion> {
        let mut best: Option<&GuideRegion> = None;
        for r in &self.contig_regions {
            if best.is_none_or(|b| r.heat_per_byte() > b.heat_per_byte()) {
                best = Some(r);
            }
        }
        best
    }

    /// damo's text: raw numbers, or sizes and times for humans.
    pub fn to_text(&self, raw: bool) -> String {
        let mut s = format!("kdamond_idx: {}\ncontext_idx: {}\n", self.kdamond_idx, self.context_idx);
        if let Some(i) = self.scheme_idx {
            s += &format!("scheme_idx: {i}\n");
        }
        s += &format!(
            "target_id: {}\ntime: [{}, {}) ({})",
            self.tid,
            format_time_ns(self.start_time.f64(), raw),
            format_time_ns(self.end_time.f64(), raw),
            format_time_ns(self.end_time.minus(self.start_time).f64(), raw)
        );
        for (i, r) in self.contig_regions.iter().enumerate() {
            s += &format!("\nregion\t{i:2}: [{}, {}) ({})", format_sz_accurate(r.start, raw), format_sz_accurate(r.end, raw), format_sz((r.end as f64) - (r.start as f64), raw));
        }
        s
    }
}

/// damo's `format_sz_accurate`: six decimals in the largest unit below the size.
pub fn format_sz_accurate(bytes: u64, raw: bool) -> String {
    if raw {
        return bytes.to_string();
    }
    if bytes == u64::MAX {
        return "max".into();
    }
    let b = bytes as f64;
    for (unit, shift) in [("EiB", 60), ("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        let scale = (1u64 << shift) as f64;
        if b > scale {
            return format!("{:.6} {unit}", b / scale);
        }
    }
    format!("{bytes} B")
}

type Key = (u32, u32, Option<u32>, u64);

fn key(t: &TargetRecord) -> Key {
    (t.kdamond_idx, t.context_idx, t.scheme_idx, t.target_id)
}

struct Building {
    key: Key,
    /// The index of the first target of this key: guides are in target order before they
    /// are sorted, however a file interleaves the targets' snapshots.
    first_target: usize,
    start_time: Num,
    intervals: Option<Intervals>,
    /// The time span and coverage, and what [`GuideBuilder::redate_perf_script`] needs: the
    /// snapshot count and the first one's end and oldest region.
    summary: TargetSummary,
}

impl Building {
    /// A target's guide from its first snapshot, which starts at `start` as damo sees it.
    fn new(key: Key, first_target: usize, target: &TargetRecord, start: Num, summary: TargetSummary) -> Self {
        let start_time = oldest_monitor_time(start, target.intervals, i128::from(summary.first_longest_age));
        Building { key, first_target, start_time, intervals: target.intervals, summary }
    }
}

/// Builds the guides (without heats) a snapshot at a time, from a record in memory or
/// streamed from its file.
#[derive(Default)]
pub struct GuideBuilder {
    building: Vec<Building>,
    shared: bool,
}

impl GuideBuilder {
    /// Adds snapshot `snap` of target `index`, which starts at `start` as damo sees it.
    pub fn add(&mut self, index: usize, target: &TargetRecord, start: Num, snap: &Snapshot) {
        let k = key(target);
        match self.building.iter_mut().find(|b| b.key == k) {
            Some(g) => {
                self.shared |= g.first_target != index;
                g.summary.add(snap);
            }
            None => self.building.push(Building::new(k, index, target, start, TargetSummary::new(snap))),
        }
    }

    /// What [`Self::add`] of every snapshot leaves, from what they add up to (a target's
    /// summary by its index; snapshots start where they say, as [`Accumulate`] has them).
    pub fn of_summaries(targets: &[TargetRecord], summaries: &[TargetSummary]) -> Self {
        let mut builder = GuideBuilder::default();
        for (index, (target, s)) in targets.iter().zip(summaries).enumerate() {
            let k = key(target);
            if builder.building.iter().any(|b| b.key == k) {
                builder.shared = true;
                continue;
            }
            builder.building.push(Building::new(k, index, target, Num::Int(i128::from(s.first_start_ns)), s.clone()));
        }
        builder
    }

    /// For a streamed damo perf-script copy, once every snapshot is in: damo starts a
    /// target's first snapshot the mean snapshot duration before its end
    /// ([`super::source::Source::new`]), so the guides' start times move there. Gives each
    /// guide's first target and that start.
    pub fn redate_perf_script(&mut self) -> Vec<(usize, f64)> {
        let mut starts = Vec::new();
        for b in &mut self.building {
            let s = &b.summary;
            if let Some(f) = perf_script_first_start(s.first_end_ns, s.last_end_ns, usize::try_from(s.snapshots).unwrap_or(usize::MAX)) {
                b.start_time = oldest_monitor_time(Num::Float(f), b.intervals, i128::from(s.first_longest_age));
                starts.push((b.first_target, f));
            }
        }
        starts
    }

    /// Whether two targets share a guide: their snapshots then count in the order they came
    /// (a file's interleaving), which only a record fed target by target gets as damo does.
    pub fn shared(&self) -> bool {
        self.shared
    }

    /// The guides, largest total space first (damo's `get_guide_info`), without heats.
    pub fn finish(mut self) -> Vec<Guide> {
        self.building.sort_by_key(|b| b.first_target);
        let mut out: Vec<Guide> = self
            .building
            .into_iter()
            .map(|b| {
                let contig = b.summary.coverage.contiguous().into_iter().map(|(start, end)| GuideRegion { start, end, heats: None }).collect();
                let (kdamond_idx, context_idx, scheme_idx, tid) = b.key;
                let end_time = Num::Int(i128::from(b.summary.last_end_ns));
                Guide { kdamond_idx, context_idx, scheme_idx, tid, start_time: b.start_time, end_time, contig_regions: contig }
            })
            .collect();
        // Stable: equal spaces keep their first-seen order, as damo's reverse sort does.
        out.sort_by_key(|g| std::cmp::Reverse(g.total_space()));
        out
    }
}

/// A streamed record's snapshots start where they say (only perf-script traces differ).
impl Accumulate for GuideBuilder {
    fn push(&mut self, index: usize, target: &TargetRecord, snapshot: &Snapshot) {
        self.add(index, target, Num::Int(i128::from(snapshot.start_ns)), snapshot);
    }
}

/// The guides of all targets, largest total space first (damo's `get_guide_info`).
pub fn guides(sources: &[Source]) -> Vec<Guide> {
    outlines(sources).into_iter().map(|g| heated(g, sources)).collect()
}

/// [`guides`] without their heats: what choosing one needs.
pub fn outlines(sources: &[Source]) -> Vec<Guide> {
    let mut builder = GuideBuilder::default();
    for (index, src) in sources.iter().enumerate() {
        for (i, snap) in src.snapshots().iter().enumerate() {
            builder.add(index, src.target, src.start(i), snap);
        }
    }
    builder.finish()
}

/// `guide` with its heats, from the snapshots of the sources it is of.
pub fn heated(guide: Guide, sources: &[Source]) -> Guide {
    let selected: Vec<&Source> = sources.iter().filter(|s| guide.matches(s.target)).collect();
    let mut heats = HeatAdder::new(guide);
    for src in selected {
        for snap in src.snapshots() {
            heats.push(0, src.target, snap);
        }
    }
    heats.finish()
}

fn oldest_monitor_time(start: Num, intervals: Option<Intervals>, longest_age: i128) -> Num {
    match intervals {
        None => start,
        Some(iv) => start.minus(Num::Int(longest_age * i128::from(iv.aggr_us) * 1000)),
    }
}

/// Indices of `ranges` that damo's closed-interval overlap test matches with `[s, e]`.
fn touching(ranges: &[(u64, u64)], is_sorted: bool, s: u64, e: u64) -> impl Iterator<Item = usize> + '_ {
    let first = if is_sorted { ranges.partition_point(|r| r.1 < s) } else { 0 };
    ranges[first..].iter().enumerate().take_while(move |(_, r)| !is_sorted || r.0 <= e).filter(move |(_, r)| !(r.1 < s || e < r.0)).map(move |(i, _)| first + i)
}

/// Adds to a guide's contiguous ranges the heat of its target's regions touching them.
pub struct HeatAdder {
    guide: Guide,
    ranges: Vec<(u64, u64)>,
    is_sorted: bool,
}

impl HeatAdder {
    pub fn new(guide: Guide) -> Self {
        let ranges: Vec<(u64, u64)> = guide.contig_regions.iter().map(|r| (r.start, r.end)).collect();
        HeatAdder { is_sorted: sorted(&ranges), ranges, guide }
    }

    pub fn finish(self) -> Guide {
        self.guide
    }
}

/// Heats are integer sums: the order snapshots come in does not change them.
impl Accumulate for HeatAdder {
    fn push(&mut self, _index: usize, target: &TargetRecord, snapshot: &Snapshot) {
        if !self.guide.matches(target) {
            return;
        }
        for r in snapshot.regions.iter().filter(|r| r.nr_accesses != 0) {
            let heat = u128::from(r.end.wrapping_sub(r.start)) * u128::from(r.nr_accesses);
            for i in touching(&self.ranges, self.is_sorted, r.start, r.end) {
                let h = &mut self.guide.contig_regions[i].heats;
                *h = Some(h.unwrap_or(0) + heat);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use damo_record::model::{Region, Snapshot, TargetRecord};

    fn snap(t: u64, regions: &[(u64, u64, u32)]) -> Snapshot {
        Snapshot { start_ns: t, end_ns: t + 10, regions: regions.iter().map(|&(start, end, n)| Region { start, end, nr_accesses: n, age: None }).collect(), total_bytes: None }
    }

    #[test]
    fn gaps_split_the_space_and_heat_picks_the_hottest() {
        let t = TargetRecord { target_id: 7, snapshots: vec![snap(0, &[(100, 200, 1), (300, 400, 5)]), snap(10, &[(100, 200, 0), (300, 350, 9), (350, 400, 0)])], ..Default::default() };
        let g = &guides(&[Source::new(&t, false)])[0];
        assert_eq!(g.contig_regions.iter().map(|r| (r.start, r.end)).collect::<Vec<_>>(), [(100, 200), (300, 400)]);
        assert_eq!(g.contig_regions[0].heats, Some(100));
        assert_eq!(g.contig_regions[1].heats, Some(500 + 450));
        assert_eq!(g.hottest().unwrap().start, 300);
        assert_eq!(g.to_text(true), "kdamond_idx: 0\ncontext_idx: 0\ntarget_id: 7\ntime: [0, 20) (20)\nregion\t 0: [100, 200) (100)\nregion\t 1: [300, 400) (100)");
    }

    /// The guides and band tallies planned from a copy's summaries are the ones a pass over
    /// its snapshots builds, on records whose snapshots leave gaps and lack ages; perf-script
    /// start times move the same way.
    #[test]
    fn summaries_give_what_a_pass_gives() {
        use crate::holistic::bands::BandTally;
        use damo_record::{
            native::NativeWriter,
            synth::{self, Rng, SynthSpec},
        };
        for seed in 0..12 {
            let mut record = synth::record(SynthSpec { targets: 1 + seed as usize % 4, snapshots_per_target: 60, regions: 40, seed });
            let mut rng = Rng(seed + 1);
            for t in &mut record.targets {
                for s in &mut t.snapshots {
                    s.regions.retain(|_| rng.below(9) != 0);
                    s.regions.iter_mut().filter(|_| rng.below(3) == 0).for_each(|r| r.age = None);
                }
            }
            let (mut by_pass, mut tally) = (GuideBuilder::default(), BandTally::default());
            crate::accumulate::feed(&record, &mut (&mut by_pass, &mut tally));
            // As the cache and `record` write them, and as a report reads them back.
            let mut w = NativeWriter::new(Vec::new()).unwrap().summarizing();
            for t in &record.targets {
                for snap in &t.snapshots {
                    w.snapshot(t, snap).unwrap();
                }
            }
            let summed = damo_record::native::summaries_of(&w.finish().unwrap()).expect("summaries at the end");
            let mut planned = GuideBuilder::of_summaries(&summed.targets, &summed.summaries);
            let planned_tally = BandTally::of_summaries(&summed.summaries);
            assert_eq!(planned.redate_perf_script(), by_pass.redate_perf_script(), "seed {seed}");
            assert_eq!(planned.shared(), by_pass.shared());
            assert_eq!(planned.finish(), by_pass.finish(), "seed {seed}");
            for i in 0..record.targets.len() + 1 {
                assert_eq!((planned_tally.snapshots(i), planned_tally.busiest(i)), (tally.snapshots(i), tally.busiest(i)), "seed {seed} target {i}");
            }
        }
    }

    #[test]
    fn accurate_sizes() {
        assert_eq!(format_sz_accurate(94827419009024, false), "86.245035 TiB");
        assert_eq!(format_sz_accurate(1000, false), "1000 B");
    }
}
