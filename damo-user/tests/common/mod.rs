//! What the recording tests share: a record output that keeps everything in memory.

use std::time::Duration;

use damo_record::model::Snapshot;
use damo_user::{
    normalize::Module,
    record::{target::TargetSpec, Losses, Plan, RecordOutput, StackSample},
    snapshots::TargetKey,
    unwind::CallGraph,
};

/// A plan that samples `command` (and its children) at `sample_hz`, without DAMON.
#[allow(dead_code, reason = "not every test target that shares this module records a command")]
pub fn command_plan(command: String, sample_hz: u64, call_graph: CallGraph) -> Plan {
    Plan {
        target: Some(TargetSpec::Command(command)),
        user: None,
        kdamond_pids: Vec::new(),
        monitored_pids: Vec::new(),
        sample_hz,
        call_graph,
        follow_children: true,
        timeout: Some(Duration::from_secs(30)),
        start_damon: None,
        schemes_target_regions: false,
        proc_samples: Default::default(),
        keep_running: false,
    }
}

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

/// Every readable parameter of every DAMON module (`/sys/module/damon_*/parameters`), with
/// its bytes: what a read-only command must leave as it was.
#[allow(dead_code, reason = "only the DAMON module tests compare module parameters")]
pub fn damon_module_parameters() -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let Ok(modules) = std::fs::read_dir("/sys/module") else { return files };
    for module in modules.flatten().filter(|m| m.file_name().to_string_lossy().starts_with("damon_")) {
        let Ok(params) = std::fs::read_dir(module.path().join("parameters")) else { continue };
        for p in params.flatten() {
            if let Ok(bytes) = std::fs::read(p.path()) {
                files.push((p.path(), bytes));
            }
        }
    }
    files.sort();
    files
}
