//! Tier 2 (root): records that name their code without the binaries, and JIT code named from
//! perf maps. `record --no-damon` only (the host's kdamond is never touched); every file a
//! test makes is in its own temp dir, except the perf map node writes to /tmp, which the test
//! removes.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn workload() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("damo-workload");
    assert!(path.is_file(), "{} is missing: cargo build --release -p damo-workload", path.display());
    path
}

/// `damo-trace record --no-damon` of `command` into `out`.
fn record(out: &Path, command: &str) {
    let status = Command::new(env!("CARGO_BIN_EXE_damo-trace"))
        .args(["record", "--no-damon", "--sample_hz", "499", "--timeout", "30", "-o"])
        .arg(out)
        .arg(command)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("start damo-trace record");
    assert!(status.success(), "record of {command} failed ({status})");
}

/// `report profile` rows of `rec` as (object, symbol, samples).
fn profile(rec: &Path, extra: &[&str]) -> Vec<(String, String, u64)> {
    let out = Command::new(env!("CARGO_BIN_EXE_damo-trace")).args(["report", "profile", "--json", "--top", "1000", "-i"]).arg(rec).args(extra).output().unwrap();
    assert!(out.status.success(), "report profile failed: {}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["rows"].as_array().unwrap().iter().map(|r| (r["object"].as_str().unwrap().to_owned(), r["symbol"].as_str().unwrap().to_owned(), r["samples"].as_u64().unwrap())).collect()
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_record_whose_binary_was_deleted_still_names_its_functions() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("workload-copy");
    std::fs::copy(workload(), &copy).unwrap();
    let rec = dir.path().join("r.data");
    record(&rec, &format!("{} known --seconds 2", copy.display()));
    std::fs::remove_file(&copy).unwrap();

    let read = damo_record::native::read(&std::fs::read(&rec).unwrap()).unwrap();
    assert!(read.complete);
    let module = read.record.modules.iter().position(|m| m.path == copy).expect("the copy is a recorded module") as u32;
    let named = read.record.code_symbols.iter().filter(|s| s.module == module && !s.frames.is_empty()).count();
    assert!(named > 0, "no names kept for the copy: {:?}", read.record.code_symbols);

    let rows = profile(&rec, &[]);
    let total: u64 = rows.iter().map(|r| r.2).sum();
    let compute: u64 = rows.iter().filter(|r| r.0 == "workload-copy" && r.1 == "workload_compute").map(|r| r.2).sum();
    let missing: u64 = rows.iter().filter(|r| r.1.contains("changed or missing")).map(|r| r.2).sum();
    // The machine may be busy: the count matters less than what the samples are named.
    assert!(total >= 100, "{total} samples in ~2 s at 499 Hz");
    assert!(compute * 10 >= total, "workload_compute leads only {compute}/{total} samples of the deleted binary: {rows:?}");
    assert_eq!(missing, 0, "frames of the deleted binary without names: {rows:?}");
}

/// The perf map a test's node process wrote, removed however the test ends.
struct PerfMapFiles(Vec<u32>);

impl Drop for PerfMapFiles {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = std::fs::remove_file(format!("/tmp/perf-{pid}.map"));
        }
    }
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn node_with_a_perf_map_names_its_js_functions() {
    let Ok(node) = which("node").or_else(|_| which("nodejs")) else {
        panic!("no node: apt-get install nodejs (the perf map test needs it)");
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("loop.js");
    std::fs::write(
        &script,
        "function damoHotLoop(n) { let s = 0; for (let i = 0; i < n; i++) { s = (s + i * i) % 1000003; } return s; }\n\
         const end = Date.now() + 2000; let x = 0; while (Date.now() < end) { x += damoHotLoop(100000); }\n\
         console.log(x);\n",
    )
    .unwrap();
    let rec = dir.path().join("node.data");
    // In the test's directory: node leaves an isolate log where it runs.
    record(&rec, &format!("sh -c 'cd {} && exec {} --perf-basic-prof {}'", dir.path().display(), node.display(), script.display()));
    let read = damo_record::native::read(&std::fs::read(&rec).unwrap()).unwrap();
    let mut pids: Vec<u32> = read.record.samples.iter().map(|s| s.pid).collect();
    pids.dedup();
    let _cleanup = PerfMapFiles(pids);
    assert!(
        read.record.jit_symbols.iter().any(|j| j.name.contains("damoHotLoop")),
        "the record kept no entry for damoHotLoop: {:?}",
        &read.record.jit_symbols[..read.record.jit_symbols.len().min(20)]
    );

    let rows = profile(&rec, &[]);
    let total: u64 = rows.iter().map(|r| r.2).sum();
    let hot: u64 = rows.iter().filter(|r| r.1.contains("damoHotLoop")).map(|r| r.2).sum();
    assert!(hot * 4 >= total, "damoHotLoop leads only {hot}/{total} samples: {:?}", &rows[..rows.len().min(15)]);
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file())).ok_or(())
}
