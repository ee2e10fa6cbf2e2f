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
pub type Names = Arc<[String]>;

pub struct SymbolCache {
    symbolizer: Symbolizer,
    modules: Vec<ModuleFile>,
    /// Per module: the file to read, once found (the recorded path, or a file with the same
    /// name and build-id in a search directory); `Some(None)` when there is none.
    usable: Vec<Option<Option<PathBuf>>>,
    /// Where else to look for a module, e.g. the binaries of a record made on another machine.
    search_dirs: Vec<PathBuf>,
    user: HashMap<(u32, u64), Names>,
    kernel: HashMap<u64, Names>,
    kernel_names: HashMap<u64, String>,
}

impl SymbolCache {
    /// `kernel_symbols` are the names the recording resolved from kallsyms.
    pub fn new(modules: Vec<ModuleFile>, kernel_symbols: impl IntoIterator<Item = (u64, String)>) -> Self {
        let usable = vec![None; modules.len()];
        let symbolizer = Symbolizer::builder().enable_inlined_fns(true).enable_code_info(true).build();
        Self {
            symbolizer,
            modules,
            usable,
            search_dirs: Vec::new(),
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

    /// Names for a user frame. `offset` is where the sample was for the innermost frame and a
    /// return address otherwise (`is_return_address`), which points after the call.
    pub fn user(&mut self, module: u32, offset: u64, is_return_address: bool) -> Names {
        let lookup = if is_return_address { offset.saturating_sub(1) } else { offset };
        if let Some(names) = self.user.get(&(module, lookup)) {
            return names.clone();
        }
        let names = self.resolve_user(module, lookup);
        self.user.insert((module, lookup), names.clone());
        names
    }

    fn resolve_user(&mut self, module: u32, offset: u64) -> Names {
        let Some(file) = self.modules.get(module as usize) else {
            return Arc::from([format!("[unknown] {offset:#x}")]);
        };
        let base = file.path.file_name().map_or_else(|| file.path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let search_dirs = &self.search_dirs;
        let found = self.usable[module as usize].get_or_insert_with(|| {
            let matches = |path: &PathBuf, need_id: bool| {
                let now = read_elf_build_id(path).ok().flatten().map(|id| id.to_vec());
                path.is_file() && if need_id { now.is_some() && now == file.build_id } else { file.build_id.is_none() || now == file.build_id }
            };
            if matches(&file.path, false) {
                return Some(file.path.clone());
            }
            // Elsewhere only with proof that it is the same file.
            let name = file.path.file_name()?;
            search_dirs.iter().map(|d| d.join(name)).find(|p| file.build_id.is_some() && matches(p, true))
        });
        let Some(path) = found.clone() else {
            return Arc::from([format!("[{base} changed or missing]")]);
        };
        let source = Source::Elf(Elf::new(&path));
        let sym = self.symbolizer.symbolize_single(&source, Input::FileOffset(offset));
        match sym.as_ref().ok().and_then(|s| s.as_sym()) {
            Some(sym) => {
                let mut names = vec![sym.name.to_string()];
                // blazesym lists inlined functions outermost first.
                names.extend(sym.inlined.iter().map(|f| f.name.to_string()));
                Arc::from(names)
            }
            None => Arc::from([format!("[{base}+{offset:#x}]")]),
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
        let names: Names = Arc::from([name]);
        self.kernel.insert(addr, names.clone());
        names
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
    fn names_user_frames_and_checks_build_ids() {
        let (path, offset) = own_offset(damo_profile_symbols_probe as *const () as usize as u64);
        let build_id = read_elf_build_id(&path).unwrap().map(|b| b.to_vec());
        let modules = vec![
            ModuleFile { path: path.clone(), build_id },
            ModuleFile { path: path.clone(), build_id: Some(vec![1, 2, 3]) },
            ModuleFile { path: PathBuf::from("/nonexistent/libgone.so"), build_id: None },
        ];
        let mut cache = SymbolCache::new(modules, [(0xffff_ffff_8100_0000, "do_syscall_64".to_string())]);
        assert_eq!(cache.user(0, offset, false)[0], "damo_profile_symbols_probe");
        assert_eq!(cache.user(0, offset + 1, true)[0], "damo_profile_symbols_probe", "return addresses step back");
        let changed = format!("[{} changed or missing]", path.file_name().unwrap().to_string_lossy());
        assert_eq!(cache.user(1, offset, false)[0], changed, "a build-id mismatch is not trusted");
        assert_eq!(cache.user(2, 0x10, false)[0], "[libgone.so changed or missing]");
        assert_eq!(cache.user(9, 0x10, false)[0], "[unknown] 0x10");
        assert_eq!(cache.kernel(0xffff_ffff_8100_0000)[0], "do_syscall_64_[k]");
        assert_eq!(cache.kernel(0x1234)[0], "[kernel 0x1234]_[k]");
    }
}
