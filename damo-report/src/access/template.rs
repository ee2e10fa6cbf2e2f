//! damo's format templates: `<keyword>`s of a record, a snapshot or a region, replaced in
//! damo's keyword order and padded to `--min_chars_for` widths.

use damo_record::{
    model::{DamosInfo, DamosSnapshotInfo, Snapshot, TargetRecord},
    units::{format_nr, format_sz},
};

use super::{boxes::BoxFormat, dist, heatmap, numfmt, Format, Reg};

/// A record being formatted, with what its snapshots need.
pub struct RecordCtx<'a> {
    pub fmt: &'a Format,
    pub rec: &'a TargetRecord,
    pub damos: Option<&'a DamosInfo>,
    pub boxes: &'a BoxFormat,
}

/// A snapshot being formatted: its regions in address order.
pub struct SnapCtx<'a> {
    pub snap: &'a Snapshot,
    pub regs: Vec<Reg>,
    pub damos: Option<&'a DamosSnapshotInfo>,
}

const RECORD_KEYS: [&str; 10] =
    ["<kdamond index>", "<context index>", "<scheme index>", "<target id>", "<abs start time>", "<duration>", "<intervals>", "<intervals goal>", "<data source>", "<format strings>"];

const SNAPSHOT_KEYS: [&str; 27] = [
    "<total bytes>",
    "<duration>",
    "<start time>",
    "<end time>",
    "<abs start time>",
    "<abs end time>",
    "<number of regions>",
    "<region box colors>",
    "<region box description>",
    "<temperature-sz histogram>",
    "<temperature-df-passed-sz histogram>",
    "<recency-sz histogram>",
    "<recency-df-passed-sz histogram>",
    "<recency percentiles>",
    "<df-passed recency percentiles>",
    "<temperature percentiles>",
    "<df-passed temperature percentiles>",
    "<heatmap>",
    "<filters passed heatmap>",
    "<filters passed type>",
    "<filters passed bytes>",
    "<positive access samples ratio>",
    "<estimated memory bandwidth>",
    "<filters passed estimated memory bandwidth>",
    "<intervals tuning status>",
    "<damos stats>",
    "<snapshot intervals>",
];

const REGION_KEYS: [&str; 11] = ["<index>", "<start address>", "<end address>", "<size>", "<access rate>", "<access hz>", "<age>", "<temperature>", "<probe hits>", "<filters passed bytes>", "<box>"];

/// Every keyword with its help, for `--ls_*_format_keywords`-like listings.
pub fn keywords() -> [(&'static str, &'static [&'static str]); 3] {
    [("record", &RECORD_KEYS), ("snapshot", &SNAPSHOT_KEYS), ("region", &REGION_KEYS)]
}

fn pad(fmt: &Format, key: &str, mut txt: String) -> String {
    if let Some((_, n)) = fmt.min_chars_for.iter().find(|(k, _)| k == key) {
        if txt.len() < *n {
            txt.push_str(&" ".repeat(n - txt.len()));
        }
    }
    txt
}

/// damo's `format_output`: `None` for an empty template (no line at all).
fn expand(template: &str, keys: &[&str], mut value: impl FnMut(&str) -> Result<String, String>, fmt: &Format) -> Result<Option<String>, String> {
    if template.is_empty() {
        return Ok(None);
    }
    let mut out = template.to_string();
    for key in keys {
        if !out.contains(key) {
            continue;
        }
        let txt = pad(fmt, key, value(key)?);
        out = out.replace(key, &txt);
    }
    Ok(Some(out.replace("\\n", "\n")))
}

impl RecordCtx<'_> {
    fn first_start(&self) -> u64 {
        self.rec.snapshots.first().map_or(0, |s| s.start_ns)
    }

    pub fn record_line(&self, template: &str) -> Result<Option<String>, String> {
        let raw = self.fmt.raw_number;
        expand(
            template,
            &RECORD_KEYS,
            |key| {
                Ok(match key {
                    "<kdamond index>" => self.rec.kdamond_idx.to_string(),
                    "<context index>" => self.rec.context_idx.to_string(),
                    "<scheme index>" => self.rec.scheme_idx.map_or("None".into(), |i| i.to_string()),
                    "<target id>" => self.target_id(),
                    "<abs start time>" => numfmt::time_ns_int(i128::from(self.first_start()), raw),
                    "<duration>" => {
                        let end = self.rec.snapshots.last().map_or(0, |s| s.end_ns);
                        numfmt::time_ns_int(i128::from(end) - i128::from(self.first_start()), raw)
                    }
                    "<intervals>" => match &self.rec.intervals {
                        Some(i) => format!("sample {}, aggr {}", numfmt::time_us(i.sample_us as f64, raw), numfmt::time_us(i.aggr_us as f64, raw)),
                        None => return Err("the record lacks the intervals information".into()),
                    },
                    "<intervals goal>" => {
                        let g = self.damos.and_then(|d| d.intervals_goal).unwrap_or_default();
                        format!(
                            "target {} accesses per {} aggrs, [{}, {}] sampling interval",
                            numfmt::bp(g.access_bp_milli as f64 / 1000.0, raw),
                            format_nr(i128::from(g.aggrs), raw),
                            numfmt::time_us(g.min_sample_us as f64, raw),
                            numfmt::time_us(g.max_sample_us as f64, raw)
                        )
                    }
                    "<data source>" => "unknown".into(),
                    _ => [
                        format!("record head: \"{}\"", self.fmt.record_head.as_deref().unwrap_or_default()),
                        format!("snapshot head: \"{}\"", self.fmt.snapshot_head.as_deref().unwrap_or_default()),
                        format!("region: \"{}\"", self.fmt.region.as_deref().unwrap_or_default()),
                        format!("snapshot tail: \"{}\"", self.fmt.snapshot_tail.as_deref().unwrap_or_default()),
                        format!("record tail: \"{}\"", self.fmt.record_tail.as_deref().unwrap_or_default()),
                    ]
                    .join("\n"),
                })
            },
            self.fmt,
        )
    }

    pub fn target_id(&self) -> String {
        if self.damos.is_some_and(|d| d.target_id_null) {
            "None".into()
        } else {
            self.rec.target_id.to_string()
        }
    }

    /// damo's `snapshot_monitoring_intervals`: sampling and aggregation intervals in µs,
    /// inferred from the snapshot's duration while intervals auto-tuning is on.
    pub fn snapshot_intervals(&self, s: &Snapshot) -> (f64, f64) {
        let Some(iv) = self.rec.intervals else {
            return (0.0, 0.0);
        };
        let (sample, aggr) = (iv.sample_us as f64, iv.aggr_us as f64);
        if self.damos.and_then(|d| d.intervals_goal).is_none_or(|g| g.aggrs == 0) {
            return (sample, aggr);
        }
        let ratio = aggr / sample;
        let snap_aggr = (s.end_ns as f64 - s.start_ns as f64) / 1000.0;
        if (snap_aggr - aggr).abs() / aggr < 0.1 {
            return (sample, aggr);
        }
        (snap_aggr / ratio, snap_aggr)
    }

    fn ops_filters(&self) -> String {
        let filters: Vec<String> = self
            .damos
            .map(|d| {
                d.scheme_filters
                    .iter()
                    .filter(|f| matches!(f.filter_type.as_str(), "anon" | "active" | "memcg" | "young" | "hugepage_size" | "unmapped"))
                    .map(|f| {
                        let mut w = vec![if f.allow { "allow" } else { "reject" }.to_string()];
                        if !f.matching {
                            w.push("none".into());
                        }
                        w.push(f.filter_type.clone());
                        match f.filter_type.as_str() {
                            "memcg" => w.push(f.memcg_path.clone()),
                            "hugepage_size" => {
                                if let Some((a, b)) = f.hugepage_size {
                                    w.push(format!("[{}, {}]", format_sz(a as f64, false), format_sz(b as f64, false)));
                                }
                            }
                            _ => {}
                        }
                        w.join(" ")
                    })
                    .collect()
            })
            .unwrap_or_default();
        if filters.is_empty() {
            "n/a".into()
        } else {
            filters.join(", ")
        }
    }

    pub fn snapshot_line(&self, template: &str, sc: &SnapCtx) -> Result<Option<String>, String> {
        let raw = self.fmt.raw_number;
        let fmt = self.fmt;
        let s = sc.snap;
        let (sample_us, aggr_us) = self.snapshot_intervals(s);
        let intervals = self.rec.intervals;
        let need_iv = || intervals.ok_or_else(|| "the record lacks the intervals information".to_string());
        use dist::Metric::{Recency, Temperature};
        expand(
            template,
            &SNAPSHOT_KEYS,
            |key| {
                Ok(match key {
                    "<total bytes>" => format_sz(s.total_bytes.unwrap_or_else(|| sc.regs.iter().map(|r| r.end - r.start).sum()) as f64, raw),
                    "<duration>" => numfmt::time_ns_int(i128::from(s.end_ns) - i128::from(s.start_ns), raw),
                    "<start time>" => numfmt::time_ns_int(i128::from(s.start_ns) - i128::from(self.first_start()), raw),
                    "<end time>" => numfmt::time_ns_int(i128::from(s.end_ns) - i128::from(self.first_start()), raw),
                    "<abs start time>" => numfmt::time_ns_int(i128::from(s.start_ns), raw),
                    "<abs end time>" => numfmt::time_ns_int(i128::from(s.end_ns), raw),
                    "<number of regions>" => format_nr(sc.regs.len() as i128, raw),
                    "<region box colors>" => self.boxes.colorset.samples(),
                    "<region box description>" => self.boxes.description(raw),
                    "<temperature-sz histogram>" => dist::sz_hist_str(&sc.regs, fmt, aggr_us, Temperature, false)?,
                    "<temperature-df-passed-sz histogram>" => dist::sz_hist_str(&sc.regs, fmt, aggr_us, Temperature, true)?,
                    "<recency-sz histogram>" => dist::sz_hist_str(&sc.regs, fmt, aggr_us, Recency, false)?,
                    "<recency-df-passed-sz histogram>" => dist::sz_hist_str(&sc.regs, fmt, aggr_us, Recency, true)?,
                    "<recency percentiles>" => dist::percentiles_str(&sc.regs, fmt, aggr_us, Recency, false),
                    "<df-passed recency percentiles>" => dist::percentiles_str(&sc.regs, fmt, aggr_us, Recency, true),
                    "<temperature percentiles>" => dist::percentiles_str(&sc.regs, fmt, aggr_us, Temperature, false),
                    "<df-passed temperature percentiles>" => dist::percentiles_str(&sc.regs, fmt, aggr_us, Temperature, true),
                    "<heatmap>" => heatmap::heatmap_str(&sc.regs, fmt),
                    "<filters passed heatmap>" => {
                        let passed: Vec<Reg> = sc.regs.iter().filter(|r| r.passed != Some(0)).copied().collect();
                        heatmap::heatmap_str(&passed, fmt)
                    }
                    "<filters passed type>" => self.ops_filters(),
                    "<filters passed bytes>" => {
                        let mut sum = 0u128;
                        for r in &sc.regs {
                            match r.passed {
                                Some(p) => sum += u128::from(p),
                                None => return Ok("N/A".into()),
                            }
                        }
                        format_sz(sum as f64, raw)
                    }
                    "<positive access samples ratio>" => {
                        let iv = need_iv()?;
                        let max = iv.aggr_us as f64 / iv.sample_us as f64 * sc.regs.len() as f64;
                        let n: u64 = sc.regs.iter().map(|r| u64::from(r.samples)).sum();
                        numfmt::percent(n as f64 * 100.0 / max, raw)
                    }
                    "<estimated memory bandwidth>" | "<filters passed estimated memory bandwidth>" => {
                        let passed_only = key.starts_with("<filters");
                        let bytes: u128 = sc
                            .regs
                            .iter()
                            .map(|r| {
                                let b = if passed_only { r.passed.unwrap_or(0) } else { r.end - r.start };
                                u128::from(b) * u128::from(r.samples)
                            })
                            .sum();
                        format!("{} per second", format_sz(bytes as f64 / (aggr_us / 1_000_000.0), raw))
                    }
                    "<intervals tuning status>" => {
                        let iv = need_iv()?;
                        let per_region = iv.aggr_us as f64 / iv.sample_us as f64;
                        let (mut max_obs, mut obs) = (0.0_f64, 0u128);
                        for r in &sc.regs {
                            max_obs += per_region * (r.end - r.start) as f64;
                            obs += u128::from(r.end - r.start) * u128::from(r.samples);
                        }
                        format!(
                            "{} ({} / {}) {} {}",
                            numfmt::percent(obs as f64 * 100.0 / max_obs.max(1.0), raw),
                            format_sz(obs as f64, raw),
                            format_sz(max_obs, raw),
                            numfmt::time_us(iv.sample_us as f64, raw),
                            numfmt::time_us(iv.aggr_us as f64, raw)
                        )
                    }
                    "<damos stats>" => match sc.damos.and_then(|d| d.stats) {
                        None => "none".into(),
                        Some(st) => {
                            let nr = |v: u64| format_nr(i128::from(v), raw);
                            let sz = |v: u64| format_sz(v as f64, raw);
                            [
                                format!("tried {} times ({})", nr(st[0]), sz(st[1])),
                                format!("applied {} times ({})", nr(st[2]), sz(st[3])),
                                format!("{} passed filters", sz(st[4])),
                                format!("quota exceeded {} times", nr(st[5])),
                                sz(st[4]),
                                format!("tried {} snapshots (max {})", nr(st[6]), nr(st[7])),
                            ]
                            .join("\n")
                        }
                    },
                    _ => {
                        // <snapshot intervals>
                        let iv = need_iv()?;
                        let ratio = iv.aggr_us as f64 / iv.sample_us as f64;
                        let _ = sample_us;
                        let max_hz = ratio / (aggr_us / 1_000_000.0);
                        format!("sample {} aggr {} (max access hz {})", numfmt::time_us(aggr_us / ratio, raw), numfmt::time_us(aggr_us, raw), numfmt::hz(max_hz, raw, false))
                    }
                })
            },
            fmt,
        )
    }

    pub fn region_line(&self, template: &str, sc: &SnapCtx, idx: usize, r: &Reg) -> Result<Option<String>, String> {
        let raw = self.fmt.raw_number;
        let (_, aggr_us) = self.snapshot_intervals(sc.snap);
        expand(
            template,
            &REGION_KEYS,
            |key| {
                Ok(match key {
                    "<index>" => format_nr(idx as i128, raw),
                    "<start address>" => format_sz(r.start as f64, raw),
                    "<end address>" => format_sz(r.end as f64, raw),
                    "<size>" => format_sz((r.end - r.start) as f64, raw),
                    "<access rate>" => numfmt::percent(r.percent as f64, raw),
                    "<access hz>" => numfmt::hz(f64::from(r.samples) / (aggr_us / 1_000_000.0), raw, true),
                    "<age>" => numfmt::time_us(r.age_us as f64, raw),
                    "<temperature>" => format_nr(r.temperature(self.fmt.temperature_weights), raw),
                    "<probe hits>" => String::new(),
                    "<filters passed bytes>" => r.passed.map_or("N/A".into(), |p| format_sz(p as f64, raw)),
                    _ => self.boxes.to_str(r),
                })
            },
            self.fmt,
        )
    }
}
