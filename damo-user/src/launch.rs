//! Starts a target command held before `exec`, so the recording sees it from its first
//! instruction: the child blocks on a pipe until its pid is in the eBPF filter maps.

use std::{
    ffi::CString,
    fs::File,
    io::{self, Read, Write},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::process::CommandExt,
    },
    process::{Child, Command},
    thread::{self, JoinHandle},
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

/// The uid/gid of a user name, for `--user`.
pub fn lookup_user(name: &str) -> Result<(u32, u32)> {
    let c_name = CString::new(name).context("user name contains a NUL byte")?;
    // SAFETY: getpwnam returns a pointer into static storage or NULL; we copy out at once and
    // do not call it concurrently (single-threaded setup).
    let entry = unsafe { libc::getpwnam(c_name.as_ptr()) };
    if entry.is_null() {
        bail!("no such user: {name}");
    }
    // SAFETY: non-null result of getpwnam.
    Ok(unsafe { ((*entry).pw_uid, (*entry).pw_gid) })
}

impl GatedChild {
    /// Parses `command_line` like a shell would split words (no expansion) and starts it
    /// held; `user` runs it as that user instead of root.
    pub fn spawn(command_line: &str, user: Option<&str>) -> Result<Self> {
        let words = shell_words::split(command_line)
            .with_context(|| format!("cannot parse the command line: {command_line}"))?;
        let Some((program, args)) = words.split_first() else { bail!("the command line is empty") };
        let mut command = Command::new(program);
        command.args(args);
        if let Some(user) = user {
            let (uid, gid) = lookup_user(user)?;
            command.uid(uid).gid(gid);
        }
        let (gate_read, gate) = pipe()?;
        let (pid_read, pid_write) = pipe()?;
        let fds = [gate_read.as_raw_fd(), gate.as_raw_fd(), pid_read.as_raw_fd(), pid_write.as_raw_fd()];
        // SAFETY: only async-signal-safe calls (getpid, write, read, close) between fork and exec.
        unsafe { command.pre_exec(move || wait_at_gate(fds)) };
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
        let gated = GatedChild::spawn(&format!("touch '{}'", marker.display()), None).unwrap();
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
        let gated = GatedChild::spawn(&format!("touch '{}'", marker.display()), None).unwrap();
        assert!(gated.abandon().is_err(), "the start must report that it was abandoned");
        thread::sleep(Duration::from_millis(100));
        assert!(!marker.exists());
    }

    #[test]
    fn bad_command_lines_are_refused() {
        assert!(GatedChild::spawn("", None).is_err());
        assert!(GatedChild::spawn("echo 'unclosed", None).is_err());
        assert!(GatedChild::spawn("true", Some("no-such-user-damo-trace")).is_err());
    }
}
