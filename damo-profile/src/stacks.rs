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
    /// [`INTERRUPT_FRAME`], and without its suffix for the symbol column.
    interrupt: Name,
    interrupt_symbol: Name,
}

/// The one frame that stands for a hardware interrupt's handling and return path
/// (`_raw_spin_unlock_irqrestore`, `irqentry_exit_to_user_mode`, softirqs, the scheduler
/// tick...): time the kernel took from whatever the sample interrupted. As one frame on top of
/// the interrupted code, it is a single row in self-time tables (the sum of the kernel
/// functions perf lists one by one) and counts towards the interrupted code's inclusive share
/// (as in `perf report --children`), instead of a dozen kernel internals topping the lists.
pub const INTERRUPT_FRAME: &str = "[kernel: interrupt]_[k]";

/// Whether a kernel frame (`name_[k]`) is where the kernel entered a hardware interrupt:
/// `asm_sysvec_*` (timer, IPIs) and `asm_common_interrupt` (devices) since Linux 5.8, the
/// `*_interrupt` entry stubs before.
pub fn is_interrupt_entry(frame: &str) -> bool {
    let name = frame.strip_suffix("_[k]").unwrap_or(frame);
    name.starts_with("asm_sysvec_") || matches!(name, "asm_common_interrupt" | "apic_timer_interrupt" | "common_interrupt" | "reschedule_interrupt")
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
            interrupt: INTERRUPT_FRAME.into(),
            interrupt_symbol: INTERRUPT_FRAME.trim_end_matches("_[k]").into(),
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
                let names = self.cache.kernel(addr);
                if names.first().is_some_and(|n| is_interrupt_entry(n)) {
                    frames.push(self.interrupt.clone());
                    break;
                }
                frames.extend(names.iter().cloned());
            }
        }
        if frames.is_empty() {
            frames.push(format!("[{}: no stack]", s.comm).into());
        }
        let (symbol, object) = match (s.kernel.first(), s.user.first()) {
            (Some(_), _) if frames.last() == Some(&self.interrupt) => (self.interrupt_symbol.clone(), self.kernel_object.clone()),
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
        let mut frames: Vec<NamedFrame> = s.kernel.iter().map(|&addr| NamedFrame { at: FrameAt::Kernel(addr), is_return: false, names: self.cache.kernel(addr), lines: [None].into() }).collect();
        // As in `name`: from the outermost interrupt entry in, one frame (at the entry).
        if let Some(entry) = frames.iter().rposition(|f| f.names.first().is_some_and(|n| is_interrupt_entry(n))) {
            let at = frames[entry].at;
            frames.splice(..=entry, [NamedFrame { at, is_return: false, names: [self.interrupt.clone()].into(), lines: [None].into() }]);
        }
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

    #[test]
    fn an_interrupts_kernel_path_is_one_frame_on_the_interrupted_code() {
        let (unlock, exit, entry, syscall, entry_syscall) = (0xffff_0001u64, 0xffff_0002, 0xffff_0003, 0xffff_0004, 0xffff_0005);
        let user = vec![FileAddr { module: UNKNOWN_MODULE, offset: 0x10 }];
        let record = Record {
            samples: vec![
                // The timer fired while user code ran; the sample caught its return path.
                StackSample { user: user.clone(), kernel: vec![unlock, exit, entry], ..sample(0, 1) },
                // The same unlock in a system call is the program's own kernel time.
                StackSample { user: user.clone(), kernel: vec![unlock, syscall, entry_syscall], ..sample(1, 1) },
                // An interrupt during a system call: the system call's frames stay.
                StackSample { user, kernel: vec![unlock, exit, entry, syscall, entry_syscall], ..sample(2, 1) },
            ],
            kernel_symbols: vec![
                (unlock, "_raw_spin_unlock_irqrestore".into()),
                (exit, "irqentry_exit_to_user_mode".into()),
                (entry, "asm_sysvec_apic_timer_interrupt".into()),
                (syscall, "do_syscall_64".into()),
                (entry_syscall, "entry_SYSCALL_64_after_hwframe".into()),
            ],
            ..Default::default()
        };
        let mut namer = Namer::new(&record, &[]);
        let named: Vec<(Vec<String>, String)> = record.samples.iter().map(|s| namer.name(s)).map(|n| (n.frames.iter().map(|f| f.to_string()).collect(), n.symbol.to_string())).collect();
        assert_eq!(named[0], (vec!["[unknown] 0x10".into(), "-".into(), INTERRUPT_FRAME.into()], "[kernel: interrupt]".into()));
        assert_eq!(named[1].1, "_raw_spin_unlock_irqrestore");
        assert_eq!(named[2].0[2..], ["entry_SYSCALL_64_after_hwframe_[k]", "do_syscall_64_[k]", INTERRUPT_FRAME]);
        // The exporters' frames agree: one interrupt frame, at the entry.
        let frames = namer.frames(&record.samples[2]);
        let got: Vec<(FrameAt, &str)> = frames.iter().map(|f| (f.at, &*f.names[0])).collect();
        assert_eq!(got[..3], [(FrameAt::Kernel(entry), INTERRUPT_FRAME), (FrameAt::Kernel(syscall), "do_syscall_64_[k]"), (FrameAt::Kernel(entry_syscall), "entry_SYSCALL_64_after_hwframe_[k]")]);
    }
}
