//! `top`, `show` and `monitor` on the host, never writing DAMON. Tier 1: the refusals that
//! need no kdamond (`--observe`, `show` and `monitor ongoing` pointed at an empty DAMON
//! sysfs, so the host's own kdamond, running or not, does not matter), and `show
//! --stat_scheme` refusing a fake foreign kdamond without writing its tree. Tier 2 (root):
//! `top --plain --no-damon` on our workload, and the UI in a pseudo-terminal (tmux): it
//! starts, redraws, writes what it kept on `w`, and quits on `q` with the terminal restored.

use std::{
    path::PathBuf,
    process::{Command, Output},
    time::{Duration, Instant},
};

fn damo_trace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_damo-trace"))
}

fn workload() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("damo-workload");
    assert!(path.is_file(), "{} is missing: cargo build -p damo-workload", path.display());
    path
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn observe_refuses_when_no_kdamond_runs() {
    let empty = tempfile::tempdir().unwrap();
    let with_none = tempfile::tempdir().unwrap();
    std::fs::create_dir(with_none.path().join("kdamonds")).unwrap();
    std::fs::write(with_none.path().join("kdamonds/nr_kdamonds"), "0\n").unwrap();
    for admin in [empty.path(), with_none.path()] {
        for extra in [&["--plain"][..], &[]] {
            let out = damo_trace().args(["top", "--observe", "--damon_admin"]).arg(admin).args(extra).output().unwrap();
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            let err = stderr(&out);
            assert!(err.starts_with("damo-trace: --observe: ") && err.contains("no kdamond is running") && err.lines().count() == 1, "{err}");
            assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", String::from_utf8_lossy(&out.stdout));
        }
    }
}

#[test]
fn show_and_monitor_refuse_when_no_kdamond_runs() {
    let empty = tempfile::tempdir().unwrap();
    let admin = empty.path().to_str().unwrap();
    for args in [&["show", "--damon_admin", admin][..], &["show", "--repeat", "3", "--damon_admin", admin], &["monitor", "ongoing", "--count", "1", "--damon_admin", admin]] {
        let out = damo_trace().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("no kdamond is running") && err.lines().count() == 1, "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = damo_trace().args(["monitor", "ongoing", "--delay", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--delay 0: give a number of seconds above 0"), "{}", stderr(&out));
}

/// A DAMON sysfs tree with kdamond 0 running as `pid`, started by someone else.
fn foreign_kdamond(pid: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("kdamonds/0");
    std::fs::create_dir_all(&k).unwrap();
    std::fs::write(dir.path().join("kdamonds/nr_kdamonds"), "1\n").unwrap();
    std::fs::write(k.join("state"), "on\n").unwrap();
    std::fs::write(k.join("pid"), format!("{pid}\n")).unwrap();
    dir
}

#[test]
fn show_stat_scheme_refuses_a_kdamond_it_did_not_start() {
    let admin = foreign_kdamond(4242);
    let files_before: Vec<_> = walk(admin.path());
    // Our ownership state, empty: the kdamond is not ours.
    let run_dir = tempfile::tempdir().unwrap();
    let out = damo_trace().env("DAMO_TRACE_RUN_DIR", run_dir.path().join("state")).args(["show", "--stat_scheme", "--damon_admin"]).arg(admin.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("kdamond 0 was not started by damo-trace") && err.contains("without --stat_scheme") && err.lines().count() == 1, "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(walk(admin.path()), files_before, "show --stat_scheme wrote to a foreign kdamond's tree");
}

/// Every file under `dir` with its bytes.
fn walk(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        if e.file_type().unwrap().is_dir() {
            files.extend(walk(&e.path()));
        } else {
            files.push((e.path(), std::fs::read(e.path()).unwrap()));
        }
    }
    files.sort();
    files
}

#[test]
fn show_repeat_takes_a_count_or_damos_delay_and_count() {
    let admin = foreign_kdamond(4242);
    for (repeat, wrong) in [(&["0"][..], "--repeat 0: give a number of snapshots above 0"), (&["1s", "x"], "--repeat x: give a number"), (&["soon", "3"], "--repeat soon 3: ")] {
        let out = damo_trace().args(["show", "--damon_admin"]).arg(admin.path()).arg("--repeat").args(repeat).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{repeat:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(wrong) && stderr(&out).lines().count() == 1, "{repeat:?}: {}", stderr(&out));
    }
}

#[test]
fn top_without_a_target_says_what_to_give() {
    let out = damo_trace().args(["top", "--plain"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nothing to record: give a pid"), "{}", stderr(&out));
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn plain_top_names_the_workloads_hot_function() {
    let command = format!("{} known --seconds 4", workload().display());
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("top.data");
    let out = damo_trace().args(["top", "--plain", "--no-damon", "--sample_hz", "199", "--record"]).arg(&record).arg(&command).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let blocks: Vec<&str> = text.split("\ntop ").collect();
    assert!(blocks.len() >= 3, "a block about once a second for 4 s:\n{text}");
    // --record wrote what was shown: a complete record with every sample the last block
    // counted (how many depends on the CPU the workload got).
    let read = damo_record::native::read(&std::fs::read(&record).unwrap()).expect("the --record file reads back");
    let shown: usize = blocks.last().unwrap().split(" snapshots, ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).expect("the block's sample count");
    assert!(read.complete && shown >= 20 && read.record.samples.len() == shown, "{} samples recorded, {shown} shown, complete {}", read.record.samples.len(), read.complete);
    // Half the workload's time is workload_compute, half libc's memset; both are listed.
    let last = blocks.last().unwrap();
    assert!(last.contains("workload_compute") && last.contains("memset"), "the last block:\n{last}");
    assert!(last.contains("libc.so"), "memset's module:\n{last}");
}

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `command` in `dir`.
    fn new(command: &str, dir: &std::path::Path) -> Self {
        let socket = format!("damo-trace-live-{}", std::process::id());
        let ok = Command::new("tmux").args(["-L", &socket, "new-session", "-d", "-x", "120", "-y", "40", "-c"]).arg(dir).arg(command).status().expect("tmux (scripts/setup.sh installs it)");
        assert!(ok.success(), "tmux new-session");
        Self { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux").args(["-L", &self.socket, "capture-pane", "-p"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        assert!(Command::new("tmux").args(["-L", &self.socket, "send-keys", keys]).status().unwrap().success());
    }

    /// Waits up to `timeout` for the screen to satisfy `ok`.
    fn wait_for(&self, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ok(&screen) || start.elapsed() > timeout {
                return screen;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}

/// The `damo-trace top  12.3s` of the header.
fn elapsed(screen: &str) -> Option<f64> {
    screen.lines().find_map(|l| l.strip_prefix("damo-trace top"))?.split_whitespace().next()?.strip_suffix('s')?.parse().ok()
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn the_ui_starts_redraws_and_quits_on_q_restoring_the_terminal() {
    let command = format!("{} top --no-damon '{} known --seconds 60'; echo EXITED $?; stty -a; sleep 60", env!("CARGO_BIN_EXE_damo-trace"), workload().display());
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::new(&command, dir.path());
    let first = tmux.wait_for(Duration::from_secs(20), |s| s.contains("workload_compute") || s.contains("memset"));
    assert!(first.contains("hot functions") && first.contains("q quit"), "the UI did not start:\n{first}");
    let t0 = elapsed(&first).expect("the header's time");
    let later = tmux.wait_for(Duration::from_secs(10), |s| elapsed(s).is_some_and(|t| t >= t0 + 2.0));
    assert!(elapsed(&later).is_some_and(|t| t >= t0 + 2.0), "no redraw in 10 s (first at {t0}s):\n{later}");
    assert!(!later.contains("known iterations") && !later.contains("snapshots  0 regions"), "the command or the status line wrote over the UI:\n{later}");
    // `w`: what the view kept, as a record in the current directory, said in the footer.
    tmux.keys("w");
    let written = tmux.wait_for(Duration::from_secs(10), |s| s.contains("wrote ./damo-trace-top-"));
    let name = written.split("wrote ./").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or_else(|| panic!("w wrote nothing:\n{written}"));
    let record = dir.path().join(name);
    let info = damo_trace().args(["report", "record_info", "-i"]).arg(&record).output().unwrap();
    assert!(info.status.success(), "record_info of w's record: {}", stderr(&info));
    let read = damo_record::native::read(&std::fs::read(&record).unwrap()).expect("w's record reads back");
    assert!(read.complete && !read.record.samples.is_empty(), "w's record holds the samples the view kept");
    tmux.keys("q");
    // Until `stty -a` printed too (its modes follow the exit line; "-icanon" counts).
    let after = tmux.wait_for(Duration::from_secs(20), |s| s.split("EXITED").nth(1).is_some_and(|rest| rest.contains("icanon")));
    assert!(after.contains("EXITED 0"), "top did not end on q:\n{after}");
    assert!(!after.contains("hot functions"), "the alternate screen was left:\n{after}");
    // Cooked mode again: canonical input and echo.
    let modes = after.split_whitespace().collect::<Vec<_>>();
    assert!(modes.contains(&"icanon") && modes.contains(&"echo"), "the terminal stayed raw:\n{after}");
}
