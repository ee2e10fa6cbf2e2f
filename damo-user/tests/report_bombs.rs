//! Inputs made to exhaust memory or to hang (issue 12, item 4): each is generated here,
//! small on disk, and `damo-trace report` on it must fail at once with one clear line and
//! exit 1, its peak RSS (from `wait4`) under [`MAX_RSS`] with `DAMO_TRACE_MEMORY_LIMIT` at
//! [`LIMIT`]. Before the memory budget these aborted after asking for 3 to 6 GiB.

mod differential;
mod planted;

use std::{
    io::Read,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use damo_record::{
    model::{Region, Snapshot, TargetRecord},
    native::NativeWriter,
};
use differential::fixture;

const LIMIT: &str = "128M";
/// The limit, twice (a growing Vec's slack), and the binary itself.
const MAX_RSS_MIB: i64 = 512;

struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    stderr: String,
    peak_rss_mib: i64,
    took: Duration,
}

/// `damo-trace args` with the memory limit set, its exit and its own peak RSS.
fn run(args: &[&str]) -> Run {
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_damo-trace"))
        .args(args)
        .env("DAMO_TRACE_MEMORY_LIMIT", LIMIT)
        .env("DAMO_TRACE_NO_CACHE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("failed to run damo-trace");
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data the kernel fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, whose Child handle is not waited on again.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
    let status = std::process::ExitStatus::from_raw(status);
    std::mem::forget(child);
    Run { code: status.code(), signal: status.signal(), stderr, peak_rss_mib: usage.ru_maxrss / 1024, took: t.elapsed() }
}

/// The run failed with exit 1, one line naming `needle`, and stayed small.
fn assert_refused(args: &[&str], needle: &str) -> Run {
    let r = run(args);
    eprintln!("{args:?}: exit {:?} signal {:?}, peak RSS {} MiB, {:?}: {}", r.code, r.signal, r.peak_rss_mib, r.took, r.stderr.trim_end());
    assert_eq!(r.signal, None, "{args:?} died of a signal: {}", r.stderr);
    assert_eq!(r.code, Some(1), "{args:?} must fail with exit 1: {}", r.stderr);
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "{args:?}: one line expected: {:?}", r.stderr);
    assert!(r.stderr.contains(needle), "{args:?}: {:?} does not say {needle:?}", r.stderr);
    assert!(r.peak_rss_mib < MAX_RSS_MIB, "{args:?}: peak RSS {} MiB (limit {LIMIT})", r.peak_rss_mib);
    r
}

/// A zlib stream of `prefix`, then `pattern` repeated `repeats` times, then `suffix`, coded
/// by hand (fixed Huffman codes, 258-byte back-references): gigabytes in a few MB, without
/// spending a minute deflating them in a debug build.
fn zlib_bomb(prefix: &[u8], pattern: &[u8], repeats: u64, suffix: &[u8]) -> Vec<u8> {
    let mut w = Bits::default();
    w.out.extend_from_slice(&[0x78, 0x01]);
    w.put(1, 1); // BFINAL
    w.put(1, 2); // BTYPE 01: fixed codes
    let mut adler = Adler::default();
    for &b in prefix.iter().chain(pattern) {
        w.literal(b);
        adler.add(b);
    }
    // The rest of the repeats, as copies of what is `pattern.len()` back.
    let mut left = (repeats.saturating_sub(1)) * pattern.len() as u64;
    let d = pattern.len() as u64;
    assert!((1..=64).contains(&d));
    let (dcode, dextra_bits, dbase) = match d {
        1..=4 => (d - 1, 0, d),
        5..=6 => (4, 1, 5),
        7..=8 => (5, 1, 7),
        9..=12 => (6, 2, 9),
        13..=16 => (7, 2, 13),
        17..=24 => (8, 3, 17),
        25..=32 => (9, 3, 25),
        33..=48 => (10, 4, 33),
        _ => (11, 4, 49),
    };
    // Every copy but the last two is 258 bytes: its bits are the same each time.
    // Length 258 is code 285 (8 bits, 0xc5), no extra bits.
    let copy_bits = reversed(0xc5, 8) | reversed(dcode, 5) << 8 | (d - dbase) << 13;
    let copy_len = 13 + dextra_bits;
    while left >= 258 + 3 {
        w.put(copy_bits, copy_len);
        left -= 258;
    }
    while left >= 3 {
        let len = left.min(258);
        let len = if left - len > 0 && left - len < 3 { len - 3 } else { len };
        w.length(len);
        w.huffman(dcode, 5);
        w.put(d - dbase, dextra_bits);
        left -= len;
    }
    let copied = (repeats.saturating_sub(1)) * d - left;
    for i in 0..left {
        w.literal(pattern[((copied + i) % d) as usize]);
    }
    adler.repeat(pattern, repeats.saturating_sub(1));
    for &b in suffix {
        w.literal(b);
        adler.add(b);
    }
    w.huffman(0, 7); // end of block
    w.flush();
    w.out.extend_from_slice(&adler.value().to_be_bytes());
    w.out
}

/// A Huffman code goes most significant bit first into a stream filled from the low bits.
fn reversed(code: u64, len: u32) -> u64 {
    (0..len).fold(0, |r, i| r | ((code >> i) & 1) << (len - 1 - i))
}

#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, v: u64, count: u32) {
        self.acc |= v << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn huffman(&mut self, code: u64, len: u32) {
        self.put(reversed(code, len), len);
    }

    fn literal(&mut self, b: u8) {
        match b {
            0..=143 => self.huffman(0x30 + u64::from(b), 8),
            _ => self.huffman(0x190 + u64::from(b) - 144, 9),
        }
    }

    /// A copy length of 3 to 258 (RFC 1951, 3.2.5 and 3.2.6).
    fn length(&mut self, len: u64) {
        const BASE: [u64; 29] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
        const EXTRA: [u32; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
        let i = BASE.iter().rposition(|&b| b <= len).unwrap();
        let code = 257 + i as u64;
        match code {
            257..=279 => self.huffman(code - 256, 7),
            _ => self.huffman(0xc0 + code - 280, 8),
        }
        self.put(len - BASE[i], EXTRA[i]);
    }

    fn flush(&mut self) {
        if self.n > 0 {
            self.put(0, 8 - self.n);
        }
    }
}

#[derive(Clone, Copy)]
struct Adler(u64, u64);

impl Default for Adler {
    fn default() -> Self {
        Adler(1, 0)
    }
}

impl Adler {
    fn add(&mut self, b: u8) {
        self.0 = (self.0 + u64::from(b)) % 65521;
        self.1 = (self.1 + self.0) % 65521;
    }

    /// Adds `pattern` `m` times, in closed form: a grows by the pattern's sum S each time,
    /// b by L·a + P (P: the sum of the pattern's prefix sums).
    fn repeat(&mut self, pattern: &[u8], m: u64) {
        const M: u128 = 65521;
        let l = pattern.len() as u128;
        let s: u128 = pattern.iter().map(|&b| u128::from(b)).sum();
        let p: u128 = pattern
            .iter()
            .scan(0u128, |acc, &b| {
                *acc += u128::from(b);
                Some(*acc)
            })
            .sum();
        let (a, b, m) = (u128::from(self.0), u128::from(self.1), u128::from(m));
        let pairs = (m * m.saturating_sub(1) / 2) % M;
        self.0 = ((a + m % M * s) % M) as u64;
        self.1 = ((b + m % M * l % M * a + s % M * l % M * pairs + m % M * p) % M) as u64;
    }

    fn value(self) -> u32 {
        (self.1 << 16 | self.0) as u32
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A damo-trace record: its header and one zlib-flagged chunk of `kind`.
fn native_with_chunk(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut out = b"\x89DTR\r\n\x1a\n".to_vec();
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let head = [kind.to_le_bytes(), 1u16.to_le_bytes()].concat();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    crc.update(body);
    out.extend_from_slice(&head);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    eprintln!("{name}: {} bytes on disk", data.len());
    p.to_str().unwrap().to_owned()
}

#[test]
fn a_stacks_chunk_of_zeros_stops_at_the_memory_limit() {
    let tmp = tempfile::tempdir().unwrap();
    // The sample count, then zeros: 7 bytes of zeros are a sample of ~100 bytes in memory.
    let mut prefix = Vec::new();
    varint(1 << 40, &mut prefix);
    // 1 GiB of zeros (the most a chunk may inflate to): ~6 MB on disk here, 1 MB from zlib.
    let huge = write(tmp.path(), "stacks-zeros.dtr", &native_with_chunk(4, &zlib_bomb(&prefix, &[0], 1 << 30, &[])));
    assert_refused(&["report", "profile", "-i", &huge], "memory limit of 128.000 MiB");
    // 40 MiB of zeros: inflates within the limit, and the samples it decodes to do not fit.
    let samples = write(tmp.path(), "stacks-samples.dtr", &native_with_chunk(4, &zlib_bomb(&prefix, &[0], 40 << 20, &[])));
    assert_refused(&["report", "record_info", "-i", &samples], "DAMO_TRACE_MEMORY_LIMIT");
}

#[test]
fn twenty_million_regions_stop_at_the_memory_limit() {
    let tmp = tempfile::tempdir().unwrap();
    // damo's json_compressed: one snapshot of 20 M regions, 7 MB of zlib.
    let region = br#"{"start":0,"end":0},"#;
    let prefix = br#"[{"target_id": 0, "snapshots": [{"end_time": 0, "regions": ["#;
    let json = write(tmp.path(), "regions.json_compressed", &zlib_bomb(prefix, region, 20_000_000, br#"{"start":0,"end":0}]}]}]"#));
    assert_refused(&["report", "wss", "-i", &json], "memory limit");
    // damo-trace's format: a snapshot of 100 k regions, then 200 the same (a bit a region).
    let target = TargetRecord { target_id: 1, ..Default::default() };
    let mut w = NativeWriter::new(Vec::new()).unwrap();
    for i in 0..200u64 {
        // Each one interval older, as DAMON ages a region that keeps its pattern.
        let regions = (0..100_000u64).map(|r| Region { start: r << 12, end: (r + 1) << 12, nr_accesses: 1, age: Some(i as u32) }).collect();
        let s = Snapshot { start_ns: i * 100, end_ns: (i + 1) * 100, regions, total_bytes: None };
        w.snapshot(&target, &s).unwrap();
    }
    let native = write(tmp.path(), "regions.dtr", &w.finish().unwrap());
    // What keeps every snapshot stops at the limit: `adjust` with no new interval (it
    // streams the record in, and holds what it writes), `access` with no filter (it holds
    // what it shows). A report that streams it holds a check group of snapshots at a time,
    // and answers within it.
    let adjusted = tmp.path().join("adjusted.dtr");
    assert_refused(&["adjust", "-i", &native, "-o", adjusted.to_str().unwrap()], "memory limit");
    assert!(!adjusted.exists(), "nothing is written for a record that was not read");
    assert_refused(&["report", "access", "-i", &native], "memory limit");
    // footprints keeps only the footprints: it reads past the snapshots to find none.
    assert_refused(&["report", "footprints", "-i", &native], "has no memory footprints");
    let page = tmp.path().join("page.svg");
    for report in ["nr_regions", "heatmap", "phases", "holistic"] {
        let mut args = vec!["report", report, "-i", &native];
        if report == "holistic" {
            args.extend(["-o", page.to_str().unwrap()]);
        }
        let r = run(&args);
        assert_eq!(r.code, Some(0), "{report} streams the 20 M regions: {}", r.stderr);
        assert!(r.peak_rss_mib < MAX_RSS_MIB, "{report} streaming: peak RSS {} MiB", r.peak_rss_mib);
    }
}

#[test]
fn a_json_string_of_3_gib_is_refused_as_it_inflates() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = br#"[{"target_id": 0, "scheme_filters": [{"filter_type": ""#;
    let bomb = zlib_bomb(prefix, b"a", 3 << 30, br#""}], "snapshots": []}]"#);
    let path = write(tmp.path(), "string.json_compressed", &bomb);
    let r = assert_refused(&["report", "access", "-i", &path], "JSON string is longer than");
    assert!(r.took < Duration::from_secs(30), "took {:?}", r.took);
}

#[test]
fn devices_fifos_and_directories_are_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a plain libc call on a path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let link = tmp.path().join("link-to-zero");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let dir = tmp.path().to_str().unwrap();
    for (input, needle) in [
        ("/dev/zero", "is a character device, not a regular file"),
        (fifo.to_str().unwrap(), "is a FIFO (named pipe), not a regular file"),
        (link.to_str().unwrap(), "character device"),
        (dir, "is a directory"),
    ] {
        for report in ["wss", "heatmap", "holistic", "footprints"] {
            let mut args = vec!["report", report, "-i", input];
            if report == "holistic" {
                args.extend(["-o", "/nonexistent/x.svg"]);
            }
            let r = assert_refused(&args, needle);
            assert!(r.took < Duration::from_secs(10), "{args:?} took {:?}", r.took);
        }
    }
    let r = assert_refused(&["convert", "-i", fifo.to_str().unwrap(), "-o", &format!("{dir}/out.json"), "--format", "json"], "FIFO");
    assert!(r.took < Duration::from_secs(10));
}

#[test]
fn a_text_file_is_not_an_empty_record() {
    let tmp = tempfile::tempdir().unwrap();
    let text = write(tmp.path(), "notes.txt", b"shopping list\neggs\nmilk\n");
    assert_refused(&["report", "access", "-i", &text], "is not a DAMON record");
}

#[test]
fn report_options_that_size_buffers_stop_at_the_memory_limit() {
    let input = fixture("damon.data");
    let input = input.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let svg = tmp.path().join("h.svg");
    for (args, needle) in [
        // The resolution cap: 2^27 cells of raw lines (5 GB of text before).
        (&["report", "heatmap", "-i", input, "--output", "raw", "--resol", "8192", "16384"][..], "a heatmap of 8192x16384 cells"),
        (&["report", "wss", "-i", input, "-r", "0", "1000000000", "1"], "1000000000 percentiles"),
        (&["report", "nr_regions", "-i", input, "-r", "0", "1000000000", "1"], "percentiles"),
        (&["report", "wss", "-i", input, "--nr_cols_bar", "100000000000"], "bars of 100000000000 columns"),
        (&["report", "holistic", "-i", input, "-o", svg.to_str().unwrap(), "--time_buckets", "100000000"], "--time_buckets 100000000"),
    ] {
        assert_refused(args, needle);
    }
    assert!(!svg.exists());
    let planted = tmp.path().join("planted.dtr");
    planted::write(&planted);
    let planted = planted.to_str().unwrap();
    for (args, needle) in [
        (&["report", "access", "-i", planted, "--style", "recency-percentiles", "--percentiles_range", "0", "1000000000", "1"][..], "1000000000 percentiles"),
        (&["report", "access", "-i", planted, "--snapshot_heatmap_width", "100000000000"], "heatmap 100000000000 cells wide"),
    ] {
        assert_refused(args, needle);
    }
}

#[test]
fn a_bad_memory_limit_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_damo-trace")).args(["report", "wss", "-i", fixture("damon.data").to_str().unwrap()]).env("DAMO_TRACE_MEMORY_LIMIT", "lots").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DAMO_TRACE_MEMORY_LIMIT=\"lots\" is not a size"));
}

/// A record truncated while a report reads it: the report reads its own copy (no mmap), so
/// it finishes or fails with a message, never SIGBUS.
#[test]
fn truncating_the_input_under_a_report_is_no_signal() {
    let tmp = tempfile::tempdir().unwrap();
    let path: PathBuf = tmp.path().join("big.script");
    let text = std::fs::read(fixture("perf.data.script")).unwrap();
    let mut big = Vec::new();
    while big.len() < (64 << 20) {
        big.extend_from_slice(&text);
    }
    for _ in 0..3 {
        std::fs::write(&path, &big).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_damo-trace"))
            .args(["report", "nr_regions", "-i", path.to_str().unwrap()])
            .env("DAMO_TRACE_NO_CACHE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(4096).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.signal(), None, "killed by a signal: {}", String::from_utf8_lossy(&out.stderr));
    }
}
