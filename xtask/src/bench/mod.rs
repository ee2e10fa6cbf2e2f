//! `cargo xtask bench`: damo-trace against damo 3.4.3 on the same generated record, in one
//! run. Prints parse throughput, file sizes and, per report and input format, both tools'
//! wall times and their ratio. A benchmark, not a test: nothing here passes or fails on time.

mod cases;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use damo_record::{
    damo::{self, DamoFormat},
    load, native,
    model::Record,
    synth::{self, SynthSpec},
};

use crate::{damo as damo_install, setup::workspace_root, test::cargo};

#[derive(clap::Args)]
pub struct Options {
    /// Regions per snapshot of the generated record.
    #[arg(long, default_value_t = 250)]
    pub regions: usize,
    /// Snapshots per target.
    #[arg(long, default_value_t = 1000)]
    pub snapshots: usize,
    /// Monitoring targets.
    #[arg(long, default_value_t = 4)]
    pub targets: usize,
    /// Skip damo (only damo-trace's times and throughput).
    #[arg(long)]
    pub no_damo: bool,
}

pub fn run(opts: Options) -> Result<()> {
    let root = workspace_root();
    let dir = root.join(".cache/bench");
    std::fs::create_dir_all(&dir)?;
    cargo(&["build", "--release", "-p", "damo-user", "--bin", "damo-trace"])?;
    let ours = root.join("target/release/damo-trace");
    let damo_bin = if opts.no_damo { None } else { Some(damo_install::ensure(&root)?) };

    let spec = SynthSpec { targets: opts.targets, snapshots_per_target: opts.snapshots, regions: opts.regions, seed: 1 };
    let record = synth::record(spec);
    let nr_regions: usize = record.targets.iter().flat_map(|t| &t.snapshots).map(|s| s.regions.len()).sum();
    println!("record: {} targets, {} snapshots each, {nr_regions} regions", opts.targets, opts.snapshots);

    let files = write_files(&record, &dir)?;
    println!("\nfile sizes:");
    let json_compressed = size(&files.json_compressed);
    for (name, path) in files.all() {
        let bytes = size(path);
        println!("  {name:16} {:>12} B  {:6.2} B/region  {:6.3}× json_compressed", bytes, bytes as f64 / nr_regions as f64, bytes as f64 / json_compressed as f64);
    }

    println!("\nparse throughput (one core, in process, best of 3):");
    for (name, path) in files.all() {
        let data = std::fs::read(path)?;
        let t = best_of(3, || {
            let loaded = load::parse(&data).expect("the bench's own files load");
            std::hint::black_box(loaded.record.targets.len());
        });
        println!("  {name:16} {:>8.1} M regions/s  {:>8.1} MB/s", nr_regions as f64 / t.as_secs_f64() / 1e6, data.len() as f64 / t.as_secs_f64() / 1e6);
    }

    println!("\nreports (wall time, one run each; damo reads damo's formats only):");
    println!("  {:58} {:>10} {:>10} {:>9}", "report", "damo", "damo-trace", "ratio");
    let last_snapshot = (opts.snapshots - 1).to_string();
    for case in cases::all(&last_snapshot) {
        for (format, path) in files.all() {
            let native = format == "damo-trace";
            let ours_time = match time(&ours, &case.ours_args(path), &dir) {
                Ok(t) => t,
                Err(e) => {
                    println!("  {} [{format}]: {e:#}", case.name);
                    continue;
                }
            };
            let label = format!("{} [{format}]", case.name);
            match (&damo_bin, native) {
                (Some(damo), false) => {
                    let theirs = time(damo, &case.damo_args(path), &dir)?;
                    println!("  {label:58} {:>9.2}s {:>9.3}s {:>8.0}×", theirs.as_secs_f64(), ours_time.as_secs_f64(), theirs.as_secs_f64() / ours_time.as_secs_f64());
                }
                _ => println!("  {label:58} {:>10} {:>9.3}s", "-", ours_time.as_secs_f64()),
            }
        }
    }
    Ok(())
}

struct Files {
    native: PathBuf,
    json_compressed: PathBuf,
    perf_script: PathBuf,
}

impl Files {
    fn all(&self) -> [(&'static str, &Path); 3] {
        [("damo-trace", &self.native), ("json_compressed", &self.json_compressed), ("perf_script", &self.perf_script)]
    }
}

fn write_files(record: &Record, dir: &Path) -> Result<Files> {
    let files = Files { native: dir.join("bench.dtr"), json_compressed: dir.join("bench.json_compressed"), perf_script: dir.join("bench.perf_script") };
    let mut writer = native::NativeWriter::new(std::io::BufWriter::new(std::fs::File::create(&files.native)?))?;
    for t in &record.targets {
        for s in &t.snapshots {
            writer.snapshot(t, s)?;
        }
    }
    writer.finish()?;
    for (path, format) in [(&files.json_compressed, DamoFormat::JsonCompressed), (&files.perf_script, DamoFormat::PerfScript)] {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        damo::write(record, format, &mut out).with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(files)
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn best_of(n: usize, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Wall time of one successful run, output discarded.
fn time(program: &Path, args: &[String], dir: &Path) -> Result<Duration> {
    let t = Instant::now();
    let out = std::process::Command::new(program).args(args).current_dir(dir).output().with_context(|| format!("failed to run {}", program.display()))?;
    let elapsed = t.elapsed();
    if !out.status.success() {
        anyhow::bail!("{} {} failed: {}", program.display(), args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(elapsed)
}
