//! Starts a target command held before `exec`, so the recording sees it from its first
//! instruction: the child blocks on a pipe until its pid is in the eBPF filter maps.
//!
//! `--user` runs it as that user the way `sudo -u`/`runuser -u` with a reset environment do:
//! the user's supplementary groups (initgroups), then setgid, then setuid, and a clean
//! environment: HOME, USER, LOGNAME and SHELL from the passwd entry, PATH set to
//! [`USER_PATH`], and only [`KEPT_VARS`] (terminal and locale) passed through from ours.

use std::{
    ffi::{CStr, CString},
    fs::File,
    io::{self, Read, Write},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::process::CommandExt,
    },
    process::{Child, Command},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

/// A started command waiting for [`GatedChild::release`] before it execs.
///
/// `Command::spawn` returns only once the child has exec'd, so it runs on a helper thread
/// while the child reports its pid through a second pipe and waits on the gate.
pub struct GatedChild {
    pid: u32,
    gate: File,
    spawner: JoinHandle<io::Result<Child>>,
}

/// PATH of a command run with `--user` (login.defs' ENV_PATH for users on Debian).
pub const USER_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Variables a `--user` command keeps from our environment: the terminal and the locale.
/// Everything else (root's secrets, SUDO_*, LD_*, XDG_* …) is dropped.
pub const KEPT_VARS: [&str; 5] = ["TERM", "COLORTERM", "LANG", "LANGUAGE", "TZ"];

/// A passwd entry, resolved before fork (the lookups are not async-signal-safe).
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
    /// Every group the user is in (initgroups' list: the primary one and /etc/group's).
    pub groups: Vec<libc::gid_t>,
}

/// `--user NAME` or `--user UID` (a number is a uid, as with `sudo -u '#UID'`).
pub fn lookup_user(spec: &str) -> Result<User> {
    let c_spec = CString::new(spec).context("user name contains a NUL byte")?;
    // SAFETY: getpwnam/getpwuid return a pointer into static storage or NULL; we copy out at
    // once, before anything else can call them (setup runs before the collector's threads).
    let entry = unsafe {
        match spec.parse::<u32>() {
            Ok(uid) => libc::getpwuid(uid),
            Err(_) => libc::getpwnam(c_spec.as_ptr()),
        }
    };
    if entry.is_null() {
        match spec.parse::<u32>() {
            Ok(uid) => bail!("uid {uid} has no passwd entry: its group, home and shell are unknown"),
            Err(_) => bail!("no such user: {spec}"),
        }
    }
    let text = |p: *const libc::c_char| if p.is_null() { String::new() } else { unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned() };
    // SAFETY: non-null result of getpw*; its strings are NUL-terminated.
    let (name, uid, gid, home, shell) = unsafe { (text((*entry).pw_name), (*entry).pw_uid, (*entry).pw_gid, text((*entry).pw_dir), text((*entry).pw_shell)) };
    let groups = group_list(&name, gid)?;
    Ok(User { name, uid, gid, home, shell, groups })
}

/// getgrouplist: the groups initgroups would set.
fn group_list(name: &str, gid: u32) -> Result<Vec<libc::gid_t>> {
    let c_name = CString::new(name).context("user name contains a NUL byte")?;
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut n = groups.len() as libc::c_int;
        // SAFETY: the buffer holds n entries; getgrouplist writes at most n and sets n.
        let r = unsafe { libc::getgrouplist(c_name.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if r >= 0 {
            groups.truncate(n.max(0) as usize);
            return Ok(groups);
        }
        if groups.len() >= 65536 {
            bail!("{name} is in too many groups");
        }
        groups.resize((n.max(0) as usize).max(groups.len() * 2), 0);
    }
}

impl User {
    /// The environment the command gets (see the module's doc).
    pub fn environment(&self, ours: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = ours.filter(|(k, _)| k.to_str().is_some_and(|k| KEPT_VARS.contains(&k) || k.starts_with("LC_"))).collect();
        let shell = if self.shell.is_empty() { "/bin/sh" } else { &self.shell };
        for (k, v) in [("HOME", self.home.as_str()), ("USER", &self.name), ("LOGNAME", &self.name), ("SHELL", shell), ("PATH", USER_PATH)] {
            env.push((k.into(), v.into()));
        }
        env
    }
}

/// How to start the command.
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions<'a> {
    /// Run it as this user (`--user`).
    pub user: Option<&'a str>,
    /// Start it in a process group of its own, so [`end_command`] ends it with its children.
    pub own_group: bool,
}

impl GatedChild {
    /// Parses `command_line` like a shell would split words (no expansion) and starts it
    /// held, as `opts` say.
    pub fn spawn(command_line: &str, opts: &LaunchOptions) -> Result<Self> {
        let words = shell_words::split(command_line).with_context(|| format!("cannot parse the command line: {command_line}"))?;
        let Some((program, args)) = words.split_first() else { bail!("the command line is empty") };
        let mut command = Command::new(program);
        command.args(args);
        let user = opts.user.map(lookup_user).transpose()?;
        if let Some(user) = &user {
            command.env_clear().envs(user.environment(std::env::vars_os()));
        }
        if opts.own_group {
            command.process_group(0);
        }
        let (gate_read, gate) = pipe()?;
        let (pid_read, pid_write) = pipe()?;
        let fds = [gate_read.as_raw_fd(), gate.as_raw_fd(), pid_read.as_raw_fd(), pid_write.as_raw_fd()];
        let ids = user.map(|u| (u.uid, u.gid, u.groups));
        // SAFETY: only async-signal-safe calls (setgroups, setgid, setuid, getpid, write,
        // read, close) between fork and exec; the group list was built before the fork.
        unsafe {
            command.pre_exec(move || {
                if let Some((uid, gid, groups)) = &ids {
                    become_user(*uid, *gid, groups)?;
                }
                wait_at_gate(fds)
            })
        };
        let program = program.clone();
        let spawner = thread::spawn(move || {
            let spawned = command.spawn();
            drop((gate_read, pid_write));
            spawned
        });
        let mut pid_bytes = [0u8; 4];
        match (&pid_read).read_exact(&mut pid_bytes) {
            Ok(()) => Ok(Self { pid: u32::from_ne_bytes(pid_bytes), gate, spawner }),
            Err(_) => {
                drop(gate);
                match spawner.join() {
                    Ok(Err(e)) => Err(e).with_context(|| format!("failed to start {program}")),
                    _ => bail!("failed to start {program}"),
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Lets the command exec; returns it to be waited for.
    pub fn release(self) -> Result<Child> {
        (&self.gate).write_all(&[1]).context("failed to release the command")?;
        match self.spawner.join() {
            Ok(spawned) => spawned.context("the command failed to start"),
            Err(_) => bail!("the thread starting the command panicked"),
        }
    }

    /// Gives up: the command never runs. Returns what its start reported.
    pub fn abandon(self) -> io::Result<Child> {
        drop(self.gate);
        self.spawner.join().unwrap_or_else(|_| Err(io::Error::other("spawner panicked")))
    }
}

/// In the child: supplementary groups, then gid, then uid (once the uid is dropped the
/// others cannot change any more); each failure stops the exec.
fn become_user(uid: u32, gid: u32, groups: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: plain syscalls; `groups` outlives the call.
    unsafe {
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// How long a command gets between SIGTERM and SIGKILL when the recording ends it.
pub const END_GRACE: Duration = Duration::from_secs(2);

/// Ends a command started in its own process group: SIGTERM to the group, SIGKILL to what
/// is left of it after `grace`, then reaps the command. Returns whether SIGKILL was needed.
/// The command is reaped only at the end, so its pid (the group's id) cannot be reused by
/// another process while we signal the group.
pub fn end_command(child: &mut Child, grace: Duration) -> bool {
    let pgid = child.id() as libc::pid_t;
    // SAFETY: kill has no memory preconditions; the group is the one we created. SIGCONT
    // after SIGTERM, as shells do, so a stopped process (a reader of the terminal it may not
    // read, SIGTTIN) gets to handle its SIGTERM.
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
        libc::kill(-pgid, libc::SIGCONT);
    }
    let deadline = Instant::now() + grace;
    while group_alive(pgid) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let killed = group_alive(pgid);
    if killed {
        // SAFETY: as above.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        // SIGKILL is delivered asynchronously: the group is gone only once each member died
        // (a child of the command becomes init's zombie), which takes a scheduler tick or two.
        let deadline = Instant::now() + Duration::from_secs(2);
        while group_alive(pgid) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
    let _ = child.wait();
    killed
}

/// A command the recording started, ended with it (see [`end_command`]) unless kept running.
pub struct StartedCommand {
    child: Child,
    keep_running: bool,
    ended: bool,
}

impl StartedCommand {
    pub fn new(child: Child, keep_running: bool) -> Self {
        Self { child, keep_running, ended: false }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Ends the command's process group (or, kept running, only reaps it if it exited).
    pub fn end(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        if self.keep_running {
            let _ = self.child.try_wait();
        } else {
            end_command(&mut self.child, END_GRACE);
        }
    }
}

impl Drop for StartedCommand {
    fn drop(&mut self) {
        self.end();
    }
}

/// Whether a process of group `pgid` is still running (zombies do not count).
pub fn group_alive(pgid: libc::pid_t) -> bool {
    let proc_root = std::path::Path::new("/proc");
    let Ok(entries) = std::fs::read_dir(proc_root) else { return false };
    entries.flatten().filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()).any(|pid| crate::procfs::stat(proc_root, pid).is_ok_and(|s| s.pgrp == pgid as u64 && !s.zombie))
}

/// In the child: report our pid, then block until the recorder releases the gate.
fn wait_at_gate([gate_read, gate_write, pid_read, pid_write]: [i32; 4]) -> io::Result<()> {
    // SAFETY: plain syscalls on fds this child inherited.
    unsafe {
        libc::close(gate_write);
        libc::close(pid_read);
        let pid = libc::getpid().to_ne_bytes();
        if libc::write(pid_write, pid.as_ptr().cast(), 4) != 4 {
            return Err(io::Error::last_os_error());
        }
        libc::close(pid_write);
        let mut byte = 0u8;
        loop {
            match libc::read(gate_read, (&raw mut byte).cast(), 1) {
                1 => return Ok(()),
                // The recorder went away without releasing us: do not run unrecorded.
                0 => return Err(io::Error::other("damo-trace exited before starting the command")),
                _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
                _ => return Err(io::Error::last_os_error()),
            }
        }
    }
}

fn pipe() -> Result<(File, File)> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills two fds on success; O_CLOEXEC keeps them out of the exec'd program.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error()).context("pipe2 failed");
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (File::from(OwnedFd::from_raw_fd(fds[0])), File::from(OwnedFd::from_raw_fd(fds[1]))) })
}

#[cfg(test)]
mod tests {
    use std::{fs, thread, time::Duration};

    use super::*;

    fn exe_of(pid: u32) -> std::path::PathBuf {
        fs::read_link(format!("/proc/{pid}/exe")).unwrap()
    }

    #[test]
    fn command_waits_for_release_then_runs() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let gated = GatedChild::spawn(&format!("touch '{}'", marker.display()), &LaunchOptions::default()).unwrap();
        thread::sleep(Duration::from_millis(200));
        assert!(!marker.exists(), "the command ran before release");
        assert_eq!(exe_of(gated.pid()), exe_of(std::process::id()), "child must still be pre-exec");
        let status = gated.release().unwrap().wait().unwrap();
        assert!(status.success());
        assert!(marker.exists(), "the command did not run after release");
    }

    #[test]
    fn dropped_gate_never_runs_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let gated = GatedChild::spawn(&format!("touch '{}'", marker.display()), &LaunchOptions::default()).unwrap();
        assert!(gated.abandon().is_err(), "the start must report that it was abandoned");
        thread::sleep(Duration::from_millis(100));
        assert!(!marker.exists());
    }

    #[test]
    fn bad_command_lines_are_refused() {
        let none = LaunchOptions::default();
        assert!(GatedChild::spawn("", &none).is_err());
        assert!(GatedChild::spawn("echo 'unclosed", &none).is_err());
        assert!(GatedChild::spawn("true", &LaunchOptions { user: Some("no-such-user-damo-trace"), ..none.clone() }).is_err());
        let e = lookup_user("4000000000").unwrap_err().to_string();
        assert!(e.contains("no passwd entry"), "{e}");
    }

    #[test]
    fn a_user_gets_its_own_environment_basics_and_nothing_secret() {
        let root = lookup_user("0").unwrap();
        assert_eq!((root.name.as_str(), root.uid, root.gid), ("root", 0, 0));
        let ours = [("HOME", "/root"), ("AWS_SECRET_ACCESS_KEY", "x"), ("LD_PRELOAD", "/tmp/evil.so"), ("TERM", "xterm"), ("LC_ALL", "C"), ("PATH", "/root/bin:/usr/bin")];
        let user = User { name: "alice".into(), uid: 1001, gid: 1001, home: "/home/alice".into(), shell: "/bin/bash".into(), groups: vec![1001, 27] };
        let env: std::collections::BTreeMap<String, String> =
            user.environment(ours.iter().map(|(k, v)| ((*k).into(), (*v).into()))).into_iter().map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap())).collect();
        let expected = [("HOME", "/home/alice"), ("LC_ALL", "C"), ("LOGNAME", "alice"), ("PATH", USER_PATH), ("SHELL", "/bin/bash"), ("TERM", "xterm"), ("USER", "alice")];
        assert_eq!(env, expected.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    }

    #[test]
    fn a_stopped_command_gets_to_handle_its_sigterm() {
        // A stopped process dies of a default-action SIGTERM anyway; one that handles it (this
        // shell's trap) needs SIGCONT to run its handler before SIGKILL comes.
        let gated = GatedChild::spawn("sh -c 'trap \"exit 0\" TERM; while :; do sleep 0.05; done'", &LaunchOptions { own_group: true, ..Default::default() }).unwrap();
        let mut child = gated.release().unwrap();
        thread::sleep(Duration::from_millis(200));
        // SAFETY: stopping the group of the child we started.
        unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGSTOP) };
        thread::sleep(Duration::from_millis(100));
        assert!(!end_command(&mut child, Duration::from_secs(5)), "the stopped shell must get to run its SIGTERM trap");
    }

    #[test]
    fn ending_a_command_ends_its_process_group() {
        // A shell that ignores SIGTERM, with a child sleeping: both must be gone, the
        // shell by SIGKILL after the grace period.
        let gated = GatedChild::spawn("sh -c 'trap \"\" TERM; sleep 1000 & wait'", &LaunchOptions { own_group: true, ..Default::default() }).unwrap();
        let mut child = gated.release().unwrap();
        let pgid = child.id() as libc::pid_t;
        thread::sleep(Duration::from_millis(300));
        assert!(group_alive(pgid));
        let started = std::time::Instant::now();
        assert!(end_command(&mut child, Duration::from_millis(500)), "the shell ignores SIGTERM: SIGKILL was needed");
        assert!(started.elapsed() >= Duration::from_millis(500));
        assert!(!group_alive(pgid), "a process of the command's group survived");
    }
}
