//! Tier 3 (the project's VM only): `top --plain` on the three-phase workload, with the
//! kdamond it starts. The workload's own lines (`phase <name> start …`) share top's stdout,
//! so each text block is known to fall inside a phase; the blocks printed well inside a
//! phase must name that phase's function and not the others'. Refuses to run outside the VM:
//! it writes DAMON's sysfs.

use std::{path::PathBuf, process::Command};

const FUNCTIONS: [(&str, &str); 3] = [("sequential", "phase_sequential_scan"), ("random", "phase_random_update"), ("hotspot", "phase_hot_spot")];
/// Blocks come once a second and the function list covers the last two: from the third
/// block after a phase began, it holds that phase alone.
const SETTLED: usize = 3;

fn in_vm_only() {
    assert_eq!(std::env::var("DAMO_TRACE_IN_VM").as_deref(), Ok("1"), "this test writes DAMON sysfs and runs only inside the project's VM (cargo xtask vm-test)");
}

fn exe(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// The text blocks printed while each phase ran, by phase name.
fn blocks_by_phase(stdout: &str) -> Vec<(String, Vec<String>)> {
    let mut phases: Vec<(String, Vec<String>)> = Vec::new();
    let mut current: Option<usize> = None;
    let mut block = String::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("phase ") {
            let mut words = rest.split_whitespace();
            match (words.next(), words.next()) {
                (Some(name), Some("start")) => {
                    phases.push((name.to_owned(), Vec::new()));
                    current = Some(phases.len() - 1);
                }
                (Some(_), Some("end")) => current = None,
                _ => {}
            }
            continue;
        }
        if line.starts_with("top ") {
            block.clear();
        }
        block.push_str(line);
        block.push('\n');
        if line.is_empty() {
            if let Some(i) = current {
                phases[i].1.push(std::mem::take(&mut block));
            }
        }
    }
    phases
}

#[test]
#[ignore = "needs the project's VM: starts a kdamond"]
fn plain_top_names_each_phase_while_it_runs() {
    in_vm_only();
    let command = format!("{} phases --phase-seconds 8", exe("DAMO_WORKLOAD", "/bin/damo-workload").display());
    let out = Command::new(exe("DAMO_TRACE", "/bin/damo-trace")).args(["top", "--plain", "--minr", "100", "--timeout", "90s", &command]).output().expect("run damo-trace top");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "top failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let phases = blocks_by_phase(&stdout);
    assert_eq!(phases.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(), ["sequential", "random", "hotspot"], "{stdout}");
    for ((name, blocks), (_, function)) in phases.iter().zip(FUNCTIONS) {
        let settled = &blocks[SETTLED.min(blocks.len())..];
        assert!(!settled.is_empty(), "phase {name}: no block well inside it:\n{stdout}");
        for block in settled {
            let functions: Vec<&str> = block.lines().filter(|l| l.trim_start().split_whitespace().next().is_some_and(|w| w.ends_with('%'))).collect();
            assert!(functions.iter().any(|l| l.ends_with(function)), "phase {name}: {function} not listed:\n{block}");
            for (_, other) in FUNCTIONS.iter().filter(|(_, f)| *f != function) {
                assert!(!functions.iter().any(|l| l.ends_with(other)), "phase {name}: {other} listed:\n{block}");
            }
        }
    }
    // DAMON's side: the kdamond top started reported the workload's memory.
    assert!(stdout.contains("\n  band 0x"), "no hot band in any block:\n{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("kdamond 0 (pid ")), "{stdout}");
    // And it was stopped when top ended.
    let state = std::fs::read_to_string("/sys/kernel/mm/damon/admin/kdamonds/0/state").unwrap_or_default();
    assert_eq!(state.trim(), "off", "top left its kdamond running");
}
