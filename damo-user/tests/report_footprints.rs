//! `report footprints` through the binary: on a damo-trace record with known footprints, on
//! records without any (an error that says so), on damo's `.mem_footprint` JSON (given, or
//! found beside a damo record), and against damo itself when DAMO_BIN is set.

mod differential;

use std::path::Path;

use damo_record::{
    model::{FootprintSnapshot, ProcStatSample, ProcessFootprint, Snapshot, SystemMemory, TargetRecord, Vma, VmaSnapshot},
    native::NativeWriter,
};
use differential::{damo, damo_report, fixture, ours, ours_report};

const MIB: u64 = 1 << 20;
/// Summed rss of each footprint snapshot, in time order, in MiB.
const RSS_MIB: [u64; 8] = [40, 10, 80, 20, 70, 30, 60, 50];

/// A record as `damo-trace record` writes one: snapshots and, each second, footprints of two
/// processes and the system, mappings when they change, and CPU times.
fn recorded(path: &Path) {
    let target = TargetRecord::default();
    let mut w = NativeWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    for (i, &rss) in RSS_MIB.iter().enumerate() {
        let ts_ns = i as u64 * 1_000_000_000;
        w.snapshot(&target, &Snapshot { start_ns: ts_ns, end_ns: ts_ns + 100_000_000, regions: Vec::new(), total_bytes: None }).unwrap();
        let footprint = FootprintSnapshot {
            ts_ns,
            // sys_used: 1 GiB + i MiB.
            system: Some(SystemMemory { total: 4 << 30, free: (3 << 30) - i as u64 * MIB, available: 2 << 30, buffers: 0, cached: 0 }),
            processes: vec![
                ProcessFootprint { pid: 100, vsz: 300 * MIB, rss: (rss - 8) * MIB, shared: MIB, text: 4096, data: 8 * MIB },
                ProcessFootprint { pid: 101, vsz: 100 * MIB, rss: 8 * MIB, shared: 0, text: 4096, data: MIB },
            ],
        };
        w.footprints(&[footprint]).unwrap();
        if i % 4 == 0 {
            let vmas = vec![Vma { start: 0x1000, end: 0x2000 + i as u64 * 4096, perms: "rw-p".into(), offset: 0, name: "[heap]".into() }];
            w.vmas(&[VmaSnapshot { ts_ns, pid: 100, vmas }]).unwrap();
        }
        w.proc_stats(&[ProcStatSample { ts_ns, pid: 100, comm: "app".into(), utime_ns: i as u64 * 10_000_000, stime_ns: 0, nr_threads: 1, rss: rss * MIB }]).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn percentiles_of_a_recorded_records_footprints() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.dtr");
    recorded(&rec);
    let input = rec.to_str().unwrap();
    // Sorted: 10 20 … 80 MiB; percentile p is the value at index ⌊p/100 × 8⌋ (the last for 100).
    let (ok, out, err) = ours(&["report", "footprints", "rss", "-i", input, "--raw_number", "--nr_cols_bar", "0"]);
    assert!(ok, "{err}");
    let mib = |m: u64| m * MIB;
    let want = format!("# <percentile> <rss>\n# avr:\t{}\n  0 {:>15}\n 25 {:>15}\n 50 {:>15}\n 75 {:>15}\n100 {:>15}\n", mib(45), mib(10), mib(30), mib(50), mib(70), mib(80));
    assert_eq!(out, want);

    // Time order, every value, human units.
    let (ok, out, err) = ours(&["report", "footprints", "rss", "-i", input, "--sortby", "time", "--all_footprint"]);
    assert!(ok, "{err}");
    let values: Vec<&str> = out.lines().skip(2).collect();
    let want: Vec<String> = RSS_MIB.iter().enumerate().map(|(i, m)| format!("{i} {m}.000 MiB")).collect();
    assert_eq!(values, want, "{out}");

    // All three metrics by default, in damo's order.
    let (ok, out, err) = ours(&["report", "footprints", "-i", input, "-r", "50", "51", "1", "--nr_cols_bar", "0"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "# <percentile> <vsz>\n# avr:\t400.000 MiB\n 50     400.000 MiB\n\
         # <percentile> <rss>\n# avr:\t45.000 MiB\n 50      50.000 MiB\n\
         # <percentile> <sys_used>\n# avr:\t1.003 GiB\n 50       1.004 GiB\n"
    );

    // record_info counts what was sampled.
    let (ok, out, err) = ours(&["report", "record_info", "-i", input]);
    assert!(ok, "{err}");
    assert!(out.contains("proc samples: 8 footprint snapshots, 2 vma snapshots, 8 proc stats"), "{out}");

    let svg = dir.path().join("fp.svg");
    let (ok, _, err) = ours(&["report", "footprints", "-i", input, "--plot", svg.to_str().unwrap()]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&svg).unwrap();
    roxmltree::Document::parse(&text).expect("the plot is well-formed SVG");
    assert!(text.contains("sys_used"), "each metric is a labelled series");
}

#[test]
fn a_record_without_footprints_is_an_error_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("bare.dtr");
    let mut w = NativeWriter::new(std::fs::File::create(&rec).unwrap()).unwrap();
    w.snapshot(&TargetRecord::default(), &Snapshot { start_ns: 0, end_ns: 1, regions: Vec::new(), total_bytes: None }).unwrap();
    w.finish().unwrap();
    // A damo record without its .mem_footprint file, too.
    let damo_record = dir.path().join("damon.data");
    std::fs::copy(fixture("damon.data"), &damo_record).unwrap();
    for input in [&rec, &damo_record] {
        let (ok, out, err) = ours(&["report", "footprints", "-i", input.to_str().unwrap()]);
        assert!(!ok, "succeeded on {}: {out}", input.display());
        assert!(out.is_empty(), "{out}");
        assert!(err.contains("has no memory footprints"), "{err}");
    }
}

/// damo's `.mem_footprint` JSON, as its `record` writes it: pids as given, statm in pages,
/// meminfo in KiB, the system under a null pid.
fn damo_json(path: &Path) {
    let snapshots: Vec<String> = RSS_MIB
        .iter()
        .enumerate()
        .map(|(i, rss)| {
            format!(
                r#"{{"time": {}.25, "footprints": [{{"pid": 100, "footprint": {{"size": {}, "resident": {}, "shared": 3, "trs": 1, "lrs": 0, "drs": 9, "dt": 0}}}}, {{"pid": null, "footprint": {{"total": 4000000, "free": {}, "available": 2000000, "buffers": 7, "cached": 9}}}}]}}"#,
                1_700_000_000 + i,
                25_600 + i * 7,
                rss * 256 + i as u64,
                3_000_000 - i * 1_111
            )
        })
        .collect();
    std::fs::write(path, format!("[{}]", snapshots.join(",\n"))).unwrap();
}

#[test]
fn reads_damos_mem_footprint_files() {
    let dir = tempfile::tempdir().unwrap();
    damo_json(&dir.path().join("damon.data.mem_footprint"));
    std::fs::copy(fixture("damon.data"), dir.path().join("damon.data")).unwrap();
    // Given directly, and found beside the damo record (damo-trace's default input).
    let direct = ours_report(&["footprints", "rss", "-i", "damon.data.mem_footprint", "--raw_number"], dir.path());
    let beside = ours_report(&["footprints", "rss", "--raw_number"], dir.path());
    assert_eq!(direct, beside);
    let first = direct.lines().nth(2).unwrap();
    let bar = format!("{}{}", "*".repeat(7), " ".repeat(52));
    assert_eq!(first, format!("  0 {:>15} |{bar}|", (10 * 256 + 1) * 4096), "{direct}");
}

#[test]
fn matches_damo_on_its_mem_footprint_files() {
    let Some(d) = damo() else { return };
    let dir = tempfile::tempdir().unwrap();
    damo_json(&dir.path().join("damon.data.mem_footprint"));
    for args in [
        &["footprints"][..],
        &["footprints", "vsz", "--raw_number"],
        &["footprints", "rss", "-r", "1", "101", "1"],
        &["footprints", "sys_used", "--sortby", "time", "--all_footprint"],
        &["footprints", "all", "--nr_cols_bar", "20", "-r", "0", "101", "10"],
    ] {
        let mut full = args.to_vec();
        full.extend(["--input", "damon.data.mem_footprint"]);
        let theirs = damo_report(&d, &full, dir.path());
        let ours = ours_report(&full, dir.path());
        assert_eq!(ours, theirs, "damo-trace report {full:?} differs from damo's");
    }
}

#[test]
fn convert_writes_the_footprints_as_damos_mem_footprint() {
    let dir = tempfile::tempdir().unwrap();
    recorded(&dir.path().join("rec.dtr"));
    let (ok, _, err) = ours(&["convert", "-i", dir.path().join("rec.dtr").to_str().unwrap(), "-o", dir.path().join("damon.data").to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(dir.path().join("damon.data.mem_footprint").is_file(), "no mem_footprint beside the converted record");
    // The converted pair reports what the record does, to the byte; damo reads it the same.
    let d = damo();
    for args in [&["footprints"][..], &["footprints", "rss", "--raw_number", "--sortby", "time", "--all_footprint"], &["footprints", "sys_used", "-r", "0", "101", "10"]] {
        let native = ours_report(&[args, &["-i", "rec.dtr"]].concat(), dir.path());
        assert_eq!(ours_report(&[args, &["-i", "damon.data"]].concat(), dir.path()), native, "{args:?}");
        if let Some(d) = &d {
            assert_eq!(damo_report(d, &[args, &["--input", "damon.data.mem_footprint"]].concat(), dir.path()), native, "damo on the converted footprints, {args:?}");
        }
    }
}
