//! What the dataset tests share: records of three access phases per host, the dataset of
//! several of them, and the query runner (`damo-fleet/sql/run.py`) on DuckDB or Spark.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use damo_record::{
    model::{Intervals, Metadata, Region, Snapshot, StackSample, TargetRecord},
    native::NativeWriter,
};

/// The phases' functions (kernel symbols), each running while its phase's buffer is hot.
pub const FUNCTIONS: [(u64, &str); 3] = [(0xffff_ffff_8100_1000, "scan_fn"), (0xffff_ffff_8100_2000, "update_fn"), (0xffff_ffff_8100_3000, "lookup_fn")];
const CALLER: u64 = 0xffff_ffff_8100_9000;
const BUFFER: u64 = 16 << 20;
/// Snapshots per phase, 100 ms each.
pub const SNAPSHOTS: u64 = 30;

/// Writes a record of three phases; phase `p` makes buffer `p` hot at `rates[p]` (+0..2) of
/// the 20 accesses an aggregation can see, while its function runs. A fourth region grows
/// every snapshot at 1 access, so working set sizes differ from snapshot to snapshot.
pub fn write(path: &Path, rates: [u32; 3], hostname: Option<&str>) {
    let intervals = Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 };
    let target = TargetRecord { intervals: Some(intervals), target_id: 42, ..Default::default() };
    let mut w = NativeWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    if let Some(h) = hostname {
        w.metadata(&Metadata { hostname: h.into(), ..Default::default() }).unwrap();
    }
    let mut samples = Vec::new();
    for (p, &(function, _)) in FUNCTIONS.iter().enumerate() {
        for i in 0..SNAPSHOTS {
            let n = p as u64 * SNAPSHOTS + i;
            let (start_ns, end_ns) = (1_000_000_000 + n * 100_000_000, 1_000_000_000 + (n + 1) * 100_000_000);
            let mut regions: Vec<Region> = (0..3u64)
                .map(|q| Region { start: 0x1000_0000 * (q + 1), end: 0x1000_0000 * (q + 1) + BUFFER, nr_accesses: if q as usize == p { rates[p] + (i % 3) as u32 } else { 0 }, age: Some(i as u32) })
                .collect();
            regions.push(Region { start: 0x5000_0000, end: 0x5000_0000 + (n + 1) * 65536, nr_accesses: 1, age: None });
            w.snapshot(&target, &Snapshot { start_ns, end_ns, regions, total_bytes: Some(4 * BUFFER) }).unwrap();
            for k in 0..10 {
                let (leaf, comm, tid) = if k == 9 { (CALLER, "helper", 8) } else { (function, "fleet", 7) };
                samples.push(StackSample { ts_ns: start_ns + k * 10_000_000 + 1, pid: 7, tid, cpu: k as u32 % 2, comm: comm.into(), user: vec![], kernel: vec![leaf, CALLER] });
            }
        }
    }
    w.stacks(&samples).unwrap();
    let mut symbols: Vec<(u64, String)> = FUNCTIONS.iter().map(|&(a, n)| (a, n.to_string())).collect();
    symbols.push((CALLER, "caller".into()));
    w.kernel_symbols(&symbols).unwrap();
    w.finish().unwrap();
}

/// The records of the dataset tests: (host, record name, the phases' hot rates).
pub const RECORDS: [(&str, &str, [u32; 3]); 3] = [("web-1", "run-1", [18, 5, 18]), ("web-1", "run-2", [5, 5, 12]), ("db-7", "run-1", [5, 18, 10])];

/// Writes [`RECORDS`] under `dir` and exports each into the dataset `dir/dataset`; returns
/// the dataset and each record's path.
pub fn dataset(dir: &Path) -> (PathBuf, Vec<PathBuf>) {
    let dataset = dir.join("dataset");
    let mut records = Vec::new();
    for (host, name, rates) in RECORDS {
        let rec = dir.join(format!("{host}-{name}.dtr"));
        write(&rec, rates, Some(host));
        // The host from the record's metadata, the record's name given.
        let (ok, _, err) = crate::differential::ours(&["report", "export", "--format", "parquet", "-i", rec.to_str().unwrap(), "-o", dataset.to_str().unwrap(), "--record_name", name]);
        assert!(ok, "export of {} failed: {err}", rec.display());
        records.push(rec);
    }
    (dataset, records)
}

/// The python of a query engine's virtualenv: `env` if set, else `.cache/<venv>` (made by
/// `cargo xtask test`); `None` (after saying so) when `skip` is set to skip it on purpose.
pub fn python(env: &str, venv: &str, skip: &str, what: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache").join(venv).join("bin/python");
    if installed.is_file() {
        return Some(installed);
    }
    if std::env::var_os(skip).is_some_and(|v| v != "0") {
        eprintln!("skipped: the {what} queries ({skip} is set)");
        return None;
    }
    panic!("{what} is needed for this test: run `cargo xtask test` once (it installs it into .cache/{venv}), set {env}, or set {skip}=1 to skip it")
}

/// The answers of `damo-fleet/sql/run.py <engine>` on `dataset`.
pub fn query(python: &Path, engine: &str, dataset: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../damo-fleet/sql/run.py");
    let out = Command::new(python).arg(&script).arg(engine).arg(dataset).output().unwrap_or_else(|e| panic!("failed to run {}: {e}", python.display()));
    assert!(out.status.success(), "{engine} queries failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{engine} printed no JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout)))
}

/// A row of `report profile`: command, object, symbol, samples.
pub type ProfileRow = (String, String, String, u64);

/// `report wss` (percentile, bytes), `report times` (start, end s) and `report profile` rows.
pub struct Reports {
    pub wss: Vec<(i64, u64)>,
    pub times: Vec<(f64, f64)>,
    pub rows: Vec<ProfileRow>,
}

/// damo-trace's own answers to the dataset queries, for one record, in the queries' shapes:
/// `report wss` (raw numbers), `report times` and `report profile` with `--access_rate 50% 100%`.
pub fn reports(rec: &Path) -> Reports {
    let rec = rec.to_str().unwrap();
    let run = |args: &[&str]| {
        let (ok, out, err) = crate::differential::ours(args);
        assert!(ok, "{args:?} failed: {err}");
        out
    };
    let wss = run(&["report", "wss", "-i", rec, "--raw_number"])
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split_whitespace();
            (f.next().unwrap().parse().unwrap(), f.next().unwrap().parse().unwrap())
        })
        .collect();
    let times = run(&["report", "times", "-i", rec, "--access_rate", "50%", "100%"])
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (a, b) = l.split_once('-').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    let profile: serde_json::Value = serde_json::from_str(&run(&["report", "profile", "-i", rec, "--access_rate", "50%", "100%", "--json", "--top", "1000"])).unwrap();
    let rows = profile["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["command"].as_str().unwrap().to_owned(), r["object"].as_str().unwrap().to_owned(), r["symbol"].as_str().unwrap().to_owned(), r["samples"].as_u64().unwrap()))
        .collect();
    Reports { wss, times, rows }
}

/// Checks an engine's answers against damo-trace's reports on every record.
pub fn check_answers(engine: &str, answers: &serde_json::Value, records: &[PathBuf]) {
    for ((host, name, _), rec) in RECORDS.iter().zip(records) {
        let ours = |q: &str| -> Vec<&serde_json::Value> { answers[q].as_array().unwrap().iter().filter(|r| r["host"] == *host && r["record"] == *name).collect() };
        let Reports { wss, times, rows } = reports(rec);
        let got_wss: Vec<(i64, u64)> = ours("wss_percentiles").iter().map(|r| (r["percentile"].as_i64().unwrap(), r["wss"].as_u64().unwrap())).collect();
        assert_eq!(got_wss, wss, "{engine}: wss percentiles of {host}/{name}");
        let got_times: Vec<(f64, f64)> = ours("pattern_times").iter().map(|r| (secs(&r["start_ns"]), secs(&r["end_ns"]))).collect();
        assert_eq!(got_times, times, "{engine}: times of {host}/{name}");
        assert!(!times.is_empty(), "{host}/{name}: the pattern never held, a weak test");
        let got_rows: Vec<ProfileRow> = ours("pattern_top_functions")
            .iter()
            .map(|r| (r["command"].as_str().unwrap().to_owned(), r["object"].as_str().unwrap().to_owned(), r["symbol"].as_str().unwrap().to_owned(), r["samples"].as_u64().unwrap()))
            .collect();
        assert_eq!(got_rows, rows, "{engine}: top functions of {host}/{name} while the pattern held");
    }
}

/// ns as `report times` prints them: seconds with 6 decimals.
fn secs(ns: &serde_json::Value) -> f64 {
    format!("{:.6}", ns.as_u64().unwrap() as f64 / 1e9).parse().unwrap()
}
