//! `report trace -i FILE`: damo's listing of a recorded trace's DAMON events. Reads what damo
//! reads offline (`damo report trace --output`'s file, whose header names the tracer), plain
//! `perf script` text, and any record damo-trace reads (its snapshots listed as the
//! `damon:damon_aggregated` events they came from, through damo's perf_script form). Tracing
//! live (damo runs `perf trace`) is `damo-trace show`'s and `record`'s job.

use std::{io::Write, path::PathBuf};

use anyhow::{bail, Context, Result};
use damo_record::{budget::Meter, input};
use damo_report::trace::{self, Tracer};

#[derive(Debug, clap::Args)]
#[command(rename_all = "snake_case")]
pub struct Args {
    /// The trace record: damo's `report trace --output` file, `perf script` text, or a record.
    #[arg(short = 'i', long = "input", default_value = "damon.data", value_name = "FILE")]
    pub input: PathBuf,
    /// Events to show (damo's names, or all).
    #[arg(long, num_args = 1.., default_value = "all", value_parser = event_name)]
    pub event: Vec<String>,
    /// Events to leave out.
    #[arg(long, num_args = 1.., value_parser = event_name)]
    pub no_event: Vec<String>,
    /// Also print each event's line as the tracer printed it (before damo's form, as damo does).
    #[arg(long)]
    pub raw: bool,
    /// Wrap lines longer than this.
    #[arg(long, default_value_t = 100)]
    pub max_cols: usize,
}

fn event_name(text: &str) -> Result<String, String> {
    if text == "all" || trace::EVENTS.contains(&text) {
        Ok(text.to_string())
    } else {
        Err(format!("{text:?} is not one of all, {}", trace::EVENTS.join(", ")))
    }
}

const DAMO_HEADER: &str = "damo_report_trace_output_format_version:";

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let path = &args.input;
    let mut file = input::open_regular(path).with_context(|| format!("failed to open {}", path.display()))?;
    let bytes = input::read_all(&mut file, &mut Meter::new()).with_context(|| format!("failed to read {}", path.display()))?;
    let (text, tracer) = match std::str::from_utf8(&bytes) {
        Ok(t) if t.starts_with(DAMO_HEADER) => damo_output(t).with_context(|| format!("{} is not a damo report trace output", path.display()))?,
        Ok(t) if t.lines().any(|l| trace::parse(l, Tracer::PerfScript).is_some_and(|e| e.event.starts_with("damon:"))) => (t.to_string(), Tracer::PerfScript),
        _ => {
            drop(bytes);
            let record = crate::report::options::load_record(path)?;
            let mut text = Vec::new();
            damo_record::damo::perf_script::write(&record, &mut text)?;
            (String::from_utf8(text).context("perf_script output is not UTF-8")?, Tracer::PerfScript)
        }
    };
    let mut shown: Vec<&str> = if args.event.iter().any(|e| e == "all") { trace::EVENTS.to_vec() } else { args.event.iter().map(String::as_str).collect() };
    shown.retain(|e| !args.no_event.iter().any(|n| n == e));
    let mut printer = trace::Printer::default();
    for line in text.lines() {
        let Some(event) = trace::parse(line, tracer) else { continue };
        if !shown.contains(&event.event.as_str()) {
            continue;
        }
        if args.raw {
            writeln!(out, "{line}")?;
        }
        out.write_all(trace::wrap(&printer.format(&event)?, args.max_cols).as_bytes())?;
    }
    Ok(())
}

/// The events of damo's `report trace --output` file, after its three header lines.
fn damo_output(text: &str) -> Result<(String, Tracer)> {
    // The events keep their leading blanks (`--raw` prints them as read), as in damo.
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() < 3 {
        bail!("no header");
    }
    let tracer = match lines[2].split_whitespace().collect::<Vec<_>>()[..] {
        ["damo_report_trace_output_tracer:", "perf"] => Tracer::PerfScript,
        ["damo_report_trace_output_tracer:", "trace-cmd"] => Tracer::TraceCmd,
        _ => bail!("its third line names no tracer (perf or trace-cmd)"),
    };
    Ok((lines[3..].join("\n"), tracer))
}
