//! Waiting for a process we did not necessarily start to exit, without polling: a pidfd
//! becomes readable when its process exits (Linux 5.3+).

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
};

use anyhow::{Context, Result};
use tokio::io::{unix::AsyncFd, Interest};

pub struct PidFd(OwnedFd);

impl AsRawFd for PidFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl PidFd {
    pub fn open(pid: u32) -> Result<Self> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error()).with_context(|| format!("no process {pid}"));
        }
        // SAFETY: the fd was just created and is ours alone.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    }

    /// Completes when the process has exited.
    pub async fn exited(self) -> Result<()> {
        // SAFETY: the AsyncFd owns the pidfd, so it stays open while registered.
        let fd = unsafe { AsyncFd::register_with_interest(self, Interest::READABLE) }.map_err(|e| anyhow::anyhow!("failed to watch a pidfd: {e}"))?;
        let _guard = fd.readable().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::{process::Command, time::Duration};

    use super::*;

    #[test]
    fn completes_when_the_process_exits_not_before() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut child = Command::new("sleep").arg("0.3").spawn().unwrap();
            let exited = PidFd::open(child.id()).unwrap().exited();
            tokio::pin!(exited);
            tokio::select! {
                _ = &mut exited => panic!("reported exit while the process still runs"),
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            tokio::time::timeout(Duration::from_secs(5), exited).await.expect("exit not seen").unwrap();
            child.wait().unwrap();
        });
        assert!(PidFd::open(u32::MAX >> 2).is_err(), "a pid that does not exist");
    }
}
