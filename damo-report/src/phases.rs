//! `report phases`: splits a record into access phases.
//!
//! Each snapshot becomes a vector of how hot each of `BUCKETS` equal slices of the target's
//! address space is (gaps between mappings left out, so slices land on memory). Phases are
//! found by binary segmentation: split the run of snapshots where the split most reduces the
//! squared distance of snapshots to their segment's mean, keep splitting while a split gains
//! more than a penalty, like the BIC of a piecewise-constant model.
//!
//! The penalty is measured in the record itself, so the decision scales with the data: the
//! noise is half the median squared step between consecutive snapshots (the variance of the
//! hot-set signal when nothing changes; the median ignores the few steps at real changes),
//! and a split must gain more than `2 ln n` times it. A record where DAMON sees weak access
//! rates (the hottest slice at 0.25 of the most an aggregation can count) has both its gains
//! and its noise 16 times smaller than a record at full rate, and splits the same way: a
//! fixed floor of 0.5 here once kept such records (best gain 0.27) in one phase.
//!
//! Each boundary is then moved to where it best separates its two neighbours alone (binary
//! segmentation places the first cuts with the later ones unknown, which can leave a
//! boundary several snapshots off). Neighbouring phases are joined again when their mean hot
//! sets point the same way (cosine similarity ≥ 0.9: the same memory, only hotter or colder,
//! as while DAMON adapts its regions), or when they are alike (≥ 0.5) and the caller says
//! they ran the same code (see [`segment_with`]).
//!
//! The caller may also bring cuts of its own, where the code that ran changed
//! ([`change_points`] over per-snapshot code features; `damo_profile::phases`): DAMON's view
//! of a change can come late or not at all (weak access rates, accesses it missed), while
//! the code changes at once. Those cuts stay where they are, and phases the caller says ran
//! different code are never joined.

use damo_record::model::{Intervals, Record, Region, Snapshot, TargetRecord};

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
    /// The mean hot set: per address slice, the mean access rate (0..1).
    pub heat: Vec<f64>,
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
        Self { min_snapshots: 5, max_phases: defaults::MAX_PHASES, sensitivity_penalty: 1.0 }
    }
}

/// How `report phases` and `report holistic` find phases by default.
pub mod defaults {
    /// The shortest phase, in damo's units.
    pub const MIN_PHASE: &str = "1s";
    pub const MAX_PHASES: usize = 12;
}

/// Phases as the command line asks for them: the shortest in time, and how many at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseRequest {
    pub min_phase_us: u64,
    pub max_phases: usize,
}

impl Default for PhaseRequest {
    fn default() -> Self {
        let min_phase_us = damo_record::units::parse_us(defaults::MIN_PHASE).expect("the default is a duration");
        Self { min_phase_us, max_phases: defaults::MAX_PHASES }
    }
}

impl PhaseRequest {
    /// The segmentation options for `target`: the shortest phase in its aggregation intervals
    /// (or, without intervals, in its first snapshot's length). `target` has snapshots.
    pub fn options(&self, target: &TargetRecord) -> PhaseOptions {
        let s = &target.snapshots[0];
        self.options_for(target.intervals, (s.start_ns, s.end_ns))
    }

    /// [`Self::options`] for a target of `intervals` whose first snapshot spans `first`
    /// (start and end, ns).
    pub fn options_for(&self, intervals: Option<Intervals>, (start, end): (u64, u64)) -> PhaseOptions {
        let aggr_us = intervals.map(|i| i.aggr_us).filter(|&a| a > 0).unwrap_or_else(|| (end.saturating_sub(start) / 1000).max(1));
        PhaseOptions { min_snapshots: (self.min_phase_us / aggr_us).max(1) as usize, max_phases: self.max_phases.max(1), ..Default::default() }
    }
}

/// The address space slices: the union of all regions' extents with the gaps cut out, cut
/// into `BUCKETS` slices that are narrow where the accesses were and wide where they were
/// not. Equal slices of a space with a 4 GiB cold mapping are 64 MiB wide, and two phases
/// working on different 16 MiB buffers in one slice would look alike.
struct Space {
    /// Covered intervals, sorted, with the linear offset where each starts.
    spans: Vec<(u64, u64, u64)>,
    /// The slices' edges in linear offsets, `BUCKETS + 1` of them from 0 to the total.
    edges: Vec<f64>,
}

/// A target's snapshots in order, read in as many passes as phase finding needs: a target
/// in memory, or one streamed from its file (a day of snapshots does not fit in memory; what
/// phase finding keeps of each, a [`Series`] entry, does).
pub trait SnapshotPasses {
    type Error;
    /// Feeds every snapshot, in order, to `each`.
    fn pass(&mut self, each: &mut dyn FnMut(&Snapshot)) -> Result<(), Self::Error>;
}

impl SnapshotPasses for &TargetRecord {
    type Error = std::convert::Infallible;

    fn pass(&mut self, each: &mut dyn FnMut(&Snapshot)) -> Result<(), Self::Error> {
        self.snapshots.iter().for_each(each);
        Ok(())
    }
}

/// The distinct region edges of snapshots, gathered a snapshot at a time: only edges the
/// snapshot before did not have are added (DAMON keeps most regions from one aggregation to
/// the next), and those are sorted down whenever they double.
#[derive(Default)]
struct Points {
    points: Vec<u64>,
    sorted_len: usize,
    /// The edges of the last snapshot added, and of the one being added.
    last: Vec<u64>,
    edges: Vec<u64>,
}

impl Points {
    /// Adds the edges of a snapshot's `regions`.
    fn add(&mut self, regions: &[Region]) {
        self.edges.clear();
        for r in regions {
            // Touching regions share an edge.
            if self.edges.last() != Some(&r.start) {
                self.edges.push(r.start);
            }
            self.edges.push(r.end);
        }
        // Both lists are in address order (a record out of order only adds more): an edge
        // the last snapshot had is in already.
        let mut j = 0;
        for k in 0..self.edges.len() {
            let e = self.edges[k];
            while self.last.get(j).is_some_and(|&l| l < e) {
                j += 1;
            }
            if self.last.get(j) != Some(&e) {
                self.points.push(e);
            }
        }
        std::mem::swap(&mut self.last, &mut self.edges);
        if self.points.len() >= 2 * self.sorted_len.max(1 << 16) {
            self.sort();
        }
    }

    fn sort(&mut self) {
        self.points.sort_unstable();
        self.points.dedup();
        self.sorted_len = self.points.len();
    }

    fn finish(mut self) -> Vec<u64> {
        self.sort();
        self.points
    }
}

/// The first pass of [`Space`]: each snapshot's extents (DAMON's regions tile a target's
/// mappings, so each run of touching regions is one: sorting those, not every region, is
/// what the union needs; `top` redoes this every second over 600 snapshots), every region
/// edge, and the busiest access count.
#[derive(Default)]
struct SpacePass {
    extents: Vec<(u64, u64)>,
    merged_len: usize,
    points: Points,
    busiest: u32,
}

impl SpacePass {
    fn add(&mut self, s: &Snapshot) {
        let mut run: Option<(u64, u64)> = None;
        for r in &s.regions {
            match run.as_mut() {
                Some(last) if last.1 == r.start => last.1 = r.end,
                _ => self.extents.extend(run.replace((r.start, r.end))),
            }
            self.busiest = self.busiest.max(r.nr_accesses);
        }
        self.points.add(&s.regions);
        self.extents.extend(run);
        if self.extents.len() >= 2 * self.merged_len.max(1 << 12) {
            self.extents = crate::address_union::union(std::mem::take(&mut self.extents));
            self.merged_len = self.extents.len();
        }
    }
}

impl Space {
    /// The space of the snapshots `snaps` holds, in two passes (its extents and edges, then
    /// the accesses between edges), and the access count that is a rate of 1 ([`rate_max`]).
    fn gather<P: SnapshotPasses>(snaps: &mut P, intervals: Option<Intervals>) -> Result<(Self, f64), P::Error> {
        let mut first = SpacePass::default();
        snaps.pass(&mut |s| first.add(s))?;
        let max = rate_max(intervals, first.busiest);
        let mut offset = 0;
        let spans: Vec<(u64, u64, u64)> = crate::address_union::union(first.extents)
            .into_iter()
            .map(|(s, e)| {
                let span = (s, e, offset);
                offset += e - s;
                span
            })
            .collect();
        // Accesses per byte between consecutive region edges: a difference array over the
        // record's distinct region edges.
        let points = first.points.finish();
        let mut delta = vec![0.0f64; points.len()];
        snaps.pass(&mut |s| {
            for r in s.regions.iter().filter(|r| r.nr_accesses > 0 && r.end > r.start) {
                let w = f64::from(r.nr_accesses).powi(2);
                add_at(&mut delta, &points, r.start, w);
                add_at(&mut delta, &points, r.end, -w);
            }
        })?;
        let mut space = Self { spans, edges: Vec::new() };
        space.edges = space.quantile_edges(&points, &delta, offset);
        Ok((space, max))
    }

    /// Edges at equal steps of a blend of bytes and accesses: half the slices are spread
    /// over the bytes, half over the accesses (count² × bytes, summed over snapshots: squared
    /// so that stray single accesses over a huge cold mapping do not outweigh a hot buffer),
    /// from the access weights `delta` that start at each of `points`.
    fn quantile_edges(&self, points: &[u64], delta: &[f64], total: u64) -> Vec<f64> {
        let uniform = || (0..=BUCKETS).map(|k| total as f64 * k as f64 / BUCKETS as f64).collect();
        // Cumulative (linear offset, blended weight) at each point.
        let mut density = 0.0;
        let mut mass = Vec::with_capacity(points.len());
        let mut pieces = Vec::with_capacity(points.len());
        for (k, w) in points.windows(2).enumerate() {
            density += delta[k];
            let m = density.max(0.0) * (w[1] - w[0]) as f64;
            // Pieces in gaps between mappings have no accesses and no linear extent.
            if let Some(off) = self.linear(w[0]) {
                pieces.push((off as f64, (w[1] - w[0]) as f64, m));
                mass.push(m);
            }
        }
        let all_mass: f64 = mass.iter().sum();
        if all_mass <= 0.0 || total == 0 {
            return uniform();
        }
        let weight = |len: f64, m: f64| 0.5 * len / total as f64 + 0.5 * m / all_mass;
        let mut edges = vec![0.0];
        let mut acc = 0.0;
        for &(off, len, m) in &pieces {
            let w = weight(len, m);
            // Every edge that falls in this piece, placed in proportion within it.
            while edges.len() < BUCKETS && acc + w >= edges.len() as f64 / BUCKETS as f64 {
                let target = edges.len() as f64 / BUCKETS as f64;
                let at = off + len * ((target - acc) / w).clamp(0.0, 1.0);
                edges.push(at.max(*edges.last().unwrap()));
            }
            acc += w;
        }
        while edges.len() <= BUCKETS {
            edges.push(total as f64);
        }
        edges[BUCKETS] = total as f64;
        edges
    }

    /// The linear offset of an address inside a span.
    fn linear(&self, addr: u64) -> Option<u64> {
        let i = self.spans.partition_point(|&(_, e, _)| e <= addr);
        self.spans.get(i).filter(|&&(s, _, _)| s <= addr).map(|&(s, _, off)| off + addr - s)
    }

    /// Adds `weight` per byte of `[start, end)` into the slices it covers, as the mean over
    /// each slice.
    fn add(&self, v: &mut [f64], start: u64, end: u64, weight: f64) {
        let i = self.spans.partition_point(|&(_, e, _)| e <= start);
        for &(s, e, off) in &self.spans[i..] {
            if s >= end {
                break;
            }
            let (a, b) = ((start.max(s) - s + off) as f64, (end.min(e) - s + off) as f64);
            let mut bucket = self.edges.partition_point(|&x| x <= a).saturating_sub(1).min(BUCKETS - 1);
            while bucket < BUCKETS && self.edges[bucket] < b {
                let (lo, hi) = (self.edges[bucket], self.edges[bucket + 1]);
                let overlap = hi.min(b) - lo.max(a);
                if overlap > 0.0 && hi > lo {
                    v[bucket] += overlap / (hi - lo) * weight;
                }
                bucket += 1;
            }
        }
    }
}

/// What phase finding keeps of each snapshot of a target: its times, working set and hot
/// set over the target's address slices (600 bytes, where the snapshot's regions take 32
/// each), gathered in three passes over the snapshots ([`Space`]'s two, then this).
pub struct Series {
    /// Each snapshot's start and end, ns.
    pub times: Vec<(u64, u64)>,
    /// Bytes of each snapshot's accessed regions.
    wss: Vec<u128>,
    /// Each snapshot's access rate (0..1) per address slice.
    features: Vec<[f64; BUCKETS]>,
    /// The access count that is a rate of 1.
    max: f64,
}

impl Series {
    /// The series of the snapshots `snaps` holds, of a target with `intervals`.
    pub fn gather<P: SnapshotPasses>(snaps: &mut P, intervals: Option<Intervals>) -> Result<Series, P::Error> {
        let (space, max) = Space::gather(snaps, intervals)?;
        let mut series = Series { times: Vec::new(), wss: Vec::new(), features: Vec::new(), max };
        snaps.pass(&mut |s| {
            let mut v = [0.0; BUCKETS];
            let mut wss = 0u128;
            for r in s.regions.iter().filter(|r| r.nr_accesses > 0) {
                space.add(&mut v, r.start, r.end, (f64::from(r.nr_accesses) / max).min(1.0));
                wss += u128::from(r.size());
            }
            series.times.push((s.start_ns, s.end_ns));
            series.wss.push(wss);
            series.features.push(v);
        })?;
        Ok(series)
    }

    /// The series of a target in memory.
    pub fn of(target: &TargetRecord) -> Series {
        Series::gather(&mut &*target, target.intervals).unwrap_or_else(|never| match never {})
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

/// Prefix sums of a series of equal-length vectors, for O(dimensions) segment costs.
struct Prefix {
    dim: usize,
    /// `(len + 1) × dim` running sums, row after row.
    sum: Vec<f64>,
    sq: Vec<f64>,
}

impl Prefix {
    fn new<V: AsRef<[f64]>>(x: &[V]) -> Self {
        let dim = x.first().map_or(0, |v| v.as_ref().len());
        let mut sum = vec![0.0; (x.len() + 1) * dim];
        let mut sq = vec![0.0; x.len() + 1];
        for (t, v) in x.iter().enumerate() {
            let v = v.as_ref();
            for k in 0..dim {
                sum[(t + 1) * dim + k] = sum[t * dim + k] + v[k];
            }
            sq[t + 1] = sq[t] + v.iter().map(|a| a * a).sum::<f64>();
        }
        Self { dim, sum, sq }
    }

    /// Σ‖x_t − mean‖² over `[a, b)`.
    fn cost(&self, a: usize, b: usize) -> f64 {
        let n = (b - a) as f64;
        let s: f64 = (0..self.dim).map(|k| (self.sum[b * self.dim + k] - self.sum[a * self.dim + k]).powi(2)).sum();
        (self.sq[b] - self.sq[a]) - s / n
    }

    /// The mean vector over `[a, b)`.
    fn mean(&self, a: usize, b: usize) -> Vec<f64> {
        (0..self.dim).map(|k| (self.sum[b * self.dim + k] - self.sum[a * self.dim + k]) / (b - a) as f64).collect()
    }

    /// The best place to split `[a, b)` into parts of at least `min`, and what it gains.
    fn best_split(&self, a: usize, b: usize, min: usize) -> Option<(f64, usize)> {
        let whole = self.cost(a, b);
        (a + min..=b.saturating_sub(min)).map(|k| (whole - self.cost(a, k) - self.cost(k, b), k)).max_by(|p, q| p.0.total_cmp(&q.0).then(q.1.cmp(&p.1)))
    }

    /// Binary segmentation: cuts (with 0 and the end) while a split gains more than `penalty`,
    /// into at most `max_parts`, each cut then moved to where it best splits its neighbours.
    fn cuts(&self, n: usize, min: usize, max_parts: usize, penalty: f64) -> Vec<usize> {
        let mut cuts = vec![0, n];
        while cuts.len() <= max_parts {
            let best = cuts.windows(2).filter_map(|w| self.best_split(w[0], w[1], min)).max_by(|p, q| p.0.total_cmp(&q.0));
            match best {
                Some((gain, k)) if gain > penalty => {
                    let at = cuts.partition_point(|&c| c < k);
                    cuts.insert(at, k);
                }
                _ => break,
            }
        }
        refine(&mut cuts, &[], &|a, b| self.best_split(a, b, min));
        cuts
    }
}

/// Where a series of per-snapshot vectors (all of one length) changes: the inner cuts, in
/// snapshot indices, by the method of the module doc (its penalty measured in the series,
/// parts of at least `min_snapshots`, at most `max_parts`).
pub fn change_points<V: AsRef<[f64]>>(x: &[V], min_snapshots: usize, max_parts: usize) -> Vec<usize> {
    if x.len() < 2 {
        return Vec::new();
    }
    let (min, max_parts) = (min_snapshots.max(1), max_parts.max(1));
    let cuts = Prefix::new(x).cuts(x.len(), min, max_parts, sparse_change_penalty(x, (max_parts - 1).min(x.len() / min)));
    cuts[1..cuts.len() - 1].to_vec()
}

/// [`split_penalty`] for a series of few dimensions that move together (the shares of the
/// frames of one call path): there the median squared step, a chi-square of about one
/// degree of freedom, is under half the mean, and noise alone would clear the penalty. The
/// noise is the mean squared step instead, less the largest `changes` steps (where the real
/// changes are), halved; and it counts three times: the most a split of pure noise gains is
/// heavy-tailed at one degree of freedom. Measured on steady series of 10 coin flips per
/// snapshot (4 dimensions), 400 seeds each: at 1× a false cut in 16% of 150-snapshot series,
/// at 2× in 1.2%, at 3× in none (and 1% of 30-snapshot ones). A change of code moves whole
/// call paths from near 0 to near 1, far above it: every phase change
/// in the 15 phase-test boots of a CI run was found at 3×.
fn sparse_change_penalty<V: AsRef<[f64]>>(x: &[V], changes: usize) -> f64 {
    let mut steps = squared_steps(x);
    steps.truncate(steps.len().saturating_sub(changes));
    3.0 * penalty(x, steps.iter().sum::<f64>() / steps.len().max(1) as f64 / 2.0)
}

/// What the code that ran says of two neighbouring phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// They ran the same code: a hot set that only shifted a little (cosine ≥ 0.5), or one
    /// DAMON barely saw beside the other's, does not split them.
    Same,
    /// They clearly ran different code: they stay two phases even on the same memory.
    Different,
    /// Nothing to tell (no stacks, too few): the hot sets alone decide.
    Unknown,
}

/// Splits the target's snapshots into phases.
pub fn segment(target: &TargetRecord, o: &PhaseOptions) -> Vec<Phase> {
    segment_with(target, o, &[], |_, _| Code::Unknown)
}

/// [`segment`], with `code_cuts` (snapshot indices where the code that ran changed, which
/// stay put) and `code(a, b)`, what the code says of two neighbouring phases.
pub fn segment_with(target: &TargetRecord, o: &PhaseOptions, code_cuts: &[usize], code: impl FnMut(&Phase, &Phase) -> Code) -> Vec<Phase> {
    let series = Series::of(target);
    let phases = outlines(&series, o, code_cuts, code);
    describe(&series, phases, &mut &*target).unwrap_or_else(|never| match never {})
}

/// Where [`segment`]'s phases start and end, in snapshot indices, without their working
/// sets and hot ranges: for `top`, which finds phases every second and shows only where they
/// begin (describing them was a quarter of its CPU).
pub fn segment_spans(target: &TargetRecord, o: &PhaseOptions) -> Vec<std::ops::RangeInclusive<usize>> {
    outlines(&Series::of(target), o, &[], |_, _| Code::Unknown).into_iter().map(|p| p.first..=p.last).collect()
}

/// [`segment_with`]'s phases of `series`, outlined: spans and hot sets only ([`describe`]
/// adds the rest).
pub fn outlines(series: &Series, o: &PhaseOptions, code_cuts: &[usize], mut code: impl FnMut(&Phase, &Phase) -> Code) -> Vec<Phase> {
    let n = series.len();
    if n == 0 {
        return Vec::new();
    }
    let x = &series.features;
    let prefix = Prefix::new(x);
    let min = o.min_snapshots.max(1);
    let mut cuts = prefix.cuts(n, min, o.max_phases, o.sensitivity_penalty * split_penalty(x));
    let fixed = merge_code_cuts(&mut cuts, code_cuts, min, o.max_phases);
    // Neighbours that are one phase are joined, and the boundaries left placed again (a
    // spurious cut inside a phase can pull its real boundary away).
    loop {
        // Joining looks at spans and hot sets only; the rest of each phase is described once,
        // at the end (its hot ranges sort every region edge in it).
        let phases: Vec<Phase> = cuts.windows(2).map(|w| outline(series, prefix.mean(w[0], w[1]), w[0], w[1])).collect();
        // A split must change what is hot, not only how hot, or change the code that ran.
        let joined = (1..phases.len()).find(|&i| {
            let alike = cosine(&phases[i - 1].heat, &phases[i].heat);
            match code(&phases[i - 1], &phases[i]) {
                Code::Same => alike >= SIMILAR_HOT_SET || faint(&phases[i - 1].heat, &phases[i].heat),
                Code::Unknown => alike >= SAME_HOT_SET,
                Code::Different => false,
            }
        });
        match joined {
            Some(i) => {
                cuts.remove(i);
            }
            None => return phases,
        }
        refine(&mut cuts, &fixed, &|a, b| prefix.best_split(a, b, min));
    }
}

/// Adds the code's cuts to the hot set's: a hot-set cut nearer than `min` to a code cut is
/// the same change seen later or earlier, and gives way. Returns the code cuts kept (all
/// of them that are inner cuts, up to `max_phases` parts).
fn merge_code_cuts(cuts: &mut Vec<usize>, code_cuts: &[usize], min: usize, max_phases: usize) -> Vec<usize> {
    let n = *cuts.last().expect("cuts hold 0 and the end");
    let mut fixed: Vec<usize> = code_cuts.iter().copied().filter(|&c| c >= min && c + min <= n).collect();
    fixed.sort_unstable();
    fixed.dedup();
    fixed.truncate(max_phases.saturating_sub(1));
    cuts.retain(|&c| c == 0 || c == n || fixed.iter().all(|&f| f.abs_diff(c) >= min));
    for &f in &fixed {
        let at = cuts.partition_point(|&c| c < f);
        if cuts.len() <= max_phases {
            cuts.insert(at, f);
        }
    }
    fixed.retain(|f| cuts.contains(f));
    fixed
}

/// Moves each inner cut but the `fixed` ones to where it best splits its two neighbours,
/// until none moves.
fn refine(cuts: &mut [usize], fixed: &[usize], best_split: &impl Fn(usize, usize) -> Option<(f64, usize)>) {
    for _ in 0..cuts.len() * 2 {
        let mut moved = false;
        for i in 1..cuts.len() - 1 {
            if fixed.contains(&cuts[i]) {
                continue;
            }
            if let Some((_, k)) = best_split(cuts[i - 1], cuts[i + 1]) {
                moved |= k != cuts[i];
                cuts[i] = k;
            }
        }
        if !moved {
            break;
        }
    }
}

/// What a split must gain: `2 ln n` times the noise of the signal, half the median squared
/// step between consecutive snapshots.
fn split_penalty<V: AsRef<[f64]>>(x: &[V]) -> f64 {
    let steps = squared_steps(x);
    penalty(x, steps.get(steps.len() / 2).copied().unwrap_or(0.0) / 2.0)
}

/// `2 ln n` times `noise`. A record without noise (generated, or a workload as steady as a
/// clock) needs a split to gain a hundredth of a snapshot's own signal, so rounding never
/// splits it.
fn penalty<V: AsRef<[f64]>>(x: &[V], noise: f64) -> f64 {
    let n = x.len();
    let energy = x.iter().map(|v| v.as_ref().iter().map(|a| a * a).sum::<f64>()).sum::<f64>() / n.max(1) as f64;
    (noise * 2.0 * (n as f64).ln().max(1.0)).max(energy * 0.01).max(f64::MIN_POSITIVE)
}

/// The squared distances between consecutive vectors, ascending.
fn squared_steps<V: AsRef<[f64]>>(x: &[V]) -> Vec<f64> {
    let mut steps: Vec<f64> = x.windows(2).map(|w| w[0].as_ref().iter().zip(w[1].as_ref()).map(|(a, b)| (a - b).powi(2)).sum()).collect();
    steps.sort_by(f64::total_cmp);
    steps
}

/// Cosine similarity of two phases' mean hot sets above which they are one phase.
const SAME_HOT_SET: f64 = 0.9;
/// ... and above which they are one phase when they ran the same code.
const SIMILAR_HOT_SET: f64 = 0.5;

/// How alike two hot sets are: the cosine of their vectors (1 the same, 0 disjoint).
pub fn similarity(a: &Phase, b: &Phase) -> f64 {
    cosine(&a.heat, &b.heat)
}

/// Whether one hot set is under a tenth of the other (by norm): while the same code ran,
/// that is DAMON seeing next to nothing (it can miss accesses for seconds), not new memory.
fn faint(a: &[f64], b: &[f64]) -> bool {
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let (a, b) = (norm(a), norm(b));
    a.min(b) < 0.1 * a.max(b)
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    match norm(a) * norm(b) {
        0.0 => {
            if norm(a) == norm(b) {
                1.0
            } else {
                0.0
            }
        }
        n => dot / n,
    }
}

/// Adds `v` to the `delta` of `point` among `points` (the sorted points of an earlier pass;
/// a point that is not there, in a record that changed between passes, changes nothing).
fn add_at(delta: &mut [f64], points: &[u64], point: u64, v: f64) {
    let i = points.partition_point(|&p| p < point);
    if let Some(d) = delta.get_mut(i).filter(|_| points[i] == point) {
        *d += v;
    }
}

/// Runs of address ranges whose mean access rate over a phase's snapshots is at least 5%,
/// as (start, end, byte-weighted mean rate), hottest first, at most three: from `points`,
/// the distinct edges of the phase's regions, and `delta`, the rate that starts at each.
/// Taken from the regions themselves, not the slices, so a range ends where the hot memory
/// does.
fn hot_ranges(points: &[u64], delta: &[f64]) -> Vec<(u64, u64, f64)> {
    let mut ranges: Vec<(u64, u64, f64)> = Vec::new();
    let mut rate = 0.0;
    let mut run: Option<(u64, u64, f64)> = None;
    for (k, w) in points.windows(2).enumerate() {
        rate += delta[k];
        if rate >= 0.05 {
            let bytes = (w[1] - w[0]) as f64;
            match run.as_mut() {
                Some(r) if r.1 == w[0] => {
                    r.1 = w[1];
                    r.2 += rate * bytes;
                }
                _ => {
                    ranges.extend(run.take());
                    run = Some((w[0], w[1], rate * bytes));
                }
            }
        }
    }
    ranges.extend(run);
    for r in &mut ranges {
        r.2 /= (r.1 - r.0) as f64;
    }
    ranges.sort_by(|p, q| q.2.total_cmp(&p.2));
    ranges.truncate(3);
    ranges
}

/// The most accesses an aggregation interval can count: from the intervals, else the
/// largest count seen (`busiest`).
fn rate_max(intervals: Option<Intervals>, busiest: u32) -> f64 {
    intervals.map(|i| i.max_nr_accesses()).filter(|&m| m > 0).unwrap_or_else(|| u64::from(busiest).max(1)) as f64
}

/// Snapshots `[a, b)` as a phase with its mean hot set `heat`, without its working set and
/// hot ranges ([`describe`] adds them).
fn outline(series: &Series, heat: Vec<f64>, a: usize, b: usize) -> Phase {
    Phase { first: a, last: b - 1, start_ns: series.times[a].0, end_ns: series.times[b - 1].1, mean_wss: 0, hot_ranges: Vec::new(), heat }
}

/// Outlined `phases` (in order, covering the snapshots `snaps` holds, of which `series` is)
/// with their mean working sets and hottest ranges: two passes, each phase's region edges,
/// then the rates between them.
pub fn describe<P: SnapshotPasses>(series: &Series, phases: Vec<Phase>, snaps: &mut P) -> Result<Vec<Phase>, P::Error> {
    let phase_of = |k: usize| phases.partition_point(|p| p.last < k);
    let mut points: Vec<Points> = phases.iter().map(|_| Points::default()).collect();
    let mut k = 0;
    snaps.pass(&mut |s| {
        if let Some(p) = points.get_mut(phase_of(k)) {
            p.add(&s.regions);
        }
        k += 1;
    })?;
    let points: Vec<Vec<u64>> = points.into_iter().map(Points::finish).collect();
    let mut delta: Vec<Vec<f64>> = points.iter().map(|p| vec![0.0; p.len()]).collect();
    let mut k = 0;
    snaps.pass(&mut |s| {
        let i = phase_of(k);
        k += 1;
        let (Some(phase), Some(points), Some(delta)) = (phases.get(i), points.get(i), delta.get_mut(i)) else { return };
        let len = (phase.last - phase.first + 1) as f64;
        for r in s.regions.iter().filter(|r| r.nr_accesses > 0 && r.end > r.start) {
            let rate = (f64::from(r.nr_accesses) / series.max).min(1.0) / len;
            add_at(delta, points, r.start, rate);
            add_at(delta, points, r.end, -rate);
        }
    })?;
    Ok(phases
        .into_iter()
        .zip(points.iter().zip(&delta))
        .map(|(phase, (points, delta))| {
            let wss: u128 = series.wss[phase.first..=phase.last].iter().sum();
            let len = (phase.last - phase.first + 1) as u128;
            Phase { mean_wss: (wss / len) as u64, hot_ranges: hot_ranges(points, delta), ..phase }
        })
        .collect())
}

/// The target phases are computed for: the one with the most snapshots.
pub fn main_target(record: &Record) -> Option<&TargetRecord> {
    record.targets.iter().max_by_key(|t| t.snapshots.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use damo_record::model::{Intervals, Region};

    /// Points skips the edges the snapshot before had: what it gives is still every edge of
    /// every snapshot, sorted and distinct, with regions that split, merge, move, overlap or
    /// come out of order, and past the size where it sorts down.
    #[test]
    fn points_are_every_snapshots_edges() {
        let mut seed = 11u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut points = Points::default();
        let mut want = Vec::new();
        let mut edges: Vec<u64> = (0..400).map(|i| i * 100).collect();
        for snap in 0..3000 {
            // Mostly the last snapshot's edges, some moved, some new.
            for e in edges.iter_mut() {
                if next(8) == 0 {
                    *e = next(1 << 20) * 4;
                }
            }
            edges.sort_unstable();
            let mut regions: Vec<Region> = edges.windows(2).map(|w| Region { start: w[0], end: w[1], nr_accesses: 0, age: None }).collect();
            if snap % 7 == 0 {
                regions.reverse();
            }
            if snap % 11 == 0 {
                regions.push(Region { start: 10, end: 5000, nr_accesses: 0, age: None });
            }
            for r in &regions {
                want.extend([r.start, r.end]);
            }
            points.add(&regions);
        }
        assert!(points.sorted_len > 0, "the points sorted down on the way");
        want.sort_unstable();
        want.dedup();
        assert_eq!(points.finish(), want);
    }

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
                    let n = if r == hot {
                        15 + (noise >> 60) as u32 % 5
                    } else if noise >> 62 == 0 {
                        1
                    } else {
                        0
                    };
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
    fn spans_are_the_phases_spans() {
        for seed in 1..=3 {
            let t = damon_like(0.5, &LENGTHS, &HOT, seed);
            let o = PhaseOptions { min_snapshots: 10, ..Default::default() };
            let spans: Vec<_> = segment(&t, &o).iter().map(|p| p.first..=p.last).collect();
            assert_eq!(segment_spans(&t, &o), spans);
        }
    }

    #[test]
    fn a_steady_noisy_record_is_one_phase() {
        let mut t = planted();
        t.snapshots.truncate(30);
        assert_eq!(segment(&t, &PhaseOptions::default()).len(), 1);
        assert!(segment(&TargetRecord::default(), &PhaseOptions::default()).is_empty());
    }

    /// A DAMON-like record: eight 16 MiB regions, phases of `lengths` snapshots, each with its
    /// hot set (region indices, overlapping between phases), hot regions at `rate` of the
    /// most an aggregation counts (give or take 40%), cold ones with a stray access now and
    /// then, and every region split in two at a point that moves, as DAMON's adaptive
    /// regions do. Above them a 4 GiB mapping that is never hot (a large heap or file
    /// mapping) makes each of the 64 slices 64 MiB wide, so a hot region is a quarter of a
    /// slice: with weak rates the best split gains less than 0.5, as in the records.
    fn damon_like(rate: f64, lengths: &[usize], hot: &[&[u64]], seed: u64) -> TargetRecord {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as f64 / (1u64 << 31) as f64
        };
        let mut snapshots = Vec::new();
        for (p, &len) in lengths.iter().enumerate() {
            for _ in 0..len {
                let i = snapshots.len() as u64;
                let mut regions = Vec::new();
                for r in 0..8u64 {
                    let (start, end) = (0x1000_0000 + r * 0x100_0000, 0x1000_0000 + (r + 1) * 0x100_0000);
                    let cut = (start + ((0.2 + 0.6 * next()) * 0x100_0000 as f64) as u64) & !0xfff;
                    for (a, b) in [(start, cut), (cut, end)] {
                        let n = if hot[p].contains(&r) {
                            (20.0 * rate * (0.6 + 0.8 * next())).round()
                        } else if next() < 0.3 {
                            (1.0 + 2.0 * next() * rate).floor()
                        } else {
                            0.0
                        };
                        regions.push(Region { start: a, end: b, nr_accesses: n as u32, age: Some(0) });
                    }
                }
                let big = 0x1000_0000 + 8 * 0x100_0000;
                regions.push(Region { start: big, end: big + (4 << 30), nr_accesses: u32::from(next() < 0.3), age: Some(0) });
                snapshots.push(Snapshot { start_ns: i * 100_000_000, end_ns: (i + 1) * 100_000_000, regions, total_bytes: None });
            }
        }
        TargetRecord { intervals: Some(Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 }), snapshots, ..Default::default() }
    }

    const LENGTHS: [usize; 3] = [47, 83, 61];
    const HOT: [&[u64]; 3] = [&[0, 1], &[1, 2, 3, 4], &[5]];

    fn starts(phases: &[Phase]) -> Vec<usize> {
        phases.iter().map(|p| p.first).collect()
    }

    #[test]
    fn weak_and_strong_access_rates_split_alike_within_an_aggregation_interval() {
        // The weak records: the hottest slice at 0.25; and records at full rate.
        for rate in [0.25, 0.5, 1.0] {
            for seed in 1..=5 {
                let phases = segment(&damon_like(rate, &LENGTHS, &HOT, seed), &PhaseOptions { min_snapshots: 10, ..Default::default() });
                let found = starts(&phases);
                assert_eq!(found.len(), 3, "rate {rate} seed {seed}: {found:?}");
                for (got, want) in found.iter().zip([0, 47, 130]) {
                    assert!(got.abs_diff(want) <= 1, "rate {rate} seed {seed}: a phase starts at snapshot {got}, not {want}: {found:?}");
                }
            }
        }
    }

    #[test]
    fn weak_noise_alone_does_not_split() {
        for rate in [0.25, 1.0] {
            for seed in 1..=5 {
                let t = damon_like(rate, &[190], &[&[1, 2, 3, 4]], seed);
                assert_eq!(segment(&t, &PhaseOptions { min_snapshots: 10, ..Default::default() }).len(), 1, "rate {rate} seed {seed}");
            }
        }
    }

    #[test]
    fn a_small_shift_of_the_hot_set_splits_unless_the_same_code_ran() {
        // Phase 2 keeps three of phase 1's four hot regions and adds one: alike (cosine
        // about 0.75), yet a different hot set.
        let hot: [&[u64]; 2] = [&[1, 2, 3, 4], &[2, 3, 4, 6]];
        let t = damon_like(1.0, &[60, 60], &hot, 3);
        let o = PhaseOptions { min_snapshots: 10, ..Default::default() };
        let split = segment(&t, &o);
        assert_eq!(starts(&split), [0, 60]);
        let sim = similarity(&split[0], &split[1]);
        assert!((0.5..0.9).contains(&sim), "similarity {sim}");
        let mut asked = 0;
        let joined = segment_with(&t, &o, &[], |a, b| {
            asked += 1;
            if (a.first, b.first) == (0, 60) {
                Code::Same
            } else {
                Code::Unknown
            }
        });
        assert_eq!(asked, 1);
        assert_eq!(starts(&joined), [0], "the same code on a shifted hot set is one phase");
        assert_eq!(joined[0].last, 119);
    }

    #[test]
    fn a_code_cut_holds_where_the_hot_set_did_not_change() {
        // One hot set throughout; the code changed at snapshot 70 (DAMON saw nothing of it).
        let t = damon_like(1.0, &[150], &[&[1, 2, 3, 4]], 4);
        let o = PhaseOptions { min_snapshots: 10, ..Default::default() };
        let code = |a: &Phase, b: &Phase| if a.last + 1 == 70 && b.first == 70 { Code::Different } else { Code::Unknown };
        assert_eq!(starts(&segment_with(&t, &o, &[70], code)), [0, 70]);
        // Cuts too near either end or a hot-set cut are not phases of their own.
        let two = damon_like(1.0, &LENGTHS[..2], &HOT[..2], 5);
        assert_eq!(starts(&segment_with(&two, &o, &[3, 49, 125], |_, _| Code::Different)), [0, 49]);
    }

    #[test]
    fn a_late_hot_set_cut_gives_way_to_the_code_cut() {
        // DAMON saw phase 2's hot set only from snapshot 60; its code started at 52.
        let t = damon_like(1.0, &[60, 70], &HOT[..2], 6);
        let o = PhaseOptions { min_snapshots: 10, ..Default::default() };
        assert_eq!(starts(&segment(&t, &o)), [0, 60]);
        assert_eq!(starts(&segment_with(&t, &o, &[52], |_, _| Code::Different)), [0, 52]);
    }

    #[test]
    fn change_points_of_a_code_series() {
        // Two frames' shares: the first phase runs under frame 0, the second under frame 1.
        let mut state = 9u64;
        let mut noise = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 40) as f64 / (1u64 << 24) as f64 * 0.2
        };
        let x: Vec<Vec<f64>> = (0..100).map(|t| if t < 38 { vec![0.9 + noise() - 0.1, noise()] } else { vec![noise(), 0.9 + noise() - 0.1] }).collect();
        assert_eq!(change_points(&x, 10, 12), [38]);
        let steady: Vec<Vec<f64>> = (0..100).map(|_| vec![0.5 + noise(), 0.5 - noise()]).collect();
        assert!(change_points(&steady, 10, 12).is_empty());
        assert!(change_points::<Vec<f64>>(&[], 10, 12).is_empty());
    }
}
