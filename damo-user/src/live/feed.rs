//! The live view's consumer of the recording: a [`RecordOutput`] that hands what the
//! collector produced to the view over a channel, and tees it into a record (`--record`).

use std::sync::mpsc::Sender;

use anyhow::Result;
use damo_record::model::{Intervals, Losses, Module, Snapshot, StackSample};

use crate::{record::RecordOutput, snapshots::TargetKey};

/// One piece of the stream, as the view receives it.
#[derive(Debug, Clone)]
pub enum Feed {
    Kdamond {
        pid: u32,
        index: u32,
        intervals: Option<Intervals>,
    },
    Snapshot(TargetKey, Snapshot),
    Stack(StackSample),
    /// The module table so far.
    Modules(Vec<Module>),
    /// What the recording lost so far (sent at each tick, before it).
    Losses(Losses),
    /// About once a second (the collector's tick): a time to redraw.
    Tick,
}

pub struct LiveOutput<'a> {
    view: Sender<Feed>,
    /// The record `--record` writes while the view shows.
    record: Option<&'a mut dyn RecordOutput>,
}

impl<'a> LiveOutput<'a> {
    pub fn new(view: Sender<Feed>, record: Option<&'a mut dyn RecordOutput>) -> Self {
        Self { view, record }
    }

    /// A view that quit does not stop the recording by itself: its `q` does, through
    /// `record::run_until`.
    fn send(&self, feed: Feed) {
        let _ = self.view.send(feed);
    }
}

impl RecordOutput for LiveOutput<'_> {
    fn kdamond(&mut self, pid: u32, index: u32, intervals: Option<Intervals>) {
        if let Some(r) = self.record.as_mut() {
            r.kdamond(pid, index, intervals);
        }
        self.send(Feed::Kdamond { pid, index, intervals });
    }

    fn snapshot(&mut self, target: TargetKey, snapshot: &Snapshot) -> Result<()> {
        if let Some(r) = self.record.as_mut() {
            r.snapshot(target, snapshot)?;
        }
        self.send(Feed::Snapshot(target, snapshot.clone()));
        Ok(())
    }

    fn stack(&mut self, sample: &StackSample) -> Result<()> {
        if let Some(r) = self.record.as_mut() {
            r.stack(sample)?;
        }
        self.send(Feed::Stack(sample.clone()));
        Ok(())
    }

    fn modules(&mut self, modules: &[Module]) -> Result<()> {
        if let Some(r) = self.record.as_mut() {
            r.modules(modules)?;
        }
        self.send(Feed::Modules(modules.to_vec()));
        Ok(())
    }

    fn kernel_symbols(&mut self, symbols: &[(u64, String)]) -> Result<()> {
        self.record.as_mut().map_or(Ok(()), |r| r.kernel_symbols(symbols))
    }

    fn footprints(&mut self, snapshot: &damo_record::model::FootprintSnapshot) -> Result<()> {
        self.record.as_mut().map_or(Ok(()), |r| r.footprints(snapshot))
    }

    fn vmas(&mut self, vmas: &[damo_record::model::VmaSnapshot]) -> Result<()> {
        self.record.as_mut().map_or(Ok(()), |r| r.vmas(vmas))
    }

    fn proc_stats(&mut self, stats: &[damo_record::model::ProcStatSample]) -> Result<()> {
        self.record.as_mut().map_or(Ok(()), |r| r.proc_stats(stats))
    }

    fn process_exited(&mut self, pid: u32) {
        if let Some(r) = self.record.as_mut() {
            r.process_exited(pid);
        }
    }

    fn module_files(&mut self, files: &[Option<std::path::PathBuf>]) {
        if let Some(r) = self.record.as_mut() {
            r.module_files(files);
        }
    }

    fn losses(&mut self, losses: &Losses) {
        self.send(Feed::Losses(*losses));
    }

    fn flush(&mut self) -> Result<()> {
        self.send(Feed::Tick);
        self.record.as_mut().map_or(Ok(()), |r| r.flush())
    }

    fn finish(&mut self, losses: &Losses) -> Result<()> {
        self.record.as_mut().map_or(Ok(()), |r| r.finish(losses))
    }
}
