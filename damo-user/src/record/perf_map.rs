//! Names of JIT and interpreter code from perf map files: `/tmp/perf-<pid>.map`, which
//! `node --perf-basic-prof`, `python3 -X perf` (3.12+) and Java agents write, one line per
//! code blob: `START SIZE name` (hex, with or without `0x`; the name may hold spaces).
//!
//! The file belongs to the target, and we run as root, so it is read with care: opened with
//! `O_NOFOLLOW` (a symlink planted in /tmp is refused) and `O_NONBLOCK` (a FIFO cannot hang
//! the recording), used only if it is a regular file owned by the process's real or effective
//! uid, at most [`MAX_FILE`] bytes of it, lines longer than [`MAX_LINE`] skipped, at most
//! [`MAX_ENTRIES`] entries a process. Writers append, so a re-read parses only what was
//! appended since the last one (the same file, grown); a replaced or shrunk file is read anew.
//!
//! The collector's entry points are [`PerfMaps::frame`] (per user frame outside any file,
//! while its process lives) and [`PerfMaps::process_exited`]; [`PerfMaps::hit_symbols`] is
//! what the record keeps: the entries samples fell in, not the whole map.

use std::{
    collections::{HashMap, HashSet},
    fs::File,
    io::{Read, Seek, SeekFrom},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use damo_record::model::JitSymbol;

/// Bytes of a perf map read at most (node writes about 100 bytes per compiled function).
pub const MAX_FILE: u64 = 64 << 20;
/// Longer lines are skipped (names of C++ templates reach a few KiB).
pub const MAX_LINE: usize = 8192;
/// Entries kept per process.
pub const MAX_ENTRIES: usize = 1 << 20;
/// A miss re-reads the map at most this often per process: code JITed since the last read is
/// appended by then, and a process without a map costs one failed open per interval.
const REREAD_EVERY: Duration = Duration::from_millis(200);
/// Addresses kept to retry at the end (a miss before the map had the entry).
const MAX_MISSES: usize = 1 << 16;

/// One perf map line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub start: u64,
    pub size: u64,
    pub name: String,
}

/// Parses perf map text; lines that are not `START SIZE name` (bad hex, a zero size, an end
/// past 2^64, too long) are skipped. Returns the entries and the bytes of complete lines
/// consumed (a last line without its newline may still be being written).
pub fn parse(text: &[u8]) -> (Vec<Entry>, usize) {
    let mut entries = Vec::new();
    let mut consumed = 0;
    for line in text.split_inclusive(|&b| b == b'\n') {
        if line.last() != Some(&b'\n') {
            break;
        }
        consumed += line.len();
        if line.len() > MAX_LINE {
            continue;
        }
        if let Some(e) = parse_line(&line[..line.len() - 1]) {
            entries.push(e);
        }
    }
    (entries, consumed)
}

fn parse_line(line: &[u8]) -> Option<Entry> {
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let (start, rest) = line.split_once(' ')?;
    let (size, name) = rest.split_once(' ').unwrap_or((rest, ""));
    let hex = |s: &str| {
        let s = s.strip_prefix("0x").unwrap_or(s);
        // from_str_radix accepts a sign; perf maps have none.
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| u64::from_str_radix(s, 16).ok()).flatten()
    };
    let (start, size) = (hex(start)?, hex(size)?);
    if size == 0 || start.checked_add(size).is_none() {
        return None;
    }
    let name = name.trim();
    Some(Entry { start, size, name: if name.is_empty() { format!("[jit {start:#x}]") } else { name.to_owned() } })
}

/// Why a perf map was not used.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("failed to open {0}: {1}")]
    Open(PathBuf, std::io::Error),
    #[error("{0} is not a regular file")]
    NotRegular(PathBuf),
    #[error("{0} is owned by uid {1}, not by the process (uids {2:?})")]
    Owner(PathBuf, u32, Vec<u32>),
    #[error("failed to read {0}: {1}")]
    Read(PathBuf, std::io::Error),
}

/// What was read of one process's map.
#[derive(Default)]
struct ProcessMap {
    /// The process's real and effective uids, read while it lived.
    uids: Option<Vec<u32>>,
    /// Sorted by start; where entries start at the same address, the latest is kept.
    entries: Vec<Entry>,
    /// The file read so far, as (dev, inode), and how many bytes of it.
    file: Option<(u64, u64)>,
    consumed: u64,
    read_at: Option<Instant>,
    /// Starts of the entries samples fell in.
    hit: HashSet<u64>,
}

impl ProcessMap {
    fn find(&self, addr: u64) -> Option<&Entry> {
        let i = self.entries.partition_point(|e| e.start <= addr);
        self.entries[..i].last().filter(|e| addr - e.start < e.size)
    }
}

/// Perf maps of the recorded processes, read as their samples come.
pub struct PerfMaps {
    proc_root: PathBuf,
    /// Where the maps are: `/tmp`.
    dir: PathBuf,
    procs: HashMap<u32, ProcessMap>,
    /// Frames no entry named yet, retried at the end.
    misses: HashSet<(u32, u64)>,
    /// [`MAX_FILE`]; smaller in tests.
    max_file: u64,
}

impl Default for PerfMaps {
    fn default() -> Self {
        Self::new()
    }
}

impl PerfMaps {
    pub fn new() -> Self {
        Self::with_roots("/proc", "/tmp")
    }

    /// `proc_root` for the processes' uids, `dir` for their maps (tests use temp dirs).
    pub fn with_roots(proc_root: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        Self { proc_root: proc_root.into(), dir: dir.into(), procs: HashMap::new(), misses: HashSet::new(), max_file: MAX_FILE }
    }

    /// Call for each user frame of `pid` outside any file (`UNKNOWN_MODULE`), as its sample
    /// arrives: names it from the process's map if an entry holds `addr`, re-reading the map
    /// (at most every 200 ms) when none does. Returns the entry's name.
    pub fn frame(&mut self, pid: u32, addr: u64) -> Option<&str> {
        let fresh = self.procs.get(&pid).and_then(|p| p.read_at).is_some_and(|t| t.elapsed() < REREAD_EVERY);
        let found = self.procs.get(&pid).and_then(|p| p.find(addr)).is_some();
        if !found && !fresh {
            let _ = self.reread(pid);
        }
        let p = self.procs.get_mut(&pid)?;
        match p.find(addr).map(|e| e.start) {
            Some(start) => {
                p.hit.insert(start);
                p.find(addr).map(|e| e.name.as_str())
            }
            None => {
                if self.misses.len() < MAX_MISSES {
                    self.misses.insert((pid, addr));
                }
                None
            }
        }
    }

    /// Call when a recorded process exits (and once more at the end of the recording): reads
    /// what its map gained since the last read and names the frames that missed before.
    pub fn process_exited(&mut self, pid: u32) {
        let _ = self.reread(pid);
        let retry: Vec<u64> = self.misses.iter().filter(|m| m.0 == pid).map(|m| m.1).collect();
        let Some(p) = self.procs.get_mut(&pid) else { return };
        for addr in retry {
            if let Some(start) = p.find(addr).map(|e| e.start) {
                p.hit.insert(start);
            }
            self.misses.remove(&(pid, addr));
        }
    }

    /// At the end of the recording: every process with misses reads its map a last time.
    pub fn finish(&mut self) {
        let pids: HashSet<u32> = self.misses.iter().map(|m| m.0).collect();
        for pid in pids {
            self.process_exited(pid);
        }
    }

    /// The entries samples fell in, by pid and start.
    pub fn hit_symbols(&self) -> Vec<JitSymbol> {
        let mut out: Vec<JitSymbol> =
            self.procs.iter().flat_map(|(&pid, p)| p.entries.iter().filter(|e| p.hit.contains(&e.start)).map(move |e| JitSymbol { pid, start: e.start, size: e.size, name: e.name.clone() })).collect();
        out.sort_by_key(|j| (j.pid, j.start));
        out
    }

    /// Reads what the map of `pid` gained since the last read.
    fn reread(&mut self, pid: u32) -> Result<(), MapError> {
        let p = self.procs.entry(pid).or_default();
        p.read_at = Some(Instant::now());
        if p.uids.is_none() {
            // Only while the process lives: a gone process's uid is unknown, and its map unused.
            p.uids = process_uids(&self.proc_root, pid);
        }
        let Some(uids) = p.uids.clone() else { return Ok(()) };
        let path = self.dir.join(format!("perf-{pid}.map"));
        let mut file = open_owned(&path, &uids)?;
        let meta = file.metadata().map_err(|e| MapError::Read(path.clone(), e))?;
        let id = (meta.dev(), meta.ino());
        if p.file != Some(id) || meta.len() < p.consumed {
            // Another file, or one rewritten: start over.
            (p.file, p.consumed) = (Some(id), 0);
            p.entries.clear();
        }
        let budget = self.max_file.saturating_sub(p.consumed);
        if budget == 0 || meta.len() == p.consumed {
            return Ok(());
        }
        file.seek(SeekFrom::Start(p.consumed)).map_err(|e| MapError::Read(path.clone(), e))?;
        let mut text = Vec::new();
        file.take(budget).read_to_end(&mut text).map_err(|e| MapError::Read(path.clone(), e))?;
        let (mut new, consumed) = parse(&text);
        p.consumed += consumed as u64;
        new.truncate(MAX_ENTRIES.saturating_sub(p.entries.len()));
        if !new.is_empty() {
            // Stable: the later of two entries at one start comes last, and is the one kept
            // (the code there was compiled again).
            p.entries.append(&mut new);
            p.entries.sort_by_key(|e| e.start);
            let mut kept: Vec<Entry> = Vec::with_capacity(p.entries.len());
            for e in p.entries.drain(..) {
                match kept.last_mut() {
                    Some(last) if last.start == e.start => *last = e,
                    _ => kept.push(e),
                }
            }
            p.entries = kept;
        }
        Ok(())
    }
}

/// Opens `path` if it is a regular file owned by one of `uids`, without following a symlink
/// or blocking on a FIFO.
fn open_owned(path: &Path, uids: &[u32]) -> Result<File, MapError> {
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC).open(path).map_err(|e| MapError::Open(path.to_owned(), e))?;
    let meta = file.metadata().map_err(|e| MapError::Read(path.to_owned(), e))?;
    if !meta.file_type().is_file() {
        return Err(MapError::NotRegular(path.to_owned()));
    }
    if !uids.contains(&meta.uid()) {
        return Err(MapError::Owner(path.to_owned(), meta.uid(), uids.to_vec()));
    }
    Ok(file)
}

/// The real and effective uids of a live process (`Uid:` of /proc/<pid>/status).
fn process_uids(proc_root: &Path, pid: u32) -> Option<Vec<u32>> {
    let status = std::fs::read_to_string(proc_root.join(pid.to_string()).join("status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let uids: Vec<u32> = line.split_whitespace().take(2).map(str::parse).collect::<Result<_, _>>().ok()?;
    (uids.len() == 2).then_some(uids)
}

#[cfg(test)]
mod tests {
    use std::{io::Write, os::unix::fs::symlink};

    use super::*;

    #[test]
    fn parses_lines_and_skips_hostile_ones() {
        let long = format!("1000 10 {}\n", "x".repeat(MAX_LINE));
        let text = format!(
            "7f00a000 40 LazyCompile:*hot /app/loop.js:3\n0x7f00b000 0x20 py::main:/app/x.py\nzz 10 bad start\n10 -1 signed size\n+10 5 plus\n20 0 empty\nffffffffffffffff 2 wraps\n{long}30 8\n40 8 cr\r\n50 4 cut"
        );
        let (entries, consumed) = parse(text.as_bytes());
        let got: Vec<(u64, u64, &str)> = entries.iter().map(|e| (e.start, e.size, e.name.as_str())).collect();
        assert_eq!(got, [(0x7f00_a000, 0x40, "LazyCompile:*hot /app/loop.js:3"), (0x7f00_b000, 0x20, "py::main:/app/x.py"), (0x30, 8, "[jit 0x30]"), (0x40, 8, "cr")]);
        assert_eq!(consumed, text.len() - "50 4 cut".len(), "a last line without its newline waits");
        assert!(parse(&[0xff, 0xfe, b' ', b'1', b'\n']).0.is_empty(), "not UTF-8");
    }

    /// A fake /proc with our own uid for `pid`, and a map directory.
    fn roots(pid: u32) -> (tempfile::TempDir, PerfMaps) {
        let tmp = tempfile::tempdir().unwrap();
        let proc_dir = tmp.path().join("proc").join(pid.to_string());
        std::fs::create_dir_all(&proc_dir).unwrap();
        // SAFETY: no preconditions.
        let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
        std::fs::write(proc_dir.join("status"), format!("Name:\tnode\nUid:\t{uid}\t{euid}\t{uid}\t{uid}\n")).unwrap();
        std::fs::create_dir(tmp.path().join("tmp")).unwrap();
        let maps = PerfMaps::with_roots(tmp.path().join("proc"), tmp.path().join("tmp"));
        (tmp, maps)
    }

    #[test]
    fn names_frames_reads_appended_code_and_keeps_only_what_was_hit() {
        let (tmp, mut maps) = roots(77);
        let path = tmp.path().join("tmp/perf-77.map");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"1000 100 first\n2000 100 unused\n1000 80 recompiled\n").unwrap();
        assert_eq!(maps.frame(77, 0x1010), Some("recompiled"), "the later entry at a start wins");
        assert_eq!(maps.frame(77, 0x1080), None, "past the entry's end");
        assert_eq!(maps.frame(88, 0x1010), None, "no map for that process");
        // Code compiled after the last read, and a line still being written.
        f.write_all(b"3000 10 late\n4000 10 par").unwrap();
        maps.process_exited(77);
        assert_eq!(maps.procs[&77].entries.len(), 3);
        assert_eq!(maps.frame(77, 0x3005), Some("late"));
        let hit = maps.hit_symbols();
        assert_eq!(hit, [JitSymbol { pid: 77, start: 0x1000, size: 0x80, name: "recompiled".into() }, JitSymbol { pid: 77, start: 0x3000, size: 0x10, name: "late".into() }]);
    }

    #[test]
    fn a_miss_is_named_at_the_end_when_the_map_caught_up() {
        let (tmp, mut maps) = roots(78);
        let path = tmp.path().join("tmp/perf-78.map");
        std::fs::write(&path, b"1000 10 early\n").unwrap();
        assert_eq!(maps.frame(78, 0x5000), None);
        std::fs::write(&path, b"1000 10 early\n5000 10 compiled_later\n").unwrap();
        maps.finish();
        assert_eq!(maps.hit_symbols().iter().map(|j| j.name.as_str()).collect::<Vec<_>>(), ["compiled_later"]);
    }

    #[test]
    fn refuses_symlinks_fifos_and_other_owners_files() {
        let (tmp, mut maps) = roots(79);
        let secret = tmp.path().join("secret");
        std::fs::write(&secret, b"1000 10 secret_name\n").unwrap();
        let link = tmp.path().join("tmp/perf-79.map");
        symlink(&secret, &link).unwrap();
        assert_eq!(maps.frame(79, 0x1000), None);
        assert!(matches!(maps.reread(79), Err(MapError::Open(..))), "O_NOFOLLOW refuses the symlink");
        std::fs::remove_file(&link).unwrap();

        let path = std::ffi::CString::new(link.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        assert!(matches!(maps.reread(79), Err(MapError::NotRegular(_))), "a FIFO is refused without blocking");
        std::fs::remove_file(&link).unwrap();

        // A process of another uid: our own file is not its map.
        let status = tmp.path().join("proc/80/status");
        std::fs::create_dir_all(status.parent().unwrap()).unwrap();
        std::fs::write(&status, "Uid:\t54321\t54321\t54321\t54321\n").unwrap();
        std::fs::write(tmp.path().join("tmp/perf-80.map"), b"1000 10 not_yours\n").unwrap();
        assert_eq!(maps.frame(80, 0x1000), None);
        assert!(matches!(maps.reread(80), Err(MapError::Owner(_, _, _))));
        // A process that is gone before its first sample: its uid is unknown, nothing is read.
        std::fs::write(tmp.path().join("tmp/perf-81.map"), b"1000 10 orphan\n").unwrap();
        assert_eq!(maps.frame(81, 0x1000), None);
        assert!(maps.hit_symbols().is_empty());
    }

    #[test]
    fn a_huge_map_is_read_up_to_its_bound() {
        let (tmp, mut maps) = roots(82);
        let path = tmp.path().join("tmp/perf-82.map");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        // One line of garbage longer than MAX_LINE, then an entry.
        f.write_all(&vec![b'a'; MAX_LINE * 4]).unwrap();
        f.write_all(b"\n9000 10 after_garbage\n").unwrap();
        f.flush().unwrap();
        assert_eq!(maps.frame(82, 0x9001), Some("after_garbage"));
        // A map rewritten smaller (another process reused the pid) is read anew.
        std::fs::write(&path, b"9000 10 new\n").unwrap();
        maps.procs.get_mut(&82).unwrap().read_at = None;
        assert_eq!(maps.frame(82, 0xa000), None);
        assert_eq!(maps.frame(82, 0x9001), Some("new"));

        // Past the byte bound, nothing more is read.
        let (tmp, mut maps) = roots(83);
        maps.max_file = 30;
        std::fs::write(
            tmp.path().join("tmp/perf-83.map"),
            b"1000 10 within
2000 10 within_too
3000 10 beyond
",
        )
        .unwrap();
        assert_eq!(maps.frame(83, 0x1000), Some("within"));
        assert_eq!(maps.frame(83, 0x3000), None);
        maps.finish();
        assert_eq!(maps.procs[&83].entries.len(), 1, "the second line is cut by the bound and never completes");
    }
}
