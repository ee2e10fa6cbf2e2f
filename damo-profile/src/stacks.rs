//! Recorded samples as named stacks: which samples a time selection keeps, and each one's
//! frames outermost first, the FlameGraph way (user frames, a `-` separator, kernel frames
//! suffixed `_[k]`).

use damo_record::model::{Record, StackSample, UNKNOWN_MODULE};

use crate::symbols::{ModuleFile, SymbolCache};

/// Samples whose time falls in one of `spans` (`[start, end)` ns, sorted); all of them when
/// `spans` is `None`.
pub fn select<'a>(record: &'a Record, spans: Option<&[(u64, u64)]>) -> Vec<&'a StackSample> {
    match spans {
        None => record.samples.iter().collect(),
        Some(spans) => record
            .samples
            .iter()
            .filter(|s| {
                let i = spans.partition_point(|&(_, end)| end <= s.ts_ns);
                spans.get(i).is_some_and(|&(start, _)| start <= s.ts_ns)
            })
            .collect(),
    }
}

/// One named sample.
pub struct NamedStack {
    /// Outermost first.
    pub frames: Vec<String>,
    /// The innermost frame (where the CPU was) and the file it is in.
    pub symbol: String,
    pub object: String,
}

/// Names stacks, reusing one symbolizer for the whole report.
pub struct Namer {
    cache: SymbolCache,
    objects: Vec<String>,
}

impl Namer {
    /// `search_dirs`: where else to find the recorded binaries (same name and build-id).
    pub fn new(record: &Record, search_dirs: &[std::path::PathBuf]) -> Self {
        let modules: Vec<ModuleFile> = record.modules.iter().map(|m| ModuleFile { path: m.path.clone(), build_id: m.build_id.clone() }).collect();
        let objects = modules.iter().map(|m| m.path.file_name().map_or_else(|| m.path.display().to_string(), |n| n.to_string_lossy().into_owned())).collect();
        let mut cache = SymbolCache::new(modules, record.kernel_symbols.iter().cloned()).with_search_dirs(search_dirs.to_vec());
        // Every distinct frame of the record in one batch: reports name most samples anyway,
        // and a batch costs a fraction of single lookups.
        let frames = record.samples.iter().flat_map(|s| s.user.iter().enumerate().filter(|(_, f)| f.module != UNKNOWN_MODULE).map(|(depth, f)| (f.module, f.offset, depth > 0)));
        cache.prefetch_user(frames);
        Self { cache, objects }
    }

    pub fn name(&mut self, s: &StackSample) -> NamedStack {
        let mut frames = Vec::with_capacity(s.user.len() + s.kernel.len() + 1);
        for (depth, f) in s.user.iter().enumerate().rev() {
            let names = if f.module == UNKNOWN_MODULE { [format!("[unknown] {:#x}", f.offset)].into() } else { self.cache.user(f.module, f.offset, depth > 0) };
            frames.extend(names.iter().cloned());
        }
        if !s.kernel.is_empty() {
            if !s.user.is_empty() {
                frames.push("-".into());
            }
            for &addr in s.kernel.iter().rev() {
                frames.extend(self.cache.kernel(addr).iter().cloned());
            }
        }
        if frames.is_empty() {
            frames.push(format!("[{}: no stack]", s.comm));
        }
        let (symbol, object) = match (s.kernel.first(), s.user.first()) {
            (Some(_), _) => (frames.last().cloned().unwrap_or_default().trim_end_matches("_[k]").to_owned(), "[kernel.kallsyms]".to_owned()),
            (None, Some(f)) => {
                let object = self.objects.get(f.module as usize).cloned().unwrap_or_else(|| "[unknown]".into());
                (frames.last().cloned().unwrap_or_default(), object)
            }
            (None, None) => ("[no stack]".into(), "[unknown]".into()),
        };
        NamedStack { frames, symbol, object }
    }
}
