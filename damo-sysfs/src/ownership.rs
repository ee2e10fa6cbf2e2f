//! Which kdamonds damo-trace started: "index pid" lines in a state file under /run (gone at
//! reboot, like the kdamonds). A kdamond is ours only while both match: one restarted by
//! someone else has a new pid and is not ours any more.
//!
//! Whoever can write this file can make `stop` and `tune` act on a kdamond, so it is trusted
//! only as root made it: the directory is created 0700 and must be a real directory (not a
//! symlink) owned by root or by us and not writable by group or others; the file is opened
//! without following symlinks and must be a regular file with the same owner and mode rules.
//! Anything else is refused with the reason, never repaired: we do not chmod or chown what
//! we did not create.

use std::{
    fs,
    io::{self, Read, Write},
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _, Result};

/// Where the state lives; [`RUN_DIR_ENV`] moves it (tests use a temporary directory).
pub const RUN_DIR: &str = "/run/damo-trace";
pub const RUN_DIR_ENV: &str = "DAMO_TRACE_RUN_DIR";
const FILE: &str = "owned";
/// Far above any real state (one short line per kdamond).
const MAX_SIZE: u64 = 64 * 1024;

/// Whether `entries` (index and pid, as [`Ownership::entries`] reads them) claim kdamond
/// `idx` now running as `pid`: both must match, a kdamond restarted by someone else has a new
/// pid and is not ours any more.
pub fn claims(entries: &[(usize, u32)], idx: usize, pid: Option<u32>) -> bool {
    pid.is_some_and(|pid| entries.contains(&(idx, pid)))
}

pub struct Ownership {
    dir: PathBuf,
}

impl Ownership {
    /// The state directory `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `/run/damo-trace`, or `$DAMO_TRACE_RUN_DIR` when set.
    pub fn system() -> Self {
        Self::new(std::env::var_os(RUN_DIR_ENV).map_or_else(|| PathBuf::from(RUN_DIR), PathBuf::from))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn file(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The entries, once the directory and file pass the checks; none when neither exists.
    pub fn entries(&self) -> Result<Vec<(usize, u32)>> {
        if !check_dir(&self.dir)? {
            return Ok(Vec::new());
        }
        let path = self.file();
        let file = match fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(open_error(e, &path)),
        };
        check_owner_and_mode(&file.metadata()?, &path, "file")?;
        let mut text = String::new();
        file.take(MAX_SIZE).read_to_string(&mut text).with_context(|| format!("failed to read {}", path.display()))?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let (idx, pid) = l.split_once(' ')?;
                Some((idx.trim().parse().ok()?, pid.trim().parse().ok()?))
            })
            .collect())
    }

    /// Whether kdamond `idx`, now running as `pid`, is one we started (index and pid match).
    pub fn is_ours(&self, entries: &[(usize, u32)], idx: usize, pid: Option<u32>) -> bool {
        claims(entries, idx, pid)
    }

    /// Indices we started, whatever their pid now: a kdamond of ours that stopped by itself
    /// (its target exited) has no pid left to compare, and `start` may reuse its slot.
    pub fn indices(&self) -> Result<Vec<usize>> {
        Ok(self.entries()?.into_iter().map(|(i, _)| i).collect())
    }

    /// Replaces the entries: written whole into a new file (O_EXCL, O_NOFOLLOW, 0600) and
    /// renamed over the old one, so a crash never leaves half a file.
    pub fn replace(&self, entries: &[(usize, u32)]) -> Result<()> {
        if !check_dir(&self.dir)? {
            // /run itself may be missing (a bare initramfs, as in the VM tests); it is made with
            // the usual mode, only our own directory gets 0700 and the checks.
            if let Some(parent) = self.dir.parent() {
                fs::create_dir_all(parent).with_context(|| format!("failed to create {}", parent.display()))?;
            }
            fs::DirBuilder::new().mode(0o700).create(&self.dir).with_context(|| format!("failed to create {}", self.dir.display()))?;
            check_dir(&self.dir)?;
        }
        if let Err(e) = self.entries() {
            // An existing file we do not trust is left for an administrator to look at.
            return Err(e.context("refusing to replace it"));
        }
        let text: String = entries.iter().map(|(i, p)| format!("{i} {p}\n")).collect();
        let tmp = self.dir.join(format!(".{FILE}.{}", std::process::id()));
        // Left behind only by a crash of a process with our pid; ours to remove.
        let _ = fs::remove_file(&tmp);
        let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&tmp).with_context(|| format!("failed to create {}", tmp.display()))?;
        let written = file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).and_then(|()| fs::rename(&tmp, self.file()));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("failed to write {}", self.file().display()));
        }
        Ok(())
    }
}

/// Whether the state directory exists; an error when it exists but is not to be trusted.
fn check_dir(dir: &Path) -> Result<bool> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(open_error(e, dir)),
    };
    if meta.file_type().is_symlink() {
        bail!("refusing to trust {}: it is a symlink (damo-trace's state directory must be a directory root made)", dir.display());
    }
    if !meta.is_dir() {
        bail!("refusing to trust {}: it is not a directory", dir.display());
    }
    check_owner_and_mode(&meta, dir, "directory")?;
    Ok(true)
}

fn check_owner_and_mode(meta: &fs::Metadata, path: &Path, what: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if what == "file" && !meta.is_file() {
        bail!("refusing to trust {}: it is not a regular file", path.display());
    }
    if meta.uid() != 0 && meta.uid() != euid {
        bail!("refusing to trust {}: the {what} belongs to uid {}, not root; whoever owns it could make damo-trace stop or tune another tool's kdamond. Remove it as root", path.display(), meta.uid());
    }
    if meta.mode() & 0o022 != 0 {
        bail!("refusing to trust {}: the {what} is writable by group or others (mode {:o}). Remove it as root", path.display(), meta.mode() & 0o7777);
    }
    Ok(())
}

fn open_error(e: io::Error, path: &Path) -> anyhow::Error {
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => anyhow::anyhow!("permission denied reading {}: damo-trace's state is readable by root only (run it with sudo)", path.display()),
        Some(libc::ELOOP) => anyhow::anyhow!("refusing to trust {}: it is a symlink", path.display()),
        _ => anyhow::Error::new(e).context(format!("failed to open {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn the_directory_is_created_0700_and_the_file_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let o = Ownership::new(tmp.path().join("run/damo-trace"));
        assert!(o.entries().unwrap().is_empty(), "no state yet is no entries");
        o.replace(&[(0, 4000), (2, 4002)]).unwrap();
        assert_eq!(mode(o.dir()), 0o700);
        assert_eq!(mode(&o.file()), 0o600);
        assert_eq!(o.entries().unwrap(), [(0, 4000), (2, 4002)]);
        assert_eq!(fs::read_dir(o.dir()).unwrap().count(), 1, "no temporary file left behind");
    }

    #[test]
    fn a_symlinked_directory_is_refused_and_its_target_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::write(elsewhere.join(FILE), "0 79\n").unwrap();
        symlink(&elsewhere, tmp.path().join("run")).unwrap();
        let o = Ownership::new(tmp.path().join("run"));
        let e = o.entries().unwrap_err().to_string();
        assert!(e.contains("is a symlink"), "{e}");
        assert!(o.replace(&[(1, 5)]).is_err());
        assert_eq!(fs::read_to_string(elsewhere.join(FILE)).unwrap(), "0 79\n");
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 1);
    }

    #[test]
    fn a_symlinked_or_writable_state_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let o = Ownership::new(tmp.path().join("run"));
        o.replace(&[]).unwrap();
        let planted = tmp.path().join("planted");
        fs::write(&planted, "0 79\n").unwrap();
        fs::remove_file(o.file()).unwrap();
        symlink(&planted, o.file()).unwrap();
        let e = o.entries().unwrap_err().to_string();
        assert!(e.contains("symlink"), "{e}");
        assert!(o.replace(&[(1, 5)]).is_err(), "an untrusted file is not silently replaced");
        assert_eq!(fs::read_to_string(&planted).unwrap(), "0 79\n");

        fs::remove_file(o.file()).unwrap();
        fs::write(o.file(), "0 79\n").unwrap();
        fs::set_permissions(o.file(), fs::Permissions::from_mode(0o666)).unwrap();
        let e = o.entries().unwrap_err().to_string();
        assert!(e.contains("writable by group or others"), "{e}");
        assert_eq!(mode(&o.file()), 0o666, "never chmod what we did not create");
    }

    #[test]
    fn a_state_file_of_another_user_is_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: chown to another user needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let o = Ownership::new(tmp.path().join("run"));
        o.replace(&[(0, 79)]).unwrap();
        std::os::unix::fs::chown(o.file(), Some(65534), None).unwrap();
        let e = o.entries().unwrap_err().to_string();
        assert!(e.contains("belongs to uid 65534"), "{e}");
        std::os::unix::fs::chown(o.file(), Some(0), None).unwrap();
        std::os::unix::fs::chown(o.dir(), Some(65534), None).unwrap();
        let e = o.entries().unwrap_err().to_string();
        assert!(e.contains("belongs to uid 65534") && e.contains("directory"), "{e}");
    }
}
