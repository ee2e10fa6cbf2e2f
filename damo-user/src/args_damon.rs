//! `damo-trace args damon`: the kdamonds document for a command line of DAMON options, like
//! `damo args damon`. The options are `start`'s ([`DamonArgs`]), the document is
//! [`damo_sysfs::params::Document`] (damo's field names), so what this prints is what `start`
//! would apply, and both `start --kdamonds` and damo read it back.

use std::{io::Write, path::PathBuf};

use anyhow::{bail, Context as _, Result};
use damo_record::{
    budget::Meter,
    input,
    output_file::{self, OutputOptions},
};
use damo_sysfs::params::Document;

use crate::{control::args::DamonArgs, record::target::TargetSpec};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub kind: Kind,
}

#[derive(Debug, clap::Subcommand)]
pub enum Kind {
    /// The kdamonds JSON for DAMON options (those `start` takes), like `damo args damon`.
    Damon(DamonCmd),
}

#[derive(Debug, clap::Args)]
pub struct DamonCmd {
    /// What to monitor: a pid, paddr, or a kdamonds JSON document (a command has no pid
    /// until it runs: give --target_pid or a pid).
    pub target: Option<String>,
    #[command(flatten)]
    pub damon: DamonArgs,
    /// A kdamonds JSON document to start from instead of the options.
    #[arg(long = "kdamonds")]
    pub kdamonds: Option<PathBuf>,
    /// json (the document), or report (as `status` prints kdamonds).
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Accepted for damo's command lines: the JSON's numbers are always plain, in base units
    /// (µs, bytes, percent, permil), the form damo calls raw.
    #[arg(long)]
    pub raw: bool,
    /// Add the new kdamond to those of this document.
    #[arg(long, value_name = "FILE")]
    pub add: Option<PathBuf>,
    /// Remove the kdamond of this index from this document (the options are ignored).
    #[arg(long, num_args = 2, value_names = ["FILE", "KDAMOND_INDEX"])]
    pub remove: Vec<String>,
    /// Replace the kdamond of this index in this document with the new one.
    #[arg(long, num_args = 2, value_names = ["FILE", "KDAMOND_INDEX"])]
    pub replace: Vec<String>,
    /// Write the JSON to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Report,
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    match args.kind {
        Kind::Damon(cmd) => damon(cmd, out),
    }
}

fn damon(cmd: DamonCmd, out: &mut dyn Write) -> Result<()> {
    let doc = match (&cmd.remove[..], &cmd.replace[..]) {
        ([file, idx], []) => {
            let mut doc = read_document(&PathBuf::from(file))?;
            let idx = kdamond_index(idx, &doc, "--remove")?;
            doc.kdamonds.remove(idx);
            doc
        }
        ([], [file, idx]) => {
            let mut doc = read_document(&PathBuf::from(file))?;
            let idx = kdamond_index(idx, &doc, "--replace")?;
            doc.kdamonds[idx] = from_options(&cmd)?.kdamonds.remove(0);
            doc
        }
        ([], []) => {
            let new = from_options(&cmd)?;
            match &cmd.add {
                Some(file) => {
                    let mut doc = read_document(file)?;
                    doc.kdamonds.extend(new.kdamonds);
                    doc
                }
                None => new,
            }
        }
        _ => bail!("give at most one of --remove and --replace"),
    };
    match cmd.format {
        Format::Report => {
            if cmd.out.is_some() {
                bail!("--out writes the JSON; it does not go with --format report");
            }
            crate::control::args::print_status(&doc, out)
        }
        Format::Json => {
            let text = serde_json::to_string_pretty(&doc)? + "\n";
            match &cmd.out {
                Some(path) => Ok(output_file::write_with(path, OutputOptions::REPORT, |w| w.write_all(text.as_bytes()))?),
                None => Ok(out.write_all(text.as_bytes())?),
            }
        }
    }
}

/// The document the options describe, with the parameters damo fills in: a paddr target
/// without regions gets the biggest System RAM block, as `start` gives it.
fn from_options(cmd: &DamonCmd) -> Result<Document> {
    let spec = cmd.target.as_deref().map(TargetSpec::parse);
    let mut doc = match (&spec, &cmd.kdamonds) {
        (Some(TargetSpec::KdamondsJson(p)), None) | (None, Some(p)) => read_document(p)?,
        (Some(_), Some(_)) => bail!("give either a target or --kdamonds, not both"),
        (Some(TargetSpec::Pid(pid)), None) => cmd.damon.document(Some(*pid))?,
        (Some(TargetSpec::Paddr), None) => DamonArgs { ops: Some(cmd.damon.ops.clone().unwrap_or_else(|| "paddr".into())), ..cmd.damon.clone() }.document(None)?,
        (Some(TargetSpec::Command(c)), None) => bail!("{c:?} is not a pid, paddr or a kdamonds JSON file: a command has no pid until it runs (`start` runs it)"),
        (None, None) => cmd.damon.document(cmd.damon.target_pid)?,
    };
    if doc.kdamonds.is_empty() {
        bail!("the document has no kdamond");
    }
    damo_sysfs::iomem::fill_paddr_regions(&mut doc, || std::fs::read_to_string("/proc/iomem"))?;
    Ok(doc)
}

fn kdamond_index(text: &str, doc: &Document, option: &str) -> Result<usize> {
    let idx: usize = text.parse().with_context(|| format!("{option}: {text:?} is not a kdamond index"))?;
    if idx >= doc.kdamonds.len() {
        bail!("{option}: there is no kdamond {idx} (the document has {})", doc.kdamonds.len());
    }
    Ok(idx)
}

/// A kdamonds JSON document (damo's or damo-trace's), read as every input is.
pub fn read_document(path: &std::path::Path) -> Result<Document> {
    let mut file = input::open_regular(path).with_context(|| format!("failed to open {}", path.display()))?;
    let bytes = input::read_all(&mut file, &mut Meter::new()).with_context(|| format!("failed to read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not a kdamonds JSON document", path.display()))
}
