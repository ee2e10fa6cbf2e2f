//! `report footprints`: the distribution of memory footprints over a record's footprint
//! snapshots, as damo's `report footprints` computes it: per snapshot, the recorded processes'
//! summed virtual size (`vsz`) or resident size (`rss`), or the system's used memory
//! (`sys_used`: MemTotal − MemFree), in damo's percentile table format.
//!
//! damo keeps footprints in a file of their own beside its record (`damon.data.mem_footprint`,
//! JSON); [`from_damo_json`] reads one.

use damo_record::{
    model::{FootprintSnapshot, ProcessFootprint, Record, SystemMemory},
    units,
};

use std::path::{Path, PathBuf};

use crate::{
    chart,
    dist::{self, SortBy},
};

crate::names::named_enum! {
    /// What to take of each footprint snapshot.
    pub enum Metric {
        /// The processes' virtual memory sizes, summed.
        Vsz = "vsz",
        /// The processes' resident set sizes, summed.
        Rss = "rss",
        /// The system's MemTotal − MemFree.
        SysUsed = "sys_used",
    }
}

crate::names::named_enum! {
    /// The metric argument: one metric, or damo's `all`.
    #[derive(Default)]
    pub enum Metrics {
        Vsz = "vsz",
        Rss = "rss",
        SysUsed = "sys_used",
        #[default]
        All = "all",
    }
}

impl Metrics {
    /// The metrics printed, in damo's order.
    pub fn list(self) -> Vec<Metric> {
        match self {
            Metrics::Vsz => vec![Metric::Vsz],
            Metrics::Rss => vec![Metric::Rss],
            Metrics::SysUsed => vec![Metric::SysUsed],
            Metrics::All => Metric::ALL.to_vec(),
        }
    }
}

impl Metric {
    /// damo's `all`, in its order.
    pub const ALL: [Metric; 3] = [Metric::Vsz, Metric::Rss, Metric::SysUsed];

    /// The metric's value in `s`, in bytes; `None` for `sys_used` of a snapshot without
    /// system memory.
    pub fn of(self, s: &FootprintSnapshot) -> Option<u64> {
        let sum = |f: fn(&ProcessFootprint) -> u64| s.processes.iter().map(f).sum();
        match self {
            Metric::Vsz => Some(sum(|p| p.vsz)),
            Metric::Rss => Some(sum(|p| p.rss)),
            Metric::SysUsed => s.system.map(|m| m.total.saturating_sub(m.free)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FootprintsOptions {
    /// Printed one after another.
    pub metrics: Vec<Metric>,
    /// Percentiles: Python `range(start, stop, step)`.
    pub range: (i64, i64, i64),
    /// Sort the values (percentiles) or keep them in time order.
    pub sort: SortBy,
    pub raw_number: bool,
    /// Print every value instead of percentiles.
    pub all_footprint: bool,
    pub bar_cols: usize,
}

impl Default for FootprintsOptions {
    fn default() -> Self {
        let [start, stop, step] = dist::defaults::RANGE;
        Self { metrics: Metrics::default().list(), range: (start, stop, step), sort: SortBy::default(), raw_number: false, all_footprint: false, bar_cols: dist::defaults::NR_COLS_BAR }
    }
}

/// The metric's value of each footprint snapshot, in time order or sorted.
pub fn distribution(record: &Record, metric: Metric, sort: SortBy) -> Vec<u64> {
    let mut values: Vec<u64> = record.footprints.iter().filter_map(|s| metric.of(s)).collect();
    if sort == SortBy::Size {
        values.sort_unstable();
    }
    values
}

/// The text report: one table per metric, line for line as damo prints it.
pub fn report(record: &Record, o: &FootprintsOptions) -> Result<String, dist::RangeError> {
    let percentiles = dist::checked_percentiles(o.range, o.bar_cols)?;
    let mut out = String::new();
    for &metric in &o.metrics {
        let values = distribution(record, metric, o.sort);
        out.push_str(&dist::format(metric.name(), &values, &percentiles, o.all_footprint, units::format_sz, o.raw_number, o.bar_cols));
        out.push('\n');
    }
    Ok(out)
}

/// `--plot`: the distributions as a chart (SVG), a line per metric.
pub fn plot(record: &Record, o: &FootprintsOptions) -> Result<String, dist::RangeError> {
    let percentiles = dist::checked_percentiles(o.range, o.bar_cols)?;
    let series: Vec<chart::Series> = o.metrics.iter().map(|&m| chart::distribution_series(m.name().to_string(), &distribution(record, m, o.sort), &percentiles, o.all_footprint)).collect();
    Ok(chart::svg(&series, chart::distribution_x_label(o.sort), "memory footprint (bytes)"))
}

#[derive(Debug, thiserror::Error)]
pub enum FootprintFileError {
    #[error("failed to read {}", path.display())]
    Open { path: PathBuf, source: std::io::Error },
    #[error("failed to read {}", path.display())]
    Read { path: PathBuf, source: damo_record::input::ReadError },
    #[error("failed to read {}", path.display())]
    Parse { path: PathBuf, source: DamoFootprintError },
}

/// Where damo keeps the footprints of the record at `record`: `<record>.mem_footprint`.
pub fn damo_file_beside(record: &Path) -> PathBuf {
    record.with_file_name(format!("{}.mem_footprint", record.file_name().unwrap_or_default().to_string_lossy()))
}

/// damo's mem_footprint JSON at `path`, if that is what the file is; `None` when there is no
/// such file or it is something else (a record).
pub fn read_damo_file(path: &Path) -> Result<Option<Vec<FootprintSnapshot>>, FootprintFileError> {
    // A regular file only, within the memory limit: the path may be one beside the record
    // that someone else made (a FIFO there must not hang the report).
    let mut file = match damo_record::input::open_regular(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(FootprintFileError::Open { path: path.into(), source }),
    };
    let data = damo_record::input::read_all(&mut file, &mut damo_record::budget::Meter::new()).map_err(|source| FootprintFileError::Read { path: path.into(), source })?;
    // A JSON list whose first snapshot names its footprints; damo's records are not that.
    let head = &data[..data.len().min(4096)];
    let looks_like = head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') && head.windows(12).any(|w| w == b"\"footprints\"");
    if !looks_like {
        return Ok(None);
    }
    from_damo_json(&data).map(Some).map_err(|source| FootprintFileError::Parse { path: path.into(), source })
}

#[derive(Debug, thiserror::Error)]
pub enum DamoFootprintError {
    #[error("not damo's mem_footprint JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not damo's mem_footprint JSON: {0}")]
    Shape(&'static str),
}

/// damo's `<record>.mem_footprint`: a JSON list of `{"time": <seconds>, "footprints": [{"pid":
/// <pid or null for the system>, "footprint": {...}}]}`, statm fields in pages and meminfo
/// fields in KiB. Pages are taken as 4 KiB, as damo's report takes them; times are damo's
/// wall-clock seconds, in ns.
pub fn from_damo_json(text: &[u8]) -> Result<Vec<FootprintSnapshot>, DamoFootprintError> {
    use serde_json::Value;
    const PAGE: u64 = 4096;
    let shape = DamoFootprintError::Shape;
    let list: Vec<Value> = serde_json::from_slice(text)?;
    let field = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0);
    let mut out = Vec::with_capacity(list.len());
    for snapshot in &list {
        let time = snapshot.get("time").and_then(Value::as_f64).ok_or(shape("a snapshot has no time"))?;
        let footprints = snapshot.get("footprints").and_then(Value::as_array).ok_or(shape("a snapshot has no footprints list"))?;
        let mut s = FootprintSnapshot { ts_ns: (time * 1e9) as u64, ..Default::default() };
        for entry in footprints {
            let fp = entry.get("footprint").ok_or(shape("a footprint entry has no footprint"))?;
            match entry.get("pid") {
                None | Some(Value::Null) => {
                    let kib = |key| field(fp, key) * 1024;
                    s.system = Some(SystemMemory { total: kib("total"), free: kib("free"), available: kib("available"), buffers: kib("buffers"), cached: kib("cached") });
                }
                Some(pid) => {
                    // damo writes the pid as given on its command line: a number or a string.
                    let pid = pid.as_u64().or_else(|| pid.as_str().and_then(|p| p.parse().ok())).and_then(|p| u32::try_from(p).ok()).ok_or(shape("a pid is not a number"))?;
                    let pages = |key| field(fp, key) * PAGE;
                    s.processes.push(ProcessFootprint { pid, vsz: pages("size"), rss: pages("resident"), shared: pages("shared"), text: pages("trs"), data: pages("drs") });
                }
            }
        }
        out.push(s);
    }
    Ok(out)
}

/// `footprints` as damo's `<record>.mem_footprint` JSON, the inverse of [`from_damo_json`]:
/// statm fields in 4 KiB pages, meminfo in KiB, times in wall-clock seconds when
/// `realtime_offset_ns` says how to get them (else the record's CLOCK_MONOTONIC seconds).
/// damo's fields that the record does not keep (`lrs`, `dt`: always 0 since Linux 2.6) are 0.
pub fn to_damo_json(footprints: &[FootprintSnapshot], realtime_offset_ns: Option<i64>) -> serde_json::Value {
    use serde_json::json;
    const PAGE: u64 = 4096;
    let snapshots = footprints.iter().map(|s| {
        let ns = i128::from(s.ts_ns) + i128::from(realtime_offset_ns.unwrap_or(0));
        let mut entries: Vec<serde_json::Value> = s
            .processes
            .iter()
            .map(|p| {
                let footprint = json!({"size": p.vsz / PAGE, "resident": p.rss / PAGE, "shared": p.shared / PAGE, "trs": p.text / PAGE, "lrs": 0, "drs": p.data / PAGE, "dt": 0});
                json!({"pid": p.pid, "footprint": footprint})
            })
            .collect();
        if let Some(m) = &s.system {
            entries.push(json!({"pid": null, "footprint": {"total": m.total / 1024, "free": m.free / 1024, "available": m.available / 1024, "buffers": m.buffers / 1024, "cached": m.cached / 1024}}));
        }
        json!({"time": ns as f64 / 1e9, "footprints": entries})
    });
    serde_json::Value::Array(snapshots.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// Five snapshots of two processes whose rss sums are 10, 50, 20, 40, 30 MiB (in time
    /// order); vsz 1000 MiB each time; used system memory 1, 2, 3, 4 GiB and one unknown.
    fn record() -> Record {
        let rss = [10, 50, 20, 40, 30];
        let footprints = rss
            .iter()
            .enumerate()
            .map(|(i, &r)| FootprintSnapshot {
                ts_ns: i as u64 * 1_000_000_000,
                system: (i != 4).then_some(SystemMemory { total: 8 << 30, free: (7 - i as u64) << 30, ..Default::default() }),
                processes: vec![ProcessFootprint { pid: 1, vsz: 600 * MIB, rss: (r - 5) * MIB, ..Default::default() }, ProcessFootprint { pid: 2, vsz: 400 * MIB, rss: 5 * MIB, ..Default::default() }],
            })
            .collect();
        Record { footprints, ..Default::default() }
    }

    #[test]
    fn metrics_sum_processes_and_subtract_free_memory() {
        let r = record();
        assert_eq!(distribution(&r, Metric::Rss, SortBy::Time), [10, 50, 20, 40, 30].map(|v| v * MIB));
        assert_eq!(distribution(&r, Metric::Rss, SortBy::Size), [10, 20, 30, 40, 50].map(|v| v * MIB));
        assert_eq!(distribution(&r, Metric::Vsz, SortBy::Size), [1000 * MIB; 5]);
        assert_eq!(distribution(&r, Metric::SysUsed, SortBy::Size), [1u64, 2, 3, 4].map(|g| g << 30), "the snapshot without meminfo is left out");
    }

    #[test]
    fn exact_percentiles_in_damos_table() {
        let o = FootprintsOptions { metrics: vec![Metric::Rss], raw_number: true, bar_cols: 10, ..Default::default() };
        // Sorted 10, 20, 30, 40, 50 MiB: percentile p picks index ⌊p/100 × 5⌋, the last for 100.
        let want = "# <percentile> <rss>\n# avr:\t31457280\n  \
                    0        10485760 |**        |\n \
                    25        20971520 |****      |\n \
                    50        31457280 |******    |\n \
                    75        41943040 |********  |\n\
                    100        52428800 |**********|\n";
        assert_eq!(report(&record(), &o).unwrap(), want);
        // Human units, no bar, every value in time order.
        let o = FootprintsOptions { metrics: vec![Metric::SysUsed, Metric::Rss], range: (50, 51, 1), bar_cols: 0, sort: SortBy::Time, ..Default::default() };
        assert_eq!(report(&record(), &o).unwrap(), "# <percentile> <sys_used>\n# avr:\t2.500 GiB\n 50       3.000 GiB\n# <percentile> <rss>\n# avr:\t30.000 MiB\n 50      20.000 MiB\n");
        let o = FootprintsOptions { metrics: vec![Metric::Rss], all_footprint: true, sort: SortBy::Time, raw_number: true, ..Default::default() };
        assert_eq!(report(&record(), &o).unwrap(), "# <percentile> <rss>\n# avr:\t31457280\n0 10485760\n1 52428800\n2 20971520\n3 41943040\n4 31457280\n");
    }

    #[test]
    fn no_snapshot_is_said_so() {
        let o = FootprintsOptions { metrics: vec![Metric::Vsz], ..Default::default() };
        assert_eq!(report(&Record::default(), &o).unwrap(), "# <percentile> <vsz>\n# no snapshot\n");
    }

    #[test]
    fn reads_damos_mem_footprint_json() {
        let json = br#"[{"time": 1700000000.5, "footprints": [
            {"pid": 42, "footprint": {"size": 100, "resident": 50, "shared": 10, "trs": 5, "lrs": 0, "drs": 30, "dt": 0}},
            {"pid": null, "footprint": {"total": 1000, "free": 200, "available": 500, "buffers": 1, "cached": 7}}]},
            {"time": 1700000001.5, "footprints": [{"pid": "43", "footprint": {"size": 1, "resident": 1, "shared": 0, "trs": 0, "lrs": 0, "drs": 0, "dt": 0}}]}]"#;
        let s = from_damo_json(json).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].ts_ns, 1_700_000_000_500_000_000);
        assert_eq!(s[0].processes, [ProcessFootprint { pid: 42, vsz: 409_600, rss: 204_800, shared: 40_960, text: 20_480, data: 122_880 }]);
        assert_eq!(s[0].system, Some(SystemMemory { total: 1_024_000, free: 204_800, available: 512_000, buffers: 1024, cached: 7168 }));
        assert_eq!((s[1].processes[0].pid, s[1].system), (43, None));
        assert!(from_damo_json(b"{\"records\": []}").is_err());
        assert!(from_damo_json(b"[{\"footprints\": []}]").is_err());
    }

    #[test]
    fn writes_what_it_reads_as_damo_writes_it() {
        let snapshots = vec![FootprintSnapshot {
            ts_ns: 2_000_000_000,
            system: Some(SystemMemory { total: 8 << 30, free: 1 << 30, available: 2 << 30, buffers: 4096, cached: 1 << 20 }),
            processes: vec![ProcessFootprint { pid: 42, vsz: 100 * MIB, rss: 10 * MIB, shared: MIB, text: 8192, data: 4 * MIB }],
        }];
        // Wall clock: the offset turns 2 s of CLOCK_MONOTONIC into 1_700_000_000.5 s.
        let json = to_damo_json(&snapshots, Some(1_699_999_998_500_000_000));
        assert_eq!(json[0]["time"], 1_700_000_000.5);
        assert_eq!(json[0]["footprints"][0], serde_json::json!({"pid": 42, "footprint": {"size": 25_600, "resident": 2560, "shared": 256, "trs": 2, "lrs": 0, "drs": 1024, "dt": 0}}));
        assert_eq!(json[0]["footprints"][1]["footprint"]["total"], 8 << 20);
        let back = from_damo_json(&serde_json::to_vec(&json).unwrap()).unwrap();
        assert_eq!((back[0].system, &back[0].processes), (snapshots[0].system, &snapshots[0].processes));
        assert_eq!(to_damo_json(&snapshots, None)[0]["time"], 2.0, "without a wall clock, the record's own seconds");
    }
}
