//! Project automation: tests by tier and the VM. `cargo xtask --help` lists them.

mod bench;
mod damo;
mod demo;
mod dist;
mod setup;
mod test;
mod tiers;
mod venv;
mod vm;
mod vm_bench;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "damo-trace's build and test automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every test tier: offline, root on the host, the VM.
    Test(test::Options),
    /// The demo: record a three-phase workload in the VM and write its reports into a folder.
    Demo(demo::Options),
    /// Time damo-trace against damo on a generated record of ≥ 1 M regions.
    Bench(bench::Options),
    /// Measure what recording costs, in the VM: collector CPU and workload slowdown.
    VmBench,
    /// Boot the project's QEMU VM and run the real-kernel test scenario in it.
    VmTest(vm::Options),
    /// Build the install tarball (static binary, completions, man pages) and check it unpacked.
    Dist,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Test(opts) => test::run(opts),
        Command::VmTest(opts) => vm::run(opts),
        Command::Bench(opts) => bench::run(opts),
        Command::Demo(opts) => demo::run(opts),
        Command::VmBench => vm_bench::run(),
        Command::Dist => dist::run(),
    }
}
