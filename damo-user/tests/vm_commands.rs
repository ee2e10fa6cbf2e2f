//! Tier 3 (the project's VM only): the commands of issue 17 against a real kdamond.
//! `diagnose` on a kdamond `damo-trace start` began: every section, the kdamond's snapshots on
//! the tracepoint, and the kdamond left exactly as it was. Refuses to run outside the VM,
//! because it starts a kdamond.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

const ADMIN: &str = "/sys/kernel/mm/damon/admin/kdamonds";

fn in_vm_only() {
    assert_eq!(std::env::var("DAMO_TRACE_IN_VM").as_deref(), Ok("1"), "this test writes DAMON sysfs and runs only inside the project's VM (cargo xtask vm-test)");
}

fn damo_trace_exe() -> PathBuf {
    std::env::var_os("DAMO_TRACE").map_or_else(|| PathBuf::from("/bin/damo-trace"), PathBuf::from)
}

/// `damo-trace <args>` must succeed; returns its stdout.
fn damo_trace(args: &[&str]) -> String {
    let out = Command::new(damo_trace_exe()).args(args).output().expect("run damo-trace");
    assert!(out.status.success(), "damo-trace {args:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// What `start` wrote and the kernel runs: diagnose must change none of it.
fn kdamond_state() -> Vec<String> {
    let read = |p: &str| fs::read_to_string(Path::new(ADMIN).join(p)).unwrap_or_else(|e| format!("({e})"));
    let ctx = "0/contexts/0";
    let mut state = vec![read("nr_kdamonds"), read("0/state"), read("0/pid"), read(&format!("{ctx}/operations")), read(&format!("{ctx}/targets/0/pid_target"))];
    state.extend(["sample_us", "aggr_us", "update_us"].map(|i| read(&format!("{ctx}/monitoring_attrs/intervals/{i}"))));
    state.extend([read(&format!("{ctx}/schemes/nr_schemes")), read(&format!("{ctx}/schemes/0/action"))]);
    state
}

#[test]
#[ignore = "needs the project's VM: starts a kdamond"]
fn diagnose_reports_a_running_kdamond_and_leaves_it_as_it_was() {
    in_vm_only();
    let workload = std::env::var_os("DAMO_WORKLOAD").map_or_else(|| PathBuf::from("/bin/damo-workload"), PathBuf::from);
    let mut child = Command::new(workload).args(["hot-buffer", "--seconds", "60", "--hot-mib", "8", "--cold-mib", "64"]).stdout(Stdio::null()).spawn().expect("start damo-workload");
    let pid = child.id().to_string();
    damo_trace(&["start", &pid, "--damos_action", "stat"]);
    let before = kdamond_state();
    let report = Command::new(damo_trace_exe()).arg("diagnose").output().expect("run diagnose");
    let after = kdamond_state();
    let stopped = Command::new(damo_trace_exe()).arg("stop").output().expect("run damo-trace stop");
    let _ = child.kill();
    let _ = child.wait();
    assert!(stopped.status.success(), "stop: {}", String::from_utf8_lossy(&stopped.stderr));
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "diagnose failed: {}", String::from_utf8_lossy(&report.stderr));
    assert_eq!(before, after, "diagnose changed the kdamond");
    for section in ["## version", "## sysinfo", "vaddr", "## status", "— ours", "## DAMON modules", "## DAMON tracepoint activity (3 s)"] {
        assert!(text.contains(section), "no {section:?} in:\n{text}");
    }
    assert!(!text.contains("unavailable:"), "{text}");
    // 3 s at a 100 ms aggregation interval.
    let activity = text.split("## DAMON tracepoint activity").nth(1).unwrap();
    let snapshots: u64 = activity.lines().find_map(|l| l.strip_prefix("kdamond 0 context 0 target 0: ")?.split(' ').next()?.parse().ok()).unwrap_or_else(|| panic!("no kdamond 0 line:\n{activity}"));
    assert!(snapshots >= 10, "{snapshots} snapshots in 3 s at 100 ms:\n{activity}");
    assert!(activity.contains("lost: nothing"), "{activity}");
}
