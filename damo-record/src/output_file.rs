//! Output files that are safe to write as root in a directory others can write to.
//!
//! Every file damo-trace writes (records, conversions, report images, flamegraphs, exports,
//! the cache) is made the way coreutils' `install` and perf's `-o` make theirs:
//! - a temporary file `<name>.tmp-<pid>` is created in the target directory with
//!   `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC`, relative to a descriptor of that directory, so a
//!   planted symlink or file is never opened, truncated or followed;
//! - its mode is set on the descriptor (`fchmod`), never by path;
//! - it is written, `fsync`ed (but the cache's copies: [`OutputOptions::durable`]) and renamed
//!   into place only when the run succeeded; without
//!   `replace` the rename is `renameat2(RENAME_NOREPLACE)`, so a file that appeared meanwhile
//!   is never replaced;
//! - a destination that exists but is not a regular file (a symlink, FIFO, device such as
//!   `/dev/null`, directory) is an error and is left untouched, `replace` or not;
//! - a failed run removes only its own temporary file (checked by device and inode first).
//!
//! The parent directory is opened by its path as given (following symlinks there, as the user
//! named it); only the last component, the one a hostile user can plant in a shared
//! directory, is never followed.

use std::{
    ffi::{OsStr, OsString},
    fs::File,
    io::{self, Write},
    os::{fd::OwnedFd, unix::ffi::OsStrExt},
    path::{Path, PathBuf},
};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, RenameFlags, CWD};

/// The most open permission an output gets: no setuid, setgid or sticky bit.
pub const MAX_MODE: u32 = 0o777;

/// Parses `--output_permission`: octal digits (an optional `0o`), at most [`MAX_MODE`].
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let valid = !digits.is_empty() && digits.len() <= 4 && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
    u32::from_str_radix(digits, 8).ok().filter(|&m| valid && m <= MAX_MODE).ok_or_else(|| format!("{text:?} is not a permission from 000 to 777 in octal (setuid, setgid and sticky bits are refused)"))
}

#[derive(Debug, Clone, Copy)]
pub struct OutputOptions {
    /// Permission bits, at most [`MAX_MODE`] (more is masked off).
    pub mode: u32,
    /// Narrow `mode` by the umask, as any tool's output is; otherwise it is set exactly
    /// (`--output_permission`: what the user asked for, as damo does).
    pub umask: bool,
    /// Replace an existing regular file (`--force`); without it an existing path is an error.
    pub replace: bool,
    /// `fsync` the file and its directory on commit, so a crash leaves it whole or absent.
    /// Only a copy that is checked on every read and can be made again (the cache's) skips it.
    pub durable: bool,
}

impl OutputOptions {
    /// What reports use: 0666 less the umask like any tool's output, replacing an earlier
    /// report as damo does (atomically: the old file is never written through).
    pub const REPORT: Self = Self { mode: 0o666, umask: true, replace: true, durable: true };

    /// A mode set exactly (not umasked); an existing file is replaced only if `replace`.
    pub const fn exact(mode: u32, replace: bool) -> Self {
        Self { mode, umask: false, replace, durable: true }
    }

    /// Without the `fsync`s on commit (see [`Self::durable`]).
    pub const fn volatile(self) -> Self {
        Self { durable: false, ..self }
    }
}

/// The error messages carry their cause (one line each; no `source()` to print it twice).
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{0} exists; pass --force to replace it")]
    Exists(String),
    #[error("{path} is {kind}, not a regular file: damo-trace does not write to it")]
    NotRegular { path: String, kind: &'static str },
    #[error("{0} does not name a file")]
    NoFileName(String),
    #[error("failed to create {path}: {cause}")]
    Create { path: String, cause: io::Error },
    #[error("failed to write {path}: {cause}")]
    Write { path: String, cause: io::Error },
}

impl From<OutputError> for io::Error {
    fn from(e: OutputError) -> Self {
        let kind = match &e {
            OutputError::Exists(_) => io::ErrorKind::AlreadyExists,
            OutputError::Create { cause, .. } | OutputError::Write { cause, .. } => cause.kind(),
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Under the temporary name.
    Temp,
    /// Already at the destination (see [`OutputFile::publish_early`]).
    Published,
    /// Committed, kept or removed: nothing left to do on drop.
    Done,
}

/// A file being written; see the module's documentation. Dropped before [`Self::commit`],
/// its temporary file is removed.
#[derive(Debug)]
pub struct OutputFile {
    dir: OwnedFd,
    /// The destination as the caller named it (for messages).
    path: PathBuf,
    name: OsString,
    temp: OsString,
    file: File,
    /// Device and inode of our file: what removal checks before unlinking a name.
    id: (u64, u64),
    replace: bool,
    durable: bool,
    state: State,
}

fn kind_of(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Symlink => "a symbolic link",
        FileType::Directory => "a directory",
        FileType::Fifo => "a FIFO",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        _ => "not a regular file",
    }
}

impl OutputFile {
    /// Starts writing `path`: checks the destination, then creates the temporary file.
    pub fn create(path: &Path, options: OutputOptions) -> Result<Self, OutputError> {
        let shown = path.display().to_string();
        let name = path.file_name().filter(|_| !path.as_os_str().as_bytes().ends_with(b"/")).ok_or_else(|| OutputError::NoFileName(shown.clone()))?;
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let dir = rfs::openat(CWD, parent, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| OutputError::Create { path: shown.clone(), cause: io::Error::new(e.kind(), format!("{}: {e}", parent.display())) })?;
        Self::create_in(dir, path, name, options)
    }

    /// Like [`Self::create`], in a directory already open (`name` is a single component).
    pub fn create_in(dir: OwnedFd, path: &Path, name: &OsStr, options: OutputOptions) -> Result<Self, OutputError> {
        let shown = || path.display().to_string();
        check_destination(&dir, name, options.replace, path)?;
        let pid = std::process::id();
        let mut attempt = 0u32;
        let (file, temp) = loop {
            let mut temp = name.to_os_string();
            temp.push(if attempt == 0 { format!(".tmp-{pid}") } else { format!(".tmp-{pid}-{attempt}") });
            // An exact mode: created 0600, so no one else can open it before fchmod sets it.
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let create_mode = if options.umask { options.mode & MAX_MODE } else { 0o600 };
            match rfs::openat(&dir, temp.as_os_str(), flags, Mode::from_raw_mode(create_mode)) {
                Ok(fd) => break (File::from(fd), temp),
                // A stale temporary file of an earlier run with our pid, or something planted.
                Err(rustix::io::Errno::EXIST) if attempt < 64 => attempt += 1,
                Err(e) => return Err(OutputError::Create { path: shown(), cause: e.into() }),
            }
        };
        let mut out = Self { dir, path: path.to_path_buf(), name: name.to_os_string(), temp, file, id: (0, 0), replace: options.replace, durable: options.durable, state: State::Temp };
        let stat = rfs::fstat(&out.file).map_err(|e| OutputError::Create { path: shown(), cause: e.into() })?;
        out.id = (stat.st_dev, stat.st_ino);
        if !options.umask {
            rfs::fchmod(&out.file, Mode::from_raw_mode(options.mode & MAX_MODE)).map_err(|e| OutputError::Create { path: shown(), cause: e.into() })?;
        }
        Ok(out)
    }

    /// Where the data is now: the temporary file, or the destination once published.
    pub fn current_path(&self) -> PathBuf {
        match self.state {
            State::Published | State::Done => self.path.clone(),
            State::Temp => self.path.with_file_name(&self.temp),
        }
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Moves the file to its destination now if nothing is there (a stream that must be
    /// readable at its final name while it grows and after a crash). Returns false, leaving
    /// it under its temporary name, when the destination exists and `replace` was given.
    pub fn publish_early(&mut self) -> Result<bool, OutputError> {
        if self.state != State::Temp {
            return Ok(self.state == State::Published);
        }
        match self.rename_noreplace() {
            Ok(()) => {
                self.state = State::Published;
                Ok(true)
            }
            Err(OutputError::Exists(_)) if self.replace => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Syncs the file (when durable) and moves it into place.
    pub fn commit(mut self) -> Result<(), OutputError> {
        let shown = self.path.display().to_string();
        if self.durable {
            self.file.sync_all().map_err(|cause| OutputError::Write { path: shown.clone(), cause })?;
        }
        if self.state == State::Temp {
            if self.replace {
                check_destination(&self.dir, &self.name, true, &self.path)?;
                rfs::renameat(&self.dir, self.temp.as_os_str(), &self.dir, self.name.as_os_str()).map_err(|e| OutputError::Create { path: shown.clone(), cause: e.into() })?;
            } else {
                self.rename_noreplace()?;
            }
        }
        self.state = State::Done;
        if !self.durable {
            return Ok(());
        }
        // The rename itself must survive a crash too.
        rfs::fsync(&self.dir).map_err(|e| OutputError::Write { path: shown, cause: e.into() })
    }

    /// Removes our file (only if the name still is our inode), wherever it is.
    pub fn discard(mut self) {
        self.remove_own();
    }

    /// Leaves the file where it is (e.g. a cut record) and says where that is.
    pub fn keep(mut self) -> PathBuf {
        let at = self.current_path();
        self.state = State::Done;
        at
    }

    fn remove_own(&mut self) {
        let name = if self.state == State::Published { self.name.clone() } else { self.temp.clone() };
        if self.state != State::Done {
            if let Ok(st) = rfs::statat(&self.dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                if (st.st_dev, st.st_ino) == self.id {
                    let _ = rfs::unlinkat(&self.dir, name.as_os_str(), AtFlags::empty());
                }
            }
        }
        self.state = State::Done;
    }

    fn rename_noreplace(&self) -> Result<(), OutputError> {
        let shown = || self.path.display().to_string();
        match rfs::renameat_with(&self.dir, self.temp.as_os_str(), &self.dir, self.name.as_os_str(), RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::EXIST) => Err(OutputError::Exists(shown())),
            // File systems without renameat2 flags: a hard link also never replaces.
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => match rfs::linkat(&self.dir, self.temp.as_os_str(), &self.dir, self.name.as_os_str(), AtFlags::empty()) {
                Ok(()) => {
                    let _ = rfs::unlinkat(&self.dir, self.temp.as_os_str(), AtFlags::empty());
                    Ok(())
                }
                Err(rustix::io::Errno::EXIST) => Err(OutputError::Exists(shown())),
                Err(e) => Err(OutputError::Create { path: shown(), cause: e.into() }),
            },
            Err(e) => Err(OutputError::Create { path: shown(), cause: e.into() }),
        }
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        // A published file is the caller's record; only an unfinished temporary file goes.
        if self.state == State::Temp {
            self.remove_own();
        }
    }
}

/// An existing destination must be a regular file, and replacing it must be allowed.
fn check_destination(dir: &OwnedFd, name: &OsStr, replace: bool, path: &Path) -> Result<(), OutputError> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => {
            let file_type = FileType::from_raw_mode(st.st_mode);
            if file_type != FileType::RegularFile {
                Err(OutputError::NotRegular { path: path.display().to_string(), kind: kind_of(file_type) })
            } else if !replace {
                Err(OutputError::Exists(path.display().to_string()))
            } else {
                Ok(())
            }
        }
        Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(OutputError::Create { path: path.display().to_string(), cause: e.into() }),
    }
}

/// Writes `bytes` to `path` as one output file.
pub fn write(path: &Path, bytes: &[u8], options: OutputOptions) -> Result<(), OutputError> {
    let mut out = OutputFile::create(path, options)?;
    out.write_all(bytes).map_err(|cause| OutputError::Write { path: path.display().to_string(), cause })?;
    out.commit()
}

/// Writes `path` with what `fill` writes into a buffered writer, as one output file.
pub fn write_with<E: From<OutputError>>(path: &Path, options: OutputOptions, fill: impl FnOnce(&mut io::BufWriter<OutputFile>) -> Result<(), E>) -> Result<(), E> {
    let mut w = io::BufWriter::with_capacity(1 << 16, OutputFile::create(path, options)?);
    fill(&mut w)?;
    let out = w.into_inner().map_err(|e| OutputError::Write { path: path.display().to_string(), cause: e.into_error() })?;
    Ok(out.commit()?)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    const NEW: OutputOptions = OutputOptions::exact(0o640, false);
    const FORCE: OutputOptions = OutputOptions::exact(0o600, true);

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn modes_are_octal_up_to_0777() {
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0o644"), Ok(0o644));
        assert_eq!(parse_mode("0755"), Ok(0o755));
        for bad in ["7777", "4755", "1777", "999", "", "0o", "-1", "77777", "6 00"] {
            let e = parse_mode(bad).expect_err(bad);
            assert!(!e.contains('\n') && e.contains("000 to 777"), "{e}");
        }
    }

    #[test]
    fn a_new_file_appears_only_when_committed_with_its_exact_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("out.dtr");
        let mut out = OutputFile::create(&path, NEW).unwrap();
        out.write_all(b"data").unwrap();
        assert!(!path.exists(), "nothing at the destination before commit");
        assert_eq!(names(tmp.path()), [format!("out.dtr.tmp-{}", std::process::id())]);
        out.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777, 0o640, "fchmod, not the umask");
        assert_eq!(names(tmp.path()), ["out.dtr"]);
        // Reports follow the umask (0022 or 0002 by default: never more than 0666).
        let report = tmp.path().join("report.svg");
        write(&report, b"<svg/>", OutputOptions::REPORT).unwrap();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status.lines().find_map(|l| l.strip_prefix("Umask:")).map(|m| u32::from_str_radix(m.trim(), 8).unwrap()).unwrap();
        assert_eq!(std::fs::metadata(&report).unwrap().permissions().mode() & 0o7777, 0o666 & !umask);
    }

    #[test]
    fn an_existing_file_needs_replace_and_survives_a_failed_run() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("out.dtr");
        std::fs::write(&path, b"old").unwrap();
        let e = OutputFile::create(&path, NEW).unwrap_err();
        assert!(matches!(e, OutputError::Exists(_)), "{e}");
        let mut out = OutputFile::create(&path, FORCE).unwrap();
        out.write_all(b"new, unfinished").unwrap();
        drop(out);
        assert_eq!(std::fs::read(&path).unwrap(), b"old", "a failed --force run leaves the old file");
        assert_eq!(names(tmp.path()), ["out.dtr"], "and removes its temporary file");
        write(&path, b"new", FORCE).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn a_planted_symlink_is_neither_followed_nor_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = tmp.path().join("damon.data");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        for options in [NEW, FORCE] {
            let e = OutputFile::create(&link, options).unwrap_err();
            assert!(matches!(e, OutputError::NotRegular { kind: "a symbolic link", .. }), "{e}");
        }
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777, 0o644);
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        // A symlink planted at the temporary name is skipped, not followed.
        let temp_link = tmp.path().join(format!("new.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &temp_link).unwrap();
        write(&tmp.path().join("new"), b"x", NEW).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&temp_link).unwrap().file_type().is_symlink(), "not removed either");
    }

    #[test]
    fn fifos_and_directories_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo");
        rustix::fs::mknodat(CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        let e = OutputFile::create(&fifo, FORCE).unwrap_err();
        assert!(matches!(e, OutputError::NotRegular { kind: "a FIFO", .. }), "{e}");
        let e = OutputFile::create(tmp.path(), FORCE).unwrap_err();
        assert!(matches!(e, OutputError::NotRegular { kind: "a directory", .. }), "{e}");
        assert!(matches!(OutputFile::create(Path::new("/"), FORCE).unwrap_err(), OutputError::NoFileName(_)));
        assert_eq!(names(tmp.path()), ["fifo"]);
    }

    #[test]
    fn an_early_published_stream_is_at_its_name_and_a_second_one_waits_in_its_temp() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("rec");
        let mut first = OutputFile::create(&path, FORCE).unwrap();
        let mut second = OutputFile::create(&path, FORCE).unwrap();
        assert!(first.publish_early().unwrap());
        first.write_all(b"first").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first", "readable while it grows");
        assert!(!second.publish_early().unwrap(), "the name is taken: stays a temporary file");
        assert_ne!(second.current_path(), path);
        second.write_all(b"second").unwrap();
        first.commit().unwrap();
        second.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second", "the last rename wins");
        assert_eq!(names(tmp.path()), ["rec"]);
        // Without replace, a taken name is an error, not a silent replacement.
        let mut third = OutputFile::create(&tmp.path().join("other"), NEW).unwrap();
        std::fs::write(tmp.path().join("other"), b"raced").unwrap();
        assert!(matches!(third.publish_early(), Err(OutputError::Exists(_))));
        drop(third);
        assert_eq!(std::fs::read(tmp.path().join("other")).unwrap(), b"raced");
    }

    #[test]
    fn discard_removes_only_our_own_inode() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("rec");
        let mut out = OutputFile::create(&path, NEW).unwrap();
        assert!(out.publish_early().unwrap());
        // Someone replaced the published file: discarding must not delete theirs.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"theirs").unwrap();
        let ino = std::fs::metadata(&path).unwrap().ino();
        out.discard();
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), ino);
    }
}
