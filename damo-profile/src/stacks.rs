//! Recorded samples as named stacks: which samples a time selection keeps, and each one's
//! frames outermost first, the FlameGraph way (user frames, a `-` separator, kernel frames
//! suffixed `_[k]`).

use std::collections::HashMap;

use damo_record::model::{Record, StackSample, UNKNOWN_MODULE};

use crate::symbols::{Lines, ModuleFile, Name, Names, SourceLine, SymbolCache};

/// Samples whose time falls in one of `spans` (`[start, end)` ns, sorted); all of them when
/// `spans` is `None`.
pub fn select<'a>(record: &'a Record, spans: Option<&[(u64, u64)]>) -> Vec<&'a StackSample> {
    match spans {
        None => record.samples.iter().collect(),
        Some(spans) => record.samples.iter().filter(|s| in_spans(spans, s.ts_ns)).collect(),
    }
}

/// Whether `ts_ns` falls in one of `spans` (`[start, end)` ns, sorted).
pub fn in_spans(spans: &[(u64, u64)], ts_ns: u64) -> bool {
    let i = spans.partition_point(|&(_, end)| end <= ts_ns);
    spans.get(i).is_some_and(|&(start, _)| start <= ts_ns)
}

/// One named sample. Names are shared with the symbol cache: naming copies no strings.
pub struct NamedStack {
    /// Outermost first.
    pub frames: Vec<Name>,
    /// The innermost frame (where the CPU was) and the file it is in.
    pub symbol: Name,
    pub object: Name,
    /// Where in its source the innermost user frame is, when the binary said (and the sample
    /// was in user code).
    pub source: Option<SourceLine>,
}

/// The perf map entries a record kept, per process: sorted `(start, end, name)`.
#[derive(Default)]
struct JitNames(HashMap<u32, Vec<(u64, u64, Name)>>);

impl JitNames {
    fn new(record: &Record) -> Self {
        let mut by_pid: HashMap<u32, Vec<(u64, u64, Name)>> = HashMap::new();
        for j in &record.jit_symbols {
            by_pid.entry(j.pid).or_default().push((j.start, j.start.saturating_add(j.size), Name::from(format!("{} [jit]", j.name))));
        }
        for v in by_pid.values_mut() {
            v.sort_by_key(|e| e.0);
        }
        Self(by_pid)
    }

    fn get(&self, pid: u32, addr: u64) -> Option<&Name> {
        let v = self.0.get(&pid)?;
        let i = v.partition_point(|e| e.0 <= addr);
        v[..i].last().filter(|e| addr < e.1).map(|e| &e.2)
    }
}

/// Names stacks, reusing one symbolizer for the whole report.
pub struct Namer {
    cache: SymbolCache,
    jit: JitNames,
    objects: Vec<Name>,
    /// Kernel frames' names without their `_[k]` suffix, for the symbol column.
    kernel_symbols: HashMap<u64, Name>,
    /// The names every report repeats.
    separator: Name,
    kernel_object: Name,
    unknown: Name,
    /// The object of JIT code named by a perf map.
    jit_object: Name,
    no_stack: Name,
}

impl Namer {
    /// `search_dirs`: where else to find the recorded binaries (same name and build-id).
    pub fn new(record: &Record, search_dirs: &[std::path::PathBuf]) -> Self {
        let modules: Vec<ModuleFile> = record.modules.iter().map(|m| ModuleFile { path: m.path.clone(), build_id: m.build_id.clone() }).collect();
        let objects = modules.iter().map(|m| Name::from(m.path.file_name().map_or_else(|| m.path.display().to_string(), |n| n.to_string_lossy().into_owned()))).collect();
        let mut cache = SymbolCache::new(modules, record.kernel_symbols.iter().cloned()).with_search_dirs(search_dirs.to_vec()).with_recorded(&record.code_symbols);
        // Every distinct frame of the record in one batch: reports name most samples anyway,
        // and a batch costs a fraction of single lookups.
        let frames = record.samples.iter().flat_map(|s| s.user.iter().enumerate().filter(|(_, f)| f.module != UNKNOWN_MODULE).map(|(depth, f)| (f.module, f.offset, depth > 0)));
        cache.prefetch_user(frames);
        Self {
            cache,
            jit: JitNames::new(record),
            objects,
            kernel_symbols: HashMap::new(),
            separator: "-".into(),
            kernel_object: "[kernel.kallsyms]".into(),
            unknown: "[unknown]".into(),
            jit_object: "[jit]".into(),
            no_stack: "[no stack]".into(),
        }
    }

    /// Names of a frame outside any file: its perf map entry, else its address.
    fn unknown(&self, pid: u32, addr: u64) -> (FrameAt, Names) {
        match self.jit.get(pid, addr) {
            Some(name) => (FrameAt::Jit { pid, addr }, [name.clone()].into()),
            None => (FrameAt::Unknown(addr), [Name::from(format!("[unknown] {addr:#x}"))].into()),
        }
    }

    pub fn name(&mut self, s: &StackSample) -> NamedStack {
        let mut frames = Vec::with_capacity(s.user.len() + s.kernel.len() + 1);
        let mut source = None;
        for (depth, f) in s.user.iter().enumerate().rev() {
            let names = if f.module == UNKNOWN_MODULE {
                self.unknown(s.pid, f.offset).1
            } else {
                let r = self.cache.user_resolved(f.module, f.offset, depth > 0);
                if depth == 0 {
                    source = r.lines.last().cloned().flatten();
                }
                r.names
            };
            frames.extend(names.iter().cloned());
        }
        if !s.kernel.is_empty() {
            if !s.user.is_empty() {
                frames.push(self.separator.clone());
            }
            for &addr in s.kernel.iter().rev() {
                frames.extend(self.cache.kernel(addr).iter().cloned());
            }
        }
        if frames.is_empty() {
            frames.push(format!("[{}: no stack]", s.comm).into());
        }
        let (symbol, object) = match (s.kernel.first(), s.user.first()) {
            (Some(&addr), _) => {
                let innermost = frames.last().cloned().unwrap_or_default();
                let symbol = self.kernel_symbols.entry(addr).or_insert_with(|| innermost.trim_end_matches("_[k]").into()).clone();
                (symbol, self.kernel_object.clone())
            }
            (None, Some(f)) => {
                let jit = f.module == UNKNOWN_MODULE && self.jit.get(s.pid, f.offset).is_some();
                let object = if jit { self.jit_object.clone() } else { self.objects.get(f.module as usize).unwrap_or(&self.unknown).clone() };
                (frames.last().cloned().unwrap_or_default(), object)
            }
            (None, None) => (self.no_stack.clone(), self.unknown.clone()),
        };
        let source = if s.kernel.is_empty() { source } else { None };
        NamedStack { frames, symbol, object, source }
    }
}

/// Where a frame is, for exporters that keep frames apart (pprof locations, speedscope files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameAt {
    /// A file offset in `Record::modules[module]`.
    User {
        module: u32,
        offset: u64,
    },
    /// A user address outside any file and any perf map entry (a vanished mapping).
    Unknown(u64),
    /// JIT code named by its process's perf map.
    Jit {
        pid: u32,
        addr: u64,
    },
    Kernel(u64),
}

/// One frame of a sample with its names: the function, then the functions inlined into it at
/// that address (outermost first, as [`crate::symbols::Names`]).
#[derive(Debug, Clone)]
pub struct NamedFrame {
    pub at: FrameAt,
    /// Whether `at` is a return address (every user frame but the innermost), which names
    /// the call before it: the same address can name differently as a leaf.
    pub is_return: bool,
    pub names: crate::symbols::Names,
    /// Where in their source `names` are, in the same order.
    pub lines: Lines,
}

impl Namer {
    /// The frames of a sample innermost first (pprof's order): kernel frames, then user
    /// frames. Kernel names keep their `_[k]` suffix; empty for a sample without a stack.
    pub fn frames(&mut self, s: &StackSample) -> Vec<NamedFrame> {
        let kernel = s.kernel.iter().map(|&addr| NamedFrame { at: FrameAt::Kernel(addr), is_return: false, names: self.cache.kernel(addr), lines: [None].into() });
        let mut frames: Vec<NamedFrame> = kernel.collect();
        for (depth, f) in s.user.iter().enumerate() {
            let is_return = depth > 0;
            frames.push(if f.module == UNKNOWN_MODULE {
                let (at, names) = self.unknown(s.pid, f.offset);
                NamedFrame { at, is_return, names, lines: [None].into() }
            } else {
                let r = self.cache.user_resolved(f.module, f.offset, is_return);
                NamedFrame { at: FrameAt::User { module: f.module, offset: f.offset }, is_return, names: r.names, lines: r.lines }
            });
        }
        frames
    }
}

/// The record's cpu-clock sampling rate when it does not say (`record --sample_hz`'s default).
pub const DEFAULT_SAMPLE_HZ: u64 = 99;

/// How long one sample stands for, in ns. Records do not store their sampling rate, so it is
/// the median gap between consecutive samples of one thread: a thread on CPU is sampled once
/// per period, and the median ignores the long gaps while it sleeps (most of a thread's
/// gaps must be on-CPU ones). With fewer than 16 gaps to go by it is 1e9/[`DEFAULT_SAMPLE_HZ`];
/// the bool says whether the period came from the samples.
pub fn sampling_period_ns(samples: &[StackSample]) -> (u64, bool) {
    let default = 1_000_000_000 / DEFAULT_SAMPLE_HZ;
    let mut last: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
    let mut gaps = Vec::new();
    for s in samples {
        if let Some(prev) = last.insert(s.tid, s.ts_ns) {
            if s.ts_ns > prev {
                gaps.push(s.ts_ns - prev);
            }
        }
    }
    if gaps.len() < 16 {
        return (default, false);
    }
    let mid = gaps.len() / 2;
    let (_, &mut median, _) = gaps.select_nth_unstable(mid);
    (median, true)
}

#[cfg(test)]
mod export_tests {
    use super::*;
    use damo_record::model::FileAddr;

    fn sample(ts_ns: u64, tid: u32) -> StackSample {
        StackSample { ts_ns, pid: 1, tid, cpu: 0, comm: "t".into(), user: vec![], kernel: vec![] }
    }

    #[test]
    fn period_is_the_median_gap_of_a_thread() {
        // Two threads 4 ms apart, each sampled every 10 ms, one with a long sleep.
        let mut samples: Vec<StackSample> = (0..12u64).flat_map(|i| [sample(i * 10_000_000, 1), sample(i * 10_000_000 + 4_000_000, 2)]).collect();
        samples.push(sample(5_000_000_000, 1));
        assert_eq!(sampling_period_ns(&samples), (10_000_000, true));
        assert_eq!(sampling_period_ns(&samples[..10]), (1_000_000_000 / DEFAULT_SAMPLE_HZ, false), "too few gaps");
    }

    #[test]
    fn frames_are_innermost_first_with_kernel_below_user() {
        let record = Record {
            samples: vec![StackSample { user: vec![FileAddr { module: UNKNOWN_MODULE, offset: 0x10 }, FileAddr { module: UNKNOWN_MODULE, offset: 0x20 }], kernel: vec![0xffff_0001], ..sample(0, 1) }],
            kernel_symbols: vec![(0xffff_0001, "do_read".into())],
            ..Default::default()
        };
        let mut namer = Namer::new(&record, &[]);
        let frames = namer.frames(&record.samples[0]);
        let got: Vec<(FrameAt, bool, &str)> = frames.iter().map(|f| (f.at, f.is_return, &*f.names[0])).collect();
        assert_eq!(got, [(FrameAt::Kernel(0xffff_0001), false, "do_read_[k]"), (FrameAt::Unknown(0x10), false, "[unknown] 0x10"), (FrameAt::Unknown(0x20), true, "[unknown] 0x20")]);
        assert_eq!(namer.name(&record.samples[0]).frames.iter().map(|f| &**f).collect::<Vec<_>>(), ["[unknown] 0x20", "[unknown] 0x10", "-", "do_read_[k]"], "the flat names agree");
    }
}
