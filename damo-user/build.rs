//! Builds the eBPF object from `damo-ebpf` and leaves it in OUT_DIR for `include_bytes!`.
//!
//! The object needs nightly's `-Z build-std=core` and bpf-linker (scripts/setup.sh installs
//! both). `DAMO_TRACE_NO_EBPF=1` writes an empty object instead, so `cargo check`, clippy and
//! the offline tests work without them; such a binary says so when asked to trace.
//!
//! It also writes `version.txt` for `damo-trace --version`: the eBPF object's SHA-256 and the
//! compilers that built both sides, so a bug report names the exact build.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use sha2::{Digest, Sha256};

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out_dir.join("damo-ebpf.o");
    println!("cargo:rerun-if-env-changed=DAMO_TRACE_NO_EBPF");
    if env::var_os("DAMO_TRACE_NO_EBPF").is_some_and(|v| v != "0") {
        fs::write(&object, []).expect("write the empty eBPF object");
        write_version(&out_dir, "none (built with DAMO_TRACE_NO_EBPF=1: this binary cannot trace)");
        return;
    }
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap();
    for dir in ["damo-ebpf/src", "damo-ebpf/Cargo.toml", "damo-ebpf/toolchain.toml", "damo-common/src"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    // A target dir of its own: the outer cargo holds the workspace's lock while we run.
    let target_dir = out_dir.join("ebpf-target");
    let (toolchain, ebpf_rustc) = checked_toolchain(workspace);
    let mut cargo = Command::new("rustup");
    cargo
        .args(["run", &toolchain, "cargo", "build", "--release", "--package", "damo-ebpf"])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(workspace);
    // The outer build's compiler and flags (e.g. crt-static for the VM binary) are not ours.
    for var in ["RUSTC", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "RUSTUP_TOOLCHAIN", "CARGO"] {
        cargo.env_remove(var);
    }
    let status = cargo.status().unwrap_or_else(|e| panic!("failed to run `rustup run nightly cargo` ({e}); run scripts/setup.sh"));
    if !status.success() {
        panic!(
            "building the eBPF programs (damo-ebpf) failed; if rust-src or bpf-linker is missing, \
             run scripts/setup.sh (or set DAMO_TRACE_NO_EBPF=1 to build without tracing)"
        );
    }
    let built = target_dir.join("bpfel-unknown-none/release/damo");
    fs::copy(&built, &object).unwrap_or_else(|e| panic!("failed to copy {}: {e}", built.display()));
    let bytes = fs::read(&object).expect("read the eBPF object back");
    let hash: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    let linker = first_line(Command::new("bpf-linker").arg("--version")).unwrap_or_else(|| "bpf-linker ?".into());
    write_version(&out_dir, &format!("sha256 {hash}, {} bytes, built by {ebpf_rustc} and {linker}", bytes.len()));
}

/// `version.txt`: what `--version` prints after the package version.
fn write_version(out_dir: &Path, ebpf: &str) {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let user = first_line(Command::new(rustc).arg("-V")).unwrap_or_else(|| "rustc ?".into());
    let target = env::var("TARGET").unwrap_or_default();
    // musl links statically unless told `-crt-static`; cargo lists crt-static only when asked.
    let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let musl = env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|e| e == "musl");
    let linkage = if features.split(',').any(|f| f == "crt-static") || (musl && !flags.contains("-crt-static")) { "static" } else { "dynamically linked" };
    let text = format!("{}\neBPF object: {ebpf}\nuser side: {user}, {target}, {linkage}", env::var("CARGO_PKG_VERSION").unwrap());
    fs::write(out_dir.join("version.txt"), text).expect("write version.txt");
}

/// The first line a command prints, if it runs.
fn first_line(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok().filter(|o| o.status.success())?;
    String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_owned)
}

/// The pinned eBPF toolchain (damo-ebpf/toolchain.toml), after checking that the installed one
/// is that compiler: a floating nightly with another LLVM than bpf-linker's fails late and
/// obscurely, so a mismatch stops the build here with what to do.
/// Returns the toolchain's name and its compiler, as `--version` names it.
fn checked_toolchain(workspace: &Path) -> (String, String) {
    let pin_path = workspace.join("damo-ebpf/toolchain.toml");
    let pin = fs::read_to_string(&pin_path).unwrap_or_else(|e| panic!("failed to read {}: {e}", pin_path.display()));
    let field = |key: &str| {
        pin.lines().find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix('=').map(|v| v.trim().trim_matches('"').to_owned())).unwrap_or_else(|| panic!("{} has no `{key}`", pin_path.display()))
    };
    let (toolchain, hash, date, llvm) = (field("toolchain"), field("commit-hash"), field("commit-date"), field("llvm-major"));
    let output = Command::new("rustup").args(["run", &toolchain, "rustc", "-vV"]).output();
    let version = match output {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => panic!("the eBPF toolchain `{toolchain}` is not installed; run scripts/setup.sh (or set DAMO_TRACE_NO_EBPF=1 to build without tracing)"),
    };
    let value = |key: &str| version.lines().find_map(|l| l.strip_prefix(key)).map(str::trim).unwrap_or("?").to_owned();
    let (got_hash, got_date, got_llvm) = (value("commit-hash:"), value("commit-date:"), value("LLVM version:"));
    if !got_hash.starts_with(&hash) || got_date != date || got_llvm.split('.').next() != Some(llvm.as_str()) {
        panic!(
            "the eBPF build is pinned to rustc {hash} ({date}, LLVM {llvm}) in {}, but `rustup run {toolchain}` is {} ({got_date}, LLVM {got_llvm}); \
             install the pinned nightly as `{toolchain}`, or bump the pin together with bpf-linker's LLVM (docs/ebpf-build.md)",
            pin_path.display(),
            &got_hash[..got_hash.len().min(9)]
        );
    }
    let release = version.lines().next().unwrap_or("rustc ?").to_owned();
    (toolchain, format!("{release}, LLVM {got_llvm}"))
}
