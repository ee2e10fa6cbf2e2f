//! `damo-trace report <type>`: offline reports on records, with damo's options and output.

pub mod access;
pub mod export;
pub mod footprints;
pub mod heatmap;
pub mod holistic;
pub mod nr_regions;
pub mod options;
pub mod pa_layout;
pub mod phases;
pub mod profile;
pub mod record_info;
mod selection;
pub mod times;
pub mod trace;
pub mod wss;

use std::io::Write;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub kind: ReportKind,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReportKind {
    /// Distribution of working set sizes over the snapshots.
    Wss(wss::Args),
    /// Distribution of the number of regions per snapshot.
    #[command(name = "nr_regions")]
    NrRegions(nr_regions::Args),
    /// Time intervals in which the (filtered) snapshots have regions.
    Times(times::Args),
    /// Hot functions while an access pattern held (damo's filters select the times).
    Profile(profile::Args),
    /// A flamegraph SVG of the stacks sampled while an access pattern held.
    Flamegraph(profile::FlamegraphArgs),
    /// The same stack samples as a pprof profile or a speedscope file, for other tools.
    Export(export::Args),
    /// The record split into access phases, each with its hot memory and top functions.
    Phases(phases::Args),
    /// When which address ranges were how frequently accessed, as a heatmap.
    Heatmap(heatmap::Args),
    /// One page: heatmap, working set size and function timeline on one time axis, phases marked.
    Holistic(holistic::Args),
    /// The snapshots' regions and access patterns, in damo's styles and formats.
    Access(access::Args),
    /// Every snapshot's regions as damo's raw listing (`access --raw_form`).
    Raw(access::Args),
    /// Distribution of the recorded processes' and the system's memory footprints.
    Footprints(footprints::Args),
    /// Each target's time span and the address ranges monitored throughout.
    #[command(name = "record_info")]
    RecordInfo(record_info::Args),
    /// The physical address space: iomem resources on NUMA nodes' memory blocks (root).
    #[command(name = "pa_layout")]
    PaLayout(pa_layout::Args),
    /// A recorded trace's DAMON events, one line each in damo's units, like `damo report trace -i`.
    Trace(trace::Args),
}

pub fn run(args: ReportArgs, out: &mut dyn Write) -> Result<()> {
    options::memory_limit_from_env()?;
    match args.kind {
        ReportKind::Wss(a) => wss::run(a, out),
        ReportKind::NrRegions(a) => nr_regions::run(a, out),
        ReportKind::Times(a) => times::run(a, out),
        ReportKind::Profile(a) => profile::run(a, out),
        ReportKind::Flamegraph(a) => profile::run_flamegraph(a),
        ReportKind::Export(a) => export::run(a, out),
        ReportKind::Phases(a) => phases::run(a, out),
        ReportKind::Heatmap(a) => heatmap::run(a, out),
        ReportKind::Holistic(a) => holistic::run(a),
        ReportKind::Access(a) => access::run(a, out),
        ReportKind::Raw(a) => access::run_raw(a, out),
        ReportKind::Footprints(a) => footprints::run(a, out),
        ReportKind::RecordInfo(a) => record_info::run(a, out),
        ReportKind::PaLayout(a) => pa_layout::run(a, out),
        ReportKind::Trace(a) => trace::run(a, out),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    /// A report's arguments from `words`, as clap reads them after `report <type>`.
    pub fn parse<A: clap::Args + clap::FromArgMatches>(words: &[&str]) -> A {
        let command = A::augment_args(clap::Command::new("report"));
        let matches = command.try_get_matches_from(std::iter::once("report").chain(words.iter().copied())).unwrap_or_else(|e| panic!("{words:?}: {e}"));
        A::from_arg_matches(&matches).unwrap_or_else(|e| panic!("{words:?}: {e}"))
    }

    /// An empty command line must give the library's default options (inferno's check):
    /// the CLI's defaults refer to the library's, and this catches a default written twice.
    fn assert_defaults<A: clap::Args + clap::FromArgMatches, O: PartialEq + std::fmt::Debug + Default>(options: impl Fn(&A) -> anyhow::Result<O>) {
        let args: A = parse(&[]);
        assert_eq!(options(&args).unwrap(), O::default(), "{}", std::any::type_name::<A>());
    }

    #[test]
    fn cli_defaults_are_the_librarys() {
        assert_defaults(super::access::Args::options);
        assert_defaults(super::wss::Args::options);
        assert_defaults(super::nr_regions::Args::options);
        assert_defaults(super::footprints::Args::options);
        assert_defaults(super::phases::PhaseArgs::request);
    }
}
