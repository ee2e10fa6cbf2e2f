//! Reads a record's snapshots one at a time from a file, for reports that need one pass:
//! a day of recording (~860 M regions, 20 GB as [`crate::model::Record`]) does not fit in
//! memory, its file (0.3 bytes a region) reads through a buffer.
//!
//! What it yields is exactly what [`super::read`] yields on the same bytes, with the same
//! damage handling. Memory: each target's last snapshot (the next one is coded against it)
//! and the snapshots of one check group (at most 32 frames, whose CRC-32 comes after them:
//! a failed check takes them all back, so none is handed out before its check).
//!
//! A version-3 record's key groups decode on every core ([`parallel`]): a second thread
//! that only decoded ahead gained nothing, since decoding is the serial part, but groups
//! that decode on their own do. Memory then: a group per thread, decoded.

use std::io::{self, BufRead, BufReader, Read};

use super::{
    codec::get_varint,
    reader::{check_header, checked_payload, framed_kind, starts_key_group, Decoder},
    snapshot::{self, Recent},
    ChunkKind, NativeError, CHUNK_HEADER_LEN, HEADER_LEN,
};
use crate::{
    budget::{bytes_of, Meter},
    model::{Record, Region, Snapshot, TargetRecord},
};

/// Read buffer: large enough that reads cost little next to decoding.
const BUFFER: usize = 1 << 18;

/// How a streamed record ended, and what it held besides snapshots.
#[derive(Debug)]
pub struct StreamEnd {
    /// The targets (without snapshots) and, with [`Rest::Keep`], every other chunk's content.
    pub rest: Record,
    /// As [`super::NativeRead::damaged_at`].
    pub damaged_at: Option<u64>,
    /// As [`super::NativeRead::complete`].
    pub complete: bool,
}

/// What to do with chunks other than targets and snapshots (stack samples, footprints…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rest {
    /// Keep them in [`StreamEnd::rest`] (`record_info` counts them).
    Keep,
    /// Check and decode them like [`super::read`] (damage there ends the read), then drop
    /// them: a snapshot report needs none, and a day of stacks takes gigabytes.
    Drop,
}

/// Which targets' snapshots a read decodes and visits. Each target's frames are coded
/// against its own earlier snapshots only, so a report that draws one target (a heatmap's
/// later passes) need not decode the others': on a record of four processes, a quarter of
/// the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets {
    All,
    /// Only the target of this index: the others' frames are read and their checks (CRC)
    /// verified, not decoded. For a file a read of [`Targets::All`] found intact: a frame
    /// that passes its check but does not decode ends that read, not this one.
    Only(usize),
}

impl Targets {
    fn skips(self, index: usize) -> bool {
        matches!(self, Targets::Only(only) if only != index)
    }
}

/// Visits every snapshot of the record `input` holds, in file order: the target's index
/// among the record's targets, the target (without snapshots) and the snapshot. What the
/// reader holds is charged to `meter` and released when it is dropped.
pub fn stream<R: Read>(input: R, meter: &mut Meter, rest: Rest, visit: impl FnMut(usize, &TargetRecord, &Snapshot)) -> Result<StreamEnd, NativeError> {
    stream_with(input, meter, rest, Targets::All, None, visit)
}

/// A record file smaller than this is decoded on the calling thread: decoding ahead pays
/// only over many key groups. Measured on 2 cores: a 1 M-region record (0.3 MB, 4 groups)
/// took 0.05-0.06 s for a heatmap and 28-37 MB decoded on two threads against 0.04 s and
/// 12 MB on one (each worker's first groups decode into fresh pages), and again with the
/// decoder that copies runs of unchanged regions: 0.032-0.034 s (44-48 ms of CPU) against 0.020-0.028 s
/// (21-26 ms); a 10 M-region one (2.9 MB) 0.37 s against 0.46 s.
pub const PARALLEL_MIN_BYTES: u64 = 1 << 20;

/// [`stream`] of `targets` from a file, decoding key groups on every core when the file is
/// big enough to gain from it ([`PARALLEL_MIN_BYTES`]).
pub fn stream_file(file: &std::fs::File, meter: &mut Meter, rest: Rest, targets: Targets, visit: impl FnMut(usize, &TargetRecord, &Snapshot)) -> Result<StreamEnd, NativeError> {
    let small = file.metadata().is_ok_and(|m| m.len() < PARALLEL_MIN_BYTES);
    stream_with(file, meter, rest, targets, small.then_some(1), visit)
}

/// [`stream`] of `targets` with `threads` decoding key groups (`None`: one per core; 1: the
/// sequential reader).
pub(super) fn stream_with<R: Read>(
    input: R,
    meter: &mut Meter,
    rest: Rest,
    targets: Targets,
    threads: Option<usize>,
    mut visit: impl FnMut(usize, &TargetRecord, &Snapshot),
) -> Result<StreamEnd, NativeError> {
    let mut src = Source::new(BufReader::with_capacity(BUFFER, input), 0);
    let mut head = Vec::new();
    src.read_up_to(HEADER_LEN, &mut head);
    src.fail()?;
    let version = check_header(&head)?;
    let mut state = Stream { decoder: Decoder::new(meter), version, decoded: targets, targets: Vec::new(), pending: Vec::new(), frame: Vec::new(), spare: Vec::new() };
    let (damaged_at, error) = match parallel::workers(version, threads) {
        Some(workers) => parallel::run(&mut state, src, rest, workers, &mut visit),
        None => {
            let damaged_at = state.run(&mut src, rest, &mut visit);
            (damaged_at, src.error.take())
        }
    };
    if let Some(e) = error {
        return Err(NativeError::Read(e));
    }
    state.drop_all();
    if state.decoder.meter.exhausted() {
        return Err(NativeError::OverBudget(state.decoder.meter.over()));
    }
    let complete = state.decoder.complete && damaged_at.is_none();
    Ok(StreamEnd { rest: state.decoder.record, damaged_at, complete })
}

/// The input, where in it the reader is, and the first read error (which ends the read).
struct Source<R> {
    input: BufReader<R>,
    pos: u64,
    error: Option<io::Error>,
}

impl<R: Read> Source<R> {
    /// `input`, whose next byte is at `pos` in the file.
    fn new(input: BufReader<R>, pos: u64) -> Self {
        Self { input, pos, error: None }
    }

    fn has_more(&mut self) -> bool {
        self.error.is_none() && self.input.fill_buf().map_err(|e| self.error = Some(e)).is_ok_and(|b| !b.is_empty())
    }

    /// Replaces `out` with up to `n` bytes: fewer at the end of the input. Reads only what is
    /// there, so a length field that lies allocates no more than the input holds.
    fn read_up_to(&mut self, n: usize, out: &mut Vec<u8>) {
        out.clear();
        if self.error.is_some() {
            return;
        }
        match (&mut self.input).take(n as u64).read_to_end(out) {
            Ok(got) => self.pos += got as u64,
            Err(e) => self.error = Some(e),
        }
    }

    /// `n` bytes into `out`; false if the input ends first.
    fn read_exact(&mut self, n: usize, out: &mut Vec<u8>) -> bool {
        self.read_up_to(n, out);
        out.len() == n
    }

    /// [`Self::read_exact`] for a length the input gave, charging what is read to `meter`
    /// (the caller releases `out.len()`): no more than the memory limit is read, and past
    /// it the meter is exhausted.
    fn read_charged(&mut self, n: usize, out: &mut Vec<u8>, meter: &mut Meter) -> bool {
        let cap = n.min(usize::try_from(meter.available()).unwrap_or(usize::MAX).saturating_add(1));
        self.read_up_to(cap, out);
        if meter.charge(out.len() as u64).is_err() {
            out.clear();
            return false;
        }
        out.len() == n
    }

    /// A varint's bytes (into `out`) and its value; `None` as [`get_varint`] gives it.
    fn varint(&mut self, out: &mut Vec<u8>) -> Option<u64> {
        out.clear();
        // get_varint reads at most 10 bytes.
        while out.len() < 10 {
            let mut byte = [0u8];
            match self.input.read(&mut byte) {
                Ok(1) => {
                    self.pos += 1;
                    out.push(byte[0]);
                    if byte[0] & 0x80 == 0 {
                        break;
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
        }
        get_varint(&mut &out[..])
    }

    /// Whether the rest of the input is zeros (a torn tail: the file's length reached the
    /// disk, its data did not). Reads it all; damage ends the read anyway.
    fn rest_is_zeros(&mut self) -> bool {
        loop {
            let buf = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) => {
                    self.error = Some(e);
                    return false;
                }
            };
            if buf.is_empty() {
                return true;
            }
            if buf.iter().any(|&b| b != 0) {
                return false;
            }
            let n = buf.len();
            self.input.consume(n);
            self.pos += n as u64;
        }
    }

    fn fail(&mut self) -> Result<(), NativeError> {
        self.error.take().map_or(Ok(()), |e| Err(NativeError::Read(e)))
    }
}

/// A target's decoding state: its last snapshot handed out and the durations of its last
/// snapshots decoded (handed out or pending).
#[derive(Default)]
struct TargetState {
    last: Option<Snapshot>,
    recent: Recent,
    /// A key group started after `last`: the next snapshot is coded against nothing.
    keyed: bool,
}

struct Stream<'m> {
    decoder: Decoder<'m>,
    /// The record's version (key groups from 3 on).
    version: u32,
    /// The targets whose frames are decoded.
    decoded: Targets,
    targets: Vec<TargetState>,
    /// Snapshots decoded since the last check, with their target's index.
    pending: Vec<(usize, Snapshot)>,
    /// Region buffers of snapshots replaced, to decode into: freeing them let the allocator
    /// give the top of its heap back every few snapshots and fault it in again (with key
    /// groups, 29 k page faults and a fifth more time on 50 M regions).
    spare: Vec<Vec<Region>>,
    /// The frame being read.
    frame: Vec<u8>,
}

/// Spare region buffers kept: a check group's.
const SPARE_MAX: usize = 32;

/// What a decoded snapshot was charged (as the in-memory reader charges it).
fn cost(s: &Snapshot) -> u64 {
    bytes_of::<Region>(s.regions.len() as u64 + 1)
}

impl Stream<'_> {
    /// Reads the chunks from `src` to the end of the input or the first damage, whose offset
    /// it returns; snapshots go to `visit`.
    fn run<R: Read>(&mut self, src: &mut Source<R>, rest: Rest, visit: &mut impl FnMut(usize, &TargetRecord, &Snapshot)) -> Option<u64> {
        let mut head = Vec::new();
        while src.has_more() {
            let chunk_at = src.pos;
            let outcome = match src.read_exact(CHUNK_HEADER_LEN, &mut head) {
                false => Err(chunk_at),
                true => match framed_kind(&head) {
                    Some(kind) => {
                        if starts_key_group(self.version, &head) {
                            self.start_key_group();
                        }
                        self.frames(kind, src, visit)
                    }
                    None => self.chunk(&head, src, rest).ok_or(chunk_at),
                },
            };
            if let Err(at) = outcome {
                return Some(at);
            }
        }
        None
    }

    /// One chunk that is not open-ended, its header read: applied, or dropped after decoding
    /// it as [`Rest`] says. `None` where [`super::read`] finds damage.
    fn chunk<R: Read>(&mut self, header: &[u8], src: &mut Source<R>, rest: Rest) -> Option<()> {
        let len = u32::from_le_bytes(header[4..8].try_into().unwrap()) as usize;
        let mut body = Vec::new();
        // The in-memory reader has the whole file charged; here only this chunk's body.
        if !src.read_charged(len, &mut body, self.decoder.meter) {
            self.decoder.meter.release(body.len() as u64);
            return None;
        }
        self.chunk_body(header, &body, rest)
    }

    /// [`Self::chunk`] with the body read and charged: its charge is released once it is
    /// inflated.
    fn chunk_body(&mut self, header: &[u8], body: &[u8], rest: Rest) -> Option<()> {
        let payload = checked_payload(header, body, self.decoder.meter);
        self.decoder.meter.release(body.len() as u64);
        let payload = payload?;
        let before = self.decoder.meter.used();
        let kind = u16::from_le_bytes([header[0], header[1]]);
        let done = self.decoder.chunk(kind, &payload);
        let decoded = self.decoder.meter.used().saturating_sub(before);
        self.decoder.meter.release(payload.capacity() as u64);
        if rest == Rest::Drop && ChunkKind::from_u16(kind) != Some(ChunkKind::Target) {
            let r = &mut self.decoder.record;
            let targets = std::mem::take(&mut r.targets);
            let (metadata, losses) = (r.metadata.take(), r.losses.take());
            *r = Record { targets, metadata, losses, ..Record::default() };
            self.decoder.meter.release(decoded);
        }
        done
    }

    /// The frames of an open-ended chunk, as [`super::read`] reads them: `Err` with the
    /// offset of the damage. Each group's snapshots are handed to `visit` once its check
    /// passes; a damaged group's are taken back like the in-memory reader takes them back.
    fn frames<R: Read>(&mut self, kind: u16, src: &mut Source<R>, visit: &mut impl FnMut(usize, &TargetRecord, &Snapshot)) -> Result<(), u64> {
        let snapshots = ChunkKind::from_u16(kind) == Some(ChunkKind::Snapshot);
        let mut group_at = src.pos;
        let mut crc = crc32fast::Hasher::new();
        let mut head = Vec::new();
        let mut check = Vec::new();
        let result = loop {
            let frame_at = src.pos;
            let Some(word) = src.varint(&mut head) else { break Err((frame_at, self.pending.len())) };
            let Ok(len) = usize::try_from(word >> 1) else { break Err((frame_at, self.pending.len())) };
            let checked = word & 1 != 0;
            let mut frame = std::mem::take(&mut self.frame);
            let read = src.read_charged(len, &mut frame, self.decoder.meter) && (!checked || src.read_exact(4, &mut check));
            self.decoder.meter.release(frame.len() as u64);
            if !read {
                self.frame = frame;
                break Err((frame_at, self.pending.len()));
            }
            crc.update(&head);
            crc.update(&frame);
            let decoded = len == 0 || !snapshots || self.snapshot_frame(&frame);
            self.frame = frame;
            if !decoded {
                // A torn tail loses only this frame; other damage, the whole group.
                break Err(if src.rest_is_zeros() { (frame_at, self.pending.len()) } else { (group_at, 0) });
            }
            if len == 0 && !checked && !self.pending.is_empty() {
                // An unchecked end mark after unchecked frames: a zero-filled tail.
                break Err((frame_at, self.pending.len()));
            }
            if checked {
                let want = u32::from_le_bytes(check[..4].try_into().unwrap());
                if std::mem::take(&mut crc).finalize() != want {
                    let this = if snapshots && len > 0 { self.pending.len() - 1 } else { self.pending.len() };
                    break Err(if src.rest_is_zeros() { (frame_at, this) } else { (group_at, 0) });
                }
                self.hand_out(visit);
                group_at = src.pos;
            }
            if len == 0 {
                break Ok(());
            }
        };
        result.map_err(|(at, keep)| {
            // Snapshots past `keep` are taken back; those before it were read intact.
            for (_, s) in self.pending.drain(keep..) {
                self.decoder.meter.release(cost(&s));
            }
            self.hand_out(visit);
            at
        })
    }

    /// Decodes one snapshot frame into `pending`; false if it does not decode.
    fn snapshot_frame(&mut self, frame: &[u8]) -> bool {
        let Some((index, rest)) = snapshot::decode(frame) else { return false };
        if index >= self.decoder.record.targets.len() {
            return false;
        }
        if self.decoded.skips(index) {
            return true;
        }
        if self.targets.len() <= index {
            self.targets.resize_with(index + 1, TargetState::default);
        }
        let target = &self.targets[index];
        let prev = self.pending.iter().rev().find(|(i, _)| *i == index).map(|(_, s)| s).or(target.last.as_ref().filter(|_| !target.keyed));
        let buffer = self.spare.pop().unwrap_or_default();
        let Some(s) = rest.snapshot_in(prev, &self.targets[index].recent, self.decoder.meter, buffer) else { return false };
        snapshot::push_recent(&mut self.targets[index].recent, &s);
        self.pending.push((index, s));
        true
    }

    /// Hands the pending snapshots out; each becomes its target's last.
    fn hand_out(&mut self, visit: &mut impl FnMut(usize, &TargetRecord, &Snapshot)) {
        for (index, s) in self.pending.drain(..) {
            visit(index, &self.decoder.record.targets[index], &s);
            let target = &mut self.targets[index];
            target.keyed = false;
            if let Some(old) = target.last.replace(s) {
                self.decoder.meter.release(cost(&old));
                if self.spare.len() < SPARE_MAX {
                    self.spare.push(old.regions);
                }
            }
        }
    }

    /// A key group starts: no snapshot before it is the next one's predecessor.
    /// The last snapshots stay until replaced (their buffers are reused).
    fn start_key_group(&mut self) {
        for t in &mut self.targets {
            t.recent = [0; snapshot::RECENT];
            t.keyed = true;
        }
    }

    /// Gives back what the targets' last snapshots took.
    fn drop_all(&mut self) {
        for t in &mut self.targets {
            if let Some(s) = t.last.take() {
                self.decoder.meter.release(cost(&s));
            }
        }
    }
}

mod parallel;
pub use parallel::THREADS_ENV;
#[cfg(test)]
mod tests;
