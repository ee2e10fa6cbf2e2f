//! `damo-trace replay <record>`: drives memory accesses that reproduce a record's access
//! pattern, like `damo replay`. Each snapshot's time is cut into as many slices as DAMON
//! samples per aggregation (aggr / sample); in slice `i` one byte of every 4 KiB page of each
//! region whose `nr_accesses` is above `i` is written, so a region is touched in as many
//! sampling slices as DAMON saw it accessed. The addresses are the record's, offset into
//! anonymous `MAP_NORESERVE` mappings of the merged ranges the regions ever covered (a vaddr
//! record's span crosses terabytes of unmapped gap; its regions do not), so the memory used
//! is at most the bytes of those ranges, which `--max_memory` bounds.

use std::{
    io::Write,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use damo_record::{
    model::{Intervals, Snapshot, TargetRecord},
    units,
};

pub const PAGE: u64 = 4096;

#[derive(Debug, clap::Args)]
#[command(rename_all = "snake_case")]
pub struct Args {
    /// The record to replay (any format damo-trace reads).
    #[arg(default_value = "damon.data", value_name = "FILE")]
    pub input: PathBuf,
    /// Replay this many times faster than recorded (1: the recorded speed).
    #[arg(long, default_value = "1")]
    pub speed: f64,
    /// Seconds between progress lines.
    #[arg(long, default_value = "3s")]
    pub progress_notice_interval: String,
    /// The most memory the replay may map (the merged ranges the regions cover), 4G by default.
    #[arg(long, default_value = "4G")]
    pub max_memory: String,
    /// Which target of the record (its index in `report record_info`'s order).
    #[arg(long, default_value_t = 0)]
    pub target: usize,
    /// Measure how fast the replayer touches memory instead of replaying.
    #[arg(long)]
    pub test_perf: bool,
    /// Memory for --test_perf.
    #[arg(long, default_value = "1 GiB")]
    pub test_perf_sz_mem: String,
    /// Runtime of --test_perf.
    #[arg(long, default_value = "1 m")]
    pub test_perf_runtime: String,
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        bail!("--speed must be a number above 0");
    }
    let notice = units::parse_duration(&args.progress_notice_interval, units::TimeUnit::S).context("bad --progress_notice_interval")?;
    let max_memory = units::parse_bytes(&args.max_memory).context("bad --max_memory")?;
    if args.test_perf {
        let size = units::parse_bytes(&args.test_perf_sz_mem).context("bad --test_perf_sz_mem")?;
        let runtime = units::parse_duration(&args.test_perf_runtime, units::TimeUnit::S).context("bad --test_perf_runtime")?;
        return test_perf(size, runtime, max_memory, out);
    }
    crate::report::options::memory_limit_from_env()?;
    let record = crate::report::options::load_record(&args.input)?;
    let nr_targets = record.targets.len();
    let target = record.targets.get(args.target).with_context(|| format!("{} has {nr_targets} targets; there is no target {}", args.input.display(), args.target))?;
    if target.snapshots.is_empty() {
        bail!("no snapshots to replay in {}", args.input.display());
    }
    let intervals = intervals_of(target)?;
    let mut memory = Memory::map(&covered_ranges(target), max_memory)?;
    // Where each range landed, so a recording of the replay maps back to the record's addresses.
    for (start, end, base) in memory.placements() {
        writeln!(out, "replaying {start:#x}-{end:#x} at {base:#x}")?;
    }
    out.flush()?;
    let started = Instant::now();
    let mut next_notice = started + notice;
    let mut behind = Duration::ZERO;
    for (idx, snapshot) in target.snapshots.iter().enumerate() {
        behind = behind.max(replay_snapshot(&mut memory, snapshot, intervals, args.speed));
        if Instant::now() >= next_notice {
            writeln!(out, "{idx}/{} snapshots replayed in {:.3} seconds", target.snapshots.len(), started.elapsed().as_secs_f64())?;
            out.flush()?;
            next_notice += notice;
        }
    }
    writeln!(out, "all snapshots are replayed")?;
    if behind > Duration::ZERO {
        writeln!(out, "touching fell up to {:.3} s behind a snapshot's sampling slices: the replay ran slower than asked", behind.as_secs_f64())?;
    }
    Ok(())
}

/// The record's intervals; a record that does not say them (perf_script) has its aggregation
/// interval in each snapshot's span and DAMON's default sampling interval, 5 ms.
fn intervals_of(target: &TargetRecord) -> Result<Intervals> {
    if let Some(i) = target.intervals.filter(|i| i.max_nr_accesses() > 0) {
        return Ok(i);
    }
    let s = &target.snapshots[0];
    let aggr_us = s.end_ns.saturating_sub(s.start_ns) / 1000;
    if aggr_us < 5_000 {
        bail!("the record says no monitoring intervals and its snapshots span {aggr_us} µs: cannot tell how often DAMON sampled");
    }
    Ok(Intervals { sample_us: 5_000, aggr_us, ops_update_us: 1_000_000 })
}

/// The page-aligned ranges the target's regions cover in any snapshot, merged and sorted.
pub fn covered_ranges(target: &TargetRecord) -> Vec<(u64, u64)> {
    let ranges = target.snapshots.iter().flat_map(|s| &s.regions).filter(|r| r.end > r.start).map(|r| (r.start / PAGE * PAGE, r.end.div_ceil(PAGE) * PAGE)).collect();
    damo_report::address_union::union(ranges)
}

/// Anonymous mappings standing for the record's address ranges.
pub struct Memory {
    /// (record start, record end, mapping base), sorted by start.
    maps: Vec<(u64, u64, *mut u8)>,
}

impl Memory {
    /// Maps `ranges` (sorted, disjoint), refusing more than `max_bytes` in all.
    pub fn map(ranges: &[(u64, u64)], max_bytes: u64) -> Result<Self> {
        let total: u64 = ranges.iter().map(|(s, e)| e - s).sum();
        if total > max_bytes {
            bail!(
                "the record's regions cover {} ({} ranges), more than --max_memory {}: replaying could make all of it resident",
                units::format_sz(total as f64, false),
                ranges.len(),
                units::format_sz(max_bytes as f64, false)
            );
        }
        let mut memory = Self { maps: Vec::with_capacity(ranges.len()) };
        for &(start, end) in ranges {
            let len = usize::try_from(end - start).context("a range does not fit the address space")?;
            // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
            let base = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1, 0) };
            if base == libc::MAP_FAILED {
                bail!("failed to map {} for the range {start:#x}-{end:#x}: {}", units::format_sz(len as f64, false), std::io::Error::last_os_error());
            }
            memory.maps.push((start, end, base.cast()));
        }
        Ok(memory)
    }

    /// (record start, record end, address of the mapping standing for it).
    pub fn placements(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.maps.iter().map(|&(s, e, base)| (s, e, base as u64))
    }

    /// Writes one byte in the middle of every page of `[start, end)` (record addresses).
    pub fn touch(&mut self, start: u64, end: u64) {
        for &(ms, me, base) in &self.maps {
            let (s, e) = (start.max(ms), end.min(me));
            let mut page = s / PAGE * PAGE;
            while page < e {
                // SAFETY: `page` is inside this mapping ([ms, me) is mapped at `base`).
                unsafe { std::ptr::write_volatile(base.add((page - ms + PAGE / 2) as usize), 1) };
                page += PAGE;
            }
        }
    }

    /// Whether each page of `[start, end)` (record addresses, inside one mapping) is resident.
    pub fn resident(&self, start: u64, end: u64) -> Result<Vec<bool>> {
        let &(ms, _, base) = self.maps.iter().find(|(ms, me, _)| *ms <= start && end <= *me).context("the range is not mapped")?;
        let pages = end.div_ceil(PAGE) - start / PAGE;
        let mut vec = vec![0u8; pages as usize];
        // SAFETY: the range lies inside a mapping we made; `vec` has a byte per page.
        let rc = unsafe { libc::mincore(base.add((start / PAGE * PAGE - ms) as usize).cast(), (pages * PAGE) as usize, vec.as_mut_ptr()) };
        if rc != 0 {
            bail!("mincore failed: {}", std::io::Error::last_os_error());
        }
        Ok(vec.into_iter().map(|b| b & 1 == 1).collect())
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        for &(s, e, base) in &self.maps {
            // SAFETY: unmapping what `map` mapped, once.
            unsafe { libc::munmap(base.cast(), (e - s) as usize) };
        }
    }
}

/// Replays one snapshot at `speed`; gives how far behind its slices the touching fell (a
/// sleep's overshoot is not counted: the next slice's wait absorbs it).
pub fn replay_snapshot(memory: &mut Memory, snapshot: &Snapshot, intervals: Intervals, speed: f64) -> Duration {
    let span = Duration::from_nanos(snapshot.end_ns.saturating_sub(snapshot.start_ns)).div_f64(speed);
    let slices = intervals.max_nr_accesses().max(1);
    let slice = span / u32::try_from(slices).unwrap_or(u32::MAX);
    let started = Instant::now();
    let mut behind = Duration::ZERO;
    for i in 0..slices {
        for r in snapshot.regions.iter().filter(|r| u64::from(r.nr_accesses) > i) {
            memory.touch(r.start, r.end);
        }
        let due = slice * u32::try_from(i + 1).unwrap_or(u32::MAX);
        let now = started.elapsed();
        match due.checked_sub(now) {
            Some(wait) => std::thread::sleep(wait),
            None => behind = behind.max(now - due),
        }
    }
    behind
}

/// damo's `--test_perf`: how many bytes a second the replayer touches, once a second.
fn test_perf(size: u64, runtime: Duration, max_memory: u64, out: &mut dyn Write) -> Result<()> {
    let size = size.div_ceil(PAGE) * PAGE;
    let mut memory = Memory::map(&[(0, size)], max_memory)?;
    let started = Instant::now();
    let (mut window, mut touched) = (Instant::now(), 0u64);
    while started.elapsed() < runtime {
        memory.touch(0, size);
        touched += size;
        if window.elapsed() >= Duration::from_secs(1) {
            writeln!(out, "replayer can access {} memory per second", units::format_sz(touched as f64 / window.elapsed().as_secs_f64(), false))?;
            out.flush()?;
            (window, touched) = (Instant::now(), 0);
        }
    }
    Ok(())
}
