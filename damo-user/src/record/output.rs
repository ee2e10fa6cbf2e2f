//! What a recording hands to the file it writes. The native record writer implements it; so
//! do tests.

use anyhow::Result;
use damo_record::model::Snapshot;

use crate::{normalize::{FileAddr, Module}, snapshots::TargetKey};

/// One cpu-clock sample of a target task, made symbolizable after the task exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSample {
    pub ts_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub cpu: u32,
    pub comm: String,
    /// Innermost first.
    pub user: Vec<FileAddr>,
    /// Kernel addresses, innermost first; symbolized from kallsyms at the end.
    pub kernel: Vec<u64>,
}

/// Counts of everything dropped or degraded, for the record and the summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Losses {
    /// The eBPF per-CPU counters, indexed by `damo_common::lost`.
    pub kernel: [u64; damo_common::lost::COUNT as usize],
    /// Snapshots that lost regions and were dropped.
    pub incomplete_snapshots: u64,
    /// Samples whose process exited before its addresses could be normalized.
    pub unnormalized_samples: u64,
    pub undecodable_events: u64,
}

impl Losses {
    pub fn total(&self) -> u64 {
        self.kernel.iter().sum::<u64>() + self.incomplete_snapshots + self.unnormalized_samples + self.undecodable_events
    }
}

pub trait RecordOutput {
    /// A complete snapshot; the writer makes it durable before returning (one flush each).
    fn snapshot(&mut self, target: TargetKey, snapshot: &Snapshot) -> Result<()>;
    fn stack(&mut self, sample: &StackSample) -> Result<()>;
    /// Modules referenced by `FileAddr::module`, the full table so far.
    fn modules(&mut self, modules: &[Module]) -> Result<()>;
    /// Names of the kernel addresses seen, resolved at the end of the recording.
    fn kernel_symbols(&mut self, symbols: &[(u64, String)]) -> Result<()>;
    fn finish(&mut self, losses: &Losses) -> Result<()>;
}
