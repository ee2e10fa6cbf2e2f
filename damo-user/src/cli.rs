//! The command line. `main` only dispatches; each command's options live with the command.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "damo-trace",
    version,
    long_version = damo_user::dist::LONG_VERSION,
    about = "DAMON access monitoring and CPU profiling in one record",
    after_help = "Exit status: 0 success, 1 an error (one line on stderr), 2 a usage error (bad options). \
                  A report whose reader closes the pipe (`| head`) ends quietly by SIGPIPE, like cat."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what this machine offers for DAMON tracing (read-only).
    Sysinfo(damo_user::sysinfo::Args),
    /// Record DAMON snapshots and CPU call stacks of a target into one record (root).
    Record(damo_user::record::args::Args),
    /// Start kdamonds (and DAMOS schemes) through DAMON's sysfs, like `damo start` (root).
    Start(damo_user::control::args::StartArgs),
    /// Change the parameters of a running kdamond damo-trace started (root).
    Tune(damo_user::control::args::TuneArgs),
    /// Stop the kdamonds damo-trace started; others are never touched (root).
    Stop(damo_user::control::args::StopArgs),
    /// Show every kdamond's parameters, state, owner and scheme stats (read-only).
    Status(damo_user::control::args::StatusArgs),
    /// Read or write a DAMON module's parameters, like `damo module` (writes need root).
    Module(damo_user::modules_cli::ModuleArgs),
    /// DAMON_RECLAIM: status, or enable/disable/commit with its parameters, like `damo reclaim`.
    Reclaim(damo_user::modules_cli::ReclaimArgs),
    /// DAMON_LRU_SORT: status, or enable/disable/commit with its parameters, like `damo lru_sort`.
    #[command(name = "lru_sort")]
    LruSort(damo_user::modules_cli::LruSortArgs),
    /// Report on a record (damo-trace's or damo's), with damo's options and output.
    Report(damo_user::report::ReportArgs),
    /// Rewrite a record in damo's json, json_compressed or perf_script format.
    Convert(damo_user::convert::Args),
    /// One read-only report to attach to a bug: build, sysinfo, status, DAMON modules, tracepoint activity.
    Diagnose(damo_user::diagnose::Args),
    /// Re-aggregate a record to a longer interval and/or filter it, like `damo adjust`.
    Adjust(damo_user::adjust::Args),
    /// Check a record's consistency: damo's checks, plus the native format's framing and checksums.
    Validate(damo_user::validate::Args),
    /// Print a shell completion script (bash, zsh, fish), like damo's `setup_cli_completion`.
    Completion(damo_user::dist::CompletionArgs),
    /// Write the man pages (`cargo xtask dist` packs them).
    #[command(name = "man-pages", hide = true)]
    ManPages(damo_user::dist::ManPagesArgs),
    /// The kdamonds JSON for a command line of DAMON options, like `damo args damon`.
    Args(damo_user::args_damon::Args),
    /// Touch memory the way a record says its target did, like `damo replay`.
    Replay(damo_user::replay::Args),
    /// Watch a target live: hot address bands, WSS, hot functions and phases (root).
    Top(damo_user::live::Args),
    /// Print the current snapshot of every running kdamond, like `damo show` (read-only, root).
    Show(damo_user::live::show::Args),
    /// Report the target's access pattern every few seconds, like `damo monitor` (root).
    Monitor(damo_user::live::monitor::Args),
}
