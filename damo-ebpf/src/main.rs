//! damo-trace's eBPF programs. One file per hook under `probes/`; the maps they share are here.
#![no_std]
#![no_main]

mod probes;

use aya_ebpf::{
    macros::map,
    maps::{HashMap, PerCpuArray, RingBuf},
};
use damo_common::lost;

/// Region events and stack samples, in the order they happened.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

/// Pids of the kdamonds being recorded; other kdamonds' events are dropped in the kernel.
#[map]
static KDAMOND_PIDS: HashMap<u32, u8> = HashMap::with_max_entries(64, 0);

/// Tgids whose CPU samples are recorded: the targets and, when following, their descendants.
#[map]
static TARGET_TGIDS: HashMap<u32, u8> = HashMap::with_max_entries(16384, 0);

/// Per-CPU counters of everything dropped, indexed by `damo_common::lost`.
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(lost::COUNT, 0);

fn count_lost(index: u32) {
    if let Some(counter) = LOST.get_ptr_mut(index) {
        // SAFETY: per-CPU slot; eBPF programs do not preempt each other on one CPU here.
        unsafe { *counter += 1 };
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
