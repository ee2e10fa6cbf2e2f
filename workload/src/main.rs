//! Workloads whose time goes to known functions touching known buffers, so tests can check
//! that damo-trace attributes samples and accesses to the right place.
//!
//! Every function a test looks for is `#[inline(never)]` and `#[no_mangle]`, so it is one
//! symbol with a stable name; the workspace builds with frame pointers, so stacks unwind.

use std::{
    hint::black_box,
    io::Write,
    time::{Duration, Instant},
};

use anyhow::Result;
use clap::{Parser, Subcommand};

#[cfg(feature = "sqlite")]
mod engine;

const MIB: usize = 1 << 20;

#[derive(Parser)]
#[command(about = "damo-trace's test workloads")]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand)]
enum Workload {
    /// Half the time in `workload_compute` (this binary), half in libc's memset.
    Known {
        /// How long to run, in seconds.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// A hot buffer touched all the time and a cold one touched once.
    HotBuffer {
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Size of the hot buffer in MiB.
        #[arg(long, default_value_t = 16)]
        hot_mib: usize,
        /// Size of the cold buffer in MiB.
        #[arg(long, default_value_t = 64)]
        cold_mib: usize,
    },
    /// Three phases, each a different function touching a different buffer differently:
    /// sequential sweeps, random updates, a small hot spot in a big buffer.
    Phases {
        /// Seconds per phase.
        #[arg(long, default_value_t = 10.0)]
        phase_seconds: f64,
        /// Each phase's function calls helpers every phase shares (`shared_touch`,
        /// `shared_mix`), so the leaves are the same in every phase and only the callers
        /// (`caller_sequential_scan`, `caller_random_update`, `caller_hot_spot`) tell the
        /// phases apart, as in real software.
        #[arg(long)]
        callers: bool,
    },
    /// SQLite (built in with the `sqlite` feature) through three phases: bulk insert, index
    /// build, point queries, each from its own function.
    #[cfg(feature = "sqlite")]
    Engine {
        /// Seconds per phase.
        #[arg(long, default_value_t = 10.0)]
        phase_seconds: f64,
    },
}

fn main() -> Result<()> {
    match Cli::parse().workload {
        Workload::Known { seconds } => known(secs(seconds)),
        Workload::HotBuffer { seconds, hot_mib, cold_mib } => hot_buffer(secs(seconds), hot_mib, cold_mib),
        Workload::Phases { phase_seconds, callers } => phases(secs(phase_seconds), callers),
        #[cfg(feature = "sqlite")]
        Workload::Engine { phase_seconds } => engine::run(secs(phase_seconds))?,
    }
    Ok(())
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Announces a buffer's address range on stdout, for tests to look up in the record.
fn announce(name: &str, buf: &[u8]) {
    let start = buf.as_ptr() as usize;
    println!("buffer {name} {start:#x}-{:#x}", start + buf.len());
    let _ = std::io::stdout().flush();
}

fn known(duration: Duration) {
    let mut buf = vec![0u8; 4 * MIB];
    announce("known", &buf);
    let until = Instant::now() + duration;
    let mut iterations = 0u64;
    while Instant::now() < until {
        black_box(workload_compute(200_000));
        workload_fill(&mut buf);
        iterations += 1;
    }
    // The work done, for measuring how much recording slows the workload down.
    println!("known iterations {iterations}");
}

/// Pure computation in this binary.
#[no_mangle]
#[inline(never)]
pub extern "C" fn workload_compute(rounds: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..rounds {
        x = black_box(x.rotate_left(7) ^ i).wrapping_mul(0x2545_f491_4f6c_dd1d);
    }
    x
}

/// Time in libc's memset (a shared library), called from a known frame.
#[no_mangle]
#[inline(never)]
pub fn workload_fill(buf: &mut [u8]) {
    for round in 0..4u8 {
        // SAFETY: writes exactly buf.len() bytes into buf.
        unsafe { libc_memset(buf.as_mut_ptr(), i32::from(round), buf.len()) };
        black_box(&buf);
    }
}

extern "C" {
    #[link_name = "memset"]
    fn libc_memset(dst: *mut u8, value: i32, len: usize) -> *mut u8;
}

fn hot_buffer(duration: Duration, hot_mib: usize, cold_mib: usize) {
    let mut cold = vec![1u8; cold_mib * MIB];
    announce("cold", &cold);
    touch_pages(&mut cold, 1);
    let mut hot = vec![1u8; hot_mib * MIB];
    announce("hot", &hot);
    let until = Instant::now() + duration;
    while Instant::now() < until {
        workload_hot_loop(&mut hot);
    }
    black_box(&cold);
}

/// Writes one byte of every page, `rounds` times.
fn touch_pages(buf: &mut [u8], rounds: usize) {
    for _ in 0..rounds {
        for page in buf.chunks_mut(4096) {
            page[0] = page[0].wrapping_add(1);
        }
        black_box(&buf);
    }
}

/// Touches every page of the hot buffer.
#[no_mangle]
#[inline(never)]
pub fn workload_hot_loop(buf: &mut [u8]) {
    touch_pages(buf, 1);
}

fn phases(per_phase: Duration, callers: bool) {
    let mut seq = vec![1u8; 64 * MIB];
    let mut random = vec![1u8; 32 * MIB];
    let mut spot = vec![1u8; 128 * MIB];
    announce("sequential", &seq);
    announce("random", &random);
    announce("hotspot", &spot);
    // An idle second between filling the buffers and the first phase: under emulation the
    // fill (page faults over 224 MiB) lasts longer than a phase and touches every buffer, so
    // without a gap a phase finder can take it and the first phase for one.
    std::thread::sleep(Duration::from_secs(1));
    if callers {
        run_phase("sequential", per_phase, || caller_sequential_scan(&mut seq));
        run_phase("random", per_phase, || caller_random_update(&mut random));
        run_phase("hotspot", per_phase, || caller_hot_spot(&mut spot));
    } else {
        run_phase("sequential", per_phase, || phase_sequential_scan(&mut seq));
        run_phase("random", per_phase, || phase_random_update(&mut random));
        run_phase("hotspot", per_phase, || phase_hot_spot(&mut spot));
    }
}

/// CLOCK_MONOTONIC in ns: the clock of damo-trace's records, so tests can tell how far a
/// phase boundary the report found is from the real one.
fn monotonic_ns() -> u64 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_MONOTONIC: i32 = 1;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into ts, which lives across the call.
    unsafe { clock_gettime(CLOCK_MONOTONIC, &mut ts) };
    ts.sec as u64 * 1_000_000_000 + ts.nsec as u64
}

fn run_phase(name: &str, duration: Duration, mut step: impl FnMut()) {
    println!("phase {name} start {}", monotonic_ns());
    let _ = std::io::stdout().flush();
    let until = Instant::now() + duration;
    while Instant::now() < until {
        step();
    }
    println!("phase {name} end {}", monotonic_ns());
}

/// A byte every this many of the sequential buffer per sweep. A sweep must be short next to
/// DAMON's 5 ms sampling even under emulation on a busy host, or the buffer's pages are seen
/// accessed in too few samples (a byte every 64 left it at 11 % and its phase unfound).
const SWEEP_STRIDE: usize = 256;

/// Phase 1: reads the whole buffer front to back.
#[no_mangle]
#[inline(never)]
pub fn phase_sequential_scan(buf: &mut [u8]) {
    let mut sum = 0u64;
    for chunk in buf.chunks(SWEEP_STRIDE) {
        sum = sum.wrapping_add(u64::from(chunk[0]));
    }
    black_box(sum);
}

/// Phase 2: updates random cache lines all over its buffer.
#[no_mangle]
#[inline(never)]
pub fn phase_random_update(buf: &mut [u8]) {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let len = buf.len();
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x as usize) % len;
        buf[i] = buf[i].wrapping_add(1);
    }
}

/// Phase 3: hammers the first 8 MiB of a 128 MiB buffer.
#[no_mangle]
#[inline(never)]
pub fn phase_hot_spot(buf: &mut [u8]) {
    touch_pages(&mut buf[..8 * MIB], 1);
}

/// Caller mode, phase 1: sweeps the buffer a megabyte at a time through the shared helper.
#[no_mangle]
#[inline(never)]
pub fn caller_sequential_scan(buf: &mut [u8]) {
    // A byte every 64: the caller-mode test boots on one vCPU, where this stride passed 10
    // boots of 10 (and SWEEP_STRIDE is tuned for the leaf-mode test's two vCPUs).
    for chunk in buf.chunks_mut(MIB) {
        shared_touch(chunk, 64);
    }
}

/// Caller mode, phase 2: random pages all over its buffer, picked by the shared mixer.
#[no_mangle]
#[inline(never)]
pub fn caller_random_update(buf: &mut [u8]) {
    let pages = buf.len() / 4096;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2_000 {
        x = shared_mix(x);
        let page = (x as usize) % pages * 4096;
        shared_touch(&mut buf[page..page + 4096], 64);
    }
}

/// Caller mode, phase 3: the first 8 MiB of its buffer, a byte a page, through the helper.
#[no_mangle]
#[inline(never)]
pub fn caller_hot_spot(buf: &mut [u8]) {
    for _ in 0..4 {
        black_box(shared_mix(buf.len() as u64));
        shared_touch(&mut buf[..8 * MIB], 4096);
    }
}

/// The helper every caller-mode phase spends its time in: one byte every `stride`.
#[no_mangle]
#[inline(never)]
pub fn shared_touch(buf: &mut [u8], stride: usize) {
    for i in (0..buf.len()).step_by(stride) {
        buf[i] = buf[i].wrapping_add(1);
    }
    black_box(&buf);
}

/// The other shared helper: a xorshift step.
#[no_mangle]
#[inline(never)]
pub fn shared_mix(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    black_box(x)
}
