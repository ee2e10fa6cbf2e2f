//! damo-trace's user side: loading the eBPF programs, reading the system, the CLI's commands.

pub mod adjust;
pub mod args_damon;
pub mod bpf;
pub mod collector;
pub mod control;
pub mod convert;
pub mod diagnose;
pub mod dist;
pub mod errors;
pub mod launch;
pub mod live;
pub mod modules_cli;
pub mod normalize;
pub mod pidfd;
pub mod pipe_out;
pub mod privilege;
pub mod procfs;
pub mod record;
pub mod replay;
pub mod report;
pub mod sideband;
pub mod snapshots;
pub mod sysinfo;
pub mod tracefs;
pub mod unwind;
pub mod validate;
