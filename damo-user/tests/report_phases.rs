//! `report phases` on a record with planted phases: three 3-second phases, each making a
//! different buffer hot while a different function runs. The report must find exactly those
//! phases, name each one's function first, and draw one flamegraph per phase.

mod differential;
mod planted;

use damo_record::{model::StackSample, native::NativeWriter};
use differential::ours;
use planted::{BUFFER, CALLER, PHASES, SNAPSHOTS};

#[test]
fn finds_the_planted_phases_and_their_functions() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("planted.dtr");
    planted::write(&rec);
    let svgs = dir.path().join("flamegraphs");
    let (ok, out, err) = ours(&["report", "phases", "-i", rec.to_str().unwrap(), "--json", "--flamegraphs", svgs.to_str().unwrap()]);
    assert!(ok, "{err}");
    let phases: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(phases.len(), 3, "{out}");
    for (p, (phase, &(buffer, _, function))) in phases.iter().zip(&PHASES).enumerate() {
        let p = p as u64;
        assert_eq!(phase["phase"], p + 1, "phases count from 1");
        assert_eq!(phase["start_s"], (p * SNAPSHOTS) as f64 / 10.0, "seconds since the first snapshot: {phase}");
        assert_eq!(phase["responsible"], function, "phase {p}: {phase}");
        assert_eq!(phase["start_ns"], p * SNAPSHOTS * 100_000_000, "phase {p}: {phase}");
        assert_eq!(phase["end_ns"], (p + 1) * SNAPSHOTS * 100_000_000, "phase {p}: {phase}");
        assert_eq!(phase["samples"], SNAPSHOTS * 10);
        assert_eq!(phase["top"][0]["symbol"], function, "phase {p}: {phase}");
        assert_eq!(phase["top"][0]["overhead_percent"], 90.0);
        let hot = &phase["hot_ranges"][0];
        assert!(hot["start"].as_u64().unwrap() >= buffer && hot["end"].as_u64().unwrap() <= buffer + BUFFER, "phase {p} hot range {hot} outside its buffer");

        let svg = std::fs::read_to_string(svgs.join(format!("phase-{}.svg", p + 1))).unwrap();
        let doc = roxmltree::Document::parse_with_options(&svg, roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() }).unwrap_or_else(|e| panic!("phase-{p}.svg is not XML: {e}"));
        let titles: Vec<&str> = doc.descendants().filter(|n| n.has_tag_name("title")).filter_map(|n| n.text()).collect();
        assert!(titles.iter().any(|t| t.starts_with(&format!("{function} (270 samples"))), "phase-{p}.svg has no {function} frame: {titles:?}");
        for &(_, _, other) in PHASES.iter().filter(|&&(_, _, f)| f != function) {
            assert!(!svg.contains(other), "phase-{p}.svg has {other}, which ran in another phase");
        }
    }
}

/// Each phase's function only calls a leaf all phases share: by self time every phase is
/// `shared_leaf`; the report still names each phase's own function, with weak access rates
/// (the hottest buffer at 0.25 of the most DAMON can count) as with strong ones.
#[test]
fn names_the_caller_when_every_phase_shares_its_leaves() {
    for rate in [5, 18] {
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join("callers.dtr");
        planted::write_callers(&rec, rate);
        let (ok, out, err) = ours(&["report", "phases", "-i", rec.to_str().unwrap(), "--json"]);
        assert!(ok, "{err}");
        let phases: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(phases.len(), 3, "rate {rate}: {out}");
        for (p, (phase, &(_, _, function))) in phases.iter().zip(&PHASES).enumerate() {
            let start = phase["snapshots"][0].as_u64().unwrap();
            assert!(start.abs_diff(p as u64 * SNAPSHOTS) <= 1, "rate {rate}: phase {} starts at snapshot {start}", p + 1);
            assert_eq!(phase["top"][0]["symbol"], "shared_leaf", "by self time the leaf leads: {phase}");
            assert_eq!(phase["responsible"], function, "rate {rate}: {phase}");
            assert_eq!(phase["distinctive"][0]["function"], function, "the caller is named first: {phase}");
            assert_eq!(phase["chain"], serde_json::json!([function, "shared_leaf"]), "{phase}");
        }
        let (ok, text, err) = ours(&["report", "phases", "-i", rec.to_str().unwrap()]);
        assert!(ok, "{err}");
        for (p, &(_, _, function)) in PHASES.iter().enumerate() {
            assert!(text.contains(&format!("phase {}: ", p + 1)) && text.contains(&format!("responsible: {function} (call chain to the hot leaf: {function} > shared_leaf)")), "{text}");
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

#[test]
fn profile_diff_colours_the_function_of_the_selected_phase_red() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("planted.dtr");
    planted::write(&rec);
    let svg_path = dir.path().join("diff.svg");
    let (buffer, _, function) = PHASES[1];
    let (start, end) = (buffer.to_string(), (buffer + BUFFER).to_string());
    let args = ["report", "profile", "-i", rec.to_str().unwrap(), "--access_rate", "50%", "100%", "--address", &start, &end, "--diff", svg_path.to_str().unwrap()];
    let (ok, text, err) = ours(&args);
    assert!(ok, "{err}");
    assert!(text.contains(&format!("# responsible: {function} ")), "the selection's function is named against the rest:\n{text}");
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse_with_options(&svg, roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() }).expect("the diff is XML");
    // Each frame is a <g> with a <title> ("name (count samples, share; +change)") and a <rect>.
    let fill_of = |name: &str| {
        let g = doc.descendants().find(|n| n.has_tag_name("g") && n.children().any(|c| c.has_tag_name("title") && c.text().is_some_and(|t| t.starts_with(&format!("{name} (")))));
        g.and_then(|g| g.children().find(|c| c.has_tag_name("rect"))).and_then(|r| r.attribute("fill")).map(str::to_owned)
    };
    let grown = fill_of(function).unwrap_or_else(|| panic!("{function} missing from the diff"));
    assert!(grown.starts_with("rgb(255,"), "{function} ran only in the selected phase, yet is not red: {grown}");
    assert!(fill_of(PHASES[0].2).is_none(), "{} did not run in the selected times, so it has no frame", PHASES[0].2);

    let everything = ["report", "profile", "-i", rec.to_str().unwrap(), "--diff", svg_path.to_str().unwrap()];
    let (ok, _, err) = ours(&everything);
    assert!(!ok && err.contains("--diff compares"), "a diff without a selection must fail clearly: {err}");
}

/// A real record of the caller-mode workload from the project's VM
/// (tests/data/vm/README.md), rewritten with DAMON blind for the seconds `blind` (ns since
/// the first snapshot): every region there reads 0 accesses, as when DAMON misses a phase's
/// accesses under emulation; without stacks when `stacks` is false.
fn vm_record_blinded(dir: &std::path::Path, blind: std::ops::Range<u64>, stacks: bool) -> std::path::PathBuf {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/vm/callers.dtr");
    let read = damo_record::native::read(&std::fs::read(fixture).unwrap()).unwrap();
    assert!(read.complete);
    let mut record = read.record;
    let origin = record.targets[0].snapshots[0].start_ns;
    for s in &mut record.targets[0].snapshots {
        if blind.contains(&(s.start_ns - origin)) {
            s.regions.iter_mut().for_each(|r| r.nr_accesses = 0);
        }
    }
    let path = dir.join(format!("blind-{}-{}-{stacks}.dtr", blind.start, blind.end));
    let mut w = NativeWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    for t in &record.targets {
        for s in &t.snapshots {
            w.snapshot(t, s).unwrap();
        }
    }
    if stacks {
        w.modules(&record.modules).unwrap();
        w.code_symbols(&record.code_symbols).unwrap();
        w.kernel_symbols(&record.kernel_symbols).unwrap();
        w.stacks(&record.samples).unwrap();
    }
    w.finish().unwrap();
    path
}

/// (start in s since the first snapshot, responsible) of each phase `report phases` finds.
fn phases_of(rec: &std::path::Path) -> Vec<(f64, String)> {
    let (ok, out, err) = ours(&["report", "phases", "-i", rec.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let phases: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    phases.iter().map(|p| (p["start_s"].as_f64().unwrap(), p["responsible"].as_str().unwrap_or("-").to_owned())).collect()
}

/// In 1 CI boot of 15 DAMON saw the caller-mode workload's sequential phase for a second and
/// then nothing until the last phase; the hot sets alone then put a boundary 3.4 s early and
/// merged two phases. The code that ran changed on time, and its cuts must hold.
#[test]
fn phases_hold_where_the_code_changed_though_damon_went_blind() {
    let dir = tempfile::tempdir().unwrap();
    let seen = phases_of(&vm_record_blinded(dir.path(), 0..0, true));
    let names: Vec<&str> = seen.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["memset", "caller_sequential_scan", "caller_random_update", "caller_hot_spot"], "{seen:?}");
    // Blind from 1.5 s into the sequential phase to the end of the random one.
    let (sequential, hot_spot) = (seen[1].0, seen[3].0);
    let blind = ((sequential + 1.5) * 1e9) as u64..(hot_spot * 1e9) as u64;

    let hot_sets_only = phases_of(&vm_record_blinded(dir.path(), blind.clone(), false));
    assert!(hot_sets_only.len() < 4 || hot_sets_only.iter().all(|(s, _)| (s - seen[2].0).abs() > 1.0), "the blinded record must fool the hot sets, or this tests nothing: {hot_sets_only:?}");

    let found = phases_of(&vm_record_blinded(dir.path(), blind, true));
    let names: Vec<&str> = found.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["memset", "caller_sequential_scan", "caller_random_update", "caller_hot_spot"], "{found:?}");
    for ((got, _), (want, name)) in found.iter().zip(&seen) {
        assert!((got - want).abs() <= 0.3, "{name} starts at {got:.2} s blinded, {want:.2} s seeing: {found:?}");
    }
}
