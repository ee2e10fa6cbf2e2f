//! Names for recorded user frames (file + offset) and kernel frames (address), cached per
//! frame: one blazesym `Symbolizer` per report, reused, is the cache of parsed files. A
//! record that kept the names of its frames ([`Record::code_symbols`]) is named from them when
//! its files are gone or changed; a file in a search directory with the same build-id wins.
//!
//! [`Record::code_symbols`]: damo_record::model::Record::code_symbols

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use blazesym::{
    helper::read_elf_build_id,
    symbolize::{source::Elf, source::Source, CodeInfo, Input, Symbolizer},
};
use damo_record::model::{CodeSymbol, SourceFrame};

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

/// Where in its source each of a frame's [`Names`] is, in the same order; `None` where the
/// binary has no line information.
pub type Lines = Arc<[Option<SourceLine>]>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceLine {
    pub file: Name,
    pub line: u32,
}

/// A symbolizer that reads inlined functions and source lines: the one to use per run.
pub fn symbolizer() -> Symbolizer {
    Symbolizer::builder().enable_inlined_fns(true).enable_code_info(true).build()
}

/// The functions at each of `offsets` (file offsets) of the ELF file at `path`, outermost
/// first with their source lines; empty where the file has no symbol. `None` if the file
/// cannot be read.
pub fn symbolize_file(symbolizer: &Symbolizer, path: &Path, offsets: &[u64]) -> Option<Vec<Vec<SourceFrame>>> {
    let source = Source::Elf(Elf::new(path));
    let syms = symbolizer.symbolize(&source, Input::FileOffset(offsets)).ok()?;
    let frame = |name: &str, code: Option<&CodeInfo<'_>>| SourceFrame {
        name: name.to_owned(),
        file: code.map(|c| c.to_path().display().to_string()).unwrap_or_default(),
        line: code.and_then(|c| c.line).unwrap_or(0),
    };
    Some(
        syms.iter()
            .map(|sym| match sym.as_sym() {
                // blazesym lists inlined functions outermost first, each with the line inside
                // it (the call to the next one, or the address itself for the last).
                Some(sym) => std::iter::once(frame(&sym.name, sym.code_info.as_deref())).chain(sym.inlined.iter().map(|f| frame(&f.name, f.code_info.as_ref()))).collect(),
                None => Vec::new(),
            })
            .collect(),
    )
}

/// A named frame: its names and their source lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub names: Names,
    pub lines: Lines,
}

impl Resolved {
    fn unnamed(name: String) -> Self {
        Self { names: Arc::from([Name::from(name)]), lines: Arc::from([None]) }
    }
}

pub struct SymbolCache {
    symbolizer: Symbolizer,
    modules: Vec<ModuleFile>,
    /// Per module: the file to read, once found (the recorded path, or a file with the same
    /// name and build-id in a search directory); `Some(None)` when there is none.
    usable: Vec<Option<Option<Arc<OpenedFile>>>>,
    /// Per module: a file with its name and build-id in a search directory, which wins over
    /// the record's own names; `Some(None)` when there is none.
    searched: Vec<Option<Option<Arc<OpenedFile>>>>,
    /// Where else to look for a module, e.g. the binaries of a record made on another machine.
    search_dirs: Vec<PathBuf>,
    /// The names the record kept, by (module, offset looked up).
    recorded: HashMap<(u32, u64), Vec<SourceFrame>>,
    user: HashMap<(u32, u64), Resolved>,
    kernel: HashMap<u64, Names>,
    kernel_names: HashMap<u64, String>,
}

impl SymbolCache {
    /// `kernel_symbols` are the names the recording resolved from kallsyms.
    pub fn new(modules: Vec<ModuleFile>, kernel_symbols: impl IntoIterator<Item = (u64, String)>) -> Self {
        let usable = vec![None; modules.len()];
        let searched = vec![None; modules.len()];
        Self {
            symbolizer: symbolizer(),
            modules,
            usable,
            searched,
            search_dirs: Vec::new(),
            recorded: HashMap::new(),
            user: HashMap::new(),
            kernel: HashMap::new(),
            kernel_names: kernel_symbols.into_iter().collect(),
        }
    }

    /// Also looks for modules by file name in `dirs` (a build-id must match).
    pub fn with_search_dirs(mut self, dirs: Vec<PathBuf>) -> Self {
        self.search_dirs = dirs;
        self
    }

    /// The names the record kept of its frames, used when no search directory has the file.
    pub fn with_recorded(mut self, symbols: &[CodeSymbol]) -> Self {
        self.recorded = symbols.iter().map(|s| ((s.module, s.offset), s.frames.clone())).collect();
        self
    }

    /// Names for a user frame. `offset` is where the sample was for the innermost frame and a
    /// return address otherwise (`is_return_address`), which points after the call.
    pub fn user(&mut self, module: u32, offset: u64, is_return_address: bool) -> Names {
        self.user_resolved(module, offset, is_return_address).names
    }

    /// Names and source lines for a user frame, as [`Self::user`].
    pub fn user_resolved(&mut self, module: u32, offset: u64, is_return_address: bool) -> Resolved {
        let lookup = lookup_offset(offset, is_return_address);
        if let Some(r) = self.user.get(&(module, lookup)) {
            return r.clone();
        }
        self.prefetch_user([(module, offset, is_return_address)]);
        self.user[&(module, lookup)].clone()
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
            // A file the user pointed at wins; then the record's names; then the file at its
            // recorded path, for the offsets the record did not name.
            let searched = self.searched_file(module);
            if searched.is_none() {
                let (named, rest): (Vec<u64>, Vec<u64>) = offsets.iter().partition(|&&offset| self.recorded.contains_key(&(module, offset)));
                for offset in named {
                    let r = self.resolved(module, offset, &self.recorded[&(module, offset)]);
                    self.user.insert((module, offset), r);
                }
                offsets = rest;
            }
            let Some(path) = searched.or_else(|| self.module_file(module)) else {
                for offset in offsets {
                    let r = self.unresolvable(module, offset);
                    self.user.insert((module, offset), r);
                }
                continue;
            };
            let resolved = symbolize_file(&self.symbolizer, &path, &offsets).unwrap_or_else(|| vec![Vec::new(); offsets.len()]);
            for (offset, frames) in offsets.into_iter().zip(resolved) {
                let r = self.resolved(module, offset, &frames);
                self.user.insert((module, offset), r);
            }
        }
    }

    /// The file to read a module's symbols from: the recorded path, or a file with the same
    /// name and build-id in a search directory; `None` when neither is there.
    fn module_file(&mut self, module: u32) -> Option<PathBuf> {
        let file = self.modules.get(module as usize)?;
        if self.usable[module as usize].is_none() {
            let found = match open_matching(&file.path, file.build_id.as_deref(), false) {
                Some(opened) => Some(Arc::new(opened)),
                None => self.searched_opened(module),
            };
            self.usable[module as usize] = Some(found);
        }
        self.usable[module as usize].clone().flatten().map(|o| o.path.clone())
    }

    /// A file with the module's name and build-id in a search directory (only with proof that
    /// it is the same file: a module without a build-id is never looked for elsewhere).
    fn searched_file(&mut self, module: u32) -> Option<PathBuf> {
        self.searched_opened(module).map(|o| o.path.clone())
    }

    fn searched_opened(&mut self, module: u32) -> Option<Arc<OpenedFile>> {
        let file = self.modules.get(module as usize)?;
        let search_dirs = &self.search_dirs;
        self.searched[module as usize]
            .get_or_insert_with(|| {
                let name = file.path.file_name()?;
                let id = file.build_id.as_deref()?;
                search_dirs.iter().map(|d| d.join(name)).find_map(|p| open_matching(&p, Some(id), true)).map(Arc::new)
            })
            .clone()
    }

    fn base_name(&self, module: u32) -> Option<String> {
        let file = self.modules.get(module as usize)?;
        Some(file.path.file_name().map_or_else(|| file.path.display().to_string(), |n| n.to_string_lossy().into_owned()))
    }

    /// The name of a frame whose module is unknown, or whose file is gone or changed.
    fn unresolvable(&self, module: u32, offset: u64) -> Resolved {
        Resolved::unnamed(match self.base_name(module) {
            Some(base) => format!("[{base} changed or missing]"),
            None => format!("[unknown] {offset:#x}"),
        })
    }

    fn resolved(&self, module: u32, offset: u64, frames: &[SourceFrame]) -> Resolved {
        if frames.is_empty() {
            return Resolved::unnamed(format!("[{}+{offset:#x}]", self.base_name(module).unwrap_or_default()));
        }
        let names = frames.iter().map(|f| Name::from(f.name.as_str())).collect();
        let lines = frames.iter().map(|f| (!f.file.is_empty() && f.line > 0).then(|| SourceLine { file: f.file.as_str().into(), line: f.line })).collect();
        Resolved { names, lines }
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

/// A module's file, held open once it proved a regular file. A record names its binaries,
/// and whoever made the record chose those paths: damo-trace (often root) must not open a
/// FIFO (it would block) or a device behind one. blazesym reads the file through
/// `/proc/self/fd`, so the checked file is the one read, whatever the path names later.
pub struct OpenedFile {
    _file: std::fs::File,
    path: PathBuf,
}

impl OpenedFile {
    /// Where to read the file: `/proc/self/fd/N` of the checked descriptor.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The file at `path`, opened, if it is a regular file and the module recorded with
/// `build_id`: with `need_id`, it must have that build-id; otherwise a module recorded
/// without one matches any file.
pub fn open_matching(path: &Path, build_id: Option<&[u8]>, need_id: bool) -> Option<OpenedFile> {
    let file = damo_record::input::open_regular(path).ok()?;
    let by_fd = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file)));
    let opened = OpenedFile { path: if by_fd.exists() { by_fd } else { path.to_path_buf() }, _file: file };
    let now = read_elf_build_id(&opened.path).ok().flatten();
    let matches = if need_id { now.is_some() && now.as_deref() == build_id } else { build_id.is_none() || now.as_deref() == build_id };
    matches.then_some(opened)
}

/// Where to look a frame up: a return address points after its call instruction.
pub fn lookup_offset(offset: u64, is_return_address: bool) -> u64 {
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
        let modules = vec![ModuleFile { path: fifo, build_id: None }, ModuleFile { path: PathBuf::from("/dev/zero"), build_id: None }, ModuleFile { path: tmp.path().to_path_buf(), build_id: None }];
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

    #[test]
    fn recorded_names_stand_in_for_missing_files_and_a_search_dir_wins() {
        let (path, offset) = own_offset(damo_profile_symbols_probe as *const () as usize as u64);
        let build_id = read_elf_build_id(&path).unwrap().map(|b| b.to_vec());
        let modules = vec![ModuleFile { path: path.clone(), build_id }, ModuleFile { path: PathBuf::from("/nonexistent/libgone.so"), build_id: Some(vec![1]) }];
        let frame = |name: &str, file: &str, line| SourceFrame { name: name.into(), file: file.into(), line };
        let recorded = [
            CodeSymbol { module: 0, offset, frames: vec![frame("as_recorded", "", 0)] },
            CodeSymbol { module: 1, offset: 0x10, frames: vec![frame("outer", "/src/gone.c", 12), frame("inlined_leaf", "/src/gone.h", 3)] },
            CodeSymbol { module: 1, offset: 0x1f, frames: vec![] },
        ];
        let mut cache = SymbolCache::new(modules.clone(), []).with_recorded(&recorded);
        let gone = cache.user_resolved(1, 0x11, true);
        assert_eq!(gone.names.iter().map(|n| &**n).collect::<Vec<_>>(), ["outer", "inlined_leaf"], "a return address looks up the call");
        assert_eq!(&*gone.lines, [Some(SourceLine { file: "/src/gone.c".into(), line: 12 }), Some(SourceLine { file: "/src/gone.h".into(), line: 3 })]);
        assert_eq!(&*cache.user(1, 0x1f, false)[0], "[libgone.so+0x1f]", "recorded without a symbol");
        assert_eq!(&*cache.user(1, 0x20, false)[0], "[libgone.so changed or missing]", "not recorded");
        assert_eq!(&*cache.user(0, offset, false)[0], "as_recorded", "the record's names before re-reading the file");
        assert_eq!(
            &*cache.user(0, offset + 0x40_0000_0000, false)[0],
            format!("[{}+{:#x}]", path.file_name().unwrap().to_string_lossy(), offset + 0x40_0000_0000),
            "the file for offsets the record did not name"
        );

        let dir = path.parent().unwrap().to_path_buf();
        let mut searched = SymbolCache::new(modules, []).with_recorded(&recorded).with_search_dirs(vec![dir]);
        assert_eq!(&*searched.user(0, offset, false)[0], "damo_profile_symbols_probe", "a file with the same build-id in a search directory wins");
        assert_eq!(&*searched.user(1, 0x10, false)[0], "outer");
    }
}
