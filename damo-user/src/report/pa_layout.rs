//! `report pa_layout`: damo's physical address layout of this machine (read-only; the
//! addresses in /proc/iomem read as zeros unless root).

use std::{io::Write, path::Path};

use anyhow::{bail, Context, Result};
use damo_report::pa_layout;

#[derive(Debug, clap::Args)]
#[command(rename_all = "snake_case")]
pub struct Args {
    /// Print the ranges of this NUMA node only.
    #[arg(long, value_name = "NODE")]
    pub numa_node: Option<u32>,
    /// Print only the System RAM ranges of this NUMA node.
    #[arg(long, value_name = "NODE")]
    pub numa_addr: Option<u32>,
    /// Print numbers in raw format.
    #[arg(long)]
    pub raw_number: bool,
}

const IOMEM: &str = "/proc/iomem";
const NODES: &str = "/sys/devices/system/node";
const BLOCK_SIZE: &str = "/sys/devices/system/memory/block_size_bytes";

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    if !crate::privilege::Privileges::current().root {
        bail!("report pa_layout reads physical addresses from {IOMEM}, which shows them only to root (run it with sudo)");
    }
    let iomem = std::fs::read_to_string(IOMEM).with_context(|| format!("failed to read {IOMEM}"))?;
    let block_size = std::fs::read_to_string(BLOCK_SIZE)
        .ok()
        .and_then(|t| u64::from_str_radix(t.trim(), 16).ok())
        .with_context(|| format!("cannot read {BLOCK_SIZE}: the kernel needs CONFIG_MEMORY_HOTPLUG for the memory block layout"))?;
    let blocks = pa_layout::block_ranges(Path::new(NODES), block_size).with_context(|| format!("failed to read the memory blocks under {NODES}"))?;
    let ranges = pa_layout::integrate(&blocks, pa_layout::iomem_ranges(&iomem));
    if let Some(node) = args.numa_addr {
        out.write_all(pa_layout::report_ranges(&pa_layout::node_ram(&ranges, node), args.raw_number).as_bytes())?;
        return Ok(());
    }
    let shown: Vec<_> = ranges.into_iter().filter(|r| args.numa_node.is_none_or(|n| r.node == Some(n))).collect();
    out.write_all(pa_layout::report(&shown, pa_layout::default_paddr_range(&iomem), args.raw_number).as_bytes())?;
    Ok(())
}
