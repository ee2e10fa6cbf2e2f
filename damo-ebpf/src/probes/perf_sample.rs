//! cpu-clock perf samples of target tasks, with user and kernel stacks.

use aya_ebpf::{
    bindings::BPF_F_USER_STACK,
    helpers::{bpf_get_current_comm, bpf_get_smp_processor_id, bpf_get_stack, bpf_ktime_get_ns},
    macros::perf_event,
    programs::PerfEventContext,
    EbpfContext,
};
use damo_common::{lost, EventKind, StackEvent, MAX_STACK_DEPTH};

use crate::{count_lost, wakeup_flags, EVENTS, TARGET_TGIDS};

const STACK_BYTES: u32 = (MAX_STACK_DEPTH * 8) as u32;

#[perf_event]
pub fn perf_sample(ctx: PerfEventContext) -> u32 {
    try_perf_sample(&ctx);
    0
}

fn try_perf_sample(ctx: &PerfEventContext) {
    let tgid = ctx.tgid();
    // SAFETY: a map lookup by value.
    if tgid == 0 || unsafe { TARGET_TGIDS.get(&tgid) }.is_none() {
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<StackEvent>(0) else {
        count_lost(lost::STACK_RINGBUF_FULL);
        return;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: `event` points at a reserved, exclusively owned ring buffer slot of the right size;
    // every field is written before submit. bpf_get_stack writes at most `STACK_BYTES`.
    unsafe {
        (*event).kind = EventKind::StackSample as u32;
        (*event).pid = tgid;
        (*event).tid = ctx.pid();
        (*event).ts_ns = bpf_ktime_get_ns();
        (*event).cpu = bpf_get_smp_processor_id();
        (*event).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        let ctx_ptr = ctx.as_ptr();
        (*event).user_bytes = bpf_get_stack(
            ctx_ptr,
            (*event).user.as_mut_ptr().cast(),
            STACK_BYTES,
            BPF_F_USER_STACK as u64,
        ) as i32;
        (*event).kernel_bytes =
            bpf_get_stack(ctx_ptr, (*event).kernel.as_mut_ptr().cast(), STACK_BYTES, 0) as i32;
        if (*event).user_bytes < 0 && (*event).kernel_bytes < 0 {
            count_lost(lost::STACK_UNREADABLE);
        }
    }
    entry.submit(wakeup_flags());
}
