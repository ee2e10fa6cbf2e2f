//! Phases with the code that ran in each: the access phases of `damo_report::phases`, cut
//! also where the code changed, and named by attribution ([`crate::attribution`]).
//!
//! DAMON's view of a phase change can come late, early or not at all: at weak access rates
//! a change gains little over the noise, and DAMON can miss a whole phase's accesses (under
//! emulation, and on real machines where a process keeps its TLB entries). The code that
//! runs changes at once, so the stacks are a second signal: per snapshot, the share of its
//! complete stacks under each frame that comes and goes over the record ([`code_features`]),
//! segmented as the hot sets are (`damo_report::phases::change_points`). Phases cut there
//! stay two when their code clearly differs ([`compare`]), even on the same memory: the
//! question is which code made the memory hot.

use std::{
    collections::{HashMap, HashSet},
    ops::Range,
};

use damo_record::model::{Intervals, Record, TargetRecord};
use damo_report::phases::{self, Code, Phase, PhaseOptions, Series, SnapshotPasses};

use crate::{
    attribution::{self, Attribution},
    stacks::{NamedStack, Namer},
};

/// A phase with the samples that ran in it, named, and what they say.
pub struct Found {
    pub phase: Phase,
    /// Indices into the record's samples.
    pub samples: Vec<usize>,
    pub attribution: Attribution,
    /// The phases (indices) of the step this phase is part of, itself alone unless the
    /// same code ran its neighbours ([`attribution::step_driver`]).
    pub step: Range<usize>,
    /// The frame that ran the whole step, when it holds more than this phase.
    pub step_driver: Option<String>,
}

/// The record's samples named once, in time order, for phase finding and attribution.
pub struct Named {
    pub stacks: Vec<NamedStack>,
    /// Sample times, ascending, parallel to `order`.
    times: Vec<u64>,
    /// Sample indices in time order.
    order: Vec<usize>,
}

impl Named {
    pub fn new(record: &Record, namer: Option<&mut Namer>) -> Self {
        let stacks: Vec<NamedStack> = match namer {
            Some(namer) => record.samples.iter().map(|s| namer.name(s)).collect(),
            None => Vec::new(),
        };
        let mut order: Vec<usize> = (0..stacks.len()).collect();
        order.sort_by_key(|&i| record.samples[i].ts_ns);
        let times = order.iter().map(|&i| record.samples[i].ts_ns).collect();
        Named { stacks, times, order }
    }

    /// Positions in `order` of the samples in `[start, end)` ns.
    fn span(&self, start: u64, end: u64) -> std::ops::Range<usize> {
        self.times.partition_point(|&t| t < start)..self.times.partition_point(|&t| t < end)
    }

    /// Sample indices in `[start, end)` ns.
    fn between(&self, start: u64, end: u64) -> Vec<usize> {
        self.order[self.span(start, end)].to_vec()
    }

    /// The stacks in `[start, end)` and the rest of the record's.
    fn split(&self, start: u64, end: u64) -> (Vec<&NamedStack>, Vec<&NamedStack>) {
        let range = self.span(start, end);
        let pick = |range: &[usize]| range.iter().map(|&i| &self.stacks[i]).collect::<Vec<_>>();
        let mut rest = pick(&self.order[..range.start]);
        rest.extend(pick(&self.order[range.end..]));
        (pick(&self.order[range]), rest)
    }

    fn stacks_in(&self, start: u64, end: u64) -> Vec<&NamedStack> {
        self.order[self.span(start, end)].iter().map(|&i| &self.stacks[i]).collect()
    }
}

/// The phases of `target` with the code that ran in each (see the module doc). A phase is
/// named against the record outside its step, so the parts of one step (a split by memory
/// under one caller) are not told apart by what only one of them calls.
pub fn find(target: &TargetRecord, options: &PhaseOptions, named: &Named) -> Vec<Found> {
    find_in(&mut &*target, target.intervals, options, named).unwrap_or_else(|never| match never {})
}

/// [`find`] on the snapshots `snaps` holds (a target in memory, or streamed from its file:
/// [`phases::SnapshotPasses`]), of a target with `intervals`.
pub fn find_in<P: SnapshotPasses>(snaps: &mut P, intervals: Option<Intervals>, options: &PhaseOptions, named: &Named) -> Result<Vec<Found>, P::Error> {
    let series = Series::gather(snaps, intervals)?;
    let code_cuts = code_cuts(&series.times, options, named);
    let outlined = phases::outlines(&series, options, &code_cuts, |a, b| compare(named, a, b));
    let phases = phases::describe(&series, outlined, snaps)?;
    let stacks = |p: &Phase| named.stacks_in(p.start_ns, p.end_ns);
    let mut found = Vec::with_capacity(phases.len());
    for (step, step_driver) in steps(&phases, named) {
        let (_, rest) = named.split(phases[step.start].start_ns, phases[step.end - 1].end_ns);
        for i in step.clone() {
            let siblings: Vec<&NamedStack> = step.clone().filter(|&j| j != i).flat_map(|j| stacks(&phases[j])).collect();
            let attribution = attribution::attribute_in_step(&stacks(&phases[i]), &rest, &siblings);
            let phase = phases[i].clone();
            found.push(Found { samples: named.between(phase.start_ns, phase.end_ns), phase, attribution, step: step.clone(), step_driver: step_driver.clone() });
        }
    }
    Ok(found)
}

/// Runs of neighbouring phases that one frame ran ([`attribution::step_driver`]), with that
/// frame; every phase is in one run.
fn steps(phases: &[Phase], named: &Named) -> Vec<(Range<usize>, Option<String>)> {
    let driver = |run: Range<usize>| {
        let parts: Vec<Vec<&NamedStack>> = run.clone().map(|i| named.stacks_in(phases[i].start_ns, phases[i].end_ns)).collect();
        let parts: Vec<&[&NamedStack]> = parts.iter().map(Vec::as_slice).collect();
        let (_, outside) = named.split(phases[run.start].start_ns, phases[run.end - 1].end_ns);
        attribution::step_driver(&parts, &outside)
    };
    let mut steps: Vec<(Range<usize>, Option<String>)> = Vec::new();
    for i in 0..phases.len() {
        let joined = steps.last_mut().and_then(|(run, found)| {
            let d = driver(run.start..i + 1)?;
            (run.end, *found) = (i + 1, Some(d));
            Some(())
        });
        if joined.is_none() {
            steps.push((i..i + 1, None));
        }
    }
    steps
}

/// How much more of one part's stacks than of the other's a frame must be in for the two to
/// have run different code: most of one's, little of the other's. A phase's driver is in
/// nearly all of its stacks and in none of its neighbour's (a gap near 1); the start of a
/// process, its arguments parsed and its libraries loaded beside the first phase's work,
/// moved the first phase's frames by 25 points in a VM record.
const DIFFERENT_CODE: f64 = 0.5;

/// Snapshot indices where the code that ran changed: change points of [`code_features`]
/// whose two sides ran different code ([`attribution::differs`] by [`DIFFERENT_CODE`]). A
/// cut that only shifted the mix (a short transient at the process's start, which a cut
/// `min_snapshots` later would otherwise stand for) is dropped.
fn code_cuts(times: &[(u64, u64)], options: &PhaseOptions, named: &Named) -> Vec<usize> {
    let mut cuts = phases::change_points(&code_features(times, named), options.min_snapshots, options.max_phases);
    let stacks = |a: usize, b: usize| named.stacks_in(times[a].0, times[b - 1].1);
    while let Some(weak) = (0..cuts.len()).find(|&i| {
        let (before, after) = (if i == 0 { 0 } else { cuts[i - 1] }, cuts.get(i + 1).copied().unwrap_or(times.len()));
        !attribution::differs(&stacks(before, cuts[i]), &stacks(cuts[i], after), DIFFERENT_CODE)
    }) {
        cuts.remove(weak);
    }
    cuts
}

/// Frames whose share of the record's complete stacks is at least this (and at most
/// `1 - MIN_SHARE`) are code features: rarer ones are noise, commoner ones (`main`, the
/// event loop) run in every phase.
const MIN_SHARE: f64 = 0.02;
/// The most frames followed, commonest first.
const MAX_FEATURES: usize = 32;

/// Per snapshot (its start and end in `times`), the share of the complete stacks sampled
/// during it that contain each frame that comes and goes over the record (nameable, in
/// between [`MIN_SHARE`] and `1 - MIN_SHARE` of all complete stacks). Empty without such
/// frames.
pub fn code_features(times: &[(u64, u64)], named: &Named) -> Vec<Vec<f64>> {
    let complete: Vec<&NamedStack> = named.stacks.iter().filter(|s| attribution::is_complete(s)).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut seen = HashSet::new();
    for s in &complete {
        seen.clear();
        for f in s.frames.iter().map(|f| &**f).filter(|f| attribution::nameable(f)) {
            if seen.insert(f) {
                *counts.entry(f).or_default() += 1;
            }
        }
    }
    let total = complete.len() as f64;
    let mut frames: Vec<(&str, usize)> = counts.into_iter().filter(|&(_, n)| (MIN_SHARE..=1.0 - MIN_SHARE).contains(&(n as f64 / total))).collect();
    frames.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    frames.truncate(MAX_FEATURES);
    if frames.is_empty() {
        return Vec::new();
    }
    let column: HashMap<&str, usize> = frames.iter().enumerate().map(|(k, &(f, _))| (f, k)).collect();
    let mut x: Vec<Option<Vec<f64>>> = times
        .iter()
        .map(|&(start, end)| {
            let stacks: Vec<&NamedStack> = named.stacks_in(start, end).into_iter().filter(|s| attribution::is_complete(s)).collect();
            if stacks.is_empty() {
                return None;
            }
            let mut v = vec![0.0; frames.len()];
            for s in &stacks {
                seen.clear();
                for k in s.frames.iter().filter_map(|f| column.get(&**f)) {
                    if seen.insert(frames[*k].0) {
                        v[*k] += 1.0 / stacks.len() as f64;
                    }
                }
            }
            Some(v)
        })
        .collect();
    // A snapshot without stacks (the program idle, or sleeping between steps) keeps the code
    // that ran last: a phase starts when its own code starts, not when the last one stopped
    // (the bundled workload idles a second between its fill and its first phase). Those
    // before any stack take the first that ran.
    let first = x.iter().flatten().next().cloned().unwrap_or_else(|| vec![0.0; frames.len()]);
    let mut last = first;
    for v in &mut x {
        match v {
            Some(v) => last.clone_from(v),
            None => *v = Some(last.clone()),
        }
    }
    x.into_iter().flatten().collect()
}

/// What the stacks say of two neighbouring phases: different code when a frame is in
/// clearly more of one's stacks than of the other's ([`DIFFERENT_CODE`]); the same
/// when the same function is responsible for each against the rest of the record, or no
/// frame is distinctive of one against the other; else nothing.
pub fn compare(named: &Named, a: &Phase, b: &Phase) -> Code {
    let ((first, first_rest), (second, second_rest)) = (named.split(a.start_ns, a.end_ns), named.split(b.start_ns, b.end_ns));
    if first.is_empty() || second.is_empty() {
        return Code::Unknown;
    }
    if attribution::differs(&first, &second, DIFFERENT_CODE) {
        return Code::Different;
    }
    let (ra, rb) = (attribution::attribute(&first, &first_rest).responsible, attribution::attribute(&second, &second_rest).responsible);
    let neither = || attribution::attribute(&first, &second).responsible.is_none() && attribution::attribute(&second, &first).responsible.is_none();
    if (ra.is_some() && ra == rb) || neither() {
        Code::Same
    } else {
        Code::Unknown
    }
}

#[cfg(test)]
mod tests {
    use damo_record::model::{Intervals, Region, Snapshot};

    use super::*;
    use crate::symbols::Name;

    /// 100 ms snapshots; while `hot(i)` is `Some(r)` region `r` of four is hot, else none is.
    fn target(n: usize, hot: impl Fn(usize) -> Option<u64>) -> TargetRecord {
        let snapshots = (0..n)
            .map(|i| {
                let regions = (0..4u64)
                    .map(|r| Region { start: 0x1000_0000 + r * 0x100_0000, end: 0x1000_0000 + (r + 1) * 0x100_0000, nr_accesses: if hot(i) == Some(r) { 18 } else { 0 }, age: Some(0) })
                    .collect();
                Snapshot { start_ns: i as u64 * 100_000_000, end_ns: (i as u64 + 1) * 100_000_000, regions, total_bytes: None }
            })
            .collect();
        TargetRecord { intervals: Some(Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 }), snapshots, ..Default::default() }
    }

    /// Ten samples per snapshot, the stack of each from `stack(snapshot, k)` ("" for none).
    fn named(n: usize, stack: impl Fn(usize, usize) -> &'static str) -> Named {
        let (mut stacks, mut times) = (Vec::new(), Vec::new());
        for i in 0..n {
            for k in (0..10).filter(|&k| !stack(i, k).is_empty()) {
                let frames: Vec<Name> = stack(i, k).split(';').map(Name::from).collect();
                stacks.push(NamedStack { symbol: frames.last().unwrap().clone(), frames, object: "app".into(), source: None });
                times.push(i as u64 * 100_000_000 + k as u64 * 10_000_000);
            }
        }
        Named { order: (0..stacks.len()).collect(), stacks, times }
    }

    /// Each phase's function calls the helper all share most of the time.
    fn phase_stack(i: usize, k: usize) -> &'static str {
        let shared = k % 10 < 8;
        match (i, shared) {
            (0..40, _) => "_start;main;fill;memset",
            (40..80, true) => "_start;main;caller_scan;shared_touch",
            (40..80, false) => "_start;main;caller_scan",
            (80..115, true) => "_start;main;caller_update;shared_touch",
            (80..115, false) => "_start;main;caller_update",
            (_, true) => "_start;main;caller_hot;shared_touch",
            (_, false) => "_start;main;caller_hot",
        }
    }

    fn options() -> PhaseOptions {
        PhaseOptions { min_snapshots: 10, ..Default::default() }
    }

    #[test]
    fn phases_are_cut_where_the_code_changed_though_damon_saw_one_hot_set() {
        // DAMON saw the fill's memory, then one buffer hot through all three phases (it
        // missed the others' accesses): the code alone tells them apart.
        let t = target(150, |i| Some(if i < 40 { 0 } else { 1 }));
        let found = find(&t, &options(), &named(150, phase_stack));
        let starts: Vec<usize> = found.iter().map(|f| f.phase.first).collect();
        let names: Vec<Option<&str>> = found.iter().map(|f| f.attribution.responsible.as_deref()).collect();
        assert_eq!(starts, [0, 40, 80, 115]);
        assert_eq!(names, [Some("fill"), Some("caller_scan"), Some("caller_update"), Some("caller_hot")]);
    }

    #[test]
    fn a_phase_starts_where_its_code_starts_not_where_the_last_stopped() {
        // The fill, two idle seconds (no stacks; DAMON saw nothing hot), then the scan.
        let t = target(120, |i| match i {
            0..40 => Some(0),
            40..60 => None,
            _ => Some(1),
        });
        let n = named(120, |i, k| match i {
            0..40 => "_start;main;fill;memset",
            40..60 => "",
            _ if k < 8 => "_start;main;caller_scan;shared_touch",
            _ => "_start;main;caller_scan",
        });
        let found = find(&t, &options(), &n);
        let starts: Vec<usize> = found.iter().map(|f| f.phase.first).collect();
        assert_eq!(*starts.last().unwrap(), 60, "{starts:?}");
        assert_eq!(found.last().unwrap().attribution.responsible.as_deref(), Some("caller_scan"));
    }

    #[test]
    fn different_memory_under_the_same_code_stays_two_phases() {
        // The hot set moved at 60, inside caller_scan's phase, and at 80 and 115 with the
        // code: what is hot changed, so it is a phase of its own.
        let t = target(150, |i| {
            Some(match i {
                0..40 => 0,
                40..60 => 1,
                60..80 => 2,
                80..115 => 3,
                _ => 1,
            })
        });
        let hot_set_only = damo_report::phases::segment(&t, &options());
        assert_eq!(hot_set_only.iter().map(|p| p.first).collect::<Vec<_>>(), [0, 40, 60, 80, 115]);
        let found = find(&t, &options(), &named(150, phase_stack));
        assert_eq!(found.iter().map(|f| f.phase.first).collect::<Vec<_>>(), [0, 40, 60, 80, 115], "different memory, the same code: two phases");
    }

    #[test]
    fn code_that_mixes_steadily_cuts_nothing() {
        // Two request handlers interleaved at random all along: one phase.
        let t = target(150, |_| Some(1));
        for seed in 1..=100u64 {
            // Fair, independent coins (the top bit of xorshift64*).
            let mut rng = damo_record::synth::Rng(seed);
            let coin: Vec<bool> = (0..1500).map(|_| rng.next_u64() >> 63 == 1).collect();
            let n = named(150, |i, k| if coin[i * 10 + k] { "_start;main;serve;handle_get;lookup" } else { "_start;main;serve;handle_put;insert" });
            let cuts = damo_report::phases::change_points(&code_features(&damo_report::phases::Series::of(&t).times, &n), 10, 12);
            assert!(cuts.is_empty(), "seed {seed}: {cuts:?}");
            assert_eq!(find(&t, &options(), &n).len(), 1);
        }
    }
}
