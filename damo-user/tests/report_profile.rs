//! `report profile` and `report flamegraph` on a record with planted phases: a hot phase
//! (regions at 100% access rate) in which one function runs, and a cold phase with another.

mod differential;

use damo_record::{
    model::{Intervals, Region, Snapshot, StackSample, TargetRecord},
    native::NativeWriter,
};
use differential::ours;

const HOT_FN: u64 = 0xffff_ffff_8100_1000;
const COLD_FN: u64 = 0xffff_ffff_8100_2000;
const CALLER: u64 = 0xffff_ffff_8100_3000;

/// 20 snapshots of 100 ms: 5..10 are hot; one sample every 10 ms runs HOT_FN in hot
/// snapshots and COLD_FN otherwise.
fn planted(path: &std::path::Path) {
    let intervals = Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 };
    let target = TargetRecord { intervals: Some(intervals), ..Default::default() };
    let mut w = NativeWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    let mut samples = Vec::new();
    for i in 0..20u64 {
        let hot = (5..10).contains(&i);
        let (start_ns, end_ns) = (i * 100_000_000, (i + 1) * 100_000_000);
        let nr_accesses = if hot { 20 } else { 1 };
        let regions = vec![Region { start: 0x1000_0000, end: 0x1100_0000, nr_accesses, age: Some(0) }];
        w.snapshot(&target, &Snapshot { start_ns, end_ns, regions, total_bytes: None }).unwrap();
        for k in 0..10 {
            let leaf = if hot { HOT_FN } else { COLD_FN };
            samples.push(StackSample { ts_ns: start_ns + k * 10_000_000 + 1, pid: 7, tid: 7, cpu: 0, comm: "planted".into(), user: vec![], kernel: vec![leaf, CALLER] });
        }
    }
    w.stacks(&samples).unwrap();
    w.kernel_symbols(&[(HOT_FN, "hot_function".into()), (COLD_FN, "cold_function".into()), (CALLER, "caller".into())]).unwrap();
    w.finish().unwrap();
}

#[test]
fn profile_names_the_function_of_the_hot_phase() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("planted.dtr");
    planted(&rec);
    let rec = rec.to_str().unwrap();

    let (ok, out, err) = ours(&["report", "profile", "-i", rec, "--access_rate", "50%", "100%", "--json"]);
    assert!(ok, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["samples"], 50, "5 hot snapshots × 10 samples: {doc}");
    assert_eq!(doc["rows"][0]["symbol"], "hot_function");
    assert_eq!(doc["rows"][0]["overhead_percent"], 100.0);

    let (ok, out, _) = ours(&["report", "profile", "-i", rec]);
    assert!(ok);
    assert!(out.contains("# Samples: 200"), "{out}");
    assert!(out.contains("75.00%  planted          [kernel.kallsyms]        cold_function"), "{out}");

    let folded = dir.path().join("hot.folded");
    let svg = dir.path().join("hot.svg");
    let (ok, _, err) = ours(&["report", "profile", "-i", rec, "--access_rate", "50%", "100%", "--folded", folded.to_str().unwrap(), "--flamegraph", svg.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read_to_string(&folded).unwrap(), "caller_[k];hot_function_[k] 50\n");
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<?xml"), "not XML");
    assert!(svg_text.contains("hot_function"), "no hot_function frame");
    assert!(!svg_text.contains("cold_function"), "a cold frame in the hot selection");

    let out_svg = dir.path().join("all.svg");
    let (ok, _, err) = ours(&["report", "flamegraph", "-i", rec, "-o", out_svg.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(std::fs::read_to_string(&out_svg).unwrap().contains("cold_function"));
}

#[test]
fn profile_refuses_records_without_stacks() {
    let (ok, _, err) = ours(&["report", "profile", "-i", differential::fixture("damon.data").to_str().unwrap()]);
    assert!(!ok && err.contains("no stack samples"), "{err}");
}

/// Samples that caught the kernel handling a timer interrupt (its return path re-enabling
/// interrupts) are one `[kernel: interrupt]` row and frame on top of the code interrupted,
/// as perf's `--children` counts them; the same unlock in a system call keeps its name.
#[test]
fn interrupt_return_frames_are_one_row_on_the_interrupted_code() {
    const UNLOCK: u64 = 0xffff_ffff_8100_4000;
    const IRQ_EXIT: u64 = 0xffff_ffff_8100_5000;
    const TIMER_ENTRY: u64 = 0xffff_ffff_8100_6000;
    const SYSCALL: u64 = 0xffff_ffff_8100_7000;
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("interrupted.dtr");
    let target = TargetRecord { intervals: Some(Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 }), ..Default::default() };
    let mut w = NativeWriter::new(std::fs::File::create(&rec).unwrap()).unwrap();
    let regions = vec![Region { start: 0x1000_0000, end: 0x1100_0000, nr_accesses: 20, age: Some(0) }];
    w.snapshot(&target, &Snapshot { start_ns: 0, end_ns: 100_000_000, regions, total_bytes: None }).unwrap();
    let sample = |k: u64, kernel: Vec<u64>| StackSample { ts_ns: k * 1_000_000 + 1, pid: 7, tid: 7, cpu: 0, comm: "planted".into(), user: vec![], kernel };
    // 60 in hot_function, 30 interrupted there by the timer, 10 in a system call's unlock.
    let mut samples: Vec<StackSample> = (0..60).map(|k| sample(k, vec![HOT_FN, CALLER])).collect();
    samples.extend((60..90).map(|k| sample(k, vec![UNLOCK, IRQ_EXIT, TIMER_ENTRY, HOT_FN, CALLER])));
    samples.extend((90..100).map(|k| sample(k, vec![UNLOCK, SYSCALL, CALLER])));
    w.stacks(&samples).unwrap();
    let names = [
        (HOT_FN, "hot_function"),
        (CALLER, "caller"),
        (UNLOCK, "_raw_spin_unlock_irqrestore"),
        (IRQ_EXIT, "irqentry_exit_to_kernel_mode"),
        (TIMER_ENTRY, "asm_sysvec_apic_timer_interrupt"),
        (SYSCALL, "do_syscall_64"),
    ];
    w.kernel_symbols(&names.map(|(a, n)| (a, n.into()))).unwrap();
    w.finish().unwrap();
    let rec = rec.to_str().unwrap();

    let (ok, out, err) = ours(&["report", "profile", "-i", rec, "--json"]);
    assert!(ok, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows: Vec<(&str, f64)> = doc["rows"].as_array().unwrap().iter().map(|r| (r["symbol"].as_str().unwrap(), r["overhead_percent"].as_f64().unwrap())).collect();
    assert_eq!(rows, [("hot_function", 60.0), ("[kernel: interrupt]", 30.0), ("_raw_spin_unlock_irqrestore", 10.0)], "{doc}");

    let folded = dir.path().join("all.folded");
    let (ok, _, err) = ours(&["report", "profile", "-i", rec, "--folded", folded.to_str().unwrap()]);
    assert!(ok, "{err}");
    let folded = std::fs::read_to_string(&folded).unwrap();
    assert!(folded.contains("caller_[k];hot_function_[k];[kernel: interrupt]_[k] 30\n"), "{folded}");
    assert!(folded.contains("caller_[k];do_syscall_64_[k];_raw_spin_unlock_irqrestore_[k] 10\n"), "{folded}");
}
