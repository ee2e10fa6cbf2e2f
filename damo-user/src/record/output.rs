//! What a recording hands to the file it writes. The native record writer implements it; so
//! do tests.

use anyhow::Result;
use damo_record::model::{FootprintSnapshot, Intervals, Module, ProcStatSample, Snapshot, VmaSnapshot};
pub use damo_record::model::{Losses, StackSample};

use crate::snapshots::TargetKey;

pub trait RecordOutput {
    /// A kdamond the recording started: its events carry `pid`; the record names it by
    /// `index` with its `intervals`.
    fn kdamond(&mut self, _pid: u32, _index: u32, _intervals: Option<Intervals>) {}
    /// A complete snapshot; the writer makes it durable before returning (one flush each).
    /// Every method but the ones an output needs does nothing: outputs keep only what they use.
    fn snapshot(&mut self, _target: TargetKey, _snapshot: &Snapshot) -> Result<()> {
        Ok(())
    }
    fn stack(&mut self, _sample: &StackSample) -> Result<()> {
        Ok(())
    }
    /// Modules referenced by `FileAddr::module`, the full table so far.
    fn modules(&mut self, _modules: &[Module]) -> Result<()> {
        Ok(())
    }
    /// Names of the kernel addresses seen, resolved at the end of the recording.
    fn kernel_symbols(&mut self, _symbols: &[(u64, String)]) -> Result<()> {
        Ok(())
    }
    /// Memory footprints read from /proc, about once a second (outputs may ignore them).
    fn footprints(&mut self, _snapshot: &FootprintSnapshot) -> Result<()> {
        Ok(())
    }
    /// Mappings of the processes whose mappings changed since their previous entry.
    fn vmas(&mut self, _vmas: &[VmaSnapshot]) -> Result<()> {
        Ok(())
    }
    /// CPU times of the recorded processes and the kdamonds, about once a second.
    fn proc_stats(&mut self, _stats: &[ProcStatSample]) -> Result<()> {
        Ok(())
    }
    /// A recorded process exited: its perf map (JIT names) is read a last time, before the
    /// process's files may go.
    fn process_exited(&mut self, _pid: u32) {}
    /// Where each module's file can be read now (`None`: nowhere), by `FileAddr::module`:
    /// its path, or a file the recorder opened through the process (another mount
    /// namespace). Called once before `finish`, for outputs that name the sampled code.
    fn module_files(&mut self, _files: &[Option<std::path::PathBuf>]) {}
    /// What the recording lost so far, before each `flush` (a live view shows it).
    fn losses(&mut self, _losses: &Losses) {}
    /// Makes buffered content durable; called about once a second.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn finish(&mut self, _losses: &Losses) -> Result<()> {
        Ok(())
    }
}
