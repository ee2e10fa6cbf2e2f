//! What the live view knows: the last snapshots of each target, the named samples of the
//! last seconds, phase markers found online, and what `w` writes. Fed by [`Feed`]s (from
//! the collector, or replayed from a record in tests); drawn by `ui` and `plain`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use damo_profile::stacks::{NamedStack, Namer};
use damo_record::model::{Intervals, Losses, Module, Record, Snapshot, StackSample, TargetRecord};
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
/// How often (in the stream's time) ticks find the hot bands and the phases again. Both
/// look at the whole window (a minute at DAMON's default intervals): every second they were
/// nine tenths of the view's CPU (2.41% of a core in `cargo bench --bench live`; every other
/// second, 1.1-1.4%). A phase lasts a second at least; its marker comes up to this
/// much later, and the heatmap keeps drawing the newest snapshots meanwhile.
const ANALYSIS_NS: u64 = 2_000_000_000;
/// Functions listed per phase marker.
const PHASE_TOP: usize = 3;
/// What `w` can write at most: the oldest go first beyond it.
const HISTORY_SNAPSHOTS: usize = 100_000;
const HISTORY_SAMPLES: usize = 2_000_000;

/// A sample as the view keeps it: named once, on arrival, its names interned (counting
/// samples per function every second hashed their strings: a tenth of the view's CPU).
#[derive(Debug, Clone, Copy)]
struct NamedSample {
    ts_ns: u64,
    /// Index into [`Names::rows`]: (command, module, function).
    row: u32,
    /// Index into [`Names::functions`].
    function: u32,
}

/// The distinct names the samples carry, each kept once.
#[derive(Default)]
struct Names {
    rows: Vec<(String, String, String)>,
    row_ids: HashMap<(String, String, String), u32>,
    functions: Vec<String>,
    function_ids: HashMap<String, u32>,
}

impl Names {
    fn intern(&mut self, comm: &str, object: &str, function: String) -> (u32, u32) {
        let function_id = match self.function_ids.get(&function) {
            Some(&id) => id,
            None => {
                let id = self.functions.len() as u32;
                self.functions.push(function.clone());
                self.function_ids.insert(function.clone(), id);
                id
            }
        };
        let key = (comm.to_owned(), object.to_owned(), function);
        let row = match self.row_ids.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.rows.len() as u32;
                self.rows.push(key.clone());
                self.row_ids.insert(key, id);
                id
            }
        };
        (row, function_id)
    }
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
    /// The last `window` snapshots, oldest first, as the record's target damo-report's
    /// functions take (kept in that shape: copying it every second was a tenth of the CPU).
    pub window: TargetRecord,
    /// Per snapshot of the window, found once on arrival: its working set size and its
    /// busiest region's `nr_accesses`.
    summaries: VecDeque<(u64, u32)>,
    pub markers: Vec<Marker>,
    /// The hot bands of the window, highest first (see [`bands::hot_bands`]).
    pub bands: Vec<(u64, u64)>,
    /// Snapshots came since the bands and phases were found.
    stale: bool,
}

impl TargetView {
    pub fn snapshots(&self) -> &[Snapshot] {
        &self.window.snapshots
    }
}

pub struct LiveModel {
    /// Snapshots kept per target: the heatmap's width and the phase finder's memory.
    window: usize,
    phase_options: Option<PhaseOptions>,
    pub kdamonds: BTreeMap<u32, (u32, Option<Intervals>)>,
    pub targets: Vec<TargetView>,
    modules: Vec<Module>,
    namer: Option<Namer>,
    names: Names,
    /// The named samples of the last [`FUNCTION_WINDOW_NS`] and the phases' spans.
    samples: VecDeque<NamedSample>,
    /// Everything seen, for `w` (bounded: the oldest go first).
    history: (VecDeque<(TargetKey, Snapshot)>, VecDeque<StackSample>),
    pub dropped_history: u64,
    pub totals: Totals,
    /// What the recording lost so far (ring buffers full, unreadable stacks, ...), as
    /// `record` counts it.
    pub losses: Losses,
    first_ns: Option<u64>,
    pub last_ns: u64,
    /// Something came since the last tick: the screen is worth drawing again.
    changed: bool,
    /// The stream's time when bands and phases were last found.
    analysed_ns: Option<u64>,
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
            names: Names::default(),
            samples: VecDeque::new(),
            history: Default::default(),
            dropped_history: 0,
            totals: Totals::default(),
            losses: Losses::default(),
            first_ns: None,
            last_ns: 0,
            changed: false,
            analysed_ns: None,
        }
    }

    /// Takes one piece of the stream. Returns whether it was a tick after which the screen
    /// changed (a time to redraw).
    pub fn push(&mut self, feed: Feed) -> bool {
        // The losses come at every tick: only new counts change the screen.
        self.changed |= match &feed {
            Feed::Tick => false,
            Feed::Losses(losses) => *losses != self.losses,
            _ => true,
        };
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
            Feed::Losses(losses) => self.losses = losses,
            Feed::Tick => {
                let due = self.analysed_ns.is_none_or(|at| self.last_ns >= at + ANALYSIS_NS);
                self.refresh_with(due);
                return std::mem::take(&mut self.changed);
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
                let window = TargetRecord { context_idx: key.context_idx, scheme_idx: key.scheme_idx, target_id: key.target_id, ..Default::default() };
                self.targets.push(TargetView { key, window, summaries: VecDeque::new(), markers: Vec::new(), bands: Vec::new(), stale: false });
                self.targets.last_mut().expect("just pushed")
            }
        };
        if view.window.snapshots.len() == self.window {
            // A shift of the window's few hundred snapshot headers, not of their regions.
            view.window.snapshots.remove(0);
            view.summaries.pop_front();
        }
        let wss = snapshot.regions.iter().filter(|r| r.nr_accesses > 0).map(|r| r.size()).sum();
        let busiest = snapshot.regions.iter().map(|r| r.nr_accesses).max().unwrap_or(0);
        view.summaries.push_back((wss, busiest));
        view.window.snapshots.push(snapshot.clone());
        view.stale = true;
        push_bounded(&mut self.history.0, (key, snapshot), HISTORY_SNAPSHOTS, &mut self.dropped_history);
    }

    fn stack(&mut self, sample: StackSample) {
        self.see(sample.ts_ns);
        self.totals.samples += 1;
        let modules = &self.modules;
        let namer = self.namer.get_or_insert_with(|| Namer::new(&Record { modules: modules.clone(), ..Default::default() }, &[]));
        let named = namer.name(&sample);
        let (row, function) = self.names.intern(&sample.comm, &named.object, function_of(&sample, &named));
        self.samples.push_back(NamedSample { ts_ns: sample.ts_ns, row, function });
        push_bounded(&mut self.history.1, sample, HISTORY_SAMPLES, &mut self.dropped_history);
    }

    /// Drops what left the windows, picks the bands and finds the phases: what a tick does,
    /// at once (the stream ended).
    pub fn refresh(&mut self) {
        self.refresh_with(true);
    }

    /// A tick's work; `analyse`: also the bands and phases, where the window changed.
    fn refresh_with(&mut self, analyse: bool) {
        // Phases need the samples of the whole snapshot window; the list only the last seconds.
        let oldest = self.targets.iter().filter_map(|t| t.window.snapshots.first()).map(|s| s.start_ns).min().unwrap_or(u64::MAX);
        let keep_from = oldest.min(self.last_ns.saturating_sub(FUNCTION_WINDOW_NS));
        while self.samples.front().is_some_and(|s| s.ts_ns < keep_from) {
            self.samples.pop_front();
        }
        let recent = self.samples.iter().filter(|s| s.ts_ns + FUNCTION_WINDOW_NS > self.last_ns).count();
        let span = self.samples.iter().find(|s| s.ts_ns + FUNCTION_WINDOW_NS > self.last_ns).map_or(0, |s| self.last_ns - s.ts_ns);
        self.totals.sample_rate = if span > 0 { recent as f64 * 1e9 / span as f64 } else { 0.0 };
        if !analyse {
            return;
        }
        self.analysed_ns = Some(self.last_ns);
        for i in 0..self.targets.len() {
            // Bands and phases change only with the window.
            if !std::mem::take(&mut self.targets[i].stale) {
                continue;
            }
            self.targets[i].window.intervals = self.kdamonds.get(&self.targets[i].key.kdamond_pid).and_then(|k| k.1);
            self.targets[i].bands = bands::hot_bands(&self.targets[i].window, MAX_BANDS);
            self.find_phases(i);
        }
    }

    /// `report phases`'s rule on the window: the boundaries it finds there replace the
    /// markers inside the window; older markers stay as they were found.
    fn find_phases(&mut self, i: usize) {
        let target = &self.targets[i].window;
        let Some(first) = target.snapshots.first() else { return };
        let options = self.phase_options.unwrap_or_else(|| {
            let aggr_ns = target.intervals.map(|i| i.aggr_us * 1000).filter(|&a| a > 0).unwrap_or_else(|| first.end_ns.saturating_sub(first.start_ns).max(1));
            PhaseOptions { min_snapshots: (1_000_000_000 / aggr_ns).max(1) as usize, ..Default::default() }
        });
        let found = phases::segment_spans(target, &options);
        let mut markers: Vec<Marker> = self.targets[i].markers.iter().filter(|m| m.start_ns < first.start_ns).cloned().collect();
        // The window's first phase began before it (or at the first snapshot): no marker.
        let spans: Vec<(u64, u64)> = found.iter().skip(1).map(|span| (target.snapshots[*span.start()].start_ns, target.snapshots[*span.end()].end_ns)).collect();
        for (start_ns, end_ns) in spans {
            markers.push(Marker { start_ns, top: self.top_between(start_ns, end_ns, PHASE_TOP, None) });
        }
        self.targets[i].markers = markers;
    }

    /// The busiest functions between two times, with their shares of the samples there;
    /// `keep` picks the samples counted.
    fn top_between(&self, start_ns: u64, end_ns: u64, k: usize, keep: Option<&dyn Fn(u64) -> bool>) -> Vec<(String, f64)> {
        let mut counts = vec![0usize; self.names.functions.len()];
        let mut n = 0;
        for s in self.samples.iter().filter(|s| (start_ns..end_ns).contains(&s.ts_ns) && keep.is_none_or(|f| f(s.ts_ns))) {
            counts[s.function as usize] += 1;
            n += 1;
        }
        let names = &self.names.functions;
        let mut top: Vec<(String, f64)> = counts.iter().enumerate().filter(|&(_, &c)| c > 0).map(|(f, &c)| (names[f].clone(), c as f64 / n as f64)).collect();
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
        let mut counts = vec![0usize; self.names.rows.len()];
        let mut n = 0;
        for s in self.samples.iter().filter(|s| s.ts_ns >= from) {
            if let Some(spans) = &hot_times {
                if !spans.iter().any(|&(a, b)| (a..b).contains(&s.ts_ns)) {
                    continue;
                }
            }
            counts[s.row as usize] += 1;
            n += 1;
        }
        let rows = &self.names.rows;
        let mut top: Vec<HotFunction> = counts
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c > 0)
            .map(|(r, &c)| {
                let (comm, object, function) = rows[r].clone();
                HotFunction { share: c as f64 / n as f64, comm, object, function }
            })
            .collect();
        top.sort_by(|a, b| b.share.total_cmp(&a.share).then_with(|| a.function.cmp(&b.function)));
        top.truncate(k);
        top
    }

    /// The most `nr_accesses` a region of target `i` can have: from its kdamond's
    /// intervals, else the busiest region of the window.
    fn max_accesses(&self, i: usize) -> f64 {
        let t = &self.targets[i];
        let from_intervals = self.kdamonds.get(&t.key.kdamond_pid).and_then(|k| k.1).map_or(0, |i| i.max_nr_accesses());
        let busiest = t.summaries.iter().map(|&(_, b)| u64::from(b)).max().unwrap_or(0);
        from_intervals.max(busiest).max(1) as f64
    }

    /// Per snapshot of target `i`: its span and the highest access rate (0..1) in band `b`.
    pub fn band_rates(&self, i: usize, b: usize) -> Vec<(u64, u64, f64)> {
        let Some(&band) = self.targets[i].bands.get(b) else { return Vec::new() };
        let max = self.max_accesses(i);
        self.targets[i].snapshots().iter().map(|s| (s.start_ns, s.end_ns, band_rate(s, band, max))).collect()
    }

    /// The access rate (0..1) of target `i`'s band `b` in its newest snapshot.
    pub fn newest_band_rate(&self, i: usize, b: usize) -> f64 {
        let t = &self.targets[i];
        match (t.bands.get(b), t.snapshots().last()) {
            (Some(&band), Some(s)) => band_rate(s, band, self.max_accesses(i)),
            _ => 0.0,
        }
    }

    /// Access rates (0..1) of target `i`'s band `b`: `rows` address slices (highest first)
    /// by the last `cols` snapshots (oldest first). Row `r` holds what overlaps
    /// `(hi - step × (r + 1), hi - step × r]`, clamped to the band.
    pub fn heat(&self, i: usize, b: usize, rows: usize, cols: usize) -> Vec<Vec<f64>> {
        let t = &self.targets[i];
        let Some(&(lo, hi)) = t.bands.get(b) else { return Vec::new() };
        let max = self.max_accesses(i);
        let step = ((hi - lo) / rows.max(1) as u64).max(1);
        let snapshots = t.snapshots();
        let shown = &snapshots[snapshots.len().saturating_sub(cols)..];
        let mut heat = vec![vec![0.0; shown.len()]; rows];
        for (c, s) in shown.iter().enumerate() {
            // Each region is looked at once and lands in the rows it overlaps.
            for r in s.regions.iter().filter(|r| r.start < hi && r.end > lo && r.nr_accesses > 0) {
                let rate = f64::from(r.nr_accesses) / max;
                let mut row = if r.end >= hi { 0 } else { ((hi - r.end) / step) as usize };
                while row < rows && r.start < hi - step * row as u64 {
                    let bottom = (hi - step * row as u64).saturating_sub(step).max(lo);
                    if r.end > bottom && rate > heat[row][c] {
                        heat[row][c] = rate;
                    }
                    row += 1;
                }
            }
        }
        heat
    }

    /// Working set size per snapshot of target `i` (bytes of regions with any access), as
    /// `report holistic` draws it.
    pub fn wss(&self, i: usize) -> Vec<u64> {
        self.targets[i].summaries.iter().map(|&(wss, _)| wss).collect()
    }

    /// The working set size of target `i`'s newest snapshot.
    pub fn newest_wss(&self, i: usize) -> u64 {
        self.targets[i].summaries.back().map_or(0, |&(wss, _)| wss)
    }

    /// The target shown first: the one with the most snapshots, as `report phases` picks.
    pub fn main_target(&self) -> Option<usize> {
        (0..self.targets.len()).max_by_key(|&i| (self.targets[i].window.snapshots.len(), std::cmp::Reverse(i)))
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

/// The highest access rate (0..1) in a band of a snapshot.
fn band_rate(s: &Snapshot, (lo, hi): (u64, u64), max: f64) -> f64 {
    s.regions.iter().filter(|r| r.start < hi && r.end > lo).map(|r| f64::from(r.nr_accesses) / max).fold(0.0, f64::max)
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

#[cfg(test)]
mod tests {
    use damo_record::{model::Region, synth::Rng};

    use super::*;

    /// [`LiveModel::heat`] places each region in its rows at once; the plain definition
    /// (every row against every region) must give the same cells.
    #[test]
    fn heat_rows_are_what_each_row_overlaps() {
        let mut rng = Rng(7);
        let mut model = LiveModel::new(50, None);
        let key = TargetKey::target(1, 0);
        for t in 0..40u64 {
            let mut start = 0x1000_0000 + (rng.next_u64() % 64) * 4096;
            let regions: Vec<Region> = (0..30)
                .map(|_| {
                    let end = start + (1 + rng.next_u64() % 500) * 4096;
                    let r = Region { start, end, nr_accesses: (rng.next_u64() % 4 * (rng.next_u64() % 7)) as u32, age: None };
                    start = end;
                    r
                })
                .collect();
            model.push(Feed::Snapshot(key, Snapshot { start_ns: t * 100, end_ns: t * 100 + 100, regions, total_bytes: None }));
        }
        model.refresh();
        let t = &model.targets[0];
        assert!(!t.bands.is_empty());
        let max = model.max_accesses(0);
        for (b, &(lo, hi)) in t.bands.iter().enumerate() {
            for rows in [1, 3, 7, 40] {
                let step = ((hi - lo) / rows as u64).max(1);
                let plain: Vec<Vec<f64>> = (0..rows)
                    .map(|row| {
                        let top = hi - step * row as u64;
                        let bottom = top.saturating_sub(step).max(lo);
                        t.snapshots()[10..].iter().map(|s| s.regions.iter().filter(|r| r.start < top && r.end > bottom).map(|r| f64::from(r.nr_accesses) / max).fold(0.0, f64::max)).collect()
                    })
                    .collect();
                assert_eq!(model.heat(0, b, rows, 30), plain, "band {b}, {rows} rows");
            }
        }
    }
}
