//! Tier 2 (root): the eBPF programs load on this kernel and cpu-clock samples of a process we
//! start arrive through the ring buffer with stacks. Never touches the host's kdamonds: the
//! DAMON tracepoint is attached with an empty kdamond filter.
//! Run with `cargo xtask test` (or `cargo test -p damo-user --test ebpf_smoke -- --ignored`).

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use damo_user::{
    bpf::{self, Event, Tracer},
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

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn cpu_samples_of_our_workload_arrive_with_stacks() {
    let tracefs = tracefs::find_or_mount().expect("tracefs");
    let mut tracer = Tracer::load(&tracefs).expect("load the eBPF object");
    if tracefs.join("events/damon/damon_aggregated").is_dir() {
        tracer.attach_damon().expect("attach damon:damon_aggregated");
    }
    tracer.attach_fork_follow().expect("attach sched:sched_process_fork");
    let spinner = Child(
        Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start the workload"),
    );
    let pid = spinner.0.id();
    tracer.add_target(pid).expect("add target");
    tracer.attach_cpu_sampling(499).expect("attach cpu-clock sampling");
    let mut events = tracer.take_events().expect("ring buffer");

    let (mut ours, mut others, mut regions) = (0, 0, 0);
    let mut with_user_stack = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while ours < 50 && Instant::now() < deadline {
        while let Some(item) = events.next() {
            match Event::decode(&item) {
                Some(Event::Stack(sample)) if sample.pid == pid => {
                    ours += 1;
                    if !bpf::user_frames(&sample).is_empty() {
                        with_user_stack += 1;
                    }
                }
                Some(Event::Stack(_)) => others += 1,
                Some(Event::Region(_)) => regions += 1,
                None => panic!("undecodable ring buffer item of {} bytes", item.len()),
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ours >= 50, "only {ours} samples of the workload (pid {pid}) arrived in 10 s");
    assert_eq!(others, 0, "samples of processes that are not targets passed the filter");
    assert_eq!(regions, 0, "region events of a kdamond we did not add passed the filter");
    assert!(with_user_stack * 10 >= ours * 9, "{with_user_stack} of {ours} samples had a user stack");
    let lost = tracer.lost().expect("loss counters");
    assert_eq!(lost, [0; damo_common::lost::COUNT as usize], "events were lost: {lost:?}");
}
