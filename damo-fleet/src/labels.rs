//! What the access record says about each stack sample's moment, as pprof labels: so that a
//! profile in Pyroscope or Parca, or `go tool pprof -tagfocus`, is filtered by memory
//! behaviour the way `report profile`'s filters select times.
//!
//! - `damon_phase`: the phase of `report phases` the sample is in ("1", "2", … as that
//!   report numbers them; no label outside every phase);
//! - `damon_wss`: the working set size of the DAMON snapshot the sample is in (bytes of
//!   regions with any access, as `report wss` counts them), as a power-of-two bucket
//!   ("16MiB-32MiB"), and `damon_wss_bytes` the exact number, unit bytes;
//! - `damon_hot_range`: the hottest address range of the sample's phase ("0x…-0x…", the
//!   first `hot` line of `report phases`);
//! - `damon_pattern_held`: "yes" or "no": whether the sample's time is one where damo's
//!   record filters hold (`report times`' spans), when filters were given (values that are
//!   not substrings of each other: `-tagfocus` matches a regular expression).
//!
//! Snapshots and phases are those of the record's main target (the one with the most
//! snapshots, as `report phases` picks it).

use damo_profile::pprof::{LabelValue, SampleLabels};
use damo_record::model::Record;
use damo_report::phases::{self, Phase};

pub const PHASE: &str = "damon_phase";
pub const WSS: &str = "damon_wss";
pub const WSS_BYTES: &str = "damon_wss_bytes";
pub const HOT_RANGE: &str = "damon_hot_range";
pub const PATTERN: &str = "damon_pattern_held";

/// The access record's view of time, for labelling samples.
pub struct Moments {
    /// `(start_ns, end_ns, number, hottest range)`, in time order.
    phases: Vec<(u64, u64, usize, Option<String>)>,
    /// `(start_ns, end_ns, working set bytes)`, in time order.
    snapshots: Vec<(u64, u64, u64)>,
    /// Where the filters held: sorted `[start, end)` ns; `None` without filters.
    spans: Option<Vec<(u64, u64)>>,
}

impl Moments {
    /// `phases`: `report phases`' phases of the record's main target, in order.
    pub fn new(record: &Record, phases: &[Phase], spans: Option<Vec<(u64, u64)>>) -> Self {
        let mut snapshots: Vec<(u64, u64, u64)> = phases::main_target(record)
            .map(|t| t.snapshots.iter().map(|s| (s.start_ns, s.end_ns, s.regions.iter().filter(|r| r.nr_accesses > 0).map(|r| r.size()).sum())).collect())
            .unwrap_or_default();
        snapshots.sort_unstable();
        let phases = phases.iter().enumerate().map(|(i, p)| (p.start_ns, p.end_ns, i + 1, p.hot_ranges.first().map(|&(s, e, _)| format!("{s:#x}-{e:#x}")))).collect();
        Self { phases, snapshots, spans }
    }

    /// The labels of a sample taken at `ts_ns`.
    pub fn labels(&self, ts_ns: u64) -> SampleLabels {
        let mut labels = Vec::new();
        if let Some((_, _, n, hot)) = find(&self.phases, ts_ns, |p| (p.0, p.1)) {
            labels.push((PHASE, LabelValue::Str(n.to_string())));
            if let Some(hot) = hot {
                labels.push((HOT_RANGE, LabelValue::Str(hot.clone())));
            }
        }
        if let Some(&(_, _, wss)) = find(&self.snapshots, ts_ns, |s| (s.0, s.1)) {
            labels.push((WSS, LabelValue::Str(wss_bucket(wss))));
            labels.push((WSS_BYTES, LabelValue::Num(i64::try_from(wss).unwrap_or(i64::MAX), "bytes")));
        }
        if let Some(spans) = &self.spans {
            let held = damo_profile::stacks::in_spans(spans, ts_ns);
            labels.push((PATTERN, LabelValue::Str(if held { "yes" } else { "no" }.into())));
        }
        labels
    }
}

/// The entry whose `[start, end)` holds `ts` in a list sorted by start.
fn find<T>(list: &[T], ts: u64, span: impl Fn(&T) -> (u64, u64)) -> Option<&T> {
    let i = list.partition_point(|e| span(e).0 <= ts);
    list[..i].last().filter(|e| ts < span(e).1)
}

/// The power-of-two range a size is in: "0", "1B-2B", …, "16MiB-32MiB".
pub fn wss_bucket(bytes: u64) -> String {
    if bytes == 0 {
        return "0".into();
    }
    let k = 63 - bytes.leading_zeros();
    format!("{}-{}", pow2(k), pow2(k + 1))
}

fn pow2(k: u32) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    format!("{}{}", 1u64 << (k % 10), UNITS[(k / 10) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;
    use damo_record::model::{Region, Snapshot, TargetRecord};

    #[test]
    fn buckets_are_powers_of_two() {
        assert_eq!(wss_bucket(0), "0");
        assert_eq!(wss_bucket(1), "1B-2B");
        assert_eq!(wss_bucket(4096), "4KiB-8KiB");
        assert_eq!(wss_bucket((16 << 20) + 5), "16MiB-32MiB");
        assert_eq!(wss_bucket((1 << 30) - 1), "512MiB-1GiB");
        assert_eq!(wss_bucket(u64::MAX), "8EiB-16EiB");
    }

    #[test]
    fn labels_say_phase_wss_hot_range_and_pattern() {
        let region = |nr_accesses| Region { start: 0x1000, end: 0x3000, nr_accesses, age: None };
        let snapshots = (0..4u64).map(|i| Snapshot { start_ns: i * 100, end_ns: (i + 1) * 100, regions: vec![region(i as u32 % 2)], total_bytes: None }).collect();
        let record = Record { targets: vec![TargetRecord { snapshots, ..Default::default() }], ..Default::default() };
        let phase = Phase { first: 1, last: 2, start_ns: 100, end_ns: 300, mean_wss: 0, hot_ranges: vec![(0x1000, 0x2000, 0.9)], heat: Vec::new() };
        let m = Moments::new(&record, &[phase], Some(vec![(150, 250)]));
        let show = |ts| m.labels(ts).into_iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join(" ");
        assert_eq!(show(50), r#"damon_wss=Str("0") damon_wss_bytes=Num(0, "bytes") damon_pattern_held=Str("no")"#);
        assert_eq!(show(199), r#"damon_phase=Str("1") damon_hot_range=Str("0x1000-0x2000") damon_wss=Str("8KiB-16KiB") damon_wss_bytes=Num(8192, "bytes") damon_pattern_held=Str("yes")"#);
        assert_eq!(show(300), r#"damon_wss=Str("8KiB-16KiB") damon_wss_bytes=Num(8192, "bytes") damon_pattern_held=Str("no")"#, "phase ends are exclusive");
        assert_eq!(show(400), r#"damon_pattern_held=Str("no")"#, "after the last snapshot");
    }
}
