//! The record file: `RecordOutput` over damo-record's native writer.

use std::{
    collections::HashMap,
    io::BufWriter,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use damo_record::{
    model::{FootprintSnapshot, Intervals, Losses, Metadata, Module, ProcStatSample, Snapshot, StackSample, TargetRecord, VmaSnapshot},
    native::NativeWriter,
    output_file::{OutputFile, OutputOptions},
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
    writer: Option<NativeWriter<BufWriter<OutputFile>>>,
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
    ///
    /// The record is a stream that must be readable at any moment, even after `kill -9`: when
    /// `path` does not exist the file is moved there as soon as it is created (see
    /// [`OutputFile::publish_early`]). When it replaces a record (`force`), the old one stays
    /// whole until this one is finished, and the new one grows at [`Self::streaming_path`]
    /// (`<path>.tmp-<pid>`), where a killed run leaves it.
    pub fn create(path: &Path, permission: u32, force: bool, kdamonds: HashMap<u32, KdamondInfo>) -> Result<Self> {
        let mut file = OutputFile::create(path, OutputOptions::exact(permission, force))?;
        file.publish_early()?;
        // A record that ends cleanly ends with what each target's snapshots add up to: a
        // heatmap plans its passes from that (`native::summaries`).
        let writer = NativeWriter::new(BufWriter::with_capacity(1 << 16, file))?.summarizing();
        Ok(Self { writer: Some(writer), kdamonds, pending: Vec::new(), modules_written: 0, modules: Vec::new(), code: SampledCode::default(), empty: true })
    }

    /// A finished record (0600) of `snapshots` alone: what the live commands hand to a
    /// report. An existing file is an error unless `force`.
    pub fn write_snapshots<'a>(path: &Path, force: bool, kdamonds: HashMap<u32, KdamondInfo>, snapshots: impl IntoIterator<Item = &'a (TargetKey, Snapshot)>) -> Result<()> {
        let mut file = Self::create(path, 0o600, force, kdamonds)?;
        for (key, snapshot) in snapshots {
            file.snapshot(*key, snapshot)?;
        }
        file.finish(&Losses::default())
    }

    /// Where the record is while it is being written.
    pub fn streaming_path(&self) -> Option<PathBuf> {
        self.writer.as_ref().map(|w| w.get_ref().get_ref().current_path())
    }

    /// After a failed recording: an empty record is removed (only our own file), a cut one
    /// is kept where it is, which is returned.
    pub fn abandon(mut self) -> Option<PathBuf> {
        let writer = self.writer.take()?;
        let file = writer.into_inner().into_inner().ok()?;
        if self.empty {
            file.discard();
            None
        } else {
            Some(file.keep())
        }
    }

    /// Says how the record was made (written first, so even a cut record has it).
    pub fn metadata(&mut self, metadata: &Metadata) -> Result<()> {
        self.writer()?.metadata(metadata)?;
        Ok(())
    }

    fn writer(&mut self) -> Result<&mut NativeWriter<BufWriter<OutputFile>>> {
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

    fn module_files(&mut self, files: &[Option<std::path::PathBuf>]) {
        self.code.module_files = files.to_vec();
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
        let out = writer.finish()?;
        // Synced, then moved over the record it replaces (if any).
        out.into_inner().map_err(|e| e.into_error()).context("failed to write the record")?.commit()?;
        Ok(())
    }
}
