//! The record file: `RecordOutput` over damo-record's native writer.

use std::{
    collections::HashMap,
    fs::{self, File, OpenOptions},
    io::{BufWriter, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};

use anyhow::{bail, Context, Result};
use damo_record::{
    model::{Metadata, FootprintSnapshot, Intervals, Losses, Module, ProcStatSample, Snapshot, StackSample, TargetRecord, VmaSnapshot},
    native::NativeWriter,
};

use super::{output::RecordOutput, portable::SampledCode};
use crate::snapshots::TargetKey;

/// Samples are written in batches of this many, or at least once a second.
const STACK_BATCH: usize = 512;

/// What the record says about a kdamond the recording watches.
#[derive(Debug, Clone, Copy)]
pub struct KdamondInfo {
    pub index: u32,
    pub intervals: Option<Intervals>,
}

pub struct RecordFile {
    writer: Option<NativeWriter<BufWriter<File>>>,
    kdamonds: HashMap<u32, KdamondInfo>,
    pending: Vec<StackSample>,
    modules_written: usize,
    /// The module table so far, and the code the samples hit: named at the end.
    modules: Vec<Module>,
    code: SampledCode,
    /// Nothing but the header so far: a recording that failed to start leaves no file.
    pub empty: bool,
}

impl RecordFile {
    /// Creates `path` with `permission` (e.g. 0o600); an existing file is an error unless
    /// `force`. `kdamonds` maps kdamond pids to what the record says about them.
    pub fn create(path: &Path, permission: u32, force: bool, kdamonds: HashMap<u32, KdamondInfo>) -> Result<Self> {
        if path.exists() && !force {
            bail!("{} exists; pass --force to overwrite it", path.display());
        }
        let file = OpenOptions::new().write(true).create(true).truncate(true).mode(permission).open(path).with_context(|| format!("failed to create {}", path.display()))?;
        // The mode applies only to new files, and the umask may have narrowed it.
        fs::set_permissions(path, fs::Permissions::from_mode(permission)).with_context(|| format!("failed to set the permissions of {}", path.display()))?;
        let writer = NativeWriter::new(BufWriter::with_capacity(1 << 16, file))?;
        Ok(Self { writer: Some(writer), kdamonds, pending: Vec::new(), modules_written: 0, modules: Vec::new(), code: SampledCode::default(), empty: true })
    }

    /// Says how the record was made (written first, so even a cut record has it).
    pub fn metadata(&mut self, metadata: &Metadata) -> Result<()> {
        self.writer()?.metadata(metadata)?;
        Ok(())
    }

    fn writer(&mut self) -> Result<&mut NativeWriter<BufWriter<File>>> {
        self.writer.as_mut().context("the record is already finished")
    }

    fn write_pending(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            self.writer()?.stacks(&batch)?;
        }
        Ok(())
    }
}

impl RecordOutput for RecordFile {
    fn kdamond(&mut self, pid: u32, index: u32, intervals: Option<Intervals>) {
        self.kdamonds.insert(pid, KdamondInfo { index, intervals });
    }

    fn snapshot(&mut self, key: TargetKey, snapshot: &Snapshot) -> Result<()> {
        self.empty = false;
        // Pending samples wait for their batch or the next flush (once a second): writing them
        // before every snapshot made chunks of a sample or two at short aggregation intervals.
        let info = self.kdamonds.get(&key.kdamond_pid).copied();
        let target = TargetRecord {
            kdamond_idx: info.map_or(0, |i| i.index),
            context_idx: key.context_idx,
            scheme_idx: key.scheme_idx,
            target_id: key.target_id,
            intervals: info.and_then(|i| i.intervals),
            snapshots: Vec::new(),
        };
        self.writer()?.snapshot(&target, snapshot)?;
        Ok(())
    }

    fn stack(&mut self, sample: &StackSample) -> Result<()> {
        self.empty = false;
        self.code.sample(sample);
        self.pending.push(sample.clone());
        if self.pending.len() >= STACK_BATCH {
            self.write_pending()?;
        }
        Ok(())
    }

    fn modules(&mut self, modules: &[Module]) -> Result<()> {
        let new = &modules[self.modules_written.min(modules.len())..];
        if !new.is_empty() {
            // Modules precede the samples that use them.
            self.writer()?.modules(new)?;
            self.modules_written = modules.len();
            self.modules = modules.to_vec();
        }
        Ok(())
    }

    fn kernel_symbols(&mut self, symbols: &[(u64, String)]) -> Result<()> {
        self.write_pending()?;
        self.writer()?.kernel_symbols(symbols)?;
        Ok(())
    }

    // /proc samples follow the stack samples taken before them, keeping rough time order.
    fn footprints(&mut self, snapshot: &FootprintSnapshot) -> Result<()> {
        self.write_pending()?;
        self.writer()?.footprints(std::slice::from_ref(snapshot))?;
        Ok(())
    }

    fn vmas(&mut self, vmas: &[VmaSnapshot]) -> Result<()> {
        self.write_pending()?;
        self.writer()?.vmas(vmas)?;
        Ok(())
    }

    fn proc_stats(&mut self, stats: &[ProcStatSample]) -> Result<()> {
        self.write_pending()?;
        self.writer()?.proc_stats(stats)?;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.write_pending()
    }

    fn process_exited(&mut self, pid: u32) {
        self.code.perf_maps.process_exited(pid);
    }

    fn finish(&mut self, losses: &Losses) -> Result<()> {
        self.write_pending()?;
        // The names of the sampled code, so the record reports without the binaries.
        self.code.perf_maps.finish();
        let jit = self.code.perf_maps.hit_symbols();
        if !jit.is_empty() {
            self.writer()?.jit_symbols(&jit)?;
        }
        let symbols = self.code.code_symbols(&self.modules);
        if !symbols.is_empty() {
            self.writer()?.code_symbols(&symbols)?;
        }
        let mut writer = self.writer.take().context("the record is already finished")?;
        writer.losses(losses)?;
        let mut out = writer.finish()?;
        out.flush()?;
        out.get_ref().sync_all().context("failed to sync the record")?;
        Ok(())
    }
}
