//! The live view's own CPU, natively: a stream at DAMON's default intervals (one target,
//! 100 ms aggregations of 500 regions) and 99 Hz of stack samples on two busy CPUs goes
//! through `top`'s model (naming each sample with damo-profile's symbolizer, the hot bands
//! and the online phase finder every other second) and is drawn into a 120×40 screen at
//! each tick after which something changed, as the terminal UI does. The collector's share
//! (the recording path itself) is measured apart (`cargo xtask bench --live` runs this and a
//! native `top` vs `record`).
//! Prints numbers; passes or fails on nothing.

use std::time::Duration;

use damo_record::{
    model::{FileAddr, Intervals, Module, Snapshot, StackSample},
    synth::Rng,
};
use damo_user::{
    live::{feed::Feed, model::LiveModel, ui},
    snapshots::TargetKey,
};
use ratatui::{backend::TestBackend, Terminal};

/// Seconds of stream; the first 60 fill the window (600 snapshots), so most are steady.
const SECONDS: u64 = 180;
const AGGR_NS: u64 = 100_000_000;
const REGIONS: u64 = 500;
const SAMPLES_PER_S: u64 = 2 * 99;
/// Distinct stacks: what a real program's hot code comes to.
const STACKS: usize = 400;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills the struct we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Stacks of file offsets in this bench binary's text, so naming them is real work.
fn stacks(rng: &mut Rng) -> Vec<Vec<FileAddr>> {
    let size = std::fs::metadata(std::env::current_exe().unwrap()).unwrap().len();
    (0..STACKS).map(|_| (0..8).map(|_| FileAddr { module: 0, offset: 0x1000 + rng.next_u64() % (size / 4) }).collect()).collect()
}

fn main() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let stacks = stacks(&mut rng);
    let key = TargetKey::target(4242, 0);
    let mut model = LiveModel::new(600, None);
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let intervals = Intervals { sample_us: 5000, aggr_us: 100_000, ops_update_us: 1_000_000 };
    let (mut snapshots, mut samples, mut ticks) = (0u64, 0u64, 0u64);
    let started = thread_cpu();
    model.push(Feed::Kdamond { pid: 4242, index: 0, intervals: Some(intervals) });
    model.push(Feed::Modules(vec![Module { path: std::env::current_exe().unwrap(), build_id: None }]));
    let base = 0x7f00_0000_0000u64;
    for second in 0..SECONDS {
        let t0 = 1_000_000_000 * (second + 1);
        for a in 0..1_000_000_000 / AGGR_NS {
            let start_ns = t0 + a * AGGR_NS;
            // A hot set that moves every 20 s: phases for the finder.
            let hot = (second / 20) % 5;
            let regions = (0..REGIONS)
                .map(|r| {
                    let start = base + r * (1 << 22);
                    let nr_accesses = if r / 100 == hot { 15 + (rng.next_u64() % 5) as u32 } else { (rng.next_u64() % 2) as u32 };
                    damo_record::model::Region { start, end: start + (1 << 22), nr_accesses, age: Some(3) }
                })
                .collect();
            model.push(Feed::Snapshot(key, Snapshot { start_ns, end_ns: start_ns + AGGR_NS, regions, total_bytes: None }));
            snapshots += 1;
        }
        for s in 0..SAMPLES_PER_S {
            let user = stacks[(rng.next_u64() % STACKS as u64) as usize].clone();
            model.push(Feed::Stack(StackSample { ts_ns: t0 + s * 1_000_000_000 / SAMPLES_PER_S, pid: 7, tid: 7, cpu: 0, comm: "bench".into(), user, kernel: Vec::new() }));
            samples += 1;
        }
        // As the terminal UI: a redraw at each tick after which something changed.
        if model.push(Feed::Tick) {
            terminal.draw(|f| ui::draw(f, &model, &ui::ViewState::default())).unwrap();
            ticks += 1;
        }
    }
    let cpu = thread_cpu() - started;
    println!("live view (model + drawing), {SECONDS} s of stream: {snapshots} snapshots of {REGIONS} regions, {samples} samples, {ticks} redraws");
    println!("  CPU {:.3} s = {:.2}% of a core at DAMON's default intervals and 99 Hz on 2 CPUs", cpu.as_secs_f64(), cpu.as_secs_f64() * 100.0 / SECONDS as f64);
}
