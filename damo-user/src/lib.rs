//! damo-trace's user side: loading the eBPF programs, reading the system, the CLI's commands.

pub mod bpf;
pub mod privilege;
// TEMP pub mod sysinfo;
pub mod tracefs;
