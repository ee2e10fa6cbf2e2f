//! What makes a record portable: the names of the code its samples hit, resolved at the end
//! of the recording (chunks CodeSymbols and JitSymbols), so reports name every frame without
//! the binaries: on another machine, out of the VM, after a file was deleted or rebuilt.
//!
//! Offsets are gathered from the samples as they are written, each distinct (module, offset)
//! once, and named at the end with one blazesym `Symbolizer`, one batch per module; a module
//! is read by its recorded path, and only if its build-id is still the recorded one.

use std::collections::{BTreeMap, HashSet};

use damo_profile::symbols::{lookup_offset, open_matching, symbolize_file, symbolizer};
use damo_record::model::{CodeSymbol, Module, StackSample, UNKNOWN_MODULE};

use super::perf_map::PerfMaps;

#[derive(Default)]
pub struct SampledCode {
    /// (module, offset looked up): a return address's minus one.
    offsets: HashSet<(u32, u64)>,
    /// JIT code of frames outside any file.
    pub perf_maps: PerfMaps,
    /// Where each module can be read from, when not at its recorded path (a file opened
    /// through the process, for programs of another mount namespace); by module id.
    pub module_files: Vec<Option<std::path::PathBuf>>,
}

impl SampledCode {
    /// Notes the frames of a sample as it is written; names its JIT frames now, while the
    /// process (and its perf map) is most likely still there.
    pub fn sample(&mut self, s: &StackSample) {
        for (depth, f) in s.user.iter().enumerate() {
            if f.module == UNKNOWN_MODULE {
                self.perf_maps.frame(s.pid, f.offset);
            } else {
                self.offsets.insert((f.module, lookup_offset(f.offset, depth > 0)));
            }
        }
    }

    /// Names every offset seen, per module of `modules` whose file still has its recorded
    /// build-id; offsets without a symbol get an entry without frames, so a reader knows the
    /// file had none there.
    pub fn code_symbols(&self, modules: &[Module]) -> Vec<CodeSymbol> {
        let mut by_module: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for &(module, offset) in &self.offsets {
            by_module.entry(module).or_default().push(offset);
        }
        let symbolizer = symbolizer();
        let mut out = Vec::new();
        for (module, mut offsets) in by_module {
            let Some(m) = modules.get(module as usize) else { continue };
            let path = self.module_files.get(module as usize).cloned().flatten().unwrap_or_else(|| m.path.clone());
            let Some(file) = open_matching(&path, m.build_id.as_deref(), false) else { continue };
            offsets.sort_unstable();
            let Some(resolved) = symbolize_file(&symbolizer, file.path(), &offsets) else { continue };
            out.extend(offsets.into_iter().zip(resolved).map(|(offset, frames)| CodeSymbol { module, offset, frames }));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use blazesym::helper::read_elf_build_id;
    use damo_record::model::FileAddr;

    use super::*;

    #[no_mangle]
    #[inline(never)]
    fn damo_user_portable_probe() -> u64 {
        std::hint::black_box(11)
    }

    #[test]
    fn names_each_sampled_offset_once_from_files_that_still_match() {
        let addr = damo_user_portable_probe as *const () as usize as u64;
        let normalizer = blazesym::normalize::Normalizer::new();
        let out = normalizer.normalize_user_addrs(std::process::id().into(), &[addr]).unwrap();
        let (offset, meta) = out.outputs[0];
        let blazesym::normalize::UserMeta::Elf(elf) = &out.meta[meta] else { panic!("not in a file") };
        let build_id = read_elf_build_id(&elf.path).unwrap().map(|b| b.to_vec());
        let modules = vec![Module { path: elf.path.clone(), build_id: build_id.clone() }, Module { path: elf.path.clone(), build_id: Some(vec![9, 9]) }];
        let mut code = SampledCode::default();
        let sample = |user: Vec<FileAddr>| StackSample { ts_ns: 0, pid: 1, tid: 1, cpu: 0, comm: "t".into(), user, kernel: vec![] };
        for _ in 0..3 {
            // As a leaf, and as a return address one byte further (the same call).
            code.sample(&sample(vec![FileAddr { module: 0, offset }, FileAddr { module: 0, offset: offset + 1 }, FileAddr { module: 1, offset }]));
        }
        let symbols = code.code_symbols(&modules);
        assert_eq!(symbols.len(), 1, "one entry per distinct offset, none for the changed file: {symbols:?}");
        assert_eq!((symbols[0].module, symbols[0].offset), (0, offset));
        assert_eq!(symbols[0].frames.last().map(|f| f.name.as_str()), Some("damo_user_portable_probe"));
    }
}
