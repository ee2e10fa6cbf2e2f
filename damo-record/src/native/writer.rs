//! Writes a record incrementally: every chunk reaches the file (the kernel's page cache) as
//! soon as it is complete, so a killed recorder leaves everything up to its last chunk.

use std::{
    collections::HashMap,
    io::{self, Write},
};

use bytes::{BufMut, BytesMut};
use flate2::{write::ZlibEncoder, Compression};

use super::{codec::*, snapshot, ChunkKind, NativeError, FLAG_FRAMED, FLAG_KEY, FLAG_ZLIB, MAGIC, OPEN_LEN, VERSION};
use crate::model::{CodeSymbol, FootprintSnapshot, JitSymbol, Losses, Metadata, Module, ProcStatSample, Region, Snapshot, StackSample, TargetRecord, VmaSnapshot};
use crate::summary::TargetSummary;

/// Payloads at least this long are compressed when that makes them smaller.
const COMPRESS_MIN: usize = 256;

/// Identifies a target; snapshots name it by the index its Target chunk got.
type TargetId = (u32, u32, Option<u32>, u64);

pub struct NativeWriter<W: Write> {
    out: Counted<W>,
    /// Each target (without snapshots) and its snapshots summed up, by index, when
    /// [`Self::summarizing`].
    summaries: Option<Vec<Option<(TargetRecord, TargetSummary)>>>,
    payload: BytesMut,
    /// Each target's index, its last snapshot in the key group (the next one is coded against
    /// it) and its snapshots in the group.
    targets: HashMap<TargetId, TargetState>,
    /// A Snapshot chunk is open: frames may follow without a chunk header.
    run_open: bool,
    /// The next Snapshot chunk starts a key group.
    key_next: bool,
    /// When a key group ends: [`KEY_SNAPSHOTS`], [`KEY_MIN_REGIONS`], [`KEY_MAX_REGIONS`].
    key_snapshots: u32,
    key_min_regions: u64,
    /// Regions in the current key group.
    group_regions: u64,
    /// Frames since the last check, and the CRC-32 of their bytes.
    unchecked: u32,
    group_crc: crc32fast::Hasher,
    frame: Vec<u8>,
}

impl<W: Write> NativeWriter<W> {
    /// Writes the header.
    pub fn new(out: W) -> Result<Self, NativeError> {
        let mut header = [0u8; 16];
        header[..8].copy_from_slice(&MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let mut out = Counted { out, written: 0 };
        out.write_all(&header)?;
        out.flush()?;
        Ok(Self {
            out,
            summaries: None,
            payload: BytesMut::with_capacity(1 << 16),
            targets: HashMap::new(),
            run_open: false,
            key_next: true,
            key_snapshots: KEY_SNAPSHOTS,
            key_min_regions: KEY_MIN_REGIONS,
            group_regions: 0,
            unchecked: 0,
            group_crc: crc32fast::Hasher::new(),
            frame: Vec::new(),
        })
    }

    /// Key groups of `snapshots` (tests make small ones).
    #[cfg(test)]
    pub(super) fn with_key_every(mut self, snapshots: u32) -> Self {
        self.key_snapshots = snapshots;
        self.key_min_regions = 0;
        self
    }

    /// Starts a key group before the next snapshot of `target` once the current group is big
    /// enough.
    fn start_key_group_if_full(&mut self, target: &TargetId) -> Result<(), NativeError> {
        let in_group = self.targets.get(target).map_or(0, |t| t.in_group);
        let full = (in_group >= self.key_snapshots && self.group_regions >= self.key_min_regions) || self.group_regions >= KEY_MAX_REGIONS;
        if !full {
            return Ok(());
        }
        self.close_run()?;
        self.key_next = true;
        self.group_regions = 0;
        for t in self.targets.values_mut() {
            t.forget();
        }
        Ok(())
    }

    /// Appends one snapshot of `target` (whose `snapshots` are ignored), declaring the target
    /// first if it is new.
    pub fn snapshot(&mut self, target: &TargetRecord, snapshot: &Snapshot) -> Result<(), NativeError> {
        let key = self.append(target, snapshot)?;
        // Keep the snapshot for the next one's coding, reusing the old one's allocation.
        let t = self.targets.get_mut(&key).expect("declared");
        match &mut t.prev {
            Some(p) => p.clone_from(snapshot),
            None => t.prev = Some(snapshot.clone()),
        }
        Ok(())
    }

    /// [`Self::snapshot`] of a snapshot the writer keeps (the next one of its target is coded
    /// against it) instead of copying it: the regions' list of the one it kept before comes
    /// back, empty, for the caller to fill again.
    pub fn snapshot_owned(&mut self, target: &TargetRecord, snapshot: Snapshot) -> Result<Vec<Region>, NativeError> {
        let key = self.append(target, &snapshot)?;
        let t = self.targets.get_mut(&key).expect("declared");
        let mut regions = t.prev.replace(snapshot).map(|p| p.regions).unwrap_or_default();
        regions.clear();
        Ok(regions)
    }

    /// Writes the frame of `snapshot`, coded against the last one kept of `target`; the
    /// target's key.
    fn append(&mut self, target: &TargetRecord, snapshot: &Snapshot) -> Result<TargetId, NativeError> {
        let key = self.target_index(target)?;
        self.start_key_group_if_full(&key)?;
        let t = self.targets.get_mut(&key).expect("declared above");
        self.frame.clear();
        snapshot::encode(&mut self.frame, t.index, t.prev.as_ref(), &t.recent, snapshot);
        snapshot::push_recent(&mut t.recent, snapshot);
        t.in_group += 1;
        if let Some(summaries) = &mut self.summaries {
            // The snapshot is in cache now: summing it up here costs a fraction of a pass.
            let index = t.index as usize;
            if summaries.len() <= index {
                summaries.resize(index + 1, None);
            }
            match &mut summaries[index] {
                Some((_, summary)) => summary.add(snapshot),
                none => {
                    let declared = TargetRecord { snapshots: Vec::new(), ..*target };
                    *none = Some((declared, TargetSummary::new(snapshot)));
                }
            }
        }
        self.group_regions += snapshot.regions.len() as u64;
        let mut head = BytesMut::with_capacity(CHUNK_HEADER + 16);
        if !self.run_open {
            let flags = if std::mem::take(&mut self.key_next) { FLAG_FRAMED | FLAG_KEY } else { FLAG_FRAMED };
            chunk_header(&mut head, ChunkKind::Snapshot, flags, OPEN_LEN, &[]);
            self.run_open = true;
        }
        self.unchecked += 1;
        let checked = self.unchecked >= CHECK_EVERY;
        let frame_at = head.len();
        put_varint(&mut head, (self.frame.len() as u64) << 1 | u64::from(checked));
        self.group_crc.update(&head[frame_at..]);
        self.group_crc.update(&self.frame);
        self.out.write_all(&head)?;
        self.out.write_all(&self.frame)?;
        if checked {
            self.write_check()?;
        }
        self.out.flush()?;
        Ok(key)
    }

    /// Writes the CRC-32 of the frames since the last check.
    fn write_check(&mut self) -> io::Result<()> {
        self.unchecked = 0;
        self.out.write_all(&std::mem::take(&mut self.group_crc).finalize().to_le_bytes())
    }

    /// Ends the open Snapshot chunk, if any, before another chunk.
    fn close_run(&mut self) -> Result<(), NativeError> {
        if std::mem::take(&mut self.run_open) {
            if self.unchecked > 0 {
                // An end mark that checks the frames before it.
                self.group_crc.update(&[1]);
                self.out.write_all(&[1])?;
                self.write_check()?;
            } else {
                self.out.write_all(&[0])?;
            }
        }
        Ok(())
    }

    fn target_index(&mut self, t: &TargetRecord) -> Result<TargetId, NativeError> {
        let key = (t.kdamond_idx, t.context_idx, t.scheme_idx, t.target_id);
        if self.targets.contains_key(&key) {
            return Ok(key);
        }
        let index = self.targets.len() as u64;
        put_target(&mut self.payload, index, t);
        self.emit(ChunkKind::Target)?;
        self.targets.insert(key, TargetState { index, prev: None, recent: [0; snapshot::RECENT], in_group: 0 });
        Ok(key)
    }

    /// Also sums up each target's snapshots as they are written ([`crate::summary`]) and
    /// ends the record with the targets and their sums: a Summary chunk, whose offset the
    /// End chunk holds, so [`super::summaries`] reads them without a pass over the snapshots.
    pub fn summarizing(mut self) -> Self {
        self.summaries = Some(Vec::new());
        self
    }

    /// Appends modules to the table stack frames index (pass only the new ones).
    pub fn modules(&mut self, new: &[Module]) -> Result<(), NativeError> {
        let p = &mut self.payload;
        put_varint(p, new.len() as u64);
        for m in new {
            put_bytes(p, m.path.as_os_str().as_encoded_bytes());
            match &m.build_id {
                Some(id) => {
                    p.put_u8(1);
                    put_bytes(p, id);
                }
                None => p.put_u8(0),
            }
        }
        self.emit(ChunkKind::Modules)
    }

    /// Appends a batch of samples; times are delta-coded within the batch.
    pub fn stacks(&mut self, samples: &[StackSample]) -> Result<(), NativeError> {
        let p = &mut self.payload;
        put_varint(p, samples.len() as u64);
        let mut prev_ts = 0u64;
        for s in samples {
            put_varint(p, s.ts_ns.wrapping_sub(prev_ts));
            prev_ts = s.ts_ns;
            put_varint(p, u64::from(s.pid));
            put_varint(p, u64::from(s.tid));
            put_varint(p, u64::from(s.cpu));
            put_bytes(p, s.comm.as_bytes());
            put_varint(p, s.user.len() as u64);
            for f in &s.user {
                put_varint(p, u64::from(f.module.wrapping_add(1)));
                put_varint(p, f.offset);
            }
            put_varint(p, s.kernel.len() as u64);
            for &a in &s.kernel {
                put_varint(p, a);
            }
        }
        self.emit(ChunkKind::Stacks)
    }

    pub fn kernel_symbols(&mut self, symbols: &[(u64, String)]) -> Result<(), NativeError> {
        let p = &mut self.payload;
        put_varint(p, symbols.len() as u64);
        for (addr, name) in symbols {
            put_varint(p, *addr);
            put_bytes(p, name.as_bytes());
        }
        self.emit(ChunkKind::KernelSymbols)
    }

    pub fn losses(&mut self, losses: &Losses) -> Result<(), NativeError> {
        let p = &mut self.payload;
        // Counters added later go at the end: older readers take the ones they know.
        let counters = losses.counts();
        put_varint(p, counters.len() as u64);
        for c in counters {
            put_varint(p, c);
        }
        self.emit(ChunkKind::Losses)
    }

    /// Appends memory footprint snapshots. Each field group is preceded by its field count, so
    /// newer writers can add fields.
    pub fn footprints(&mut self, snapshots: &[FootprintSnapshot]) -> Result<(), NativeError> {
        let p = &mut self.payload;
        put_varint(p, snapshots.len() as u64);
        for s in snapshots {
            put_varint(p, s.ts_ns);
            match &s.system {
                Some(m) => put_fields(p, &[m.total, m.free, m.available, m.buffers, m.cached]),
                None => put_varint(p, 0),
            }
            put_varint(p, s.processes.len() as u64);
            for f in &s.processes {
                put_varint(p, u64::from(f.pid));
                put_fields(p, &[f.vsz, f.rss, f.shared, f.text, f.data]);
            }
        }
        self.emit(ChunkKind::Footprints)
    }

    /// Appends processes' mappings; each mapping's start is coded from the previous one's end.
    pub fn vmas(&mut self, snapshots: &[VmaSnapshot]) -> Result<(), NativeError> {
        let p = &mut self.payload;
        put_varint(p, snapshots.len() as u64);
        for s in snapshots {
            put_varint(p, s.ts_ns);
            put_varint(p, u64::from(s.pid));
            put_varint(p, s.vmas.len() as u64);
            let mut prev_end = 0u64;
            for v in &s.vmas {
                put_varint(p, v.start.wrapping_sub(prev_end));
                put_varint(p, v.end.wrapping_sub(v.start));
                prev_end = v.end;
                put_varint(p, v.offset);
                put_bytes(p, v.perms.as_bytes());
                put_bytes(p, v.name.as_bytes());
            }
        }
        self.emit(ChunkKind::Vmas)
    }

    pub fn proc_stats(&mut self, stats: &[ProcStatSample]) -> Result<(), NativeError> {
        let p = &mut self.payload;
        put_varint(p, stats.len() as u64);
        for s in stats {
            put_varint(p, s.ts_ns);
            put_varint(p, u64::from(s.pid));
            put_bytes(p, s.comm.as_bytes());
            put_fields(p, &[s.utime_ns, s.stime_ns, s.nr_threads, s.rss]);
        }
        self.emit(ChunkKind::ProcStats)
    }

    /// Says how the record was made; a later call replaces what an earlier one said.
    pub fn metadata(&mut self, metadata: &Metadata) -> Result<(), NativeError> {
        let json = serde_json::to_vec(metadata).map_err(|e| NativeError::Io(e.into()))?;
        self.payload.extend_from_slice(&json);
        self.emit(ChunkKind::Metadata)
    }

    /// The output (e.g. to learn where the file is).
    pub fn get_ref(&self) -> &W {
        &self.out.out
    }

    /// Hands back the output without marking the record complete: a cut record, readable up
    /// to its last frame (an open run of snapshots is closed first).
    pub fn into_inner(mut self) -> W {
        let _ = self.close_run().map_err(drop).and_then(|()| self.out.flush().map_err(drop));
        self.out.out
    }

    /// Names of sampled file offsets: per offset, its functions outermost first with their
    /// source file and line.
    pub fn code_symbols(&mut self, symbols: &[CodeSymbol]) -> Result<(), NativeError> {
        let p = &mut self.payload;
        put_varint(p, symbols.len() as u64);
        for s in symbols {
            put_varint(p, u64::from(s.module));
            put_varint(p, s.offset);
            put_varint(p, s.frames.len() as u64);
            for f in &s.frames {
                put_bytes(p, f.name.as_bytes());
                put_bytes(p, f.file.as_bytes());
                put_varint(p, u64::from(f.line));
            }
        }
        self.emit(ChunkKind::CodeSymbols)
    }

    /// The perf map entries samples fell in.
    pub fn jit_symbols(&mut self, symbols: &[JitSymbol]) -> Result<(), NativeError> {
        let p = &mut self.payload;
        put_varint(p, symbols.len() as u64);
        for s in symbols {
            put_varint(p, u64::from(s.pid));
            put_varint(p, s.start);
            put_varint(p, s.size);
            put_bytes(p, s.name.as_bytes());
        }
        self.emit(ChunkKind::JitSymbols)
    }

    /// Marks the record complete and hands back the output (e.g. to fsync a file).
    pub fn finish(mut self) -> Result<W, NativeError> {
        // Every target is declared by its first snapshot, so each has its sums.
        if let Some(summaries) = self.summaries.take().and_then(|s| s.into_iter().collect::<Option<Vec<_>>>()) {
            if summaries.len() == self.targets.len() {
                self.close_run()?;
                let at = self.out.written;
                super::summaries::put_summaries(&mut self.payload, &summaries);
                self.emit(ChunkKind::Summary)?;
                self.payload.put_u64_le(at);
            }
        }
        self.emit(ChunkKind::End)?;
        Ok(self.out.out)
    }

    /// Writes the pending payload as one chunk and flushes it.
    fn emit(&mut self, kind: ChunkKind) -> Result<(), NativeError> {
        self.close_run()?;
        let raw = self.payload.split();
        let (flags, body) = if raw.len() >= COMPRESS_MIN {
            let compressed = zlib(&raw)?;
            if compressed.len() < raw.len() {
                (FLAG_ZLIB, compressed)
            } else {
                (0, raw.to_vec())
            }
        } else {
            (0, raw.to_vec())
        };
        let len = u32::try_from(body.len()).map_err(|_| io::Error::other("chunk larger than 4 GiB"))?;
        let mut header = BytesMut::with_capacity(CHUNK_HEADER);
        chunk_header(&mut header, kind, flags, len, &body);
        self.out.write_all(&header)?;
        self.out.write_all(&body)?;
        self.out.flush()?;
        Ok(())
    }
}

const CHUNK_HEADER: usize = super::CHUNK_HEADER_LEN;

/// The output, and how many bytes went to it: where the next chunk starts.
struct Counted<W> {
    out: W,
    written: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A key group ends once a target has this many snapshots in it and the group
/// [`KEY_MIN_REGIONS`], or once it has [`KEY_MAX_REGIONS`]. A target's first snapshot in a
/// group (its key frame) costs about what 14 coded against their predecessors cost (1000
/// synthetic regions: 3,880 B against 279 B): 256 keep that near 5 % of a target's frames.
const KEY_SNAPSHOTS: u32 = 256;
/// Smaller groups would cost key frames and gain little: 256 Ki regions decode in 6 ms and
/// take 8 MB decoded (32 B a region), what a decoding thread holds. Records of small
/// snapshots (damo's fixture: 18 a snapshot) thus stay one group.
const KEY_MIN_REGIONS: u64 = 1 << 18;
/// Bounds what a group decodes to (128 MB) for snapshots of many thousand regions, at the
/// price of more key frames.
const KEY_MAX_REGIONS: u64 = 1 << 22;

struct TargetState {
    index: u64,
    prev: Option<Snapshot>,
    recent: snapshot::Recent,
    /// Snapshots in the current key group.
    in_group: u32,
}

impl TargetState {
    /// A key group starts: the next snapshot is coded against nothing.
    fn forget(&mut self) {
        self.prev = None;
        self.recent = [0; snapshot::RECENT];
        self.in_group = 0;
    }
}

/// A Target chunk's payload: the target's index and identity.
pub(super) fn put_target(p: &mut impl BufMut, index: u64, t: &TargetRecord) {
    put_varint(p, index);
    put_varint(p, u64::from(t.kdamond_idx));
    put_varint(p, u64::from(t.context_idx));
    put_opt(p, t.scheme_idx.map(u64::from));
    put_varint(p, t.target_id);
    match t.intervals {
        Some(i) => {
            p.put_u8(1);
            put_varint(p, i.sample_us);
            put_varint(p, i.aggr_us);
            put_varint(p, i.ops_update_us);
        }
        None => p.put_u8(0),
    }
}

/// kind, flags, length and the CRC-32 of kind, flags and `body`.
fn chunk_header(out: &mut BytesMut, kind: ChunkKind, flags: u16, len: u32, body: &[u8]) {
    let at = out.len();
    out.put_u16_le(kind as u16);
    out.put_u16_le(flags);
    out.put_u32_le(len);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out[at..at + 4]);
    crc.update(body);
    out.put_u32_le(crc.finalize());
}

/// A group of fields: their count, then each.
fn put_fields(p: &mut BytesMut, fields: &[u64]) {
    put_varint(p, fields.len() as u64);
    for &f in fields {
        put_varint(p, f);
    }
}

/// Snapshot frames carry a CRC-32 of themselves and the frames before them this often.
const CHECK_EVERY: u32 = 32;

fn zlib(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(data.len() / 2), Compression::fast());
    encoder.write_all(data)?;
    encoder.finish()
}
