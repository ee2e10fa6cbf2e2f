//! `report phases` on a record with planted phases: three 3-second phases, each making a
//! different buffer hot while a different function runs. The report must find exactly those
//! phases, name each one's function first, and draw one flamegraph per phase.

mod differential;

use damo_record::{
    model::{Intervals, Region, Snapshot, StackSample, TargetRecord},
    native::NativeWriter,
};
use differential::ours;

/// (buffer start, function address, function name) of each phase, in order.
const PHASES: [(u64, u64, &str); 3] = [(0x1000_0000, 0xffff_ffff_8100_1000, "phase_scan"), (0x2000_0000, 0xffff_ffff_8100_2000, "phase_update"), (0x3000_0000, 0xffff_ffff_8100_3000, "phase_hotspot")];
const CALLER: u64 = 0xffff_ffff_8100_9000;
const BUFFER: u64 = 16 << 20;
/// Snapshots per phase (100 ms each).
const SNAPSHOTS: u64 = 30;

fn planted(path: &std::path::Path) {
    let intervals = Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 };
    let target = TargetRecord { intervals: Some(intervals), ..Default::default() };
    let mut w = NativeWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    let mut samples = Vec::new();
    for (p, &(_, function, _)) in PHASES.iter().enumerate() {
        for i in 0..SNAPSHOTS {
            let n = p as u64 * SNAPSHOTS + i;
            let (start_ns, end_ns) = (n * 100_000_000, (n + 1) * 100_000_000);
            let regions = PHASES.iter().enumerate().map(|(q, &(start, _, _))| Region { start, end: start + BUFFER, nr_accesses: if q == p { 18 + (i % 3) as u32 } else { 0 }, age: Some(0) }).collect();
            w.snapshot(&target, &Snapshot { start_ns, end_ns, regions, total_bytes: None }).unwrap();
            for k in 0..10 {
                // One sample in ten is elsewhere, so the top function is not the only one.
                let leaf = if k == 9 { CALLER } else { function };
                samples.push(StackSample { ts_ns: start_ns + k * 10_000_000 + 1, pid: 7, tid: 7, cpu: 0, comm: "planted".into(), user: vec![], kernel: vec![leaf, CALLER] });
            }
        }
    }
    w.stacks(&samples).unwrap();
    let mut symbols: Vec<(u64, String)> = PHASES.iter().map(|&(_, a, name)| (a, name.to_string())).collect();
    symbols.push((CALLER, "caller".into()));
    w.kernel_symbols(&symbols).unwrap();
    w.finish().unwrap();
}

#[test]
fn finds_the_planted_phases_and_their_functions() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("planted.dtr");
    planted(&rec);
    let svgs = dir.path().join("flamegraphs");
    let (ok, out, err) = ours(&["report", "phases", "-i", rec.to_str().unwrap(), "--json", "--flamegraphs", svgs.to_str().unwrap()]);
    assert!(ok, "{err}");
    let phases: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(phases.len(), 3, "{out}");
    for (p, (phase, &(buffer, _, function))) in phases.iter().zip(&PHASES).enumerate() {
        let p = p as u64;
        assert_eq!(phase["start_ns"], p * SNAPSHOTS * 100_000_000, "phase {p}: {phase}");
        assert_eq!(phase["end_ns"], (p + 1) * SNAPSHOTS * 100_000_000, "phase {p}: {phase}");
        assert_eq!(phase["samples"], SNAPSHOTS * 10);
        assert_eq!(phase["top"][0]["symbol"], function, "phase {p}: {phase}");
        assert_eq!(phase["top"][0]["overhead_percent"], 90.0);
        let hot = &phase["hot_ranges"][0];
        assert!(hot["start"].as_u64().unwrap() >= buffer && hot["end"].as_u64().unwrap() <= buffer + BUFFER, "phase {p} hot range {hot} outside its buffer");

        let svg = std::fs::read_to_string(svgs.join(format!("phase-{p}.svg"))).unwrap();
        let doc = roxmltree::Document::parse_with_options(&svg, roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() }).unwrap_or_else(|e| panic!("phase-{p}.svg is not XML: {e}"));
        let titles: Vec<&str> = doc.descendants().filter(|n| n.has_tag_name("title")).filter_map(|n| n.text()).collect();
        assert!(titles.iter().any(|t| t.starts_with(&format!("{function} (270 samples"))), "phase-{p}.svg has no {function} frame: {titles:?}");
        for &(_, _, other) in PHASES.iter().filter(|&&(_, _, f)| f != function) {
            assert!(!svg.contains(other), "phase-{p}.svg has {other}, which ran in another phase");
        }
    }
}

#[test]
fn phases_needs_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("stacks-only.dtr");
    let mut w = NativeWriter::new(std::fs::File::create(&rec).unwrap()).unwrap();
    w.stacks(&[StackSample { ts_ns: 1, pid: 1, tid: 1, cpu: 0, comm: "x".into(), user: vec![], kernel: vec![CALLER] }]).unwrap();
    w.finish().unwrap();
    let (ok, _, err) = ours(&["report", "phases", "-i", rec.to_str().unwrap()]);
    assert!(!ok && err.contains("no DAMON snapshots"), "{err}");
}
