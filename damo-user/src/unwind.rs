//! DWARF unwinding of sampled user stacks (`record --call-graph dwarf`), in the collector,
//! while the process lives.
//!
//! Each sample brings the user registers (ip, sp, bp) and the top of the user stack; framehop
//! (samply's unwinder) walks it with the CFI of the binaries (`.eh_frame` through
//! `.eh_frame_hdr`, `.eh_frame` alone, `.debug_frame`) and falls back to frame pointers where
//! a module has none. A file's unwind sections are read once and shared by every process that
//! maps it (keyed by the normalizer's module id: path and build-id); a process gets a framehop
//! unwinder with its modules at their load addresses, rebuilt only when its mappings change.
//! Only the return addresses leave here: the record keeps normalized frames, not stack bytes.

use std::{
    collections::HashMap,
    ops::{Deref, Range},
    path::Path,
    sync::Arc,
};

use damo_common::{StackEvent, MAX_STACK_DEPTH};
use framehop::{
    x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64},
    Error as UnwindError, ExplicitModuleSectionInfo, FrameAddress, Module as UnwindModule, Unwinder,
};
use object::{Object, ObjectSection, ObjectSegment};

use crate::normalize::{AddressNormalizer, Mapping, UNKNOWN_MODULE};

/// `--call-graph`: how user stacks are taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallGraph {
    /// Frame pointers, walked by the kernel (`bpf_get_stack`).
    Fp,
    /// DWARF CFI over a copy of this many bytes of user stack.
    Dwarf { stack_copy: u32 },
}

/// The default stack copy: see the README's "Call stacks" for the measurements behind it.
pub const DEFAULT_STACK_COPY: u32 = 16384;

impl Default for CallGraph {
    fn default() -> Self {
        Self::Dwarf { stack_copy: DEFAULT_STACK_COPY }
    }
}

impl CallGraph {
    /// perf's syntax: `fp`, `dwarf` or `dwarf,SIZE` (bytes, a multiple of 8, at most 65528).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (mode, size) = match text.split_once(',') {
            Some((mode, size)) => (mode, Some(size)),
            None => (text, None),
        };
        match (mode, size) {
            ("fp", None) => Ok(Self::Fp),
            ("dwarf", None) => Ok(Self::default()),
            ("dwarf", Some(size)) => {
                let n: u32 = size.trim().parse().map_err(|_| format!("{size:?} is not a stack copy size in bytes"))?;
                if n == 0 || !n.is_multiple_of(8) || n as usize > damo_common::MAX_STACK_COPY {
                    return Err(format!("the stack copy must be a multiple of 8 from 8 to {} bytes, not {n}", damo_common::MAX_STACK_COPY));
                }
                Ok(Self::Dwarf { stack_copy: n })
            }
            _ => Err(format!("{text:?}: the call graph mode is fp, dwarf or dwarf,SIZE")),
        }
    }

    /// Bytes of user stack the eBPF side copies per sample (0 in fp mode).
    pub fn stack_copy(self) -> u32 {
        match self {
            Self::Fp => 0,
            Self::Dwarf { stack_copy } => stack_copy,
        }
    }
}

/// Section bytes shared between the file cache and every process's unwinder.
#[derive(Clone, Default)]
pub struct Bytes(Arc<[u8]>);

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// What unwinding needs from one file, read once.
struct FileInfo {
    sections: ExplicitModuleSectionInfo<Bytes>,
    /// PT_LOAD segments: (file offset, virtual address), to place the file in a process.
    loads: Vec<(u64, u64)>,
}

/// A process's unwinder and the mappings it was built from.
struct ProcessUnwinder {
    unwinder: UnwinderX86_64<Bytes>,
    mappings: Vec<Mapping>,
    /// The normalizer's generation of those mappings and the times they hold for: while
    /// both hold, nothing is compared.
    generation: u64,
    span: Range<u64>,
    last_used: u64,
}

/// How the samples unwound, for the summary and the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnwindStats {
    pub samples: u64,
    /// framehop found the root of the stack (the CFI says "no caller").
    pub complete: u64,
    /// Unwinding needed stack bytes above the copy: a bigger `dwarf,SIZE` would go deeper.
    pub beyond_copy: u64,
    /// Samples without any user stack bytes (the copy failed; only the ip is known).
    pub no_stack: u64,
    /// Samples by how much of the stack unwinding read, in KiB (rounded up, the last bucket
    /// 64 KiB): what picks the default copy size.
    pub read_kib: [u64; 65],
}

impl Default for UnwindStats {
    fn default() -> Self {
        Self { samples: 0, complete: 0, beyond_copy: 0, no_stack: 0, read_kib: [0; 65] }
    }
}

/// How one sample unwound; counted into [`UnwindStats`] by the caller once the sample is
/// final (a sample unwound again after a side-band read counts once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnwindOutcome {
    pub complete: bool,
    pub beyond_copy: bool,
    pub no_stack: bool,
    /// KiB of the stack copy unwinding read (`None`: nothing was unwound).
    pub read_kib: Option<usize>,
}

impl UnwindStats {
    pub fn count(&mut self, outcome: UnwindOutcome) {
        self.samples += 1;
        self.complete += u64::from(outcome.complete);
        self.beyond_copy += u64::from(outcome.beyond_copy);
        self.no_stack += u64::from(outcome.no_stack);
        if let Some(kib) = outcome.read_kib {
            self.read_kib[kib.min(self.read_kib.len() - 1)] += 1;
        }
    }

    /// The stack read (KiB) that `share` of the samples stayed within.
    pub fn read_kib_quantile(&self, share: f64) -> usize {
        let total: u64 = self.read_kib.iter().sum();
        let mut seen = 0;
        for (kib, &n) in self.read_kib.iter().enumerate() {
            seen += n;
            if seen as f64 >= share * total as f64 {
                return kib;
            }
        }
        self.read_kib.len() - 1
    }
}

/// DWARF unwinding state of one recording: the file cache, per-process unwinders, framehop's
/// rule cache.
pub struct StackUnwinder {
    files: HashMap<u32, Option<Arc<FileInfo>>>,
    processes: HashMap<u32, ProcessUnwinder>,
    cache: CacheX86_64,
    ticks: u64,
    pub stats: UnwindStats,
}

/// A process unsampled for this many ticks (about seconds) has its unwinder dropped.
const IDLE_TICKS: u64 = 10;

impl Default for StackUnwinder {
    fn default() -> Self {
        Self::new()
    }
}

impl StackUnwinder {
    pub fn new() -> Self {
        Self { files: HashMap::new(), processes: HashMap::new(), cache: CacheX86_64::new(), ticks: 0, stats: UnwindStats::default() }
    }

    /// About once a second: forgets processes that stopped being sampled.
    pub fn tick(&mut self) {
        self.ticks += 1;
        let now = self.ticks;
        self.processes.retain(|_, p| now - p.last_used <= IDLE_TICKS);
    }

    /// The user frames of a dwarf-mode sample, innermost first: the ip, then return addresses
    /// (as `bpf_get_stack` gives them; the caller ends them with [`end_at_unmapped`]), and how
    /// it went, for the caller to count. The process's maps are read or refreshed through
    /// `normalizer`; `Err` when they cannot be (the process is gone and was never seen).
    pub fn unwind(&mut self, normalizer: &mut AddressNormalizer, event: &StackEvent, stack: &[u8]) -> anyhow::Result<(Vec<u64>, UnwindOutcome)> {
        let regs = event.regs;
        if regs.ip == 0 {
            return Ok((Vec::new(), UnwindOutcome { no_stack: true, ..UnwindOutcome::default() }));
        }
        normalizer.normalize_at(event.pid, event.ts_ns, &[regs.ip])?;
        self.prepare(normalizer, event.pid, event.ts_ns);
        let unwinder = &self.processes[&event.pid].unwinder;
        let sp = regs.sp;
        let mut highest = sp;
        let mut read_stack = |addr: u64| {
            highest = highest.max(addr.saturating_add(8));
            read_u64(stack, sp, addr)
        };
        let mut frames = Vec::with_capacity(32);
        let mut iter = unwinder.iter_frames(regs.ip, UnwindRegsX86_64::new(regs.ip, regs.sp, regs.bp), &mut self.cache, &mut read_stack);
        let end = loop {
            if frames.len() >= MAX_STACK_DEPTH {
                break Ok(None);
            }
            match iter.next() {
                Ok(Some(frame)) => frames.push(match frame {
                    FrameAddress::InstructionPointer(ip) => ip,
                    FrameAddress::ReturnAddress(ra) => ra.get(),
                }),
                other => break other,
            }
        };
        let outcome = UnwindOutcome {
            complete: end.is_ok() && frames.len() < MAX_STACK_DEPTH,
            beyond_copy: matches!(end, Err(UnwindError::CouldNotReadStack(addr)) if addr >= sp + stack.len() as u64 && !stack.is_empty()),
            no_stack: stack.is_empty(),
            read_kib: Some((highest - sp).div_ceil(1024) as usize),
        };
        Ok((frames, outcome))
    }

    /// Builds the unwinder of `pid` (again) when its executable mappings at `ts_ns` changed.
    /// The normalizer's generation makes the common case (nothing changed) a comparison of
    /// numbers, not of mapping lists.
    fn prepare(&mut self, normalizer: &mut AddressNormalizer, pid: u32, ts_ns: u64) {
        let generation = normalizer.mappings_generation(pid, ts_ns);
        let current = self.processes.get(&pid).is_some_and(|p| p.generation == generation && p.span.contains(&ts_ns));
        if !current {
            let mappings = normalizer.mappings(pid, ts_ns);
            let span = normalizer.unchanged_span(pid, ts_ns);
            match self.processes.get_mut(&pid).filter(|p| p.mappings == mappings) {
                Some(p) => (p.generation, p.span) = (generation, span),
                None => {
                    let unwinder = self.build(normalizer, &mappings);
                    self.processes.insert(pid, ProcessUnwinder { unwinder, mappings, generation, span, last_used: self.ticks });
                }
            }
        }
        if let Some(process) = self.processes.get_mut(&pid) {
            process.last_used = self.ticks;
        }
    }

    fn build(&mut self, normalizer: &AddressNormalizer, mappings: &[Mapping]) -> UnwinderX86_64<Bytes> {
        let mut unwinder = UnwinderX86_64::new();
        for m in mappings.iter().filter(|m| m.module != UNKNOWN_MODULE) {
            let file = self.files.entry(m.module).or_insert_with(|| normalizer.module_file(m.module).and_then(|p| read_file(&p)).map(Arc::new)).clone();
            if let Some(file) = file {
                if let Some(module) = place(&file, m, &normalizer.modules()[m.module as usize].path) {
                    unwinder.add_module(module);
                }
            }
        }
        unwinder
    }
}

/// Reads the 8 bytes at `addr` from the stack copy that starts at `sp`.
fn read_u64(stack: &[u8], sp: u64, addr: u64) -> Result<u64, ()> {
    let at = usize::try_from(addr.checked_sub(sp).ok_or(())?).map_err(|_| ())?;
    let bytes = stack.get(at..at.checked_add(8).ok_or(())?).ok_or(())?;
    Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| ())?))
}

/// Cuts a stack at its first return address outside every executable mapping of the process,
/// keeping that address as one `[unknown]` frame (as perf does): past it, a frame-pointer walk
/// follows whatever `rbp` held and yields garbage, up to 127 frames of it.
/// `module_at` gives the module of the executable mapping holding an address, `None` outside
/// every one (a lookup, not a list: it runs for each sample).
pub fn end_at_unmapped(module_at: impl Fn(u64) -> Option<u32>, frames: &mut Vec<u64>) {
    // An ip outside every mapping (a sample caught in exec, before the new image's mappings
    // are known): nothing walked from it can be trusted either.
    if frames.first().is_some_and(|&ip| module_at(ip).is_none()) {
        frames.truncate(1);
    } else if let Some(i) = frames.iter().skip(1).position(|&a| module_at(a).is_none()) {
        // The unmapped address stays as the one [unknown] frame, unless the frame before it
        // is already code outside any file ([vdso], JIT): a walk out of the vdso of a
        // program without frame pointers follows its caller's rbp into garbage.
        let after_unnamed = module_at(frames[i]) == Some(UNKNOWN_MODULE);
        frames.truncate(if after_unnamed { i + 1 } else { i + 2 });
    }
}

/// The unwind sections and load segments of the ELF file at `path` (where the normalizer can
/// read the module: its path, or the file it opened through the process, for files of another
/// mount namespace); `None` if it cannot be read or parsed, and the unwinder falls back to
/// frame pointers in its code.
fn read_file(path: &Path) -> Option<FileInfo> {
    let file = std::fs::File::open(path).ok()?;
    // SAFETY: read-only map of a file; the sections are copied out before it is unmapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    parse_elf(&map)
}

fn parse_elf(data: &[u8]) -> Option<FileInfo> {
    let elf = object::File::parse(data).ok()?;
    let range = |name: &str| elf.section_by_name(name).map(|s| s.address()..s.address() + s.size());
    let bytes = |name: &str| {
        let s = elf.section_by_name(name)?;
        let data = s.uncompressed_data().ok()?;
        (!data.is_empty()).then(|| Bytes(Arc::from(&*data)))
    };
    let sections = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: range(".text"),
        got_svma: range(".got"),
        eh_frame_svma: range(".eh_frame"),
        eh_frame: bytes(".eh_frame"),
        eh_frame_hdr_svma: range(".eh_frame_hdr"),
        eh_frame_hdr: bytes(".eh_frame_hdr"),
        debug_frame: bytes(".debug_frame"),
        ..Default::default()
    };
    let loads = elf.segments().map(|s| (s.file_range().0, s.address())).collect();
    Some(FileInfo { sections, loads })
}

/// The framehop module of `file` mapped at `m`: its load bias comes from the PT_LOAD segment
/// holding the mapping's file offset.
fn place(file: &FileInfo, m: &Mapping, path: &Path) -> Option<UnwindModule<Bytes>> {
    let &(seg_offset, seg_vaddr) = file.loads.iter().filter(|(off, _)| *off & !0xfff <= m.offset).max_by_key(|(off, _)| *off)?;
    // The address the file's vaddr 0 would have: start = bias + vaddr of the mapped offset.
    let base_avma = m.start.wrapping_sub(seg_vaddr.wrapping_add(m.offset).wrapping_sub(seg_offset));
    let avma: Range<u64> = m.start..m.end;
    Some(UnwindModule::new(path.display().to_string(), avma, base_avma, file.sections.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_graph_takes_perfs_syntax() {
        assert_eq!(CallGraph::parse("fp"), Ok(CallGraph::Fp));
        assert_eq!(CallGraph::parse("dwarf"), Ok(CallGraph::Dwarf { stack_copy: DEFAULT_STACK_COPY }));
        assert_eq!(CallGraph::parse("dwarf,8192"), Ok(CallGraph::Dwarf { stack_copy: 8192 }));
        assert_eq!(CallGraph::parse("dwarf,65528").map(CallGraph::stack_copy), Ok(65528));
        for bad in ["lbr", "dwarf,0", "dwarf,100", "dwarf,65536", "fp,8", "dwarf,x"] {
            assert!(CallGraph::parse(bad).is_err(), "{bad} must be refused");
        }
        assert_eq!(CallGraph::default().stack_copy(), DEFAULT_STACK_COPY);
    }

    #[test]
    fn stack_reads_stay_inside_the_copy() {
        let stack: Vec<u8> = (0u8..32).collect();
        let sp = 0x7000;
        assert_eq!(read_u64(&stack, sp, sp), Ok(u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7])));
        assert_eq!(read_u64(&stack, sp, sp + 24), Ok(u64::from_le_bytes([24, 25, 26, 27, 28, 29, 30, 31])));
        assert_eq!(read_u64(&stack, sp, sp + 25), Err(()), "crosses the end of the copy");
        assert_eq!(read_u64(&stack, sp, sp - 8), Err(()), "below sp");
        assert_eq!(read_u64(&stack, sp, u64::MAX), Err(()));
    }

    /// What the eBPF side would send for this thread at this point: the registers and a
    /// copy of the stack from sp up to the end of the stack's mapping, at most 64 KiB (this
    /// test function's own frame takes 20 KiB in a debug build).
    #[inline(never)]
    #[no_mangle]
    fn damo_unwind_probe_inner() -> (StackEvent, Vec<u8>) {
        let (ip, sp, bp): (u64, u64, u64);
        // SAFETY: reads three registers, writes nothing else.
        unsafe { std::arch::asm!("lea {ip}, [rip]", "mov {sp}, rsp", "mov {bp}, rbp", ip = out(reg) ip, sp = out(reg) sp, bp = out(reg) bp) };
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let end = maps
            .lines()
            .filter_map(|l| {
                let (range, _) = l.split_once(' ')?;
                let (s, e) = range.split_once('-')?;
                Some((u64::from_str_radix(s, 16).ok()?, u64::from_str_radix(e, 16).ok()?))
            })
            .find(|&(s, e)| s <= sp && sp < e)
            .unwrap()
            .1;
        let len = (end - sp).min(damo_common::MAX_STACK_COPY as u64) as usize;
        // SAFETY: [sp, sp + len) is inside this thread's mapped stack.
        let stack = unsafe { std::slice::from_raw_parts(sp as *const u8, len) }.to_vec();
        // SAFETY: StackEvent is plain old data; all-zero is a valid value.
        let mut event: StackEvent = unsafe { std::mem::zeroed() };
        event.pid = std::process::id();
        event.regs = damo_common::UserRegs { ip, sp, bp };
        event.stack_len = len as u32;
        (event, std::hint::black_box(stack))
    }

    #[inline(never)]
    #[no_mangle]
    fn damo_unwind_probe_outer() -> (StackEvent, Vec<u8>) {
        let captured = damo_unwind_probe_inner();
        std::hint::black_box(captured)
    }

    #[test]
    fn unwinds_a_captured_stack_of_this_process_through_its_callers() {
        use blazesym::symbolize::{source::Elf, source::Source, Input, Symbolizer};
        let (event, stack) = damo_unwind_probe_outer();
        let mut normalizer = AddressNormalizer::new();
        let mut unwinder = StackUnwinder::default();
        let (frames, outcome) = unwinder.unwind(&mut normalizer, &event, &stack).unwrap();
        unwinder.stats.count(outcome);
        let normalized = normalizer.normalize(event.pid, &frames).unwrap();
        let symbolizer = Symbolizer::new();
        let names: Vec<String> = normalized
            .iter()
            .enumerate()
            .map(|(depth, f)| {
                let Some(module) = normalizer.modules().get(f.module as usize) else { return "[unknown]".into() };
                let offset = if depth == 0 { f.offset } else { f.offset - 1 };
                let sym = symbolizer.symbolize_single(&Source::Elf(Elf::new(&module.path)), Input::FileOffset(offset)).ok();
                sym.and_then(|s| s.as_sym().map(|s| s.name.to_string())).unwrap_or_default()
            })
            .collect();
        assert_eq!(names.first().map(String::as_str), Some("damo_unwind_probe_inner"), "{names:?}");
        assert_eq!(names.get(1).map(String::as_str), Some("damo_unwind_probe_outer"), "{names:?}");
        assert!(names.len() >= 4, "the test harness's frames are above the probes: {names:?}");
        assert_eq!(unwinder.stats.samples, 1);
        assert!(unwinder.stats.read_kib_quantile(1.0) >= 1, "unwinding read the stack");
        // The unwinder is cached per process, and unwinding again gives the same frames.
        assert_eq!(unwinder.unwind(&mut normalizer, &event, &stack).unwrap(), (frames, outcome));
        // With no stack bytes, only the ip is left (and the fp fallback cannot read either).
        let (frames, outcome) = unwinder.unwind(&mut normalizer, &event, &[]).unwrap();
        assert_eq!(frames, [event.regs.ip]);
        assert!(outcome.no_stack);
    }

    #[test]
    fn read_quantiles_come_from_the_histogram() {
        let mut stats = UnwindStats::default();
        stats.read_kib[2] = 90;
        stats.read_kib[9] = 9;
        stats.read_kib[40] = 1;
        assert_eq!(stats.read_kib_quantile(0.5), 2);
        assert_eq!(stats.read_kib_quantile(0.99), 9);
        assert_eq!(stats.read_kib_quantile(1.0), 40);
    }

    #[test]
    fn a_stack_ends_at_its_first_unmapped_return_address() {
        let maps = [
            Mapping { start: 0x1000, end: 0x2000, offset: 0, module: 0, since_ns: 0, until_ns: u64::MAX },
            Mapping { start: 0x5000, end: 0x6000, offset: 0, module: UNKNOWN_MODULE, since_ns: 0, until_ns: u64::MAX },
        ];
        let maps = |addr: u64| maps.iter().find(|m| m.start <= addr && addr < m.end).map(|m| m.module);
        let mut frames = vec![0x1010, 0x5010, 0x1020, 0xdead_beef, 0x1030, 0x42, 0x43];
        end_at_unmapped(maps, &mut frames);
        assert_eq!(frames, [0x1010, 0x5010, 0x1020, 0xdead_beef], "anonymous executable code (JIT) is mapped; garbage is one frame");
        let mut out_of_vdso = vec![0x5010, 0xdead_beef, 0x1030];
        end_at_unmapped(maps, &mut out_of_vdso);
        assert_eq!(out_of_vdso, [0x5010], "after code outside any file, garbage adds no second [unknown]");
        let mut leaf_only = vec![0x9999];
        end_at_unmapped(maps, &mut leaf_only);
        assert_eq!(leaf_only, [0x9999], "the ip itself is kept even when unmapped");
        let mut from_nowhere = vec![0x9999, 0x8888, 0x1010];
        end_at_unmapped(maps, &mut from_nowhere);
        assert_eq!(from_nowhere, [0x9999], "nothing walked from an unmapped ip is kept: one [unknown]");
    }
}
