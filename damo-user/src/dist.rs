//! What an installation needs besides the binary: the build it is (`--version`), shell
//! completions and man pages, all generated from the CLI itself so they never drift from it.

use std::{io::Write, path::Path};

use anyhow::{Context, Result};
use clap_complete::Shell;
use damo_record::output_file::{self, OutputOptions};

/// `--version`: the package version, the embedded eBPF object (SHA-256, the nightly and
/// bpf-linker that built it) and the compiler, target and linkage of the user side; written
/// by build.rs.
pub const LONG_VERSION: &str = include_str!(concat!(env!("OUT_DIR"), "/version.txt"));

#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// The shell to complete for. bash: `damo-trace completion bash > /etc/bash_completion.d/damo-trace`;
    /// zsh: into a directory of `$fpath` as `_damo-trace`; fish: `~/.config/fish/completions/damo-trace.fish`.
    pub shell: Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManPagesArgs {
    /// The directory to write `damo-trace.1` and a `damo-trace-<command>.1` per command into.
    #[arg(long)]
    pub out_dir: std::path::PathBuf,
}

/// Prints the completion script of `shell` for `command`.
pub fn completion(args: CompletionArgs, mut command: clap::Command, out: &mut dyn Write) -> Result<()> {
    let name = command.get_name().to_owned();
    clap_complete::generate(args.shell, &mut command, name, out);
    Ok(())
}

/// Writes a man page for `command` and one for each subcommand, at every depth
/// (`damo-trace-report-heatmap.1`), into `args.out_dir`.
pub fn man_pages(args: ManPagesArgs, command: clap::Command) -> Result<()> {
    let mut command = command;
    command.build();
    write_pages(&command, command.get_name(), &args.out_dir)
}

fn write_pages(command: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    // A subcommand's page is titled with its full name, as `man damo-trace-report` expects,
    // and its synopsis spells the command line (`damo-trace report heatmap`).
    let titled = command.clone().display_name(name.to_owned()).bin_name(name.replace('-', " ").replacen("damo trace", "damo-trace", 1));
    let path = dir.join(format!("{name}.1"));
    output_file::write_with(&path, OutputOptions::REPORT, |file| -> Result<()> { clap_mangen::Man::new(titled).render(file).with_context(|| format!("failed to write {}", path.display())) })?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
