//! The profile benchmark: `report profile`, `report phases` and `report flamegraph` on a
//! 10-minute record with ≥ 1 M regions and ≥ 100 k stack samples whose user frames are real
//! file offsets of a real binary (damo-trace's own), so blazesym symbolizes them from its
//! symbol tables and DWARF as it would a recorded program.

use std::{ops::ControlFlow, path::Path, time::Duration};

use anyhow::{bail, Context, Result};
use blazesym::{
    helper::read_elf_build_id,
    inspect::{source::Elf, source::Source, Inspector},
    SymType,
};
use damo_record::{
    model::{FileAddr, Module, StackSample},
    native::NativeWriter,
    synth::{self, Rng, SynthSpec},
};

use super::time;

/// 6,000 snapshots of 100 ms: ten minutes.
const SNAPSHOTS: usize = 6_000;
const REGIONS: usize = 200;
/// Two CPUs at 99 Hz for ten minutes, about.
const SAMPLES: u64 = 120_000;
/// Call paths per phase, and how deep they go.
const PATHS_PER_PHASE: usize = 24;
const MAX_DEPTH: u64 = 24;

pub fn run(damo_trace: &Path, dir: &Path) -> Result<()> {
    let record = dir.join("profile-10min.dtr");
    let (regions, samples) = write_record(damo_trace, &record)?;
    println!("\nprofile reports on a 10-minute record: {regions} regions, {samples} stack samples, user frames in");
    println!("{} (best of 3 runs, wall time; each run symbolizes from scratch):", damo_trace.display());
    let rec = record.to_str().context("a non-UTF-8 path")?;
    let svg = dir.join("profile-10min.svg");
    let cases: [(&str, Vec<&str>); 4] = [
        ("report profile --access_rate 50% 100%", vec!["report", "profile", "-i", rec, "--access_rate", "50%", "100%"]),
        ("report profile (all samples)", vec!["report", "profile", "-i", rec]),
        ("report phases", vec!["report", "phases", "-i", rec]),
        ("report flamegraph", vec!["report", "flamegraph", "-i", rec, "-o", svg.to_str().context("a non-UTF-8 path")?]),
    ];
    for (name, args) in cases {
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        let mut best = Duration::MAX;
        for _ in 0..3 {
            best = best.min(time(damo_trace, &args, dir, &[])?);
        }
        println!("  {name:44} {:>8.3}s", best.as_secs_f64());
    }
    Ok(())
}

/// A function of the binary: its file offset and size.
#[derive(Clone, Copy)]
struct Function {
    offset: u64,
    size: u64,
}

fn functions(binary: &Path) -> Result<Vec<Function>> {
    let mut found = Vec::new();
    // The symbol table, not DWARF: for_each lists what the ELF symbol table has.
    let mut elf = Elf::new(binary);
    elf.debug_syms = false;
    let src = Source::Elf(elf);
    Inspector::new()
        .for_each(&src, |sym| {
            if let (SymType::Function, Some(offset), Some(size)) = (sym.sym_type, sym.file_offset, sym.size) {
                if size >= 16 {
                    found.push(Function { offset, size: size as u64 });
                }
            }
            ControlFlow::Continue(())
        })
        .with_context(|| format!("failed to read the symbols of {}", binary.display()))?;
    if found.len() < 1_000 {
        bail!("{} has only {} functions: not a realistic binary to symbolize", binary.display(), found.len());
    }
    Ok(found)
}

/// Writes the record; returns its region and sample counts.
pub(super) fn write_record(binary: &Path, path: &Path) -> Result<(usize, usize)> {
    let record = synth::record(SynthSpec { targets: 1, snapshots_per_target: SNAPSHOTS, regions: REGIONS, seed: 3 });
    let target = &record.targets[0];
    let (first, last) = (target.snapshots[0].start_ns, target.snapshots[SNAPSHOTS - 1].end_ns);
    let functions = functions(binary)?;
    let build_id = read_elf_build_id(binary)?.map(|id| id.to_vec());

    let mut w = NativeWriter::new(std::io::BufWriter::new(std::fs::File::create(path)?))?;
    for s in &target.snapshots {
        w.snapshot(target, s)?;
    }
    w.modules(&[Module { path: binary.to_path_buf(), build_id }])?;
    let kernel: Vec<(u64, String)> = (0..64u64).map(|k| (0xffff_ffff_8100_0000 + k * 0x1000, format!("kernel_function_{k}"))).collect();
    w.kernel_symbols(&kernel)?;

    // Each synth phase (50 snapshots) runs its own few call paths, as a program's phases do.
    let mut rng = Rng(0x5eed);
    let step = (last - first) / SAMPLES;
    let mut paths: Vec<Vec<FileAddr>> = Vec::new();
    let mut phase = usize::MAX;
    let mut batch = Vec::with_capacity(4096);
    for n in 0..SAMPLES {
        let ts_ns = first + n * step + rng.below(step);
        let now = ((ts_ns - first) / 100_000_000) as usize / 50;
        if now != phase {
            phase = now;
            paths = (0..PATHS_PER_PHASE).map(|_| call_path(&functions, &mut rng)).collect();
        }
        let user = paths[rng.below(PATHS_PER_PHASE as u64) as usize].clone();
        let kernel = if rng.below(10) == 0 { (0..1 + rng.below(8)).map(|_| kernel[rng.below(kernel.len() as u64) as usize].0).collect() } else { Vec::new() };
        let tid = 1000 + rng.below(2) as u32;
        batch.push(StackSample { ts_ns, pid: 1000, tid, cpu: tid - 1000, comm: "bench".into(), user, kernel });
        if batch.len() == batch.capacity() {
            w.stacks(&batch)?;
            batch.clear();
        }
    }
    w.stacks(&batch)?;
    w.finish()?;
    Ok((target.snapshots.iter().map(|s| s.regions.len()).sum(), SAMPLES as usize))
}

/// A stack innermost first: a pc inside the leaf, then return addresses inside callers.
fn call_path(functions: &[Function], rng: &mut Rng) -> Vec<FileAddr> {
    (0..4 + rng.below(MAX_DEPTH - 3))
        .map(|_| {
            let f = rng.pick(functions);
            FileAddr { module: 0, offset: f.offset + 1 + rng.below(f.size - 1) }
        })
        .collect()
}
