//! `report trace`: a recorded trace's DAMON events as damo 3.4.3 lists them, for damo's own
//! trace output files (perf and trace-cmd), and for records (listed as the
//! `damon:damon_aggregated` events of their perf_script form, which damo lists the same).

mod differential;

use std::path::Path;

use differential::{damo_report, fixture, ours, ours_report};

const HEADER_PERF: &str = "damo_report_trace_output_format_version: 0\ndamo_report_trace_output_time: 1700000000.5\ndamo_report_trace_output_tracer: perf\n";

/// Every event damo formats, as `perf script` prints them (fields as the kernel's formats).
const PERF_EVENTS: &str = "       kdamond.0  4452 [000] 82820.952659: damon:damon_aggregated: target_id=0 nr_regions=2 94253027950592-94253031862272: 3 12
       kdamond.0  4452 [000] 82820.952663: damon:damon_aggregated: target_id=0 nr_regions=2 94253031862272-94253040992256: 0 40
       kdamond.0  4452 [001] 82820.952700: damon:damos_before_apply: ctx_idx=0 scheme_idx=1 target_idx=0 nr_regions=2 94253027950592-94253031862272: 3 12
       kdamond.0  4452 [001] 82820.952800: damon:damos_stat_after_apply_interval: ctx_idx=0 scheme_idx=1 nr_tried=12 sz_tried=1234567 nr_applied=3 sz_applied=40960 sz_ops_filter_passed=4096 qt_exceeds=1 nr_snapshots=5
       kdamond.0  4452 [001] 82820.952900: damon:damos_stat_after_apply_interval: ctx_idx=0 scheme_idx=0 nr_tried=1 sz_tried=4096 nr_applied=0 sz_applied=0
       kdamond.0  4452 [002] 82820.953000: damon:damon_region_aggregated: target_id=0 nr_regions=1 4096-8192: 1 2 probe_hits=1f 0a
       kdamond.0  4452 [002] 82820.953100: damon:damon_region_aggregated: target_id=0 nr_regions=1 4096-8192: 1 2 probe_hits=
";

const TRACE_CMD: &str = "damo_report_trace_output_format_version: 0\ndamo_report_trace_output_time: 1700000000.5\ndamo_report_trace_output_tracer: trace-cmd\n\
cpus=8
       kdamond.0-129062 [005] ..... 101005.778382: damon_aggregated:     target_id=0 nr_regions=2 8360624128-8371830784: 0 974
       <...>-129062 [000] 101029.459185: damon_aggregated:     target_id=0 nr_regions=2 8335224832-8371830784: 5 560
";

/// Ours on `ours_file` against damo's on `file`; gives ours.
fn compare(damo: &Path, file: &Path, ours_file: &Path, options: &[&str]) -> String {
    let dir = file.parent().unwrap();
    let mut d = vec!["trace", "-i", file.to_str().unwrap()];
    d.extend_from_slice(options);
    let mut o = vec!["trace", "-i", ours_file.to_str().unwrap()];
    o.extend_from_slice(options);
    let (theirs, mine) = (damo_report(damo, &d, dir), ours_report(&o, dir));
    assert_eq!(mine, theirs, "report trace {options:?} of {} differs from damo's", ours_file.display());
    mine
}

#[test]
fn trace_files_read_as_damo_reads_them() {
    let Some(damo) = differential::damo() else { return };
    let dir = tempfile::tempdir().unwrap();
    let perf = dir.path().join("perf.trace");
    std::fs::write(&perf, format!("{HEADER_PERF}{PERF_EVENTS}")).unwrap();
    let tc = dir.path().join("tc.trace");
    std::fs::write(&tc, TRACE_CMD).unwrap();
    for options in
        [&[][..], &["--raw"], &["--max_cols", "40"], &["--event", "damon:damos_before_apply", "damon:damos_stat_after_apply_interval"], &["--no_event", "damon:damon_aggregated"], &["--max_cols", "5"]]
    {
        assert!(!compare(&damo, &perf, &perf, options).is_empty(), "{options:?}: no output");
        compare(&damo, &tc, &tc, options);
    }
}

#[test]
fn records_list_as_their_perf_script_form() {
    let Some(damo) = differential::damo() else { return };
    let dir = tempfile::tempdir().unwrap();
    for record in ["damon.data", "damon.data.json_compressed"] {
        let script = dir.path().join(format!("{record}.script"));
        let (ok, _, err) = ours(&["convert", "-i", fixture(record).to_str().unwrap(), "-o", script.to_str().unwrap(), "--format", "perf_script"]);
        assert!(ok, "{err}");
        let wrapped = dir.path().join("wrapped.trace");
        std::fs::write(&wrapped, [HEADER_PERF.as_bytes(), &std::fs::read(&script).unwrap()].concat()).unwrap();
        assert!(!compare(&damo, &wrapped, &fixture(record), &["--max_cols", "200"]).is_empty());
    }
    // Plain perf script text reads as damo reads it behind its header.
    let wrapped = dir.path().join("script.trace");
    std::fs::write(&wrapped, [HEADER_PERF.as_bytes(), &std::fs::read(fixture("perf.data.script")).unwrap()].concat()).unwrap();
    assert!(!compare(&damo, &wrapped, &fixture("perf.data.script"), &[]).is_empty());
}

#[test]
fn bad_inputs_end_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad_header = dir.path().join("bad");
    std::fs::write(&bad_header, "damo_report_trace_output_format_version: 0\nx\ndamo_report_trace_output_tracer: ftrace\n").unwrap();
    let bad_fields = dir.path().join("fields");
    std::fs::write(&bad_fields, format!("{HEADER_PERF} k 1 [0] 1.0: damon:damon_aggregated: target_id=x nr_regions=1 1-2: 0 0\n")).unwrap();
    for (args, says) in [
        (vec!["report", "trace", "-i", bad_header.to_str().unwrap()], "names no tracer"),
        (vec!["report", "trace", "-i", bad_fields.to_str().unwrap()], "malformed damon:damon_aggregated"),
        (vec!["report", "trace", "-i", "/dev/null"], "not a regular file"),
    ] {
        let (ok, _, err) = ours(&args);
        assert!(!ok && err.trim().lines().count() == 1 && err.contains(says), "{args:?}: {err}");
    }
    let (ok, _, err) = ours(&["report", "trace", "-i", bad_header.to_str().unwrap(), "--event", "damon:nothing"]);
    assert!(!ok && err.contains("not one of"), "{err}");
}
