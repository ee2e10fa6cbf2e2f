//! `damo-trace record`: DAMON snapshots and CPU stacks of a target, streamed by eBPF into one
//! record.

pub mod args;
pub mod file;
mod kernel_symbols;
pub mod metadata;
pub mod output;
pub mod perf_map;
pub mod portable;
pub mod procs;
pub mod sink;
pub mod target;

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tokio::signal::unix::{signal, SignalKind};

pub use self::{
    output::{Losses, RecordOutput, StackSample},
    procs::ProcSampling,
    sink::Progress,
};
use self::{sink::RecordingSink, target::TargetSpec};
use damo_sysfs::{ownership::Ownership, params::Document, tree::SysfsTree};

use crate::{
    bpf::Tracer,
    collector,
    launch::{GatedChild, LaunchOptions, StartedCommand},
    pidfd::PidFd,
    privilege::Privileges,
    sideband::Sideband,
    tracefs,
    unwind::{CallGraph, StackUnwinder, UnwindStats},
};

/// How a recording is set up, independent of the CLI and of the output file.
#[derive(Debug, Clone)]
pub struct Plan {
    /// A process or command to sample; `None` records only kdamonds.
    pub target: Option<TargetSpec>,
    /// Run a command target as this user.
    pub user: Option<String>,
    /// Pids of kdamonds whose region events to record.
    pub kdamond_pids: Vec<u32>,
    /// Processes the observed kdamonds monitor: their /proc samples are recorded too.
    pub monitored_pids: Vec<u32>,
    /// cpu-clock sampling frequency; 0 disables stack sampling.
    pub sample_hz: u64,
    /// How user stacks are taken: frame pointers, or DWARF unwinding of a stack copy.
    pub call_graph: CallGraph,
    /// Also sample the target's descendants.
    pub follow_children: bool,
    pub timeout: Option<Duration>,
    /// Kdamonds to start for the recording (and stop at its end); a target without a pid
    /// gets the recorded process's.
    pub start_damon: Option<Document>,
    /// Record the regions DAMOS schemes tried (`damos_before_apply`) instead of the
    /// aggregated snapshots, like damo's `--schemes_target_regions`.
    pub schemes_target_regions: bool,
    /// What to read from /proc about once a second: footprints, mappings, CPU times.
    pub proc_samples: ProcSampling,
    /// Leave a started command running when the recording ends (by default it is ended:
    /// SIGTERM to its process group, SIGKILL after [`crate::launch::END_GRACE`]).
    pub keep_running: bool,
}

/// What the recording saw, for the summary line.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub duration: Duration,
    pub progress: Progress,
    pub losses: Losses,
    /// CPU time damo-trace used while collecting, from the first event to the last
    /// (user + system, all threads: getrusage(RUSAGE_SELF)).
    pub cpu: Duration,
    /// CPU time of the whole damo-trace process until the record was finished: the above
    /// plus loading and attaching the eBPF programs, starting the target, symbolizing kernel
    /// addresses and finishing the file. What /proc/<pid>/stat shows for it.
    pub process_cpu: Duration,
    /// How dwarf-mode stacks unwound (`None` in fp mode).
    pub stacks: Option<StackSummary>,
}

/// How the user stacks of a dwarf-mode recording unwound.
#[derive(Debug, Clone, Copy)]
pub struct StackSummary {
    pub unwind: UnwindStats,
    /// Stack copies that ended at an unreadable page before the copy size (usually the top of
    /// the stack: harmless unless `unwind.beyond_copy` counts them too).
    pub copies_short: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.progress;
        write!(f, "recorded {:.1}s: {} snapshots, {} regions, {} stack samples, {} lost", self.duration.as_secs_f64(), p.snapshots, p.regions, p.samples, self.losses.total(),)?;
        let causes: Vec<String> = self.losses.breakdown().iter().map(|(cause, n)| format!("{cause} {n}")).collect();
        if !causes.is_empty() {
            write!(f, " ({})", causes.join(", "))?;
        }
        write!(
            f,
            "; collector CPU {:.3}s ({:.2}% of a core) while recording, damo-trace CPU {:.3}s in all (setup and finishing included)",
            self.cpu.as_secs_f64(),
            self.cpu.as_secs_f64() * 100.0 / self.duration.as_secs_f64().max(1e-9),
            self.process_cpu.as_secs_f64()
        )?;
        if let Some(s) = &self.stacks {
            let u = &s.unwind;
            let pct = |n: u64| n as f64 * 100.0 / u.samples.max(1) as f64;
            write!(
                f,
                "; dwarf unwinding: {:.1}% of stacks complete, {:.1}% needed more than the stack copy ({} copies ended early, most at the top of a stack), 99% read at most {} KiB of it",
                pct(u.complete),
                pct(u.beyond_copy),
                s.copies_short,
                u.read_kib_quantile(0.99)
            )?;
        }
        Ok(())
    }
}

/// Runs a recording into `output` until the target exits, the timeout passes, or SIGINT or
/// SIGTERM arrives. Kdamonds are started and stopped by the caller; this only observes.
pub fn run(plan: &Plan, output: &mut dyn RecordOutput) -> Result<Summary> {
    run_until(plan, output, std::future::pending())
}

/// [`run`], which also ends when `stop` completes (a live view's `q`).
pub fn run_until(plan: &Plan, output: &mut dyn RecordOutput, stop: impl std::future::Future<Output = ()>) -> Result<Summary> {
    if !Privileges::current().can_trace() {
        bail!("recording loads eBPF programs and needs root (or CAP_BPF and CAP_PERFMON): sudo damo-trace record …");
    }
    let tracefs = tracefs::find_or_mount()?;
    let stack_copy = if plan.sample_hz > 0 { plan.call_graph.stack_copy() } else { 0 };
    let mut tracer = Tracer::load_with_stack_copy(&tracefs, stack_copy)?;
    for &pid in &plan.kdamond_pids {
        tracer.add_kdamond(pid)?;
    }
    if !plan.kdamond_pids.is_empty() || plan.start_damon.is_some() {
        tracer.attach_damon()?;
        if plan.schemes_target_regions {
            tracer.attach_schemes()?;
        }
    }
    // A command is held before exec until its pid is in the filter map.
    let (gated, target_pid) = match &plan.target {
        Some(TargetSpec::Command(line)) => {
            let gated = GatedChild::spawn(line, &LaunchOptions { user: plan.user.as_deref(), own_group: true })?;
            let pid = gated.pid();
            (Some(gated), Some(pid))
        }
        Some(TargetSpec::Pid(pid)) => (None, Some(*pid)),
        Some(TargetSpec::Paddr | TargetSpec::KdamondsJson(_)) | None => (None, None),
    };
    // Kdamonds start once the target's pid is known and before a command runs, so DAMON
    // watches it from its first instruction too.
    let ours = match &plan.start_damon {
        Some(doc) => match start_kdamonds(doc, target_pid, &mut tracer, output) {
            Ok(started) => Some(started),
            Err(e) => {
                if let Some(g) = gated {
                    let _ = g.abandon();
                }
                return Err(e);
            }
        },
        None => None,
    };
    if let (Some(pid), true) = (target_pid, plan.sample_hz > 0) {
        tracer.add_target(pid)?;
        if plan.follow_children {
            tracer.attach_fork_follow()?;
        }
        tracer.attach_exit_cleanup()?;
        tracer.attach_cpu_sampling(plan.sample_hz)?;
    }
    let events = tracer.take_events()?;
    let exit_watch = target_pid.map(PidFd::open).transpose()?;
    let started = Instant::now();
    let cpu_before = cpu_time();
    let mut sink = RecordingSink::new(output, started, plan.schemes_target_regions);
    if plan.start_damon.is_none() {
        // Kdamonds started before the tracepoint was attached: observed mid-report.
        sink.joins_running_kdamonds();
    }
    // Mappings are recorded as they happen from before the command runs, so processes that
    // exit before the collector reads their samples are still normalized.
    // DAMO_TRACE_MAPPINGS=proc reads /proc instead, to compare the two (docs/mappings.md).
    let from_proc = std::env::var_os("DAMO_TRACE_MAPPINGS").is_some_and(|v| v == "proc");
    if let (Some(pid), true, false) = (target_pid, plan.sample_hz > 0, from_proc) {
        match Sideband::open() {
            Ok(sideband) => sink.track(sideband, pid, plan.follow_children)?,
            Err(e) => eprintln!("damo-trace: {e:#}; short-lived processes may lose samples (mappings read from /proc instead)"),
        }
    }
    if stack_copy > 0 {
        sink.unwinder = Some(StackUnwinder::default());
    }
    sink.kernel_lost = Some(Box::new(|| tracer.lost()));
    // From here on, an early return or a panic ends the command too (unless kept running).
    let mut command = gated.map(GatedChild::release).transpose()?.map(|c| StartedCommand::new(c, plan.keep_running));
    if plan.proc_samples.any() {
        // The target, and the processes DAMON targets by pid (a kdamonds.json may name them).
        let damon_pids = plan.start_damon.iter().flat_map(|d| &d.kdamonds).flat_map(|k| &k.contexts).flat_map(|c| &c.targets).filter_map(|t| t.pid);
        let roots = target_pid.into_iter().chain(damon_pids).chain(plan.monitored_pids.iter().copied()).collect();
        let kdamonds = plan.kdamond_pids.iter().chain(ours.iter().flat_map(|o| &o.pids)).copied().collect();
        sink.procs = Some(procs::ProcSampler::new(std::path::Path::new("/proc"), plan.proc_samples, roots, plan.follow_children, kdamonds));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let collected = runtime.block_on(async {
        let shutdown = async {
            tokio::select! {
                () = shutdown_signal(exit_watch, plan.timeout) => {}
                () = stop => {}
            }
        };
        collector::collect(events, &mut sink, shutdown).await
    });
    let cpu = cpu_time().saturating_sub(cpu_before);
    // Stop what we started before anything else can fail; the ring buffer keeps what they
    // produced until then.
    let stopped = ours.map(|o| o.stop()).transpose();
    collected?;
    stopped?;
    if let Some(command) = command.as_mut() {
        // The command ends with its recording, as perf's does, unless --keep_running.
        command.end();
    }
    sink.finish_passes()?;
    let lost = tracer.lost()?;
    sink.losses.kernel.copy_from_slice(&lost[..damo_common::lost::RECORDED]);
    let stacks = sink.unwinder.as_ref().map(|u| StackSummary { unwind: u.stats, copies_short: lost[damo_common::lost::STACK_COPY_SHORT as usize] });
    let kernel_addrs: Vec<u64> = sink.kernel_addresses().collect();
    let symbols = kernel_symbols::resolve(&kernel_addrs);
    sink.output().kernel_symbols(&symbols)?;
    let files: Vec<_> = (0..sink.normalizer().modules().len() as u32).map(|m| sink.normalizer().module_file(m)).collect();
    sink.output().module_files(&files);
    let losses = sink.losses;
    sink.output().finish(&losses)?;
    Ok(Summary { duration: started.elapsed(), progress: sink.progress, losses, cpu, process_cpu: cpu_time(), stacks })
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Kdamonds this recording started, stopped when it ends.
struct StartedKdamonds {
    indices: Vec<usize>,
    pids: Vec<u32>,
    stopped: bool,
}

impl StartedKdamonds {
    fn stop(mut self) -> Result<()> {
        self.stopped = true;
        damo_sysfs::stop(&SysfsTree::new(damo_sysfs::ADMIN), &Ownership::system(), Some(&self.indices))?;
        Ok(())
    }
}

impl Drop for StartedKdamonds {
    /// On an early return or a panic, the kdamonds still stop.
    fn drop(&mut self) {
        if !self.stopped {
            let _ = damo_sysfs::stop(&SysfsTree::new(damo_sysfs::ADMIN), &Ownership::system(), Some(&self.indices));
        }
    }
}

fn start_kdamonds(doc: &Document, target_pid: Option<u32>, tracer: &mut Tracer, output: &mut dyn RecordOutput) -> Result<StartedKdamonds> {
    let mut doc = doc.clone();
    for ctx in doc.kdamonds.iter_mut().flat_map(|k| &mut k.contexts) {
        for t in &mut ctx.targets {
            if ctx.ops != "paddr" && t.pid.is_none() {
                t.pid = target_pid;
            }
        }
    }
    let tree = SysfsTree::new(damo_sysfs::ADMIN);
    let started = damo_sysfs::start(&tree, &Ownership::system(), &doc)?;
    let guard = StartedKdamonds { indices: started.iter().map(|&(i, _)| i).collect(), pids: started.iter().map(|&(_, pid)| pid).collect(), stopped: false };
    for (&(index, pid), k) in started.iter().zip(&doc.kdamonds) {
        tracer.add_kdamond(pid)?;
        let intervals = k.contexts.first().map(|c| c.intervals.into());
        output.kdamond(pid, index as u32, intervals);
    }
    Ok(guard)
}

/// Completes on whichever comes first: the target's exit, the timeout, SIGINT, SIGTERM.
async fn shutdown_signal(exit_watch: Option<PidFd>, timeout: Option<Duration>) {
    let exited = async {
        match exit_watch {
            Some(pidfd) => {
                let _ = pidfd.exited().await;
            }
            None => std::future::pending().await,
        }
    };
    let timed_out = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let (Ok(mut sigint), Ok(mut sigterm)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        // Without signal handlers, Ctrl-C would kill us mid-write; end at once instead.
        return;
    };
    tokio::select! {
        () = exited => {}
        () = timed_out => {}
        _ = sigint.recv() => {}
        _ = sigterm.recv() => {}
    }
}
