//! What the VM tier's tests share: the guard that keeps them in the VM, damo-trace and the
//! workload as the VM holds them, a kdamond started by raw sysfs writes (as a tool other than
//! damo-trace would), and DAMON's sysfs read whole to check that nothing was changed.

#![allow(dead_code, reason = "each VM test target uses its own part of this module")]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

/// Panics outside the project's VM: these tests write DAMON's sysfs or enable its modules.
pub fn in_vm_only() {
    assert_eq!(std::env::var("DAMO_TRACE_IN_VM").as_deref(), Ok("1"), "this test changes DAMON's state (sysfs, modules) and runs only inside the project's VM (cargo xtask vm-test)");
}

/// The executable `var` names, else where the VM's initramfs puts it.
pub fn exe(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

pub fn damo_trace_exe() -> PathBuf {
    exe("DAMO_TRACE", "/bin/damo-trace")
}

/// `damo-trace <args>`, whatever its exit.
pub fn run(args: &[&str]) -> Output {
    Command::new(damo_trace_exe()).args(args).output().expect("run damo-trace")
}

/// `damo-trace <args>` must succeed; returns its stdout.
pub fn damo_trace(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "damo-trace {args:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The workload keeping an 8 MiB buffer hot beside 64 MiB of cold memory for 60 s, with the
/// hot and the cold buffer's address ranges it announces.
pub fn start_workload() -> (Child, (u64, u64), (u64, u64)) {
    let mut child = Command::new(exe("DAMO_WORKLOAD", "/bin/damo-workload"))
        .args(["hot-buffer", "--seconds", "60", "--hot-mib", "8", "--cold-mib", "64"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start damo-workload");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut range = |name: &str| {
        let line = lines.next().expect("workload output").unwrap();
        let rest = line.strip_prefix(&format!("buffer {name} ")).unwrap_or_else(|| panic!("unexpected line {line}"));
        let (a, b) = rest.split_once('-').unwrap();
        let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
        (hex(a), hex(b))
    };
    let cold = range("cold");
    let hot = range("hot");
    (child, hot, cold)
}

/// DAMON's kdamonds directory, below the one admin path.
pub fn kdamonds() -> PathBuf {
    Path::new(damo_sysfs::ADMIN).join("kdamonds")
}

/// A vaddr kdamond on `pid`, written the way the kernel documents (kdamond → context →
/// target, attrs, then state), as a tool other than damo-trace would start it. Stopped and
/// removed on drop.
pub struct RawKdamond {
    pub pid: u32,
}

impl RawKdamond {
    pub fn start(target: u32) -> Self {
        let write = |path: &str, value: &str| {
            let path = kdamonds().join(path);
            std::fs::write(&path, value).unwrap_or_else(|e| panic!("write {value} to {}: {e}", path.display()))
        };
        // From a clean slate: an earlier test's kdamond directories are dropped first.
        write("nr_kdamonds", "0");
        write("nr_kdamonds", "1");
        write("0/contexts/nr_contexts", "1");
        write("0/contexts/0/operations", "vaddr");
        write("0/contexts/0/monitoring_attrs/intervals/sample_us", "5000");
        write("0/contexts/0/monitoring_attrs/intervals/aggr_us", "100000");
        write("0/contexts/0/monitoring_attrs/nr_regions/min", "10");
        write("0/contexts/0/monitoring_attrs/nr_regions/max", "1000");
        write("0/contexts/0/targets/nr_targets", "1");
        write("0/contexts/0/targets/0/pid_target", &target.to_string());
        write("0/state", "on");
        let pid = std::fs::read_to_string(kdamonds().join("0/pid")).unwrap().trim().parse().unwrap();
        Self { pid }
    }
}

impl Drop for RawKdamond {
    /// Stops the kdamond, waits until the kernel says it is off, and removes it, as a tool
    /// cleaning up after itself would.
    fn drop(&mut self) {
        let _ = std::fs::write(kdamonds().join("0/state"), "off");
        for _ in 0..100 {
            if std::fs::read_to_string(kdamonds().join("0/state")).is_ok_and(|s| s.trim() == "off") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::write(kdamonds().join("nr_kdamonds"), "0");
    }
}

/// Every readable file under DAMON's sysfs with its bytes, by path: what a read-only
/// command must leave byte-identical.
pub fn sysfs_bytes() -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(dir: &Path, into: &mut Vec<(PathBuf, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                walk(&e.path(), into);
            } else if kind.is_file() {
                // A write-only file reads as an error: its absence of bytes is kept.
                into.push((e.path(), std::fs::read(e.path()).unwrap_or_default()));
            }
        }
    }
    let mut files = Vec::new();
    walk(Path::new(damo_sysfs::ADMIN), &mut files);
    files
}
