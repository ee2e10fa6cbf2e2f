//! `report profile` and `report flamegraph`: the code that ran while an access pattern held.
//! The pattern is damo's record filters; the times it held are `report times`' spans, and
//! the stack samples inside them are symbolized and counted. With a selection, the frames
//! most distinctive of it against the rest of the record come first (the responsible
//! function, `damo_profile::attribution`), then the self-time table. The header and the
//! flamegraph's subtitle say what the stacks lack (losses, truncated stacks, binaries not
//! found here).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{bail, Result};
use damo_profile::{
    attribution::{self, Quality},
    folded::FoldedStacks,
    json,
    stacks::{self, Namer},
    summary::Profile,
    table::Table,
};
use damo_record::{
    model::StackSample,
    output_file::{self, OutputOptions},
};

use super::{
    options::SampleArgs,
    selection::{self, Selected},
};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub samples: SampleArgs,
    /// Rows to print.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Print the rows as JSON.
    #[arg(long)]
    pub json: bool,
    /// Split each symbol's row by the source line the samples were at (`file:line`, where
    /// the binary has line information; from the record or a `--search_dir` file).
    #[arg(long)]
    pub lines: bool,
    /// Also write a flamegraph SVG of the selected samples.
    #[arg(long, value_name = "FILE")]
    pub flamegraph: Option<PathBuf>,
    /// Also write the selected stacks as folded lines (flamegraph.pl, speedscope, inferno).
    #[arg(long, value_name = "FILE")]
    pub folded: Option<PathBuf>,
    /// Also write a differential flamegraph of the selected times against the rest of the
    /// record: red frames take a larger share of the samples while the pattern held.
    #[arg(long, value_name = "FILE")]
    pub diff: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct FlamegraphArgs {
    #[command(flatten)]
    pub samples: SampleArgs,
    /// The SVG to write.
    #[arg(short = 'o', long = "output", default_value = "flamegraph.svg", value_name = "FILE")]
    pub output: PathBuf,
    /// Its title.
    #[arg(long)]
    pub title: Option<String>,
}

/// The selected samples, named; and what the selection was, for titles.
struct Selection {
    stacks: Vec<stacks::NamedStack>,
    /// The samples outside the selected times, when asked for (`--diff`, attribution).
    rest: Option<Vec<stacks::NamedStack>>,
    commands: Vec<String>,
    what: String,
    quality: Quality,
}

fn select(args: &SampleArgs, with_rest: bool) -> Result<Selection> {
    let Selected { record, spans, what } = selection::load(&args.input, &args.filter, false)?;
    let selected = stacks::select(&record, spans.as_deref());
    let mut namer = Namer::new(&record, &args.symbols.search_dirs);
    let commands = selected.iter().map(|s| s.comm.clone()).collect();
    let rest = with_rest.then(|| {
        let outside = |s: &&StackSample| spans.as_deref().is_some_and(|spans| !stacks::in_spans(spans, s.ts_ns));
        record.samples.iter().filter(outside).map(|s| namer.name(s)).collect()
    });
    let stacks: Vec<stacks::NamedStack> = selected.into_iter().map(|s| namer.name(s)).collect();
    let quality = Quality::of(&stacks, record.losses.map_or(0, |l| l.total()));
    Ok(Selection { stacks, rest, commands, what, quality })
}

fn folded(stacks: &[stacks::NamedStack]) -> FoldedStacks {
    let mut f = FoldedStacks::default();
    for s in stacks {
        f.add(s.frames.iter().map(AsRef::as_ref), 1);
    }
    f
}

/// Writes a report file (see `damo_record::output_file`: never through a symlink or device).
pub(crate) fn write_file(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    output_file::write_with(path, OutputOptions::REPORT, |w| fill(w))
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let selective = !args.samples.filter.to_filter()?.is_noop();
    let sel = select(&args.samples, args.diff.is_some() || selective)?;
    let mut table = Table::default();
    for (s, comm) in sel.stacks.iter().zip(&sel.commands) {
        match (&s.source, args.lines) {
            (Some(src), true) => table.add(comm, &s.object, &format!("{} {}:{}", s.symbol, src.file, src.line)),
            _ => table.add(comm, &s.object, &s.symbol),
        }
    }
    // Against the rest of the record: only with a selection (without one there is no rest).
    let attributed = sel.rest.as_deref().filter(|_| selective).map(|rest| attribution::attribute(&sel.stacks, rest));
    let profile = Profile { what: sel.what.clone(), quality: sel.quality.clone(), attributed, table };
    if args.json {
        json::write_sorted(&profile.json(args.top), out)?;
    } else {
        profile.write_text(args.top, out)?;
    }
    if args.flamegraph.is_some() || args.folded.is_some() || args.diff.is_some() {
        let f = folded(&sel.stacks);
        if let Some(path) = &args.folded {
            write_file(path, |w| f.write_folded(w))?;
        }
        if let Some(path) = &args.flamegraph {
            if f.total() == 0 {
                bail!("no samples in the selection: no flamegraph to draw");
            }
            write_file(path, |w| f.write_flamegraph_noted(&format!("damo-trace: {}", sel.what), sel.quality.note().as_deref(), w))?;
        }
        if let Some(path) = &args.diff {
            let rest = folded(sel.rest.as_deref().unwrap_or_default());
            if f.total() == 0 || rest.total() == 0 {
                bail!("--diff compares the selected times with the rest: {} samples inside, {} outside", f.total(), rest.total());
            }
            write_file(path, |w| f.write_differential(&rest, &format!("damo-trace: {} against the other {} samples", sel.what, rest.total()), w))?;
        }
    }
    Ok(())
}

pub fn run_flamegraph(args: FlamegraphArgs) -> Result<()> {
    let sel = select(&args.samples, false)?;
    let f = folded(&sel.stacks);
    if f.total() == 0 {
        bail!("no samples in the selection: no flamegraph to draw");
    }
    write_file(&args.output, |w| f.write_flamegraph_noted(&args.title.unwrap_or_else(|| format!("damo-trace: {}", sel.what)), sel.quality.note().as_deref(), w))
}
