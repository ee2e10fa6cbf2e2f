//! `--raw_form` (and `report raw`): damo's plain region listing of every snapshot.

use std::fmt::Write;

use super::numfmt::time_ns_int;

use damo_record::{model::Record, units::format_sz};

/// The listing, without the newline damo's `print` ends it with.
pub fn report(record: &Record, raw: bool) -> String {
    let mut out = String::new();
    for (ti, t) in record.targets.iter().enumerate() {
        let Some(first) = t.snapshots.first() else {
            continue;
        };
        let base = first.start_ns;
        let null_id = record.damos.as_ref().and_then(|d| d.get(ti)).is_some_and(|d| d.target_id_null);
        let target_id = if null_id { "None".to_string() } else { t.target_id.to_string() };
        let _ = writeln!(out, "base_time_absolute: {}", time_ns_int(i128::from(base), raw));
        let _ = writeln!(out, "data source: unknown\n");
        for s in &t.snapshots {
            let rel = |ns: u64| time_ns_int(i128::from(ns) - i128::from(base), raw);
            let _ = writeln!(out, "monitoring_start:    {:>16}", rel(s.start_ns));
            let _ = writeln!(out, "monitoring_end:      {:>16}", rel(s.end_ns));
            let _ = writeln!(out, "monitoring_duration: {:>16}", time_ns_int(i128::from(s.end_ns) - i128::from(s.start_ns), raw));
            let _ = writeln!(out, "target_id: {target_id}");
            let _ = writeln!(out, "nr_regions: {}", s.regions.len());
            let _ = writeln!(out, "# {:>10} {:>12}  {:>12}  {:>11} {:>5}", "start_addr", "end_addr", "length", "nr_accesses", "age");
            for r in &s.regions {
                let age = r.age.map_or(-1, i64::from);
                let _ = writeln!(out, "{:012x}-{:012x} ({:>12}) {:>11} {:>5}", r.start, r.end, format_sz(r.size() as f64, raw), r.nr_accesses, age);
            }
            out.push('\n');
        }
    }
    out
}
