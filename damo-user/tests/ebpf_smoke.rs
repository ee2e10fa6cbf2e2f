//! Tier 2 (root): the eBPF programs load on this kernel and cpu-clock samples of a process we
//! start arrive through the ring buffer with stacks. Never touches the host's kdamonds: the
//! DAMON tracepoint is attached with an empty kdamond filter.
//! Run with `cargo xtask test` (or `cargo test -p damo-user --test ebpf_smoke -- --ignored`).

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use damo_common::{RegionEvent, StackEvent};
use damo_user::{
    bpf::{self, Tracer},
    collector::{collect, EventSink},
    tracefs,
};

/// Kills the workload however the test ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Default)]
struct Counts {
    pid: u32,
    ours: u32,
    others: u32,
    regions: u32,
    with_user_stack: u32,
    undecodable: u32,
}

impl EventSink for Counts {
    fn region(&mut self, _: &RegionEvent) -> anyhow::Result<()> {
        self.regions += 1;
        Ok(())
    }
    fn stack(&mut self, sample: &StackEvent, _stack: &[u8]) -> anyhow::Result<()> {
        if sample.pid != self.pid {
            self.others += 1;
        } else {
            self.ours += 1;
            if !bpf::user_frames(sample).is_empty() {
                self.with_user_stack += 1;
            }
        }
        Ok(())
    }
    fn undecodable(&mut self, _: usize) -> anyhow::Result<()> {
        self.undecodable += 1;
        Ok(())
    }
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn cpu_samples_of_our_workload_arrive_with_stacks() {
    let tracefs = tracefs::find_or_mount().expect("tracefs");
    let mut tracer = Tracer::load(&tracefs).expect("load the eBPF object");
    if tracefs.join("events/damon/damon_aggregated").is_dir() {
        tracer.attach_damon().expect("attach damon:damon_aggregated");
    }
    tracer.attach_fork_follow().expect("attach sched:sched_process_fork");
    let spinner = Child(Command::new("sh").args(["-c", "while :; do :; done"]).stdout(Stdio::null()).spawn().expect("start the workload"));
    let pid = spinner.0.id();
    tracer.add_target(pid).expect("add target");
    tracer.attach_cpu_sampling(499).expect("attach cpu-clock sampling");
    let events = tracer.take_events().expect("ring buffer");

    let mut counts = Counts { pid, ..Counts::default() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async { collect(events, &mut counts, tokio::time::sleep(Duration::from_secs(2))).await }).expect("collect events");
    let Counts { ours, others, regions, with_user_stack, undecodable, .. } = counts;
    assert_eq!(undecodable, 0, "ring buffer items that did not decode");
    assert!(ours >= 50, "only {ours} samples of the workload (pid {pid}) arrived in 2 s");
    assert_eq!(others, 0, "samples of processes that are not targets passed the filter");
    assert_eq!(regions, 0, "region events of a kdamond we did not add passed the filter");
    assert!(with_user_stack * 10 >= ours * 9, "{with_user_stack} of {ours} samples had a user stack");
    let lost = tracer.lost().expect("loss counters");
    assert_eq!(lost, [0; damo_common::lost::COUNT as usize], "events were lost: {lost:?}");
}
