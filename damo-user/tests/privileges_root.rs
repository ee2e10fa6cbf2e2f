//! Root tier: what damo-trace does with users and processes. Each test makes the users,
//! groups and directories it needs and removes them; DAMON's sysfs is only read (as a user,
//! who cannot write it), and recordings use `--no-damon`.

use std::{
    fs,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Output},
    thread,
    time::{Duration, Instant},
};

use damo_user::launch::{GatedChild, LaunchOptions, USER_PATH};

fn need_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test creates users: run it as root");
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?}: {status}");
}

/// A user (and, if asked, an extra group it belongs to) that exists for one test.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
    group: Option<(String, u32)>,
}

impl TestUser {
    fn create(tag: &str, with_group: bool) -> Self {
        need_root();
        let name = format!("dtt{tag}{}", std::process::id());
        let group = with_group.then(|| {
            let g = format!("{name}g");
            run("groupadd", &[&g]);
            let gid = id_of("getent", &["group", &g], 2);
            (g, gid)
        });
        let home = format!("/nonexistent/{name}");
        let mut args = vec!["--no-create-home", "--home-dir", &home, "--shell", "/bin/sh"];
        if let Some((g, _)) = &group {
            args.extend(["-G", g.as_str()]);
        }
        args.push(&name);
        run("useradd", &args);
        let uid = id_of("getent", &["passwd", &name], 2);
        let gid = id_of("getent", &["passwd", &name], 3);
        Self { name, uid, gid, group }
    }

    /// A command run as this user, with a bare environment.
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.uid(self.uid).gid(self.gid).env_clear().env("PATH", USER_PATH).env("HOME", "/").current_dir("/");
        c
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
        if let Some((g, _)) = &self.group {
            let _ = Command::new("groupdel").arg(g).status();
        }
    }
}

/// Field `field` (0-based, ':'-separated) of a getent line, as a number.
fn id_of(program: &str, args: &[&str], field: usize) -> u32 {
    let out = Command::new(program).args(args).output().unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    line.trim().split(':').nth(field).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{program} {args:?}: {line:?}"))
}

/// A directory anyone may enter, holding a copy of the binary anyone may run.
fn public_binary() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("damo-trace");
    fs::copy(env!("CARGO_BIN_EXE_damo-trace"), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    (dir, bin)
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

const NR_KDAMONDS: &str = "/sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds";

#[test]
#[ignore = "needs root: creates a user"]
fn a_user_is_told_permission_denied_not_that_nothing_runs() {
    assert!(Path::new(NR_KDAMONDS).exists(), "this test needs DAMON's sysfs on the host (it only reads it, as a user who cannot write it)");
    let user = TestUser::create("p", false);
    let (dir, bin) = public_binary();

    let status = user.command(&bin).arg("status").output().unwrap();
    let said = text(&status);
    assert_eq!(status.status.code(), Some(1), "{said}");
    assert!(said.contains(&format!("permission denied reading {NR_KDAMONDS}")) && said.contains("root"), "{said}");
    assert!(!said.contains("no kdamonds"), "{said}");

    let sysinfo = user.command(&bin).arg("sysinfo").output().unwrap();
    let said = text(&sysinfo);
    assert!(said.contains("kdamonds: unknown") && said.contains(&format!("permission denied reading {NR_KDAMONDS}")), "{said}");
    assert!(!said.contains("kdamonds: 0"), "{said}");

    let out = dir.path().join("observe.dtr");
    let observe = user.command(&bin).args(["record", "--observe", "--timeout", "1s", "-o"]).arg(&out).output().unwrap();
    let said = text(&observe);
    assert_eq!(observe.status.code(), Some(1), "{said}");
    assert!(said.contains("permission denied reading") && !said.contains("no kdamond is running"), "{said}");
}

#[test]
#[ignore = "needs root: creates a user and a group"]
fn a_command_run_as_a_user_has_its_groups_and_a_clean_environment() {
    let user = TestUser::create("u", true);
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    // A secret in root's environment must not reach the user's command.
    std::env::set_var("DAMO_TRACE_TEST_SECRET", "hunter2");
    for (spec, tag) in [(user.name.clone(), "name"), (user.uid.to_string(), "uid")] {
        let d = dir.path().join(tag);
        let line = format!("sh -c 'mkdir {0} && id -u > {0}/uid && id -G > {0}/groups && env > {0}/env'", d.display());
        let gated = GatedChild::spawn(&line, &LaunchOptions { user: Some(&spec), own_group: false }).unwrap();
        let status = gated.release().unwrap().wait().unwrap();
        assert!(status.success(), "--user {spec}: {status}");
        let read = |f: &str| fs::read_to_string(d.join(f)).unwrap();
        assert_eq!(read("uid").trim(), user.uid.to_string(), "--user {spec}");
        let groups: Vec<u32> = read("groups").split_whitespace().map(|g| g.parse().unwrap()).collect();
        let extra = user.group.as_ref().unwrap().1;
        assert!(groups.contains(&user.gid) && groups.contains(&extra), "--user {spec}: groups {groups:?}, want {} and {extra}", user.gid);
        assert!(!groups.contains(&0), "--user {spec} kept root's group: {groups:?}");
        let env = read("env");
        for want in [format!("HOME=/nonexistent/{}", user.name), format!("USER={}", user.name), format!("LOGNAME={}", user.name), "SHELL=/bin/sh".into(), format!("PATH={USER_PATH}")] {
            assert!(env.lines().any(|l| l == want), "--user {spec}: no {want} in\n{env}");
        }
        assert!(!env.contains("hunter2"), "--user {spec}: root's environment leaked:\n{env}");
    }
    std::env::remove_var("DAMO_TRACE_TEST_SECRET");
}

/// Pids whose command line is exactly `args`.
fn pids_running(args: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want) && !is_zombie(*pid))
        .collect()
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
}

fn kill_all(pids: &[i32]) {
    for &pid in pids {
        // SAFETY: kill has no memory preconditions; these are sleeps this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// A sleep nobody else runs: its duration is made of our pid.
fn unique_sleep(n: u32) -> String {
    format!("{}", 100_000 + std::process::id() * 10 + n)
}

fn record(args: &[&str], dir: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_damo-trace")).args(["record", "--no-damon", "--sample_hz", "49", "--force", "-o"]).arg(dir.join("r.dtr")).args(args).spawn().expect("start damo-trace record")
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_recording_ends_the_command_it_started_unless_asked_to_keep_it() {
    need_root();
    let dir = tempfile::tempdir().unwrap();

    // --timeout: the command is ended with the recording.
    let secs = unique_sleep(1);
    let status = record(&["--timeout", "2s", &format!("sleep {secs}")], dir.path()).wait().unwrap();
    assert!(status.success(), "{status}");
    let left = pids_running(&["sleep", &secs]);
    kill_all(&left);
    assert!(left.is_empty(), "sleep {secs} outlived the recording that started it: {left:?}");

    // SIGTERM to the recorder: the same.
    let secs = unique_sleep(2);
    let mut recorder = record(&[&format!("sleep {secs}")], dir.path());
    let started = Instant::now();
    while pids_running(&["sleep", &secs]).is_empty() && started.elapsed() < Duration::from_secs(20) {
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_millis(500));
    // SAFETY: signalling the recorder this test started.
    unsafe { libc::kill(recorder.id() as i32, libc::SIGTERM) };
    assert!(recorder.wait().unwrap().success());
    let left = pids_running(&["sleep", &secs]);
    kill_all(&left);
    assert!(left.is_empty(), "sleep {secs} outlived a recording ended by SIGTERM: {left:?}");

    // --keep_running: the old behaviour, on request.
    let secs = unique_sleep(3);
    let status = record(&["--timeout", "1s", "--keep_running", &format!("sleep {secs}")], dir.path()).wait().unwrap();
    assert!(status.success(), "{status}");
    let left = pids_running(&["sleep", &secs]);
    kill_all(&left);
    assert_eq!(left.len(), 1, "--keep_running must leave the command running");

    // A pid target is not ours to end.
    let secs = unique_sleep(4);
    let mut theirs = Command::new("sleep").arg(&secs).spawn().unwrap();
    let status = record(&["--timeout", "1s", &theirs.id().to_string()], dir.path()).wait().unwrap();
    assert!(status.success(), "{status}");
    let alive = theirs.try_wait().unwrap().is_none();
    let _ = theirs.kill();
    let _ = theirs.wait();
    assert!(alive, "record signalled a pid target it did not start");
}
