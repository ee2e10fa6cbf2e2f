//! `replay`: the pages of the regions a record saw accessed are touched, those of regions it
//! saw idle are not (mincore on the replay's mappings); the command replays a record in any
//! format at `--speed` and refuses what it cannot map.

use damo_record::model::{Intervals, Record, Region, Snapshot, TargetRecord};
use damo_user::replay::{covered_ranges, replay_snapshot, Memory, PAGE};

const MIB: u64 = 1 << 20;
const BASE: u64 = 0x7f00_0000_0000;

/// Four 1 MiB regions, the 2nd and 4th accessed; a second span far away, idle.
fn target(snapshots: usize) -> TargetRecord {
    let regions = vec![
        Region { start: BASE, end: BASE + MIB, nr_accesses: 0, age: Some(3) },
        Region { start: BASE + MIB, end: BASE + 2 * MIB, nr_accesses: 20, age: Some(3) },
        Region { start: BASE + 2 * MIB, end: BASE + 3 * MIB, nr_accesses: 0, age: Some(3) },
        Region { start: BASE + 3 * MIB, end: BASE + 4 * MIB, nr_accesses: 1, age: Some(3) },
        Region { start: 0x5500_0000_0000, end: 0x5500_0000_0000 + MIB, nr_accesses: 0, age: Some(3) },
    ];
    let snapshots = (0..snapshots as u64).map(|i| Snapshot { start_ns: i * 100_000_000, end_ns: (i + 1) * 100_000_000, regions: regions.clone(), total_bytes: None }).collect();
    TargetRecord { intervals: Some(Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 }), snapshots, ..Default::default() }
}

#[test]
fn hot_regions_are_touched_and_cold_ones_are_not() {
    let t = target(3);
    let ranges = covered_ranges(&t);
    assert_eq!(ranges, [(0x5500_0000_0000, 0x5500_0000_0000 + MIB), (BASE, BASE + 4 * MIB)], "the terabytes between the spans are not mapped");
    let mut memory = Memory::map(&ranges, 8 * MIB).unwrap();
    assert!(memory.resident(BASE, BASE + 4 * MIB).unwrap().iter().all(|r| !r), "nothing is resident before the replay");
    let intervals = t.intervals.unwrap();
    for s in &t.snapshots {
        replay_snapshot(&mut memory, s, intervals, 10.0);
    }
    let pages = (MIB / PAGE) as usize;
    let resident = memory.resident(BASE, BASE + 4 * MIB).unwrap();
    let count = |i: usize| resident[i * pages..(i + 1) * pages].iter().filter(|r| **r).count();
    assert_eq!([count(0), count(1), count(2), count(3)], [0, pages, 0, pages], "pages resident per region (idle, hot, idle, warm)");
    assert!(memory.resident(0x5500_0000_0000, 0x5500_0000_0000 + MIB).unwrap().iter().all(|r| !r));
}

#[test]
fn the_replay_takes_the_recorded_time_over_speed() {
    let t = target(4);
    let mut memory = Memory::map(&covered_ranges(&t), 8 * MIB).unwrap();
    let started = std::time::Instant::now();
    for s in &t.snapshots {
        replay_snapshot(&mut memory, s, t.intervals.unwrap(), 2.0);
    }
    let took = started.elapsed().as_secs_f64();
    // 4 snapshots of 100 ms at twice the speed: 200 ms, each of its 80 slices waited out.
    assert!((0.19..0.6).contains(&took), "took {took:.3} s for 0.2 s of record");
}

fn write_record(dir: &std::path::Path, t: TargetRecord) -> std::path::PathBuf {
    let path = dir.join("synthetic.json");
    let record = Record { targets: vec![t], ..Default::default() };
    let mut bytes = Vec::new();
    damo_record::damo::write(&record, damo_record::damo::DamoFormat::Json, &mut bytes).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

fn damo_trace(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_damo-trace")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn the_command_replays_a_record_and_refuses_what_it_cannot_map() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_record(dir.path(), target(5));
    let p = path.to_str().unwrap();
    let (ok, out, err) = damo_trace(&["replay", p, "--speed", "5", "--progress_notice_interval", "50ms"]);
    assert!(ok, "{err}");
    assert!(out.contains("all snapshots are replayed") && out.contains("snapshots replayed in"), "{out}");
    assert!(out.starts_with("replaying 0x550000000000-0x550000100000 at 0x") && out.contains("\nreplaying 0x7f0000000000-0x7f0000400000 at 0x"), "{out}");
    for (args, says) in [
        (vec!["replay", p, "--max_memory", "1M"], "more than --max_memory"),
        (vec!["replay", p, "--speed", "0"], "--speed"),
        (vec!["replay", p, "--target", "3"], "no target 3"),
        (vec!["replay", "/dev/null"], "not a regular file"),
    ] {
        let (ok, _, err) = damo_trace(&args);
        assert!(!ok && err.trim().lines().count() == 1 && err.contains(says), "{args:?}: {err}");
    }
    let (ok, out, err) = damo_trace(&["replay", "--test_perf", "--test_perf_sz_mem", "16M", "--test_perf_runtime", "1.5s"]);
    assert!(ok && out.starts_with("replayer can access "), "{out}{err}");
}
