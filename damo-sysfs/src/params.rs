//! The DAMON parameter document: kdamonds → contexts → targets and schemes, as JSON.
//!
//! Field names follow damo's `--kdamonds` JSON (`damo args damon --format json`), and every
//! number may be written as damo writes it ("5 ms", "1,000", "50 %", "max"), so damo's
//! documents load here. damo-trace writes plain numbers in base units (µs, bytes, permil,
//! percent), which damo reads back too.

use damo_record::units;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Document {
    pub kdamonds: Vec<Kdamond>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Kdamond {
    pub contexts: Vec<Context>,
    /// Shown by `status`; ignored by `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Whether damo-trace started it (`status` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ours: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub ops: String,
    #[serde(default)]
    pub targets: Vec<Target>,
    #[serde(default)]
    pub intervals: Intervals,
    #[serde(default)]
    pub nr_regions: NrRegions,
    #[serde(default)]
    pub schemes: Vec<Scheme>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Target {
    /// The process for vaddr/fvaddr; none for paddr.
    #[serde(default)]
    pub pid: Option<u32>,
    /// Initial monitoring regions (required for fvaddr; optional otherwise).
    #[serde(default)]
    pub regions: Vec<AddrRange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrRange {
    #[serde(deserialize_with = "bytes")]
    pub start: u64,
    #[serde(deserialize_with = "bytes")]
    pub end: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intervals {
    #[serde(deserialize_with = "us")]
    pub sample_us: u64,
    #[serde(deserialize_with = "us")]
    pub aggr_us: u64,
    #[serde(deserialize_with = "us")]
    pub ops_update_us: u64,
}

/// The record's intervals: the one conversion between a parameter document and a record.
impl From<Intervals> for damo_record::model::Intervals {
    fn from(i: Intervals) -> Self {
        Self { sample_us: i.sample_us, aggr_us: i.aggr_us, ops_update_us: i.ops_update_us }
    }
}

impl Default for Intervals {
    /// DAMON's defaults: 5 ms, 100 ms, 1 s.
    fn default() -> Self {
        Self { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NrRegions {
    #[serde(deserialize_with = "count")]
    pub min: u64,
    #[serde(deserialize_with = "count")]
    pub max: u64,
}

impl Default for NrRegions {
    fn default() -> Self {
        Self { min: 10, max: 1000 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scheme {
    pub action: String,
    #[serde(default)]
    pub access_pattern: AccessPattern,
    /// 0: the aggregation interval.
    #[serde(default, deserialize_with = "us")]
    pub apply_interval_us: u64,
    #[serde(default)]
    pub quotas: Quotas,
    #[serde(default)]
    pub watermarks: Watermarks,
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Shown by `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<SchemeStats>,
}

/// Which regions a scheme acts on. Sizes in bytes, access rates in percent of the most
/// accesses an aggregation interval can see, ages in µs — damo's units; converted to DAMON's
/// (samples, aggregation intervals) when written to sysfs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AccessPattern {
    pub sz_bytes: MinMax,
    pub nr_accesses: PercentRange,
    pub age: MinMax,
}

impl Default for AccessPattern {
    /// Everything: DAMON's own defaults (all 0) would match nothing.
    fn default() -> Self {
        Self { sz_bytes: MinMax { min: 0, max: u64::MAX }, nr_accesses: PercentRange { min: 0.0, max: 100.0 }, age: MinMax { min: 0, max: u64::MAX } }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinMax {
    #[serde(deserialize_with = "bytes_or_us")]
    pub min: u64,
    #[serde(deserialize_with = "bytes_or_us")]
    pub max: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PercentRange {
    #[serde(deserialize_with = "percent")]
    pub min: f64,
    #[serde(deserialize_with = "percent")]
    pub max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Quotas {
    /// CPU time per reset interval (ms); 0: unlimited.
    #[serde(deserialize_with = "ms")]
    pub time_ms: u64,
    /// Bytes per reset interval; 0: unlimited.
    #[serde(deserialize_with = "bytes")]
    pub sz_bytes: u64,
    #[serde(deserialize_with = "ms")]
    pub reset_interval_ms: u64,
    #[serde(default)]
    pub weights: Weights,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Weights {
    #[serde(deserialize_with = "permil")]
    pub sz_permil: u64,
    #[serde(deserialize_with = "permil")]
    pub nr_accesses_permil: u64,
    #[serde(deserialize_with = "permil")]
    pub age_permil: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermarks {
    /// "none" or "free_mem_rate".
    pub metric: String,
    #[serde(deserialize_with = "us")]
    pub interval_us: u64,
    #[serde(deserialize_with = "permil")]
    pub high_permil: u64,
    #[serde(deserialize_with = "permil")]
    pub mid_permil: u64,
    #[serde(deserialize_with = "permil")]
    pub low_permil: u64,
}

impl Default for Watermarks {
    fn default() -> Self {
        Self { metric: "none".into(), interval_us: 0, high_permil: 0, mid_permil: 0, low_permil: 0 }
    }
}

/// A DAMOS filter: which memory a scheme may (`allow`) or may not act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// anon, memcg, young, hugepage_size, unmapped, addr, target, active. The field names
    /// are damo's (damo reads no other), the earlier ones of damo-trace are read too.
    #[serde(rename = "filter_type", alias = "type")]
    pub kind: String,
    /// The filter applies to memory that matches (true) or that does not (false).
    #[serde(default = "yes")]
    pub matching: bool,
    /// Allow (true) or reject (false) what the filter applies to.
    #[serde(default)]
    pub allow: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memcg_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "address_range", alias = "addr_range")]
    pub addr_range: Option<AddrRange>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "damon_target_idx", alias = "target_idx")]
    pub target_idx: Option<u32>,
    /// The closed range of page sizes a `hugepage_size` filter matches, `[min, max]` as damo
    /// writes it ("2 MiB" or bytes).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "byte_pair")]
    pub hugepage_size: Option<[u64; 2]>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SchemeStats {
    pub nr_tried: u64,
    pub sz_tried: u64,
    pub nr_applied: u64,
    pub sz_applied: u64,
    pub qt_exceeds: u64,
}

/// A number in damo's text form or a plain JSON number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Text {
    Int(u64),
    Float(f64),
    Str(String),
}

fn parsed<'de, D: Deserializer<'de>, T>(d: D, from_int: impl Fn(u64) -> T, from_text: impl Fn(&str) -> Result<T, units::UnitError>) -> Result<T, D::Error> {
    match Text::deserialize(d)? {
        Text::Int(i) => Ok(from_int(i)),
        Text::Float(f) => from_text(&f.to_string()).map_err(serde::de::Error::custom),
        Text::Str(s) => from_text(&s).map_err(serde::de::Error::custom),
    }
}

fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    parsed(d, |i| i, units::parse_bytes)
}

fn byte_pair<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u64; 2]>, D::Error> {
    #[derive(Deserialize)]
    struct Bytes(#[serde(deserialize_with = "bytes")] u64);
    Ok(Option::<[Bytes; 2]>::deserialize(d)?.map(|[a, b]| [a.0, b.0]))
}

fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    parsed(d, |i| i, units::parse_count)
}

fn us<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    parsed(d, |i| i, units::parse_us)
}

fn ms<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    parsed(d, |i| i, |t| units::parse_us(t).map(|us| if us == u64::MAX { us } else { us / 1000 }).or_else(|_| units::parse_count(t)))
}

/// Sizes and ages share `MinMax`: a size unit or a time unit decides, a bare number is kept.
fn bytes_or_us<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    parsed(d, |i| i, |t| units::parse_bytes(t).or_else(|_| units::parse_us(t)))
}

fn percent<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    parsed(d, |i| i as f64, units::parse_percent)
}

/// damo writes permil values as percentages ("50 %" is 500 ‰); a bare number is permil.
fn permil<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    parsed(
        d,
        |i| i,
        |t| {
            let t = t.trim();
            match t.strip_suffix('%') {
                Some(p) => units::parse_percent(p).map(|p| (p * 10.0) as u64),
                // damo's raw form writes permil as a float ("500.000000").
                None => units::parse_count(t).or_else(|e| units::parse_number(t).ok().map(|n| n.as_f64()).filter(|f| f.is_finite() && *f >= 0.0).map(|f| f.round() as u64).ok_or(e)),
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_damos_json_with_units() {
        let damo = r#"{"kdamonds": [{"refresh_ms": 0, "contexts": [{"ops": "vaddr", "addr_unit": "1 B",
            "targets": [{"pid": 1234, "obsolete": false, "regions": []}],
            "intervals": {"sample_us": "5 ms", "aggr_us": "100 ms", "ops_update_us": "1 s",
                          "intervals_goal": {"access_bp": "0 %"}},
            "nr_regions": {"min": "10", "max": "1,000"},
            "schemes": [{"action": "stat", "dests": [],
                "access_pattern": {"sz_bytes": {"min": "4 KiB", "max": "max"},
                                   "nr_accesses": {"min": "50 %", "max": "100 %"},
                                   "age": {"min": "1 s", "max": "max"}},
                "apply_interval_us": "0 ns",
                "quotas": {"time_ms": "10 ms", "sz_bytes": "1 GiB", "reset_interval_ms": "1 s",
                           "weights": {"sz_permil": "0 %", "nr_accesses_permil": "50 %", "age_permil": "50 %"}},
                "watermarks": {"metric": "none", "interval_us": "0 ns", "high_permil": "0 %", "mid_permil": "0 %", "low_permil": "0 %"},
                "filters": []}]}]}]}"#;
        let doc: Document = serde_json::from_str(damo).unwrap();
        let ctx = &doc.kdamonds[0].contexts[0];
        assert_eq!(ctx.intervals, Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 });
        assert_eq!(ctx.nr_regions, NrRegions { min: 10, max: 1000 });
        let s = &ctx.schemes[0];
        assert_eq!(s.access_pattern.sz_bytes, MinMax { min: 4096, max: u64::MAX });
        assert_eq!(s.access_pattern.nr_accesses, PercentRange { min: 50.0, max: 100.0 });
        assert_eq!(s.access_pattern.age.min, 1_000_000);
        assert_eq!((s.quotas.time_ms, s.quotas.sz_bytes, s.quotas.reset_interval_ms), (10, 1 << 30, 1000));
        assert_eq!(s.quotas.weights.nr_accesses_permil, 500);
        // Our own output reads back the same.
        let again: Document = serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
        assert_eq!(again, doc);
    }

    #[test]
    fn bad_units_are_errors() {
        let bad = r#"{"kdamonds": [{"contexts": [{"ops": "vaddr", "intervals": {"sample_us": "5 parsecs", "aggr_us": 1, "ops_update_us": 1}}]}]}"#;
        let e = serde_json::from_str::<Document>(bad).unwrap_err().to_string();
        assert!(e.contains("parsecs"), "{e}");
    }
}
