//! `report holistic`: one page with the access heatmap, the working set size over time and a
//! function timeline on a shared time axis, phases marked across all three (the three-panel
//! figure of DAMON's fft example). Layout only: the caller loads the record, builds the
//! heatmaps and names the samples (damo-report does not symbolize).

pub mod bands;
pub mod html;
pub mod svg;
pub mod text;
pub mod timeline;

use damo_record::model::{Snapshot, TargetRecord};

use crate::{
    heatmap::{pynum::Num, Grid},
    phases::Phase,
};
pub use timeline::{NamedSample, Timeline};

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct Holistic {
    /// What the page is of (the record's file name).
    pub title: String,
    /// Heatmaps of the main target's address ranges, highest addresses first, all over `time`.
    pub maps: Vec<Grid>,
    /// `[start, end)` ns of the shared time axis (see [`grid_span`]).
    pub time: (f64, f64),
    /// Working set size per snapshot: (start ns, end ns, bytes), see [`wss_series`].
    pub wss: Vec<(u64, u64, u64)>,
    /// `None` when the record has no stack samples.
    pub timeline: Option<Timeline>,
    pub phases: Vec<PhaseMark>,
}

/// A phase with what ran in it.
#[derive(Debug, Clone)]
pub struct PhaseMark {
    pub phase: Phase,
    /// Its busiest functions with their samples, busiest first.
    pub top: Vec<(String, usize)>,
    /// All its samples.
    pub samples: usize,
    /// What the page calls the phase: the function responsible for it, from its caller
    /// chain down to its hot leaf (see `damo_profile::attribution`); `None`: only a number.
    pub label: Option<String>,
    pub chain: Vec<String>,
}

impl PhaseMark {
    /// A phase labelled with its busiest function; [`PhaseMark::responsible`] names the
    /// code responsible instead.
    pub fn new(phase: Phase, samples: &[NamedSample], k: usize) -> Self {
        let (top, samples) = timeline::top_between(samples, phase.start_ns, phase.end_ns, k);
        let label = top.first().map(|t| t.0.clone());
        PhaseMark { phase, top, samples, label, chain: Vec::new() }
    }

    /// Labels the phase with the function responsible for it and its chain to the hot leaf.
    pub fn responsible(self, label: Option<String>, chain: Vec<String>) -> Self {
        PhaseMark { label, chain, ..self }
    }
}

/// The time a heatmap's cells cover: its rows are equal slices of this span.
pub fn grid_span(g: &Grid) -> (f64, f64) {
    let start = g.time_start.f64();
    (start, start + g.time_unit.times(Num::Int(g.time_resol as i128)).f64())
}

/// Cells along the addresses of each of `bands` heatmaps for about 2.5 px each: finer only
/// makes the file larger.
pub fn address_cells(bands: usize) -> usize {
    (svg::HEAT_H / bands.max(1) as f64 / 2.5).round().max(1.0) as usize
}

/// Working set size of each snapshot: bytes of regions with any access, as `report wss`
/// counts them with its default thresholds.
pub fn wss_series(target: &TargetRecord) -> Vec<(u64, u64, u64)> {
    target.snapshots.iter().map(wss_of).collect()
}

/// A snapshot's entry of [`wss_series`].
pub fn wss_of(s: &Snapshot) -> (u64, u64, u64) {
    (s.start_ns, s.end_ns, s.regions.iter().filter(|r| r.nr_accesses > 0).map(|r| r.size()).sum())
}

pub(crate) use crate::xml::escape;

/// Compact sizes for axes and tables: "16 MiB", "1.5 GiB".
pub(crate) fn size(bytes: f64) -> String {
    for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        let scale = (1u64 << shift) as f64;
        if bytes >= scale {
            return format!("{:.1} {unit}", bytes / scale).replace(".0 ", " ");
        }
    }
    format!("{bytes:.0} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_short() {
        assert_eq!(size(16.0 * 1024.0 * 1024.0), "16 MiB");
        assert_eq!(size(1.5 * 1024.0 * 1024.0 * 1024.0), "1.5 GiB");
        assert_eq!(size(0.0), "0 B");
    }
}
