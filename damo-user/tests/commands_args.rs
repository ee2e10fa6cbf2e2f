//! `args damon`: the kdamonds JSON of a command line, compared with damo 3.4.3's for the same
//! command line, read back by damo with the same meaning, and read back by `start --kdamonds`'
//! reader as the parameters `start` would apply.

mod differential;

use std::{path::Path, process::Command};

use clap::Parser;
use damo_sysfs::params::Document;
use damo_user::control::args::{load_document, DamonArgs};

/// Command lines of `start`'s DAMON options: targets, intervals, region counts and regions,
/// DAMOS schemes with quotas, watermarks and a filter (damo takes one filter per scheme).
/// A bare number is in the option's own unit (ms for quota times, µs for the rest), as in damo.
const CASES: &[&[&str]] = &[
    &["1234"],
    &["--target_pid", "1234", "-s", "10ms", "-a", "200ms", "-u", "2s", "-n", "20", "-m", "500"],
    &["--target_pid", "99", "--ops", "fvaddr", "--regions", "4096-1M 2M-4M"],
    &[
        "paddr",
        "--regions",
        "4G-8G",
        "--damos_action",
        "stat",
        "--damos_access_rate",
        "5%",
        "100%",
        "--damos_quota_space",
        "100M",
        "--damos_quota_interval",
        "1s",
        "--damos_wmarks",
        "free_mem_rate",
        "5s",
        "500",
        "400",
        "200",
    ],
    &["1234", "--damos_action", "pageout", "--damos_access_rate", "0%", "0%", "--damos_age", "5s", "max", "--damos_filter", "reject", "non", "anon"],
    &[
        "1",
        "--damos_action",
        "lru_prio",
        "--damos_sz_region",
        "4K",
        "2M",
        "--damos_apply_interval",
        "1s",
        "--damos_quota_interval",
        "2000",
        "--damos_quota_time",
        "10",
        "--damos_quota_weights",
        "1",
        "2",
        "3",
        "--damos_filter",
        "allow",
        "memcg",
        "/foo",
    ],
    &["1", "--damos_action", "stat", "--damos_action", "cold", "--damos_access_rate", "10%", "90%", "--damos_access_rate", "0%", "5%", "--damos_sz_region", "8K", "1G"],
    &["1", "--damos_action", "hugepage", "--damos_filter", "allow", "addr", "4096", "1M"],
];

fn damo_trace(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_damo-trace")).args(args).current_dir(dir).output().expect("failed to run damo-trace")
}

fn damo_args(damo: &Path, args: &[&str], dir: &Path) -> String {
    // Not `--raw`: damo 3.4.3's raw form writes its ms and µs interval fields in other units
    // (`format_time_*_exact`), which damo itself would read back wrong; its unit texts are exact.
    let out = Command::new(damo).arg("args").arg("damon").args(args).current_dir(dir).output().expect("failed to run damo");
    assert!(out.status.success(), "damo args damon {args:?} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn ours(args: &[&str], dir: &Path) -> String {
    let mut all = vec!["args", "damon"];
    all.extend_from_slice(args);
    let out = damo_trace(&all, dir);
    assert!(out.status.success(), "damo-trace args damon {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn parse(json: &str, whose: &str) -> Document {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{whose}'s document does not parse: {e}\n{json}"))
}

/// What differs only in form, made one: a scheme without a time or size quota never resets
/// one (damo writes "max" as the reset interval, damo-trace 0); damo's "max" access rate is
/// 100 %; damo reads `memcg_path` of memcg filters only (it writes "" or null elsewhere).
fn meaning(mut doc: Document) -> Document {
    for s in doc.kdamonds.iter_mut().flat_map(|k| &mut k.contexts).flat_map(|c| &mut c.schemes) {
        if s.quotas.time_ms == 0 && s.quotas.sz_bytes == 0 {
            s.quotas.reset_interval_ms = 0;
        }
        s.access_pattern.nr_accesses.max = s.access_pattern.nr_accesses.max.min(100.0);
        for f in &mut s.filters {
            if f.kind != "memcg" {
                f.memcg_path = None;
            }
        }
    }
    doc
}

#[test]
fn the_document_is_damos_for_the_same_command_line() {
    let Some(damo) = differential::damo() else { return };
    let dir = tempfile::tempdir().unwrap();
    for case in CASES {
        let ours_json = ours(case, dir.path());
        let damo_json = damo_args(&damo, case, dir.path());
        let expected = meaning(parse(&damo_json, "damo"));
        assert_eq!(meaning(parse(&ours_json, "damo-trace")), expected, "args damon {case:?}: damo-trace's parameters differ from damo's");
        // damo reads ours with the same meaning (it reads no other field names).
        let file = dir.path().join("ours.json");
        std::fs::write(&file, &ours_json).unwrap();
        let reread = damo_args(&damo, &["--kdamonds", file.to_str().unwrap()], dir.path());
        assert_eq!(meaning(parse(&reread, "damo (reading ours)")), expected, "args damon {case:?}: damo reads damo-trace's document differently");
    }
}

#[derive(Parser)]
struct Options {
    target: Option<String>,
    #[command(flatten)]
    damon: DamonArgs,
}

#[test]
fn start_reads_back_the_parameters_it_would_apply() {
    let dir = tempfile::tempdir().unwrap();
    // paddr's default region comes from /proc/iomem, which hides addresses from users: the
    // paddr case names its regions, the others are processes.
    for case in CASES {
        let file = dir.path().join("k.json");
        let mut all = vec!["args", "damon", "--out", file.to_str().unwrap()];
        all.extend_from_slice(case);
        let out = damo_trace(&all, dir.path());
        assert!(out.status.success() && out.stdout.is_empty(), "{case:?}: {}", String::from_utf8_lossy(&out.stderr));
        let opts = Options::try_parse_from(std::iter::once("start").chain(case.iter().copied())).unwrap();
        let pid = opts.target.as_deref().and_then(|t| t.parse().ok()).or(opts.damon.target_pid);
        let ops = opts.damon.ops.clone().or_else(|| (opts.target.as_deref() == Some("paddr")).then(|| "paddr".to_string()));
        let direct = DamonArgs { ops, ..opts.damon }.document(pid).unwrap();
        assert_eq!(load_document(&file).unwrap(), direct, "{case:?}: start --kdamonds reads other parameters than the options give");
    }
}

#[test]
fn add_remove_replace_edit_a_document() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    std::fs::write(&base, ours(&["1", "-a", "200ms"], dir.path())).unwrap();
    let two = parse(&ours(&["--add", base.to_str().unwrap(), "2"], dir.path()), "add");
    assert_eq!(two.kdamonds.iter().map(|k| k.contexts[0].targets[0].pid).collect::<Vec<_>>(), [Some(1), Some(2)]);
    std::fs::write(&base, serde_json::to_string(&two).unwrap()).unwrap();
    let replaced = parse(&ours(&["--replace", base.to_str().unwrap(), "0", "3"], dir.path()), "replace");
    assert_eq!(replaced.kdamonds.iter().map(|k| k.contexts[0].targets[0].pid).collect::<Vec<_>>(), [Some(3), Some(2)]);
    let removed = parse(&ours(&["--remove", base.to_str().unwrap(), "0"], dir.path()), "remove");
    assert_eq!(removed.kdamonds.iter().map(|k| k.contexts[0].targets[0].pid).collect::<Vec<_>>(), [Some(2)]);
    let report = ours(&["1", "--damos_action", "stat", "--format", "report"], dir.path());
    assert!(report.contains("target 0: pid 1") && report.contains("scheme 0: stat"), "{report}");
}

#[test]
fn bad_command_lines_end_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    std::fs::write(&base, ours(&["1"], dir.path())).unwrap();
    let b = base.to_str().unwrap();
    for (args, says) in [
        (vec!["sleep 10"], "command has no pid"),
        (vec!["--remove", b, "5"], "there is no kdamond 5"),
        (vec!["--remove", b, "x"], "not a kdamond index"),
        (vec!["--add", "/nonexistent.json", "1"], "/nonexistent.json"),
        (vec!["--add", "/dev/null", "1"], "not a regular file"),
        (vec!["--kdamonds", "/proc/self/status"], "not a kdamonds JSON document"),
        (vec!["--ops", "vaddr"], "give a pid"),
        (vec!["1", "--damos_action", "stat", "--damos_access_rate", "50%", "5%"], "above the maximum"),
        (vec!["1", "--format", "report", "--out", "x.json"], "--out"),
    ] {
        let mut all = vec!["args", "damon"];
        all.extend_from_slice(&args);
        let out = damo_trace(&all, dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.lines().count() == 1 && err.contains(says), "{args:?}: {err}");
    }
}
