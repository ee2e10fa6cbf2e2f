//! The dataset benchmark (`cargo xtask bench --fleet`): the 10-minute profile record
//! (≥ 1 M regions, 120 k stack samples; see `profile.rs`) exported to Parquet — seconds and
//! bytes against the native record — and the dataset queries of docs/fleet.md on DuckDB
//! over ten such records (ten hosts).

use std::{path::Path, process::Command};

use anyhow::{bail, Context, Result};

use super::{profile, time};
use crate::{setup::workspace_root, venv};

const HOSTS: usize = 10;

pub fn run(damo_trace: &Path, dir: &Path) -> Result<()> {
    // Its own copy of the profile bench's record, so the two benches never share a file.
    let record = dir.join("fleet-10min.dtr");
    let (regions, samples) = profile::write_record(damo_trace, &record)?;
    let native = std::fs::metadata(&record)?.len();
    let dataset = dir.join("fleet-dataset");
    let _ = std::fs::remove_dir_all(&dataset);
    let rec = record.to_str().context("a non-UTF-8 path")?;
    let out = dataset.to_str().context("a non-UTF-8 path")?;
    println!("\nParquet export of a 10-minute record ({regions} regions, {samples} stack samples), one run per host:");
    let mut times = Vec::new();
    for host in 0..HOSTS {
        let args: Vec<String> = ["report", "export", "--format", "parquet", "-i", rec, "-o", out, "--host", &format!("host-{host}"), "--record_name", "bench"].into_iter().map(String::from).collect();
        times.push(time(damo_trace, &args, dir, &[])?);
    }
    times.sort();
    let bytes = partition_bytes(&dataset, "host-0")?;
    println!("  export:  best {:.3}s, median {:.3}s of {HOSTS}", times[0].as_secs_f64(), times[HOSTS / 2].as_secs_f64());
    println!("  size:    {bytes} B of Parquet (6 tables) against {native} B native: {:.2}×", bytes as f64 / native as f64);

    let python = venv::ensure(&workspace_root().join(".cache/fleet-venv"), venv::DUCKDB)?;
    let script = workspace_root().join("damo-fleet/sql/run.py");
    let mut best: Option<serde_json::Value> = None;
    for _ in 0..3 {
        let out = Command::new(&python).arg(&script).arg("duckdb").arg(&dataset).env("DAMO_FLEET_TIMING", "1").output().context("failed to run the DuckDB queries")?;
        if !out.status.success() {
            bail!("the DuckDB queries failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let seconds = serde_json::from_slice::<serde_json::Value>(&out.stdout)?["seconds"].clone();
        best = Some(match best {
            None => seconds,
            Some(b) => serde_json::Value::Object(b.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap().min(seconds[k].as_f64().unwrap_or(f64::MAX)).into())).collect()),
        });
    }
    println!("DuckDB over {HOSTS} such records (best of 3, each query on a fresh connection's views):");
    for (query, secs) in best.unwrap_or_default().as_object().into_iter().flatten() {
        println!("  {query:32} {:>8.3}s", secs.as_f64().unwrap_or(f64::NAN));
    }
    Ok(())
}

/// Bytes of one host's files, every table.
fn partition_bytes(dataset: &Path, host: &str) -> Result<u64> {
    let mut total = 0;
    for table in std::fs::read_dir(dataset)? {
        let part = table?.path().join(format!("host={host}/record=bench/part-0.parquet"));
        total += std::fs::metadata(&part).with_context(|| format!("no {}", part.display()))?.len();
    }
    Ok(total)
}
