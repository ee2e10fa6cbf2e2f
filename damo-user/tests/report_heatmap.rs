//! `report heatmap` against damo 3.4.3 on damo's own fixtures: raw numbers, guides and the
//! terminal map must be byte-identical; images and bad options are checked on their own.

mod differential;

use differential::{damo, damo_report, fixture, ours, ours_report};

const INPUTS: [&str; 2] = ["damon.data", "perf.data.script"];

fn same_as_damo(extra: &[&str]) {
    let Some(damo) = damo() else { return };
    let dir = tempfile::tempdir().unwrap();
    for input in INPUTS {
        let path = fixture(input);
        let mut args = vec!["heatmap", "--input", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        // Our default draws the hot bands; damo's default, given explicitly, is damo's output.
        if !extra.iter().any(|a| ["--draw_range", "--address_range", "--guide", "--guide_human", "--sort_temperature"].contains(a)) {
            args.extend_from_slice(&["--draw_range", "hottest"]);
        }
        let expected = damo_report(&damo, &args, dir.path());
        let got = ours_report(&args, dir.path());
        assert!(expected == got, "{input} {extra:?} differs from damo:\n--- damo (head)\n{}\n--- ours (head)\n{}", head(&expected), head(&got));
    }
}

fn head(s: &str) -> String {
    s.lines().take(5).collect::<Vec<_>>().join("\n")
}

#[test]
fn raw_default() {
    same_as_damo(&["--output", "raw"]);
}

#[test]
fn raw_resolution() {
    same_as_damo(&["--output", "raw", "--resol", "30", "70"]);
}

#[test]
fn raw_time_range() {
    same_as_damo(&["--output", "raw", "--resol", "50", "50", "--time_range", "5s", "10s", "guided"]);
    same_as_damo(&["--output", "raw", "--resol", "50", "50", "--time_range", "1.5s", "3s", "guided"]);
    same_as_damo(&["--output", "raw", "--resol", "5", "5", "--time_range", "0", "10s", "guided_end"]);
}

#[test]
fn raw_address_range() {
    same_as_damo(&["--output", "raw", "--time_range", "1s", "20s", "guided", "--address_range", "0", "100M", "guided"]);
}

#[test]
fn raw_all_ranges_absolute() {
    same_as_damo(&["--output", "raw", "--draw_range", "all", "--resol", "7", "9", "--abs_time", "--abs_addr"]);
}

#[test]
fn guides() {
    same_as_damo(&["--guide"]);
    same_as_damo(&["--guide_human"]);
}

#[test]
fn terminal_colorsets() {
    same_as_damo(&[]);
    same_as_damo(&["--stdout_colorset", "flame", "--resol", "20", "30"]);
    same_as_damo(&["--stdout_colorset", "emotion", "--resol", "10", "10", "--stdout_skip_colorset_example"]);
}

#[test]
fn images() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("damon.data");
    for name in ["map.svg", "map.png"] {
        let out = dir.path().join(name);
        let (ok, _, err) = ours(&["report", "heatmap", "-i", input.to_str().unwrap(), "--resol", "50", "60", "--output", out.to_str().unwrap()]);
        assert!(ok, "{err}");
        let bytes = std::fs::read(&out).unwrap();
        if name.ends_with(".svg") {
            let svg = String::from_utf8(bytes).unwrap();
            assert!(svg.starts_with("<svg") && svg.contains("<rect") && svg.contains("Access frequency (samples)"));
        } else {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        }
    }
    // Every address range gets its image; the later ones are numbered as damo numbers them.
    let out = dir.path().join("all.svg");
    let (ok, _, err) = ours(&["report", "heatmap", "-i", input.to_str().unwrap(), "--resol", "5", "5", "--draw_range", "all", "--output", out.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(dir.path().join("all.1.svg").exists() && dir.path().join("all.2.svg").exists());
}

/// Without damo's range options the maps are of the hot bands: a 16 MiB hot buffer in a
/// 300 GiB span fills its map, where damo's hottest contiguous range makes it a sliver.
#[test]
fn the_default_draws_the_hot_bands() {
    use damo_record::{
        model::{Intervals, Region, Snapshot, TargetRecord},
        native::NativeWriter,
    };
    const MIB: u64 = 1 << 20;
    let base = 0x7f00_0000_0000u64;
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("wide.dtr");
    let mut w = NativeWriter::new(std::fs::File::create(&rec).unwrap()).unwrap();
    let target = TargetRecord { intervals: Some(Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 }), ..Default::default() };
    for t in 0..20u64 {
        let regions = vec![
            Region { start: base, end: base + (300 << 30), nr_accesses: 0, age: Some(0) },
            Region { start: base + (300 << 30), end: base + (300 << 30) + 16 * MIB, nr_accesses: 18, age: Some(0) },
        ];
        w.snapshot(&target, &Snapshot { start_ns: t * 100_000_000, end_ns: (t + 1) * 100_000_000, regions, total_bytes: None }).unwrap();
    }
    w.finish().unwrap();
    let raw = |extra: &[&str]| {
        let mut args = vec!["report", "heatmap", "-i", rec.to_str().unwrap(), "--output", "raw", "--abs_addr", "--resol", "4", "8"];
        args.extend_from_slice(extra);
        let (ok, out, err) = ours(&args);
        assert!(ok, "{err}");
        // Lines: time address heat.
        let cells: Vec<(u64, f64)> = out.lines().filter_map(|l| l.split_whitespace().collect::<Vec<_>>().get(1..3).map(|c| (c[0].parse().unwrap(), c[1].parse().unwrap()))).collect();
        assert!(!cells.is_empty(), "{out}");
        cells
    };
    let hot = base + (300 << 30);
    let bands = raw(&[]);
    assert!(bands.iter().all(|&(a, _)| a + MIB >= hot && a < hot + 17 * MIB), "the default map is the hot band: {bands:?}");
    assert!(bands.iter().filter(|&&(_, h)| h > 0.0).count() >= bands.len() / 2, "most cells of the band are hot: {bands:?}");
    let hottest = raw(&["--draw_range", "hottest"]);
    assert!(hottest.iter().filter(|&&(_, h)| h > 0.0).count() <= hottest.len() / 8, "damo's hottest range is the whole span, the buffer a sliver: {hottest:?}");
}

#[test]
fn bad_options_are_clear_errors() {
    let input = fixture("damon.data");
    let i = input.to_str().unwrap();
    for (args, needle) in [
        (vec!["--resol", "0", "10"], "resolution"),
        (vec!["--time_range", "10", "5"], "after its end"),
        (vec!["--address_range", "100", "50"], "after its end"),
        (vec!["--time_range", "0", "3", "--resol", "10", "10"], "too short"),
        (vec!["--time_range", "1", "2", "3", "4"], "--time_range"),
        (vec!["--time_range", "soon", "later"], "not a valid time"),
        (vec!["--output", "map.pdf"], "unsupported image type"),
        (vec!["--tid", "1"], "no record"),
        (vec!["--sort_temperature"], "intervals"),
    ] {
        let mut all = vec!["report", "heatmap", "-i", i];
        all.extend_from_slice(&args);
        let (ok, _, err) = ours(&all);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
