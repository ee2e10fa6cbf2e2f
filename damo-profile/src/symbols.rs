//! Names for recorded user frames (file + offset) and kernel frames (address), cached per
//! frame: one blazesym `Symbolizer` per report, reused, is the cache of parsed files.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use blazesym::{
    helper::read_elf_build_id,
    symbolize::{source::Elf, source::Source, Input, Symbolizer},
};

/// A file the recorded user frames point into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleFile {
    pub path: PathBuf,
    /// The build-id seen while recording; a file that no longer matches is not trusted.
    pub build_id: Option<Vec<u8>>,
}

/// Function names of one frame, outermost first: the function, then the functions inlined
/// into it at that address.
/// Shared, so naming a sample copies no strings.
pub type Names = Arc<[Name]>;
pub type Name = Arc<str>;

pub struct SymbolCache {
    symbolizer: Symbolizer,
    modules: Vec<ModuleFile>,
    /// Per module: the file to read, once found (the recorded path, or a file with the same
    /// name and build-id in a search directory); `Some(None)` when there is none.
    usable: Vec<Option<Option<Opened>>>,
    /// Where else to look for a module, e.g. the binaries of a record made on another machine.
    search_dirs: Vec<PathBuf>,
    user: HashMap<(u32, u64), Names>,
    kernel: HashMap<u64, Names>,
    kernel_names: HashMap<u64, String>,
}

impl SymbolCache {
    /// `kernel_symbols` are the names the recording resolved from kallsyms.
    pub fn new(modules: Vec<ModuleFile>, kernel_symbols: impl IntoIterator<Item = (u64, String)>) -> Self {
        let usable = std::iter::repeat_with(|| None).take(modules.len()).collect();
        let symbolizer = Symbolizer::builder().enable_inlined_fns(true).enable_code_info(true).build();
        Self { symbolizer, modules, usable, search_dirs: Vec::new(), user: HashMap::new(), kernel: HashMap::new(), kernel_names: kernel_symbols.into_iter().collect() }
    }

    /// Also looks for modules by file name in `dirs` (a build-id must match).
    pub fn with_search_dirs(mut self, dirs: Vec<PathBuf>) -> Self {
        self.search_dirs = dirs;
        self
    }

    /// Names for a user frame. `offset` is where the sample was for the innermost frame and a
    /// return address otherwise (`is_return_address`), which points after the call.
    pub fn user(&mut self, module: u32, offset: u64, is_return_address: bool) -> Names {
        let lookup = lookup_offset(offset, is_return_address);
        if let Some(names) = self.user.get(&(module, lookup)) {
            return names.clone();
        }
        let names = self.resolve_user(module, lookup);
        self.user.insert((module, lookup), names.clone());
        names
    }

    /// Names user frames `(module, offset, is_return_address)` ahead of [`Self::user`], in
    /// one blazesym call per module: a batch reads each file's tables once, where single
    /// lookups re-check the file per address. Frames already named are skipped.
    pub fn prefetch_user(&mut self, frames: impl IntoIterator<Item = (u32, u64, bool)>) {
        let mut by_module: HashMap<u32, Vec<u64>> = HashMap::new();
        for (module, offset, is_return_address) in frames {
            let lookup = lookup_offset(offset, is_return_address);
            if !self.user.contains_key(&(module, lookup)) {
                by_module.entry(module).or_default().push(lookup);
            }
        }
        for (module, mut offsets) in by_module {
            offsets.sort_unstable();
            offsets.dedup();
            let Some(path) = self.module_file(module) else {
                for offset in offsets {
                    let names = self.unresolvable(module, offset);
                    self.user.insert((module, offset), names);
                }
                continue;
            };
            let source = Source::Elf(Elf::new(&path));
            let names: Vec<Names> = match self.symbolizer.symbolize(&source, Input::FileOffset(&offsets)) {
                Ok(syms) => syms.iter().zip(&offsets).map(|(sym, &offset)| self.names(module, offset, sym.as_sym())).collect(),
                Err(_) => offsets.iter().map(|&offset| self.names(module, offset, None)).collect(),
            };
            for (offset, names) in offsets.into_iter().zip(names) {
                self.user.insert((module, offset), names);
            }
        }
    }

    fn resolve_user(&mut self, module: u32, offset: u64) -> Names {
        let Some(path) = self.module_file(module) else {
            return self.unresolvable(module, offset);
        };
        let source = Source::Elf(Elf::new(&path));
        let sym = self.symbolizer.symbolize_single(&source, Input::FileOffset(offset));
        self.names(module, offset, sym.as_ref().ok().and_then(|s| s.as_sym()))
    }

    /// The file to read a module's symbols from: the recorded path, or a file with the same
    /// name and build-id in a search directory; `None` when neither is there.
    fn module_file(&mut self, module: u32) -> Option<PathBuf> {
        let file = self.modules.get(module as usize)?;
        let search_dirs = &self.search_dirs;
        self.usable[module as usize]
            .get_or_insert_with(|| {
                let matches = |path: &PathBuf, need_id: bool| {
                    let opened = Opened::regular(path)?;
                    let now = read_elf_build_id(&opened.path).ok().flatten().map(|id| id.to_vec());
                    let ok = if need_id { now.is_some() && now == file.build_id } else { file.build_id.is_none() || now == file.build_id };
                    ok.then_some(opened)
                };
                if let Some(opened) = matches(&file.path, false) {
                    return Some(opened);
                }
                // Elsewhere only with proof that it is the same file.
                let name = file.path.file_name()?;
                search_dirs.iter().map(|d| d.join(name)).filter(|_| file.build_id.is_some()).find_map(|p| matches(&p, true))
            })
            .as_ref()
            .map(|o| o.path.clone())
    }

    fn base_name(&self, module: u32) -> Option<String> {
        let file = self.modules.get(module as usize)?;
        Some(file.path.file_name().map_or_else(|| file.path.display().to_string(), |n| n.to_string_lossy().into_owned()))
    }

    /// The name of a frame whose module is unknown, or whose file is gone or changed.
    fn unresolvable(&self, module: u32, offset: u64) -> Names {
        match self.base_name(module) {
            Some(base) => Arc::from([Name::from(format!("[{base} changed or missing]"))]),
            None => Arc::from([Name::from(format!("[unknown] {offset:#x}"))]),
        }
    }

    fn names(&self, module: u32, offset: u64, sym: Option<&blazesym::symbolize::Sym<'_>>) -> Names {
        match sym {
            Some(sym) => {
                let mut names = vec![Name::from(&*sym.name)];
                // blazesym lists inlined functions outermost first.
                names.extend(sym.inlined.iter().map(|f| Name::from(&*f.name)));
                Arc::from(names)
            }
            None => Arc::from([Name::from(format!("[{}+{offset:#x}]", self.base_name(module).unwrap_or_default()))]),
        }
    }

    /// Name for a kernel frame, suffixed `_[k]` as FlameGraph does.
    pub fn kernel(&mut self, addr: u64) -> Names {
        if let Some(names) = self.kernel.get(&addr) {
            return names.clone();
        }
        let name = match self.kernel_names.get(&addr) {
            Some(name) => format!("{name}_[k]"),
            None => format!("[kernel {addr:#x}]_[k]"),
        };
        let names: Names = Arc::from([Name::from(name)]);
        self.kernel.insert(addr, names.clone());
        names
    }
}

/// Where to look a frame up: a return address points after its call instruction.
/// A module's file, held open once it proved a regular file. A record names its binaries,
/// and whoever made the record chose those paths: damo-trace (often root) must not open a
/// FIFO (it would block) or a device behind one. blazesym reads the file through
/// `/proc/self/fd`, so the checked file is the one read, whatever the path names later.
struct Opened {
    _file: std::fs::File,
    path: PathBuf,
}

impl Opened {
    fn regular(path: &std::path::Path) -> Option<Opened> {
        let file = damo_record::input::open_regular(path).ok()?;
        let by_fd = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file)));
        let path = if by_fd.exists() { by_fd } else { path.to_path_buf() };
        Some(Opened { _file: file, path })
    }
}

fn lookup_offset(offset: u64, is_return_address: bool) -> u64 {
    if is_return_address {
        offset.saturating_sub(1)
    } else {
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[no_mangle]
    #[inline(never)]
    fn damo_profile_symbols_probe() -> u64 {
        std::hint::black_box(7)
    }

    /// The file offset of a function of this test binary, via the normalizer.
    fn own_offset(addr: u64) -> (PathBuf, u64) {
        let normalizer = blazesym::normalize::Normalizer::new();
        let out = normalizer.normalize_user_addrs(std::process::id().into(), &[addr]).unwrap();
        let (offset, meta) = out.outputs[0];
        match &out.meta[meta] {
            blazesym::normalize::UserMeta::Elf(elf) => (elf.path.clone(), offset),
            other => panic!("not in a file: {other:?}"),
        }
    }

    #[test]
    fn a_module_that_is_not_a_regular_file_is_never_read() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("libfifo.so");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let modules = vec![
            ModuleFile { path: fifo, build_id: None },
            ModuleFile { path: PathBuf::from("/dev/zero"), build_id: None },
            ModuleFile { path: tmp.path().to_path_buf(), build_id: None },
        ];
        // Nobody writes the FIFO: opening it to read would block this test forever.
        let mut cache = SymbolCache::new(modules, []);
        assert_eq!(&*cache.user(0, 0x10, false)[0], "[libfifo.so changed or missing]");
        assert_eq!(&*cache.user(1, 0x10, false)[0], "[zero changed or missing]");
        cache.prefetch_user([(2, 0x20, false)]);
        assert!(cache.user(2, 0x20, false)[0].ends_with("changed or missing]"));
    }

    #[test]
    fn names_user_frames_and_checks_build_ids() {
        let (path, offset) = own_offset(damo_profile_symbols_probe as *const () as usize as u64);
        let build_id = read_elf_build_id(&path).unwrap().map(|b| b.to_vec());
        let modules = vec![
            ModuleFile { path: path.clone(), build_id },
            ModuleFile { path: path.clone(), build_id: Some(vec![1, 2, 3]) },
            ModuleFile { path: PathBuf::from("/nonexistent/libgone.so"), build_id: None },
        ];
        let mut cache = SymbolCache::new(modules, [(0xffff_ffff_8100_0000, "do_syscall_64".to_string())]);
        assert_eq!(&*cache.user(0, offset, false)[0], "damo_profile_symbols_probe");
        assert_eq!(&*cache.user(0, offset + 1, true)[0], "damo_profile_symbols_probe", "return addresses step back");
        let changed = format!("[{} changed or missing]", path.file_name().unwrap().to_string_lossy());
        assert_eq!(&*cache.user(1, offset, false)[0], changed.as_str(), "a build-id mismatch is not trusted");
        assert_eq!(&*cache.user(2, 0x10, false)[0], "[libgone.so changed or missing]");
        assert_eq!(&*cache.user(9, 0x10, false)[0], "[unknown] 0x10");
        assert_eq!(&*cache.kernel(0xffff_ffff_8100_0000)[0], "do_syscall_64_[k]");

        let mut batched = SymbolCache::new(cache.modules.clone(), []);
        batched.prefetch_user([(0, offset, false), (0, offset + 1, true), (1, offset, false), (2, 0x10, false), (9, 0x10, false)]);
        assert_eq!(batched.user.len(), 4, "the return address looks up the same offset");
        for (module, offset, ret) in [(0, offset, false), (0, offset + 1, true), (1, offset, false), (2, 0x10, false), (9, 0x10, false)] {
            assert_eq!(batched.user(module, offset, ret), cache.user(module, offset, ret), "module {module} offset {offset:#x}");
        }
        assert_eq!(&*cache.kernel(0x1234)[0], "[kernel 0x1234]_[k]");
    }
}
