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

/// Recording `command` (children followed) for stacks at `sample_hz`, no DAMON, 30 s at most.
#[allow(dead_code, reason = "not every test target records a command")]
pub fn command_plan(command: String, sample_hz: u64) -> damo_user::record::Plan {
    damo_user::record::Plan {
        target: Some(damo_user::record::target::TargetSpec::Command(command)),
        user: None,
        kdamond_pids: Vec::new(),
        monitored_pids: Vec::new(),
        sample_hz,
        follow_children: true,
        timeout: Some(std::time::Duration::from_secs(30)),
        start_damon: None,
        schemes_target_regions: false,
        proc_samples: Default::default(),
    }
}
