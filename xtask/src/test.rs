//! `cargo xtask test`: every test tier this machine can run, in order.
//!
//! 0. lints: `cargo fmt --check`, `cargo clippy -D warnings` (fast failure);
//! 1. offline: `cargo test --workspace` (units, formats, reports, differential tests vs damo);
//! 2. root on the host: eBPF loading and perf sampling on our own workloads (never host DAMON);
//! 3. the VM: real kdamonds end to end (`cargo xtask vm-test`).
//!
//! Between 2 and 3, the Spark tier: the dataset queries on Apache Spark (`report_fleet_spark`).

use std::{process::Command, time::Instant};

use anyhow::{bail, Context, Result};

use crate::{
    damo, dist, setup,
    setup::workspace_root,
    tiers::{self, Target, Tier},
    venv, vm,
};

#[derive(clap::Args)]
pub struct Options {
    /// Skip the root tier (eBPF on the host). CI never skips it.
    #[arg(long)]
    pub skip_root: bool,
    /// Skip the VM tier.
    #[arg(long)]
    pub skip_vm: bool,
    /// Skip the Spark tier (pyspark and a JVM: a 300 MB download, minutes). CI never skips it.
    #[arg(long)]
    pub skip_spark: bool,
}

pub fn run(opts: Options) -> Result<()> {
    setup::ensure()?;
    let started = Instant::now();
    // Lints first: a minute, where the tiers take many.
    cargo(&["fmt", "--all", "--check"]).context("the tree is not formatted: run `cargo fmt --all`")?;
    let status = Command::new(env!("CARGO"))
        .args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])
        // Linting needs no eBPF object (build.rs writes an empty one); the tiers build the real one.
        .env("DAMO_TRACE_NO_EBPF", "1")
        .status()
        .context("failed to run cargo clippy")?;
    if !status.success() {
        bail!("cargo clippy found warnings ({status})");
    }
    println!("xtask: lints passed in {:.0?}", started.elapsed());
    // The host tiers must leave the machine's kdamonds exactly as they found them.
    let host_damon = host_damon_state();
    // The differential tests compare with damo itself and must not skip here.
    let damo = damo::ensure(&workspace_root())?;
    // The dataset tests' DuckDB queries must not skip here either.
    let duckdb = venv::ensure(&workspace_root().join(".cache/fleet-venv"), venv::DUCKDB)?;
    let status = Command::new(env!("CARGO")).args(["test", "--workspace", "--release"]).env("DAMO_BIN", &damo).env("DAMO_TRACE_DUCKDB_PYTHON", &duckdb).status().context("failed to run cargo")?;
    if !status.success() {
        bail!("tier 1 (offline tests) failed ({status})");
    }
    println!("xtask: tier 1 passed in {:.0?}", started.elapsed());

    if !opts.skip_root {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!("tier 2 loads eBPF programs and needs root: run `sudo -E cargo xtask test` (or pass --skip-root)");
        }
        let t = Instant::now();
        // The recorded workloads: built with frame pointers, found next to the test binaries.
        cargo(&["build", "--release", "-p", "damo-workload"])?;
        // Every target with `#[ignore = "needs root…"]` tests (see tiers.rs).
        for Target { package, test } in tiers::targets(&workspace_root(), Tier::Root)? {
            cargo(&["test", "--release", "-p", &package, "--test", &test, "--", "--ignored", "--test-threads=1"]).with_context(|| format!("tier 2 (root) test {package}/{test} failed"))?;
        }
        // The install tarball, unpacked into a fresh directory, runs without this tree.
        dist::run().context("tier 2: the install tarball (`cargo xtask dist`) failed its check")?;
        println!("xtask: tier 2 passed in {:.0?}", t.elapsed());
    }
    let after = host_damon_state();
    if after != host_damon {
        bail!("the host tiers changed this machine's DAMON sysfs:\nbefore: {host_damon:?}\nafter:  {after:?}");
    }

    if !opts.skip_spark {
        let t = Instant::now();
        let spark = venv::ensure(&workspace_root().join(".cache/spark-venv"), venv::PYSPARK)?;
        println!("xtask: pyspark ready in {:.0?}", t.elapsed());
        for Target { package, test } in tiers::targets(&workspace_root(), Tier::Spark)? {
            let status = Command::new(env!("CARGO"))
                .args(["test", "--release", "-p", &package, "--test", &test, "--", "--ignored"])
                .env("DAMO_TRACE_SPARK_PYTHON", &spark)
                .status()
                .context("failed to run cargo")?;
            if !status.success() {
                bail!("the Spark tier test {package}/{test} failed ({status})");
            }
        }
        println!("xtask: the Spark tier passed in {:.0?}", t.elapsed());
    }

    if !opts.skip_vm {
        let t = Instant::now();
        vm::run(vm::Options::default()).context("tier 3 (VM) failed")?;
        println!("xtask: tier 3 passed in {:.0?}", t.elapsed());
    }
    println!("xtask: all tiers passed in {:.0?}", started.elapsed());
    Ok(())
}

pub fn cargo(args: &[&str]) -> Result<()> {
    let status = Command::new(env!("CARGO")).args(args).status().context("failed to run cargo")?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// What the host's kdamonds are: `nr_kdamonds`, then each kdamond's state and pid (read-only).
fn host_damon_state() -> Vec<(String, String)> {
    let root = std::path::Path::new("/sys/kernel/mm/damon/admin/kdamonds");
    let read = |rel: String| {
        let value = std::fs::read_to_string(root.join(&rel)).map_or_else(|e| format!("({e})"), |v| v.trim().to_owned());
        (rel, value)
    };
    let mut state = vec![read("nr_kdamonds".into())];
    let n: usize = state[0].1.parse().unwrap_or(0);
    for i in 0..n {
        state.extend([read(format!("{i}/state")), read(format!("{i}/pid"))]);
    }
    state
}
