//! `sched:sched_process_exit`: a task that leaves takes its entry out of `TARGET_TGIDS`, so the
//! map holds live targets only. Without it, fork churn filled the 16,384 entries in minutes
//! (a build or a test suite starts more processes than that) and every later child was lost
//! as "target map full". Runs in the exiting task's context; needs no tracepoint field.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext, EbpfContext};

use crate::TARGET_TGIDS;

#[tracepoint]
pub fn sched_process_exit(ctx: TracePointContext) -> u32 {
    // A thread's own id (fork following adds new threads' ids too, see sched_fork.rs); for
    // the thread group leader it is the tgid, whose samples end here. Absent keys are fine.
    let _ = TARGET_TGIDS.remove(&ctx.pid());
    0
}
