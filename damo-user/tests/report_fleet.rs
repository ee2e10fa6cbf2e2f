//! `report export --format parquet` and the pprof labels, against the tools fleets run:
//! DuckDB's SQL over a dataset of several hosts' records answers what damo-trace's own
//! reports answer on each record, and `go tool pprof -tagfocus` on the labels selects the
//! samples `report profile`'s filters select.

mod differential;
mod fleet;

use std::{collections::BTreeMap, path::Path, process::Command};

use differential::ours;

#[test]
fn duckdb_answers_what_the_reports_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (dataset, records) = fleet::dataset(dir.path());
    let Some(python) = fleet::python("DAMO_TRACE_DUCKDB_PYTHON", "fleet-venv", "DAMO_TRACE_SKIP_DUCKDB", "DuckDB") else { return };
    let answers = fleet::query(&python, "duckdb", &dataset);
    assert_eq!(answers["schema_versions"], serde_json::json!([damo_fleet::SCHEMA_VERSION.to_string()]));
    fleet::check_answers("duckdb", &answers, &records);
}

#[test]
fn dataset_has_every_table_per_record_and_refuses_bad_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let (dataset, records) = fleet::dataset(dir.path());
    for table in ["snapshots", "regions", "stack_samples", "stacks", "footprints", "phases"] {
        for (host, name, _) in fleet::RECORDS {
            let file = dataset.join(format!("{table}/host={host}/record={name}/part-0.parquet"));
            assert_eq!(&std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))[..4], b"PAR1");
        }
    }
    let rec = records[0].to_str().unwrap();
    let out = dataset.to_str().unwrap();
    for (args, message) in [(vec!["--host", "a/b"], "--host \"a/b\""), (vec!["--access_rate", "50%", "100%"], "exports the whole record"), (vec!["--record_name", ".."], "--record_name \"..\"")] {
        let mut all = vec!["report", "export", "--format", "parquet", "-i", rec, "-o", out];
        all.extend(args);
        let (ok, _, err) = ours(&all);
        assert!(!ok && err.contains(message) && err.lines().count() == 1, "{all:?}: {err}");
    }
    // A record that names no host needs --host.
    let bare = dir.path().join("bare.dtr");
    fleet::write(&bare, [18, 5, 18], None);
    let (ok, _, err) = ours(&["report", "export", "--format", "parquet", "-i", bare.to_str().unwrap(), "-o", out]);
    assert!(!ok && err.contains("give --host NAME"), "{err}");
}

/// Self samples per function of `go tool pprof -top` on `profile` with `filter` arguments.
fn pprof_top(profile: &Path, filter: &[&str], home: &Path) -> BTreeMap<String, u64> {
    let out = Command::new("go").args(["tool", "pprof", "-top", "-nodecount=1000", "-sample_index=samples"]).args(filter).arg(profile).env("HOME", home).env("PPROF_TMPDIR", home).output().unwrap();
    assert!(out.status.success(), "go tool pprof {filter:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // Rows: flat flat% sum% cum cum% name.
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 6 || !f[1].ends_with('%') || !f[4].ends_with('%') {
                return None;
            }
            Some((f[5].to_owned(), f[0].parse().ok()?))
        })
        .filter(|&(_, n)| n > 0)
        .collect()
}

/// Self samples per function of `report profile` with `filter` arguments.
fn profile_top(rec: &str, filter: &[&str]) -> BTreeMap<String, u64> {
    let mut args = vec!["report", "profile", "-i", rec, "--json", "--top", "1000"];
    args.extend_from_slice(filter);
    let (ok, out, err) = ours(&args);
    assert!(ok, "{args:?}: {err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut top = BTreeMap::new();
    for r in doc["rows"].as_array().unwrap() {
        *top.entry(r["symbol"].as_str().unwrap().to_owned()).or_default() += r["samples"].as_u64().unwrap();
    }
    top
}

#[test]
fn go_tool_pprof_tagfocus_selects_what_report_profile_selects() {
    if Command::new("go").arg("version").output().is_err() {
        eprintln!("skipped: no `go` (apt-get install golang-go, as scripts/setup.sh does)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("phases.dtr");
    fleet::write(&rec, [18, 5, 18], Some("web-1"));
    let rec = rec.to_str().unwrap();
    let profile = dir.path().join("all.pb.gz");
    let (ok, _, err) = ours(&["report", "export", "-i", rec, "-o", profile.to_str().unwrap(), "--all_samples", "--access_rate", "50%", "100%"]);
    assert!(ok, "{err}");

    let held = pprof_top(&profile, &["-tagfocus", "damon_pattern_held=yes"], dir.path());
    assert_eq!(held, profile_top(rec, &["--access_rate", "50%", "100%"]), "damon_pattern_held=yes");
    assert!(held.contains_key("scan_fn") && !held.contains_key("update_fn"), "phase 2 is below 50%: {held:?}");
    let all = pprof_top(&profile, &[], dir.path());
    assert_eq!(all, profile_top(rec, &[]), "--all_samples exports every sample");

    let (ok, out, err) = ours(&["report", "phases", "-i", rec, "--json"]);
    assert!(ok, "{err}");
    let phases: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(phases.len(), 3, "{out}");
    for (n, p) in phases.iter().enumerate() {
        let (first, last) = (p["snapshots"][0].to_string(), p["snapshots"][1].to_string());
        let by_label = pprof_top(&profile, &["-tagfocus", &format!("damon_phase=^{}$", n + 1)], dir.path());
        assert_eq!(by_label, profile_top(rec, &["--snapshot_idx", &first, &last]), "phase {} (snapshots {first}-{last})", n + 1);
        assert_eq!(by_label.get(fleet::FUNCTIONS[n].1), Some(&(fleet::SNAPSHOTS * 9)), "phase {}: {by_label:?}", n + 1);
        let hot = &p["hot_ranges"][0];
        let range = format!("{:#x}-{:#x}", hot["start"].as_u64().unwrap(), hot["end"].as_u64().unwrap());
        let by_range = pprof_top(&profile, &["-tagfocus", &format!("damon_hot_range={range}")], dir.path());
        assert_eq!(by_range, by_label, "the hot range {range} labels phase {}'s samples", n + 1);
    }
    // Working set sizes: numeric labels, so ranges select them.
    let big = pprof_top(&profile, &["-tagfocus", "damon_wss_bytes=20mb:"], dir.path());
    let small = pprof_top(&profile, &["-tagfocus", "damon_wss_bytes=:20mb"], dir.path());
    assert!(!big.is_empty() && !small.is_empty(), "{big:?} {small:?}");
}
