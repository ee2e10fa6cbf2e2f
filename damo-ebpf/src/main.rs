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
        macros::map,
        maps::{HashMap, PerCpuArray, RingBuf},
    };
    use damo_common::lost;

    /// Region events and stack samples, in the order they happened.
    #[map]
    pub static EVENTS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

    /// Pids of the kdamonds being recorded; other kdamonds' events are dropped in the kernel.
    #[map]
    pub static KDAMOND_PIDS: HashMap<u32, u8> = HashMap::with_max_entries(64, 0);

    /// Tgids whose CPU samples are recorded: the targets and, when following, their descendants.
    #[map]
    pub static TARGET_TGIDS: HashMap<u32, u8> = HashMap::with_max_entries(16384, 0);

    /// Per-CPU counters of everything dropped, indexed by `damo_common::lost`.
    #[map]
    pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(lost::COUNT, 0);

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
use maps::{count_lost, EVENTS, KDAMOND_PIDS, TARGET_TGIDS};
