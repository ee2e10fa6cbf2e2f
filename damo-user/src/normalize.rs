//! Turns a live process's user addresses into (file, file offset) pairs, so stacks can be
//! symbolized after the process exited, even on another machine that has the same files
//! (matched by build-id, read once per file).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use blazesym::helper::read_elf_build_id;
pub use damo_record::model::{FileAddr, Module, UNKNOWN_MODULE};

use crate::procfs::{self, Vma};

/// Normalizes addresses and interns the modules they belong to.
///
/// Each process's `/proc/<pid>/maps` is parsed once and kept: a sample costs a binary search,
/// not a file read. An address outside every cached mapping (a new `mmap`, a `dlopen`) makes
/// the next lookup read the maps again, and [`expire`](Self::expire) (called about once a
/// second) drops every cache, so a mapping replaced in place is stale for a second at most.
/// Kept maps also name the samples a process leaves in the ring buffer as it exits.
pub struct AddressNormalizer {
    proc_root: PathBuf,
    maps: HashMap<u32, Maps>,
    build_ids: HashMap<PathBuf, Option<Vec<u8>>>,
    modules: Vec<Module>,
    index: HashMap<Module, u32>,
}

struct Maps {
    /// Executable mappings, sorted by start, with their module resolved when read, so a
    /// frame costs a binary search and nothing else.
    vmas: Vec<Mapping>,
    /// Read since the last `expire`.
    fresh: bool,
    /// Read again for an unknown address since the last `expire` (once is enough: JIT code
    /// would otherwise make every sample read the maps).
    reloaded_for_unknown: bool,
}

/// One executable mapping of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// File offset of `start`.
    pub offset: u64,
    /// `UNKNOWN_MODULE` for code outside any file: [vdso], JIT.
    pub module: u32,
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
        Self { proc_root: proc_root.into(), maps: HashMap::new(), build_ids: HashMap::new(), modules: Vec::new(), index: HashMap::new() }
    }

    /// Every module seen so far; `FileAddr::module` indexes this.
    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// The executable mappings of `pid` as last read, sorted by start (empty if never read):
    /// what the DWARF unwinder (`crate::unwind`) needs besides the files of `modules()`.
    /// Call [`normalize`](Self::normalize) first to have them read or refreshed.
    pub fn mappings(&self, pid: u32) -> &[Mapping] {
        self.maps.get(&pid).map_or(&[], |m| &m.vmas)
    }

    /// Marks every cached map stale: the next sample of each process reads its maps again.
    pub fn expire(&mut self) {
        for m in self.maps.values_mut() {
            (m.fresh, m.reloaded_for_unknown) = (false, false);
        }
    }

    /// Normalizes `addrs` of process `pid`: alive, or seen alive before.
    pub fn normalize(&mut self, pid: u32, addrs: &[u64]) -> Result<Vec<FileAddr>> {
        let (stale, may_retry) = self.maps.get(&pid).map_or((true, true), |m| (!m.fresh, !m.reloaded_for_unknown));
        if stale {
            self.reload(pid, false)?;
        } else if may_retry && addrs.iter().any(|&a| self.find(pid, a).is_none()) {
            self.reload(pid, true)?;
        }
        Ok(addrs
            .iter()
            .map(|&addr| match self.find(pid, addr) {
                Some(m) if m.module != UNKNOWN_MODULE => FileAddr { module: m.module, offset: addr - m.start + m.offset },
                // Unmapped, or code outside any file.
                _ => FileAddr { module: UNKNOWN_MODULE, offset: addr },
            })
            .collect())
    }

    fn find(&self, pid: u32, addr: u64) -> Option<&Mapping> {
        let vmas = &self.maps.get(&pid)?.vmas;
        let i = vmas.partition_point(|v| v.end <= addr);
        vmas.get(i).filter(|v| v.start <= addr)
    }

    /// Reads the maps again; a process that is gone keeps the maps it had.
    fn reload(&mut self, pid: u32, for_unknown: bool) -> Result<()> {
        match procfs::vmas(&self.proc_root, pid) {
            Ok(vmas) => {
                let mut vmas: Vec<Mapping> = vmas
                    .into_iter()
                    .filter(|v| v.perms.contains('x'))
                    .map(|v: Vma| {
                        let module = if v.name.starts_with('/') { self.module(&v.name) } else { UNKNOWN_MODULE };
                        Mapping { start: v.start, end: v.end, offset: v.offset, module }
                    })
                    .collect();
                vmas.sort_unstable_by_key(|v| v.start);
                self.maps.insert(pid, Maps { vmas, fresh: true, reloaded_for_unknown: for_unknown });
                Ok(())
            }
            Err(_) if self.maps.contains_key(&pid) => {
                if let Some(m) = self.maps.get_mut(&pid) {
                    // Gone: its last maps stay, and nothing will change them any more.
                    (m.fresh, m.reloaded_for_unknown) = (true, true);
                }
                Ok(())
            }
            Err(e) => Err(e).with_context(|| format!("failed to normalize addresses of pid {pid}")),
        }
    }

    fn module(&mut self, path: &str) -> u32 {
        let path = Path::new(path.strip_suffix(" (deleted)").unwrap_or(path)).to_path_buf();
        let build_id = self.build_ids.entry(path.clone()).or_insert_with(|| read_elf_build_id(&path).ok().flatten().map(|id| id.to_vec())).clone();
        intern(&mut self.modules, &mut self.index, Module { path, build_id })
    }
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
