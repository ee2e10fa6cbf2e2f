//! Turns a live process's user addresses into (file, file offset) pairs with blazesym's
//! normalizer, so stacks can be symbolized after the process exited, even on another machine
//! that has the same files (matched by build-id).

use std::collections::HashMap;

use anyhow::{Context, Result};
use blazesym::normalize::{Normalizer, UserMeta};
pub use damo_record::model::{FileAddr, Module, UNKNOWN_MODULE};

/// Normalizes addresses and interns the modules they belong to.
pub struct AddressNormalizer {
    normalizer: Normalizer,
    modules: Vec<Module>,
    index: HashMap<Module, u32>,
}

impl Default for AddressNormalizer {
    fn default() -> Self {
        Self::new()
    }
}

impl AddressNormalizer {
    pub fn new() -> Self {
        // No VMA caching: a target may dlopen or exec at any time, and a stale map would
        // silently attribute samples to the wrong file.
        let normalizer = Normalizer::builder().enable_build_ids(true).enable_vma_caching(false).build();
        Self { normalizer, modules: Vec::new(), index: HashMap::new() }
    }

    /// Every module seen so far; `FileAddr::module` indexes this.
    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// Normalizes `addrs` of process `pid`, which must still be alive.
    pub fn normalize(&mut self, pid: u32, addrs: &[u64]) -> Result<Vec<FileAddr>> {
        let Self { normalizer, modules, index } = self;
        let output = normalizer
            .normalize_user_addrs(pid.into(), addrs)
            .with_context(|| format!("failed to normalize addresses of pid {pid}"))?;
        let ids: Vec<u32> = output
            .meta
            .iter()
            .map(|meta| match meta {
                UserMeta::Elf(elf) => {
                    let module = Module {
                        path: elf.path.clone(),
                        build_id: elf.build_id.as_ref().map(|id| id.to_vec()),
                    };
                    intern(modules, index, module)
                }
                _ => UNKNOWN_MODULE,
            })
            .collect();
        Ok(output
            .outputs
            .iter()
            .zip(addrs)
            .map(|(&(offset, meta), &addr)| match ids[meta] {
                UNKNOWN_MODULE => FileAddr { module: UNKNOWN_MODULE, offset: addr },
                module => FileAddr { module, offset },
            })
            .collect())
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

        // Interning: the same module again gets the same id.
        let again = normalizer.normalize(std::process::id(), &[addr]).unwrap();
        assert_eq!(again[0].module, module);
        assert_eq!(normalizer.modules().len(), 1);
    }
}
