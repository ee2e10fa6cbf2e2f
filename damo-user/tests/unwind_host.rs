//! Tier 2 (root): `record --call-graph dwarf` on binaries without frame pointers, perf
//! sampling only (the host's kdamond is never touched). A C workload of ours built with
//! `-fomit-frame-pointer` must show main -> outer -> leaf, Debian's python3 must unwind to
//! `_start`, and no stack may carry a run of `[unknown]` frames.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

mod common;

use blazesym::symbolize::{source::Elf, source::Source, Input, Symbolizer};
use common::Memory;
use damo_user::{normalize::UNKNOWN_MODULE, record, unwind::CallGraph};

/// Builds workload/c/nofp.c without frame pointers into `dir`.
fn build_nofp(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workload/c/nofp.c");
    let out = dir.join("nofp");
    let status = Command::new("gcc").args(["-O2", "-fomit-frame-pointer", "-fno-optimize-sibling-calls", "-o"]).arg(&out).arg(&source).status().expect("run gcc (the root tests need it)");
    assert!(status.success(), "gcc failed to build {}", source.display());
    out
}

fn record(command: String, call_graph: CallGraph) -> Memory {
    let plan = common::command_plan(command, 499, call_graph);
    let mut out = Memory::default();
    let summary = record::run(&plan, &mut out).expect("record");
    eprintln!("{summary}");
    assert!(out.samples.len() >= 200, "{} samples in ~3 s at 499 Hz", out.samples.len());
    let losses = out.losses.expect("finish was called");
    assert_eq!(losses.kernel, [0; damo_common::lost::RECORDED], "kernel-side losses");
    out
}

/// Each sample's user frames as function names, innermost first ("[unknown]" for frames
/// outside any file, "?" for addresses in a file without a symbol).
fn named_stacks(out: &Memory) -> Vec<Vec<String>> {
    let symbolizer = Symbolizer::new();
    out.samples
        .iter()
        .map(|sample| {
            sample
                .user
                .iter()
                .enumerate()
                .map(|(depth, frame)| {
                    if frame.module == UNKNOWN_MODULE {
                        return "[unknown]".to_owned();
                    }
                    let module = &out.modules[frame.module as usize];
                    let source = Source::Elf(Elf::new(&module.path));
                    // Return addresses point after the call; step back into it for outer frames.
                    let offset = if depth == 0 { frame.offset } else { frame.offset - 1 };
                    symbolizer.symbolize_single(&source, Input::FileOffset(offset)).ok().and_then(|s| s.as_sym().map(|s| s.name.to_string())).unwrap_or_else(|| "?".to_owned())
                })
                .collect()
        })
        .collect()
}

fn assert_no_unknown_runs(stacks: &[Vec<String>]) {
    for stack in stacks {
        let run = stack.windows(2).any(|w| w[0] == "[unknown]" && w[1] == "[unknown]");
        assert!(!run, "a stack with [unknown] frames in a row: {stack:?}");
    }
}

fn share(stacks: &[Vec<String>], pred: impl Fn(&[String]) -> bool) -> f64 {
    stacks.iter().filter(|s| pred(s)).count() as f64 / stacks.len() as f64
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn dwarf_unwinds_a_c_program_built_without_frame_pointers() {
    let dir = tempfile::tempdir().unwrap();
    let nofp = build_nofp(dir.path());
    let out = record(format!("{} 3", nofp.display()), CallGraph::default());
    let stacks = named_stacks(&out);
    assert_no_unknown_runs(&stacks);
    let chain = ["leaf", "outer", "main"];
    let full = share(&stacks, |s| {
        let names: Vec<&str> = s.iter().map(String::as_str).filter(|n| chain.contains(n)).collect();
        names == chain
    });
    let examples: Vec<_> = stacks.iter().take(5).collect();
    eprintln!("dwarf: main -> outer -> leaf in {:.1}% of {} samples", full * 100.0, stacks.len());
    assert!(full >= 0.95, "main -> outer -> leaf in only {:.1}% of samples, e.g. {examples:?}", full * 100.0);

    // Frame pointers cannot do it: the same program unwinds to main in few samples.
    let out = record(format!("{} 2", nofp.display()), CallGraph::Fp);
    let stacks = named_stacks(&out);
    assert_no_unknown_runs(&stacks);
    let fp_main = share(&stacks, |s| s.iter().any(|n| n == "main"));
    eprintln!("fp: main in {:.1}% of {} samples", fp_main * 100.0, stacks.len());
    assert!(fp_main < 0.5, "fp mode reached main in {:.1}%: is the workload built with frame pointers?", fp_main * 100.0);
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn dwarf_unwinds_debians_python_to_start() {
    let python = Path::new("/usr/bin/python3");
    assert!(python.exists(), "Debian's python3 is part of the test machine");
    let program = "import time\nt = time.time()\nwhile time.time() - t < 3:\n    sum(i * i for i in range(1000))\n";
    let out = record(format!("{} -c '{program}'", python.display()), CallGraph::default());
    let stacks = named_stacks(&out);
    assert_no_unknown_runs(&stacks);
    let rooted = share(&stacks, |s| s.last().is_some_and(|n| n == "_start") || s.iter().any(|n| n.starts_with("__libc_start_main")));
    let examples: Vec<_> = stacks.iter().filter(|s| s.last().is_none_or(|n| n != "_start")).take(3).collect();
    eprintln!("python3: {:.1}% of {} samples reach _start", rooted * 100.0, stacks.len());
    assert!(rooted >= 0.95, "only {:.1}% of python3's stacks reach _start, e.g. {examples:?}", rooted * 100.0);
    // And deep: the interpreter's eval loop sits between main and the leaf.
    let deep = share(&stacks, |s| s.len() >= 10);
    assert!(deep >= 0.9, "only {:.1}% of python3's stacks have 10 frames or more", deep * 100.0);
}
