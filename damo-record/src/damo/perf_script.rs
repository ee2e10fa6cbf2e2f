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

mod builder;
mod line;
mod piece;

use std::io::{Read, Write};

use self::{
    builder::Build,
    piece::{parse_piece, Piece},
};
use super::DamoError;
use crate::{
    budget::Meter,
    model::{Record, Region, Snapshot},
};

/// A parsed trace, and whether its last line was cut short (a writer killed mid-line).
pub struct PerfScriptRead {
    pub record: Record,
    pub truncated_tail: bool,
}

pub fn read(text: &[u8]) -> Result<PerfScriptRead, DamoError> {
    read_with(text, &mut Meter::new())
}

/// [`read`], charging what the record takes to `meter`. A text with no DAMON event line is
/// [`DamoError::NoEvents`]: any text file would otherwise read as an empty record. The text
/// is parsed in place (a mapped file's pages are not copied).
pub fn read_with(text: &[u8], meter: &mut Meter) -> Result<PerfScriptRead, DamoError> {
    read_chunks(Chunks::<std::io::Empty>::InMemory(text), meter)
}

/// Bytes of text parsed at a time: enough that handing chunks between threads costs little
/// (a few hundred hand-overs a second), few enough that the chunks in flight stay in the
/// cache and take few fresh pages (first touches of memory were a sixth of the time).
const CHUNK: usize = 1 << 20;

/// [`read_with`] from a stream, read a chunk at a time.
pub fn read_from(mut input: impl Read, meter: &mut Meter) -> Result<PerfScriptRead, DamoError> {
    read_chunks(Chunks::Read(Reads { input: &mut input, carry: Vec::new(), spare: Vec::new(), eof: false }), meter)
}

/// The text in one pass on every core: chunks of whole lines are cut here and parsed by
/// whichever worker is free (lines parse independently) into runs of regions, mostly whole
/// snapshots, which are put together here in the input's order. A worker never waits for
/// another one's chunk to be put together first: with one chunk per worker handed out in
/// turn, workers sat idle a third of the time. Memory: a few chunks per worker (read ones)
/// and their runs, and the record.
fn read_chunks<'t, R: Read>(mut chunks: Chunks<'t, '_, R>, meter: &mut Meter) -> Result<PerfScriptRead, DamoError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    // Chunks out at once: read, being parsed, or parsed and waiting for an earlier one.
    let in_flight = 2 * threads;
    let (chunk_tx, chunk_rx) = crossbeam_channel::bounded::<(usize, Chunk<'t>, bool)>(in_flight);
    let (piece_tx, piece_rx) = crossbeam_channel::bounded::<(usize, Piece, Chunk<'t>)>(in_flight);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (chunk_rx, piece_tx) = (chunk_rx.clone(), piece_tx.clone());
            scope.spawn(move || {
                for (seq, chunk, is_last) in chunk_rx {
                    let piece = parse_piece(chunk.text(), is_last);
                    if piece_tx.send((seq, piece, chunk)).is_err() {
                        return; // The reader stopped (an error).
                    }
                }
            });
        }
        drop(piece_tx);
        // Moved in, so it drops when this closure returns (by `?` too) and the workers' loops
        // end: borrowed, it would outlive the scope, which waits for them.
        let chunk_tx = chunk_tx;
        let mut build = Build::default();
        // Pieces parsed ahead of the next one to build, by their distance from it.
        let mut waiting: std::collections::VecDeque<Option<(Piece, Chunk<'t>)>> = std::collections::VecDeque::new();
        let (mut sent, mut built) = (0usize, 0usize);
        loop {
            while sent - built < in_flight {
                let Some((chunk, is_last)) = chunks.next(meter)? else { break };
                if chunk_tx.send((sent, chunk, is_last)).is_err() {
                    unreachable!("the workers end only when the chunks do");
                }
                sent += 1;
            }
            if built == sent {
                break;
            }
            let Ok((seq, piece, chunk)) = piece_rx.recv() else { unreachable!("a worker answers every chunk") };
            // The runs take at most about the text's size (24-byte regions of 30-byte or
            // longer lines): bounded by the input; what the record does not keep is released.
            meter.charge(piece.bytes())?;
            let at = seq - built;
            if waiting.len() <= at {
                waiting.resize_with(at + 1, || None);
            }
            waiting[at] = Some((piece, chunk));
            while let Some((piece, chunk)) = waiting.front_mut().and_then(Option::take) {
                waiting.pop_front();
                built += 1;
                chunks.give_back(chunk, meter);
                build.piece(piece, meter)?;
            }
        }
        if build.region_lines == 0 {
            return Err(DamoError::NoEvents);
        }
        Ok(PerfScriptRead { truncated_tail: build.truncated_tail, record: build.finish() })
    })
}

/// Lines to parse: read into a buffer of ours, or in the text given.
enum Chunk<'t> {
    Read(Vec<u8>),
    InMemory(&'t [u8]),
}

impl Chunk<'_> {
    fn text(&self) -> &[u8] {
        match self {
            Chunk::Read(buf) => buf,
            Chunk::InMemory(text) => text,
        }
    }
}

/// The text cut into chunks that end at line ends (the last one where the text ends).
enum Chunks<'t, 'r, R> {
    Read(Reads<'r, R>),
    /// What is left of a text in memory.
    InMemory(&'t [u8]),
}

impl<'t, R: Read> Chunks<'t, '_, R> {
    /// The next chunk and whether it is the last; a read one is charged to `meter` until
    /// given back.
    fn next(&mut self, meter: &mut Meter) -> Result<Option<(Chunk<'t>, bool)>, DamoError> {
        match self {
            Chunks::Read(reads) => Ok(reads.next(meter)?.map(|(buf, last)| (Chunk::Read(buf), last))),
            Chunks::InMemory(rest) => {
                if rest.is_empty() {
                    return Ok(None);
                }
                // The rest when it fits, else up to the last line end in a chunk's length, or
                // past a longer line.
                let cut = match rest.len() <= CHUNK {
                    true => rest.len(),
                    false => match memchr::memrchr(b'\n', &rest[..CHUNK]) {
                        Some(nl) => nl + 1,
                        None => memchr::memchr(b'\n', &rest[CHUNK..]).map_or(rest.len(), |nl| CHUNK + nl + 1),
                    },
                };
                let (chunk, left) = rest.split_at(cut);
                *rest = left;
                Ok(Some((Chunk::InMemory(chunk), left.is_empty())))
            }
        }
    }

    /// A chunk parsed: its buffer is filled again.
    fn give_back(&mut self, chunk: Chunk<'t>, meter: &mut Meter) {
        if let (Chunks::Read(reads), Chunk::Read(buf)) = (self, chunk) {
            meter.release(buf.capacity() as u64);
            reads.spare.push(buf);
        }
    }
}

/// A stream read into chunks.
struct Reads<'r, R> {
    input: &'r mut R,
    /// The start of a line the last chunk cut.
    carry: Vec<u8>,
    /// Chunks parsed, to fill again.
    spare: Vec<Vec<u8>>,
    eof: bool,
}

impl<R: Read> Reads<'_, R> {
    /// The next chunk and whether it is the last; charged to `meter` until handed back.
    fn next(&mut self, meter: &mut Meter) -> Result<Option<(Vec<u8>, bool)>, DamoError> {
        while !self.eof {
            let mut chunk = self.spare.pop().unwrap_or_default();
            chunk.clear();
            chunk.append(&mut self.carry);
            chunk.reserve(CHUNK.saturating_sub(chunk.len()));
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
    use super::{line::integer, *};
    use crate::synth::{self, SynthSpec};

    /// Big enough to be parsed in pieces on several threads.
    fn big_text() -> (Record, Vec<u8>) {
        let record = synth::record(SynthSpec { targets: 3, snapshots_per_target: 150, regions: 150, seed: 3 });
        let mut text = Vec::new();
        write(&record, &mut text).unwrap();
        assert!(text.len() > 4 * CHUNK, "the parallel path needs several chunks");
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
        for read in [read(&text), read_from(&text[..], &mut Meter::new())] {
            match read {
                Err(DamoError::Line { line, .. }) => assert_eq!(line, want),
                other => panic!("expected a line error, got {:?}", other.map(|r| r.record.targets.len())),
            }
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
