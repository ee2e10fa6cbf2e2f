//! The wire format between damo-trace's eBPF programs and its collector.
//!
//! Every type is `#[repr(C)]` with explicit padding fields, so the kernel and user sides agree
//! byte for byte; the `const` assertions below fail the build if a field changes size.
#![no_std]

/// Event kinds on the ring buffers. Ids are fixed and never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Region = 1,
    StackSample = 2,
    SchemeRegion = 3,
}

/// One region reported by the `damon:damon_aggregated` tracepoint.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionEvent {
    /// Always `EventKind::Region`.
    pub kind: u32,
    /// The kdamond thread that emitted the event.
    pub kdamond_pid: u32,
    /// `bpf_ktime_get_ns` (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    pub target_id: u64,
    pub start: u64,
    pub end: u64,
    /// Regions the target has in this snapshot: the tracepoint has no snapshot marker, so the
    /// collector counts events up to it.
    pub nr_regions: u32,
    pub nr_accesses: u32,
    pub age: u32,
    pub _pad: u32,
}

/// One region a DAMOS scheme is about to act on, from `damon:damos_before_apply` (6.9+).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchemeRegionEvent {
    /// Always `EventKind::SchemeRegion`.
    pub kind: u32,
    pub kdamond_pid: u32,
    /// `bpf_ktime_get_ns` (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    /// The target's position in its context (not a pid or target id).
    pub target_idx: u64,
    pub start: u64,
    pub end: u64,
    pub context_idx: u32,
    pub scheme_idx: u32,
    /// Regions the target has (all of them, not only those the scheme acts on).
    pub nr_regions: u32,
    pub nr_accesses: u32,
    pub age: u32,
    pub _pad: u32,
}

/// Frames kept per stack: the kernel's default `perf_event_max_stack`.
pub const MAX_STACK_DEPTH: usize = 127;

/// One cpu-clock sample of a target task, with its user and kernel call stacks.
///
/// Stacks travel inside the sample (`bpf_get_stack` into the ring buffer) rather than through a
/// StackTrace map: no hash collisions to lose stacks to, no map to read back later, and each
/// stack keeps its own timestamp, which `report profile` needs to cut samples by access phase.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StackEvent {
    /// Always `EventKind::StackSample`.
    pub kind: u32,
    pub pid: u32,
    pub ts_ns: u64,
    pub tid: u32,
    pub cpu: u32,
    /// Valid bytes in `user`/`kernel` (a multiple of 8), or a negative errno from the kernel.
    pub user_bytes: i32,
    pub kernel_bytes: i32,
    pub comm: [u8; 16],
    /// Frame-pointer user frames (`--call-graph fp`); empty (`user_bytes` 0) in dwarf mode.
    pub user: [u64; MAX_STACK_DEPTH],
    pub kernel: [u64; MAX_STACK_DEPTH],
    /// The user registers at the sample (dwarf mode; zero in fp mode). When the sample
    /// interrupted kernel code, these are the registers the task entered the kernel with.
    pub regs: UserRegs,
    /// Bytes of user stack copied from `regs.sp` upwards that follow this header in the ring
    /// buffer item (0 in fp mode, or when not one byte could be read).
    pub stack_len: u32,
    pub _pad: u32,
}

/// The registers an x86-64 unwinder starts from: instruction, stack and frame pointers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserRegs {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
}

/// The largest user stack copy a sample can carry (perf's limit is 65528 too). A power of
/// two minus 8: the eBPF side masks lengths with `STACK_COPY_MASK` for the verifier.
pub const MAX_STACK_COPY: usize = 65528;
/// `len & STACK_COPY_MASK` is a multiple of 8 and at most `MAX_STACK_COPY`.
pub const STACK_COPY_MASK: u32 = 0xfff8;

/// What the perf_event program records per sample; set by the loader before load.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampleConfig {
    /// Bytes of user stack to copy per sample (dwarf mode), or 0 for frame-pointer stacks
    /// from `bpf_get_stack`.
    pub stack_copy: u32,
    pub _pad: u32,
}

/// Where `damon_aggregated`'s fields sit in its record, read from the tracefs `format` file at
/// load time: the layout changed across kernels (`age` came in 5.16), so it is not hard-coded.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionLayout {
    pub target_id: u32,
    pub nr_regions: u32,
    pub start: u32,
    pub end: u32,
    pub nr_accesses: u32,
    /// `u32::MAX` when the kernel's tracepoint has no `age` field.
    pub age: u32,
}

/// Where `damos_before_apply`'s fields sit, read from its tracefs `format` file at load time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchemeRegionLayout {
    pub context_idx: u32,
    pub scheme_idx: u32,
    pub target_idx: u32,
    pub start: u32,
    pub end: u32,
    pub nr_accesses: u32,
    pub age: u32,
    pub nr_regions: u32,
}

/// Where `sched:sched_process_fork`'s `child_pid` sits, for following a target's children.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkLayout {
    pub child_pid: u32,
}

/// Indices of the per-CPU loss counters; the record stores them and reports print them.
pub mod lost {
    /// A region event found the ring buffer full.
    pub const REGION_RINGBUF_FULL: u32 = 0;
    /// A stack sample found the ring buffer full.
    pub const STACK_RINGBUF_FULL: u32 = 1;
    /// `bpf_get_stack` failed for both stacks of a sample; in dwarf mode, not one byte of the
    /// user stack could be copied and there is no kernel stack either (or the sample
    /// interrupted user code).
    pub const STACK_UNREADABLE: u32 = 2;
    /// The pid filter map was full when a child of a target forked.
    pub const TARGET_MAP_FULL: u32 = 3;
    /// Dwarf mode: a user stack copy ended at an unreadable page before the copy size. Most
    /// are the top of a stack (nothing lost); the collector counts the samples whose
    /// unwinding needed the missing bytes. Not one of the record's four loss slots.
    pub const STACK_COPY_SHORT: u32 = 4;
    /// Slots of the per-CPU counter map.
    pub const COUNT: u32 = 5;
    /// The first `RECORDED` counters are losses the record keeps.
    pub const RECORDED: usize = 4;
    // A full ring buffer drops scheme regions under REGION_RINGBUF_FULL too: both are DAMON
    // region events, and the record's loss counters keep their four slots.
}

const _: () = assert!(core::mem::size_of::<RegionEvent>() == 56);
const _: () = assert!(core::mem::size_of::<SchemeRegionEvent>() == 64);
const _: () = assert!(core::mem::size_of::<StackEvent>() == 48 + 2 * 8 * MAX_STACK_DEPTH + 24 + 8);
const _: () = assert!(core::mem::size_of::<SampleConfig>() == 8);
const _: () = assert!(MAX_STACK_COPY == STACK_COPY_MASK as usize);
const _: () = assert!(core::mem::align_of::<StackEvent>() == 8);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain-old-data: repr(C), integer fields only, no padding bytes left implicit.
    unsafe impl aya::Pod for super::RegionLayout {}
    unsafe impl aya::Pod for super::ForkLayout {}
    unsafe impl aya::Pod for super::SchemeRegionLayout {}
    unsafe impl aya::Pod for super::SampleConfig {}
}
