//! `damo-trace sysinfo`: what this machine offers for DAMON tracing. Only reads.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Result;
use serde::Serialize;

use damo_sysfs::{modules::Modules, ownership::Ownership, summary, tree::SysfsTree};

use crate::{privilege::Privileges, tracefs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where the machine's facts are read from; tests point these at a fake tree.
pub struct Roots {
    pub damon_admin: PathBuf,
    pub tracefs: Option<PathBuf>,
    pub btf: PathBuf,
    pub proc: PathBuf,
    /// damo-trace's state directory (which kdamonds it started).
    pub run_dir: PathBuf,
    /// Where the DAMON modules' parameters are (`/sys/module`).
    pub sys_module: PathBuf,
}

impl Roots {
    pub fn system() -> Self {
        Self {
            damon_admin: PathBuf::from(damo_sysfs::ADMIN),
            tracefs: tracefs::find(),
            btf: PathBuf::from("/sys/kernel/btf/vmlinux"),
            proc: PathBuf::from("/proc"),
            run_dir: Ownership::system().dir().to_path_buf(),
            sys_module: PathBuf::from(damo_sysfs::modules::SYS_MODULE),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SysInfo {
    pub kernel: String,
    pub damon_sysfs: bool,
    /// Operation sets the kernel offers (vaddr, fvaddr, paddr), and where that was read.
    pub operations: Vec<String>,
    pub operations_source: String,
    pub tracefs: Option<PathBuf>,
    /// Why tracefs could not be looked at, when it exists but is not readable (not root).
    pub tracefs_error: Option<String>,
    pub tracepoints: Vec<Tracepoint>,
    pub btf: bool,
    pub privileges: Privileges,
    pub perf_event_paranoid: Option<i32>,
    pub kdamonds: Vec<summary::Kdamond>,
    /// The DAMON modules (reclaim, lru_sort, stat) and their own kdamonds.
    pub modules: Vec<damo_sysfs::modules::Status>,
    /// Why the kdamonds could not be listed (e.g. permission denied), if so.
    pub kdamonds_error: Option<String>,
    /// Why damo-trace's ownership state was not read or not trusted, if so.
    pub ownership_error: Option<String>,
    /// Plain-language problems and what to do about them.
    pub advice: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Tracepoint {
    pub name: String,
    pub fields: Vec<tracefs::Field>,
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let info = gather(&Roots::system());
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &info)?;
        writeln!(out)?;
    } else {
        print_text(&info, out)?;
    }
    Ok(())
}

pub fn gather(roots: &Roots) -> SysInfo {
    let read = |p: &Path| fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    let admin = SysfsTree::new(&roots.damon_admin);
    let damon_sysfs = roots.damon_admin.join("kdamonds/nr_kdamonds").is_file();
    // An untrusted or unreadable state claims nothing; the kdamonds are listed anyway.
    let (owned, ownership_error) = match Ownership::new(&roots.run_dir).entries() {
        Ok(entries) => (entries, None),
        Err(e) => (Vec::new(), Some(format!("{e:#}"))),
    };
    let (kdamonds, kdamonds_error) = match summary::list(&admin, &owned) {
        Ok(k) => (k, None),
        Err(e) => (Vec::new(), Some(format!("{e:#}"))),
    };
    let tracefs_error = roots.tracefs.is_none().then(tracefs::unreadable).flatten();
    let (operations, operations_source) = damo_sysfs::features::operations(&admin, &roots.proc.join("kallsyms"));
    let tracepoints = roots.tracefs.as_deref().map(damon_tracepoints).unwrap_or_default();
    let mut info = SysInfo {
        kernel: read(&roots.proc.join("sys/kernel/osrelease")).unwrap_or_default(),
        damon_sysfs,
        operations,
        operations_source,
        tracefs: roots.tracefs.clone(),
        tracefs_error,
        tracepoints,
        btf: roots.btf.is_file(),
        privileges: Privileges::current(),
        perf_event_paranoid: read(&roots.proc.join("sys/kernel/perf_event_paranoid")).and_then(|s| s.parse().ok()),
        kdamonds,
        modules: Modules::new(&roots.sys_module).statuses(),
        kdamonds_error,
        ownership_error,
        advice: Vec::new(),
    };
    info.advice = advise(&info);
    info
}

fn damon_tracepoints(tracefs: &Path) -> Vec<Tracepoint> {
    let Ok(entries) = fs::read_dir(tracefs.join("events/damon")) else { return Vec::new() };
    let mut names: Vec<String> = entries.flatten().filter(|e| e.path().join("format").is_file()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| {
            let format = tracefs::read_format(tracefs, "damon", &name).ok()?;
            let fields = format.fields.into_iter().filter(|f| !f.name.starts_with("common_")).collect();
            Some(Tracepoint { name, fields })
        })
        .collect()
}

fn advise(info: &SysInfo) -> Vec<String> {
    let mut advice = Vec::new();
    if !info.damon_sysfs {
        advice.push(
            "DAMON is not available on this system: the kernel needs CONFIG_DAMON and \
             CONFIG_DAMON_SYSFS (Linux 5.18+); `cargo xtask vm-test` runs damo-trace against \
             real DAMON in a VM."
                .to_string(),
        );
    }
    if info.damon_sysfs && !info.operations.iter().any(|o| o == "vaddr") {
        advice.push(
            "no vaddr operations: processes cannot be monitored by virtual address here; use \
             `paddr` (physical memory) or a kernel with CONFIG_DAMON_VADDR."
                .to_string(),
        );
    }
    if let Some(e) = &info.kdamonds_error {
        advice.push(format!("kdamonds unknown: {e}"));
    } else if let Some(e) = info.ownership_error.as_ref().filter(|_| !info.kdamonds.is_empty()) {
        advice.push(format!("no kdamond is counted as damo-trace's: {e}"));
    }
    if let Some(e) = &info.tracefs_error {
        advice.push(e.clone());
    } else if info.tracefs.is_none() {
        advice.push("tracefs is not mounted: mount -t tracefs nodev /sys/kernel/tracing".to_string());
    } else if !info.tracepoints.iter().any(|t| t.name == "damon_aggregated") {
        advice.push("the damon:damon_aggregated tracepoint is missing: region snapshots cannot be traced".to_string());
    }
    if !info.btf {
        advice.push("no kernel BTF (/sys/kernel/btf/vmlinux): needs CONFIG_DEBUG_INFO_BTF".to_string());
    }
    if !info.privileges.can_trace() {
        advice.push("not privileged: record, start, tune and stop need root (sudo damo-trace …)".to_string());
    }
    let foreign: Vec<String> = info.kdamonds.iter().filter(|k| !k.ours).map(|k| format!("kdamond {} (pid {})", k.index, k.pid.map_or("-".into(), |p| p.to_string()))).collect();
    if !foreign.is_empty() {
        advice.push(format!(
            "{} not started by damo-trace: damo-trace never writes to {}, and while {} the kernel \
             cannot add kdamonds (nr_kdamonds is busy)",
            foreign.join(", "),
            if foreign.len() == 1 { "it" } else { "them" },
            if foreign.len() == 1 { "it exists" } else { "they exist" },
        ));
    }
    advice
}

fn print_text(info: &SysInfo, out: &mut dyn Write) -> Result<()> {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    writeln!(out, "kernel: {}", info.kernel)?;
    writeln!(out, "DAMON sysfs: {}", yes_no(info.damon_sysfs))?;
    let ops = if info.operations.is_empty() { "none".to_string() } else { info.operations.join(" ") };
    writeln!(out, "operations: {ops} (from {})", info.operations_source)?;
    match &info.tracefs {
        Some(path) => writeln!(out, "tracefs: {}", path.display())?,
        None if info.tracefs_error.is_some() => writeln!(out, "tracefs: unknown (permission denied)")?,
        None => writeln!(out, "tracefs: not mounted")?,
    }
    writeln!(out, "DAMON tracepoints: {}", info.tracepoints.len())?;
    for tp in &info.tracepoints {
        let fields: Vec<String> = tp.fields.iter().map(|f| format!("{}@{}:{}", f.name, f.offset, f.size)).collect();
        writeln!(out, "  damon:{} {}", tp.name, fields.join(" "))?;
    }
    writeln!(out, "BTF: {}", yes_no(info.btf))?;
    let p = &info.privileges;
    writeln!(out, "privileges: root {}, CAP_BPF {}, CAP_PERFMON {}, CAP_SYS_ADMIN {}", yes_no(p.root), yes_no(p.cap_bpf), yes_no(p.cap_perfmon), yes_no(p.cap_sys_admin))?;
    match info.perf_event_paranoid {
        Some(v) => writeln!(out, "perf_event_paranoid: {v}")?,
        None => writeln!(out, "perf_event_paranoid: unknown")?,
    }
    match &info.kdamonds_error {
        Some(_) => writeln!(out, "kdamonds: unknown (see the note below)")?,
        None => writeln!(out, "kdamonds: {}", info.kdamonds.len())?,
    }
    for k in &info.kdamonds {
        writeln!(
            out,
            "  kdamond {}: state {}, pid {}, ops {}, {}",
            k.index,
            k.state,
            k.pid.map_or("-".to_string(), |p| p.to_string()),
            if k.operations.is_empty() { "-".to_string() } else { k.operations.join(",") },
            if k.ours { "started by damo-trace" } else { "not ours (never touched)" },
        )?;
    }
    for m in info.modules.iter().filter(|m| m.present) {
        let state = match (m.enabled, m.kdamond_pid) {
            (_, Some(pid)) => format!("running, its own kdamond pid {pid} (never touched by start/stop/tune)"),
            (Some(true), None) => "enabled, its kdamond's pid unknown".to_string(),
            (Some(false), None) => "disabled".to_string(),
            (None, _) => format!("unknown ({})", m.error.as_deref().unwrap_or("unreadable")),
        };
        writeln!(out, "module {} ({}): {state}", m.name, m.title())?;
    }
    for line in &info.advice {
        writeln!(out, "note: {line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// A fake machine: two kdamonds, the second started by damo-trace; no tracefs, no BTF.
    fn fake_roots(dir: &Path) -> Roots {
        let admin = dir.join("admin");
        write(&admin.join("kdamonds/nr_kdamonds"), "2\n");
        for (idx, pid, ops) in [(0, "79", "paddr"), (1, "4242", "vaddr")] {
            let k = admin.join(format!("kdamonds/{idx}"));
            write(&k.join("state"), "on\n");
            write(&k.join("pid"), pid);
            write(&k.join("contexts/nr_contexts"), "1\n");
            write(&k.join("contexts/0/operations"), ops);
            write(&k.join("contexts/0/avail_operations"), "vaddr\nfvaddr\npaddr\n");
        }
        // kdamond 1 monitors two processes; a target without a pid (paddr's) reads 0.
        let targets = admin.join("kdamonds/1/contexts/0/targets");
        write(&targets.join("nr_targets"), "3\n");
        for (t, pid) in [(0, "300\n"), (1, "0\n"), (2, "301\n")] {
            write(&targets.join(format!("{t}/pid_target")), pid);
        }
        write(&dir.join("proc/sys/kernel/osrelease"), "6.12.0-test\n");
        write(&dir.join("proc/sys/kernel/perf_event_paranoid"), "2\n");
        // Index 1 with its current pid is ours; index 0 with an old pid is not.
        write(&dir.join("run/owned"), "1 4242\n0 1\n");
        fs::set_permissions(dir.join("run"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        // DAMON_RECLAIM runs its own kdamond; DAMON_LRU_SORT is built in but off.
        let modules = dir.join("module");
        write(&modules.join("damon_reclaim/parameters/enabled"), "Y\n");
        write(&modules.join("damon_reclaim/parameters/kdamond_pid"), "515\n");
        write(&modules.join("damon_lru_sort/parameters/enabled"), "N\n");
        write(&modules.join("damon_lru_sort/parameters/kdamond_pid"), "-1\n");
        Roots { damon_admin: admin, tracefs: None, btf: dir.join("no-btf"), proc: dir.join("proc"), run_dir: dir.join("run"), sys_module: modules }
    }

    #[test]
    fn reads_kdamonds_and_ownership_from_a_fake_tree() {
        let dir = tempfile::tempdir().unwrap();
        let info = gather(&fake_roots(dir.path()));
        assert_eq!(info.kernel, "6.12.0-test");
        assert!(info.damon_sysfs);
        assert_eq!(info.operations, ["vaddr", "fvaddr", "paddr"]);
        assert_eq!(info.perf_event_paranoid, Some(2));
        let owned: Vec<(usize, Option<u32>, bool)> = info.kdamonds.iter().map(|k| (k.index, k.pid, k.ours)).collect();
        assert_eq!(owned, [(0, Some(79), false), (1, Some(4242), true)]);
        assert_eq!(info.kdamonds[1].operations, ["vaddr"]);
        assert_eq!((&info.kdamonds[0].target_pids[..], &info.kdamonds[1].target_pids[..]), (&[][..], &[300, 301][..]));
        let advice = info.advice.join("\n");
        assert!(advice.contains("kdamond 0 (pid 79) not started by damo-trace"), "{advice}");
        assert!(!advice.contains("kdamond 1"), "our own kdamond is not foreign: {advice}");
        assert!(advice.contains("tracefs is not mounted"), "{advice}");
        assert!(advice.contains("no kernel BTF"), "{advice}");
        let modules: Vec<(&str, bool, Option<u32>)> = info.modules.iter().map(|m| (m.name.as_str(), m.present, m.kdamond_pid)).collect();
        assert_eq!(modules, [("reclaim", true, Some(515)), ("lru_sort", true, None), ("stat", false, None)]);
        let mut text = Vec::new();
        print_text(&info, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("module reclaim (DAMON_RECLAIM): running, its own kdamond pid 515"), "{text}");
        assert!(text.contains("module lru_sort (DAMON_LRU_SORT): disabled\n") && !text.contains("module stat"), "{text}");
    }

    #[test]
    fn an_untrusted_ownership_state_claims_nothing_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let roots = fake_roots(dir.path());
        fs::set_permissions(&roots.run_dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let info = gather(&roots);
        assert_eq!(info.kdamonds.len(), 2, "the kdamonds are still listed");
        assert!(info.kdamonds.iter().all(|k| !k.ours), "a state others can write claims nothing");
        let advice = info.advice.join("\n");
        assert!(advice.contains("refusing to trust") && advice.contains("writable by group or others"), "{advice}");
    }

    #[test]
    fn missing_damon_is_said_plainly() {
        let dir = tempfile::tempdir().unwrap();
        let mut roots = fake_roots(dir.path());
        roots.damon_admin = dir.path().join("nothing");
        let info = gather(&roots);
        assert!(!info.damon_sysfs);
        assert!(info.kdamonds.is_empty());
        assert!(info.advice[0].starts_with("DAMON is not available on this system"), "{:?}", info.advice);
        let mut text = Vec::new();
        print_text(&info, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("DAMON sysfs: no\n"), "{text}");
    }
}
