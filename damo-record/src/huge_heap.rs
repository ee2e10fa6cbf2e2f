//! Room for a record about to be parsed, in transparent huge pages where the kernel gives them
//! on request (`/sys/kernel/mm/transparent_hugepage/enabled` set to `madvise`, as here).
//!
//! Why: a record parsed from damo's files is about 32 bytes a region written into fresh
//! memory, a 4 KiB page fault per 128 regions. For the bench's 1 M-region record that was
//! 10 k faults a first read: 18 ms of a 78 ms JSON parse on this host, and a fifth of a
//! perf_script parse's CPU time. In 2 MiB pages it is a few dozen faults.
//!
//! How: glibc's own switch for this (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`) is read only at
//! start-up, and leaves the arenas of other threads alone. Its documented `mallopt` knobs do
//! the same from within: the heap grows by the record's estimate at once (`M_TOP_PAD`), one
//! probe allocation makes it grow now, `MADV_HUGEPAGE` on the heap's free top then covers
//! what is allocated from it, and the parsers' worker threads allocate from that same heap
//! (`M_ARENA_MAX` = 1) instead of arenas of their own, faulted 4 KiB at a time.

use std::ops::Range;

/// Below this a record's pages fault in quickly enough, and 2 MiB pages only add RSS.
const MIN_BYTES: usize = 8 << 20;
/// The most the heap grows by at once.
const MAX_BYTES: usize = 1 << 30;
/// glibc's ceiling for `M_MMAP_THRESHOLD` on 64-bit (`DEFAULT_MMAP_THRESHOLD_MAX`).
const MMAP_THRESHOLD: usize = 32 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// Makes the next `bytes` of this process's allocations below 32 MiB come from memory advised
/// for huge pages, whichever thread makes them, and returns that memory's range. It is
/// advice only: nothing stays allocated, and where glibc, the kernel or its setting says no,
/// allocation goes on as before (`None`). Settings it leaves for the rest of the process:
/// one heap for every thread, blocks up to 32 MiB from that heap, and up to `bytes` of free
/// room kept when the heap shrinks.
pub fn reserve(bytes: usize) -> Option<Range<usize>> {
    if bytes < MIN_BYTES || !thp_on_request() {
        return None;
    }
    advise_heap_top(bytes.min(MAX_BYTES))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn advise_heap_top(pad: usize) -> Option<Range<usize>> {
    // SAFETY: mallopt, malloc, free and sbrk(0) are glibc's (sbrk(0) only reads the break);
    // the advice covers this process's heap, and changes only the size of its pages.
    unsafe {
        // The pad is also what a trim leaves, so the room outlives the probe's free. A fixed
        // mmap threshold keeps blocks up to 32 MiB (the inflater's 1 MiB ones) in the heap.
        let knobs = [(libc::M_TOP_PAD, pad), (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD), (libc::M_ARENA_MAX, 1)];
        if knobs.iter().any(|&(knob, value)| libc::mallopt(knob, value as i32) == 0) {
            return None;
        }
        let probe = libc::malloc(HUGE_PAGE);
        if probe.is_null() {
            return None;
        }
        // A probe served from free room below a top too small for the record: ask for more
        // than all the room above it, so the heap grows by the pad now.
        let room = (libc::sbrk(0) as usize).saturating_sub(probe as usize);
        let grow = if room < pad { libc::malloc((room + HUGE_PAGE).min(MMAP_THRESHOLD - HUGE_PAGE)) } else { std::ptr::null_mut() };
        let start = (probe as usize).next_multiple_of(HUGE_PAGE);
        let end = libc::sbrk(0) as usize & !(HUGE_PAGE - 1);
        let advised = end > start && libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) == 0;
        libc::free(grow);
        libc::free(probe);
        // The frees trim the heap back to the pad above its top: the room is what is left.
        let kept = libc::sbrk(0) as usize & !(HUGE_PAGE - 1);
        (advised && kept > start).then(|| start..kept.min(end))
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn advise_heap_top(_pad: usize) -> Option<Range<usize>> {
    None
}

/// Whether the kernel makes huge pages for memory advised so (under "always" it makes them
/// anyway, for a heap grown in big steps as here).
pub fn thp_on_request() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").is_ok_and(|mode| mode.contains("[madvise]") || mode.contains("[always]"))
}
