//! Regular files mapped for reading, so that a text trace (damo's biggest format, 120 bytes a
//! region) is parsed in place: copying it out of the page cache took a fifth of its first
//! read's CPU.
//!
//! A mapped file that another program truncates while it is read raises SIGBUS at the first
//! touch of a page past its new end, which would kill the report with no message (exit 135).
//! While a map is alive, a SIGBUS at an address inside it prints which file it was and exits
//! with status 1; any other SIGBUS goes to the handler that was there before.

use std::{
    fs::File,
    io,
    ops::Deref,
    path::Path,
    sync::{
        atomic::{AtomicPtr, AtomicUsize, Ordering},
        Mutex, OnceLock,
    },
};

/// Maps guarded at once; a file opened past them is read instead ([`Mapped::open`]).
const SLOTS: usize = 8;

/// One guarded map: where it is and what to print when it is cut short. `start` is 0 when
/// free; it is set last and cleared first, so the handler sees a whole slot or none.
struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    message: AtomicPtr<u8>,
    message_len: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot { start: AtomicUsize::new(0), len: AtomicUsize::new(0), message: AtomicPtr::new(std::ptr::null_mut()), message_len: AtomicUsize::new(0) };

static SLOTS_IN_USE: [Slot; SLOTS] = [FREE; SLOTS];
/// Serializes taking and freeing slots (the handler only reads them).
static TAKING: Mutex<()> = Mutex::new(());
/// The SIGBUS action before ours, for faults outside every map.
static PREVIOUS: OnceLock<Option<libc::sigaction>> = OnceLock::new();

/// A regular file's bytes, mapped read-only.
pub struct Mapped {
    map: memmap2::Mmap,
    slot: usize,
}

impl Mapped {
    /// Maps `file` (opened from `path`, which the message names); `Ok(None)` when every
    /// guard slot is taken or the file is empty (mapping nothing is an error), so the caller
    /// reads it instead.
    pub fn open(file: &File, path: &Path) -> io::Result<Option<Mapped>> {
        if file.metadata()?.len() == 0 || !install_handler() {
            return Ok(None);
        }
        // SAFETY: a read-only private map; the bytes may change under it if the file is
        // written (as a read would see them), and a truncation is the SIGBUS guarded below.
        let map = unsafe { memmap2::MmapOptions::new().map(file) }?;
        let message = format!("damo-trace: {} was cut short while being read (another program truncated it)\n", path.display()).into_bytes().into_boxed_slice();
        let _taking = TAKING.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = SLOTS_IN_USE.iter().position(|s| s.start.load(Ordering::Acquire) == 0) else { return Ok(None) };
        let s = &SLOTS_IN_USE[slot];
        let len = message.len();
        s.message.store(Box::into_raw(message).cast::<u8>(), Ordering::Release);
        s.message_len.store(len, Ordering::Release);
        s.len.store(map.len(), Ordering::Release);
        s.start.store(map.as_ptr() as usize, Ordering::Release);
        Ok(Some(Mapped { map, slot }))
    }
}

impl Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        let _taking = TAKING.lock().unwrap_or_else(|e| e.into_inner());
        let s = &SLOTS_IN_USE[self.slot];
        s.start.store(0, Ordering::Release);
        let (message, len) = (s.message.swap(std::ptr::null_mut(), Ordering::AcqRel), s.message_len.load(Ordering::Acquire));
        if !message.is_null() {
            // SAFETY: the box stored by `open`, of `len` bytes, taken back once (swapped out).
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(message, len)) });
        }
    }
}

/// Installs the SIGBUS handler once; false if it could not be.
fn install_handler() -> bool {
    PREVIOUS
        .get_or_init(|| {
            // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value, filled in below.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = on_sigbus;
            action.sa_sigaction = handler as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: both pointers are valid sigaction structs for the call.
            let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
            let installed = unsafe { libc::sigemptyset(&mut action.sa_mask) == 0 && libc::sigaction(libc::SIGBUS, &action, &mut previous) == 0 };
            installed.then_some(previous)
        })
        .is_some()
}

/// A SIGBUS inside a guarded map: its message, and exit 1. Only async-signal-safe calls
/// (atomic loads, `write`, `_exit`).
extern "C" fn on_sigbus(_signal: libc::c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    // SAFETY: the kernel hands an SA_SIGINFO handler a valid siginfo.
    let addr = unsafe { (*info).si_addr() } as usize;
    for s in &SLOTS_IN_USE {
        let (start, len) = (s.start.load(Ordering::Acquire), s.len.load(Ordering::Acquire));
        if start != 0 && addr.wrapping_sub(start) < len {
            let (message, message_len) = (s.message.load(Ordering::Acquire), s.message_len.load(Ordering::Acquire));
            // SAFETY: the slot's message lives until the slot is freed, which its map's drop
            // does only after every read of the map, this one included, is over.
            unsafe {
                libc::write(2, message.cast(), message_len);
                libc::_exit(1);
            }
        }
    }
    // Not a mapped input's: the action before ours takes it when the access faults again.
    if let Some(Some(previous)) = PREVIOUS.get() {
        // SAFETY: `previous` is the action sigaction handed back when ours was installed.
        unsafe { libc::sigaction(libc::SIGBUS, previous, std::ptr::null_mut()) };
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Set in the child that [`a_truncation_while_mapped_is_an_error_naming_the_file`] runs.
    const CHILD: &str = "DAMO_TRACE_MAPPED_TEST_FILE";

    #[test]
    fn a_mapped_file_reads_as_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace");
        std::fs::write(&path, b"some bytes\n").unwrap();
        let file = File::open(&path).unwrap();
        let mapped = Mapped::open(&file, &path).unwrap().expect("a slot is free");
        assert_eq!(&*mapped, b"some bytes\n");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(Mapped::open(&File::open(&empty).unwrap(), &empty).unwrap().is_none(), "an empty file is read");
    }

    /// The child: maps the file, truncates it and reads past its new end.
    #[test]
    #[ignore = "run by a_truncation_while_mapped_is_an_error_naming_the_file in a child process"]
    fn truncated_while_mapped() {
        let Some(path) = std::env::var_os(CHILD) else { return };
        let path = Path::new(&path);
        let file = File::open(path).unwrap();
        let mapped = Mapped::open(&file, path).unwrap().expect("a slot is free");
        std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(0).unwrap();
        let byte = std::hint::black_box(mapped[mapped.len() - 1]);
        panic!("read {byte} past the end of a truncated file");
    }

    #[test]
    fn a_truncation_while_mapped_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace being rewritten");
        let mut f = File::create(&path).unwrap();
        f.write_all(&vec![b'x'; 1 << 16]).unwrap();
        drop(f);
        let out =
            std::process::Command::new(std::env::current_exe().unwrap()).args(["--exact", "mapped::tests::truncated_while_mapped", "--ignored", "--nocapture"]).env(CHILD, &path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&format!("damo-trace: {} was cut short while being read", path.display())), "{stderr}");
    }
}
