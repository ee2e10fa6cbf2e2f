//! `report times`: the time intervals in which a record's (filtered) snapshots have regions,
//! as damo's `damo_report_times.py` prints them — typically with `--access_rate 50% 100%` to
//! ask "when was something hot".

use damo_record::model::Record;

/// Intervals `[start, end)` in ns; consecutive snapshots with regions join into one.
pub fn intervals(record: &Record) -> Vec<(u64, u64)> {
    let mut times: Vec<(u64, u64)> = Vec::new();
    for s in record.targets.iter().flat_map(|t| &t.snapshots) {
        if s.regions.is_empty() {
            continue;
        }
        match times.last_mut() {
            Some(last) if last.1 == s.start_ns => last.1 = s.end_ns,
            _ => times.push((s.start_ns, s.end_ns)),
        }
    }
    times
}

/// damo's lines: `start-end` in seconds with 6 decimals, each followed by `# (seconds)`.
pub fn report(record: &Record) -> String {
    let mut out = String::new();
    for (start, end) in intervals(record) {
        out.push_str(&format!("{:.6}-{:.6}\n# (seconds)\n", start as f64 / 1e9, end as f64 / 1e9));
    }
    out
}
