//! damo's `report heatmap`: when (time) which memory (address) was how frequently accessed
//! (heat), as a grid of cells. The numbers follow damo 3.4.3 exactly, including its mix of
//! exact integers and floats (see [`pynum`]).
//!
//! Work is proportional to the regions and the cells each covers: every region adds its heat
//! to the cells its time and address ranges overlap, once.

pub mod ascii;
mod bucket;
pub mod grid;
pub mod guide;
pub mod maps;
pub mod pynum;
pub mod ranges;
pub mod raw;
pub mod source;
pub mod svg;
pub mod temperature;

use damo_record::model::{Record, TargetRecord};

pub use ascii::Colorset;
pub use grid::Grid;
pub use guide::Guide;
pub use maps::Maps;
pub use ranges::DrawRange;
pub use source::Source;

/// A request damo would refuse, or one that cannot give a map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeatmapError(pub String);

impl HeatmapError {
    pub fn new(msg: &str) -> Self {
        HeatmapError(msg.to_owned())
    }
}

/// Which maps to draw.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Select the record to draw; unset ones come from the largest target's guide.
    pub kdamond_idx: Option<u32>,
    pub context_idx: Option<u32>,
    pub scheme_idx: Option<u32>,
    pub tid: Option<u64>,
    /// Cells along time and address.
    pub resol: (usize, usize),
    /// damo's `--time_range` texts: START END [BASE].
    pub time_range: Option<Vec<String>>,
    /// damo's `--address_range` texts, one map per range: START END [BASE].
    pub address_ranges: Option<Vec<Vec<String>>>,
    pub draw_range: DrawRange,
    /// `--sort_temperature` with its frequency and age weights.
    pub sort_temperature: Option<(f64, f64)>,
}

impl Request {
    /// Whether the selectors name `t`.
    fn selects(&self, t: &TargetRecord) -> bool {
        self.kdamond_idx.is_none_or(|k| k == t.kdamond_idx)
            && self.context_idx.is_none_or(|c| c == t.context_idx)
            && self.scheme_idx.is_none_or(|s| Some(s) == t.scheme_idx)
            && self.tid.is_none_or(|id| id == t.target_id)
    }

    /// The index of the target whose hot bands are drawn: of those the selectors name, the
    /// one with the most snapshots (`snapshots` of a target's index; the last of equals).
    pub fn band_target(&self, targets: &[TargetRecord], snapshots: impl Fn(usize) -> usize) -> Option<usize> {
        targets.iter().enumerate().filter(|(_, t)| self.selects(t)).max_by_key(|&(i, _)| snapshots(i)).map(|(i, _)| i)
    }

    /// Points the request at `bands` of `target`, a map each, as `report holistic` draws
    /// them; leaves it as it is when there is none (nothing was accessed).
    pub fn at_bands(&mut self, target: &TargetRecord, bands: &[(u64, u64)]) {
        if bands.is_empty() {
            return;
        }
        self.kdamond_idx = Some(target.kdamond_idx);
        self.context_idx = Some(target.context_idx);
        self.scheme_idx = target.scheme_idx;
        self.tid = Some(target.target_id);
        self.address_ranges = Some(bands.iter().map(|&(s, e)| vec![s.to_string(), e.to_string()]).collect());
    }

    /// [`Self::at_bands`] of the hot bands of [`Self::band_target`] in `record`.
    pub fn at_hot_bands(&mut self, record: &Record) {
        let Some(i) = self.band_target(&record.targets, |i| record.targets[i].snapshots.len()) else { return };
        let target = &record.targets[i];
        self.at_bands(target, &crate::holistic::bands::hot_bands(target, crate::holistic::bands::MAX_BANDS));
    }
}

crate::names::named_enum! {
    /// `--draw_range`: the address ranges drawn when none is given.
    #[derive(Default)]
    pub enum Draw {
        /// Where the accesses were, a map each (as `report holistic` draws them). A vaddr
        /// target's contiguous ranges span hundreds of GiB, where a few hot MiB are less
        /// than a pixel.
        #[default]
        Bands = "bands",
        /// damo's default: the hottest contiguous range.
        Hottest = "hottest",
        /// Each contiguous range.
        All = "all",
    }
}

/// Where the maps go (`--output`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Colored digits on the terminal.
    Stdout,
    /// Time, address and heat of each cell, a line each.
    Raw,
    /// An image file (.svg or .png), `name.<idx>.ext` for the second and later maps.
    Image(std::path::PathBuf),
}

impl Output {
    /// damo's spelling: "stdout", "raw" or an image's path.
    pub fn parse(text: &str) -> Result<Output, HeatmapError> {
        match text {
            "stdout" => Ok(Output::Stdout),
            "raw" => Ok(Output::Raw),
            _ => {
                let path = std::path::Path::new(text);
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                if !["svg", "png"].contains(&ext.to_ascii_lowercase().as_str()) {
                    return Err(HeatmapError(format!("--output {text}: unsupported image type (use .svg or .png, or stdout or raw)")));
                }
                Ok(Output::Image(path.into()))
            }
        }
    }

    /// damo's cells along time and address when `--resol` is not given.
    pub fn default_resol(&self) -> (usize, usize) {
        match self {
            Output::Stdout => (40, 80),
            _ => (500, 500),
        }
    }

    /// Fails unless maps of `resol` cells fit in the memory limit: the grid holds a heat per
    /// cell; the terminal's text and an image take a few dozen bytes more per cell, raw
    /// lines are written as they are made.
    pub fn check_budget(&self, resol: (usize, usize)) -> Result<(), damo_record::budget::OverBudget> {
        let heat = std::mem::size_of::<grid::Cell>() as u64;
        let per_cell: u64 = match self {
            Output::Stdout => heat + 24,
            Output::Image(_) => heat + 80,
            Output::Raw => heat,
        };
        let cells = (resol.0 as u64).saturating_mul(resol.1 as u64);
        damo_record::budget::check(cells.saturating_mul(per_cell), || format!("a heatmap of {}x{} cells", resol.0, resol.1))
    }
}

/// damo names the image of the second and later maps `name.<idx>.ext`.
pub fn numbered_path(path: &std::path::Path, idx: usize) -> std::path::PathBuf {
    if idx == 0 {
        return path.to_path_buf();
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{stem}.{idx}.{ext}"))
}

/// The records of `record`, with damo's snapshot times for its format.
pub fn sources(record: &Record, from_perf_script: bool) -> Vec<Source<'_>> {
    record.targets.iter().map(|t| Source::new(t, from_perf_script)).collect()
}

/// damo's `--guide` (raw numbers) or `--guide_human` text, a line per item.
pub fn guide_text(record: &Record, from_perf_script: bool, raw: bool) -> String {
    guides_text(&guide::guides(&sources(record, from_perf_script)), raw)
}

/// [`guide_text`] of guides already built.
pub fn guides_text(guides: &[Guide], raw: bool) -> String {
    guides.iter().map(|g| g.to_text(raw) + "\n").collect()
}

/// The unit of heat: "hz" when the targets have intervals, "samples" when none has.
pub fn heat_unit(targets: &[TargetRecord]) -> Result<&'static str, HeatmapError> {
    let with_intervals = targets.iter().filter(|t| t.intervals.is_some()).count();
    if with_intervals != 0 && with_intervals != targets.len() {
        return Err(HeatmapError::new("some records have intervals while some do not; cannot proceed"));
    }
    Ok(if with_intervals > 0 { "hz" } else { "samples" })
}

/// The guide of the target `req` selects; unset selectors are the largest guide's.
pub fn choose_guide(guides: &[Guide], req: &Request) -> Result<Guide, HeatmapError> {
    let first = guides.first().ok_or_else(|| HeatmapError::new("the record has no snapshots"))?;
    let key = (req.kdamond_idx.unwrap_or(first.kdamond_idx), req.context_idx.unwrap_or(first.context_idx), req.scheme_idx.or(first.scheme_idx), req.tid.unwrap_or(first.tid));
    guides.iter().find(|g| (g.kdamond_idx, g.context_idx, g.scheme_idx, g.tid) == key).cloned().ok_or_else(|| HeatmapError::new("no record has the given kdamond, context, scheme and target"))
}

/// Whether the address ranges drawn depend on the guide's heats (its hottest range).
pub fn needs_heats(req: &Request) -> bool {
    req.draw_range == DrawRange::Hottest && req.address_ranges.as_ref().is_none_or(|r| r.iter().any(|r| r.get(2).is_some_and(|b| b == "guided")))
}

/// A `[start, end)` range of time or addresses, in damo's numbers.
pub type Span = (pynum::Num, pynum::Num);

/// The time range and the address ranges (a map each) `req` draws from `guide`.
pub fn ranges_of(guide: &Guide, req: &Request) -> Result<(Span, Vec<Span>), HeatmapError> {
    let time = ranges::time_range(req.time_range.as_deref(), guide)?;
    let addrs = ranges::address_ranges(req.address_ranges.as_deref(), req.draw_range, guide)?;
    if addrs.is_empty() {
        return Err(HeatmapError::new("no address range to draw"));
    }
    Ok((time, addrs))
}

/// The maps damo draws for `req`, one per address range, or why there are none.
pub fn build(record: &Record, from_perf_script: bool, req: &Request) -> Result<Vec<Grid>, HeatmapError> {
    let heat_unit = heat_unit(&record.targets)?;
    let srcs = sources(record, from_perf_script);
    // Heats only where the ranges depend on them, and only the chosen guide's.
    let mut guide = choose_guide(&guide::outlines(&srcs), req)?;
    if needs_heats(req) {
        guide = guide::heated(guide, &srcs);
    }
    let (time, addrs) = ranges_of(&guide, req)?;

    let sorted;
    let srcs = match req.sort_temperature {
        None => srcs,
        Some(weights) => {
            let int_ranges = temperature::byte_ranges(&addrs)?;
            let mut copy = record.clone();
            temperature::sort_by_temperature(&mut copy, &int_ranges, weights)?;
            sorted = copy;
            sources(&sorted, from_perf_script)
        }
    };
    let mut maps = Maps::new(&guide, time, addrs, req.resol, heat_unit)?;
    for src in srcs.iter().filter(|s| guide.matches(s.target)) {
        for (i, snap) in src.snapshots().iter().enumerate() {
            maps.add(src.start(i), snap, src.target.intervals);
        }
    }
    Ok(maps.finish())
}
