//! cpu-clock perf samples of target tasks, with kernel stacks and either frame-pointer user
//! stacks (`bpf_get_stack`) or the user registers and a copy of the top of the user stack,
//! which the collector unwinds with the binaries' DWARF CFI (`--call-graph dwarf`).

use aya_ebpf::{
    bindings::{pt_regs, BPF_F_USER_STACK},
    helpers::{bpf_get_current_comm, bpf_get_current_task_btf, bpf_get_smp_processor_id, bpf_get_stack, bpf_ktime_get_ns, bpf_probe_read_kernel, bpf_task_pt_regs, generated::bpf_probe_read_user},
    macros::perf_event,
    programs::PerfEventContext,
    EbpfContext,
};
use damo_common::{lost, EventKind, SampleConfig, StackEvent, UserRegs, MAX_STACK_DEPTH, STACK_COPY_MASK};

use crate::{count_lost, wakeup_flags, EVENTS, SAMPLE_SCRATCH, SCRATCH_BYTES, TARGET_TGIDS};

const STACK_BYTES: u32 = (MAX_STACK_DEPTH * 8) as u32;
const HEADER: usize = size_of::<StackEvent>();
const PAGE: u64 = 4096;
/// Pages a copy of at most `MAX_STACK_COPY` bytes starting mid-page can touch.
const MAX_PAGES: usize = damo_common::MAX_STACK_COPY / PAGE as usize + 2;

/// Set by the loader: how much user stack to copy (0: frame-pointer stacks).
#[no_mangle]
static SAMPLE_CONFIG: SampleConfig = SampleConfig { stack_copy: 0, _pad: 0 };

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
    // SAFETY: the loader wrote the config before load; volatile so it is not const-folded.
    let config: SampleConfig = unsafe { core::ptr::read_volatile(&SAMPLE_CONFIG) };
    // The event is built in a per-CPU scratch slot (it outgrows the 512-byte BPF stack) and
    // copied out with its variable-length stack tail: ring buffer reservations are fixed-size.
    // SAFETY: bpf_get_smp_processor_id has no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(scratch) = SAMPLE_SCRATCH.get_ptr_mut(cpu) else { return };
    let base = scratch.cast::<u8>();
    let event = scratch.cast::<StackEvent>();
    // SAFETY: `event` is this CPU's scratch slot (perf programs do not nest on a CPU), large
    // enough for the header and the stack tail; every header field is written before output.
    let stack_len = unsafe {
        (*event).kind = EventKind::StackSample as u32;
        (*event).pid = tgid;
        (*event).tid = ctx.pid();
        (*event).ts_ns = bpf_ktime_get_ns();
        (*event).cpu = cpu;
        (*event).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        (*event)._pad = 0;
        let ctx_ptr = ctx.as_ptr();
        (*event).kernel_bytes = bpf_get_stack(ctx_ptr, (*event).kernel.as_mut_ptr().cast(), STACK_BYTES, 0) as i32;
        let want = config.stack_copy & STACK_COPY_MASK;
        let copied = if want == 0 {
            (*event).regs = UserRegs::default();
            (*event).user_bytes = bpf_get_stack(ctx_ptr, (*event).user.as_mut_ptr().cast(), STACK_BYTES, BPF_F_USER_STACK as u64) as i32;
            if (*event).user_bytes < 0 && (*event).kernel_bytes < 0 {
                count_lost(lost::STACK_UNREADABLE);
            }
            0
        } else {
            (*event).user_bytes = 0;
            let (regs, in_user) = user_regs(ctx);
            (*event).regs = regs;
            let copied = copy_stack(base.add(HEADER), regs.sp, want);
            // As in fp mode, a sample is lost when it has no stack at all. In the kernel, a
            // failed copy is mostly an execve past its point of no return: the registers
            // are the old image's, its stack is gone, and the kernel stack is what there is.
            if copied == 0 && (in_user || (*event).kernel_bytes < 0) {
                count_lost(lost::STACK_UNREADABLE);
            } else if copied < want {
                count_lost(lost::STACK_COPY_SHORT);
            }
            copied
        };
        (*event).stack_len = copied;
        copied
    };
    let len = HEADER + (stack_len & STACK_COPY_MASK) as usize;
    if len > SCRATCH_BYTES {
        return;
    }
    // SAFETY: `len` bytes of the scratch slot were written above (header, then stack tail).
    let bytes = unsafe { core::slice::from_raw_parts(base, len) };
    if EVENTS.output::<[u8]>(bytes, wakeup_flags()).is_err() {
        count_lost(lost::STACK_RINGBUF_FULL);
    }
}

/// The task's user registers: those of the sample when it interrupted user code, else the
/// ones saved when the task entered the kernel (`task_pt_regs`), as perf's `regs_user`; and
/// whether the sample interrupted user code.
fn user_regs(ctx: &PerfEventContext) -> (UserRegs, bool) {
    // SAFETY: a perf_event program's context is `bpf_perf_event_data`, whose first field is
    // the interrupted `pt_regs`.
    let regs = unsafe { &*ctx.as_ptr().cast::<pt_regs>() };
    if regs.cs & 3 == 3 {
        return (UserRegs { ip: regs.rip, sp: regs.rsp, bp: regs.rbp }, true);
    }
    // SAFETY: the BTF task pointer of the current task is what bpf_task_pt_regs takes; the
    // returned pt_regs is read with bpf_probe_read_kernel, which tolerates any address.
    unsafe {
        let task_regs = bpf_task_pt_regs(bpf_get_current_task_btf()) as *const pt_regs;
        let regs = match bpf_probe_read_kernel(task_regs) {
            Ok(r) => UserRegs { ip: r.rip, sp: r.rsp, bp: r.rbp },
            Err(_) => UserRegs::default(),
        };
        (regs, false)
    }
}

/// Copies up to `want` bytes of user stack from `sp` to `dst` and returns how many it got.
/// One read usually does it; when that fails (the copy would cross the top of the stack),
/// it copies page by page up to the first page that cannot be read.
///
/// # Safety
/// `dst` must have room for `MAX_STACK_COPY` bytes plus a page.
unsafe fn copy_stack(dst: *mut u8, sp: u64, want: u32) -> u32 {
    let want = want & STACK_COPY_MASK;
    // SAFETY: `want` is at most MAX_STACK_COPY, the caller's room.
    if unsafe { bpf_probe_read_user(dst.cast(), want, sp as *const _) } == 0 {
        return want;
    }
    let mut copied: u32 = 0;
    for _ in 0..MAX_PAGES {
        if copied >= want {
            break;
        }
        let at = sp + copied as u64;
        let page_left = (PAGE - (at & (PAGE - 1))) as u32;
        let left = want - copied;
        let n = if left < page_left { left } else { page_left };
        // Masks the verifier can follow: the offset stays below MAX_STACK_COPY + 8 and the
        // length within a page.
        let offset = (copied & STACK_COPY_MASK) as usize;
        let n = n & (2 * PAGE as u32 - 1);
        // SAFETY: offset + n is within MAX_STACK_COPY plus a page.
        if unsafe { bpf_probe_read_user(dst.add(offset).cast(), n, at as *const _) } != 0 {
            break;
        }
        copied += n;
    }
    copied.min(want)
}
