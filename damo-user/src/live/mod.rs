//! `damo-trace top`: what is hot and which code runs, now. The recording is `record`'s (the
//! same plan, collector and sink); the view is one more consumer of its output
//! ([`feed::LiveOutput`]), fed over a channel to a terminal UI or to plain text blocks.

pub mod feed;
pub mod model;
pub mod monitor;
pub mod plain;
mod private_dir;
pub mod replay;
pub mod show;
mod term;
pub mod ui;

use std::{
    cell::RefCell,
    collections::HashMap,
    io::{IsTerminal, Write},
    path::PathBuf,
    sync::{mpsc, Arc},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use damo_record::model::Losses;

use self::{feed::Feed, feed::LiveOutput, model::LiveModel};
use crate::{
    privilege::Privileges,
    record::{
        self,
        file::{KdamondInfo, RecordFile},
        RecordOutput,
    },
    unwind::CallGraph,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to watch: a pid, a "command with args" (started and watched from its first
    /// instruction), or paddr. Optional with --observe.
    pub target: Option<String>,
    /// Watch the kdamonds that already run, without touching them (read-only).
    #[arg(long)]
    pub observe: bool,
    /// CPU stacks only; no DAMON.
    #[arg(long = "no-damon", conflicts_with = "observe")]
    pub no_damon: bool,
    /// Print a text block once a second instead of the UI (also when stdout is not a
    /// terminal).
    #[arg(long)]
    pub plain: bool,
    /// Also record everything into this file (the native record format).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Replace the --record file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Snapshots per target the heatmap and the phase finder keep.
    #[arg(long, default_value_t = 600)]
    pub window: usize,
    /// Stop after this long (30s, 5m; a bare number is seconds).
    #[arg(long, value_parser = record::args::parse_seconds)]
    pub timeout: Option<Duration>,
    /// cpu-clock samples per second per CPU for call stacks; 0 takes none.
    #[arg(long = "sample_hz", default_value_t = 99)]
    pub sample_hz: u64,
    /// How user call stacks are taken: "fp" or "dwarf[,SIZE]" (as `record`).
    #[arg(long = "call-graph", default_value = "dwarf", value_parser = CallGraph::parse)]
    pub call_graph: CallGraph,
    /// Where DAMON's sysfs admin directory is (--observe reads it; for tests).
    #[arg(long = "damon_admin", default_value = damo_sysfs::ADMIN, hide = true)]
    pub damon_admin: PathBuf,
    /// DAMON parameters of the kdamond started for the target (damo's options).
    #[command(flatten)]
    pub damon: crate::control::args::DamonArgs,
}

impl Args {
    /// `record`'s options for the same recording.
    fn record_args(&self) -> record::args::Args {
        let mut args = recording(self.target.clone(), self.observe, self.sample_hz, self.damon.clone());
        args.force = self.force;
        args.timeout = self.timeout;
        args.call_graph = self.call_graph;
        args.no_damon = self.no_damon;
        args
    }
}

/// `record`'s options for a recording of the live commands (which write no file of their
/// own): DAMON snapshots and, at `sample_hz` above 0, the target's call stacks.
pub(crate) fn recording(target: Option<String>, observe: bool, sample_hz: u64, damon: crate::control::args::DamonArgs) -> record::args::Args {
    let mut do_record = vec!["access".to_owned()];
    if sample_hz > 0 {
        do_record.push("cpu_profile".into());
    }
    record::args::Args {
        target,
        out: PathBuf::new(),
        output_permission: 0o600,
        force: false,
        timeout: None,
        sample_hz,
        call_graph: CallGraph::Fp,
        no_follow: false,
        user: None,
        keep_running: false,
        observe,
        no_damon: false,
        schemes_target_regions: false,
        do_record,
        damon,
    }
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let (plan, kdamonds) = record::args::plan(args.record_args(), &args.damon_admin)?;
    if !Privileges::current().can_trace() {
        bail!("top loads eBPF programs and needs root (or CAP_BPF and CAP_PERFMON): sudo damo-trace top …");
    }
    let mut file = match &args.record {
        Some(path) => {
            let mut file = RecordFile::create(path, 0o600, args.force, kdamonds.clone()).context("cannot start the record")?;
            file.metadata(&record::metadata::of(&plan))?;
            Some(file)
        }
        None => None,
    };
    let (tx, rx) = mpsc::channel();
    for (&pid, info) in &kdamonds {
        let _ = tx.send(Feed::Kdamond { pid, index: info.index, intervals: info.intervals });
    }
    let mut model = LiveModel::new(args.window, None);
    let stop = Arc::new(tokio::sync::Notify::new());
    let plain = args.plain || !std::io::stdout().is_terminal();
    let recorded = std::thread::scope(|scope| -> Result<record::Summary> {
        let recorder = scope.spawn(|| {
            let mut output = LiveOutput::new(tx, file.as_mut().map(|f| f as &mut dyn RecordOutput));
            record::run_until(&plan, &mut output, stop.notified())
        });
        let handle = RefCell::new(Some(recorder));
        let finished: RefCell<Option<Result<record::Summary>>> = RefCell::new(None);
        // Waits for the recording to end, once, keeping its result.
        let join = || {
            if let Some(h) = handle.borrow_mut().take() {
                *finished.borrow_mut() = Some(h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the recording thread panicked"))));
            }
        };
        let shown = if plain {
            show_plain(rx, &mut model, out)
        } else {
            let ended = || {
                join();
                match finished.borrow().as_ref() {
                    Some(Ok(summary)) => Ok(format!("recording ended ({:.1}s)", summary.duration.as_secs_f64())),
                    Some(Err(e)) => bail!("{e:#}"),
                    None => bail!("the recording thread was already joined"),
                }
            };
            term::run(rx, &mut model, || stop.notify_one(), ended, |model| write_seen(model, &kdamonds, std::path::Path::new(".")))
        };
        // Whatever ended the view (an error too) ends the recording, and stops its kdamonds.
        stop.notify_one();
        join();
        let recorded = finished.into_inner().unwrap_or_else(|| Err(anyhow::anyhow!("the recording thread was not joined")));
        recorded.and_then(|summary| shown.map(|()| summary))
    });
    if let (Some(path), Ok(_)) = (&args.record, &recorded) {
        eprintln!("recorded into {}", path.display());
    }
    recorded.map(|_| ())
}

/// `--plain`: a block at each tick, and a last one for what came after it.
fn show_plain(feed: mpsc::Receiver<Feed>, model: &mut LiveModel, out: &mut dyn Write) -> Result<()> {
    let mut fresh = false;
    for item in feed {
        // A block at every tick, changed or not: logs keep their once-a-second rhythm.
        let tick = matches!(item, Feed::Tick);
        model.push(item);
        fresh = !tick;
        if tick {
            writeln!(out, "{}", plain::block(model))?;
            out.flush()?;
        }
    }
    if fresh {
        model.refresh();
        writeln!(out, "{}", plain::block(model))?;
    }
    Ok(())
}

/// `w`: what the view kept so far as a record in `dir` (the current directory), named by
/// the time seen; says what it wrote.
pub fn write_seen(model: &LiveModel, kdamonds: &HashMap<u32, KdamondInfo>, dir: &std::path::Path) -> Result<String> {
    let mut known = kdamonds.clone();
    for (&pid, &(index, intervals)) in &model.kdamonds {
        known.insert(pid, KdamondInfo { index, intervals });
    }
    let path = dir.join(format!("damo-trace-top-{:.0}s.data", model.elapsed(model.last_ns)));
    let mut file = RecordFile::create(&path, 0o600, false, known)?;
    let (snapshots, samples, modules) = model.history();
    file.modules(modules)?;
    for (key, snapshot) in snapshots {
        file.snapshot(*key, snapshot)?;
    }
    for sample in samples {
        file.stack(sample)?;
    }
    file.finish(&Losses::default())?;
    let dropped = if model.dropped_history > 0 { format!(" (the oldest {} dropped)", model.dropped_history) } else { String::new() };
    Ok(format!("wrote {}{dropped}", path.display()))
}
