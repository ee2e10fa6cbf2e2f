//! [`super::stream`] on every core, for records with key groups (version 3).
//!
//! The calling thread reads the file a key group at a time, keeping its bytes as they are (a
//! Snapshot chunk's end is found by walking its frames' lengths, without decoding them), and
//! hands each group to a worker thread, which decodes its snapshots; then, in file order, it
//! applies each group: other chunks as the sequential reader applies them, snapshots to
//! `visit`. Anything but a group decoded whole — damage, a chunk cut short, a group past its
//! share of the memory limit — makes it read the rest of the file as the sequential reader
//! does, from that group's first byte (with the bytes it holds, then the input), so what it
//! yields stays exactly what [`super::super::read`] yields.
//!
//! Memory: one group per worker and the one being applied, their bytes charged to the
//! meter as they are read and what they decode to when they are applied; a worker decodes a
//! group within a share of what the meter has left, or gives up (the sequential reader then
//! decides).

use std::{
    collections::VecDeque,
    io::{self, BufReader, Cursor, Read},
    sync::{mpsc, Mutex},
    thread,
};

use super::{cost, Source, Stream, BUFFER};
use crate::{
    budget::Meter,
    model::{Region, Snapshot, TargetRecord},
    native::{
        codec::get_varint,
        reader::{checked_payload, framed_kind, starts_key_group, Decoder},
        snapshot::{self, Recent, RECENT},
        stream::{Rest, Targets},
        ChunkKind, CHUNK_HEADER_LEN,
    },
};

// What the calling thread did, for tests: groups applied as workers decoded them, and reads
// handed to the sequential reader.
#[cfg(test)]
thread_local! {
    pub(super) static APPLIED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    pub(super) static REPLAYED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Decoding threads, when set (1: the sequential reader). Decoding ahead gains only where a
/// core is free: on a busy machine it costs a fifth more CPU and a group per thread.
pub const THREADS_ENV: &str = "DAMO_TRACE_DECODE_THREADS";

/// How many threads decode a record of `version` (`threads`, else [`THREADS_ENV`], else one
/// per core): `None` for the sequential reader (records without key groups, or one thread).
pub(super) fn workers(version: u32, threads: Option<usize>) -> Option<usize> {
    let from_env = || std::env::var(THREADS_ENV).ok().and_then(|v| v.trim().parse::<usize>().ok());
    let n = threads.or_else(from_env).unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()));
    (version >= 3 && n > 1).then_some(n)
}

/// A chunk's bytes as the file holds them, header included.
struct Item {
    at: u64,
    raw: Vec<u8>,
    /// A Snapshot chunk, and how many targets the chunks before it declare.
    snapshots: Option<usize>,
}

/// A key group: its chunks up to the next key Snapshot chunk.
struct Group {
    at: u64,
    items: Vec<Item>,
    /// The bytes charged to the meter.
    held: u64,
    /// The input ended or failed inside it, or it has what only the sequential reader reads.
    replay: bool,
}

/// A group back from a worker, with its snapshots per Snapshot chunk (`None`: not decoded
/// whole) and what they take.
struct Decoded {
    group: Group,
    snapshots: Option<Vec<Vec<(usize, Snapshot)>>>,
    cost: u64,
}

type Job = (Group, u64, mpsc::SyncSender<Decoded>);

/// Region buffers handed back once their snapshots are visited, for the workers to decode
/// into: freed on one thread and allocated on another, each group's 8 MB went back to the
/// kernel and faulted in again (a third of the time on a 10 M-region record).
#[derive(Default)]
struct Pool(Mutex<Vec<Vec<Region>>>);

/// Buffers kept at most: those of the groups in flight.
const POOL_MAX: usize = 4096;

impl Pool {
    fn put(&self, buffers: &mut Vec<Vec<Region>>) {
        if let Ok(mut pool) = self.0.lock() {
            let room = POOL_MAX.saturating_sub(pool.len());
            pool.extend(buffers.drain(..).take(room));
        }
        buffers.clear();
    }

    /// Up to `n` buffers into `spare`.
    fn take(&self, n: usize, spare: &mut Vec<Vec<Region>>) {
        if let Ok(mut pool) = self.0.lock() {
            let from = pool.len().saturating_sub(n);
            spare.extend(pool.drain(from..));
        }
    }
}

enum Pending {
    Ready(Decoded),
    Sent(mpsc::Receiver<Decoded>),
    Replay(Group),
}

/// Reads the rest of `src` (after the header) with `workers` threads: the offset of the
/// damage, if any, and the input's error.
pub(super) fn run<R: Read>(state: &mut Stream<'_>, src: Source<R>, rest: Rest, workers: usize, visit: &mut impl FnMut(usize, &TargetRecord, &Snapshot)) -> (Option<u64>, Option<io::Error>) {
    let mut splitter = Splitter::new(src);
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
    let jobs = Mutex::new(jobs_rx);
    let pool = Pool::default();
    let decoded = state.decoded;
    // Each worker decodes one group while this thread applies the oldest.
    let in_flight = workers + 1;
    thread::scope(|scope| {
        let mut spawned = false;
        let mut pipeline: VecDeque<(u64, Pending)> = VecDeque::new();
        let outcome = loop {
            while pipeline.len() < in_flight && !splitter.done {
                let Some(group) = splitter.group(state.decoder.meter) else { break };
                let held = group.held;
                if group.replay {
                    pipeline.push_back((held, Pending::Replay(group)));
                    break;
                }
                // A group may decode to what the meter has left, shared with the groups ahead.
                let allowance = state.decoder.meter.available() / (in_flight as u64 + 1);
                if splitter.done && pipeline.is_empty() {
                    // The last group and none ahead: no thread to wait for.
                    pipeline.push_back((held, Pending::Ready(decode(group, allowance, &pool, decoded))));
                    continue;
                }
                if !spawned {
                    spawned = true;
                    for _ in 0..workers {
                        scope.spawn(|| work(&jobs, &pool, decoded));
                    }
                }
                let (done_tx, done_rx) = mpsc::sync_channel(1);
                jobs_tx.send((group, allowance, done_tx)).expect("workers take jobs until the sender is dropped");
                pipeline.push_back((held, Pending::Sent(done_rx)));
            }
            let Some((_, next)) = pipeline.pop_front() else { break None };
            let decoded = match next {
                Pending::Ready(d) => d,
                Pending::Sent(rx) => rx.recv().expect("a worker hands back every group"),
                Pending::Replay(group) => break Some(group),
            };
            match apply(state, decoded, rest, visit, &pool) {
                Ok(None) => {
                    #[cfg(test)]
                    APPLIED.with(|n| n.set(n.get() + 1));
                }
                Ok(Some(damaged_at)) => {
                    for (held, _) in pipeline.drain(..) {
                        state.decoder.meter.release(held);
                    }
                    drop(jobs_tx);
                    return (Some(damaged_at), splitter.src.error.take());
                }
                Err(group) => break Some(group),
            }
        };
        // The groups read ahead, given back by their workers, for the sequential reader.
        let mut groups: Vec<Group> = outcome.into_iter().collect();
        for (_, pending) in pipeline.drain(..) {
            groups.push(match pending {
                Pending::Ready(d) => d.group,
                Pending::Sent(rx) => rx.recv().expect("a worker hands back every group").group,
                Pending::Replay(group) => group,
            });
        }
        drop(jobs_tx);
        match groups.is_empty() {
            true => (None, splitter.src.error.take()),
            false => replay(state, splitter, groups, rest, visit),
        }
    })
}

fn work(jobs: &Mutex<mpsc::Receiver<Job>>, pool: &Pool, decoded: Targets) {
    loop {
        let job = jobs.lock().map_err(drop).and_then(|rx| rx.recv().map_err(drop));
        let Ok((group, allowance, done)) = job else { return };
        // The reader may have stopped waiting (damage ahead ended the read).
        let _ = done.send(decode(group, allowance, pool, decoded));
    }
}

fn decode(group: Group, allowance: u64, pool: &Pool, decoded: Targets) -> Decoded {
    let mut meter = Meter::with_limit(allowance);
    let snapshots = decode_group(&group, &mut meter, pool, decoded);
    Decoded { group, snapshots, cost: meter.used() }
}

/// The snapshots of `decoded` targets in a group's Snapshot chunks, each target's first coded
/// against nothing; `None` unless every frame decodes, every check passes and every chunk
/// ends as the writer ends it (the sequential reader handles anything else).
fn decode_group(group: &Group, meter: &mut Meter, pool: &Pool, decoded: Targets) -> Option<Vec<Vec<(usize, Snapshot)>>> {
    let mut spare = Vec::new();
    // Each target's last snapshot (chunk and place in it) and recent durations.
    let mut last: Vec<Option<(usize, usize)>> = Vec::new();
    let mut recent: Vec<Recent> = Vec::new();
    let mut out: Vec<Vec<(usize, Snapshot)>> = Vec::new();
    for item in &group.items {
        let Some(targets) = item.snapshots else { continue };
        if last.len() < targets {
            last.resize(targets, None);
            recent.resize(targets, [0; RECENT]);
        }
        let mut chunk: Vec<(usize, Snapshot)> = Vec::new();
        let mut p = &item.raw[CHUNK_HEADER_LEN..];
        let mut crc = crc32fast::Hasher::new();
        let mut unchecked = 0usize;
        loop {
            let frame = p;
            let word = get_varint(&mut p)?;
            crc.update(&frame[..frame.len() - p.len()]);
            let len = usize::try_from(word >> 1).ok()?;
            let checked = word & 1 != 0;
            let body = p.get(..len)?;
            crc.update(body);
            p = &p[len..];
            if len > 0 {
                let (index, rest) = snapshot::decode(body)?;
                if index >= targets {
                    return None;
                }
                unchecked += 1;
                if !decoded.skips(index) {
                    let prev = last[index].map(|(k, j)| if k == out.len() { &chunk[j].1 } else { &out[k][j].1 });
                    if spare.is_empty() {
                        pool.take(64, &mut spare);
                    }
                    let s = rest.snapshot_in(prev, &recent[index], meter, spare.pop().unwrap_or_default())?;
                    snapshot::push_recent(&mut recent[index], &s);
                    last[index] = Some((out.len(), chunk.len()));
                    chunk.push((index, s));
                }
            } else if !checked && unchecked > 0 {
                // The writer checks the frames before an end mark.
                return None;
            }
            if checked {
                let want = u32::from_le_bytes(p.get(..4)?.try_into().ok()?);
                p = &p[4..];
                if std::mem::take(&mut crc).finalize() != want {
                    return None;
                }
                unchecked = 0;
            }
            if len == 0 {
                break;
            }
        }
        out.push(chunk);
    }
    Some(out)
}

/// Applies a decoded group in file order: `Ok` with the offset of a damaged chunk that ends
/// the read, or the group back when it was not decoded whole or its snapshots do not fit.
fn apply(state: &mut Stream<'_>, decoded: Decoded, rest: Rest, visit: &mut impl FnMut(usize, &TargetRecord, &Snapshot), pool: &Pool) -> Result<Option<u64>, Group> {
    let Decoded { group, snapshots, cost: decoded_cost } = decoded;
    let meter = &mut *state.decoder.meter;
    let Some(snapshots) = snapshots.filter(|_| decoded_cost <= meter.available()) else { return Err(group) };
    meter.charge(decoded_cost).expect("checked against what is available");
    let mut left = (group.held, decoded_cost);
    let mut snapshots = snapshots.into_iter();
    let mut visited = Vec::new();
    for item in group.items {
        left.0 -= item.raw.len() as u64;
        match item.snapshots {
            None => {
                // The body's charge goes as the sequential reader's goes.
                state.decoder.meter.release(CHUNK_HEADER_LEN as u64);
                let (header, body) = item.raw.split_at(CHUNK_HEADER_LEN);
                if state.chunk_body(header, body, rest).is_none() {
                    state.decoder.meter.release(left.0 + left.1);
                    return Ok(Some(item.at));
                }
            }
            Some(_) => {
                state.decoder.meter.release(item.raw.len() as u64);
                for (index, s) in snapshots.next().into_iter().flatten() {
                    visit(index, &state.decoder.record.targets[index], &s);
                    left.1 -= cost(&s);
                    state.decoder.meter.release(cost(&s));
                    visited.push(s.regions);
                }
                pool.put(&mut visited);
            }
        }
    }
    Ok(None)
}

/// Reads `groups` (read ahead, in file order, their charges still held) and the rest of the
/// input as the sequential reader does.
fn replay<R: Read>(state: &mut Stream<'_>, mut splitter: Splitter<R>, groups: Vec<Group>, rest: Rest, visit: &mut impl FnMut(usize, &TargetRecord, &Snapshot)) -> (Option<u64>, Option<io::Error>) {
    #[cfg(test)]
    REPLAYED.with(|n| n.set(n.get() + 1));
    let at = groups[0].at;
    let mut bytes = Vec::new();
    for group in groups {
        state.decoder.meter.release(group.held);
        for item in group.items {
            bytes.extend_from_slice(&item.raw);
        }
    }
    if let Some((_, header)) = splitter.next_key.take() {
        state.decoder.meter.release(header.len() as u64);
        bytes.extend_from_slice(&header);
    }
    let error = splitter.src.error.take();
    let input = Cursor::new(bytes).chain(splitter.src.input);
    let mut src = Source::new(BufReader::with_capacity(BUFFER, input), at);
    let damaged_at = state.run(&mut src, rest, visit);
    (damaged_at, error.or(src.error.take()))
}

/// Reads a record's key groups, their chunks' bytes as they are.
struct Splitter<R> {
    src: Source<R>,
    /// The header of the key Snapshot chunk that ended the last group, and where it is.
    next_key: Option<(u64, Vec<u8>)>,
    /// The targets the chunks read so far declare, decoded as the record's decoder will.
    targets: Vec<TargetRecord>,
    targets_meter: Meter,
    /// The input is read.
    done: bool,
}

impl<R: Read> Splitter<R> {
    fn new(src: Source<R>) -> Self {
        Self { src, next_key: None, targets: Vec::new(), targets_meter: Meter::with_limit(u64::MAX), done: false }
    }

    /// The next group, its bytes charged to `meter`; `None` at the end of the input.
    fn group(&mut self, meter: &mut Meter) -> Option<Group> {
        // The key chunk's header read with the last group starts this one.
        let (at, held) = self.next_key.as_ref().map_or((self.src.pos, 0), |(at, header)| (*at, header.len() as u64));
        let mut group = Group { at, items: Vec::new(), held, replay: false };
        loop {
            let (item_at, header) = match self.next_key.take() {
                Some(key) => key,
                None => {
                    if !self.src.has_more() {
                        self.done = true;
                        return (!group.items.is_empty()).then_some(group);
                    }
                    let item_at = self.src.pos;
                    let mut header = Vec::new();
                    let whole = self.append(CHUNK_HEADER_LEN, &mut header, meter, &mut group.held);
                    if !whole {
                        return Some(self.replay(group, item_at, header));
                    }
                    (item_at, header)
                }
            };
            let kind = framed_kind(&header);
            // Chunks before the first snapshots (metadata, targets) join the first group.
            if kind.is_some() && starts_key_group(3, &header) && group.items.iter().any(|i| i.snapshots.is_some()) {
                group.held -= header.len() as u64;
                self.next_key = Some((item_at, header));
                return Some(group);
            }
            let mut raw = header;
            let item = match kind {
                Some(kind) if kind == ChunkKind::Snapshot as u16 => {
                    if !self.walk_frames(&mut raw, meter, &mut group.held) {
                        return Some(self.replay(group, item_at, raw));
                    }
                    Item { at: item_at, raw, snapshots: Some(self.targets.len()) }
                }
                // Frames of a kind from a newer writer: the sequential reader skips them.
                Some(_) => return Some(self.replay(group, item_at, raw)),
                None => {
                    let len = u32::from_le_bytes(raw[4..8].try_into().unwrap()) as usize;
                    if !self.append(len, &mut raw, meter, &mut group.held) {
                        return Some(self.replay(group, item_at, raw));
                    }
                    if u16::from_le_bytes([raw[0], raw[1]]) == ChunkKind::Target as u16 {
                        self.declare(&raw);
                    }
                    Item { at: item_at, raw, snapshots: None }
                }
            };
            group.items.push(item);
        }
    }

    /// `group`, ending in the `raw` bytes read of the chunk at `at`, for the sequential reader:
    /// nothing is read after it.
    fn replay(&mut self, mut group: Group, at: u64, raw: Vec<u8>) -> Group {
        self.done = true;
        group.items.push(Item { at, raw, snapshots: None });
        group.replay = true;
        group
    }

    /// Reads the frames of an open-ended chunk into `raw` up to its end mark; false if the
    /// input ends or fails first or a length does not parse.
    fn walk_frames(&mut self, raw: &mut Vec<u8>, meter: &mut Meter, held: &mut u64) -> bool {
        let mut head = Vec::new();
        loop {
            let word = self.src.varint(&mut head);
            if !self.charge(head.len(), meter, held) {
                return false;
            }
            raw.extend_from_slice(&head);
            let Some(word) = word else { return false };
            let Some(need) = usize::try_from(word >> 1).ok().and_then(|len| len.checked_add(if word & 1 != 0 { 4 } else { 0 })) else { return false };
            if !self.append(need, raw, meter, held) {
                return false;
            }
            if word >> 1 == 0 {
                return true;
            }
        }
    }

    /// Appends `n` bytes of the input to `raw`, charged to `meter` first; false if they do
    /// not fit or the input ends first.
    fn append(&mut self, n: usize, raw: &mut Vec<u8>, meter: &mut Meter, held: &mut u64) -> bool {
        if !self.charge(n, meter, held) {
            return false;
        }
        let before = raw.len();
        if self.src.error.is_none() {
            match (&mut self.src.input).take(n as u64).read_to_end(raw) {
                Ok(got) => self.src.pos += got as u64,
                Err(e) => self.src.error = Some(e),
            }
        }
        let got = raw.len() - before;
        meter.release((n - got) as u64);
        *held -= (n - got) as u64;
        got == n
    }

    /// Charges `n` bytes when they fit, without marking the meter exhausted: past the limit
    /// the sequential reader decides.
    fn charge(&mut self, n: usize, meter: &mut Meter, held: &mut u64) -> bool {
        if n as u64 > meter.available() {
            return false;
        }
        meter.charge(n as u64).expect("checked against what is available");
        *held += n as u64;
        true
    }

    /// Decodes a Target chunk as the record's decoder will, to know how many targets the
    /// snapshots after it may name.
    fn declare(&mut self, raw: &[u8]) {
        let (header, body) = raw.split_at(CHUNK_HEADER_LEN);
        let mut decoder = Decoder::new(&mut self.targets_meter);
        decoder.record.targets = std::mem::take(&mut self.targets);
        if let Some(payload) = checked_payload(header, body, decoder.meter) {
            decoder.chunk(ChunkKind::Target as u16, &payload);
        }
        self.targets = std::mem::take(&mut decoder.record.targets);
    }
}
