//! `validate`, checked against damo 3.4.3's on its fixtures and on generated records, and the
//! native format's own checks (a cut or corrupted record is invalid).

mod differential;

use std::{path::Path, process::Command};

use damo_record::{
    damo::{self, DamoFormat},
    model::{Intervals, Region, Snapshot, TargetRecord},
    native::NativeWriter,
    synth::{self, SynthSpec},
};
use differential::{damo, fixture, ours};

/// damo's verdict: exit success and its one line (damo prints problems on stdout).
fn damo_validate(damo: &Path, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(damo).arg("validate").args(args).current_dir(dir).output().unwrap();
    assert!(out.stderr.is_empty(), "damo validate {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Ours, in `dir`: exit success and the problem without the `damo-trace: <file>: ` prefix.
fn our_validate(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_damo-trace")).arg("validate").args(args).current_dir(dir).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert!(out.stdout.is_empty(), "validate prints nothing on stdout");
    let problem = err.strip_prefix("damo-trace: ").and_then(|e| e.split_once(": ")).map_or(err.clone(), |(_, p)| p.to_owned());
    (out.status.success(), problem)
}

#[test]
fn verdicts_match_damo_on_its_fixtures_and_generated_records() {
    let Some(d) = damo() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let record = synth::record(SynthSpec { targets: 2, snapshots_per_target: 150, regions: 60, seed: 5 });
    damo::write(&record, DamoFormat::JsonCompressed, &mut std::fs::File::create(tmp.path().join("gen.data")).unwrap()).unwrap();
    let cases: [(&Path, &str, &[&str]); 12] = [
        (&fixture(""), "damon.data", &[]),
        (&fixture(""), "perf.data.script", &[]),
        (&fixture(""), "damon.data.snapshot.anon", &[]),
        (&fixture(""), "damon.data", &["--aggr", "1", "10"]),
        (&fixture(""), "damon.data", &["--nr_accesses", "0", "3"]),
        (&fixture(""), "damon.data", &["--nr_regions", "3", "10"]),
        (&fixture(""), "damon.data", &["--regions_boundary", "0-100"]),
        (&fixture(""), "damon.data", &["--regions_boundary", "0-140737488355328"]),
        (&fixture(""), "perf.data.script", &["--nr_regions", "100", "200"]),
        (tmp.path(), "gen.data", &[]),
        (tmp.path(), "gen.data", &["--nr_regions", "40", "70"]),
        (tmp.path(), "gen.data", &["--nr_accesses", "0", "10"]),
    ];
    let mut invalid = 0;
    for (dir, input, extra) in cases {
        let mut args = vec!["-i", input];
        args.extend_from_slice(extra);
        let theirs = damo_validate(&d, dir, &args);
        let ours = our_validate(dir, &args);
        assert_eq!(ours, theirs, "validate {args:?}: ours (left) differs from damo's");
        invalid += usize::from(!theirs.0);
    }
    assert!(invalid >= 5, "the cases must exercise damo's failures, {invalid} did");
}

/// A native record of 20 snapshots of 3 regions each, 100 ms apart.
fn native_record(path: &Path) {
    let mut w = NativeWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    let target = TargetRecord { intervals: Some(Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 }), ..Default::default() };
    for t in 0..20u64 {
        let regions = (0..3).map(|i| Region { start: 4096 * i, end: 4096 * (i + 1), nr_accesses: 5, age: Some(1) }).collect();
        w.snapshot(&target, &Snapshot { start_ns: t * 100_000_000, end_ns: (t + 1) * 100_000_000, regions, total_bytes: None }).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn a_cut_or_corrupted_native_record_is_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("good.dtr");
    native_record(&path);
    let (ok, _, err) = ours(&["validate", "-i", path.to_str().unwrap()]);
    assert!(ok, "an intact record is valid: {err}");
    let bytes = std::fs::read(&path).unwrap();
    let cut = tmp.path().join("cut.dtr");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let corrupt = tmp.path().join("corrupt.dtr");
    std::fs::write(&corrupt, &flipped).unwrap();
    for bad in [&cut, &corrupt] {
        let (ok, out, err) = ours(&["validate", "-i", bad.to_str().unwrap()]);
        assert!(!ok && out.is_empty(), "{} must be invalid", bad.display());
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains("damaged or cut short") || err.contains("no end mark") || err.contains("checksum"), "{err}");
    }
}

#[test]
fn bad_options_get_one_line() {
    for (args, expected) in [
        (&["validate", "--allow_error", "lots"][..], "--allow_error"),
        (&["validate", "--regions_boundary", "9-3"], "--regions_boundary"),
        (&["validate", "-i", "/nonexistent/damon.data"], "/nonexistent/damon.data"),
    ] {
        let (ok, _, err) = ours(args);
        assert!(!ok && err.lines().count() == 1 && err.contains(expected), "{args:?}: {err}");
    }
}
