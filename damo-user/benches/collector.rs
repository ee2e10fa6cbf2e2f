//! The collector's CPU cost per event, natively: region events and stack samples, as the ring
//! buffer hands them over (raw bytes), go through the same decoding, snapshot assembly,
//! address normalization and record writing as `damo-trace record`, into a real file.
//!
//! Only the kernel side is replaced: the host's DAMON cannot run our kdamonds, and a VM's
//! emulated CPU inflates every time. `cargo xtask bench --collector` runs this; it prints
//! numbers and passes or fails on nothing.

use std::{collections::HashMap, hint::black_box, time::Duration};

use anyhow::Result;
use damo_common::{EventKind, RegionEvent, StackEvent, MAX_STACK_DEPTH};
use damo_record::synth::Rng;
use damo_user::{
    bpf::Event,
    collector::EventSink,
    record::{
        file::RecordFile,
        procs::{ProcSampler, ProcSampling},
        sink::RecordingSink,
        RecordOutput,
    },
};

/// Simulated seconds of recording per run.
const SECONDS: u64 = 60;
/// 10 k region events/s: 100 regions per snapshot at a 10 ms aggregation interval.
const REGIONS: u64 = 100;
const SNAPSHOTS_PER_S: u64 = 100;
/// 99 Hz on each of this machine's CPUs, all of them busy in the target.
const SAMPLE_HZ: u64 = 99;
const KDAMOND_PID: u32 = 4242;

fn bytes_of<T>(value: &T) -> &[u8] {
    // SAFETY: the event types are plain old data.
    unsafe { std::slice::from_raw_parts((value as *const T).cast(), size_of::<T>()) }
}

/// Code addresses of this process, so stacks normalize against real mappings.
fn code_addresses() -> Vec<u64> {
    let fns: [fn() -> Vec<u64>; 1] = [code_addresses];
    let base = fns[0] as usize as u64;
    (0..64).map(|i| base + i * 97).collect()
}

/// One simulated second's events, as ring buffer items, in time order.
fn second(t: u64, rng: &mut Rng, code: &[u64], cpus: u64, regions: bool, samples: bool) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    let pid = std::process::id();
    let sample_every = 1_000_000_000 / (SAMPLE_HZ * cpus);
    let mut next_sample = t * 1_000_000_000;
    for s in 0..SNAPSHOTS_PER_S {
        let ts_ns = t * 1_000_000_000 + (s + 1) * (1_000_000_000 / SNAPSHOTS_PER_S);
        while samples && next_sample < ts_ns {
            let mut e = StackEvent {
                kind: EventKind::StackSample as u32,
                pid,
                ts_ns: next_sample,
                tid: pid,
                cpu: (next_sample / sample_every % cpus) as u32,
                user_bytes: 0,
                kernel_bytes: 0,
                comm: *b"bench\0\0\0\0\0\0\0\0\0\0\0",
                user: [0; MAX_STACK_DEPTH],
                kernel: [0; MAX_STACK_DEPTH],
                regs: Default::default(),
                stack_len: 0,
                _pad: 0,
            };
            let (user, kernel) = (12 + rng.next_u64() % 8, 6 + rng.next_u64() % 6);
            for i in 0..user as usize {
                e.user[i] = code[(rng.next_u64() % code.len() as u64) as usize];
            }
            for i in 0..kernel as usize {
                e.kernel[i] = 0xffff_ffff_8100_0000 + (rng.next_u64() % 4096) * 64;
            }
            e.user_bytes = (user * 8) as i32;
            e.kernel_bytes = (kernel * 8) as i32;
            items.push(bytes_of(&e).to_vec());
            next_sample += sample_every;
        }
        if regions {
            for r in 0..REGIONS {
                let start = 0x7f00_0000_0000 + r * (1 << 20);
                let e = RegionEvent {
                    kind: EventKind::Region as u32,
                    kdamond_pid: KDAMOND_PID,
                    ts_ns,
                    target_id: 0,
                    nr_regions: REGIONS as u32,
                    start,
                    end: start + (1 << 20),
                    nr_accesses: (rng.next_u64() % 21) as u32,
                    age: (rng.next_u64() % 100) as u32,
                    _pad: 0,
                };
                items.push(bytes_of(&e).to_vec());
            }
        }
    }
    items
}

/// CPU time this thread used so far.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills the struct we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `SECONDS` of events through a recording sink into a record file; returns the CPU
/// time spent, the region events and the samples.
fn run(regions: bool, samples: bool, cpus: u64) -> Result<(Duration, u64, u64)> {
    let dir = tempfile::tempdir()?;
    let mut file = RecordFile::create(&dir.path().join("bench.dtr"), 0o600, false, HashMap::new())?;
    file.kdamond(KDAMOND_PID, 0, None);
    let code = code_addresses();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Generated ahead, so the cost of making events is not counted.
    let seconds: Vec<Vec<Vec<u8>>> = (0..SECONDS).map(|t| second(t, &mut rng, &code, cpus, regions, samples)).collect();
    let before = thread_cpu();
    let mut sink = RecordingSink::new(&mut file, std::time::Instant::now(), false);
    if regions && samples {
        // What a recording also reads each second: this process's footprint, maps and stat.
        sink.procs = Some(ProcSampler::new(std::path::Path::new("/proc"), ProcSampling::default(), vec![std::process::id()], true, Vec::new()));
    }
    for items in &seconds {
        for item in items {
            match Event::decode(item) {
                Some(Event::Region(e)) => sink.region(&e)?,
                Some(Event::Stack(e, stack)) => sink.stack(&e, stack)?,
                Some(Event::SchemeRegion(e)) => sink.scheme_region(&e)?,
                None => sink.undecodable(item.len())?,
            }
        }
        sink.tick()?;
    }
    let progress = sink.progress;
    let losses = sink.losses;
    sink.output().finish(&losses)?;
    let cpu = thread_cpu() - before;
    black_box(&progress);
    assert_eq!(losses.total(), 0, "the bench's own events must all be kept: {losses:?}");
    Ok((cpu, progress.regions, progress.samples))
}

fn main() -> Result<()> {
    // `cargo bench` passes --bench; nothing else is taken.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    println!("collector replay: {SECONDS} s of events, {REGIONS} regions × {SNAPSHOTS_PER_S} snapshots/s, {SAMPLE_HZ} Hz × {cpus} CPUs; best of 3");
    let best = |regions: bool, samples: bool| -> Result<(Duration, u64, u64)> {
        Ok((0..3).map(|_| run(regions, samples, cpus)).collect::<Result<Vec<_>>>()?.into_iter().min_by_key(|r| r.0).expect("three runs"))
    };
    let (cpu_r, n_r, _) = best(true, false)?;
    let (cpu_s, _, n_s) = best(false, true)?;
    let (cpu_both, n_both_r, n_both_s) = best(true, true)?;
    let per_1k_regions = cpu_r.as_secs_f64() * 1e3 / (n_r as f64 / 1e3);
    let per_1k_samples = cpu_s.as_secs_f64() * 1e3 / (n_s as f64 / 1e3);
    println!("  region events only: {n_r} events, {:.3} s CPU: {per_1k_regions:.3} ms per 1 k region events", cpu_r.as_secs_f64());
    println!("  stack samples only: {n_s} samples, {:.3} s CPU: {per_1k_samples:.3} ms per 1 k samples", cpu_s.as_secs_f64());
    println!(
        "  both, with /proc read each second ({n_both_r} region events, {n_both_s} samples): {:.3} s CPU in {SECONDS} s: {:.3} % of one core (goal: <= 1 %)",
        cpu_both.as_secs_f64(),
        cpu_both.as_secs_f64() * 100.0 / SECONDS as f64
    );
    Ok(())
}
