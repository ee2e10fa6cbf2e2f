//! Every bad input gets a one-line error and a non-zero exit, never a panic.

mod differential;

use differential::{fixture, ours};

fn assert_clean_error(args: &[&str], needle: &str) {
    let (ok, _, err) = ours(args);
    assert!(!ok, "{args:?} must fail");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line expected, got {err:?}");
    assert!(err.contains(needle), "{args:?}: error {err:?} does not say {needle:?}");
}

#[test]
fn bad_files_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let fixture_bytes = std::fs::read(fixture("damon.data")).unwrap();
    let cases = [
        (write("empty", b""), "is empty"),
        (write("garbage", &[0u8, 1, 2, 3, 250, 251, 7, 9]), "not a DAMON record"),
        (write("cut.zlib", &fixture_bytes[..fixture_bytes.len() / 2]), "zlib"),
        (write("bad.json", b"[{\"target_id\": 1, \"snapshots\": [{\"end_time\": \"12 parsecs\"}]}]"), "json"),
        (write("wrong-type.json", b"{\"hello\": \"world\"}"), "json"),
        (write("future.dtr", b"\x89DTR\r\n\x1a\n\x09\x00\x00\x00\x00\x00\x00\x00"), "version 9"),
        (write("bad.script", b"kdamond.0 1 [0] 5.0: damon:damon_aggregated: target_id=1 nr_regions=2 10-5: 0 1\n"), "line 1"),
    ];
    for (path, needle) in &cases {
        assert_clean_error(&["report", "wss", "-i", path], needle);
    }
    assert_clean_error(&["report", "wss", "-i", "/nonexistent/damon.data"], "failed to read");
}

#[test]
fn absurd_filters_are_refused_clearly() {
    let input = fixture("damon.data");
    let input = input.to_str().unwrap();
    for (args, needle) in [
        (&["--sz_region", "10M", "4K"][..], "larger than the maximum"),
        (&["--sz_region", "4Q", "max"], "not a valid size"),
        (&["--access_rate", "-5%", "50%"], "percentage"),
        (&["--age", "5 parsecs", "max"], "not a valid time"),
        (&["--address", "100", "200", "--address", "150", "300"], "overlap"),
        (&["--snapshot_idx", "1.5", "3"], "count"),
    ] {
        let mut all = vec!["report", "times", "-i", input];
        all.extend_from_slice(args);
        assert_clean_error(&all, needle);
    }
    assert_clean_error(&["report", "wss", "-i", input, "-r", "0", "100", "0"], "step");
}

#[test]
fn a_perf_script_cut_mid_line_keeps_the_lines_before() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read(fixture("perf.data.script")).unwrap();
    let cut = tmp.path().join("cut.script");
    std::fs::write(&cut, &text[..text.len() - 40]).unwrap();
    let (ok, out, err) = ours(&["report", "nr_regions", "-i", cut.to_str().unwrap()]);
    assert!(ok, "a cut trace must still be readable: {err}");
    assert!(err.contains("cut short"), "the cut must be reported: {err:?}");
    assert!(out.contains("# avr:"));
}
