//! Text traces of DAMON's tracepoints: `perf script` and `trace-cmd report` output, damo's
//! `perf_script` record format.
//!
//! ```text
//! kdamond.0  4452 [000] 82820.952659: damon:damon_aggregated: target_id=18446623435582458880 nr_regions=8 94253027950592-94253031862272: 0 3
//! kdamond.0-129062 [005] ..... 101005.778382: damon_aggregated: target_id=0 nr_regions=11 8360624128-8371830784: 0 974
//! kworker  80 [001] 80801.060214: damon:damos_before_apply: ctx_idx=0 scheme_idx=0 target_idx=0 nr_regions=11 121932607488-135128711168: 0 136
//! ```
//!
//! The age field is missing in kernels before 5.16 (6 fields). Snapshots are rebuilt like damo
//! does: a region line opens a snapshot of its target, which closes after `nr_regions` lines.
//! This parser works on bytes and allocates only for regions: text traces are damo's biggest
//! files and the slowest part of its reports.

use std::{
    collections::HashMap,
    io::{Read, Write},
    sync::mpsc::sync_channel,
};

use super::DamoError;
use crate::{
    budget::{bytes_of, Meter},
    model::{Record, Region, Snapshot, TargetRecord},
};

/// A parsed trace, and whether its last line was cut short (a writer killed mid-line).
pub struct PerfScriptRead {
    pub record: Record,
    pub truncated_tail: bool,
}

enum Event {
    Aggregated,
    BeforeApply,
}

/// One region line.
struct RegionLine {
    /// Its number within its piece of the text, from 1.
    line: u32,
    end_ns: u64,
    scheme_idx: Option<u32>,
    target_id: u64,
    nr_regions: u32,
    region: Region,
    fake: bool,
}

pub fn read(text: &[u8]) -> Result<PerfScriptRead, DamoError> {
    read_with(text, &mut Meter::new())
}

/// [`read`], charging what the record takes to `meter`. A text with no DAMON event line is
/// [`DamoError::NoEvents`]: any text file would otherwise read as an empty record.
pub fn read_with(text: &[u8], meter: &mut Meter) -> Result<PerfScriptRead, DamoError> {
    read_from(text, meter)
}

/// Bytes of text parsed at a time: enough that handing chunks between threads costs little,
/// few enough that a trace of any length takes a few of them in memory.
const CHUNK: usize = 4 << 20;

/// [`read_with`] from a stream, in one pass on every core: chunks of whole lines are read
/// here and parsed by workers in turn (lines parse independently), and their region lines
/// rebuild the snapshots in order here. Memory: a few chunks and their lines, and the record.
pub fn read_from(mut input: impl Read, meter: &mut Meter) -> Result<PerfScriptRead, DamoError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (chunk_tx, chunk_rx) = sync_channel::<(Vec<u8>, bool)>(1);
                let (piece_tx, piece_rx) = sync_channel::<(Piece, Vec<u8>)>(1);
                scope.spawn(move || {
                    for (chunk, is_last) in chunk_rx {
                        let piece = parse_piece(&chunk, is_last);
                        if piece_tx.send((piece, chunk)).is_err() {
                            return; // The reader stopped (an error).
                        }
                    }
                });
                (chunk_tx, piece_rx)
            })
            .collect();
        let mut chunks = Chunks { input: &mut input, carry: Vec::new(), spare: Vec::new(), eof: false };
        let mut build = Build { builder: Builder::default(), lines_before: 0, truncated_tail: false, region_lines: 0 };
        let (mut sent, mut received) = (0usize, 0usize);
        loop {
            if sent - received < threads {
                if let Some((chunk, is_last)) = chunks.next(meter)? {
                    if workers[sent % threads].0.send((chunk, is_last)).is_err() {
                        unreachable!("a worker ends only when its chunks end");
                    }
                    sent += 1;
                    continue;
                }
            }
            if received == sent {
                break;
            }
            let Ok((piece, chunk)) = workers[received % threads].1.recv() else { unreachable!("a worker answers every chunk") };
            received += 1;
            meter.release(chunk.capacity() as u64);
            chunks.spare.push(chunk);
            build.piece(piece, meter)?;
        }
        if build.region_lines == 0 {
            return Err(DamoError::NoEvents);
        }
        Ok(PerfScriptRead { record: build.builder.finish(), truncated_tail: build.truncated_tail })
    })
}

/// The input cut into chunks that end at line ends (the last one where the input ends).
struct Chunks<'r, R> {
    input: &'r mut R,
    /// The start of a line the last chunk cut.
    carry: Vec<u8>,
    /// Chunks parsed, to fill again.
    spare: Vec<Vec<u8>>,
    eof: bool,
}

impl<R: Read> Chunks<'_, R> {
    /// The next chunk and whether it is the last; charged to `meter` until handed back.
    fn next(&mut self, meter: &mut Meter) -> Result<Option<(Vec<u8>, bool)>, DamoError> {
        while !self.eof {
            let mut chunk = self.spare.pop().unwrap_or_default();
            chunk.clear();
            chunk.append(&mut self.carry);
            let want = CHUNK.saturating_sub(chunk.len()).max(1 << 16);
            let got = (&mut *self.input).take(want as u64).read_to_end(&mut chunk).map_err(DamoError::Read)?;
            self.eof = got < want;
            if self.eof {
                self.carry = chunk;
                break;
            }
            match memchr::memrchr(b'\n', &chunk) {
                Some(nl) => {
                    self.carry.extend_from_slice(&chunk[nl + 1..]);
                    chunk.truncate(nl + 1);
                    meter.charge(chunk.capacity() as u64)?;
                    return Ok(Some((chunk, false)));
                }
                // A line longer than the chunk: read on (bounded by the input).
                None => self.carry = chunk,
            }
        }
        if self.carry.is_empty() {
            return Ok(None);
        }
        let last = std::mem::take(&mut self.carry);
        meter.charge(last.capacity() as u64)?;
        Ok(Some((last, true)))
    }
}

/// Snapshots rebuilt from the pieces' region lines, in order.
struct Build {
    builder: Builder,
    lines_before: usize,
    truncated_tail: bool,
    region_lines: usize,
}

impl Build {
    fn piece(&mut self, piece: Piece, meter: &mut Meter) -> Result<(), DamoError> {
        // The parsed lines take at most 1.5 times the text (a line is 40 bytes or more):
        // bounded by the input, and given back once built.
        let lines_cost = bytes_of::<RegionLine>(piece.lines.capacity() as u64);
        meter.charge(lines_cost)?;
        self.region_lines += piece.lines.len();
        for region_line in piece.lines {
            let line = self.lines_before + region_line.line as usize;
            self.builder.add(region_line, meter).map_err(|reason| match reason {
                AddError::Line(reason) => DamoError::Line { line, reason },
                AddError::OverBudget(e) => DamoError::OverBudget(e),
            })?;
        }
        meter.release(lines_cost);
        if let Some((line, reason)) = piece.error {
            return Err(DamoError::Line { line: self.lines_before + line, reason });
        }
        self.truncated_tail |= piece.truncated_tail;
        self.lines_before += piece.line_count;
        Ok(())
    }
}

/// The region lines of a piece (with line numbers counted from 1 within it), the first bad
/// line if any, and how many lines the piece has.
struct Piece {
    lines: Vec<RegionLine>,
    error: Option<(usize, String)>,
    truncated_tail: bool,
    line_count: usize,
}

fn parse_piece(text: &[u8], is_last: bool) -> Piece {
    let mut clock = TimestampCache::default();
    let mut piece = Piece { lines: Vec::with_capacity(text.len() / 100), error: None, truncated_tail: false, line_count: 0 };
    let mut rest = text;
    while !rest.is_empty() {
        piece.line_count += 1;
        let (line, next, complete) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..], true),
            None => (rest, &rest[rest.len()..], false),
        };
        rest = next;
        match parse_line(line, &mut clock) {
            Ok(None) => {}
            Ok(Some(mut region_line)) => {
                region_line.line = u32::try_from(piece.line_count).unwrap_or(u32::MAX);
                piece.lines.push(region_line);
            }
            // A record killed while writing ends in a partial line: keep what came before.
            Err(_) if !complete && is_last => piece.truncated_tail = true,
            Err(reason) => {
                piece.error = Some((piece.line_count, reason));
                break;
            }
        }
    }
    piece
}

/// `None` for lines of other events and for headers.
fn parse_line(line: &[u8], clock: &mut TimestampCache) -> Result<Option<RegionLine>, String> {
    let mut tokens = line.split(|b| b.is_ascii_whitespace()).filter(|t| !t.is_empty());
    let mut previous: &[u8] = &[];
    let event = loop {
        let Some(token) = tokens.next() else { return Ok(None) };
        // Only tokens of an event name's length ending in ':' are compared.
        let named = matches!(token.len(), 17 | 19 | 23 | 25) && token.last() == Some(&b':');
        match token {
            b"damon:damon_aggregated:" | b"damon_aggregated:" if named => break Event::Aggregated,
            b"damon:damos_before_apply:" | b"damos_before_apply:" if named => break Event::BeforeApply,
            _ => previous = token,
        }
    };
    let mut fields: [&[u8]; 8] = [&[]; 8];
    let mut n = 0;
    for token in tokens {
        if n == fields.len() {
            return Err("too many fields".into());
        }
        fields[n] = token;
        n += 1;
    }
    let timestamp = previous.strip_suffix(b":").ok_or("no timestamp before the event name")?;
    let end_ns = clock.ns(timestamp)?;
    let (scheme_idx, target_id, nr_regions, range, counts) = match (event, n) {
        (Event::Aggregated, 4 | 5) => (None, key_value(fields[0], b"target_id=")?, key_value(fields[1], b"nr_regions=")?, fields[2], &fields[3..n]),
        (Event::BeforeApply, 7) => {
            let scheme = key_value(fields[1], b"scheme_idx=")?;
            let scheme = u32::try_from(scheme).map_err(|_| "scheme_idx out of range")?;
            // Like damo: the target's index stands for its id.
            (Some(scheme), key_value(fields[2], b"target_idx=")?, key_value(fields[3], b"nr_regions=")?, fields[4], &fields[5..7])
        }
        _ => return Err(format!("{n} fields after the event name")),
    };
    let range = range.strip_suffix(b":").ok_or("no ':' after the address range")?;
    let dash = memchr::memchr(b'-', range).ok_or("no '-' in the address range")?;
    let start = integer(&range[..dash]).ok_or("bad region start")?;
    let end = integer(&range[dash + 1..]).ok_or("bad region end")?;
    if end < start {
        return Err("region ends before it starts".into());
    }
    let (nr_accesses, nr_fake) = count(counts[0]).ok_or("bad nr_accesses")?;
    // damo writes "None" when it did not know the age.
    let (age, age_fake) = match counts.get(1) {
        None | Some(&b"None") => (None, false),
        Some(a) => {
            let (age, fake) = count(a).ok_or("bad age")?;
            (Some(age), fake)
        }
    };
    let nr_regions = u32::try_from(nr_regions).map_err(|_| "nr_regions out of range")?;
    if nr_regions == 0 {
        return Err("nr_regions is 0".into());
    }
    Ok(Some(RegionLine {
        line: 0,
        end_ns,
        scheme_idx,
        target_id,
        nr_regions,
        region: Region { start, end, nr_accesses, age },
        fake: nr_fake && (age_fake || counts.len() == 1) && start == 0 && end == 0,
    }))
}

fn key_value(token: &[u8], key: &[u8]) -> Result<u64, String> {
    token.strip_prefix(key).and_then(integer).ok_or_else(|| format!("expected {}<number>, found {:?}", String::from_utf8_lossy(key), String::from_utf8_lossy(token)))
}

/// A decimal `u64`; `None` on anything else, overflow included.
fn integer(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    // 19 digits cannot overflow a u64; only the 20th is checked.
    let (head, last) = if digits.len() == 20 { (&digits[..19], Some(digits[19])) } else { (digits, None) };
    let mut v: u64 = 0;
    for &d in head {
        let digit = d.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        v = v * 10 + u64::from(digit);
    }
    match last {
        None => Some(v),
        Some(d) => {
            let digit = d.wrapping_sub(b'0');
            (digit <= 9).then_some(())?;
            v.checked_mul(10)?.checked_add(u64::from(digit))
        }
    }
}

/// A count as a `u32`, and whether it was damo's fake-snapshot marker -1.
fn count(token: &[u8]) -> Option<(u32, bool)> {
    if token == b"-1" {
        return Some((0, true));
    }
    Some((u32::try_from(integer(token)?).ok()?, false))
}

/// Timestamps repeat for every region of a snapshot: parse each distinct one once.
#[derive(Default)]
struct TimestampCache {
    text: Vec<u8>,
    ns: u64,
}

impl TimestampCache {
    /// Seconds with a fraction, to ns the way damo computes it (`int(float(ts) * 1e9)`), so
    /// both tools agree to the nanosecond.
    fn ns(&mut self, timestamp: &[u8]) -> Result<u64, String> {
        if timestamp != self.text.as_slice() {
            let secs: f64 = std::str::from_utf8(timestamp)
                .ok()
                .and_then(|t| t.parse().ok())
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| format!("bad timestamp {:?}", String::from_utf8_lossy(timestamp)))?;
            self.ns = (secs * 1e9) as u64;
            self.text.clear();
            self.text.extend_from_slice(timestamp);
        }
        Ok(self.ns)
    }
}

#[derive(Default)]
struct Builder {
    targets: Vec<TargetRecord>,
    index: HashMap<(Option<u32>, u64), usize>,
    /// The last target's key and index: lines come in runs of one target.
    last: Option<((Option<u32>, u64), usize)>,
    /// Per target: the snapshot still collecting regions, with the count it expects.
    open: Vec<Option<u32>>,
    /// Per target: whether the last snapshot is damo's fake end marker.
    fake_last: Vec<bool>,
}

enum AddError {
    Line(String),
    OverBudget(crate::budget::OverBudget),
}

impl Builder {
    fn add(&mut self, line: RegionLine, meter: &mut Meter) -> Result<(), AddError> {
        let key = (line.scheme_idx, line.target_id);
        let t = match self.last {
            Some((last_key, t)) if last_key == key => t,
            _ => {
                if !self.index.contains_key(&key) {
                    // The target, its index entry and its bookkeeping.
                    meter.charge(bytes_of::<TargetRecord>(1) + 64).map_err(AddError::OverBudget)?;
                }
                let t = *self.index.entry(key).or_insert_with(|| {
                    self.targets.push(TargetRecord { scheme_idx: line.scheme_idx, target_id: line.target_id, ..Default::default() });
                    self.open.push(None);
                    self.fake_last.push(false);
                    self.targets.len() - 1
                });
                self.last = Some((key, t));
                t
            }
        };
        let target = &mut self.targets[t];
        if self.open[t].is_none() {
            let start_ns = target.snapshots.last().map_or(line.end_ns, |s| s.end_ns);
            if start_ns > line.end_ns {
                return Err(AddError::Line("the trace is not sorted by time".into()));
            }
            // nr_regions is the line's word: a line per target may claim 4 G regions.
            let capacity = line.nr_regions.min(1 << 12) as usize;
            meter.charge(bytes_of::<Snapshot>(1) + bytes_of::<Region>(capacity as u64)).map_err(AddError::OverBudget)?;
            let regions = Vec::with_capacity(capacity);
            target.snapshots.push(Snapshot { start_ns, end_ns: line.end_ns, regions, total_bytes: None });
            self.open[t] = Some(line.nr_regions);
            self.fake_last[t] = line.fake;
        }
        let snapshot = target.snapshots.last_mut().expect("a snapshot was just opened");
        if snapshot.regions.len() == snapshot.regions.capacity() {
            meter.charge(bytes_of::<Region>(snapshot.regions.len() as u64)).map_err(AddError::OverBudget)?;
        }
        snapshot.regions.push(line.region);
        if snapshot.regions.len() >= self.open[t].unwrap_or(0) as usize {
            self.open[t] = None;
        }
        Ok(())
    }

    fn finish(mut self) -> Record {
        for (target, fake_last) in self.targets.iter_mut().zip(self.fake_last) {
            let snaps = &mut target.snapshots;
            // The trace has end times only: like damo, give the first snapshot the mean
            // duration of the others (counting a fake end marker, which exists for this).
            if snaps.len() >= 2 {
                let first_end = snaps[0].end_ns;
                let span = snaps[snaps.len() - 1].end_ns - first_end;
                let mean = span as f64 / (snaps.len() - 1) as f64;
                snaps[0].start_ns = first_end.saturating_sub(mean.round() as u64);
            }
            if fake_last && snaps.len() >= 2 {
                snaps.pop();
            }
            for s in snaps.iter_mut() {
                s.total_bytes = Some(s.regions.iter().map(Region::size).sum());
            }
        }
        Record { targets: self.targets, ..Default::default() }
    }
}

/// Writes damo's `perf_script` format. A target with a single snapshot gets damo's fake
/// second snapshot so readers can tell its start time. Regions without an age are written
/// in the 6-field form (damo writes "None", which its own reader cannot read back).
pub fn write(record: &Record, out: &mut impl Write) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(160);
    for t in &record.targets {
        let fake;
        let mut snapshots: Vec<&Snapshot> = t.snapshots.iter().collect();
        if let [only] = t.snapshots.as_slice() {
            fake = Snapshot { start_ns: only.end_ns, end_ns: only.end_ns + (only.end_ns - only.start_ns), regions: vec![Region { start: 0, end: 0, nr_accesses: 0, age: None }], total_bytes: None };
            snapshots.push(&fake);
        }
        let is_fake = |s: &Snapshot| std::ptr::eq(s, snapshots[snapshots.len() - 1]) && t.snapshots.len() == 1;
        for s in &snapshots {
            let seconds = format!("{:.6}", s.end_ns as f64 / 1e9);
            for r in &s.regions {
                line.clear();
                write!(line, "kdamond.x xxxx xxxx {seconds}: damon:damon_aggregated: target_id={} nr_regions={} {}-{}: ", t.target_id, s.regions.len(), r.start, r.end)?;
                if is_fake(s) {
                    line.extend_from_slice(b"-1 -1");
                } else {
                    write!(line, "{}", r.nr_accesses)?;
                    if let Some(age) = r.age {
                        write!(line, " {age}")?;
                    }
                }
                line.push(b'\n');
                out.write_all(&line)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{self, SynthSpec};

    /// Big enough to be parsed in pieces on several threads.
    fn big_text() -> (Record, Vec<u8>) {
        let record = synth::record(SynthSpec { targets: 3, snapshots_per_target: 150, regions: 150, seed: 3 });
        let mut text = Vec::new();
        write(&record, &mut text).unwrap();
        assert!(text.len() > 4 << 20, "the parallel path needs more than 4 MiB");
        (record, text)
    }

    #[test]
    fn pieces_parse_back_to_the_record() {
        let (record, text) = big_text();
        let read = read(&text).unwrap();
        assert!(!read.truncated_tail);
        assert_eq!(read.record.targets.len(), record.targets.len());
        for (got, want) in read.record.targets.iter().zip(&record.targets) {
            assert_eq!(got.target_id, want.target_id);
            assert_eq!(got.snapshots.len(), want.snapshots.len());
            for (g, w) in got.snapshots.iter().zip(&want.snapshots).skip(1) {
                assert_eq!((g.start_ns, g.end_ns), (w.start_ns, w.end_ns));
                assert_eq!(g.regions, w.regions);
            }
        }
    }

    #[test]
    fn errors_name_the_line_in_the_whole_text() {
        let (_, mut text) = big_text();
        let lines: Vec<usize> = text.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i).collect();
        // Break a line in the last third: it is parsed by another thread than line 1.
        let n = lines.len() * 5 / 6;
        let at = lines[n - 1] + 1;
        text[at..at + 9].copy_from_slice(b"kdamond.x");
        let range = text[at..].iter().position(|&b| b == b'-').unwrap() + at;
        text[range - 1] = b'z';
        match read(&text) {
            Err(DamoError::Line { line, .. }) => assert_eq!(line, n + 1),
            other => panic!("expected a line error, got {:?}", other.map(|r| r.record.targets.len())),
        }
    }

    /// A reader that hands out at most `step` bytes at a time.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.step).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_stream_in_small_reads_reads_as_the_text_in_memory() {
        let (_, text) = big_text();
        let want = read(&text).unwrap().record;
        for step in [1000, 65_537] {
            let got = read_from(Trickle { data: &text, step }, &mut Meter::new()).unwrap();
            assert!(got.record == want, "reads of {step} bytes");
        }
    }

    #[test]
    fn a_line_longer_than_a_chunk_is_read_whole() {
        let (_, events) = big_text();
        let mut text = vec![b'#'; CHUNK + 100];
        text.push(b'\n');
        text.extend_from_slice(&events);
        text.extend_from_slice(b"kdamond.x xxxx xxxx 1.000000: damon:damon_aggregated: target_id=0 nr_regions=1 x-1: 0 0\n");
        let want = events.iter().filter(|&&b| b == b'\n').count() + 2;
        match read(&text) {
            Err(DamoError::Line { line, .. }) => assert_eq!(line, want),
            other => panic!("expected a line error, got {:?}", other.map(|r| r.record.targets.len())),
        }
    }

    #[test]
    fn integers_up_to_u64_max_read_and_larger_ones_do_not() {
        assert_eq!(integer(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(integer(b"18446744073709551616"), None);
        assert_eq!(integer(b"99999999999999999999"), None);
        assert_eq!(integer(b"9999999999999999999"), Some(9_999_999_999_999_999_999));
        assert_eq!(integer(b"1844674407370955161x"), None);
        assert_eq!(integer(b"0"), Some(0));
        assert_eq!(integer(b""), None);
    }

    #[test]
    fn a_cut_last_line_is_a_truncated_tail_not_an_error() {
        let (_, text) = big_text();
        let read = read(&text[..text.len() - 30]).unwrap();
        assert!(read.truncated_tail);
    }
}
