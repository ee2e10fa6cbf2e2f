//! Loading and attaching damo-trace's eBPF programs (built from `damo-ebpf` by build.rs).

use std::path::Path;

use anyhow::{bail, Context, Result};
use aya::{
    maps::{HashMap, MapData, PerCpuArray, RingBuf},
    programs::{
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
        PerfEvent, TracePoint,
    },
    util::{nr_cpus, online_cpus},
    Ebpf, EbpfLoader,
};
use damo_common::{lost, ForkLayout, RegionEvent, RegionLayout, SampleConfig, SchemeRegionEvent, SchemeRegionLayout, StackEvent, MAX_STACK_COPY};

use crate::tracefs;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/damo-ebpf.o"));

/// The loaded programs and their maps. Dropping it detaches everything.
pub struct Tracer {
    ebpf: Ebpf,
}

impl Tracer {
    /// Loads the programs with tracepoint layouts read from `tracefs`, for frame-pointer user
    /// stacks. The DAMON tracepoint is optional here (perf-only recording works without
    /// DAMON); `attach_damon` needs it.
    pub fn load(tracefs: &Path) -> Result<Self> {
        Self::load_with_stack_copy(tracefs, 0)
    }

    /// Like [`load`](Self::load), with samples that carry the user registers and `stack_copy`
    /// bytes of user stack for DWARF unwinding (0: frame-pointer stacks). The ring buffer
    /// grows with the copy, so batched wake-ups stay batched.
    pub fn load_with_stack_copy(tracefs: &Path, stack_copy: u32) -> Result<Self> {
        if stack_copy as usize > MAX_STACK_COPY || !stack_copy.is_multiple_of(8) {
            bail!("a stack copy of {stack_copy} bytes: it must be a multiple of 8 up to {MAX_STACK_COPY}");
        }
        if OBJECT.is_empty() {
            bail!("this damo-trace was built without eBPF (DAMO_TRACE_NO_EBPF); rebuild it after scripts/setup.sh");
        }
        let region_layout = match tracefs::read_format(tracefs, "damon", "damon_aggregated") {
            Ok(format) => region_layout(&format)?,
            Err(_) => RegionLayout::default(),
        };
        // Kernels before 6.9 have no damos_before_apply; attach_schemes says so when asked.
        let scheme_layout = match tracefs::read_format(tracefs, "damon", "damos_before_apply") {
            Ok(format) => scheme_region_layout(&format)?,
            Err(_) => SchemeRegionLayout::default(),
        };
        let fork = tracefs::read_format(tracefs, "sched", "sched_process_fork")?;
        let fork_layout = ForkLayout { child_pid: fork.offset_of("child_pid", 4)? };
        let nr_cpus = nr_cpus().map_err(|(path, e)| anyhow::anyhow!("failed to read {path}: {e}"))? as u32;
        let ring = ring_bytes(stack_copy, nr_cpus);
        let ebpf = EbpfLoader::new()
            .override_global("REGION_LAYOUT", &region_layout, true)
            .override_global("SCHEME_REGION_LAYOUT", &scheme_layout, true)
            .override_global("FORK_LAYOUT", &fork_layout, true)
            .override_global("SAMPLE_CONFIG", &SampleConfig { stack_copy, _pad: 0 }, true)
            .override_global("WAKEUP_BYTES", &(u64::from(ring) / WAKEUP_FRACTION), true)
            .map_max_entries("EVENTS", ring)
            .map_max_entries("SAMPLE_SCRATCH", nr_cpus)
            .load(OBJECT)
            .context("failed to load the eBPF object (are you root, with BPF enabled?)")?;
        Ok(Self { ebpf })
    }

    /// Attaches to `damon:damon_aggregated`; only kdamonds added with `add_kdamond` pass.
    pub fn attach_damon(&mut self) -> Result<()> {
        self.attach_tracepoint("damon_aggregated", "damon", "damon_aggregated")
    }

    /// Attaches to `damon:damos_before_apply` (the regions DAMOS schemes act on), for
    /// `--schemes_target_regions`; only kdamonds added with `add_kdamond` pass.
    pub fn attach_schemes(&mut self) -> Result<()> {
        self.attach_tracepoint("damos_before_apply", "damon", "damos_before_apply").context("recording scheme target regions needs the damon:damos_before_apply tracepoint (Linux 6.9 or later)")
    }

    /// Makes children of target processes targets too.
    pub fn attach_fork_follow(&mut self) -> Result<()> {
        self.attach_tracepoint("sched_process_fork", "sched", "sched_process_fork")
    }

    /// Takes exiting tasks out of the target map, so it holds live targets only however many
    /// processes come and go.
    pub fn attach_exit_cleanup(&mut self) -> Result<()> {
        self.attach_tracepoint("sched_process_exit", "sched", "sched_process_exit")
    }

    fn attach_tracepoint(&mut self, program: &str, category: &str, name: &str) -> Result<()> {
        let tp: &mut TracePoint = self.program(program)?;
        tp.load().with_context(|| format!("failed to load program {program}"))?;
        tp.attach(category, name).with_context(|| format!("failed to attach to {category}:{name}"))?;
        Ok(())
    }

    /// Samples every online CPU with cpu-clock at `hz`; the program keeps target tasks only.
    pub fn attach_cpu_sampling(&mut self, hz: u64) -> Result<()> {
        let cpus = online_cpus().map_err(|(path, e)| anyhow::anyhow!("failed to read {path}: {e}"))?;
        let perf: &mut PerfEvent = self.program("perf_sample")?;
        perf.load().context("failed to load program perf_sample")?;
        for cpu in cpus {
            perf.attach(PerfEventConfig::Software(SoftwareEvent::CpuClock), PerfEventScope::AllProcessesOneCpu { cpu }, SamplePolicy::Frequency(hz), true)
                .with_context(|| format!("failed to open a cpu-clock perf event on cpu {cpu}"))?;
        }
        Ok(())
    }

    fn program<'a, T>(&'a mut self, name: &str) -> Result<&'a mut T>
    where
        &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
    {
        let program = self.ebpf.program_mut(name).with_context(|| format!("no program {name} in the eBPF object"))?;
        Ok(program.try_into()?)
    }

    /// Records CPU samples of this process (and, with fork following, its children).
    pub fn add_target(&mut self, tgid: u32) -> Result<()> {
        self.insert_pid("TARGET_TGIDS", tgid)
    }

    /// Lets this kdamond's region events through.
    pub fn add_kdamond(&mut self, pid: u32) -> Result<()> {
        self.insert_pid("KDAMOND_PIDS", pid)
    }

    fn insert_pid(&mut self, map: &str, pid: u32) -> Result<()> {
        let mut pids: HashMap<_, u32, u8> = HashMap::try_from(self.ebpf.map_mut(map).with_context(|| format!("no map {map}"))?)?;
        pids.insert(pid, 1, 0).with_context(|| format!("failed to add pid {pid} to {map}"))?;
        Ok(())
    }

    /// The event ring buffer, to be read by one consumer.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>> {
        let map = self.ebpf.take_map("EVENTS").context("ring buffer EVENTS already taken")?;
        Ok(RingBuf::try_from(map)?)
    }

    /// The loss counters summed over CPUs, indexed by `damo_common::lost`.
    pub fn lost(&self) -> Result<[u64; lost::COUNT as usize]> {
        let counters: PerCpuArray<_, u64> = PerCpuArray::try_from(self.ebpf.map("LOST").context("no map LOST")?)?;
        let mut sums = [0u64; lost::COUNT as usize];
        for (i, sum) in sums.iter_mut().enumerate() {
            *sum = counters.get(&(i as u32), 0)?.iter().sum();
        }
        Ok(sums)
    }
}

/// The collector is woken when this fraction of the ring waits (or every 100 ms).
const WAKEUP_FRACTION: u64 = 16;

/// The ring buffer's size: 8 MiB holds seconds of region events and frame-pointer samples;
/// with stack copies it holds 1024 samples per CPU (a second of 999 Hz on every CPU), so a
/// wake-up comes every 64 samples per CPU at most and the collector has the rest of the ring
/// to catch up. A power of two, as the kernel requires.
fn ring_bytes(stack_copy: u32, nr_cpus: u32) -> u32 {
    let sample = (size_of::<StackEvent>() as u64 + u64::from(stack_copy)).next_multiple_of(8) + 8;
    let wanted = sample * 1024 * u64::from(nr_cpus);
    wanted.max(8 << 20).next_power_of_two().min(1 << 30) as u32
}

/// Where `damon_aggregated`'s fields are; kernels before 5.16 have no `age`.
fn region_layout(format: &tracefs::Format) -> Result<RegionLayout> {
    Ok(RegionLayout {
        target_id: format.offset_of("target_id", 8)?,
        nr_regions: format.offset_of("nr_regions", 4)?,
        start: format.offset_of("start", 8)?,
        end: format.offset_of("end", 8)?,
        nr_accesses: format.offset_of("nr_accesses", 4)?,
        age: format.offset_of("age", 4).unwrap_or(u32::MAX),
    })
}

/// Where `damos_before_apply`'s fields are.
fn scheme_region_layout(format: &tracefs::Format) -> Result<SchemeRegionLayout> {
    Ok(SchemeRegionLayout {
        context_idx: format.offset_of("context_idx", 4)?,
        scheme_idx: format.offset_of("scheme_idx", 4)?,
        target_idx: format.offset_of("target_idx", 8)?,
        start: format.offset_of("start", 8)?,
        end: format.offset_of("end", 8)?,
        nr_accesses: format.offset_of("nr_accesses", 4)?,
        age: format.offset_of("age", 4)?,
        nr_regions: format.offset_of("nr_regions", 4)?,
    })
}

/// One event from the ring buffer.
#[derive(Debug)]
pub enum Event<'a> {
    Region(RegionEvent),
    SchemeRegion(SchemeRegionEvent),
    /// A stack sample and the user stack bytes copied with it (empty in fp mode).
    Stack(Box<StackEvent>, &'a [u8]),
}

impl<'a> Event<'a> {
    /// Decodes a ring buffer item; `None` for an unknown kind, a short item, or a stack
    /// sample whose stack tail is not as long as its header says.
    pub fn decode(bytes: &'a [u8]) -> Option<Self> {
        let kind = u32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?);
        if kind == damo_common::EventKind::Region as u32 && bytes.len() >= size_of::<RegionEvent>() {
            // SAFETY: length checked; RegionEvent is plain old data.
            Some(Self::Region(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) }))
        } else if kind == damo_common::EventKind::SchemeRegion as u32 && bytes.len() >= size_of::<SchemeRegionEvent>() {
            // SAFETY: length checked; SchemeRegionEvent is plain old data.
            Some(Self::SchemeRegion(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) }))
        } else if kind == damo_common::EventKind::StackSample as u32 && bytes.len() >= size_of::<StackEvent>() {
            // SAFETY: length checked; StackEvent is plain old data.
            let event: StackEvent = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
            let tail = &bytes[size_of::<StackEvent>()..];
            let len = event.stack_len as usize;
            // The kernel pads items to 8 bytes; a tail shorter than stated is a bad item.
            if len > MAX_STACK_COPY || tail.len() < len {
                return None;
            }
            Some(Self::Stack(Box::new(event), &tail[..len]))
        } else {
            None
        }
    }
}

/// The valid user frames of a sample, innermost first.
pub fn user_frames(event: &StackEvent) -> &[u64] {
    frames(&event.user, event.user_bytes)
}

/// The valid kernel frames of a sample, innermost first.
pub fn kernel_frames(event: &StackEvent) -> &[u64] {
    frames(&event.kernel, event.kernel_bytes)
}

fn frames(stack: &[u64], bytes: i32) -> &[u64] {
    let n = usize::try_from(bytes).unwrap_or(0) / 8;
    &stack[..n.min(stack.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T>(value: &T) -> &[u8] {
        // SAFETY: reading the bytes of a plain-old-data value.
        unsafe { std::slice::from_raw_parts((value as *const T).cast(), size_of::<T>()) }
    }

    #[test]
    fn decodes_region_events() {
        let event = RegionEvent { kind: damo_common::EventKind::Region as u32, kdamond_pid: 7, ts_ns: 1, target_id: 2, start: 4096, end: 8192, nr_regions: 3, nr_accesses: 20, age: 5, _pad: 0 };
        match Event::decode(bytes_of(&event)) {
            Some(Event::Region(decoded)) => assert_eq!(decoded, event),
            other => panic!("expected a region event, got {other:?}"),
        }
        assert!(Event::decode(&bytes_of(&event)[..20]).is_none(), "short item must be refused");
        assert!(Event::decode(&[9, 0, 0, 0]).is_none(), "unknown kind must be refused");
    }

    #[test]
    fn decodes_scheme_region_events() {
        let event = SchemeRegionEvent {
            kind: damo_common::EventKind::SchemeRegion as u32,
            kdamond_pid: 7,
            ts_ns: 1,
            target_idx: 0,
            start: 4096,
            end: 8192,
            context_idx: 0,
            scheme_idx: 1,
            nr_regions: 3,
            nr_accesses: 20,
            age: 5,
            _pad: 0,
        };
        match Event::decode(bytes_of(&event)) {
            Some(Event::SchemeRegion(decoded)) => assert_eq!(decoded, event),
            other => panic!("expected a scheme region event, got {other:?}"),
        }
        assert!(Event::decode(&bytes_of(&event)[..60]).is_none(), "short item must be refused");
    }

    #[test]
    fn reads_the_scheme_layout_of_this_kernel_format() {
        let format = tracefs::parse_format(
            "name: damos_before_apply\nID: 769\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n\
             \tfield:unsigned int context_idx;\toffset:8;\tsize:4;\tsigned:0;\n\tfield:unsigned int scheme_idx;\toffset:12;\tsize:4;\tsigned:0;\n\
             \tfield:unsigned long target_idx;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:unsigned long start;\toffset:24;\tsize:8;\tsigned:0;\n\
             \tfield:unsigned long end;\toffset:32;\tsize:8;\tsigned:0;\n\tfield:unsigned int nr_accesses;\toffset:40;\tsize:4;\tsigned:0;\n\
             \tfield:unsigned int age;\toffset:44;\tsize:4;\tsigned:0;\n\tfield:unsigned int nr_regions;\toffset:48;\tsize:4;\tsigned:0;\n",
        )
        .unwrap();
        let layout = scheme_region_layout(&format).unwrap();
        assert_eq!((layout.context_idx, layout.scheme_idx, layout.target_idx, layout.start, layout.end), (8, 12, 16, 24, 32));
        assert_eq!((layout.nr_accesses, layout.age, layout.nr_regions), (40, 44, 48));
    }

    /// An fp-mode sample: 16 bytes of user frames (left zero), a kernel stack error, no copy.
    fn stack_event() -> StackEvent {
        StackEvent {
            kind: damo_common::EventKind::StackSample as u32,
            pid: 10,
            ts_ns: 5,
            tid: 11,
            cpu: 1,
            user_bytes: 16,
            kernel_bytes: -14,
            comm: *b"worker\0\0\0\0\0\0\0\0\0\0",
            user: [0; damo_common::MAX_STACK_DEPTH],
            kernel: [0; damo_common::MAX_STACK_DEPTH],
            regs: Default::default(),
            stack_len: 0,
            _pad: 0,
        }
    }

    #[test]
    fn decodes_stack_samples_and_bounds_frames() {
        let mut event = stack_event();
        event.user[0] = 0x401000;
        event.user[1] = 0x402000;
        let Some(Event::Stack(decoded, stack)) = Event::decode(bytes_of(&event)) else {
            panic!("expected a stack sample");
        };
        assert!(stack.is_empty(), "fp samples carry no stack bytes");
        assert_eq!(user_frames(&decoded), &[0x401000, 0x402000]);
        assert!(kernel_frames(&decoded).is_empty(), "a negative errno means no frames");
        event.user_bytes = i32::MAX;
        assert_eq!(user_frames(&event).len(), damo_common::MAX_STACK_DEPTH);
    }

    #[test]
    fn decodes_the_stack_tail_of_dwarf_samples_and_checks_its_length() {
        let event = StackEvent { user_bytes: 0, kernel_bytes: 8, regs: damo_common::UserRegs { ip: 0x401234, sp: 0x7ffd_0000_1000, bp: 0x7ffd_0000_1040 }, stack_len: 24, ..stack_event() };
        let mut item = bytes_of(&event).to_vec();
        item.extend((0u8..24).chain([0; 8])); // the tail, then the ring buffer's padding
        let Some(Event::Stack(decoded, stack)) = Event::decode(&item) else { panic!("expected a stack sample") };
        assert_eq!(decoded.regs, event.regs);
        assert_eq!(stack, (0u8..24).collect::<Vec<_>>().as_slice(), "exactly stack_len bytes");
        let cut = &item[..size_of::<StackEvent>() + 16];
        assert!(Event::decode(cut).is_none(), "a tail shorter than stack_len must be refused");
        let mut huge = event;
        huge.stack_len = u32::MAX;
        let mut item = bytes_of(&huge).to_vec();
        item.resize(item.len() + 64, 0);
        assert!(Event::decode(&item).is_none(), "an impossible stack_len must be refused");
    }

    #[test]
    fn the_ring_grows_with_the_stack_copy() {
        assert_eq!(ring_bytes(0, 2), 8 << 20, "fp mode keeps 8 MiB");
        let ring = ring_bytes(16384, 2);
        assert!(ring.is_power_of_two());
        let sample = size_of::<StackEvent>() as u32 + 16384;
        assert!(ring / sample >= 2048, "{ring} B hold too few 16 KiB samples");
        assert!(u64::from(ring) / WAKEUP_FRACTION >= u64::from(sample) * 64, "a wake-up every 64 samples or fewer");
    }
}
