//! Process mappings as they happen: the side-band records perf writes for a software dummy
//! event (PERF_RECORD_MMAP2, COMM, FORK, EXIT), one event per CPU, read before each batch of
//! stack samples.
//!
//! Why this and not the alternatives (measured in docs/mappings.md): a stack sample reaches
//! the collector up to 100 ms after it was taken (wake-ups are batched), so reading
//! `/proc/<pid>/maps` when the first sample is seen missed every process that lived less than
//! that (40 % of the samples of a shell script's children). The kernel writes an mmap record
//! synchronously in `mmap` and `exec`, before the process can run code in the new mapping, so
//! a mapping is in these buffers before any sample that needs it is in the ring buffer: the
//! collector drains them first and loses nothing by construction, whatever its wake-up
//! latency. The record names the file by device and inode, so a module is identified (and
//! its build-id read) once, and a file of another mount namespace is told apart from the one
//! at the same path here. (`attr.build_id`, which would put the build-id in the record, is
//! left off: while such an event exists, a concurrent `perf record` 6.1 dies in its build-id
//! code, "assertion failed at util/build-id.c:1010", and nothing may break other tools.) Eager `/proc` reads on exec/fork events from eBPF would still
//! race (an exec'd process maps its libraries after exec, and may exit within a wake-up);
//! `bpf_get_stack(BPF_F_USER_BUILD_ID)` only covers frame-pointer stacks, needs the build-id
//! page resident (it falls back to raw addresses in NMI context) and quadruples each frame.
//!
//! The events are system-wide (pid -1 on every CPU): targets found later by fork following
//! need no event of their own, and a recording's cost is the side-band traffic of the whole
//! machine, a few KB per `exec`. The collector keeps the state of its targets only.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::atomic::{AtomicU64, Ordering},
};

use anyhow::{Context, Result};
use aya::util::online_cpus;
use aya_obj::generated::{perf_event_attr, perf_event_sample_format, perf_sw_ids, perf_type_id, PERF_FLAG_FD_CLOEXEC};

/// Data pages per CPU (512 KiB): about 150 `exec`s of a dynamically linked program between two
/// drains (one every 100 ms while samples flow, every second otherwise). Records that do not
/// fit are counted (`Sideband::lost`) and their processes fall back to /proc.
const DATA_PAGES: usize = 128;

const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_COMM: u32 = 3;
const PERF_RECORD_EXIT: u32 = 4;
const PERF_RECORD_FORK: u32 = 7;
const PERF_RECORD_MMAP2: u32 = 10;
const MISC_COMM_EXEC: u16 = 1 << 13;
const MISC_MMAP_BUILD_ID: u16 = 1 << 14;
/// `sample_id_all` with TID|TIME appends pid, tid and time to every record.
const SAMPLE_ID_LEN: usize = 16;

/// What happened to a process, with its CLOCK_MONOTONIC time (the clock of stack samples).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEvent {
    /// An executable mapping appeared (`mmap`, or the program and interpreter at `exec`).
    Mmap(MmapEvent),
    /// The process replaced its program: its mappings end here.
    Exec { pid: u32, ts_ns: u64 },
    /// A task was created: a process when `pid != ppid`, otherwise a thread.
    Fork { pid: u32, ppid: u32, tid: u32, ts_ns: u64 },
    /// A task ended; the process when `tid == pid`.
    Exit { pid: u32, tid: u32, ts_ns: u64 },
}

impl TaskEvent {
    pub fn ts_ns(&self) -> u64 {
        match *self {
            Self::Mmap(MmapEvent { ts_ns, .. }) | Self::Exec { ts_ns, .. } | Self::Fork { ts_ns, .. } | Self::Exit { ts_ns, .. } => ts_ns,
        }
    }
}

/// A file as the kernel names it: device, inode, inode generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub generation: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MmapEvent {
    pub pid: u32,
    pub ts_ns: u64,
    pub start: u64,
    pub len: u64,
    /// File offset of `start`.
    pub pgoff: u64,
    /// The file's device (`makedev(major, minor)`) and inode, and the inode's generation.
    pub file: FileId,
    /// As the process sees it: `/usr/bin/gzip`, `[vdso]`, `//anon` (JIT code).
    pub path: String,
}

/// The dummy events and their mapped buffers. Dropping it closes them.
pub struct Sideband {
    buffers: Vec<CpuBuffer>,
    scratch: Vec<u8>,
    /// Records read but not yet handed out (later than the last horizon).
    held: Vec<TaskEvent>,
    /// Records the kernel dropped because a buffer was full.
    pub lost: u64,
}

struct CpuBuffer {
    _fd: OwnedFd,
    base: *mut u8,
    map_len: usize,
    data_offset: usize,
    data_size: usize,
}

impl Drop for CpuBuffer {
    fn drop(&mut self) {
        // SAFETY: unmapping what `open_cpu` mapped, once.
        unsafe { libc::munmap(self.base.cast(), self.map_len) };
    }
}

impl Sideband {
    /// Opens a dummy event on every online CPU. Needs CAP_PERFMON (or root).
    pub fn open() -> Result<Self> {
        let cpus = online_cpus().map_err(|(path, e)| anyhow::anyhow!("failed to read {path}: {e}"))?;
        let buffers = cpus.into_iter().map(open_cpu).collect::<Result<_>>()?;
        Ok(Self { buffers, scratch: Vec::new(), held: Vec::new(), lost: 0 })
    }

    /// Hands the records of times up to `horizon_ns` to `f`, in time order; later ones wait
    /// for a later call. CPUs are read one after the other, so a record on one CPU may be
    /// read while an earlier one on another CPU is not yet (a fork on one CPU, the child's
    /// exec on another): records are applied only up to a time every CPU has been read past.
    /// `horizon_ns` should be a little before the time of the call (a record is stamped
    /// before it is written); `u64::MAX` takes everything.
    pub fn drain(&mut self, horizon_ns: u64, mut f: impl FnMut(TaskEvent)) {
        for buf in &mut self.buffers {
            // SAFETY: the metadata page is mapped for as long as `buf` lives; the kernel
            // writes data_head and we write data_tail, as perf_event_open(2) describes.
            let (head_ptr, tail_ptr) = unsafe { (&*buf.base.add(1024).cast::<AtomicU64>(), &*buf.base.add(1032).cast::<AtomicU64>()) };
            let head = head_ptr.load(Ordering::Acquire);
            let mut tail = tail_ptr.load(Ordering::Relaxed);
            // SAFETY: the data area is mapped for as long as `buf` lives.
            let data = unsafe { std::slice::from_raw_parts(buf.base.add(buf.data_offset), buf.data_size) };
            let at = |i: u64| data[(i as usize) % buf.data_size];
            while tail + 8 <= head {
                let mut header = [0u8; 8];
                for (i, b) in header.iter_mut().enumerate() {
                    *b = at(tail + i as u64);
                }
                let kind = u32::from_ne_bytes(header[0..4].try_into().unwrap());
                let misc = u16::from_ne_bytes(header[4..6].try_into().unwrap());
                let size = u64::from(u16::from_ne_bytes(header[6..8].try_into().unwrap()));
                if size < 8 || tail + size > head {
                    break;
                }
                self.scratch.clear();
                self.scratch.extend((8..size).map(|i| at(tail + i)));
                match parse(kind, misc, &self.scratch) {
                    Some(Parsed::Event(event)) => self.held.push(event),
                    Some(Parsed::Lost(n)) => self.lost += n,
                    None => {}
                }
                tail += size;
            }
            tail_ptr.store(tail, Ordering::Release);
        }
        // Stable: records of one CPU with equal times keep their order.
        self.held.sort_by_key(TaskEvent::ts_ns);
        let ready = self.held.partition_point(|e| e.ts_ns() <= horizon_ns);
        for event in self.held.drain(..ready) {
            f(event);
        }
    }

    /// Whether any record waits, read or not (cheap: one load per CPU).
    pub fn pending(&self) -> bool {
        self.buffers.iter().any(|buf| {
            // SAFETY: as in `drain`.
            let (head, tail) = unsafe { (&*buf.base.add(1024).cast::<AtomicU64>(), &*buf.base.add(1032).cast::<AtomicU64>()) };
            head.load(Ordering::Acquire) != tail.load(Ordering::Relaxed)
        }) || !self.held.is_empty()
    }
}

fn open_cpu(cpu: u32) -> Result<CpuBuffer> {
    // SAFETY: an all-zero perf_event_attr is the documented starting point.
    let mut attr: perf_event_attr = unsafe { std::mem::zeroed() };
    attr.type_ = perf_type_id::PERF_TYPE_SOFTWARE as u32;
    attr.size = size_of::<perf_event_attr>() as u32;
    attr.config = perf_sw_ids::PERF_COUNT_SW_DUMMY as u64;
    attr.sample_type = perf_event_sample_format::PERF_SAMPLE_TID as u64 | perf_event_sample_format::PERF_SAMPLE_TIME as u64;
    attr.set_mmap(1);
    attr.set_mmap2(1);
    attr.set_comm(1);
    attr.set_comm_exec(1);
    attr.set_task(1);
    attr.set_sample_id_all(1);
    // bpf_ktime_get_ns is CLOCK_MONOTONIC: records and samples share one clock.
    attr.set_use_clockid(1);
    attr.clockid = libc::CLOCK_MONOTONIC;
    // Nobody polls these fds: the collector drains them before each batch of samples. A
    // watermark as large as the buffer keeps the kernel from waking anyone.
    attr.set_watermark(1);
    attr.__bindgen_anon_2.wakeup_watermark = (DATA_PAGES * page_size() / 2) as u32;
    // SAFETY: the attr is initialized and outlives the call.
    let fd = unsafe { libc::syscall(libc::SYS_perf_event_open, &attr as *const perf_event_attr, -1, cpu as i32, -1, PERF_FLAG_FD_CLOEXEC as u64) };
    if fd < 0 {
        return Err(io::Error::last_os_error()).with_context(|| format!("failed to open a dummy perf event on cpu {cpu} for mmap records"));
    }
    // SAFETY: the syscall returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let map_len = (1 + DATA_PAGES) * page_size();
    // SAFETY: mapping the event's buffer read-write, as perf_event_open(2) prescribes.
    let base = unsafe { libc::mmap(std::ptr::null_mut(), map_len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd.as_raw_fd(), 0) };
    if base == libc::MAP_FAILED {
        return Err(io::Error::last_os_error()).with_context(|| format!("failed to map the mmap-record buffer of cpu {cpu}"));
    }
    let base = base.cast::<u8>();
    // SAFETY: the metadata page is mapped; data_offset and data_size are set by the kernel.
    let (data_offset, data_size) = unsafe { (*base.add(1040).cast::<u64>(), *base.add(1048).cast::<u64>()) };
    Ok(CpuBuffer { _fd: fd, base, map_len, data_offset: data_offset as usize, data_size: data_size as usize })
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Event(TaskEvent),
    Lost(u64),
}

/// Decodes one record's body (after the 8-byte header); `None` for kinds not asked for or a
/// body too short for its kind.
fn parse(kind: u32, misc: u16, body: &[u8]) -> Option<Parsed> {
    let u32_at = |i: usize| Some(u32::from_ne_bytes(body.get(i..i + 4)?.try_into().ok()?));
    let u64_at = |i: usize| Some(u64::from_ne_bytes(body.get(i..i + 8)?.try_into().ok()?));
    // The sample_id trailer: pid, tid, time.
    let ts_ns = u64_at(body.len().checked_sub(8)?)?;
    let body_end = body.len().checked_sub(SAMPLE_ID_LEN)?;
    Some(match kind {
        PERF_RECORD_MMAP2 => {
            let (pid, start, len, pgoff) = (u32_at(0)?, u64_at(8)?, u64_at(16)?, u64_at(24)?);
            // Without attr.build_id the union at 32 holds major, minor, inode, generation.
            if misc & MISC_MMAP_BUILD_ID != 0 {
                return None;
            }
            let file = FileId { dev: libc::makedev(u32_at(32)?, u32_at(36)?), ino: u64_at(40)?, generation: u64_at(48)? };
            // Then prot, flags and the NUL-padded name.
            let name = body.get(64..body_end)?;
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            Parsed::Event(TaskEvent::Mmap(MmapEvent { pid, ts_ns, start, len, pgoff, file, path: String::from_utf8_lossy(name).into_owned() }))
        }
        PERF_RECORD_COMM if misc & MISC_COMM_EXEC != 0 => Parsed::Event(TaskEvent::Exec { pid: u32_at(0)?, ts_ns }),
        PERF_RECORD_FORK => Parsed::Event(TaskEvent::Fork { pid: u32_at(0)?, ppid: u32_at(4)?, tid: u32_at(8)?, ts_ns }),
        PERF_RECORD_EXIT => Parsed::Event(TaskEvent::Exit { pid: u32_at(0)?, tid: u32_at(8)?, ts_ns }),
        PERF_RECORD_LOST => Parsed::Lost(u64_at(8)?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailer(body: &mut Vec<u8>, pid: u32, ts: u64) {
        body.extend(pid.to_ne_bytes());
        body.extend(pid.to_ne_bytes());
        body.extend(ts.to_ne_bytes());
    }

    #[test]
    fn decodes_mmap2_and_task_records() {
        let mut b = Vec::new();
        for v in [7u32, 8] {
            b.extend(v.to_ne_bytes());
        }
        for v in [0x5000u64, 0x2000, 0x1000] {
            b.extend(v.to_ne_bytes());
        }
        for v in [8u32, 1] {
            b.extend(v.to_ne_bytes());
        }
        for v in [1234u64, 5] {
            b.extend(v.to_ne_bytes());
        }
        b.extend(5u32.to_ne_bytes()); // prot
        b.extend(2u32.to_ne_bytes()); // flags
        b.extend(b"/opt/app\0\0\0\0\0\0\0\0");
        trailer(&mut b, 7, 99);
        let file = FileId { dev: libc::makedev(8, 1), ino: 1234, generation: 5 };
        let want = MmapEvent { pid: 7, ts_ns: 99, start: 0x5000, len: 0x2000, pgoff: 0x1000, file, path: "/opt/app".into() };
        assert_eq!(parse(PERF_RECORD_MMAP2, 0, &b), Some(Parsed::Event(TaskEvent::Mmap(want))));
        assert_eq!(parse(PERF_RECORD_MMAP2, MISC_MMAP_BUILD_ID, &b), None, "a build-id record (someone else's attr) is not ours");
        assert_eq!(parse(PERF_RECORD_MMAP2, 0, &b[..40]), None, "a short record is refused");

        let mut fork = Vec::new();
        for v in [20u32, 10, 21, 10] {
            fork.extend(v.to_ne_bytes());
        }
        fork.extend(5u64.to_ne_bytes());
        trailer(&mut fork, 20, 100);
        assert_eq!(parse(PERF_RECORD_FORK, 0, &fork), Some(Parsed::Event(TaskEvent::Fork { pid: 20, ppid: 10, tid: 21, ts_ns: 100 })));
        assert_eq!(parse(PERF_RECORD_EXIT, 0, &fork), Some(Parsed::Event(TaskEvent::Exit { pid: 20, tid: 21, ts_ns: 100 })));

        let mut comm = Vec::new();
        comm.extend(30u32.to_ne_bytes());
        comm.extend(30u32.to_ne_bytes());
        comm.extend(b"gzip\0\0\0\0");
        trailer(&mut comm, 30, 101);
        assert_eq!(parse(PERF_RECORD_COMM, MISC_COMM_EXEC, &comm), Some(Parsed::Event(TaskEvent::Exec { pid: 30, ts_ns: 101 })));
        assert_eq!(parse(PERF_RECORD_COMM, 0, &comm), None, "a rename (prctl) is no exec");

        let mut lost = Vec::new();
        lost.extend(1u64.to_ne_bytes());
        lost.extend(12u64.to_ne_bytes());
        trailer(&mut lost, 0, 102);
        assert_eq!(parse(PERF_RECORD_LOST, 0, &lost), Some(Parsed::Lost(12)));
    }
}
