//! Opening files that records name or users give: regular files only.
//!
//! damo-trace runs as root and reads paths other users chose (`-i`, the binaries a record
//! names). Opening a FIFO blocks until someone writes to it, `/dev/zero` never ends, and
//! opening a terminal or another device can act on it. So the path is first opened with
//! `O_PATH`, which opens nothing behind it (no device open, no FIFO wait), its type checked on
//! that descriptor (`fstat`), and only a regular file is reopened for reading, through
//! `/proc/self/fd`: the same inode, whatever the path names by then.

use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt},
    path::Path,
};

/// What a path is when it is not a regular file, as an error.
#[derive(Debug, thiserror::Error)]
#[error("is {0}, not a regular file")]
pub struct NotRegular(pub &'static str);

/// Opens `path` for reading if it is a regular file (symlinks followed). An error of kind
/// `InvalidInput` wrapping [`NotRegular`] says what else it is.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let handle = OpenOptions::new().read(true).custom_flags(libc::O_PATH | libc::O_CLOEXEC).open(path)?;
    let meta = handle.metadata()?;
    require_regular(&meta)?;
    let by_fd = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&handle));
    let flags = libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    let file = match OpenOptions::new().read(true).custom_flags(flags).open(&by_fd) {
        Ok(f) => f,
        // No /proc (a minimal container): open the path, and check below that it is the
        // inode just checked.
        Err(e) if e.kind() == io::ErrorKind::NotFound => OpenOptions::new().read(true).custom_flags(flags).open(path)?,
        Err(e) => return Err(e),
    };
    let now = file.metadata()?;
    require_regular(&now)?;
    if (now.dev(), now.ino()) != (meta.dev(), meta.ino()) {
        return Err(io::Error::other(format!("{} was replaced while being opened", path.display())));
    }
    Ok(file)
}

fn require_regular(meta: &std::fs::Metadata) -> io::Result<()> {
    let t = meta.file_type();
    let kind = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a file"
    };
    Err(io::Error::new(io::ErrorKind::InvalidInput, NotRegular(kind)))
}

/// Reads all of `file`, charging its size to `meter` before allocating; a file that grows
/// while it is read (a record being written) is charged for what it grew by.
pub fn read_all(file: &mut File, meter: &mut crate::budget::Meter) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let len = file.metadata()?.len();
    meter.charge(len)?;
    let mut data = Vec::new();
    data.try_reserve_exact(usize::try_from(len).unwrap_or(usize::MAX)).map_err(|_| meter.over())?;
    // At most the budget left past the size seen: a file that keeps growing (or lies about
    // its size) stops there.
    file.take(len.saturating_add(meter.available()).saturating_add(1)).read_to_end(&mut data)?;
    let extra = (data.len() as u64).saturating_sub(len);
    meter.charge(extra)?;
    Ok(data)
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    OverBudget(#[from] crate::budget::OverBudget),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(path: &Path) -> String {
        let e = open_regular(path).expect_err("must be refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        e.to_string()
    }

    #[test]
    fn only_regular_files_open_and_a_fifo_does_not_block() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Nobody writes the FIFO: an open for reading would block forever.
        let t = std::time::Instant::now();
        assert!(refused(&fifo).contains("FIFO"));
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        assert!(refused(tmp.path()).contains("directory"));
        assert!(refused(Path::new("/dev/zero")).contains("character device"));
        let file = tmp.path().join("f");
        std::fs::write(&file, b"abc").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let mut f = open_regular(&link).expect("a symlink to a regular file opens");
        let data = read_all(&mut f, &mut crate::budget::Meter::with_limit(10)).unwrap();
        assert_eq!(data, b"abc");
        let mut f = open_regular(&file).unwrap();
        assert!(matches!(read_all(&mut f, &mut crate::budget::Meter::with_limit(2)), Err(ReadError::OverBudget(_))));
        std::os::unix::fs::symlink(&fifo, tmp.path().join("to-fifo")).unwrap();
        assert!(refused(&tmp.path().join("to-fifo")).contains("FIFO"));
    }
}
