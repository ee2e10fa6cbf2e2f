//! The reports the benchmark times, as damo and damo-trace spell them.

use std::{
    io::Read,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

pub struct Case {
    pub name: &'static str,
    /// Arguments after `report`, before the input option.
    args: Vec<String>,
}

impl Case {
    pub fn damo_args(&self, input: &Path) -> Vec<String> {
        let mut v = vec!["report".to_owned(), self.args[0].clone()];
        // damo's `report times` takes two inputs (the second is a profile record it ignores).
        if self.args[0] == "times" {
            v.extend(["--inputs".into(), input.display().to_string(), "unused".into()]);
        } else {
            v.extend(["--input".into(), input.display().to_string()]);
        }
        v.extend(self.args[1..].iter().cloned());
        v
    }

    /// `access` needs the record's intervals, which perf_script text does not have.
    pub fn reads(&self, format: &str) -> bool {
        !(self.args[0] == "access" && format == "perf_script")
    }

    pub fn ours_args(&self, input: &Path) -> Vec<String> {
        let mut v = vec!["report".to_owned(), self.args[0].clone(), "--input".into(), input.display().to_string()];
        v.extend(self.args[1..].iter().cloned());
        v
    }
}

fn case(name: &'static str, args: &[&str]) -> Case {
    Case { name, args: args.iter().map(|s| (*s).to_owned()).collect() }
}

pub fn all(last_snapshot: &str) -> Vec<Case> {
    vec![
        case("wss", &["wss"]),
        case("heatmap --output raw", &["heatmap", "--output", "raw"]),
        case("access (last snapshot)", &["access", "--snapshot_idx", last_snapshot, last_snapshot]),
        case("times --access_rate 50% 100%", &["times", "--access_rate", "50%", "100%"]),
    ]
}

/// The inflate-only floor of a `json_compressed` file: the best of 3 times to just inflate it
/// (flate2's backend, the one damo-trace reads it with), and the bytes of JSON it holds. No
/// report on the file can be faster on one core; damo-trace parses on a second core while
/// this one inflates.
pub fn inflate_floor(path: &Path) -> Result<(Duration, u64)> {
    let data = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    let mut best = (Duration::MAX, 0);
    for _ in 0..3 {
        let t = Instant::now();
        let total = inflate_all(&data).with_context(|| format!("failed to inflate {}", path.display()))?;
        best = best.min((t.elapsed(), total));
    }
    Ok(best)
}

/// Inflates `data` (a zlib stream) a block at a time into nothing: its length.
fn inflate_all(data: &[u8]) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut decoder = flate2::read::ZlibDecoder::new(data);
    let mut total = 0u64;
    loop {
        match decoder.read(&mut buf)? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}

/// A `json_compressed` file's bytes, and its JSON.
fn file_and_json(path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let data = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(&data[..]).read_to_end(&mut json).with_context(|| format!("failed to inflate {}", path.display()))?;
    Ok((data, json))
}

/// The side-by-side floor of a `json_compressed` file: the best of 3 times to run both
/// floors at once, the inflating on one thread and the parsing of the JSON inflated
/// beforehand on another, nothing handed between them. What a first read cannot beat on
/// this machine: two cores busy at once slow each other (shared caches and memory).
pub fn side_by_side_floor(path: &Path) -> Result<Duration> {
    let (data, json) = file_and_json(path)?;
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        std::thread::scope(|scope| -> Result<()> {
            let inflating = scope.spawn(|| inflate_all(&data));
            let record = damo_record::damo::json::read(&json).with_context(|| format!("failed to parse the JSON of {}", path.display()))?;
            std::hint::black_box(record.targets.len());
            inflating.join().map_err(|_| anyhow::anyhow!("the inflating thread panicked"))?.with_context(|| format!("failed to inflate {}", path.display()))?;
            Ok(())
        })?;
        best = best.min(t.elapsed());
    }
    Ok(best)
}

/// The hand-over floor of a `json_compressed` file: the best of 3 times to inflate it on one
/// thread into the blocks a first read's parser gets (damo_record's own inflating, recycled
/// blocks and all) while the other thread only reads a byte of every 64 of each block as it
/// comes and hands it back. What moving the JSON from one core's cache to the other's costs
/// on top of inflating it, with no parsing at all.
pub fn handover_floor(path: &Path) -> Result<Duration> {
    let data = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let touched = damo_record::damo::json::inflate::inflating(&data, |blocks, spent| -> std::io::Result<u64> {
            let mut sum = 0u64;
            for block in blocks {
                let block = block?;
                sum += block.iter().step_by(64).map(|&b| u64::from(b)).sum::<u64>();
                let _ = spent.try_send(block);
            }
            Ok(sum)
        });
        std::hint::black_box(touched.with_context(|| format!("failed to inflate {}", path.display()))?);
        best = best.min(t.elapsed());
    }
    Ok(best)
}

/// The parse-only floor of a `json_compressed` file: the best of 3 times to parse its JSON,
/// inflated beforehand, on one core, snapshot by snapshot as a first read parses it beside
/// the inflating core (damo-trace's scanner, each snapshot's regions' list reused), and the
/// first of them. A first report on two cores takes at least the larger of this and
/// [`inflate_floor`].
pub fn parse_floor(path: &Path) -> Result<(Duration, Duration)> {
    let (_, json) = file_and_json(path)?;
    best_and_first(|| {
        let parsed = damo_record::damo::stream_json(&json, false, &mut damo_record::budget::Meter::new(), &mut |_, _, snapshot| snapshot.regions);
        parsed.ok().flatten().with_context(|| format!("failed to parse the JSON of {}", path.display()))
    })
}

/// The best of 3 runs of `run` and the first (the one whose memory is fresh pages); what a
/// run made is freed after its time is taken.
fn best_and_first<T>(mut run: impl FnMut() -> Result<T>) -> Result<(Duration, Duration)> {
    let (mut best, mut first) = (Duration::MAX, None);
    for _ in 0..3 {
        let t = Instant::now();
        let made = run()?;
        let elapsed = t.elapsed();
        std::hint::black_box(&made);
        best = best.min(elapsed);
        first.get_or_insert(elapsed);
    }
    Ok((best, first.unwrap_or(best)))
}

/// The in-process read of a `json_compressed` file: the best of 3 times, and the first, to
/// read it as a one-pass report's first read does (mapped, inflated on one thread while the
/// other scans it snapshot by snapshot), in the bench's own process, handing the snapshots to
/// no report. What a report's process spends past it is its own start and end and the
/// report; what it spends past the floors above is the pipeline's.
pub fn read_floor(path: &Path) -> Result<(Duration, Duration)> {
    best_and_first(|| damo_record::first_read::stream(path, None, |_, _, _| {}).ok().flatten().with_context(|| format!("failed to read {}", path.display())))
}

/// The start and end of a damo-trace process that does nothing (`--version`), its output
/// read as a report's is: the best of 5.
pub fn process_floor(ours: &Path) -> Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let out = std::process::Command::new(ours).arg("--version").output().with_context(|| format!("failed to run {}", ours.display()))?;
        best = best.min(t.elapsed());
        anyhow::ensure!(out.status.success(), "{} --version failed", ours.display());
    }
    Ok(best)
}
