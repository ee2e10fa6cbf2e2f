//! `report access`, `report raw` and `report record_info` against damo 3.4.3 on its own
//! fixtures. damo pipes long outputs through `less`, which drops the final newline(s), so
//! outputs are compared with trailing newlines trimmed.

mod differential;

use differential::{damo_report, fixture, ours, ours_report};

fn same(damo_args: &[&str], our_args: &[&str]) {
    let Some(damo) = differential::damo() else {
        return;
    };
    let dir = fixture("");
    let theirs = damo_report(&damo, damo_args, &dir);
    let mine = ours_report(our_args, &dir);
    let (t, m) = (theirs.trim_end_matches('\n'), mine.trim_end_matches('\n'));
    if t != m {
        let line = t.lines().zip(m.lines()).position(|(a, b)| a != b).unwrap_or(t.lines().count().min(m.lines().count()));
        panic!("{our_args:?} differs from damo at line {}:\ndamo: {:?}\nours: {:?}", line + 1, t.lines().nth(line), m.lines().nth(line));
    }
}

fn both(args: &[&str]) {
    same(args, args);
}

const SNAPSHOTS: [&str; 4] = ["damon.data.snapshot.nofilter", "damon.data.snapshot.active", "damon.data.snapshot.anon", "damon.data.snapshot.inactive"];

#[test]
fn styles_match_damo() {
    for input in SNAPSHOTS {
        for style in ["detailed", "simple-boxes", "recency-percentiles", "temperature-percentiles", "recency-sz-hist", "temperature-sz-hist", "hot", "cold"] {
            both(&["access", "--input", input, "--style", style]);
        }
        both(&["access", "--input", input, "--raw_number"]);
        both(&["access", "--input", input, "--style", "recency-percentiles", "--raw_number"]);
    }
}

#[test]
fn sorting_and_options_match_damo() {
    let input = "damon.data.snapshot.anon";
    both(&["access", "--input", input, "--sort_regions_by", "temperature", "--sort_regions_dsc", "all"]);
    both(&["access", "--input", input, "--sort_regions_by", "size", "access_rate", "--sort_regions_dsc", "size"]);
    both(&["access", "--input", input, "--region_box"]);
    both(&["access", "--input", input, "--style", "recency-sz-hist", "--hist_logscale"]);
    both(&["access", "--input", input, "--style", "temperature-sz-hist", "--hist_cumulate"]);
    both(&["access", "--input", input, "--style", "recency-percentiles", "--percentiles_range", "0", "101", "10"]);
    both(&["access", "--input", input, "--temperature_weights", "1", "10", "1", "--style", "temperature-percentiles"]);
    both(&["access", "--input", input, "--total_sz_only"]);
    both(&["access", "--input", input, "--format_region", "<index> <start address> <end address> <access rate> <temperature>"]);
    both(&["access", "--input", input, "--sz_region", "1M", "max"]);
}

#[test]
fn raw_form_matches_damo() {
    for input in ["damon.data", "perf.data.script", SNAPSHOTS[0]] {
        both(&["access", "--raw_form", "--input", input]);
        same(&["access", "--raw_form", "--input", input], &["raw", "--input", input]);
    }
    both(&["access", "--raw_form", "--raw_number", "--input", "damon.data", "--snapshot_idx", "0", "3"]);
}

#[test]
fn json_matches_damo_for_plain_records() {
    both(&["access", "--json", "--input", "damon.data"]);
    both(&["access", "--json", "--input", SNAPSHOTS[0]]);
}

#[test]
fn record_info_matches_damo() {
    for input in ["damon.data", "perf.data.script", SNAPSHOTS[2]] {
        both(&["record_info", "--input", input]);
    }
    // perf_script times are floats in damo; its raw durations can differ from ours by 1 ns.
    for input in ["damon.data", SNAPSHOTS[2]] {
        both(&["record_info", "--input", input, "--raw_numbers"]);
    }
}

#[test]
fn no_intervals_and_bad_input_are_clear_errors() {
    let data = fixture("damon.data");
    let (ok, _, err) = ours(&["report", "access", "--input", data.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("lack the intervals"), "{err}");
    let (ok, _, err) = ours(&["report", "access", "--input", "/nonexistent/record"]);
    assert!(!ok && !err.contains("panicked"), "{err}");
    let snap = fixture(SNAPSHOTS[0]);
    let (ok, _, err) = ours(&["report", "access", "--input", snap.to_str().unwrap(), "--format", "set", "nowhere", "x"]);
    assert!(!ok && err.contains("target area"), "{err}");
}
