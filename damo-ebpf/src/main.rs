//! damo-trace's eBPF programs. One file per hook under `probes/`; the maps they share are here.
//!
//! Everything is compiled for the BPF target only; on the host (`cargo build --workspace`,
//! clippy) this crate is an empty program, so it never breaks a host build.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]

#[cfg(not(target_arch = "bpf"))]
fn main() {}

#[cfg(target_arch = "bpf")]
mod probes;

#[cfg(target_arch = "bpf")]
mod maps {
    use aya_ebpf::{
        bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
        helpers::bpf_ktime_get_ns,
        macros::map,
        maps::{Array, HashMap, PerCpuArray, RingBuf},
    };
    use damo_common::lost;

    /// Region events and stack samples, in the order they happened. The loader sizes it for
    /// the stack copies of dwarf mode (`Tracer::load`).
    #[map]
    pub static EVENTS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

    /// One stack sample is built here per CPU (indexed by CPU id; the loader sets the number
    /// of entries to the possible CPUs): a header and up to `MAX_STACK_COPY` stack bytes, plus
    /// a page of slack for the page-wise copy. A plain array, as per-CPU values stop at 32 KiB.
    #[map]
    pub static SAMPLE_SCRATCH: Array<[u8; SCRATCH_BYTES]> = Array::with_max_entries(1, 0);
    pub const SCRATCH_BYTES: usize = size_of::<damo_common::StackEvent>() + damo_common::MAX_STACK_COPY + 8 + 8192;

    /// Pids of the kdamonds being recorded; other kdamonds' events are dropped in the kernel.
    #[map]
    pub static KDAMOND_PIDS: HashMap<u32, u8> = HashMap::with_max_entries(64, 0);

    /// Tgids whose CPU samples are recorded: the targets and, when following, their descendants.
    #[map]
    pub static TARGET_TGIDS: HashMap<u32, u8> = HashMap::with_max_entries(16384, 0);

    /// Per-CPU counters of everything dropped, indexed by `damo_common::lost`.
    #[map]
    pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(lost::COUNT, 0);

    /// When the collector was last woken (ns, `bpf_ktime_get_ns`).
    #[map]
    static LAST_WAKEUP: Array<u64> = Array::with_max_entries(1, 0);

    /// Wake the collector at most this often unless data piles up: a wakeup per event cost
    /// about 100 µs of its CPU each (a context switch into a cold cache), far more than the
    /// event itself.
    const WAKEUP_EVERY_NS: u64 = 100_000_000;
    /// ...or when this much is waiting (1/32 of the ring), so a burst never fills it. Set by
    /// the loader with the ring's size.
    #[no_mangle]
    static WAKEUP_BYTES: u64 = 256 << 10;

    /// The submit flags for the next event: wake the reader only when a batch is due.
    pub fn wakeup_flags() -> u64 {
        let Some(last) = LAST_WAKEUP.get_ptr_mut(0) else { return 0 };
        // SAFETY: bpf_ktime_get_ns has no preconditions.
        let now = unsafe { bpf_ktime_get_ns() };
        // SAFETY: one shared slot; CPUs racing on it cause at most an extra or a later wakeup.
        unsafe {
            let wakeup_bytes = core::ptr::read_volatile(&WAKEUP_BYTES);
            if now.wrapping_sub(*last) >= WAKEUP_EVERY_NS || EVENTS.query(BPF_RB_AVAIL_DATA.into()) >= wakeup_bytes {
                *last = now;
                BPF_RB_FORCE_WAKEUP.into()
            } else {
                BPF_RB_NO_WAKEUP.into()
            }
        }
    }

    pub fn count_lost(index: u32) {
        if let Some(counter) = LOST.get_ptr_mut(index) {
            // SAFETY: per-CPU slot; eBPF programs do not preempt each other on one CPU here.
            unsafe { *counter += 1 };
        }
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }
}

#[cfg(target_arch = "bpf")]
use maps::{count_lost, wakeup_flags, EVENTS, KDAMOND_PIDS, SAMPLE_SCRATCH, SCRATCH_BYTES, TARGET_TGIDS};
