//! Turns ring buffer events into record content: whole snapshots and normalized stacks.

use std::{collections::BTreeSet, io::IsTerminal, time::Instant};

use anyhow::Result;
use damo_common::{RegionEvent, SchemeRegionEvent, StackEvent};

use super::output::{Losses, RecordOutput, StackSample};
use crate::{
    bpf,
    collector::EventSink,
    normalize::{AddressNormalizer, FileAddr, UNKNOWN_MODULE},
    sideband::{Sideband, TaskEvent},
    snapshots::{SchemePasses, SnapshotAssembler, TargetKey},
    unwind::{self, StackUnwinder, UnwindOutcome},
};

/// Running totals for the status line and the summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub snapshots: u64,
    pub regions: u64,
    pub samples: u64,
}

/// How long before "now" side-band records are taken as complete on every CPU.
const SIDEBAND_MARGIN_NS: u64 = 1_000_000;

pub struct RecordingSink<'a> {
    output: &'a mut dyn RecordOutput,
    assembler: SnapshotAssembler,
    /// Set for `--schemes_target_regions`: the record holds what DAMOS schemes tried, and
    /// aggregations only mark where their passes end.
    scheme_passes: Option<SchemePasses>,
    normalizer: AddressNormalizer,
    /// mmap/exec/fork/exit records, read before each batch of samples; `None` falls back to
    /// reading /proc when a process's first sample arrives.
    sideband: Option<Sideband>,
    modules_written: usize,
    kernel_addrs: BTreeSet<u64>,
    started: Instant,
    pub progress: Progress,
    pub losses: Losses,
    /// Reads footprints, mappings and CPU times from /proc at each tick, when set.
    pub procs: Option<super::procs::ProcSampler>,
    /// Unwinds the user stack copies of dwarf mode; `None` in fp mode.
    pub unwinder: Option<StackUnwinder>,
    /// Reads the eBPF side's loss counters, so each tick reports them as they stand.
    pub kernel_lost: Option<Box<dyn Fn() -> Result<[u64; damo_common::lost::COUNT as usize]> + 'a>>,
}

impl<'a> RecordingSink<'a> {
    pub fn new(output: &'a mut dyn RecordOutput, started: Instant, schemes_target_regions: bool) -> Self {
        Self {
            output,
            assembler: SnapshotAssembler::default(),
            scheme_passes: schemes_target_regions.then(SchemePasses::default),
            normalizer: AddressNormalizer::new(),
            sideband: None,
            modules_written: 0,
            kernel_addrs: BTreeSet::new(),
            started,
            progress: Progress::default(),
            losses: Losses::default(),
            procs: None,
            unwinder: None,
            kernel_lost: None,
        }
    }

    /// The kdamonds were running before the recorder attached (`--observe`): a target's first
    /// events may be the tail of a snapshot, not a loss.
    pub fn joins_running_kdamonds(&mut self) {
        self.assembler = SnapshotAssembler::joining_running();
    }

    /// Normalizes stacks from side-band records: `pid` (a target not yet running anything
    /// of its own, or a running one) and, with `follow_children`, the children it forks.
    pub fn track(&mut self, sideband: Sideband, pid: u32, follow_children: bool) -> Result<()> {
        self.normalizer.follow_children(follow_children);
        self.sideband = Some(sideband);
        self.normalizer.track(pid)
    }

    /// The normalizer, for tests and tools that look at its state.
    pub fn normalizer(&self) -> &AddressNormalizer {
        &self.normalizer
    }

    /// Applies the side-band records written so far.
    fn read_sideband(&mut self) {
        let Some(sideband) = &mut self.sideband else { return };
        let lost = sideband.lost;
        let normalizer = &mut self.normalizer;
        // A record is stamped before it is written: those of the last moments may still be
        // on their way, and wait for the next read.
        let horizon = damo_record::clock::monotonic_ns().saturating_sub(SIDEBAND_MARGIN_NS);
        let output = &mut *self.output;
        sideband.drain(horizon, |event| {
            normalizer.apply(&event);
            if let TaskEvent::Exit { pid, tid, .. } = event {
                if pid == tid {
                    output.process_exited(pid);
                }
            }
        });
        if sideband.lost > lost {
            self.losses.mapping_records = sideband.lost;
            self.normalizer.sideband_lost();
        }
    }

    /// Distinct kernel addresses seen so far, to symbolize once at the end.
    pub fn kernel_addresses(&self) -> impl Iterator<Item = u64> + '_ {
        self.kernel_addrs.iter().copied()
    }

    pub fn output(&mut self) -> &mut dyn RecordOutput {
        self.output
    }

    /// Writes the scheme passes still open (the recording ended).
    pub fn finish_passes(&mut self) -> Result<()> {
        let closed = self.scheme_passes.as_mut().map(SchemePasses::finish).unwrap_or_default();
        self.write_snapshots(closed)
    }

    fn write_snapshots(&mut self, snapshots: Vec<(TargetKey, damo_record::model::Snapshot)>) -> Result<()> {
        for (key, snapshot) in snapshots {
            self.progress.snapshots += 1;
            self.output.snapshot(key, &snapshot)?;
        }
        Ok(())
    }

    /// The user frames of a sample, unwound (dwarf mode, with how that went) or as the kernel
    /// walked them (fp), normalized against the process's mappings at the sample's time and
    /// cut at the first return address outside them. `Err` when nothing is known about the
    /// process.
    fn user_frames(&mut self, event: &StackEvent, stack: &[u8]) -> Result<(Vec<FileAddr>, Option<UnwindOutcome>)> {
        let (mut raw, outcome) = match &mut self.unwinder {
            Some(unwinder) => {
                let (frames, outcome) = unwinder.unwind(&mut self.normalizer, event, stack)?;
                (frames, Some(outcome))
            }
            None => (bpf::user_frames(event).to_vec(), None),
        };
        if raw.is_empty() {
            return Ok((Vec::new(), outcome));
        }
        let mut user = self.normalizer.normalize_at(event.pid, event.ts_ns, &raw)?;
        let normalizer = &self.normalizer;
        unwind::end_at_unmapped(|addr| normalizer.mapping_at(event.pid, event.ts_ns, addr).map(|m| m.module), &mut raw);
        user.truncate(raw.len());
        Ok((user, outcome))
    }
}

impl EventSink for RecordingSink<'_> {
    fn region(&mut self, event: &RegionEvent) -> Result<()> {
        if let Some(passes) = &mut self.scheme_passes {
            let closed = passes.end_of_iteration(event.kdamond_pid);
            return self.write_snapshots(closed);
        }
        self.progress.regions += 1;
        let before = self.assembler.incomplete;
        if let Some((key, snapshot)) = self.assembler.push(event) {
            self.progress.snapshots += 1;
            self.output.snapshot(key, &snapshot)?;
        }
        self.losses.incomplete_snapshots += self.assembler.incomplete - before;
        Ok(())
    }

    fn scheme_region(&mut self, event: &SchemeRegionEvent) -> Result<()> {
        let Some(passes) = &mut self.scheme_passes else {
            return self.undecodable(size_of::<SchemeRegionEvent>());
        };
        self.progress.regions += 1;
        let closed = passes.push(event);
        self.write_snapshots(closed.into_iter().collect())
    }

    fn stack(&mut self, event: &StackEvent, stack: &[u8]) -> Result<()> {
        self.progress.samples += 1;
        // A sample without a user stack (a task in the kernel) has nothing to normalize.
        let has_user = self.unwinder.is_some() || !bpf::user_frames(event).is_empty();
        let mut normalized = self.user_frames(event, stack);
        // A mapping made after the batch began (its record came after the side-band was
        // read): read it again. JIT and [vdso] frames get here too; it is one load per CPU
        // when nothing new was written. (In dwarf mode the sample is unwound again; only the
        // final attempt is counted.)
        let missed = normalized.as_ref().map_or(true, |(u, _)| u.iter().any(|f| f.module == UNKNOWN_MODULE));
        if missed && has_user && self.sideband.as_ref().is_some_and(Sideband::pending) {
            self.read_sideband();
            normalized = self.user_frames(event, stack);
        }
        if let Some(unwinder) = &mut self.unwinder {
            // A process nothing is known about counts as a sample that unwound nothing.
            let outcome = normalized.as_ref().ok().and_then(|(_, o)| *o).unwrap_or_default();
            unwinder.stats.count(outcome);
        }
        let user = match normalized {
            Ok((user, _)) => user,
            Err(_) => {
                // The process is gone: keep raw addresses, marked unknown, and count it.
                self.losses.unnormalized_samples += 1;
                let raw = if self.unwinder.is_some() { &[event.regs.ip][..] } else { bpf::user_frames(event) };
                raw.iter().map(|&a| FileAddr { module: UNKNOWN_MODULE, offset: a }).collect()
            }
        };
        if self.normalizer.modules().len() > self.modules_written {
            self.output.modules(self.normalizer.modules())?;
            self.modules_written = self.normalizer.modules().len();
        }
        let kernel = bpf::kernel_frames(event).to_vec();
        self.kernel_addrs.extend(&kernel);
        let comm_len = event.comm.iter().position(|&b| b == 0).unwrap_or(event.comm.len());
        self.output.stack(&StackSample { ts_ns: event.ts_ns, pid: event.pid, tid: event.tid, cpu: event.cpu, comm: String::from_utf8_lossy(&event.comm[..comm_len]).into_owned(), user, kernel })
    }

    fn before_batch(&mut self) -> Result<()> {
        self.read_sideband();
        Ok(())
    }

    fn undecodable(&mut self, _len: usize) -> Result<()> {
        self.losses.undecodable_events += 1;
        Ok(())
    }

    /// The status line, redrawn in place on a terminal.
    fn tick(&mut self) -> Result<()> {
        if let Some(Ok(lost)) = self.kernel_lost.as_ref().map(|read| read()) {
            self.losses.kernel.copy_from_slice(&lost[..damo_common::lost::RECORDED]);
        }
        self.output.losses(&self.losses);
        self.output.flush()?;
        if let Some(procs) = &mut self.procs {
            procs.sample(damo_record::clock::monotonic_ns(), self.output)?;
        }
        self.normalizer.expire();
        if let Some(unwinder) = &mut self.unwinder {
            unwinder.tick();
        }
        // The live heap stays under 0.5 MB while recording (heaptrack, 999 Hz, 50 processes a
        // second), yet glibc kept the freed pages: loading the eBPF object frees ~19 MB of
        // BTF, which raises malloc's trim threshold so far that the heap top was never
        // returned, and RSS grew 0.3 MB/s under fork churn (36 -> 58 MB in a minute). Giving
        // free pages back once a tick costs a walk of a heap that small. (musl, the VM's
        // static build, has no malloc_trim: its allocator unmaps freed memory itself.)
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim only releases memory malloc holds free.
        unsafe {
            libc::malloc_trim(0)
        };
        if std::io::stderr().is_terminal() {
            let p = &self.progress;
            eprint!("\r{:>6.1}s  {} snapshots  {} regions  {} samples  {} lost ", self.started.elapsed().as_secs_f64(), p.snapshots, p.regions, p.samples, self.losses.total());
        }
        Ok(())
    }
}
