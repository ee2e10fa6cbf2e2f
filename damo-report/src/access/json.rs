//! `--json`: damo's `to_kvpairs` of each target record, indented by four like
//! `json.dumps(…, indent=4)`.

use damo_record::{
    model::Record,
    units::{format_nr, format_sz},
};
use serde::Serialize;

use super::numfmt;

/// Serializes with damo's indentation.
fn dumps(v: &impl Serialize) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if v.serialize(&mut ser).is_err() {
        return "[]".into();
    }
    String::from_utf8(buf).unwrap_or_default()
}

#[derive(Serialize)]
struct JGoal {
    access_bp: String,
    aggrs: String,
    min_sample_us: String,
    max_sample_us: String,
}

#[derive(Serialize)]
struct JIntervals {
    sample_us: String,
    aggr_us: String,
    ops_update_us: String,
    intervals_goal: JGoal,
}

#[derive(Serialize)]
struct JStats {
    nr_tried: String,
    sz_tried: String,
    nr_applied: String,
    sz_applied: String,
    sz_ops_filter_passed: String,
    qt_exceeds: String,
    nr_snapshots: String,
    max_nr_snapshots: String,
}

#[derive(Serialize)]
struct NrAccesses {
    samples: u32,
    percent: Option<i64>,
}

#[derive(Serialize)]
struct Age {
    usec: Option<String>,
    aggr_intervals: Option<String>,
}

#[derive(Serialize)]
struct JRegion {
    start: String,
    end: String,
    nr_accesses: NrAccesses,
    age: Age,
    probe_hits: Vec<u64>,
    sz_filter_passed: String,
}

#[derive(Serialize)]
struct JSnapshot {
    start_time: String,
    end_time: String,
    regions: Vec<JRegion>,
    total_bytes: Option<String>,
    damos_stats: Option<JStats>,
    sample_interval_us: Option<String>,
}

#[derive(Serialize)]
struct JRecord {
    kdamond_idx: u32,
    context_idx: u32,
    intervals: Option<JIntervals>,
    scheme_idx: Option<u32>,
    target_id: Option<u64>,
    scheme_filters: Vec<()>,
    snapshots: Vec<JSnapshot>,
    data_source: &'static str,
}

pub fn report(record: &Record, raw: bool) -> String {
    let us = |v: u64| numfmt::time_us(v as f64, raw);
    let recs: Vec<JRecord> = record
        .targets
        .iter()
        .enumerate()
        .map(|(ti, t)| {
            let damos = record.damos.as_ref().and_then(|d| d.get(ti));
            let intervals = t.intervals.map(|iv| {
                let g = damos.and_then(|d| d.intervals_goal).unwrap_or_default();
                JIntervals {
                    sample_us: us(iv.sample_us),
                    aggr_us: us(iv.aggr_us),
                    ops_update_us: us(iv.ops_update_us),
                    intervals_goal: JGoal {
                        access_bp: numfmt::bp(g.access_bp_milli as f64 / 1000.0, raw),
                        aggrs: format_nr(i128::from(g.aggrs), raw),
                        min_sample_us: us(g.min_sample_us),
                        max_sample_us: us(g.max_sample_us),
                    },
                }
            });
            let snapshots = t
                .snapshots
                .iter()
                .map(|s| {
                    let sd = damos.and_then(|d| d.snapshots.iter().find(|x| x.end_ns == s.end_ns));
                    let regions = s
                        .regions
                        .iter()
                        .map(|r| {
                            let passed = sd.and_then(|d| d.sz_filter_passed.binary_search_by_key(&r.start, |e| e.0).ok().map(|i| d.sz_filter_passed[i].1)).unwrap_or(0);
                            JRegion {
                                start: format_nr(i128::from(r.start), false),
                                end: format_nr(i128::from(r.end), false),
                                nr_accesses: NrAccesses { samples: r.nr_accesses, percent: t.intervals.map(|iv| crate::filter::access_rate_percent(r.nr_accesses, &iv)) },
                                age: Age {
                                    usec: t.intervals.and_then(|iv| r.age.map(|a| numfmt::time_ns_exact(i128::from(a) * i128::from(iv.aggr_us) * 1000, false))),
                                    aggr_intervals: r.age.map(|a| format_nr(i128::from(a), false)),
                                },
                                probe_hits: Vec::new(),
                                sz_filter_passed: format_sz(passed as f64, false),
                            }
                        })
                        .collect();
                    let damos_stats = sd.and_then(|d| d.stats).map(|st| {
                        let nr = |v: u64| format_nr(i128::from(v), raw);
                        let sz = |v: u64| format_sz(v as f64, raw);
                        JStats {
                            nr_tried: nr(st[0]),
                            sz_tried: sz(st[1]),
                            nr_applied: nr(st[2]),
                            sz_applied: sz(st[3]),
                            sz_ops_filter_passed: sz(st[4]),
                            qt_exceeds: nr(st[5]),
                            nr_snapshots: nr(st[6]),
                            max_nr_snapshots: nr(st[7]),
                        }
                    });
                    JSnapshot {
                        start_time: numfmt::time_ns_exact(i128::from(s.start_ns), raw),
                        end_time: numfmt::time_ns_exact(i128::from(s.end_ns), raw),
                        regions,
                        total_bytes: s.total_bytes.map(|b| format_sz(b as f64, raw)),
                        damos_stats,
                        sample_interval_us: None,
                    }
                })
                .collect();
            JRecord {
                kdamond_idx: t.kdamond_idx,
                context_idx: t.context_idx,
                intervals,
                scheme_idx: t.scheme_idx,
                target_id: if damos.is_some_and(|d| d.target_id_null) { None } else { Some(t.target_id) },
                scheme_filters: Vec::new(),
                snapshots,
                data_source: "unknown",
            }
        })
        .collect();
    dumps(&recs)
}
