//! What the live view knows: the last snapshots of each target, the named samples of the
//! last seconds, phase markers found online, and what `w` writes. Fed by [`Feed`]s (from
//! the collector, or replayed from a record in tests); drawn by `ui` and `plain`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use damo_profile::stacks::{NamedStack, Namer};
use damo_record::model::{Intervals, Module, Record, Snapshot, StackSample, TargetRecord};
use damo_report::{
    holistic::bands,
    phases::{self, PhaseOptions},
};

use super::feed::Feed;
use crate::snapshots::TargetKey;

/// Address bands the heatmap draws at most, as `report holistic`.
pub const MAX_BANDS: usize = 3;
/// Samples older than this (before the newest) leave the function list.
pub const FUNCTION_WINDOW_NS: u64 = 2_000_000_000;
/// Functions listed per phase marker.
const PHASE_TOP: usize = 3;
/// What `w` can write at most: the oldest go first beyond it.
const HISTORY_SNAPSHOTS: usize = 100_000;
const HISTORY_SAMPLES: usize = 2_000_000;

/// A sample as the view keeps it: named once, on arrival.
#[derive(Debug, Clone)]
pub struct NamedSample {
    pub ts_ns: u64,
    pub comm: String,
    pub object: String,
    pub function: String,
}

/// A phase boundary found online, with what ran after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub start_ns: u64,
    /// The phase's busiest functions and their share of its samples.
    pub top: Vec<(String, f64)>,
}

/// One row of the function list.
#[derive(Debug, Clone, PartialEq)]
pub struct HotFunction {
    pub share: f64,
    pub comm: String,
    pub object: String,
    pub function: String,
}

#[derive(Debug)]
pub struct TargetView {
    pub key: TargetKey,
    /// The last `window` snapshots, oldest first.
    pub snapshots: VecDeque<Snapshot>,
    pub markers: Vec<Marker>,
    /// The hot bands of the window, highest first (see [`bands::hot_bands`]).
    pub bands: Vec<(u64, u64)>,
}

pub struct LiveModel {
    /// Snapshots kept per target: the heatmap's width and the phase finder's memory.
    window: usize,
    phase_options: Option<PhaseOptions>,
    pub kdamonds: BTreeMap<u32, (u32, Option<Intervals>)>,
    pub targets: Vec<TargetView>,
    modules: Vec<Module>,
    namer: Option<Namer>,
    /// The named samples of the last [`FUNCTION_WINDOW_NS`] and the phases' spans.
    samples: VecDeque<NamedSample>,
    /// Everything seen, for `w` (bounded: the oldest go first).
    history: (VecDeque<(TargetKey, Snapshot)>, VecDeque<StackSample>),
    pub dropped_history: u64,
    pub totals: Totals,
    first_ns: Option<u64>,
    pub last_ns: u64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    pub snapshots: u64,
    pub samples: u64,
    /// Samples per second over the function window.
    pub sample_rate: f64,
}

impl LiveModel {
    /// `phase_options`: `None` takes [`PhaseOptions::default`] scaled to one second of
    /// each target's aggregation interval, as `report phases` does by default.
    pub fn new(window: usize, phase_options: Option<PhaseOptions>) -> Self {
        Self {
            window: window.max(2),
            phase_options,
            kdamonds: BTreeMap::new(),
            targets: Vec::new(),
            modules: Vec::new(),
            namer: None,
            samples: VecDeque::new(),
            history: Default::default(),
            dropped_history: 0,
            totals: Totals::default(),
            first_ns: None,
            last_ns: 0,
        }
    }

    /// Takes one piece of the stream. Returns whether it was a tick (a time to redraw).
    pub fn push(&mut self, feed: Feed) -> bool {
        match feed {
            Feed::Kdamond { pid, index, intervals } => {
                self.kdamonds.insert(pid, (index, intervals));
            }
            Feed::Snapshot(key, snapshot) => self.snapshot(key, snapshot),
            Feed::Stack(sample) => self.stack(sample),
            Feed::Modules(modules) => {
                // Names stay valid: modules are only appended. The symbolizer starts over.
                self.modules = modules;
                self.namer = None;
            }
            Feed::Tick => {
                self.refresh();
                return true;
            }
        }
        false
    }

    fn see(&mut self, ts_ns: u64) {
        self.first_ns.get_or_insert(ts_ns);
        self.last_ns = self.last_ns.max(ts_ns);
    }

    fn snapshot(&mut self, key: TargetKey, snapshot: Snapshot) {
        self.see(snapshot.end_ns);
        self.totals.snapshots += 1;
        let view = match self.targets.iter().position(|t| t.key == key) {
            Some(i) => &mut self.targets[i],
            None => {
                self.targets.push(TargetView { key, snapshots: VecDeque::new(), markers: Vec::new(), bands: Vec::new() });
                self.targets.last_mut().expect("just pushed")
            }
        };
        if view.snapshots.len() == self.window {
            view.snapshots.pop_front();
        }
        view.snapshots.push_back(snapshot.clone());
        push_bounded(&mut self.history.0, (key, snapshot), HISTORY_SNAPSHOTS, &mut self.dropped_history);
    }

    fn stack(&mut self, sample: StackSample) {
        self.see(sample.ts_ns);
        self.totals.samples += 1;
        let record = Record { modules: self.modules.clone(), ..Default::default() };
        let namer = self.namer.get_or_insert_with(|| Namer::new(&record, &[]));
        let named = namer.name(&sample);
        self.samples.push_back(NamedSample { ts_ns: sample.ts_ns, comm: sample.comm.clone(), object: named.object.to_string(), function: function_of(&sample, &named) });
        push_bounded(&mut self.history.1, sample, HISTORY_SAMPLES, &mut self.dropped_history);
    }

    /// Once a tick: drops what left the windows, picks the bands and finds the phases.
    pub fn refresh(&mut self) {
        // Phases need the samples of the whole snapshot window; the list only the last seconds.
        let oldest = self.targets.iter().filter_map(|t| t.snapshots.front()).map(|s| s.start_ns).min().unwrap_or(u64::MAX);
        let keep_from = oldest.min(self.last_ns.saturating_sub(FUNCTION_WINDOW_NS));
        while self.samples.front().is_some_and(|s| s.ts_ns < keep_from) {
            self.samples.pop_front();
        }
        let recent = self.samples.iter().filter(|s| s.ts_ns + FUNCTION_WINDOW_NS > self.last_ns).count();
        let span = self.samples.iter().find(|s| s.ts_ns + FUNCTION_WINDOW_NS > self.last_ns).map_or(0, |s| self.last_ns - s.ts_ns);
        self.totals.sample_rate = if span > 0 { recent as f64 * 1e9 / span as f64 } else { 0.0 };
        for i in 0..self.targets.len() {
            let target = self.target_record(i);
            self.targets[i].bands = bands::hot_bands(&target, MAX_BANDS);
            self.find_phases(i, &target);
        }
    }

    /// The window of target `i` as a record's target, for damo-report's functions.
    pub fn target_record(&self, i: usize) -> TargetRecord {
        let t = &self.targets[i];
        let intervals = self.kdamonds.get(&t.key.kdamond_pid).and_then(|k| k.1);
        TargetRecord { context_idx: t.key.context_idx, scheme_idx: t.key.scheme_idx, target_id: t.key.target_id, intervals, snapshots: t.snapshots.iter().cloned().collect(), ..Default::default() }
    }

    /// `report phases`'s rule on the window: the boundaries it finds there replace the
    /// markers inside the window; older markers stay as they were found.
    fn find_phases(&mut self, i: usize, target: &TargetRecord) {
        let Some(first) = target.snapshots.first() else { return };
        let options = self.phase_options.unwrap_or_else(|| {
            let aggr_ns = target.intervals.map(|i| i.aggr_us * 1000).filter(|&a| a > 0).unwrap_or_else(|| first.end_ns.saturating_sub(first.start_ns).max(1));
            PhaseOptions { min_snapshots: (1_000_000_000 / aggr_ns).max(1) as usize, ..Default::default() }
        });
        let found = phases::segment_spans(target, &options);
        let mut markers: Vec<Marker> = self.targets[i].markers.iter().filter(|m| m.start_ns < first.start_ns).cloned().collect();
        // The window's first phase began before it (or at the first snapshot): no marker.
        for span in found.iter().skip(1) {
            let (start_ns, end_ns) = (target.snapshots[*span.start()].start_ns, target.snapshots[*span.end()].end_ns);
            markers.push(Marker { start_ns, top: self.top_between(start_ns, end_ns, PHASE_TOP, None) });
        }
        self.targets[i].markers = markers;
    }

    /// The busiest functions between two times, with their shares of the samples there;
    /// `keep` picks the samples counted.
    fn top_between(&self, start_ns: u64, end_ns: u64, k: usize, keep: Option<&dyn Fn(u64) -> bool>) -> Vec<(String, f64)> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let mut n = 0;
        for s in self.samples.iter().filter(|s| (start_ns..end_ns).contains(&s.ts_ns) && keep.is_none_or(|f| f(s.ts_ns))) {
            *counts.entry(&s.function).or_default() += 1;
            n += 1;
        }
        let mut top: Vec<(String, f64)> = counts.into_iter().map(|(f, c)| (f.to_owned(), c as f64 / n as f64)).collect();
        // A sample or two across a boundary is not what the phase ran.
        top.retain(|t| t.1 >= 0.01);
        top.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(k);
        top
    }

    /// The hot functions of the last [`FUNCTION_WINDOW_NS`], busiest first; with `filter`
    /// (target, band, rate), only samples taken while that band's access rate was at least
    /// `rate`.
    pub fn hot_functions(&self, k: usize, filter: Option<(usize, usize, f64)>) -> Vec<HotFunction> {
        let from = self.last_ns.saturating_sub(FUNCTION_WINDOW_NS);
        let hot_times: Option<Vec<(u64, u64)>> = filter.map(|(t, b, rate)| self.band_rates(t, b).into_iter().filter(|&(_, _, r)| r >= rate).map(|(s, e, _)| (s, e)).collect());
        let mut counts: HashMap<(&str, &str, &str), usize> = HashMap::new();
        let mut n = 0;
        for s in self.samples.iter().filter(|s| s.ts_ns >= from) {
            if let Some(spans) = &hot_times {
                if !spans.iter().any(|&(a, b)| (a..b).contains(&s.ts_ns)) {
                    continue;
                }
            }
            *counts.entry((&s.function, &s.comm, &s.object)).or_default() += 1;
            n += 1;
        }
        let mut top: Vec<HotFunction> =
            counts.into_iter().map(|((function, comm, object), c)| HotFunction { share: c as f64 / n as f64, comm: comm.into(), object: object.into(), function: function.into() }).collect();
        top.sort_by(|a, b| b.share.total_cmp(&a.share).then_with(|| a.function.cmp(&b.function)));
        top.truncate(k);
        top
    }

    /// The most `nr_accesses` a region of target `i` can have: from its kdamond's
    /// intervals, else the busiest region of the window.
    fn max_accesses(&self, i: usize) -> f64 {
        let t = &self.targets[i];
        let from_intervals = self.kdamonds.get(&t.key.kdamond_pid).and_then(|k| k.1).map_or(0, |i| i.max_nr_accesses());
        let busiest = t.snapshots.iter().flat_map(|s| &s.regions).map(|r| u64::from(r.nr_accesses)).max().unwrap_or(0);
        from_intervals.max(busiest).max(1) as f64
    }

    /// Per snapshot of target `i`: its span and the highest access rate (0..1) in band `b`.
    pub fn band_rates(&self, i: usize, b: usize) -> Vec<(u64, u64, f64)> {
        let Some(&(lo, hi)) = self.targets[i].bands.get(b) else { return Vec::new() };
        let max = self.max_accesses(i);
        let t = &self.targets[i];
        t.snapshots.iter().map(|s| (s.start_ns, s.end_ns, s.regions.iter().filter(|r| r.start < hi && r.end > lo).map(|r| f64::from(r.nr_accesses) / max).fold(0.0, f64::max))).collect()
    }

    /// Access rates (0..1) of target `i`'s band `b`: `rows` address slices (highest first)
    /// by the last `cols` snapshots (oldest first).
    pub fn heat(&self, i: usize, b: usize, rows: usize, cols: usize) -> Vec<Vec<f64>> {
        let t = &self.targets[i];
        let Some(&(lo, hi)) = t.bands.get(b) else { return Vec::new() };
        let max = self.max_accesses(i);
        let step = ((hi - lo) / rows.max(1) as u64).max(1);
        let shown: Vec<&Snapshot> = t.snapshots.iter().skip(t.snapshots.len().saturating_sub(cols)).collect();
        (0..rows)
            .map(|row| {
                let top = hi - step * row as u64;
                let bottom = top.saturating_sub(step).max(lo);
                shown.iter().map(|s| s.regions.iter().filter(|r| r.start < top && r.end > bottom).map(|r| f64::from(r.nr_accesses) / max).fold(0.0, f64::max)).collect()
            })
            .collect()
    }

    /// Working set size per snapshot of target `i` (bytes of regions with any access), as
    /// `report holistic` draws it.
    pub fn wss(&self, i: usize) -> Vec<u64> {
        let t = &self.targets[i];
        t.snapshots.iter().map(|s| s.regions.iter().filter(|r| r.nr_accesses > 0).map(|r| r.size()).sum()).collect()
    }

    /// The target shown first: the one with the most snapshots, as `report phases` picks.
    pub fn main_target(&self) -> Option<usize> {
        (0..self.targets.len()).max_by_key(|&i| (self.targets[i].snapshots.len(), std::cmp::Reverse(i)))
    }

    /// Seconds since the first event seen.
    pub fn elapsed(&self, ts_ns: u64) -> f64 {
        ts_ns.saturating_sub(self.first_ns.unwrap_or(ts_ns)) as f64 / 1e9
    }

    /// Everything kept so far, as a record for `w` (module table included).
    pub fn history(&self) -> (&VecDeque<(TargetKey, Snapshot)>, &VecDeque<StackSample>, &[Module]) {
        (&self.history.0, &self.history.1, &self.modules)
    }
}

/// Sizes in the binary units damo prints: "24.0 MiB".
pub fn size(bytes: u64) -> String {
    let b = bytes as f64;
    for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        let scale = (1u64 << shift) as f64;
        if b >= scale {
            return format!("{:.1} {unit}", b / scale);
        }
    }
    format!("{bytes} B")
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, max: usize, dropped: &mut u64) {
    if queue.len() == max {
        queue.pop_front();
        *dropped += 1;
    }
    queue.push_back(item);
}

/// What a sample counts for in the function list: its innermost named user frame (the
/// program's own code, even while it is in a system call or in an unnamed library), else
/// where the CPU was.
fn function_of(sample: &StackSample, named: &NamedStack) -> String {
    let user_frames = if sample.user.is_empty() { 0 } else { named.frames.iter().position(|f| &**f == "-").unwrap_or(named.frames.len()) };
    named.frames[..user_frames].iter().rev().find(|f| !f.starts_with('[')).unwrap_or(&named.symbol).to_string()
}
