//! Source lines and portable records, offline: a C program built with `-g`, samples in its
//! functions written through the recorder's own record file (which names the sampled code at
//! finish), then the binary deleted. The reports must still name the functions, with the
//! file and line of each frame, in `report profile --lines`, pprof and speedscope.

mod differential;

use std::{collections::HashMap, path::Path, process::Command};

use damo_profile::pprof;
use damo_record::model::{FileAddr, Module, StackSample};
use damo_user::record::{file::RecordFile, output::RecordOutput, Losses};
use differential::ours;

const SOURCE: &str = r#"static volatile long sink;
__attribute__((noinline)) static long leaf_fn(long n)
{
    long s = 0;
    for (long i = 0; i < n; i++)
        s += i * i;
    return s;
}
__attribute__((noinline)) static long outer_fn(long n)
{
    return leaf_fn(n) + 1;
}
int main(void)
{
    sink = outer_fn(1000);
    return 0;
}
"#;
/// The lines that open `leaf_fn` and `outer_fn` in [`SOURCE`]: where their first instruction is.
const LEAF_LINE: u32 = 3;
const OUTER_LINE: u32 = 10;

/// Builds [`SOURCE`] with `-g -O0` in `dir`: the binary and the source's path.
fn build(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let src = dir.join("lines.c");
    std::fs::write(&src, SOURCE).unwrap();
    let bin = dir.join("lines_bin");
    let out = Command::new("cc").args(["-g", "-O0", "-o"]).arg(&bin).arg(&src).output().expect("no C compiler (cc): apt-get install gcc");
    assert!(out.status.success(), "cc failed: {}", String::from_utf8_lossy(&out.stderr));
    (bin, src)
}

/// File offsets of `names` in the ELF file `bin`.
fn offsets(bin: &Path, names: &[&str]) -> Vec<u64> {
    use blazesym::inspect::{source::Elf, source::Source, Inspector};
    let inspector = Inspector::new();
    let found = inspector.lookup(&Source::Elf(Elf::new(bin)), names).unwrap();
    found.iter().zip(names).map(|(syms, name)| syms.first().and_then(|s| s.file_offset).unwrap_or_else(|| panic!("no {name} in {}", bin.display()))).collect()
}

/// A record of 30 samples in `leaf_fn` called from `outer_fn` and 10 in `outer_fn` alone,
/// written by the recorder's record file; the binary is deleted afterwards.
fn portable_record(dir: &Path) -> std::path::PathBuf {
    let (bin, _) = build(dir);
    let [leaf, outer] = offsets(&bin, &["leaf_fn", "outer_fn"])[..] else { unreachable!() };
    let module = Module { build_id: blazesym::helper::read_elf_build_id(&bin).unwrap().map(|b| b.to_vec()), path: bin.clone() };
    let rec = dir.join("lines.dtr");
    let mut file = RecordFile::create(&rec, 0o600, false, HashMap::new()).unwrap();
    file.modules(&[module]).unwrap();
    for i in 0..40u64 {
        // A return address points after the call: outer_fn's entry + 1 names the entry.
        let user = if i < 30 { vec![FileAddr { module: 0, offset: leaf }, FileAddr { module: 0, offset: outer + 1 }] } else { vec![FileAddr { module: 0, offset: outer }] };
        file.stack(&StackSample { ts_ns: 1_000 + i * 10_000_000, pid: 5, tid: 5, cpu: 0, comm: "lines_bin".into(), user, kernel: vec![] }).unwrap();
    }
    file.kernel_symbols(&[]).unwrap();
    file.finish(&Losses::default()).unwrap();
    std::fs::remove_file(&bin).unwrap();
    rec
}

#[test]
fn a_record_names_its_functions_and_lines_after_the_binary_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let rec = portable_record(dir.path());
    let src = dir.path().join("lines.c").display().to_string();

    let (ok, table, err) = ours(&["report", "profile", "-i", rec.to_str().unwrap(), "--lines"]);
    assert!(ok, "report profile failed: {err}");
    assert!(table.contains(&format!("leaf_fn {src}:{LEAF_LINE}")), "no line for leaf_fn:\n{table}");
    assert!(table.contains(&format!("outer_fn {src}:{OUTER_LINE}")), "no line for outer_fn:\n{table}");
    assert!(!table.contains("changed or missing"), "the deleted binary was needed:\n{table}");
    let (ok, plain, _) = ours(&["report", "profile", "-i", rec.to_str().unwrap()]);
    assert!(ok && plain.contains("leaf_fn") && !plain.contains(&src), "without --lines, no lines:\n{plain}");

    let out = dir.path().join("lines.pb.gz");
    let (ok, _, err) = ours(&["report", "export", "-i", rec.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(ok, "export failed: {err}");
    let p = pprof::read(std::fs::File::open(&out).unwrap()).unwrap();
    let func = |id: u64| p.function.iter().find(|f| f.id == id).unwrap();
    let mut lines: Vec<(String, String, i64)> =
        p.location.iter().flat_map(|l| l.line.iter().map(|l| (p.str(func(l.function_id).name).to_owned(), p.str(func(l.function_id).filename).to_owned(), l.line))).collect();
    lines.sort();
    lines.dedup();
    assert_eq!(lines, [("leaf_fn".to_string(), src.clone(), i64::from(LEAF_LINE)), ("outer_fn".into(), src.clone(), i64::from(OUTER_LINE))]);
    assert!(p.mapping[0].has_line_numbers && p.mapping[0].has_filenames);

    let out = dir.path().join("lines.json");
    let (ok, _, err) = ours(&["report", "export", "-i", rec.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(ok, "export failed: {err}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let frames: Vec<(String, String, u64)> =
        doc["shared"]["frames"].as_array().unwrap().iter().map(|f| (f["name"].as_str().unwrap().to_owned(), f["file"].as_str().unwrap_or("").to_owned(), f["line"].as_u64().unwrap_or(0))).collect();
    assert!(frames.contains(&("leaf_fn".into(), src.clone(), u64::from(LEAF_LINE))), "{frames:?}");
}

/// `go tool pprof -list` shows the source lines of the export (the real client, when Go is
/// installed: `apt-get install golang-go`).
#[test]
fn go_tool_pprof_lists_the_source_lines() {
    if Command::new("go").arg("version").output().is_err() {
        eprintln!("skipped: no `go` (apt-get install golang-go)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rec = portable_record(dir.path());
    let out = dir.path().join("lines.pb.gz");
    let (ok, _, err) = ours(&["report", "export", "-i", rec.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(ok, "export failed: {err}");
    let listed = Command::new("go").args(["tool", "pprof", "-list", "leaf_fn"]).arg(&out).env("HOME", dir.path()).env("PPROF_TMPDIR", dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "go tool pprof failed: {}", String::from_utf8_lossy(&listed.stderr));
    // The listing shows leaf_fn's source with the sampled line's count (30 samples, 10ms each).
    assert!(text.contains("ROUTINE ======================== leaf_fn"), "{text}");
    let sampled = text.lines().find(|l| l.trim_end().ends_with(&format!(" {LEAF_LINE}:{{"))).unwrap_or_else(|| panic!("no source line {LEAF_LINE} in:\n{text}"));
    assert!(sampled.contains("300ms"), "the sampled line has no CPU time: {sampled}\n{text}");
}
