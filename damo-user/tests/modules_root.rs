//! Tier 2 (root on the host): the DAMON modules' status is read-only. The host's modules
//! belong to the machine: only `status`-like commands run here, and every parameter file's
//! bytes must be the same afterwards.

use std::{fs, process::Command};

#[allow(dead_code, reason = "these tests use only the module parameters of the shared helpers")]
mod common;

use common::damon_module_parameters;

const MODULES: &str = "/sys/module";

#[test]
#[ignore = "needs root: reads the host's DAMON module parameters (never writes them)"]
fn module_status_changes_no_parameter_of_the_host() {
    // Nothing on the host is ours: `status` then asks no kdamond for fresh stats.
    let run_dir = tempfile::tempdir().unwrap();
    let before = damon_module_parameters();
    for module in ["reclaim", "lru_sort"] {
        let out = Command::new(env!("CARGO_BIN_EXE_damo-trace")).args([module, "status"]).env("DAMO_TRACE_RUN_DIR", run_dir.path()).output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if fs::metadata(format!("{MODULES}/damon_{module}/parameters")).is_ok() {
            assert!(out.status.success() && stdout.contains("enabled: "), "{module} status: {stdout}{stderr}");
        } else {
            assert!(!out.status.success() && stderr.contains(&format!("CONFIG_DAMON_{}", module.to_uppercase())), "{module} status: {stderr}");
        }
    }
    for args in [&["module", "stat", "read"][..], &["status"], &["sysinfo", "--json"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_damo-trace")).args(args).env("DAMO_TRACE_RUN_DIR", run_dir.path()).output().unwrap();
        eprintln!("damo-trace {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    let sysinfo = Command::new(env!("CARGO_BIN_EXE_damo-trace")).args(["sysinfo", "--json"]).env("DAMO_TRACE_RUN_DIR", run_dir.path()).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&sysinfo.stdout).unwrap();
    for m in json["modules"].as_array().unwrap() {
        let present = fs::metadata(format!("{MODULES}/damon_{}/parameters", m["name"].as_str().unwrap())).is_ok();
        assert_eq!(m["present"], present, "{m}");
    }
    assert_eq!(damon_module_parameters(), before, "a read-only command changed a DAMON module parameter");
}
