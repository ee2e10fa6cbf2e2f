//! What /proc says about targets and kdamonds at each snapshot: memory footprints, mappings
//! and CPU time, as damo records them beside the access snapshots.

use std::{fs, path::Path};

use anyhow::{bail, Context, Result};

/// `/proc/<pid>/statm`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Footprint {
    pub vsz: u64,
    pub rss: u64,
    pub shared: u64,
    pub text: u64,
    pub data: u64,
}

/// System-wide memory from `/proc/meminfo`, in bytes, as the record keeps it.
pub use damo_record::model::SystemMemory;

/// One line of `/proc/<pid>/maps`, as the record keeps it.
pub use damo_record::model::Vma;

/// CPU time and threads from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcStat {
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub nr_threads: u64,
    pub rss_pages: u64,
    /// The process group (field 5).
    pub pgrp: u64,
    /// A zombie (state Z or X): exited, not yet reaped.
    pub zombie: bool,
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))
}

pub fn footprint(proc_root: &Path, pid: u32) -> Result<Footprint> {
    parse_statm(&read(&proc_root.join(format!("{pid}/statm")))?, page_size())
}

pub fn parse_statm(text: &str, page_size: u64) -> Result<Footprint> {
    let pages: Vec<u64> = text.split_whitespace().map(str::parse).collect::<Result<_, _>>().context("statm has a non-numeric field")?;
    let &[size, resident, shared, text, _lib, data, ..] = pages.as_slice() else {
        bail!("statm has {} fields, expected 7", pages.len());
    };
    Ok(Footprint { vsz: size * page_size, rss: resident * page_size, shared: shared * page_size, text: text * page_size, data: data * page_size })
}

pub fn system_memory(proc_root: &Path) -> Result<SystemMemory> {
    parse_meminfo(&read(&proc_root.join("meminfo"))?)
}

pub fn parse_meminfo(text: &str) -> Result<SystemMemory> {
    let mut mem = SystemMemory::default();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else { continue };
        let slot = match key {
            "MemTotal" => &mut mem.total,
            "MemFree" => &mut mem.free,
            "MemAvailable" => &mut mem.available,
            "Buffers" => &mut mem.buffers,
            "Cached" => &mut mem.cached,
            _ => continue,
        };
        let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().with_context(|| format!("bad meminfo line: {line}"))?;
        *slot = kib * 1024;
    }
    if mem.total == 0 {
        bail!("meminfo has no MemTotal");
    }
    Ok(mem)
}

pub fn vmas(proc_root: &Path, pid: u32) -> Result<Vec<Vma>> {
    parse_maps(&read(&proc_root.join(format!("{pid}/maps")))?)
}

pub fn parse_maps(text: &str) -> Result<Vec<Vma>> {
    text.lines().filter(|l| !l.is_empty()).map(parse_maps_line).collect()
}

/// `7f00-7f10 r-xp 00001000 08:01 1234   /usr/lib/libc.so.6`
fn parse_maps_line(line: &str) -> Result<Vma> {
    let bad = || format!("bad maps line: {line}");
    let mut fields = line.splitn(6, ' ');
    let range = fields.next().with_context(bad)?;
    let perms = fields.next().with_context(bad)?;
    let offset = fields.next().with_context(bad)?;
    let (_dev, _inode) = (fields.next().with_context(bad)?, fields.next().with_context(bad)?);
    let name = fields.next().unwrap_or("").trim_start().to_string();
    let (start, end) = range.split_once('-').with_context(bad)?;
    let hex = |s: &str| u64::from_str_radix(s, 16).with_context(bad);
    Ok(Vma { start: hex(start)?, end: hex(end)?, perms: perms.to_string(), offset: hex(offset)?, name })
}

pub fn stat(proc_root: &Path, pid: u32) -> Result<ProcStat> {
    parse_stat(&read(&proc_root.join(format!("{pid}/stat")))?)
}

/// The command name may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_stat(text: &str) -> Result<ProcStat> {
    let after_comm = text.rsplit_once(')').map(|(_, rest)| rest).context("stat has no (comm)")?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Field numbers from proc(5), minus 3 for pid, comm and the split.
    let field = |n: usize| -> Result<u64> { fields.get(n - 3).context("stat is too short")?.parse().context("stat field is not a number") };
    let zombie = matches!(fields.first(), Some(&("Z" | "X")));
    Ok(ProcStat { utime_ticks: field(14)?, stime_ticks: field(15)?, nr_threads: field(20)?, rss_pages: field(24)?, pgrp: field(5)?, zombie })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_in_bytes() {
        let f = parse_statm("100 50 10 5 0 30 0\n", 4096).unwrap();
        assert_eq!(f, Footprint { vsz: 409_600, rss: 204_800, shared: 40_960, text: 20_480, data: 122_880 });
        assert!(parse_statm("1 2 3", 4096).is_err());
        assert!(parse_statm("a b c d e f g", 4096).is_err());
    }

    #[test]
    fn meminfo_fields() {
        let m = parse_meminfo("MemTotal:       1000 kB\nMemFree: 200 kB\nMemAvailable: 500 kB\nCached: 7 kB\n").unwrap();
        assert_eq!((m.total, m.free, m.available, m.cached), (1_024_000, 204_800, 512_000, 7168));
        assert!(parse_meminfo("nothing here").is_err());
    }

    #[test]
    fn maps_lines() {
        let v = parse_maps(
            "55d0a000-55d0b000 r-xp 00001000 08:01 1234                       /usr/bin/cat\n\
             7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]\n\
             7f000000-7f100000 rw-p 00000000 00:00 0 \n",
        )
        .unwrap();
        assert_eq!(v[0], Vma { start: 0x55d0a000, end: 0x55d0b000, perms: "r-xp".into(), offset: 0x1000, name: "/usr/bin/cat".into() });
        assert_eq!(v[1].name, "[stack]");
        assert_eq!(v[2].name, "");
        assert!(parse_maps("zz-1 r 0 0 0").is_err());
    }

    #[test]
    fn stat_with_tricky_comm() {
        let line = "42 (a) b (c) R 1 42 42 0 -1 4194304 100 0 0 0 7 3 0 0 20 0 5 0 100 1000 25 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s, ProcStat { utime_ticks: 7, stime_ticks: 3, nr_threads: 5, rss_pages: 25, pgrp: 42, zombie: false });
        assert!(parse_stat("42 (x) R 1").is_err());
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let proc_root = Path::new("/proc");
        assert!(footprint(proc_root, me).unwrap().rss > 0);
        assert!(stat(proc_root, me).unwrap().nr_threads >= 1);
        assert!(vmas(proc_root, me).unwrap().iter().any(|v| v.perms.contains('x')));
        assert!(system_memory(proc_root).unwrap().total > 0);
    }
}
