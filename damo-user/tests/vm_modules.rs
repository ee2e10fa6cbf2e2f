//! Tier 3 (the project's VM only): the DAMON kernel modules controlled through damo-trace.
//! Debian's 6.12 cloud kernel builds DAMON_RECLAIM and DAMON_LRU_SORT in
//! (CONFIG_DAMON_RECLAIM=y, CONFIG_DAMON_LRU_SORT=y); DAMON_STAT came in Linux 6.17, so this
//! kernel lacks it and the tests check that damo-trace says so.

use std::{fs, path::Path};

#[allow(dead_code, reason = "these tests use only the module parameters of the shared helpers")]
mod common;
mod vm_common;

use common::damon_module_parameters;
use vm_common::{damo_trace, in_vm_only, run};

const MODULES: &str = "/sys/module";

fn param(module: &str, name: &str) -> String {
    let path = Path::new(MODULES).join(format!("damon_{module}/parameters/{name}"));
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())).trim().to_owned()
}

/// The kdamond a module runs: a kernel thread named kdamond.N.
fn assert_is_kdamond(pid: u32) {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert!(comm.starts_with("kdamond."), "pid {pid} is {comm:?}, not a kdamond");
}

/// Turns a module off whatever the test's outcome, so a failure leaves no kdamond behind.
struct Disable(&'static str);

impl Drop for Disable {
    fn drop(&mut self) {
        let _ = run(&[self.0, "disable"]);
    }
}

#[test]
#[ignore = "needs the project's VM: enables DAMON_RECLAIM"]
fn reclaim_is_enabled_tuned_read_back_and_disabled() {
    in_vm_only();
    assert!(Path::new(MODULES).join("damon_reclaim/parameters").is_dir(), "the VM kernel was expected to have DAMON_RECLAIM");
    // Reading is read-only.
    let before = damon_module_parameters();
    assert!(damo_trace(&["reclaim"]).contains("enabled: N\n"), "status is the default action");
    damo_trace(&["module", "reclaim", "read"]);
    damo_trace(&["status"]);
    damo_trace(&["sysinfo", "--json"]);
    assert_eq!(damon_module_parameters(), before, "reading the modules changed a parameter");

    let _off = Disable("reclaim");
    let out = damo_trace(&["reclaim", "enable", "--min_age", "5s", "--quota", "10ms", "64M", "1s", "--monitor_intervals", "5ms", "100ms", "--nr_regions", "10", "500"]);
    let pid: u32 = param("reclaim", "kdamond_pid").parse().unwrap();
    assert!(out.contains(&format!("DAMON_RECLAIM enabled, kdamond pid {pid}")), "{out}");
    assert_is_kdamond(pid);
    for (name, value) in [
        ("enabled", "Y"),
        ("min_age", "5000000"),
        ("quota_ms", "10"),
        ("quota_sz", "67108864"),
        ("quota_reset_interval_ms", "1000"),
        ("sample_interval", "5000"),
        ("aggr_interval", "100000"),
        ("min_nr_regions", "10"),
        ("max_nr_regions", "500"),
        ("skip_anon", "N"),
    ] {
        assert_eq!(param("reclaim", name), value, "{name}");
    }
    let status = damo_trace(&["reclaim", "status"]);
    assert!(status.starts_with(&format!("kdamond_pid: {pid}\nenabled: Y\nmin_age: 5000000\n")), "{status}");

    // status and sysinfo name the module's kdamond as the module's.
    let status = damo_trace(&["status"]);
    assert!(status.contains(&format!("DAMON_RECLAIM kdamond: running pid {pid} — the module's")), "{status}");
    let sysinfo = damo_trace(&["sysinfo"]);
    assert!(sysinfo.contains(&format!("module reclaim (DAMON_RECLAIM): running, its own kdamond pid {pid}")), "{sysinfo}");
    let json: serde_json::Value = serde_json::from_str(&damo_trace(&["sysinfo", "--json"])).unwrap();
    assert_eq!(json["modules"][0]["kdamond_pid"], pid, "{json}");

    // New inputs reach the running kdamond through commit_inputs; it keeps running.
    let out = damo_trace(&["reclaim", "commit", "--min_age", "10s", "--skip_anon"]);
    assert!(out.contains("committed"), "{out}");
    assert_eq!((param("reclaim", "min_age").as_str(), param("reclaim", "skip_anon").as_str(), param("reclaim", "commit_inputs").as_str()), ("10000000", "Y", "N"));
    assert_eq!(param("reclaim", "kdamond_pid"), pid.to_string(), "a commit does not restart the kdamond");

    // A parameter through the generic `module` command.
    damo_trace(&["module", "reclaim", "write", "quota_ms", "20"]);
    assert_eq!(damo_trace(&["module", "reclaim", "read", "quota_ms"]), "20\n");

    assert!(damo_trace(&["reclaim", "disable"]).contains("DAMON_RECLAIM disabled"));
    assert_eq!((param("reclaim", "enabled").as_str(), param("reclaim", "kdamond_pid").as_str()), ("N", "-1"));
    assert!(!damo_trace(&["status"]).contains("DAMON_RECLAIM kdamond"), "a stopped module names no kdamond");
}

#[test]
#[ignore = "needs the project's VM: enables DAMON_LRU_SORT"]
fn lru_sort_is_enabled_tuned_read_back_and_disabled() {
    in_vm_only();
    assert!(Path::new(MODULES).join("damon_lru_sort/parameters").is_dir(), "the VM kernel was expected to have DAMON_LRU_SORT");
    let _off = Disable("lru_sort");
    let out = damo_trace(&["lru_sort", "enable", "--hot_thres_access_freq", "600", "--cold_min_age", "10s", "--quota", "5ms", "1s", "--wmarks", "1s", "300", "200", "100"]);
    let pid: u32 = param("lru_sort", "kdamond_pid").parse().unwrap();
    assert!(out.contains(&format!("DAMON_LRU_SORT enabled, kdamond pid {pid}")), "{out}");
    assert_is_kdamond(pid);
    for (name, value) in [
        ("enabled", "Y"),
        ("hot_thres_access_freq", "600"),
        ("cold_min_age", "10000000"),
        ("quota_ms", "5"),
        ("quota_reset_interval_ms", "1000"),
        ("wmarks_interval", "1000000"),
        ("wmarks_high", "300"),
        ("wmarks_mid", "200"),
        ("wmarks_low", "100"),
    ] {
        assert_eq!(param("lru_sort", name), value, "{name}");
    }
    let status = damo_trace(&["status"]);
    assert!(status.contains(&format!("DAMON_LRU_SORT kdamond: running pid {pid} — the module's")), "{status}");
    assert!(damo_trace(&["lru_sort", "disable"]).contains("DAMON_LRU_SORT disabled"));
    assert_eq!(param("lru_sort", "kdamond_pid"), "-1");
}

#[test]
#[ignore = "needs the project's VM: reads this kernel's DAMON modules"]
fn a_module_the_kernel_lacks_is_named_with_its_config_option() {
    in_vm_only();
    // DAMON_STAT is Linux 6.17+: not in the 6.12 VM kernel.
    assert!(!Path::new(MODULES).join("damon_stat").exists(), "the 6.12 VM kernel was not expected to have DAMON_STAT");
    let out = run(&["module", "stat", "read"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("CONFIG_DAMON_STAT"), "{err}");
    let bad = run(&["module", "reclaim", "write", "../../kernel/mm/damon/admin/kdamonds/nr_kdamonds", "1"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("not a parameter name"));
    let odd = run(&["module", "reclaim", "write", "min_age"]);
    assert!(!odd.status.success(), "a parameter without a value is refused");
}
