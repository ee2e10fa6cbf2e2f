//! Who we run as: root, and the capabilities eBPF tracing needs.

use std::fs;

/// Capability bits from linux/capability.h.
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Privileges {
    pub root: bool,
    pub cap_sys_admin: bool,
    pub cap_bpf: bool,
    pub cap_perfmon: bool,
}

impl Privileges {
    pub fn current() -> Self {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let effective = effective_caps().unwrap_or(0);
        let has = |cap: u32| effective & (1u64 << cap) != 0;
        Self { root, cap_sys_admin: has(CAP_SYS_ADMIN), cap_bpf: has(CAP_BPF), cap_perfmon: has(CAP_PERFMON) }
    }

    /// Loading tracing programs needs CAP_BPF+CAP_PERFMON, or CAP_SYS_ADMIN on older kernels.
    pub fn can_trace(&self) -> bool {
        self.cap_sys_admin || (self.cap_bpf && self.cap_perfmon)
    }
}

/// The `CapEff:` mask of /proc/self/status.
fn effective_caps() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    u64::from_str_radix(hex, 16).ok()
}
