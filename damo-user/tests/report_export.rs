//! `report export` on a record with planted phases: decodes the pprof and speedscope files it
//! writes and checks the planted functions come out with the planted sample counts.
//!
//! Thread 7 runs `hot_function` (kernel) in the hot snapshots and `cold_function` otherwise,
//! under the user frame `main` of the damo-trace binary (a real file, so the user frame is
//! symbolized and its mapping has a build-id); thread 8 runs `main` alone throughout.

mod differential;

use std::{collections::HashMap, path::Path};

use damo_profile::pprof;
use damo_record::{
    model::{FileAddr, Intervals, Metadata, Module, Region, Snapshot, StackSample, TargetRecord},
    native::NativeWriter,
};
use differential::ours;

const HOT_FN: u64 = 0xffff_ffff_8100_1000;
const COLD_FN: u64 = 0xffff_ffff_8100_2000;
const CALLER: u64 = 0xffff_ffff_8100_3000;
/// Each thread is sampled every 10 ms.
const PERIOD_NS: i64 = 10_000_000;

/// The damo-trace binary and the file offset of its `main`.
fn main_of_binary() -> (std::path::PathBuf, u64) {
    use blazesym::inspect::{source::Elf, source::Source, Inspector};
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_damo-trace"));
    let inspector = Inspector::new();
    let found = inspector.lookup(&Source::Elf(Elf::new(&bin)), &["main"]).unwrap();
    let offset = found[0].first().and_then(|s| s.file_offset).unwrap_or_else(|| panic!("no main in {}", bin.display()));
    (bin, offset)
}

/// 20 snapshots of 100 ms, 5..10 hot; 10 samples of each thread per snapshot.
fn planted(path: &Path) -> Module {
    planted_with(path, None)
}

/// The planted record, saying how it was made when `metadata` is given.
fn planted_with(path: &Path, metadata: Option<&Metadata>) -> Module {
    let (bin, main) = main_of_binary();
    let module = Module { build_id: blazesym::helper::read_elf_build_id(&bin).unwrap().map(|b| b.to_vec()), path: bin };
    let user = vec![FileAddr { module: 0, offset: main }];
    let intervals = Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 };
    let target = TargetRecord { intervals: Some(intervals), ..Default::default() };
    let mut w = NativeWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    if let Some(m) = metadata {
        w.metadata(m).unwrap();
    }
    w.modules(std::slice::from_ref(&module)).unwrap();
    let mut samples = Vec::new();
    for i in 0..20u64 {
        let hot = (5..10).contains(&i);
        let (start_ns, end_ns) = (i * 100_000_000, (i + 1) * 100_000_000);
        let regions = vec![Region { start: 0x1000_0000, end: 0x1100_0000, nr_accesses: if hot { 20 } else { 1 }, age: Some(0) }];
        w.snapshot(&target, &Snapshot { start_ns, end_ns, regions, total_bytes: None }).unwrap();
        for k in 0..10 {
            let ts_ns = start_ns + k * PERIOD_NS as u64 + 1;
            let leaf = if hot { HOT_FN } else { COLD_FN };
            samples.push(StackSample { ts_ns, pid: 7, tid: 7, cpu: 0, comm: "planted".into(), user: user.clone(), kernel: vec![leaf, CALLER] });
            samples.push(StackSample { ts_ns: ts_ns + 5_000_000, pid: 7, tid: 8, cpu: 1, comm: "helper".into(), user: user.clone(), kernel: vec![] });
        }
    }
    w.stacks(&samples).unwrap();
    w.kernel_symbols(&[(HOT_FN, "hot_function".into()), (COLD_FN, "cold_function".into()), (CALLER, "caller".into())]).unwrap();
    w.finish().unwrap();
    module
}

/// `report export` of `rec` into `out`, with `extra` arguments; panics with stderr on failure.
fn export(rec: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["report", "export", "-i", rec.to_str().unwrap(), "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (ok, stdout, err) = ours(&args);
    assert!(ok, "export {extra:?} failed: {err}");
    stdout
}

/// Per function name: (samples, cpu ns) of the samples with it on their stack, each once.
fn pprof_totals(p: &pprof::Profile) -> HashMap<String, (i64, i64)> {
    let locations: HashMap<u64, &pprof::Location> = p.location.iter().map(|l| (l.id, l)).collect();
    let functions: HashMap<u64, &str> = p.function.iter().map(|f| (f.id, p.str(f.name))).collect();
    let mut totals: HashMap<String, (i64, i64)> = HashMap::new();
    for s in &p.sample {
        let mut names: Vec<&str> = s.location_id.iter().flat_map(|id| locations[id].line.iter().map(|l| functions[&l.function_id])).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let t = totals.entry(name.to_owned()).or_default();
            t.0 += s.value[0];
            t.1 += s.value[1];
        }
    }
    totals
}

#[test]
fn pprof_has_the_planted_functions_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("planted.dtr");
    let module = planted(&rec);

    let all = dir.path().join("all.pb.gz");
    let said = export(&rec, &all, &[]);
    assert!(said.contains("400 samples (all samples), 10000000 ns each (from the median gap between samples)"), "{said}");
    let p = pprof::read(std::fs::File::open(&all).unwrap()).unwrap();
    assert_eq!(p.string_table[0], "", "string 0 must be empty");
    let types: Vec<(&str, &str)> = p.sample_type.iter().map(|t| (p.str(t.r#type), p.str(t.unit))).collect();
    assert_eq!(types, [("samples", "count"), ("cpu", "nanoseconds")]);
    assert_eq!(p.period, PERIOD_NS);
    assert_eq!((p.time_nanos, p.duration_nanos), (1, 1_995_000_000 + PERIOD_NS));
    let totals = pprof_totals(&p);
    assert_eq!(totals["hot_function"], (50, 50 * PERIOD_NS), "{totals:?}");
    assert_eq!(totals["cold_function"], (150, 150 * PERIOD_NS));
    assert_eq!(totals["caller"], (200, 200 * PERIOD_NS));
    assert_eq!(totals["main"], (400, 400 * PERIOD_NS), "the user frame is symbolized from the binary");
    assert_eq!(p.sample.iter().map(|s| s.value[0]).sum::<i64>(), 400);

    // Every location's mapping exists; the binary's carries its build-id in hex.
    for l in &p.location {
        assert!(p.mapping.iter().any(|m| m.id == l.mapping_id), "location {l:?} has no mapping");
    }
    let files: Vec<(&str, &str)> = p.mapping.iter().map(|m| (p.str(m.filename), p.str(m.build_id))).collect();
    let build_id: String = module.build_id.unwrap_or_default().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(files, [(module.path.to_str().unwrap(), build_id.as_str()), ("[kernel.kallsyms]", "")]);

    // Labels: thread 8's samples say so.
    let tid_of = |s: &pprof::Sample| s.label.iter().find(|l| p.str(l.key) == "tid").map(|l| l.num);
    let comm_of = |s: &pprof::Sample| s.label.iter().find(|l| p.str(l.key) == "comm").map(|l| p.str(l.str).to_owned());
    let helper: i64 = p.sample.iter().filter(|s| tid_of(s) == Some(8)).inspect(|s| assert_eq!(comm_of(s).as_deref(), Some("helper"))).map(|s| s.value[0]).sum();
    assert_eq!(helper, 200);

    // The hot phase only, through damo's filters.
    let hot = dir.path().join("hot.pprof");
    export(&rec, &hot, &["--access_rate", "50%", "100%", "--sample_hz", "200"]);
    let p = pprof::read(std::fs::File::open(&hot).unwrap()).unwrap();
    assert_eq!(p.period, 5_000_000, "--sample_hz sets the period");
    let totals = pprof_totals(&p);
    assert_eq!(totals["hot_function"], (50, 50 * 5_000_000));
    assert_eq!(totals["main"], (100, 100 * 5_000_000));
    assert!(!totals.contains_key("cold_function"), "{totals:?}");
}

#[test]
fn the_records_sampling_rate_and_wall_clock_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("with-metadata.dtr");
    let metadata = Metadata { sample_hz: 250, realtime_offset_ns: Some(1_796_083_200_000_000_000), ..Default::default() };
    planted_with(&rec, Some(&metadata));
    let out = dir.path().join("m.pb.gz");
    let said = export(&rec, &out, &[]);
    assert!(said.contains("4000000 ns each (from the record's sampling rate)"), "{said}");
    let p = pprof::read(std::fs::File::open(&out).unwrap()).unwrap();
    assert_eq!((p.period, p.time_nanos), (4_000_000, 1_796_083_200_000_000_001), "the first sample's wall-clock time");
}

#[test]
fn speedscope_has_time_ordered_thread_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("planted.dtr");
    planted(&rec);
    let out = dir.path().join("all.speedscope.json");
    export(&rec, &out, &[]);
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc["$schema"], "https://www.speedscope.app/file-format-schema.json");
    assert_eq!(doc["activeProfileIndex"], 0);
    assert!(doc["exporter"].as_str().unwrap().starts_with("damo-trace "), "{}", doc["exporter"]);
    let frames: Vec<&str> = doc["shared"]["frames"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    let profiles = doc["profiles"].as_array().unwrap();
    let names: Vec<&str> = profiles.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["planted (7)", "helper (8)"]);

    let mut leaves: HashMap<&str, usize> = HashMap::new();
    for p in profiles {
        assert_eq!((p["type"].as_str(), p["unit"].as_str()), (Some("sampled"), Some("nanoseconds")));
        let samples = p["samples"].as_array().unwrap();
        let weights: Vec<u64> = p["weights"].as_array().unwrap().iter().map(|w| w.as_u64().unwrap()).collect();
        assert_eq!((samples.len(), weights.len()), (200, 200));
        // Samples 10 ms apart weigh 10 ms each, the last one period.
        assert!(weights.iter().all(|&w| w == PERIOD_NS as u64), "{weights:?}");
        let (start, end) = (p["startValue"].as_u64().unwrap(), p["endValue"].as_u64().unwrap());
        assert_eq!(end - start, weights.iter().sum::<u64>());
        for s in samples {
            let stack: Vec<&str> = s.as_array().unwrap().iter().map(|i| frames[i.as_u64().unwrap() as usize]).collect();
            assert_eq!(stack[0], "main", "outermost first: {stack:?}");
            *leaves.entry(stack[stack.len() - 1]).or_default() += 1;
        }
    }
    assert_eq!(profiles[1]["startValue"], 5_000_000, "relative to the first sample");
    assert_eq!(leaves, HashMap::from([("hot_function_[k]", 50), ("cold_function_[k]", 150), ("main", 200)]));
    // Thread 7's time order shows the phases: cold, hot, cold.
    let t7: Vec<&str> = profiles[0]["samples"].as_array().unwrap().iter().map(|s| frames[s.as_array().unwrap().last().unwrap().as_u64().unwrap() as usize]).collect();
    assert!(t7[..50].iter().all(|&f| f == "cold_function_[k]") && t7[50..100].iter().all(|&f| f == "hot_function_[k]"), "{t7:?}");
}

#[test]
fn bad_inputs_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("planted.dtr");
    planted(&rec);
    let rec = rec.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["report", "export", "-i", rec];
        all.extend_from_slice(args);
        ours(&all)
    };
    let (ok, _, err) = run(&["-o", dir.path().join("out.txt").to_str().unwrap()]);
    assert!(!ok && err.contains("cannot tell the format") && err.contains("--format"), "{err}");
    let (ok, _, err) = run(&["-o", "x.pb.gz", "--format", "flamegraph"]);
    assert!(!ok && err.contains("invalid value 'flamegraph'"), "{err}");
    let (ok, _, err) = run(&["-o", "/nonexistent/dir/x.pb.gz"]);
    assert!(!ok && err.contains("failed to create /nonexistent/dir/x.pb.gz"), "{err}");
    let (ok, _, err) = run(&["-o", dir.path().join("none.json").to_str().unwrap(), "--address", "0", "4096"]);
    assert!(!ok && err.contains("no samples in the selection"), "{err}");
    let (ok, _, err) = ours(&["report", "export", "-i", differential::fixture("damon.data").to_str().unwrap(), "-o", dir.path().join("x.json").to_str().unwrap()]);
    assert!(!ok && err.contains("no stack samples"), "{err}");
}
