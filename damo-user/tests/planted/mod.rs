//! A record with planted phases, for the tests of phase-aware reports: three 3-second phases,
//! each making a different 16 MiB buffer hot while a different (kernel-symbol) function runs,
//! with one sample in ten in a common caller.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::path::Path;

use damo_record::{
    model::{Intervals, Region, Snapshot, StackSample, TargetRecord},
    native::NativeWriter,
};

/// (buffer start, function address, function name) of each phase, in order.
pub const PHASES: [(u64, u64, &str); 3] =
    [(0x1000_0000, 0xffff_ffff_8100_1000, "phase_scan"), (0x2000_0000, 0xffff_ffff_8100_2000, "phase_update"), (0x3000_0000, 0xffff_ffff_8100_3000, "phase_hotspot")];
pub const CALLER: u64 = 0xffff_ffff_8100_9000;
pub const BUFFER: u64 = 16 << 20;
/// Snapshots per phase (100 ms each).
pub const SNAPSHOTS: u64 = 30;

/// Writes the planted record to `path`, with its phases' functions named as in [`PHASES`].
pub fn write(path: &Path) {
    write_named(path, true, &PHASES.map(|p| p.2));
}

/// The planted record, with or without its samples, its phases' functions named `names`.
pub fn write_named(path: &Path, with_samples: bool, names: &[&str; 3]) {
    write_with(path, with_samples, names, 18, false);
}

/// The shared leaf of [`write_callers`]' phases.
pub const LEAF: u64 = 0xffff_ffff_8100_8000;

/// The planted record with each phase's hot buffer at `rate` accesses per aggregation (of
/// at most 20: 5 is the weak records of issue 13, 18 a strong one), and each phase's
/// function a caller: it spends its time in one leaf all phases share (`shared_leaf`), so
/// the self-time top is the same in every phase.
pub fn write_callers(path: &Path, rate: u32) {
    write_with(path, true, &PHASES.map(|p| p.2), rate, true);
}

fn write_with(path: &Path, with_samples: bool, names: &[&str; 3], rate: u32, callers: bool) {
    let intervals = Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 };
    let target = TargetRecord { intervals: Some(intervals), ..Default::default() };
    let mut w = NativeWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    let mut samples = Vec::new();
    for (p, &(_, function, _)) in PHASES.iter().enumerate() {
        for i in 0..SNAPSHOTS {
            let n = p as u64 * SNAPSHOTS + i;
            let (start_ns, end_ns) = (n * 100_000_000, (n + 1) * 100_000_000);
            let regions =
                PHASES.iter().enumerate().map(|(q, &(start, _, _))| Region { start, end: start + BUFFER, nr_accesses: if q == p { rate + (i % 3) as u32 } else { 0 }, age: Some(0) }).collect();
            w.snapshot(&target, &Snapshot { start_ns, end_ns, regions, total_bytes: None }).unwrap();
            for k in 0..10 {
                // One sample in ten is elsewhere, so the top function is not the only one.
                let leaf = if k == 9 { CALLER } else { function };
                let kernel = if callers && k != 9 { vec![LEAF, leaf, CALLER] } else { vec![leaf, CALLER] };
                samples.push(StackSample { ts_ns: start_ns + k * 10_000_000 + 1, pid: 7, tid: 7, cpu: 0, comm: "planted".into(), user: vec![], kernel });
            }
        }
    }
    if with_samples {
        w.stacks(&samples).unwrap();
        let mut symbols: Vec<(u64, String)> = PHASES.iter().zip(names).map(|(&(_, a, _), name)| (a, name.to_string())).collect();
        symbols.push((CALLER, "caller".into()));
        symbols.push((LEAF, "shared_leaf".into()));
        w.kernel_symbols(&symbols).unwrap();
    }
    w.finish().unwrap();
}
