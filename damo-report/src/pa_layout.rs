//! `report pa_layout`: the physical address space as damo shows it, from `/proc/iomem`'s
//! resources and the memory blocks of each NUMA node (`/sys/devices/system/node/nodeN/
//! memoryM/state`): which resource lies where, on which node, online or not, and the range
//! `record paddr` watches by default (first to last System RAM). Read-only.

use std::{fs, io, path::Path};

use damo_record::units::{format_nr, format_sz};

/// A physical address range `[start, end)`: an iomem resource placed on a node's blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaddrRange {
    pub start: u64,
    pub end: u64,
    pub node: Option<u32>,
    pub state: Option<String>,
    pub name: String,
}

/// A node's memory blocks collapsed into ranges of one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRange {
    pub start: u64,
    pub end: u64,
    pub node: u32,
    pub state: String,
}

/// Every `start-end : name` line of `/proc/iomem` (nested resources too), end made exclusive.
pub fn iomem_ranges(iomem: &str) -> Vec<PaddrRange> {
    iomem
        .lines()
        .filter_map(|line| {
            let (addrs, name) = line.split_once(':')?;
            let (start, end) = addrs.trim().split_once('-')?;
            let start = u64::from_str_radix(start.trim(), 16).ok()?;
            let end = u64::from_str_radix(end.trim(), 16).ok()?.checked_add(1)?;
            Some(PaddrRange { start, end, node: None, state: None, name: name.trim().to_owned() })
        })
        .collect()
}

/// The memory blocks under `node_dir` (`/sys/devices/system/node`), each `block_size` bytes,
/// merged per node into runs of one state.
pub fn block_ranges(node_dir: &Path, block_size: u64) -> io::Result<Vec<BlockRange>> {
    let mut blocks = Vec::new();
    for node in fs::read_dir(node_dir)? {
        let node = node?;
        let name = node.file_name().to_string_lossy().into_owned();
        let Some(nid) = name.strip_prefix("node").and_then(|n| n.parse::<u32>().ok()) else { continue };
        for entry in fs::read_dir(node.path())? {
            let entry = entry?;
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(index) = file.strip_prefix("memory").and_then(|i| i.parse::<u64>().ok()) else { continue };
            let state = fs::read_to_string(entry.path().join("state"))?.trim().to_owned();
            let start = index.saturating_mul(block_size);
            blocks.push(BlockRange { start, end: start.saturating_add(block_size), node: nid, state });
        }
    }
    blocks.sort_by_key(|b| (b.node, b.start));
    let mut merged: Vec<BlockRange> = Vec::new();
    for b in blocks {
        match merged.last_mut() {
            Some(last) if last.end == b.start && last.node == b.node && last.state == b.state => last.end = b.end,
            _ => merged.push(b),
        }
    }
    Ok(merged)
}

/// Each resource that starts inside a block range, on that range's node and state; one that
/// runs past its range's end is cut there and its rest placed in turn (damo's `integrate`).
/// Resources outside every block are left out. Sorted by start.
pub fn integrate(blocks: &[BlockRange], iomem: Vec<PaddrRange>) -> Vec<PaddrRange> {
    let mut queue: std::collections::VecDeque<PaddrRange> = iomem.into();
    let mut placed = Vec::new();
    while let Some(mut r) = queue.pop_front() {
        for b in blocks {
            if b.start <= r.start && r.end <= b.end {
                placed.push(PaddrRange { node: Some(b.node), state: Some(b.state.clone()), ..r.clone() });
            } else if b.start <= r.start && r.start < b.end && b.end < r.end {
                queue.push_back(PaddrRange { start: b.end, end: r.end, node: None, state: None, name: r.name.clone() });
                r.end = b.end;
                placed.push(PaddrRange { node: Some(b.node), state: Some(b.state.clone()), ..r.clone() });
            }
        }
    }
    placed.sort_by_key(|r| r.start);
    placed
}

/// `[first System RAM start, last System RAM end)` of top-level resources, as damo's default
/// paddr range.
pub fn default_paddr_range(iomem: &str) -> Option<(u64, u64)> {
    // damo takes lines with exactly one ':' only, so "System RAM" of a name with a colon is not.
    let ram = iomem_ranges(iomem)
        .into_iter()
        .zip(iomem.lines().filter(|l| l.split_once(':').is_some_and(|(a, _)| a.contains('-'))))
        .filter(|(r, line)| line.matches(':').count() == 1 && r.name.starts_with("System RAM"))
        .map(|(r, _)| r);
    ram.fold(None, |acc, r| Some(acc.map_or((r.start, r.end), |(s, _)| (s, r.end))))
}

/// The System RAM ranges of `node`, adjacent ones joined (`--numa_addr`).
pub fn node_ram(ranges: &[PaddrRange], node: u32) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for r in ranges.iter().filter(|r| r.node == Some(node) && r.name.starts_with("System RAM")) {
        match out.last_mut() {
            Some(last) if last.1 == r.start => last.1 = r.end,
            _ => out.push((r.start, r.end)),
        }
    }
    out
}

/// damo's listing: a header, a line per range, then the default paddr monitoring range.
pub fn report(ranges: &[PaddrRange], default_range: Option<(u64, u64)>, raw: bool) -> String {
    let sz = |b: u64| format_sz(b as f64, raw);
    let mut out = format!("#{:>14} {:>14}\tnode\tstate\tresource\tsize\n", "start", "end");
    for r in ranges {
        let node = r.node.map_or_else(|| "None".to_owned(), |n| format_nr(i128::from(n), raw));
        out += &format!("{:>15} {:>15}\t{node}\t{}\t{}\t{}\n", sz(r.start), sz(r.end), r.state.as_deref().unwrap_or("None"), r.name, sz(r.end - r.start));
    }
    if let Some((start, end)) = default_range {
        out += &format!("Default paddr monitoring range: [{}, {}) (size {})\n", sz(start), sz(end), sz(end - start));
    }
    out
}

/// `--numa_addr`'s lines: `[start, end) (size …)`.
pub fn report_ranges(ranges: &[(u64, u64)], raw: bool) -> String {
    let sz = |b: u64| format_sz(b as f64, raw);
    ranges.iter().map(|&(s, e)| format!("[{}, {}) (size {})\n", sz(s), sz(e), sz(e - s))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const IOMEM: &str = "00000000-00000fff : Reserved\n00001000-0009efff : System RAM\n000f0000-000fffff : System ROM\n00100000-bfffffff : System RAM\n  01000000-0228ffff : Kernel code\nfee00000-fee00fff : PNP0C02:00\n100000000-63fffffff : System RAM\n";

    fn fake_nodes(blocks: &[(u32, u64, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for &(node, index, state) in blocks {
            let block = dir.path().join(format!("node{node}/memory{index}"));
            fs::create_dir_all(&block).unwrap();
            fs::write(block.join("state"), format!("{state}\n")).unwrap();
        }
        fs::create_dir_all(dir.path().join("node0/cpu0")).unwrap();
        dir
    }

    #[test]
    fn resources_are_placed_on_their_nodes_blocks_and_cut_at_block_ends() {
        const GIB: u64 = 1 << 30;
        // Node 0: blocks 0-2 online (0-3 GiB); node 1: blocks 4-24 (4-25 GiB).
        let mut blocks: Vec<(u32, u64, &str)> = (0..3).map(|i| (0, i, "online")).collect();
        blocks.extend((4..25).map(|i| (1, i, "online")));
        blocks.last_mut().unwrap().2 = "offline";
        let dir = fake_nodes(&blocks);
        let ranges = block_ranges(dir.path(), GIB).unwrap();
        assert_eq!(ranges.iter().map(|b| (b.node, b.start / GIB, b.end / GIB)).collect::<Vec<_>>(), [(0, 0, 3), (1, 4, 24), (1, 24, 25)]);
        let placed = integrate(&ranges, iomem_ranges(IOMEM));
        let names: Vec<(&str, u64, u64, Option<u32>)> = placed.iter().map(|r| (r.name.as_str(), r.start, r.end, r.node)).collect();
        assert_eq!(
            names,
            [
                ("Reserved", 0, 0x1000, Some(0)),
                ("System RAM", 0x1000, 0x9f000, Some(0)),
                ("System ROM", 0xf0000, 0x100000, Some(0)),
                ("System RAM", 0x100000, 0xc000_0000, Some(0)),
                ("Kernel code", 0x100_0000, 0x229_0000, Some(0)),
                ("System RAM", 4 * GIB, 24 * GIB, Some(1)),
                ("System RAM", 24 * GIB, 25 * GIB, Some(1)),
            ],
            "PNP0C02:00 lies in no block; 4-25 GiB is cut where the offline block starts"
        );
        assert_eq!(placed[6].state.as_deref(), Some("offline"));
        assert_eq!(default_paddr_range(IOMEM), Some((0x1000, 25 * GIB)));
        assert_eq!(node_ram(&placed, 1), [(4 * GIB, 25 * GIB)]);
        let text = report(&placed[..2], default_paddr_range(IOMEM), false);
        assert_eq!(text, "#         start            end\tnode\tstate\tresource\tsize\n            0 B       4.000 KiB\t0\tonline\tReserved\t4.000 KiB\n      4.000 KiB     636.000 KiB\t0\tonline\tSystem RAM\t632.000 KiB\nDefault paddr monitoring range: [4.000 KiB, 25.000 GiB) (size 25.000 GiB)\n");
    }
}
