//! `sched:sched_process_fork`: children of a target become targets, so `record "make -j"`
//! samples the compilers it starts. Runs in the parent's context.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext, EbpfContext};
use damo_common::{lost, ForkLayout};

use crate::{count_lost, TARGET_TGIDS};

/// Set by the loader from the tracefs `format` file.
#[no_mangle]
static FORK_LAYOUT: ForkLayout = ForkLayout { child_pid: 44 };

#[tracepoint]
pub fn sched_process_fork(ctx: TracePointContext) -> u32 {
    match try_sched_process_fork(&ctx) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn try_sched_process_fork(ctx: &TracePointContext) -> Result<(), i64> {
    let parent = ctx.tgid();
    // SAFETY: a map lookup by value.
    if unsafe { TARGET_TGIDS.get(&parent) }.is_none() {
        return Ok(());
    }
    // SAFETY: volatile read of a loader-set global; offset from the format file.
    let layout: ForkLayout = unsafe { core::ptr::read_volatile(&FORK_LAYOUT) };
    let child: i32 = unsafe { ctx.read_at(layout.child_pid as usize)? };
    // A new thread's tid lands here too; harmless, it is never a tgid of another process.
    if TARGET_TGIDS.insert(&(child as u32), &1, 0).is_err() {
        count_lost(lost::TARGET_MAP_FULL);
    }
    Ok(())
}
