//! `report access` (and `report raw`): damo's snapshot listing. Templates of record,
//! snapshot and region keywords (`template`), chosen by `--style` (`styles`), with regions
//! sorted (`sort`), boxes (`boxes`), heatmaps (`heatmap`) and distributions (`dist`); or
//! damo's raw region listing (`raw`) and JSON (`json`).

pub mod boxes;
pub mod chosen;
pub mod dist;
pub mod heatmap;
pub mod json;
pub mod numfmt;
pub mod options;
pub mod raw;
pub mod sort;
pub mod styles;
pub mod template;

use damo_record::model::{Record, Region, TargetRecord};

pub use boxes::BoxValue;
pub use options::{defaults, Align, FormatArea, FormatEdit, Options, Scale, SortDsc, Style};
pub use sort::SortKey;

use crate::colors::Colorset;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// damo's own message (it exits 1 with it).
    #[error("some records lack the intervals information")]
    NoIntervals,
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Format(String),
}

/// The resolved format: damo's `ReportFormat`.
#[derive(Debug, Clone)]
pub struct Format {
    pub record_head: Option<String>,
    pub record_tail: Option<String>,
    pub snapshot_head: Option<String>,
    pub snapshot_tail: Option<String>,
    pub region: Option<String>,
    pub sort_regions_by: Vec<SortKey>,
    pub sort_dsc: Vec<SortDsc>,
    pub temperature_weights: [i64; 3],
    pub percentiles_range: Option<Vec<i64>>,
    pub hist_logscale: bool,
    pub hist_cumulate: bool,
    pub hist_ranges: Option<Vec<String>>,
    pub snapshot_heatmap_width: usize,
    pub snapshot_heatmap_colorset: Colorset,
    pub snapshot_heatmap_static: bool,
    pub box_length: (i64, i64),
    pub box_height: (i64, i64),
    pub box_align_right: bool,
    pub box_colorset: Colorset,
    pub min_chars_for: Vec<(String, usize)>,
    pub raw_number: bool,
}

impl Format {
    fn from_options(o: &Options) -> Self {
        let mut min_chars: Vec<(String, usize)> =
            [("<index>", 3), ("<start address>", 12), ("<end address>", 11), ("<size>", 11), ("<access rate>", 5), ("<access hz>", 6), ("<age>", 13), ("<filters passed type>", 10)]
                .iter()
                .map(|&(k, n)| (k.to_string(), n))
                .collect();
        min_chars.extend(o.min_chars_for.iter().cloned());
        Self {
            record_head: o.format_record_head.clone(),
            record_tail: o.format_record_tail.clone(),
            snapshot_head: o.format_snapshot_head.clone(),
            snapshot_tail: o.format_snapshot_tail.clone(),
            region: o.format_region.clone(),
            sort_regions_by: o.sort_regions_by.clone(),
            sort_dsc: o.sort_regions_dsc.clone(),
            temperature_weights: o.temperature_weights,
            percentiles_range: o.percentiles_range.clone(),
            hist_logscale: o.hist_logscale,
            hist_cumulate: o.hist_cumulate,
            hist_ranges: o.hist_ranges.clone(),
            snapshot_heatmap_width: o.snapshot_heatmap_width.max(1),
            snapshot_heatmap_colorset: o.snapshot_heatmap_colorset,
            snapshot_heatmap_static: o.snapshot_heatmap_static,
            box_length: o.region_box_min_max_length,
            box_height: o.region_box_min_max_height,
            box_align_right: o.region_box_align == Align::Right,
            box_colorset: o.region_box_colorset,
            min_chars_for: min_chars,
            raw_number: o.raw_number,
        }
    }

    fn slot(&mut self, area: FormatArea) -> &mut Option<String> {
        match area {
            FormatArea::RecordHead => &mut self.record_head,
            FormatArea::SnapshotHead => &mut self.snapshot_head,
            FormatArea::Region => &mut self.region,
            FormatArea::SnapshotTail => &mut self.snapshot_tail,
            FormatArea::RecordTail => &mut self.record_tail,
        }
    }

    fn total_sz_only(&self) -> bool {
        self.snapshot_head.as_deref() == Some("") && self.region.as_deref() == Some("") && self.snapshot_tail.as_deref() == Some("<total bytes>")
    }
}

/// A region with damo's derived values (its `add_unset_unit`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reg {
    pub start: u64,
    pub end: u64,
    pub samples: u32,
    /// Whole percent of the most samples an aggregation interval can take.
    pub percent: i64,
    pub age_us: u64,
    pub aggr: Option<u32>,
    /// DAMOS filters-passed bytes; `None` when unknown.
    pub passed: Option<u64>,
}

impl Reg {
    /// damo's `temperature_of`.
    pub fn temperature(&self, w: [i64; 3]) -> i128 {
        let score = i128::from(self.end - self.start) * i128::from(w[0]) + i128::from(self.percent) * i128::from(w[1]) + i128::from(self.age_us) * i128::from(w[2]);
        if self.percent > 0 {
            score
        } else {
            -score
        }
    }
}

fn regs_of(t: &TargetRecord, regions: &[Region], passed: Option<&[(u64, u64)]>, default_passed: Option<u64>) -> Vec<Reg> {
    regions
        .iter()
        .map(|r| {
            let (percent, age_us) = match &t.intervals {
                Some(iv) => (crate::filter::access_rate_percent(r.nr_accesses, iv), u64::from(r.age.unwrap_or(0)).saturating_mul(iv.aggr_us)),
                None => (0, 0),
            };
            let passed = match passed {
                Some(p) => match p.binary_search_by_key(&r.start, |e| e.0) {
                    Ok(i) => Some(p[i].1),
                    Err(_) => default_passed,
                },
                None => default_passed,
            };
            Reg { start: r.start, end: r.end, samples: r.nr_accesses, percent, age_us, aggr: r.age, passed }
        })
        .collect()
}

fn minmax(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::NAN, f64::NAN), |(lo, hi), v| (if lo.is_nan() || v < lo { v } else { lo }, if hi.is_nan() || v > hi { v } else { hi }))
}

/// Fails unless the text the options ask for fits in the memory limit: every snapshot gets
/// its percentile lines and a heatmap line of `--snapshot_heatmap_width` colored cells, and
/// the report is one string (`--percentiles_range 0 1000000000 1` took 7.8 GB in a minute).
pub fn check_text_size(record: &Record, opts: &Options) -> Result<(), damo_record::budget::OverBudget> {
    let percentiles: u64 = match opts.percentiles_range.as_deref() {
        None => 0,
        Some(&[stop]) => u64::try_from(stop).unwrap_or(0),
        Some(&[start, stop]) => u64::try_from(i128::from(stop) - i128::from(start)).unwrap_or(0),
        Some(&[start, stop, step]) => {
            let span = (i128::from(stop) - i128::from(start)) * i128::from(step.signum());
            let step = i128::from(step).abs().max(1);
            u64::try_from((span.max(0) + step - 1) / step).unwrap_or(u64::MAX)
        }
        Some(list) => list.len() as u64,
    };
    let snapshots: u64 = record.targets.iter().map(|t| t.snapshots.len() as u64).sum::<u64>().max(1);
    // A percentile line is under 128 bytes; a heatmap cell under 32 with its color codes.
    let width = opts.snapshot_heatmap_width;
    let per_snapshot = percentiles.saturating_mul(128).saturating_add((width as u64).saturating_mul(32));
    damo_record::budget::check(snapshots.saturating_mul(per_snapshot), || format!("{percentiles} percentiles and a heatmap {width} cells wide for each of {snapshots} snapshots"))
}

/// The whole `report access` output (without the final newline damo's `print` adds).
pub fn report(record: &Record, opts: &Options) -> Result<String, AccessError> {
    if opts.json {
        return Ok(json::report(record, opts.raw_number));
    }
    if opts.raw_form {
        return Ok(raw::report(record, opts.raw_number));
    }
    if record.targets.iter().any(|t| t.intervals.is_none()) {
        return Err(AccessError::NoIntervals);
    }
    let mut fmt = Format::from_options(opts);
    styles::set_formats(&mut fmt, opts, record)?;

    // Box scales span every region of the report.
    let all = record.targets.iter().flat_map(|t| t.snapshots.iter().flat_map(move |s| regs_of(t, &s.regions, None, None)));
    let mut mm = [(f64::NAN, f64::NAN); 3];
    {
        let (mut sz, mut ar, mut age) = (Vec::new(), Vec::new(), Vec::new());
        for r in all {
            sz.push((r.end - r.start) as f64);
            ar.push(r.percent as f64);
            age.push(r.age_us as f64);
        }
        mm[0] = minmax(sz.into_iter());
        mm[1] = minmax(ar.into_iter());
        mm[2] = minmax(age.into_iter());
    }
    let attr = |i: usize, display| boxes::BoxAttr { value: opts.region_box_values[i], display, log: opts.region_box_scales[i] == Scale::Log };
    let box_fmt =
        boxes::BoxFormat { length: attr(0, fmt.box_length), color: attr(1, (0, 9)), height: attr(2, fmt.box_height), align_right: fmt.box_align_right, colorset: fmt.box_colorset, minmax: mm };
    let dsc = |k: SortKey| fmt.sort_dsc.iter().any(|d| d.covers(k));
    let err = AccessError::Format;
    let (rh, rt) = (fmt.record_head.clone().unwrap_or_default(), fmt.record_tail.clone().unwrap_or_default());
    let (sh, st) = (fmt.snapshot_head.clone().unwrap_or_default(), fmt.snapshot_tail.clone().unwrap_or_default());
    let region_t = fmt.region.clone().unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for (ti, t) in record.targets.iter().enumerate() {
        let damos = record.damos.as_ref().and_then(|d| d.get(ti));
        let ctx = template::RecordCtx { fmt: &fmt, rec: t, damos, boxes: &box_fmt };
        out.extend(ctx.record_line(&rh).map_err(err)?);
        for (si, s) in t.snapshots.iter().enumerate() {
            let sd = damos.and_then(|d| d.snapshots.iter().find(|x| x.end_ns == s.end_ns));
            // damo's regions default to 0 filters-passed bytes.
            let default_passed = Some(0);
            let regs = regs_of(t, &s.regions, sd.map(|d| d.sz_filter_passed.as_slice()), default_passed);
            let sc = template::SnapCtx { snap: s, regs, damos: sd };
            out.extend(ctx.snapshot_line(&sh, &sc).map_err(err)?);
            if !region_t.is_empty() {
                let mut sorted = sc.regs.clone();
                sort::sort_regions(&mut sorted, &fmt.sort_regions_by, dsc, fmt.temperature_weights);
                for (i, r) in sorted.iter().enumerate() {
                    out.extend(ctx.region_line(&region_t, &sc, i, r).map_err(err)?);
                }
            }
            out.extend(ctx.snapshot_line(&st, &sc).map_err(err)?);
            if si + 1 < t.snapshots.len() && !fmt.total_sz_only() {
                out.push(String::new());
            }
        }
        out.extend(ctx.record_line(&rt).map_err(err)?);
    }
    Ok(out.join("\n"))
}
