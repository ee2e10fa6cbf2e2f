//! `damo-trace sysinfo`: what this machine offers for DAMON tracing. Only reads.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Result;
use serde::Serialize;

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
    pub owned_state: PathBuf,
}

impl Roots {
    pub fn system() -> Self {
        Self {
            damon_admin: PathBuf::from(damo_sysfs::DEFAULT_ADMIN_ROOT),
            tracefs: tracefs::find(),
            btf: PathBuf::from("/sys/kernel/btf/vmlinux"),
            proc: PathBuf::from("/proc"),
            owned_state: PathBuf::from(damo_sysfs::DEFAULT_STATE_FILE),
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
    pub tracepoints: Vec<Tracepoint>,
    pub btf: bool,
    pub privileges: Privileges,
    pub perf_event_paranoid: Option<i32>,
    pub kdamonds: Vec<Kdamond>,
    /// Plain-language problems and what to do about them.
    pub advice: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Tracepoint {
    pub name: String,
    pub fields: Vec<tracefs::Field>,
}

#[derive(Debug, Serialize)]
pub struct Kdamond {
    pub index: usize,
    pub state: String,
    pub pid: Option<u32>,
    pub operations: Vec<String>,
    /// Whether damo-trace started it; only those are ever written to.
    pub ours: bool,
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
    let damon_sysfs = roots.damon_admin.join("kdamonds/nr_kdamonds").is_file();
    let kdamonds = damo_sysfs::list_kdamonds(&roots.damon_admin).unwrap_or_default();
    let owned = damo_sysfs::Ownership::load(&roots.owned_state).unwrap_or_default();
    let kdamonds: Vec<Kdamond> = kdamonds
        .into_iter()
        .map(|k| Kdamond {
            ours: owned.is_owned(k.index, k.pid),
            operations: k.contexts.iter().map(|c| c.operations.clone()).collect(),
            index: k.index,
            state: k.state,
            pid: k.pid,
        })
        .collect();
    let (operations, operations_source) = available_operations(roots);
    let tracepoints = roots.tracefs.as_deref().map(damon_tracepoints).unwrap_or_default();
    let mut info = SysInfo {
        kernel: read(&roots.proc.join("sys/kernel/osrelease")).unwrap_or_default(),
        damon_sysfs,
        operations,
        operations_source,
        tracefs: roots.tracefs.clone(),
        tracepoints,
        btf: roots.btf.is_file(),
        privileges: Privileges::current(),
        perf_event_paranoid: read(&roots.proc.join("sys/kernel/perf_event_paranoid"))
            .and_then(|s| s.parse().ok()),
        kdamonds,
        advice: Vec::new(),
    };
    info.advice = advise(&info);
    info
}

/// `avail_operations` exists only inside a context; without any context, the kernel's symbols
/// tell which operation sets were built in.
fn available_operations(roots: &Roots) -> (Vec<String>, String) {
    let contexts = roots.damon_admin.join("kdamonds");
    if let Ok(entries) = fs::read_dir(&contexts) {
        for kdamond in entries.flatten() {
            let file = kdamond.path().join("contexts/0/avail_operations");
            if let Ok(text) = fs::read_to_string(&file) {
                let ops = text.split_whitespace().map(str::to_string).collect();
                return (ops, file.display().to_string());
            }
        }
    }
    let kallsyms = roots.proc.join("kallsyms");
    match fs::read_to_string(&kallsyms) {
        Ok(symbols) => {
            let mut ops = Vec::new();
            if symbols.contains(" damon_va_") {
                ops.extend(["vaddr".to_string(), "fvaddr".to_string()]);
            }
            if symbols.contains(" damon_pa_") {
                ops.push("paddr".to_string());
            }
            (ops, format!("{} (damon_va_*/damon_pa_* symbols)", kallsyms.display()))
        }
        Err(_) => (Vec::new(), "unknown".to_string()),
    }
}

fn damon_tracepoints(tracefs: &Path) -> Vec<Tracepoint> {
    let Ok(entries) = fs::read_dir(tracefs.join("events/damon")) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join("format").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
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
             CONFIG_DAMON_SYSFS (Linux 5.18+). `damo-trace record --no-damon` still profiles CPU, \
             and `cargo xtask demo` runs everything in a VM."
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
    if info.tracefs.is_none() {
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
    let foreign: Vec<String> = info
        .kdamonds
        .iter()
        .filter(|k| !k.ours)
        .map(|k| format!("kdamond {} (pid {})", k.index, k.pid.map_or("-".into(), |p| p.to_string())))
        .collect();
    if !foreign.is_empty() {
        advice.push(format!(
            "{} not started by damo-trace: damo-trace will not touch {}, and while {} the kernel \
             cannot add kdamonds; `damo-trace record --observe` records them read-only",
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
        None => writeln!(out, "tracefs: not mounted")?,
    }
    writeln!(out, "DAMON tracepoints: {}", if info.tracepoints.is_empty() { "none" } else { "" })?;
    for tp in &info.tracepoints {
        let fields: Vec<String> =
            tp.fields.iter().map(|f| format!("{}@{}:{}", f.name, f.offset, f.size)).collect();
        writeln!(out, "  damon:{} {}", tp.name, fields.join(" "))?;
    }
    writeln!(out, "BTF: {}", yes_no(info.btf))?;
    let p = &info.privileges;
    writeln!(
        out,
        "privileges: root {}, CAP_BPF {}, CAP_PERFMON {}, CAP_SYS_ADMIN {}",
        yes_no(p.root), yes_no(p.cap_bpf), yes_no(p.cap_perfmon), yes_no(p.cap_sys_admin)
    )?;
    match info.perf_event_paranoid {
        Some(v) => writeln!(out, "perf_event_paranoid: {v}")?,
        None => writeln!(out, "perf_event_paranoid: unknown")?,
    }
    writeln!(out, "kdamonds: {}", if info.kdamonds.is_empty() { "none" } else { "" })?;
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
    for line in &info.advice {
        writeln!(out, "note: {line}")?;
    }
    Ok(())
}
