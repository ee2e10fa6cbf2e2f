//! `cargo xtask bench`: damo-trace against damo 3.4.3 on the same generated record, in one
//! run. Prints parse throughput, file sizes and, per report and input format, both tools'
//! wall times and their ratio. A benchmark, not a test: nothing here passes or fails on time.

mod cases;
mod churn;
mod fleet;
mod live;
mod long;
mod profile;
mod stacks;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use damo_record::{
    damo::{self, DamoFormat},
    load,
    model::Record,
    native,
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
    /// Only the profile reports on a 10-minute record with stacks (no damo comparison).
    #[arg(long)]
    pub profile_only: bool,
    /// Only the collector's CPU cost per region event and per stack sample (a native replay
    /// through the recording path; `cargo xtask vm-bench` measures it under real DAMON).
    #[arg(long)]
    pub collector_only: bool,
    /// Only call stacks of a program without frame pointers: damo-trace dwarf and fp against
    /// `perf record --call-graph dwarf` at 99 and 999 Hz (natively, needs root and perf).
    #[arg(long)]
    pub stacks: bool,
    /// Only recording a fork-churning workload (root): damo-trace's side-band, its /proc
    /// fallback and `perf record -g` side by side.
    #[arg(long)]
    pub churn: bool,
    /// Only the Parquet dataset: export speed and size of the 10-minute record, and DuckDB
    /// queries over ten such records.
    #[arg(long)]
    pub fleet: bool,
    /// Only what `top` costs: the live view on a replayed stream at default intervals and
    /// 99 Hz, then (root) `top --plain` next to `record` on the same workload.
    #[arg(long)]
    pub live: bool,
    /// Only the one-pass reports streaming long native records (10 M and 50 M regions): wall
    /// time and peak RSS.
    #[arg(long)]
    pub long: bool,
    /// Only the report table (damo's times beside ours), without the profile reports and the
    /// collector that follow it.
    #[arg(long)]
    pub reports: bool,
    /// Seconds of churn per recorder.
    #[arg(long, default_value_t = 30)]
    pub churn_seconds: u64,
}

/// The collector replay bench (damo-user/benches/collector.rs).
fn collector() -> Result<()> {
    cargo(&["bench", "-p", "damo-user", "--bench", "collector"])
}

pub fn run(opts: Options) -> Result<()> {
    let root = workspace_root();
    let dir = root.join(".cache/bench");
    std::fs::create_dir_all(&dir)?;
    cargo(&["build", "--release", "-p", "damo-user", "--bin", "damo-trace"])?;
    let ours = root.join("target/release/damo-trace");
    if opts.profile_only {
        return profile::run(&ours, &dir);
    }
    if opts.collector_only {
        return collector();
    }
    if opts.fleet {
        return fleet::run(&ours, &dir);
    }
    if opts.stacks {
        return stacks::run(&ours, &dir);
    }
    if opts.churn {
        return churn::run(&ours, &dir, opts.churn_seconds);
    }
    if opts.live {
        return live::run(&ours, &dir);
    }
    if opts.long {
        return long::run(&ours, &dir);
    }
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

    println!("\nreports (wall time: damo one run, damo-trace the best of {RUNS}; damo reads damo's formats only). damo-trace parses a");
    println!("damo file on its first read and keeps a native copy (see damo_record::cache): 'parse' is a run with the");
    println!("cache off, 'first' one that finds the cache empty and stores the copy (what a user meets first), 'cached'");
    println!("one that reads the copy.");
    let (floor, json_bytes) = cases::inflate_floor(&files.json_compressed)?;
    println!("json_compressed inflate-only floor: {:.3}s ({json_bytes} B of JSON; 'floor' = parse / floor).", floor.as_secs_f64());
    let (parse_floor, parse_cold) = cases::parse_floor(&files.json_compressed)?;
    println!("json_compressed parse-only floor: {:.3}s (its JSON, inflated beforehand, parsed snapshot by snapshot on one core: a first", parse_floor.as_secs_f64());
    println!("  read inflates on one core while it parses on the other, so it takes at least the larger of the two floors); {:.3}s the", parse_cold.as_secs_f64());
    println!("  first time.");
    let both = cases::side_by_side_floor(&files.json_compressed)?;
    println!(
        "json_compressed side-by-side floor: {:.3}s = {:.1}× the inflate floor (both floors at once on two threads, nothing handed over:\n  what two busy cores cost each other here, and what a first read cannot beat).",
        both.as_secs_f64(),
        both.as_secs_f64() / floor.as_secs_f64()
    );
    let handover = cases::handover_floor(&files.json_compressed)?;
    println!(
        "json_compressed hand-over floor: {:.3}s = {:.1}× the inflate floor (inflating on one thread into the blocks a first read's parser\n  gets, the other only touching each block's bytes as it comes: inflating plus moving the JSON between the cores).",
        handover.as_secs_f64(),
        handover.as_secs_f64() / floor.as_secs_f64()
    );
    let (read, read_cold) = cases::read_floor(&files.json_compressed)?;
    println!(
        "json_compressed read in process: {:.3}s = {:.1}× the inflate floor ({:.3}s the first time; the file read as a one-pass report's first read\n  reads it, in this process: a report's own process adds its start and end, {:.3}s for `damo-trace --version`, and the report).",
        read.as_secs_f64(),
        read.as_secs_f64() / floor.as_secs_f64(),
        read_cold.as_secs_f64(),
        cases::process_floor(&ours)?.as_secs_f64()
    );
    println!("  {:44} {:>9} {:>9} {:>7} {:>9} {:>7} {:>9} {:>7}", "report", "damo", "parse", "ratio", "first", "ratio", "cached", "ratio");
    let cache = dir.join("cache");
    let _ = std::fs::remove_dir_all(&cache);
    let last_snapshot = (opts.snapshots - 1).to_string();
    let cases = cases::all(&last_snapshot);
    let mut cells: Vec<Cell> = cases.iter().flat_map(|case| files.all().map(|(format, path)| Cell::new(case, format, path))).collect();
    // damo's runs, one a cell; ours in rounds spread between them, so that a burst of other
    // load on this shared host hits one run of many cells, not every run of one.
    let damo_cells: Vec<usize> = (0..cells.len()).filter(|&i| cells[i].reads && cells[i].format != "damo-trace").collect();
    let mut rounds = 0;
    for (n, &i) in damo_cells.iter().enumerate() {
        if let Some(damo) = &damo_bin {
            let cell = &mut cells[i];
            cell.damo = Some(time(damo, &cell.case.damo_args(cell.path), &dir, &[])?);
        }
        while rounds < RUNS && rounds * damo_cells.len() <= n * RUNS {
            ours_round(&ours, &mut cells, &dir, &cache)?;
            rounds += 1;
        }
    }
    while rounds < RUNS {
        ours_round(&ours, &mut cells, &dir, &cache)?;
        rounds += 1;
    }
    for cell in &cells {
        let label = format!("{} [{}]", cell.case.name, cell.format);
        if !cell.reads {
            println!("  {label:44} (damo has no answer without the record's intervals)");
            continue;
        }
        let (p, f, c) = (cell.parse.as_secs_f64(), cell.first.as_secs_f64(), cell.cached.as_secs_f64());
        match cell.damo.map(|d| d.as_secs_f64()) {
            Some(theirs) => print!("  {label:44} {theirs:>8.2}s {p:>8.3}s {:>6.0}× {f:>8.3}s {:>6.0}× {c:>8.3}s {:>6.0}×", theirs / p, theirs / f, theirs / c),
            None => print!("  {label:44} {:>9} {p:>8.3}s {:>7} {f:>8.3}s {:>7} {c:>8.3}s", "-", "", ""),
        }
        match cell.format {
            "json_compressed" => println!("  {:.1}× / {:.1}× floor", p / floor.as_secs_f64(), f / floor.as_secs_f64()),
            _ => println!(),
        }
    }
    if opts.reports {
        return Ok(());
    }
    profile::run(&ours, &dir)?;
    collector()
}

/// One report on one file: damo's time and the best of ours, with the cache off ('parse'),
/// finding it empty ('first') and reading its copy ('cached').
struct Cell<'a> {
    case: &'a cases::Case,
    format: &'static str,
    path: &'a Path,
    /// Whether damo answers this report from this format.
    reads: bool,
    damo: Option<Duration>,
    parse: Duration,
    first: Duration,
    cached: Duration,
}

impl<'a> Cell<'a> {
    fn new(case: &'a cases::Case, format: &'static str, path: &'a Path) -> Self {
        Cell { case, format, path, reads: case.reads(format), damo: None, parse: Duration::MAX, first: Duration::MAX, cached: Duration::MAX }
    }
}

/// One run of ours of every cell: with the cache off, then with it emptied (the first report
/// on the file stores the copy), then reading that copy; each cell keeps its best times.
fn ours_round(ours: &Path, cells: &mut [Cell], dir: &Path, cache: &Path) -> Result<()> {
    let no_cache = [("DAMO_TRACE_NO_CACHE", "1")];
    let with_cache = [("XDG_CACHE_HOME", cache.to_str().unwrap_or(""))];
    for cell in cells.iter_mut().filter(|c| c.reads) {
        let args = cell.case.ours_args(cell.path);
        cell.parse = cell.parse.min(time(ours, &args, dir, &no_cache)?);
        let _ = std::fs::remove_dir_all(cache);
        cell.first = cell.first.min(time(ours, &args, dir, &with_cache)?);
        cell.cached = cell.cached.min(time(ours, &args, dir, &with_cache)?);
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
    // Summarized, as `record` writes its records.
    let mut writer = native::NativeWriter::new(std::io::BufWriter::new(std::fs::File::create(&files.native)?))?.summarizing();
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

/// Runs of ours per cell, the best kept: a run takes 0.01-0.3 s, and on this shared 2-core
/// host one run is mostly the scheduler's noise (3 runs in a row left the ratios moving by a
/// fifth between benches); damo's runs take seconds and run once.
const RUNS: usize = 5;

/// Wall time of one successful run, output discarded.
fn time(program: &Path, args: &[String], dir: &Path, env: &[(&str, &str)]) -> Result<Duration> {
    let t = Instant::now();
    let out = std::process::Command::new(program).args(args).envs(env.iter().copied()).current_dir(dir).output().with_context(|| format!("failed to run {}", program.display()))?;
    let elapsed = t.elapsed();
    if !out.status.success() {
        anyhow::bail!("{} {} failed: {}", program.display(), args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(elapsed)
}
