//! `adjust`, checked against damo 3.4.3: both adjust the same record with the same options,
//! and damo's own `report access --raw_form` must print the same for both outputs, but for
//! the order of regions in a snapshot: damo appends the parts a later snapshot adds after
//! the others, damo-trace keeps them in address order, as DAMON does.

mod differential;

use std::{path::Path, process::Command};

use damo_record::{
    damo::{self as damo_format, DamoFormat},
    synth::{self, SynthSpec},
};
use differential::{damo, damo_report, fixture, ours};

fn run_damo(damo: &Path, dir: &Path, args: &[&str]) {
    let out = Command::new(damo).args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "damo {args:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// The listing with each snapshot's lines sorted (addresses are fixed-width hex).
fn regions_sorted(listing: &str) -> String {
    let blocks = listing.split("\n\n").map(|block| {
        let mut lines: Vec<&str> = block.lines().collect();
        lines.sort_unstable();
        lines.join("\n")
    });
    blocks.collect::<Vec<_>>().join("\n\n")
}

#[test]
fn adjusted_records_match_damo() {
    let Some(d) = damo() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::copy(fixture("damon.data"), dir.join("fixture.data")).unwrap();
    let record = synth::record(SynthSpec { targets: 2, snapshots_per_target: 120, regions: 40, seed: 3 });
    damo_format::write(&record, DamoFormat::JsonCompressed, &mut std::fs::File::create(dir.join("gen.data")).unwrap()).unwrap();
    let cases: [(&str, &[&str]); 7] = [
        ("fixture.data", &["--aggregate_interval", "1000000"]),
        ("fixture.data", &["--aggregate_interval", "500000", "--skip", "3"]),
        ("fixture.data", &[]),
        // json_compressed only: damo writes a perf_script with the merged regions' unknown
        // age as "None", which its own reader refuses, and its reader takes a json for perf data.
        ("fixture.data", &["--aggregate_interval", "2000000"]),
        ("gen.data", &["--aggregate_interval", "1000000", "--skip", "0"]),
        ("gen.data", &["--aggregate_interval", "700000", "--access_rate", "10%", "100%"]),
        ("gen.data", &["--sz_region", "1M", "max"]),
    ];
    for (n, (input, extra)) in cases.into_iter().enumerate() {
        let (theirs, mine) = (format!("damo-{n}.out"), format!("ours-{n}.out"));
        let mut damo_args = vec!["adjust", "-i", input, "-o", &theirs];
        damo_args.extend_from_slice(extra);
        run_damo(&d, dir, &damo_args);
        let mut our_args = vec!["adjust", "-i", input, "-o", &mine];
        our_args.extend_from_slice(extra);
        let out = Command::new(env!("CARGO_BIN_EXE_damo-trace")).args(&our_args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "damo-trace {our_args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let expected = regions_sorted(&damo_report(&d, &["access", "--raw_form", "-i", &theirs], dir));
        let actual = regions_sorted(&damo_report(&d, &["access", "--raw_form", "-i", &mine], dir));
        assert!(expected.lines().count() > 3, "damo's adjusted record is empty for {extra:?}");
        assert!(
            expected == actual,
            "adjust {input} {extra:?}: damo's report raw differs on our output (first lines: {:?} vs {:?})",
            expected.lines().take(5).collect::<Vec<_>>(),
            actual.lines().take(5).collect::<Vec<_>>()
        );
    }
}

#[test]
fn an_existing_output_needs_force_and_bad_intervals_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let input = fixture("damon.data");
    let output = tmp.path().join("out.data");
    std::fs::write(&output, "keep").unwrap();
    let (ok, _, err) = ours(&["adjust", "-i", input.to_str().unwrap(), "-o", output.to_str().unwrap()]);
    assert!(!ok && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "keep");
    let (ok, _, err) = ours(&["adjust", "-i", input.to_str().unwrap(), "-o", output.to_str().unwrap(), "--force", "--aggregate_interval", "0"]);
    assert!(!ok && err.lines().count() == 1 && err.contains("--aggregate_interval"), "{err}");
    let (ok, _, err) = ours(&["adjust", "-i", input.to_str().unwrap(), "-o", output.to_str().unwrap(), "--force", "--aggregate_interval", "1s"]);
    assert!(ok, "{err}");
    let (ok, _, err) = ours(&["validate", "-i", output.to_str().unwrap(), "--aggr", "1000000", "1200000", "--nr_accesses", "0", "10000"]);
    assert!(ok, "an adjusted record has the new interval: {err}");
    // json reads back as the same record (perf_script keeps no base time, so its listing differs).
    let listing = |path: &Path| {
        let (ok, out, err) = ours(&["report", "access", "--raw_form", "-i", path.to_str().unwrap()]);
        assert!(ok, "{err}");
        out
    };
    let expected = listing(&output);
    let json = tmp.path().join("json");
    let (ok, _, err) = ours(&["adjust", "-i", input.to_str().unwrap(), "-o", json.to_str().unwrap(), "--aggregate_interval", "1s", "--output_type", "json"]);
    assert!(ok, "{err}");
    assert!(listing(&json) == expected, "json reads back differently");
}
