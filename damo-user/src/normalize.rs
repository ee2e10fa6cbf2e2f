//! Turns a process's user addresses into (file, file offset) pairs, so stacks can be
//! symbolized after the process exited, even on another machine that has the same files
//! (matched by build-id).
//!
//! Mappings come from two sources. With the perf side-band (`crate::sideband`, the default
//! when recording), every `mmap`, `exec`, `fork` and `exit` of the targets is applied as it
//! happened, stamped with its time, and a sample is normalized against the mappings in effect
//! at its own time: a process that exited long before its samples were read is normalized as
//! well as a live one. Processes the side-band does not describe (none was opened, or it lost
//! records) fall back to `/proc/<pid>/maps`, read when their first sample arrives.
//!
//! For the DWARF unwinder and for symbolizing while recording, [`mappings`] gives the
//! executable mappings of a process at a sample's time and [`module_file`] a path this process
//! can read a module from, even when the module lives in another mount namespace (a
//! container): such files are opened through `/proc/<pid>/map_files` (or `/proc/<pid>/root`)
//! while the process lives, and the open file is kept for the rest of the recording.
//!
//! [`mappings`]: AddressNormalizer::mappings
//! [`module_file`]: AddressNormalizer::module_file

use std::{
    collections::HashMap,
    fs::File,
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use blazesym::helper::read_elf_build_id;
pub use damo_record::model::{FileAddr, Module, UNKNOWN_MODULE};

use crate::{
    procfs::{self, Vma},
    sideband::{FileId, MmapEvent, TaskEvent},
};

/// Ticks (about a second each) a process's state outlives its exit: its last samples may
/// still be in the ring buffer behind a slot another CPU has not committed yet.
const GONE_TICKS: u64 = 2;
/// Replaced mappings are kept this long after they ended (sample time), for samples taken
/// before the replacement that are read after it.
const RETIRED_KEEP_NS: u64 = 10_000_000_000;
/// Module files kept open for processes in other mount namespaces, at most.
const MAX_OPEN_FILES: usize = 1024;

/// Normalizes addresses and interns the modules they belong to.
///
/// Parsed mappings are kept per process: a frame costs a binary search, not a file read.
/// In `/proc` mode, an address outside every cached mapping (a new `mmap`, a `dlopen`) makes
/// the next lookup read the maps again, and [`expire`](Self::expire) (called about once a
/// second) marks every cache stale, so a mapping replaced in place is stale for a second at
/// most. A process's state is dropped [`GONE_TICKS`] ticks after it exits, so memory stays
/// bounded however many processes come and go.
pub struct AddressNormalizer {
    proc_root: PathBuf,
    procs: HashMap<u32, Process>,
    build_ids: HashMap<PathBuf, Option<Vec<u8>>>,
    /// Modules by the kernel's name for their file, from side-band records.
    by_file: HashMap<FileId, u32>,
    modules: Vec<Module>,
    index: HashMap<Module, u32>,
    /// How to read each module's file, by module id.
    files: Vec<ModuleFile>,
    open_files: usize,
    /// Children of tracked processes are tracked (as the eBPF side follows them).
    follow_children: bool,
    ticks: u64,
    /// The latest sample time normalized: retired mappings older than this by
    /// `RETIRED_KEEP_NS` go.
    latest_ns: u64,
    /// The last generation given to a process's mappings (see [`Self::mappings_generation`]).
    generations: u64,
}

struct Process {
    /// Executable mappings in effect now, sorted by start, not overlapping, their module
    /// resolved when they appeared: a frame costs a binary search and nothing else.
    live: Vec<Mapping>,
    /// Mappings an `exec` or a new mapping replaced, for samples taken before that.
    retired: Vec<Mapping>,
    source: Source,
    /// The tick its exit was seen at.
    gone_at: Option<u64>,
    /// Changes whenever `live` or `retired` do; unique across processes and their reuse of
    /// a pid, so an unchanged number means unchanged mappings.
    generation: u64,
}

#[derive(Clone, Copy)]
enum Source {
    /// Kept up to date by side-band records: never read again.
    Sideband,
    /// Read from `/proc/<pid>/maps`.
    Procfs {
        /// Read since the last `expire`.
        fresh: bool,
        /// Read again for an unknown address since the last `expire` (once is enough: JIT
        /// code would otherwise make every sample read the maps).
        reloaded_for_unknown: bool,
    },
}

/// One executable mapping, `[start, end)`, in effect from `since_ns` to `until_ns`
/// (CLOCK_MONOTONIC, the clock of samples).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// File offset of `start`.
    pub offset: u64,
    /// `UNKNOWN_MODULE` for code outside any file: [vdso], JIT.
    pub module: u32,
    pub since_ns: u64,
    /// `u64::MAX` while in effect.
    pub until_ns: u64,
}

/// Where a module's file can be read from by this process.
enum ModuleFile {
    /// Its recorded path is the same file here (same build-id).
    AtPath,
    /// Opened through the process that mapped it (another mount namespace, or replaced on
    /// disk); readable as `/proc/self/fd/N` while the recording runs.
    Open(File),
    Unavailable,
}

impl Default for AddressNormalizer {
    fn default() -> Self {
        Self::new()
    }
}

impl AddressNormalizer {
    pub fn new() -> Self {
        Self::with_proc_root("/proc")
    }

    pub fn with_proc_root(proc_root: impl Into<PathBuf>) -> Self {
        Self {
            proc_root: proc_root.into(),
            procs: HashMap::new(),
            build_ids: HashMap::new(),
            by_file: HashMap::new(),
            modules: Vec::new(),
            index: HashMap::new(),
            files: Vec::new(),
            open_files: 0,
            follow_children: false,
            ticks: 0,
            latest_ns: 0,
            generations: 0,
        }
    }

    /// Every module seen so far; `FileAddr::module` indexes this.
    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// Processes whose state is held (live ones and those gone less than `GONE_TICKS` ago).
    pub fn processes(&self) -> usize {
        self.procs.len()
    }

    /// Tracks the children that tracked processes fork from now on.
    pub fn follow_children(&mut self, follow: bool) {
        self.follow_children = follow;
    }

    /// Starts tracking `pid` with side-band records: its current mappings are read from /proc
    /// once, and records keep them up to date. Call it before the process can `exec` or map
    /// anything (a command target held before exec), with the side-band already open.
    pub fn track(&mut self, pid: u32) -> Result<()> {
        self.reload(pid, false)?;
        if let Some(p) = self.procs.get_mut(&pid) {
            p.source = Source::Sideband;
        }
        Ok(())
    }

    /// The side-band lost records: the mappings of tracked processes may be incomplete, so
    /// they fall back to `/proc` for addresses they do not cover.
    pub fn sideband_lost(&mut self) {
        for p in self.procs.values_mut() {
            if matches!(p.source, Source::Sideband) {
                p.source = Source::Procfs { fresh: true, reloaded_for_unknown: false };
            }
        }
    }

    /// Applies a side-band record to the processes tracked.
    pub fn apply(&mut self, event: &TaskEvent) {
        match *event {
            TaskEvent::Mmap(ref m) => {
                if self.procs.contains_key(&m.pid) {
                    let mapping = self.mapping_of(m);
                    let generation = self.next_generation();
                    if let Some(p) = self.procs.get_mut(&m.pid) {
                        p.insert(mapping);
                        p.generation = generation;
                    }
                }
            }
            TaskEvent::Exec { pid, ts_ns } => {
                let generation = self.next_generation();
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.retire_all(ts_ns);
                    p.generation = generation;
                }
            }
            TaskEvent::Fork { pid, ppid, ts_ns: _, .. } => {
                // pid == ppid: a new thread, sharing its process's mappings.
                if pid == ppid || !self.follow_children {
                    return;
                }
                let generation = self.next_generation();
                if let Some(parent) = self.procs.get(&ppid) {
                    // The child starts with its parent's mappings (copied at fork).
                    let child = Process { live: parent.live.clone(), retired: Vec::new(), source: Source::Sideband, gone_at: None, generation };
                    self.procs.insert(pid, child);
                }
            }
            TaskEvent::Exit { pid, tid, .. } => {
                if pid == tid {
                    if let Some(p) = self.procs.get_mut(&pid) {
                        p.gone_at.get_or_insert(self.ticks);
                    }
                }
            }
        }
    }

    /// Ends a tick (about a second): `/proc`-read maps become stale, the state of processes
    /// gone for `GONE_TICKS` ticks is dropped, and old replaced mappings go.
    pub fn expire(&mut self) {
        self.ticks += 1;
        let (ticks, oldest) = (self.ticks, self.latest_ns.saturating_sub(RETIRED_KEEP_NS));
        self.procs.retain(|_, p| p.gone_at.is_none_or(|at| at + GONE_TICKS > ticks));
        for p in self.procs.values_mut() {
            if let Source::Procfs { fresh, reloaded_for_unknown } = &mut p.source {
                (*fresh, *reloaded_for_unknown) = (false, false);
            }
            let before = p.retired.len();
            p.retired.retain(|m| m.until_ns >= oldest);
            if p.retired.len() != before {
                self.generations += 1;
                p.generation = self.generations;
            }
        }
    }

    /// Normalizes `addrs` of process `pid` against its latest mappings.
    pub fn normalize(&mut self, pid: u32, addrs: &[u64]) -> Result<Vec<FileAddr>> {
        self.normalize_at(pid, u64::MAX, addrs)
    }

    /// Normalizes `addrs` of process `pid` as they were mapped at `ts_ns`. An error means
    /// nothing is known about the process (it exited before anything about it was read).
    pub fn normalize_at(&mut self, pid: u32, ts_ns: u64, addrs: &[u64]) -> Result<Vec<FileAddr>> {
        self.refresh(pid, ts_ns, addrs)?;
        let p = &self.procs[&pid];
        Ok(addrs
            .iter()
            .map(|&addr| match p.find(ts_ns, addr) {
                Some(m) if m.module != UNKNOWN_MODULE => FileAddr { module: m.module, offset: addr - m.start + m.offset },
                // Unmapped, or code outside any file.
                _ => FileAddr { module: UNKNOWN_MODULE, offset: addr },
            })
            .collect())
    }

    /// The executable mappings of `pid` in effect at `ts_ns`, sorted by start (for the DWARF
    /// unwinder: `module_file` opens their modules). Empty for a process never seen.
    pub fn mappings(&mut self, pid: u32, ts_ns: u64) -> Vec<Mapping> {
        if self.refresh(pid, ts_ns, &[]).is_err() {
            return Vec::new();
        }
        let p = &self.procs[&pid];
        let mut out: Vec<Mapping> = p.live.iter().chain(&p.retired).filter(|m| m.since_ns <= ts_ns && ts_ns < m.until_ns).copied().collect();
        out.sort_unstable_by_key(|m| m.start);
        out
    }

    /// A number that stays the same while the mappings of `pid` do (after reading them
    /// again if they are stale, as [`mappings`](Self::mappings) does): a cache of what was
    /// built from `mappings(pid, t)` holds for every `t` in [`unchanged_span`](Self::unchanged_span)
    /// while this number holds. 0 for a process never seen.
    pub fn mappings_generation(&mut self, pid: u32, ts_ns: u64) -> u64 {
        if self.refresh(pid, ts_ns, &[]).is_err() {
            return 0;
        }
        self.procs[&pid].generation
    }

    /// The times around `ts_ns`, `[from, to)`, at which `mappings(pid, _)` gives the same set
    /// as at `ts_ns`, as known now: between the neighbouring starts and ends of mappings.
    pub fn unchanged_span(&self, pid: u32, ts_ns: u64) -> std::ops::Range<u64> {
        let Some(p) = self.procs.get(&pid) else { return ts_ns..ts_ns.saturating_add(1) };
        let (mut from, mut to) = (0, u64::MAX);
        for m in p.live.iter().chain(&p.retired) {
            for edge in [m.since_ns, m.until_ns] {
                if edge <= ts_ns {
                    from = from.max(edge);
                } else {
                    to = to.min(edge);
                }
            }
        }
        from..to
    }

    /// The executable mapping of `pid` holding `addr` at `ts_ns`, as known now (no /proc read:
    /// call after [`normalize_at`](Self::normalize_at) for the same sample).
    pub fn mapping_at(&self, pid: u32, ts_ns: u64, addr: u64) -> Option<&Mapping> {
        self.procs.get(&pid)?.find(ts_ns, addr)
    }

    /// A path this process can read `module`'s file from while the recording runs: its own
    /// path, or `/proc/self/fd/N` of a file opened through the process that mapped it.
    pub fn module_file(&self, module: u32) -> Option<PathBuf> {
        match self.files.get(module as usize)? {
            ModuleFile::AtPath => Some(self.modules[module as usize].path.clone()),
            ModuleFile::Open(f) => Some(PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()))),
            ModuleFile::Unavailable => None,
        }
    }

    /// Reads `/proc` when the process is not described by the side-band and its maps are
    /// stale, or miss one of `addrs`.
    fn refresh(&mut self, pid: u32, ts_ns: u64, addrs: &[u64]) -> Result<()> {
        if ts_ns != u64::MAX {
            self.latest_ns = self.latest_ns.max(ts_ns);
        }
        let reload = match self.procs.get(&pid) {
            None => Some(false),
            Some(Process { source: Source::Sideband, .. }) => None,
            Some(Process { source: Source::Procfs { fresh: false, .. }, .. }) => Some(false),
            Some(p @ Process { source: Source::Procfs { reloaded_for_unknown: false, .. }, .. }) => addrs.iter().any(|&a| p.find(ts_ns, a).is_none()).then_some(true),
            Some(_) => None,
        };
        match reload {
            Some(for_unknown) => self.reload(pid, for_unknown),
            None => Ok(()),
        }
    }

    /// Reads the maps again; a process that is gone keeps the maps it had.
    fn reload(&mut self, pid: u32, for_unknown: bool) -> Result<()> {
        match procfs::vmas(&self.proc_root, pid) {
            Ok(vmas) => {
                let mut live: Vec<Mapping> = vmas
                    .into_iter()
                    .filter(|v| v.perms.contains('x'))
                    .map(|v: Vma| {
                        let module = if is_file(&v.name) { self.module(pid, v.start, v.end, &v.name, None) } else { UNKNOWN_MODULE };
                        Mapping { start: v.start, end: v.end, offset: v.offset, module, since_ns: 0, until_ns: u64::MAX }
                    })
                    .collect();
                live.sort_unstable_by_key(|v| v.start);
                let source = Source::Procfs { fresh: true, reloaded_for_unknown: for_unknown };
                let retired = self.procs.remove(&pid).map(|p| p.retired).unwrap_or_default();
                let generation = self.next_generation();
                self.procs.insert(pid, Process { live, retired, source, gone_at: None, generation });
                Ok(())
            }
            Err(_) if self.procs.contains_key(&pid) => {
                if let Some(p) = self.procs.get_mut(&pid) {
                    // Gone: its last maps stay until its state is dropped.
                    p.source = Source::Procfs { fresh: true, reloaded_for_unknown: true };
                    p.gone_at.get_or_insert(self.ticks);
                }
                Ok(())
            }
            Err(e) => Err(e).with_context(|| format!("failed to normalize addresses of pid {pid}")),
        }
    }

    fn next_generation(&mut self) -> u64 {
        self.generations += 1;
        self.generations
    }

    fn mapping_of(&mut self, m: &MmapEvent) -> Mapping {
        let module = if is_file(&m.path) { self.module(m.pid, m.start, m.start + m.len, &m.path, Some(m.file)) } else { UNKNOWN_MODULE };
        Mapping { start: m.start, end: m.start + m.len, offset: m.pgoff, module, since_ns: m.ts_ns, until_ns: u64::MAX }
    }

    /// The module of a file mapped at `[start, end)` by `pid`, interned. With the kernel's
    /// name for the file (`file`: device and inode) it is identified once; a file that is not
    /// the one at its path here (another mount namespace, replaced on disk) is opened through
    /// the process and its build-id read from there.
    fn module(&mut self, pid: u32, start: u64, end: u64, path: &str, file: Option<FileId>) -> u32 {
        if let Some(&known) = file.and_then(|f| self.by_file.get(&f)) {
            return known;
        }
        let path = PathBuf::from(path.strip_suffix(" (deleted)").unwrap_or(path));
        let here_is_it = match file {
            Some(f) => std::fs::metadata(&path).is_ok_and(|m| (m.dev(), m.ino()) == (f.dev, f.ino)),
            // From /proc/<pid>/maps: the path is taken at its word (read, mostly, while the
            // process lives; its files are rarely in another namespace).
            None => true,
        };
        let (build_id, opened) = if here_is_it {
            let id = self.build_ids.entry(path.clone()).or_insert_with(|| read_elf_build_id(&path).ok().flatten().map(|id| id.to_vec()));
            (id.clone(), None)
        } else {
            let map_file = self.proc_root.join(format!("{pid}/map_files/{start:x}-{end:x}"));
            let rooted = self.proc_root.join(format!("{pid}/root")).join(path.strip_prefix("/").unwrap_or(&path));
            match [map_file, rooted].into_iter().find_map(|p| File::open(p).ok()) {
                Some(f) => (read_elf_build_id(Path::new(&format!("/proc/self/fd/{}", f.as_raw_fd()))).ok().flatten().map(|id| id.to_vec()), Some(f)),
                None => (None, None),
            }
        };
        let before = self.modules.len();
        let id = intern(&mut self.modules, &mut self.index, Module { path, build_id });
        if self.modules.len() > before {
            self.files.push(match opened {
                None if here_is_it => ModuleFile::AtPath,
                Some(f) if self.open_files < MAX_OPEN_FILES => {
                    self.open_files += 1;
                    ModuleFile::Open(f)
                }
                _ => ModuleFile::Unavailable,
            });
        }
        if let Some(f) = file {
            self.by_file.insert(f, id);
        }
        id
    }
}

impl Process {
    fn find(&self, ts_ns: u64, addr: u64) -> Option<&Mapping> {
        let i = self.live.partition_point(|v| v.end <= addr);
        if let Some(m) = self.live.get(i).filter(|v| v.start <= addr && v.since_ns <= ts_ns) {
            return Some(m);
        }
        // Taken before the live mapping there appeared: what was there then.
        self.retired.iter().rev().find(|m| m.start <= addr && addr < m.end && m.since_ns <= ts_ns && ts_ns < m.until_ns)
    }

    /// Adds a mapping; whatever it overlaps is replaced from its time on.
    fn insert(&mut self, new: Mapping) {
        let from = self.live.partition_point(|v| v.end <= new.start);
        let to = self.live.partition_point(|v| v.start < new.end);
        let mut keep = Vec::new();
        for old in self.live.drain(from..to) {
            // The parts outside the new mapping stay in effect.
            if old.start < new.start {
                keep.push(Mapping { end: new.start, ..old });
            }
            if old.end > new.end {
                keep.push(Mapping { start: new.end, offset: old.offset + (new.end - old.start), ..old });
            }
            self.retired.push(Mapping { until_ns: new.since_ns, ..old });
        }
        keep.push(new);
        keep.sort_unstable_by_key(|m| m.start);
        self.live.splice(from..from, keep);
    }

    /// `exec`: every mapping ends.
    fn retire_all(&mut self, ts_ns: u64) {
        self.retired.extend(self.live.drain(..).map(|m| Mapping { until_ns: ts_ns, ..m }));
    }
}

/// A mapping backed by a file (not `[vdso]`, `[heap]`, anonymous JIT code `//anon`).
fn is_file(name: &str) -> bool {
    name.starts_with('/') && !name.starts_with("//")
}

fn intern(modules: &mut Vec<Module>, index: &mut HashMap<Module, u32>, module: Module) -> u32 {
    if let Some(&id) = index.get(&module) {
        return id;
    }
    let id = modules.len() as u32;
    modules.push(module.clone());
    index.insert(module, id);
    id
}

#[cfg(test)]
mod tests {
    use blazesym::symbolize::{source::Elf, source::Source, Input, Symbolizer};

    use super::*;

    #[no_mangle]
    #[inline(never)]
    fn damo_trace_normalize_probe() -> u64 {
        std::hint::black_box(42)
    }

    #[test]
    fn cached_maps_serve_a_process_that_is_gone_and_reload_for_new_mappings() {
        let proc_root = tempfile::tempdir().unwrap();
        let dir = proc_root.path().join("77");
        std::fs::create_dir(&dir).unwrap();
        let maps = dir.join("maps");
        std::fs::write(&maps, "1000-2000 r-xp 00003000 08:01 1 /usr/lib/liba.so\n3000-4000 rw-p 00000000 00:00 0 \n").unwrap();
        let mut n = AddressNormalizer::with_proc_root(proc_root.path());
        let got = n.normalize(77, &[0x1010, 0x3010]).unwrap();
        assert_eq!(got[0].offset, 0x3010, "file offset = addr - start + mapping offset");
        assert_eq!(n.modules()[got[0].module as usize].path, Path::new("/usr/lib/liba.so"));
        assert_eq!(got[1], FileAddr { module: UNKNOWN_MODULE, offset: 0x3010 }, "not executable");
        // A new mapping appears: the unknown address makes the maps be read again.
        std::fs::write(&maps, "1000-2000 r-xp 00003000 08:01 1 /usr/lib/liba.so\n5000-6000 r-xp 00000000 08:01 2 /usr/lib/libb.so\n").unwrap();
        assert_eq!(n.normalize(77, &[0x5004]).unwrap()[0].offset, 4);
        // The process is gone: what was read still names its samples.
        std::fs::remove_dir_all(&dir).unwrap();
        n.expire();
        assert_eq!(n.normalize(77, &[0x1010]).unwrap()[0].offset, 0x3010);
        assert!(n.normalize(78, &[0x1010]).is_err(), "a process never seen cannot be normalized");
    }

    fn mmap(pid: u32, ts_ns: u64, start: u64, len: u64, pgoff: u64, path: &str) -> TaskEvent {
        // A file id no file here has: the path is not taken at its word.
        TaskEvent::Mmap(MmapEvent { pid, ts_ns, start, len, pgoff, file: FileId { dev: 0, ino: u64::MAX, generation: 0 }, path: path.into() })
    }

    fn module_of(n: &AddressNormalizer, f: FileAddr) -> Option<&Path> {
        n.modules().get(f.module as usize).map(|m| m.path.as_path())
    }

    /// A shell forks, the child execs a program and exits, and its samples are read after
    /// all of it: each is normalized against what was mapped when it was taken.
    #[test]
    fn sideband_records_normalize_samples_of_a_process_that_is_gone() {
        let proc_root = tempfile::tempdir().unwrap();
        std::fs::create_dir(proc_root.path().join("10")).unwrap();
        std::fs::write(proc_root.path().join("10/maps"), "1000-2000 r-xp 00000000 08:01 1 /bin/sh\n").unwrap();
        let mut n = AddressNormalizer::with_proc_root(proc_root.path());
        n.follow_children(true);
        n.track(10).unwrap();
        n.apply(&TaskEvent::Fork { pid: 11, ppid: 10, tid: 11, ts_ns: 100 });
        n.apply(&TaskEvent::Fork { pid: 10, ppid: 10, tid: 12, ts_ns: 101 }); // a thread: nothing new
        n.apply(&TaskEvent::Exec { pid: 11, ts_ns: 200 });
        n.apply(&mmap(11, 201, 0x1000, 0x3000, 0x2000, "/opt/app"));
        n.apply(&mmap(11, 202, 0x7000, 0x1000, 0, "[vdso]"));
        n.apply(&TaskEvent::Exit { pid: 11, tid: 11, ts_ns: 300 });
        assert_eq!(n.processes(), 2, "a thread is no process");
        // Before exec, the child ran the shell's code; after it, the program's.
        let before = n.normalize_at(11, 150, &[0x1010]).unwrap()[0];
        assert_eq!((module_of(&n, before), before.offset), (Some(Path::new("/bin/sh")), 0x10));
        let after = n.normalize_at(11, 250, &[0x1010, 0x3ff0, 0x7004, 0x9000]).unwrap();
        assert_eq!((module_of(&n, after[0]), after[0].offset), (Some(Path::new("/opt/app")), 0x2010));
        assert_eq!(after[1].offset, 0x4ff0);
        assert_eq!(after[2], FileAddr { module: UNKNOWN_MODULE, offset: 0x7004 }, "[vdso] is no file");
        assert_eq!(after[3].module, UNKNOWN_MODULE, "unmapped");
        let maps = n.mappings(11, 250);
        assert_eq!(maps.iter().map(|m| (m.start, m.end)).collect::<Vec<_>>(), [(0x1000, 0x4000), (0x7000, 0x8000)]);
        // The same set holds from the last mapping's start on, and differed before it.
        assert_eq!(n.unchanged_span(11, 250), 202..u64::MAX);
        assert_eq!(n.unchanged_span(11, 150), 0..200, "the shell's code (read from /proc: since 0) until exec");
        let generation = n.mappings_generation(11, 250);
        assert_eq!(n.mappings_generation(11, 250), generation, "nothing changed");
        n.apply(&mmap(11, 260, 0x9000, 0x1000, 0, "/opt/lib"));
        assert_ne!(n.mappings_generation(11, 270), generation, "a new mapping is a new generation");
        assert_eq!(n.unchanged_span(11, 250), 202..260);
        assert_eq!(n.module_file(after[0].module), None, "/opt/app is nowhere to be read");
        // Gone: its state stays for samples still in flight, then goes.
        n.expire();
        assert!(n.normalize_at(11, 250, &[0x1010]).is_ok());
        n.expire();
        n.expire();
        assert_eq!(n.processes(), 1, "the exited child's state is dropped");
        // An untracked parent's children are not tracked.
        n.apply(&TaskEvent::Fork { pid: 21, ppid: 20, tid: 21, ts_ns: 400 });
        n.apply(&mmap(21, 401, 0x1000, 0x1000, 0, "/opt/other"));
        assert_eq!(n.processes(), 1);
    }

    #[test]
    fn a_new_mapping_replaces_what_it_overlaps_from_its_time_on() {
        let mut p = Process { live: Vec::new(), retired: Vec::new(), source: super::Source::Sideband, gone_at: None, generation: 0 };
        let m = |start, end, offset, module, since_ns| Mapping { start, end, offset, module, since_ns, until_ns: u64::MAX };
        p.insert(m(0x1000, 0x5000, 0, 1, 10));
        p.insert(m(0x2000, 0x3000, 0x100, 2, 20));
        let live: Vec<_> = p.live.iter().map(|m| (m.start, m.end, m.offset, m.module)).collect();
        assert_eq!(live, [(0x1000, 0x2000, 0, 1), (0x2000, 0x3000, 0x100, 2), (0x3000, 0x5000, 0x2000, 1)]);
        assert_eq!(p.find(15, 0x2800).map(|m| m.module), Some(1), "before the new mapping");
        assert_eq!(p.find(25, 0x2800).map(|m| m.module), Some(2));
        assert_eq!(p.find(5, 0x2800), None, "before anything was mapped");
        p.retire_all(30);
        assert!(p.live.is_empty());
        assert_eq!(p.find(25, 0x4000).map(|m| m.offset), Some(0x2000));
        assert_eq!(p.find(35, 0x4000), None, "after exec");
    }

    #[test]
    fn own_function_normalizes_and_symbolizes_from_the_file() {
        let addr = damo_trace_normalize_probe as *const () as usize as u64;
        let mut normalizer = AddressNormalizer::new();
        let normalized = normalizer.normalize(std::process::id(), &[addr, 8]).unwrap();
        let FileAddr { module, offset } = normalized[0];
        assert_ne!(module, UNKNOWN_MODULE, "the test binary's own code must be in a file");
        let file = &normalizer.modules()[module as usize];
        assert_eq!(file.path.canonicalize().unwrap(), std::env::current_exe().unwrap().canonicalize().unwrap());
        assert!(file.build_id.is_some(), "rustc binaries carry a build-id");
        assert_eq!(normalized[1], FileAddr { module: UNKNOWN_MODULE, offset: 8 }, "unmapped address");

        let symbolizer = Symbolizer::new();
        let source = Source::Elf(Elf::new(&file.path));
        let sym = symbolizer.symbolize_single(&source, Input::FileOffset(offset)).unwrap();
        let name = sym.as_sym().map(|s| s.name.to_string());
        assert_eq!(name.as_deref(), Some("damo_trace_normalize_probe"));

        // Interning: the same module again gets the same id, and no module is added twice.
        let known = normalizer.modules().len();
        normalizer.expire();
        let again = normalizer.normalize(std::process::id(), &[addr]).unwrap();
        assert_eq!(again[0].module, module);
        assert_eq!(normalizer.modules().len(), known);
    }
}
