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

/// The times a pattern held, for reports on what ran then (`report profile`, `export`).
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// `[start, end)` ns; `None`: all of the record.
    pub spans: Option<Vec<(u64, u64)>>,
    /// What was selected, for titles.
    pub what: String,
}

/// The times `filter` (damo's record filters) picks from `record`'s snapshots, applying it
/// to `record`. A filter that keeps everything selects all of the record.
pub fn select(record: &mut Record, filter: &crate::filter::RecordFilter) -> Selection {
    if filter.is_noop() {
        return Selection { spans: None, what: "all samples".into() };
    }
    filter.apply(record);
    let spans = intervals(record);
    let what = format!("{:.3} s in {} spans where the pattern held", spans.iter().map(|(a, b)| (b - a) as f64 / 1e9).sum::<f64>(), spans.len());
    Selection { spans: Some(spans), what }
}
