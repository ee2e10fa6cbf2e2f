//! The one-pass reports (`wss`, `nr_regions`, `times`, `record_info`, `access`), `heatmap`
//! (a pass or three), `phases` and `holistic` (several) and the times `profile` selects
//! stream damo-trace records from their files;
//! `DAMO_TRACE_NO_STREAM=1` loads them whole instead. Both must print the same bytes, on
//! whole, cut and damaged records with interleaved targets.

use std::{path::Path, process::Command};

use damo_record::{
    model::{Losses, Metadata, Record, StackSample},
    native::NativeWriter,
    synth::{self, SynthSpec},
};

/// Three targets written interleaved, as a recording writes them (ending with what their
/// snapshots add up to), with what `record_info` reports besides snapshots.
fn native_record(spec: SynthSpec) -> Vec<u8> {
    native_record_with(spec, true)
}

/// [`native_record`], with or without the summaries at its end (a recording before them had
/// none).
fn native_record_with(spec: SynthSpec, summarize: bool) -> Vec<u8> {
    let record: Record = synth::record(spec);
    let mut w = NativeWriter::new(Vec::new()).unwrap();
    if summarize {
        w = w.summarizing();
    }
    let metadata = Metadata {
        recorder: "damo-trace test".into(),
        command_line: vec!["damo-trace".into(), "record".into()],
        hostname: "box".into(),
        kernel_release: "6.12".into(),
        nr_cpus: 2,
        sample_hz: 99,
        realtime_offset_ns: Some(1_700_000_000_000_000_000),
        damon: None,
    };
    w.metadata(&metadata).unwrap();
    for i in 0..spec.snapshots_per_target {
        for t in &record.targets {
            w.snapshot(t, &t.snapshots[i]).unwrap();
        }
        if i % 50 == 0 {
            w.stacks(&[StackSample { ts_ns: 100_000_000_000 + i as u64, pid: 1, tid: 1, cpu: 0, comm: "app".into(), user: vec![], kernel: vec![] }]).unwrap();
        }
    }
    w.losses(&Losses { unnormalized_samples: 3, ..Default::default() }).unwrap();
    w.finish().unwrap()
}

/// `bytes` with the bits of `mask` flipped in the byte at `at`.
fn corrupted(bytes: &[u8], at: usize, mask: u8) -> Vec<u8> {
    let mut corrupt = bytes.to_vec();
    corrupt[at] ^= mask;
    corrupt
}

/// Status, stdout and stderr of `damo-trace report <args>`, streamed or loaded whole.
fn run(dir: &Path, args: &[&str], stream: bool, limit: Option<&str>) -> (bool, String, String) {
    run_command(dir, &[&["report"], args].concat(), stream, limit)
}

/// [`run`] for any command: `damo-trace <args>`.
fn run_command(dir: &Path, args: &[&str], stream: bool, limit: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_damo-trace"));
    cmd.args(args).current_dir(dir).env_remove("DAMO_TRACE_NO_STREAM").env_remove("DAMO_TRACE_MEMORY_LIMIT");
    if !stream {
        cmd.env("DAMO_TRACE_NO_STREAM", "1");
    }
    if let Some(l) = limit {
        cmd.env("DAMO_TRACE_MEMORY_LIMIT", l);
    }
    let out = cmd.output().expect("damo-trace runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const REPORTS: &[&[&str]] = &[
    &["wss"],
    &["wss", "--sortby", "time", "--all_wss", "--raw_number"],
    &["wss", "--per_target", "--work_time", "300000", "--exclude_samples", "5", "-r", "0", "101", "10"],
    &["wss", "-t", "10", "--sz_thres", "8192", "--nr_cols_bar", "0"],
    &["nr_regions"],
    &["nr_regions", "--sortby", "time", "-r", "0", "101", "20"],
    &["times"],
    &["times", "--access_rate", "50%", "100%"],
    &["times", "--age", "1s", "max", "--sz_region", "16K", "max"],
    &["times", "--address", "0x555500000000", "0x555500800000", "--address", "0x565500000000", "0x565500400000"],
    &["times", "--snapshot_idx", "3", "40", "--snapshot_time", "100500000000", "109000000000", "--sz_snapshot", "1M", "max"],
    &["times", "--temperature", "0", "9223372036854775807"],
    &["record_info"],
    &["record_info", "--raw_numbers"],
    &["heatmap", "--guide"],
    &["heatmap", "--guide_human"],
    &["heatmap", "--draw_range", "hottest"],
    &["heatmap", "--draw_range", "all", "--output", "raw", "--resol", "30", "40"],
    &["heatmap", "--tid", "2", "--draw_range", "all", "--output", "raw", "--resol", "50", "20", "--abs_time", "--abs_addr"],
    &["heatmap", "--address_range", "4K", "1M", "guided", "--output", "raw", "--resol", "20", "20"],
    &["heatmap", "--tid", "1", "--time_range", "1s", "5s", "guided", "--draw_range", "hottest", "--stdout_colorset", "emotion"],
    &["heatmap"],
    &["heatmap", "--output", "raw", "--resol", "30", "40", "--abs_addr"],
    &["heatmap", "--tid", "2", "--output", "raw", "--resol", "20", "20"],
    &["heatmap", "--sort_temperature", "--output", "raw", "--resol", "20", "30"],
    &["heatmap", "--sort_temperature", "--temperature_weights", "2", "0", "--tid", "1", "--draw_range", "all", "--output", "raw", "--resol", "10", "40"],
    &["profile"],
    &["profile", "--access_rate", "50%", "100%", "--json"],
    &["profile", "--sz_region", "16K", "max", "--snapshot_idx", "3", "40"],
    &["access"],
    &["access", "--snapshot_idx", "119", "119"],
    &["access", "--snapshot_idx", "3", "5", "--snapshot_idx", "60", "61", "--json"],
    &["access", "--snapshot_time", "100500000000", "101000000000", "--sz_region", "8K", "max", "--style", "temperature-sz-hist"],
    &["raw", "--snapshot_idx", "0", "0"],
    &["phases", "--json"],
    &["phases", "--min_phase", "500ms", "--max_phases", "4"],
];

#[test]
fn streamed_reports_print_what_loaded_ones_print() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = SynthSpec { targets: 3, snapshots_per_target: 120, regions: 80, seed: 3 };
    let bytes = native_record(spec);
    // A heatmap plans its passes from the summaries at the end; damage before them must give
    // what a pass over the intact part gives, as it does without them.
    let plain = native_record_with(spec, false);
    let inputs = [
        ("whole.dtr", bytes.clone()),
        ("cut.dtr", bytes[..bytes.len() * 2 / 3].to_vec()),
        ("corrupt.dtr", corrupted(&bytes, bytes.len() / 2, 0x40)),
        ("short.dtr", bytes[..200].to_vec()),
        ("plain.dtr", plain.clone()),
        ("plain-corrupt.dtr", corrupted(&plain, plain.len() / 2, 0x40)),
    ];
    for (name, data) in &inputs {
        std::fs::write(tmp.path().join(name), data).unwrap();
        for report in REPORTS {
            let mut args = report.to_vec();
            args.extend(["-i", name]);
            if report[0] == "times" {
                args.truncate(args.len() - 2);
                args.extend(["--input", name]);
            }
            let streamed = run(tmp.path(), &args, true, None);
            let loaded = run(tmp.path(), &args, false, None);
            assert_eq!(streamed, loaded, "report {args:?}: streamed (left) and loaded whole (right) differ");
            if name.starts_with("whole") || *name == "plain.dtr" {
                assert!(streamed.0 && !streamed.1.is_empty(), "report {args:?} printed nothing: {}", streamed.2);
            }
        }
    }
}

/// A record whose snapshots need 20 MB in memory reports within a 4 MB limit when streamed,
/// and fails clearly when loaded whole: the streaming path is the one taken.
#[test]
fn a_record_larger_than_the_memory_limit_streams() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = native_record(SynthSpec { targets: 2, snapshots_per_target: 400, regions: 1000, seed: 8 });
    std::fs::write(tmp.path().join("big.dtr"), &bytes).unwrap();
    let heatmap = ["heatmap", "--draw_range", "hottest", "--output", "raw", "--resol", "100", "100"];
    let bands = ["heatmap", "--output", "raw", "--resol", "100", "100"];
    let profile = ["profile", "--access_rate", "10%", "100%"];
    let sorted = ["heatmap", "--sort_temperature", "--output", "raw", "--resol", "100", "100"];
    for report in [&["wss"][..], &["nr_regions"], &["record_info"], &heatmap, &bands, &sorted, &profile, &["phases", "--json"], &["access", "--snapshot_idx", "399", "399"]] {
        let mut args = report.to_vec();
        args.extend(["-i", "big.dtr"]);
        let (ok, out, err) = run(tmp.path(), &args, true, Some("4M"));
        assert!(ok && !out.is_empty(), "report {args:?} streamed within 4 MB: {err}");
        let (ok, _, err) = run(tmp.path(), &args, false, Some("4M"));
        assert!(!ok && err.contains("memory limit"), "report {args:?} loaded whole must not fit in 4 MB: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
}

/// `adjust` streams the record in and holds only what it writes: the same file as when it
/// loads the record whole, on whole, cut and damaged records; and a record that does not fit
/// in the memory limit is adjusted to a longer interval within it.
#[test]
fn adjust_streams_the_record_in() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = native_record(SynthSpec { targets: 3, snapshots_per_target: 120, regions: 80, seed: 4 });
    let inputs = [("whole.dtr", bytes.clone()), ("cut.dtr", bytes[..bytes.len() * 2 / 3].to_vec()), ("corrupt.dtr", corrupted(&bytes, bytes.len() / 2, 0x40))];
    let options: [&[&str]; 3] = [
        &["--aggregate_interval", "1s", "--skip", "3", "--output_type", "json"],
        &["--aggregate_interval", "350ms", "--access_rate", "10%", "100%", "--output_type", "json"],
        &["--snapshot_idx", "5", "30", "--output_type", "perf_script"],
    ];
    for (name, data) in &inputs {
        std::fs::write(tmp.path().join(name), data).unwrap();
        for (i, extra) in options.iter().enumerate() {
            let adjusted = |stream: bool| {
                let out = format!("{name}-{i}-{stream}.out");
                let status = run_command(tmp.path(), &[&["adjust", "-i", name, "-o", &out], *extra].concat(), stream, None);
                (status, std::fs::read(tmp.path().join(&out)).ok())
            };
            let (streamed, loaded) = (adjusted(true), adjusted(false));
            assert_eq!(streamed.0, loaded.0, "adjust {name} {extra:?}: status and messages, streamed (left) and loaded whole (right)");
            assert!(streamed.1 == loaded.1, "adjust {name} {extra:?}: the files written streamed and loaded whole differ");
            assert!(streamed.0 .0 && streamed.1.as_ref().is_some_and(|f| f.len() > 100), "adjust {name} {extra:?} wrote nothing: {}", streamed.0 .2);
        }
    }
    // 20 MB of snapshots, adjusted to a twentieth of their number within a 4 MB limit: what
    // is held, each target's run of 20 snapshots and the snapshots made, is charged.
    std::fs::write(tmp.path().join("big.dtr"), native_record(SynthSpec { targets: 2, snapshots_per_target: 400, regions: 1000, seed: 8 })).unwrap();
    let args = ["adjust", "-i", "big.dtr", "-o", "big.out", "--aggregate_interval", "2s", "--force"];
    let (ok, _, err) = run_command(tmp.path(), &args, true, Some("4M"));
    assert!(ok, "adjust streamed within 4 MB: {err}");
    let (ok, _, err) = run_command(tmp.path(), &args, false, Some("4M"));
    assert!(!ok && err.contains("memory limit"), "adjust loading the record whole must not fit in 4 MB: {err}");
}

/// A holistic page streamed is the page loaded whole, byte for byte: on whole, cut and
/// damaged records, and on one where nothing was accessed (the maps then draw the guide's
/// ranges, not hot bands).
#[test]
fn streamed_holistic_pages_are_the_loaded_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = native_record(SynthSpec { targets: 3, snapshots_per_target: 120, regions: 80, seed: 5 });
    let mut cold: Record = synth::record(SynthSpec { targets: 2, snapshots_per_target: 60, regions: 40, seed: 6 });
    cold.targets.iter_mut().flat_map(|t| &mut t.snapshots).flat_map(|s| &mut s.regions).for_each(|r| r.nr_accesses = 0);
    let mut w = NativeWriter::new(Vec::new()).unwrap();
    for t in &cold.targets {
        for s in &t.snapshots {
            w.snapshot(t, s).unwrap();
        }
    }
    let inputs = [("whole.dtr", bytes.clone()), ("cut.dtr", bytes[..bytes.len() / 2].to_vec()), ("corrupt.dtr", corrupted(&bytes, bytes.len() / 3, 0x10)), ("cold.dtr", w.finish().unwrap())];
    for (name, data) in &inputs {
        std::fs::write(tmp.path().join(name), data).unwrap();
        for page in ["page.svg", "page.html"] {
            let mut pages = Vec::new();
            for stream in [true, false] {
                let (ok, _, err) = run(tmp.path(), &["holistic", "--min_phase", "500ms", "-i", name, "-o", page], stream, None);
                assert!(ok, "holistic -i {name} -o {page} (streamed: {stream}): {err}");
                pages.push(std::fs::read(tmp.path().join(page)).unwrap());
            }
            assert!(pages[0] == pages[1], "holistic -i {name} -o {page}: the streamed and loaded pages differ");
        }
    }
}

/// A heatmap image streamed is the image loaded whole, byte for byte.
#[test]
fn streamed_heatmap_images_are_the_loaded_ones() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("r.dtr"), native_record(SynthSpec { targets: 2, snapshots_per_target: 60, regions: 50, seed: 11 })).unwrap();
    let mut images = Vec::new();
    for (stream, name) in [(true, "streamed.svg"), (false, "loaded.svg")] {
        let (ok, _, err) = run(tmp.path(), &["heatmap", "--draw_range", "all", "--output", name, "-i", "r.dtr"], stream, None);
        assert!(ok, "heatmap --output {name}: {err}");
        images.push(std::fs::read(tmp.path().join(name)).unwrap());
    }
    assert!(images[0] == images[1], "the streamed and loaded images differ");
    let args = ["heatmap", "--tid", "9", "--draw_range", "hottest", "-i", "r.dtr"];
    let streamed = run(tmp.path(), &args, true, None);
    assert!(!streamed.0 && streamed.2.lines().count() == 1, "an unknown target fails in one line: {}", streamed.2);
    assert_eq!(streamed, run(tmp.path(), &args, false, None));
}

/// A record made by a real recording (tests/data/vm/callers.dtr, in the project's VM).
#[test]
fn a_recorded_record_reports_the_same_streamed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vm");
    let reports: &[&[&str]] = &[
        &["heatmap", "--guide"],
        &["heatmap", "--draw_range", "hottest", "--output", "raw"],
        &["heatmap", "--draw_range", "all"],
        &["heatmap", "--output", "raw"],
        &["profile", "--access_rate", "50%", "100%"],
        &["heatmap", "--address_range", "0", "64M", "guided", "--output", "raw", "--resol", "100", "64"],
        &["access", "--snapshot_idx", "100", "101"],
        &["access", "--json", "--snapshot_idx", "0", "0"],
        &["phases"],
        &["phases", "--json", "--min_phase", "300ms"],
    ];
    for report in reports {
        let mut args = report.to_vec();
        args.extend(["-i", "callers.dtr"]);
        let streamed = run(&dir, &args, true, None);
        assert!(streamed.0 && !streamed.1.is_empty(), "report {args:?}: {}", streamed.2);
        assert_eq!(streamed, run(&dir, &args, false, None), "report {args:?}: streamed (left) and loaded whole (right) differ");
    }
}

/// A big damo file streams from its cached native copy once a report has parsed it: within
/// a memory limit that loading it whole does not fit, with the same output. A damaged copy
/// is removed with a clear error, and the next report parses the file again.
#[test]
fn a_cached_damo_file_streams_from_its_native_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let record = synth::record(SynthSpec { targets: 2, snapshots_per_target: 400, regions: 200, seed: 12 });
    let path = tmp.path().join("big.perf_script");
    damo_record::damo::write(&record, damo_record::damo::DamoFormat::PerfScript, &mut std::fs::File::create(&path).unwrap()).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() >= damo_record::cache::MIN_SIZE);
    let cache = tmp.path().join("cache");
    let run_cached = |args: &[&str], stream: bool, limit: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_damo-trace"));
        cmd.arg("report").args(args).args(["-i", "big.perf_script"]).current_dir(tmp.path()).env("XDG_CACHE_HOME", &cache).env_remove("DAMO_TRACE_NO_CACHE").env_remove("DAMO_TRACE_MEMORY_LIMIT");
        cmd.env_remove("DAMO_TRACE_NO_STREAM");
        if !stream {
            cmd.env("DAMO_TRACE_NO_STREAM", "1");
        }
        if let Some(l) = limit {
            cmd.env("DAMO_TRACE_MEMORY_LIMIT", l);
        }
        let out = cmd.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let parsed = run_cached(&["wss"], true, None);
    assert!(parsed.0 && !parsed.1.is_empty(), "{}", parsed.2);
    let entries = cache.join("damo-trace/converted");
    let entry = std::fs::read_dir(&entries).unwrap().next().expect("the first report stored a copy").unwrap().path();
    // The heatmaps read it in several passes; damo starts a perf-script trace's first
    // snapshot where the whole trace says (the mean duration before its end).
    let heatmaps: [&[&str]; 4] =
        [&["heatmap", "--output", "raw"], &["heatmap", "--output", "raw", "--draw_range", "all"], &["heatmap", "--output", "raw", "--draw_range", "hottest"], &["heatmap", "--guide"]];
    for report in [&["wss"][..], &["times", "--access_rate", "50%", "100%"], &["nr_regions"], &["record_info"]].into_iter().chain(heatmaps) {
        let streamed = run_cached(report, true, Some("4M"));
        assert!(streamed.0, "report {report:?} streams the cached copy within 4 MB: {}", streamed.2);
        let loaded = run_cached(report, false, None);
        assert_eq!(streamed, loaded, "report {report:?}: streamed from the cache (left) and loaded whole (right) differ");
        let (ok, _, err) = run_cached(report, false, Some("4M"));
        assert!(!ok && err.contains("memory limit"), "report {report:?} loaded whole must not fit in 4 MB: {err}");
    }
    // A copy cut short (as by a disk fault): one clear error, the copy gone, then parsed again.
    let copy = std::fs::read(&entry).unwrap();
    std::fs::write(&entry, &copy[..copy.len() / 2]).unwrap();
    let damaged = run_cached(&["wss"], true, None);
    assert!(!damaged.0 && damaged.2.contains("cached copy is damaged and was removed") && damaged.2.lines().count() == 1, "{:?}", damaged);
    assert!(!entry.exists(), "the damaged copy is removed");
    assert_eq!(run_cached(&["wss"], true, None), parsed, "the next report parses the file again");
    // A heatmap plans its passes from the summaries ahead of the snapshots, and its passes
    // still find the cut past them.
    std::fs::write(&entry, &copy[..copy.len() * 3 / 4]).unwrap();
    let damaged = run_cached(&["heatmap", "--output", "raw"], true, None);
    assert!(!damaged.0 && damaged.2.contains("cached copy is damaged and was removed") && damaged.2.lines().count() == 1, "{:?}", damaged);
    assert!(!entry.exists(), "the damaged copy is removed");
}

/// `damo-trace report <args> -i <input>` in `dir` with `env`, streamed or loaded whole.
fn run_with(dir: &Path, args: &[&str], input: &str, stream: bool, env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_damo-trace"));
    cmd.arg("report").args(args).args(["-i", input]).current_dir(dir);
    for var in ["DAMO_TRACE_NO_STREAM", "DAMO_TRACE_MEMORY_LIMIT", "DAMO_TRACE_NO_CACHE", "XDG_CACHE_HOME"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    if !stream {
        cmd.env("DAMO_TRACE_NO_STREAM", "1");
    }
    let out = cmd.output().expect("damo-trace runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// damo's JSON files stream on their first read (the one-pass reports take each snapshot as
/// it is parsed; the others read a native copy made by that parse): the same bytes as a whole
/// load, within a memory limit the whole load does not fit, for documents the scanner reads
/// and for one it leaves to serde. With the cache on, the first read stores the copy the
/// next reads stream.
#[test]
fn a_damo_json_file_streams_on_its_first_read() {
    use damo_record::damo::{self, DamoFormat};
    let tmp = tempfile::tempdir().unwrap();
    let record = synth::record(SynthSpec { targets: 3, snapshots_per_target: 120, regions: 80, seed: 3 });
    damo::write(&record, DamoFormat::JsonCompressed, &mut std::fs::File::create(tmp.path().join("first.json_compressed")).unwrap()).unwrap();
    let mut json = Vec::new();
    damo::json::write(&record, &mut json).unwrap();
    std::fs::write(tmp.path().join("first.json"), &json).unwrap();
    // A region key damo does not write: the scanner stops at the last snapshot, after it has
    // handed over all the others, and serde reads the file whole.
    let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let last = value[2]["snapshots"].as_array().unwrap().len() - 1;
    value[2]["snapshots"][last]["regions"][0].as_object_mut().unwrap().insert("note".into(), 1.into());
    std::fs::write(tmp.path().join("other.json"), serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    let no_cache = [("DAMO_TRACE_NO_CACHE", "1")];
    for input in ["first.json_compressed", "first.json", "other.json"] {
        for (i, report) in REPORTS.iter().enumerate() {
            if input != "first.json_compressed" && i % 3 != 0 {
                continue;
            }
            let streamed = run_with(tmp.path(), report, input, true, &no_cache);
            // damo's records hold no stack samples to profile.
            assert!(report[0] == "profile" || (streamed.0 && !streamed.1.is_empty()), "report {report:?} of {input}: {}", streamed.2);
            assert_eq!(streamed, run_with(tmp.path(), report, input, false, &no_cache), "report {report:?} of {input}: streamed (left) and loaded whole (right) differ");
        }
    }
    // The record takes ~6 MB loaded whole.
    for report in [&["wss"][..], &["times", "--access_rate", "50%", "100%"], &["access", "--snapshot_idx", "7", "7"], &["record_info"]] {
        let limited = [("DAMO_TRACE_NO_CACHE", "1"), ("DAMO_TRACE_MEMORY_LIMIT", "2M")];
        let streamed = run_with(tmp.path(), report, "first.json_compressed", true, &limited);
        assert_eq!(streamed, run_with(tmp.path(), report, "first.json_compressed", false, &no_cache), "report {report:?} streams within 2 MB");
        let (ok, _, err) = run_with(tmp.path(), report, "first.json_compressed", false, &limited);
        assert!(!ok && err.contains("memory limit"), "report {report:?} loaded whole must not fit in 2 MB: {err}");
    }
    // Cached: a one-pass report's first read stores the copy, as does a heatmap's.
    assert!(json.len() as u64 >= damo_record::cache::MIN_SIZE, "{} bytes: too small to be cached", json.len());
    for (first, then) in [(&["wss"][..], &["heatmap", "--output", "raw"][..]), (&["heatmap", "--output", "raw"], &["times", "--access_rate", "50%", "100%"])] {
        let cache = tmp.path().join(format!("cache-{}", first[0]));
        let cached = [("XDG_CACHE_HOME", cache.to_str().unwrap())];
        for report in [first, then] {
            let want = run_with(tmp.path(), report, "first.json", false, &no_cache);
            assert_eq!(run_with(tmp.path(), report, "first.json", true, &cached), want, "report {report:?}");
            let entries: Vec<_> = std::fs::read_dir(cache.join("damo-trace/converted")).unwrap().collect();
            assert_eq!(entries.len(), 1, "report {report:?} after {first:?}: one copy, no temporary file");
        }
    }
}
