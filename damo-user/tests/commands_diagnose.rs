//! `diagnose` on the host (as root): every section is there, the running kdamonds are
//! watched and show snapshots, and nothing of the host's DAMON changes.

use std::{path::Path, process::Command};

/// The host's kdamonds: `nr_kdamonds`, each one's state and pid (read-only).
fn host_kdamonds() -> Vec<String> {
    let root = Path::new("/sys/kernel/mm/damon/admin/kdamonds");
    let read = |rel: &str| std::fs::read_to_string(root.join(rel)).map_or_else(|e| format!("({e})"), |v| v.trim().to_owned());
    let n = read("nr_kdamonds");
    let mut state = vec![n.clone()];
    for i in 0..n.parse().unwrap_or(0) {
        state.extend([read(&format!("{i}/state")), read(&format!("{i}/pid"))]);
    }
    state
}

#[test]
#[ignore = "needs root: reads DAMON's sysfs and attaches the DAMON tracepoint"]
fn diagnose_reports_every_section_and_changes_nothing() {
    let before = host_kdamonds();
    let out = Command::new(env!("CARGO_BIN_EXE_damo-trace")).arg("diagnose").output().unwrap();
    let after = host_kdamonds();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(before, after, "diagnose changed the host's kdamonds");
    for section in ["## version", "eBPF object:", "## sysinfo", "kernel:", "## status", "## DAMON modules", "damon_reclaim:", "## DAMON tracepoint activity"] {
        assert!(text.contains(section), "no {section:?} in:\n{text}");
    }
    assert!(!text.contains("unavailable:"), "as root every section is available:\n{text}");
    let running = (0..before[0].parse().unwrap_or(0)).any(|i| before[1 + 2 * i] == "on");
    let activity = text.split("## DAMON tracepoint activity").nth(1).unwrap();
    if running {
        // Two aggregation intervals of the slowest kdamond are watched: each shows snapshots.
        let watched: Vec<u64> = activity.lines().filter_map(|l| l.split(": ").nth(1)?.split(' ').next()?.parse().ok()).collect();
        assert!(!watched.is_empty() && watched.iter().all(|&n| n > 0), "running kdamonds showed no snapshots:\n{activity}");
    } else {
        assert!(activity.contains("no kdamond runs"), "{activity}");
    }
}
