//! What the recording tests share: a record output that keeps everything in memory.

use damo_record::model::Snapshot;
use damo_user::{
    normalize::Module,
    record::{Losses, RecordOutput, StackSample},
    snapshots::TargetKey,
};

#[derive(Default)]
pub struct Memory {
    pub snapshots: Vec<(TargetKey, Snapshot)>,
    pub samples: Vec<StackSample>,
    pub modules: Vec<Module>,
    pub losses: Option<Losses>,
}

impl RecordOutput for Memory {
    fn snapshot(&mut self, key: TargetKey, snapshot: &Snapshot) -> anyhow::Result<()> {
        self.snapshots.push((key, snapshot.clone()));
        Ok(())
    }
    fn stack(&mut self, sample: &StackSample) -> anyhow::Result<()> {
        self.samples.push(sample.clone());
        Ok(())
    }
    fn modules(&mut self, modules: &[Module]) -> anyhow::Result<()> {
        self.modules = modules.to_vec();
        Ok(())
    }
    fn kernel_symbols(&mut self, _: &[(u64, String)]) -> anyhow::Result<()> {
        Ok(())
    }
    fn finish(&mut self, losses: &Losses) -> anyhow::Result<()> {
        self.losses = Some(*losses);
        Ok(())
    }
}
