mod cli;

use std::io::{self, Write};

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    // A closed reader (`| head`) ends a report the way it ends cat or ls: by SIGPIPE, at once
    // and quietly (Rust ignores SIGPIPE, which turns it into "Broken pipe" errors). `record`
    // keeps ignoring it: it must live to stop the kdamonds and the command it started, and
    // its output is only the progress line and the summary, whose write errors it ignores.
    // `top` and `monitor` record too: a closed pipe is an error they end on, stopping theirs.
    if !matches!(cli.command, Command::Record(_) | Command::Top(_) | Command::Monitor(_)) {
        // SAFETY: setting a signal's disposition to its default before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    if matches!(cli.command, Command::Report(_)) {
        damo_user::pipe_out::widen_stdout();
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = match cli.command {
        Command::Sysinfo(args) => damo_user::sysinfo::run(args, &mut out),
        Command::Record(args) => damo_user::record::args::run(args),
        Command::Start(args) => damo_user::control::args::start(args, &mut out),
        Command::Tune(args) => damo_user::control::args::tune(args, &mut out),
        Command::Stop(args) => damo_user::control::args::stop(args, &mut out),
        Command::Status(args) => damo_user::control::args::status(args, &mut out),
        Command::Module(args) => damo_user::modules_cli::module(args, &mut out),
        Command::Reclaim(args) => damo_user::modules_cli::reclaim(args, &mut out),
        Command::LruSort(args) => damo_user::modules_cli::lru_sort(args, &mut out),
        Command::Report(args) => damo_user::report::run(args, &mut out),
        Command::Convert(args) => damo_user::convert::run(args),
        Command::Diagnose(args) => damo_user::diagnose::run(args, &mut out),
        Command::Adjust(args) => damo_user::adjust::run(args),
        Command::Validate(args) => damo_user::validate::run(args),
        Command::Completion(args) => damo_user::dist::completion(args, Cli::command(), &mut out),
        Command::ManPages(args) => damo_user::dist::man_pages(args, Cli::command()),
        Command::Args(args) => damo_user::args_damon::run(args, &mut out),
        Command::Replay(args) => damo_user::replay::run(args, &mut out),
        Command::Top(args) => damo_user::live::run(args, &mut out),
        Command::Show(args) => damo_user::live::show::run(args, &mut out),
        Command::Monitor(args) => damo_user::live::monitor::run(args, &mut out),
    };
    let flushed = out.flush();
    if let Err(e) = result {
        if !damo_user::errors::is_broken_pipe(&e) {
            eprintln!("damo-trace: {}", damo_user::errors::message(&e));
            std::process::exit(1);
        }
    }
    if let Err(e) = flushed {
        // A closed pipe (`| head`) is the reader's choice, not an error worth a message.
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("damo-trace: failed to write output: {e}");
            std::process::exit(1);
        }
    }
}
