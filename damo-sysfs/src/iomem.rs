//! The default region of a paddr kdamond: DAMON's sysfs starts a paddr target without regions
//! and then watches nothing, so damo (and the kernel's own DAMON_RECLAIM) use the biggest
//! "System RAM" block of /proc/iomem. So does damo-trace.

use anyhow::{bail, Context, Result};

use crate::params::{AddrRange, Document};

/// The biggest top-level "System RAM" range of an /proc/iomem text, end exclusive.
pub fn biggest_system_ram(iomem: &str) -> Result<AddrRange> {
    let mut best: Option<AddrRange> = None;
    for line in iomem.lines().filter(|l| !l.starts_with(' ')) {
        let Some((range, "System RAM")) = line.split_once(" : ").map(|(r, n)| (r.trim(), n.trim())) else { continue };
        let Some((start, end)) = range.split_once('-') else { continue };
        let hex = |s: &str| u64::from_str_radix(s, 16).with_context(|| format!("bad /proc/iomem line {line:?}"));
        let (start, end) = (hex(start)?, hex(end)?.saturating_add(1));
        if best.is_none_or(|b| end - start > b.end - b.start) {
            best = Some(AddrRange { start, end });
        }
    }
    match best {
        Some(r) if r.end - r.start > 1 => Ok(r),
        // Without CAP_SYS_ADMIN the kernel shows every address as zero.
        Some(_) => bail!("/proc/iomem shows no addresses (it needs root): give paddr --regions"),
        None => bail!("/proc/iomem lists no System RAM: give paddr --regions"),
    }
}

/// Gives every paddr target without regions the biggest System RAM block; reads
/// /proc/iomem only when one needs it.
pub fn fill_paddr_regions(doc: &mut Document, read_iomem: impl FnOnce() -> std::io::Result<String>) -> Result<()> {
    let mut empty: Vec<&mut Vec<AddrRange>> =
        doc.kdamonds.iter_mut().flat_map(|k| &mut k.contexts).filter(|c| c.ops == "paddr").flat_map(|c| &mut c.targets).map(|t| &mut t.regions).filter(|r| r.is_empty()).collect();
    if empty.is_empty() {
        return Ok(());
    }
    let ram = biggest_system_ram(&read_iomem().context("failed to read /proc/iomem for the paddr default region")?)?;
    for regions in &mut empty {
        regions.push(ram);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const IOMEM: &str = "00000000-00000fff : Reserved
00001000-0009fbff : System RAM
00100000-bfffffff : System RAM
  01000000-0220bb07 : Kernel code
c0001000-eebfffff : PCI Bus 0000:00
100000000-63fffffff : System RAM
  200000000-2ffffffff : System RAM
";

    #[test]
    fn picks_the_biggest_top_level_block() {
        assert_eq!(biggest_system_ram(IOMEM).unwrap(), AddrRange { start: 0x1_0000_0000, end: 0x6_4000_0000 });
        let hidden = "00000000-00000000 : System RAM\n00000000-00000000 : System RAM\n";
        assert!(biggest_system_ram(hidden).unwrap_err().to_string().contains("needs root"));
        assert!(biggest_system_ram("00000000-00000fff : Reserved\n").is_err());
        assert!(biggest_system_ram("zz-00000fff : System RAM\n").is_err());
    }
}
