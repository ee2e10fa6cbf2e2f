//! Reads a record back, keeping every intact chunk before the first damaged one.

use std::io::Read;

use bytes::Buf;
use flate2::read::ZlibDecoder;

use super::{codec::*, snapshot, ChunkKind, NativeError, CHUNK_HEADER_LEN, FLAG_FRAMED, FLAG_KEY, FLAG_ZLIB, HEADER_LEN, MAGIC, MIN_VERSION, OPEN_LEN, VERSION};
use crate::budget::{bytes_of, Meter};
use crate::model::{
    CodeSymbol, FileAddr, FootprintSnapshot, Intervals, JitSymbol, Losses, Module, ProcStatSample, ProcessFootprint, Record, SourceFrame, StackSample, SystemMemory, TargetRecord, Vma, VmaSnapshot,
};

/// Compressed chunks may not inflate past this (the writer's are a few MB at most); below it,
/// the memory limit decides.
const MAX_INFLATED: u64 = 1 << 30;

/// A record read back, and how its file ended.
#[derive(Debug)]
pub struct NativeRead {
    pub record: Record,
    /// Byte offset of the first chunk that was cut short, failed its checksum or did not
    /// decode; everything before it is in `record`.
    pub damaged_at: Option<u64>,
    /// The writer finished (an End chunk was read).
    pub complete: bool,
}

pub fn read(data: &[u8]) -> Result<NativeRead, NativeError> {
    read_with(data, &mut Meter::new())
}

/// [`read`], charging what the record takes to `meter`: past its limit is an error, not
/// damage (every decoded structure is charged before it is allocated, and a chunk inflates
/// only within what is left).
pub fn read_with(data: &[u8], meter: &mut Meter) -> Result<NativeRead, NativeError> {
    let version = check_header(&data[..data.len().min(HEADER_LEN)])?;
    let mut state = Decoder::new(meter);
    let mut pos = HEADER_LEN;
    let mut damaged_at = None;
    while pos < data.len() {
        if let Some((kind, body_start)) = framed_chunk_at(data, pos) {
            if starts_key_group(version, &data[pos..body_start]) {
                state.start_key_group();
            }
            match state.frames(kind, data, body_start) {
                Ok(next) => pos = next,
                Err(at) => {
                    damaged_at = Some(at as u64);
                    break;
                }
            }
            continue;
        }
        let decoded = chunk_at(data, pos, state.meter).and_then(|(kind, payload, next)| {
            let held = payload.capacity() as u64;
            let done = state.chunk(kind, &payload).map(|()| next);
            state.meter.release(held);
            done
        });
        match decoded {
            Some(next) => pos = next,
            None => {
                damaged_at = Some(pos as u64);
                break;
            }
        }
    }
    if state.meter.exhausted() {
        return Err(NativeError::OverBudget(state.meter.over()));
    }
    Ok(NativeRead { record: state.record, damaged_at, complete: state.complete && damaged_at.is_none() })
}

/// Checks the file header, given the file's first [`HEADER_LEN`] bytes (fewer if it is
/// shorter): the record's version.
pub(super) fn check_header(head: &[u8]) -> Result<u32, NativeError> {
    if head.len() < HEADER_LEN {
        return Err(if head.starts_with(&MAGIC[..head.len().min(8)]) && !head.is_empty() { NativeError::Short } else { NativeError::BadMagic });
    }
    if head[..8] != MAGIC {
        return Err(NativeError::BadMagic);
    }
    let version = u32::from_le_bytes(head[8..12].try_into().unwrap());
    if !(MIN_VERSION..=VERSION).contains(&version) {
        return Err(NativeError::UnknownVersion(version));
    }
    Ok(version)
}

/// Whether the intact open-ended chunk `header` starts a key group (version 3 on; version 2
/// codes every snapshot against its predecessor, whatever its chunk).
pub(super) fn starts_key_group(version: u32, header: &[u8]) -> bool {
    let flags = u16::from_le_bytes([header[2], header[3]]);
    version >= 3 && flags & FLAG_KEY != 0 && u16::from_le_bytes([header[0], header[1]]) == ChunkKind::Snapshot as u16
}

/// The kind of the open-ended chunk at `pos` and where its frames start; `None` if the chunk
/// there is not one (or is damaged: [`chunk_at`] then says so).
fn framed_chunk_at(data: &[u8], pos: usize) -> Option<(u16, usize)> {
    let header = data.get(pos..pos + CHUNK_HEADER_LEN)?;
    framed_kind(header).map(|kind| (kind, pos + CHUNK_HEADER_LEN))
}

/// The kind of an intact open-ended chunk's header; `None` for any other header.
pub(super) fn framed_kind(header: &[u8]) -> Option<u16> {
    let flags = u16::from_le_bytes([header[2], header[3]]);
    let len = u32::from_le_bytes(header[4..8].try_into().unwrap());
    let crc = u32::from_le_bytes(header[8..12].try_into().unwrap());
    (flags & FLAG_FRAMED != 0 && len == OPEN_LEN && crc32fast::hash(&header[..4]) == crc).then(|| u16::from_le_bytes([header[0], header[1]]))
}

/// The chunk at `pos`: its kind, inflated payload (charged to `meter`; the caller releases
/// it) and the offset after it; `None` if damaged or past the memory limit.
fn chunk_at(data: &[u8], pos: usize, meter: &mut Meter) -> Option<(u16, Vec<u8>, usize)> {
    let header = data.get(pos..pos + CHUNK_HEADER_LEN)?;
    let kind = u16::from_le_bytes([header[0], header[1]]);
    let len = u32::from_le_bytes(header[4..8].try_into().unwrap()) as usize;
    let body_start = pos + CHUNK_HEADER_LEN;
    let body = data.get(body_start..body_start.checked_add(len)?)?;
    Some((kind, checked_payload(header, body, meter)?, body_start + len))
}

/// The payload of a chunk whose header and body were read: inflated, charged to `meter`
/// (the caller releases it); `None` if it fails its checksum, does not inflate or passes
/// the memory limit. The in-memory and the streaming reader share it.
pub(super) fn checked_payload(header: &[u8], body: &[u8], meter: &mut Meter) -> Option<Vec<u8>> {
    let flags = u16::from_le_bytes([header[2], header[3]]);
    let len = body.len();
    let crc = u32::from_le_bytes(header[8..12].try_into().unwrap());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[..4]);
    hasher.update(body);
    if hasher.finalize() != crc {
        return None;
    }
    let payload = if flags & FLAG_ZLIB != 0 {
        // A chunk of zeros inflates 1000-fold: read at most what the budget has left (a
        // growing Vec may take twice what it holds).
        let cap = MAX_INFLATED.min(meter.available() / 2);
        let mut out = Vec::new();
        ZlibDecoder::new(body).take(cap + 1).read_to_end(&mut out).ok()?;
        if out.len() as u64 > cap {
            if cap < MAX_INFLATED {
                let _ = meter.charge(u64::MAX);
            }
            return None;
        }
        out
    } else {
        meter.charge(len as u64).ok()?;
        body.to_vec()
    };
    if flags & FLAG_ZLIB != 0 {
        meter.charge(payload.capacity() as u64).ok()?;
    }
    Some(payload)
}

/// Applies chunks to a record; the streaming reader uses it for every chunk but snapshots.
pub(super) struct Decoder<'m> {
    pub(super) record: Record,
    pub(super) complete: bool,
    pub(super) meter: &'m mut Meter,
    /// How many snapshots each target had when the current key group started: the ones in
    /// the group follow (targets declared since: 0).
    group_start: Vec<usize>,
}

impl<'m> Decoder<'m> {
    pub(super) fn new(meter: &'m mut Meter) -> Self {
        Self { record: Record::default(), complete: false, meter, group_start: Vec::new() }
    }

    /// Snapshots before this point are no target's predecessor.
    fn start_key_group(&mut self) {
        self.group_start = self.record.targets.iter().map(|t| t.snapshots.len()).collect();
    }

    /// Charges `bytes` before they are allocated; `None` past the limit.
    fn charge(&mut self, bytes: u64) -> Option<()> {
        self.meter.charge(bytes).ok()
    }

    /// Reads the frames of the open-ended chunk whose frames start at `pos`: the offset after
    /// its end mark, or the offset of the first frame that is cut short or damaged. A failed
    /// check takes back the frames it covers.
    fn frames(&mut self, kind: u16, data: &[u8], mut pos: usize) -> Result<usize, usize> {
        let snapshots = ChunkKind::from_u16(kind) == Some(ChunkKind::Snapshot);
        // Targets of the snapshots read since the last check, where the first of them starts,
        // and the CRC-32 of their frames.
        let mut unchecked: Vec<usize> = Vec::new();
        let mut group_at = pos;
        let mut crc = crc32fast::Hasher::new();
        loop {
            let frame_at = pos;
            let mut p = data.get(pos..).ok_or(frame_at)?;
            let head = get_varint(&mut p).ok_or(frame_at)?;
            let head_len = data.len() - p.len() - frame_at;
            let len = usize::try_from(head >> 1).map_err(|_| frame_at)?;
            let checked = head & 1 != 0;
            let need = len.checked_add(if checked { 4 } else { 0 }).ok_or(frame_at)?;
            if p.len() < need {
                return Err(frame_at);
            }
            let body = &p[..len];
            pos = frame_at + head_len + need;
            crc.update(&data[frame_at..frame_at + head_len]);
            crc.update(body);
            // Damage followed by nothing but zeros is a torn tail (a crash before the file's
            // data reached the disk), read like a cut; other damage makes the unchecked frames
            // before it suspect too.
            let torn = data[pos..].iter().all(|&b| b == 0);
            if len > 0 {
                if snapshots && self.snapshot_frame(body, &mut unchecked).is_none() {
                    if torn {
                        return Err(frame_at);
                    }
                    self.take_back(&unchecked);
                    return Err(group_at);
                }
                // Frames of a kind from a newer writer: skipped.
            } else if !checked && !unchecked.is_empty() {
                // The writer checks the frames before an end mark: this is a zero-filled tail
                // (a crash before the file's data reached the disk), read like a cut.
                return Err(frame_at);
            }
            if checked {
                let want = u32::from_le_bytes(p[len..len + 4].try_into().unwrap());
                if std::mem::take(&mut crc).finalize() != want {
                    if torn {
                        // Only this frame's snapshot goes.
                        let this = if snapshots && len > 0 { unchecked.len() - 1 } else { unchecked.len() };
                        self.take_back(&unchecked[this..]);
                        return Err(frame_at);
                    }
                    self.take_back(&unchecked);
                    return Err(group_at);
                }
                unchecked.clear();
                group_at = pos;
            }
            if len == 0 {
                return Ok(pos);
            }
        }
    }

    fn take_back(&mut self, unchecked: &[usize]) {
        for &index in unchecked.iter().rev() {
            self.record.targets[index].snapshots.pop();
        }
    }

    fn snapshot_frame(&mut self, body: &[u8], unchecked: &mut Vec<usize>) -> Option<()> {
        let (index, rest) = snapshot::decode(body)?;
        let target = self.record.targets.get_mut(index)?;
        let group = &target.snapshots[self.group_start.get(index).copied().unwrap_or(0)..];
        let s = rest.snapshot(group.last(), &snapshot::recent(group), self.meter)?;
        target.snapshots.push(s);
        unchecked.push(index);
        Some(())
    }

    /// Applies one intact chunk; `None` if its payload does not decode.
    pub(super) fn chunk(&mut self, kind: u16, payload: &[u8]) -> Option<()> {
        let p = &mut &payload[..];
        match ChunkKind::from_u16(kind) {
            Some(ChunkKind::Target) => self.target(p),
            // Snapshots come only in frames.
            Some(ChunkKind::Snapshot) => None,
            Some(ChunkKind::Modules) => self.modules(p),
            Some(ChunkKind::Stacks) => self.stacks(p),
            Some(ChunkKind::KernelSymbols) => self.kernel_symbols(p),
            Some(ChunkKind::Losses) => self.losses(p),
            Some(ChunkKind::Footprints) => self.footprints(p),
            Some(ChunkKind::Vmas) => self.vmas(p),
            Some(ChunkKind::ProcStats) => self.proc_stats(p),
            Some(ChunkKind::CodeSymbols) => self.code_symbols(p),
            Some(ChunkKind::JitSymbols) => self.jit_symbols(p),
            Some(ChunkKind::Metadata) => {
                self.record.metadata = Some(serde_json::from_slice(p).ok()?);
                Some(())
            }
            Some(ChunkKind::End) => {
                self.complete = true;
                Some(())
            }
            // What the snapshots add up to: a reader of them has them.
            Some(ChunkKind::Summary) => Some(()),
            // A kind from a newer writer: skipped.
            None => Some(()),
        }
    }

    pub(super) fn target(&mut self, p: &mut &[u8]) -> Option<()> {
        let index = get_varint(p)?;
        if index != self.record.targets.len() as u64 {
            return None;
        }
        let kdamond_idx = u32::try_from(get_varint(p)?).ok()?;
        let context_idx = u32::try_from(get_varint(p)?).ok()?;
        let scheme_idx = get_opt(p)?.map(u32::try_from).transpose().ok()?;
        let target_id = get_varint(p)?;
        self.charge(bytes_of::<TargetRecord>(1))?;
        let intervals = match p.try_get_u8().ok()? {
            0 => None,
            _ => Some(Intervals { sample_us: get_varint(p)?, aggr_us: get_varint(p)?, ops_update_us: get_varint(p)? }),
        };
        self.record.targets.push(TargetRecord { kdamond_idx, context_idx, scheme_idx, target_id, intervals, snapshots: Vec::new() });
        Some(())
    }

    fn modules(&mut self, p: &mut &[u8]) -> Option<()> {
        let n = get_varint(p)?;
        for _ in 0..n {
            let path = std::path::PathBuf::from(String::from_utf8_lossy(&get_bytes(p)?).into_owned());
            let build_id = match p.try_get_u8().ok()? {
                0 => None,
                _ => Some(get_bytes(p)?),
            };
            let strings = path.as_os_str().len() + build_id.as_ref().map_or(0, Vec::len);
            self.charge(bytes_of::<Module>(1) + strings as u64)?;
            self.record.modules.push(Module { path, build_id });
        }
        Some(())
    }

    fn stacks(&mut self, p: &mut &[u8]) -> Option<()> {
        let n = get_varint(p)?;
        let mut ts = 0u64;
        for _ in 0..n {
            ts = ts.wrapping_add(get_varint(p)?);
            let pid = u32::try_from(get_varint(p)?).ok()?;
            let tid = u32::try_from(get_varint(p)?).ok()?;
            let cpu = u32::try_from(get_varint(p)?).ok()?;
            let comm = String::from_utf8_lossy(&get_bytes(p)?).into_owned();
            let n_user = usize::try_from(get_varint(p)?).ok()?;
            if n_user > p.len() / 2 {
                return None;
            }
            self.charge(bytes_of::<StackSample>(1) + comm.len() as u64 + bytes_of::<FileAddr>(n_user as u64))?;
            let mut user = Vec::with_capacity(n_user);
            for _ in 0..n_user {
                let module = u32::try_from(get_varint(p)?).ok()?.wrapping_sub(1);
                user.push(FileAddr { module, offset: get_varint(p)? });
            }
            let n_kernel = usize::try_from(get_varint(p)?).ok()?;
            if n_kernel > p.len() {
                return None;
            }
            self.charge(bytes_of::<u64>(n_kernel as u64))?;
            let kernel = (0..n_kernel).map(|_| get_varint(p)).collect::<Option<Vec<u64>>>()?;
            self.record.samples.push(StackSample { ts_ns: ts, pid, tid, cpu, comm, user, kernel });
        }
        Some(())
    }

    fn kernel_symbols(&mut self, p: &mut &[u8]) -> Option<()> {
        let n = get_varint(p)?;
        for _ in 0..n {
            let addr = get_varint(p)?;
            let name = String::from_utf8_lossy(&get_bytes(p)?).into_owned();
            self.charge(bytes_of::<(u64, String)>(1) + name.len() as u64)?;
            self.record.kernel_symbols.push((addr, name));
        }
        Some(())
    }

    /// Like the other kinds below, all of the chunk or nothing of it.
    fn footprints(&mut self, p: &mut &[u8]) -> Option<()> {
        let n = get_varint(p)?;
        let mut out = Vec::new();
        for _ in 0..n {
            let ts_ns = get_varint(p)?;
            let system = match get_fields(p)?.as_slice() {
                [] => None,
                &[total, free, available, buffers, cached, ..] => Some(SystemMemory { total, free, available, buffers, cached }),
                _ => return None,
            };
            let n_processes = get_varint(p)?;
            let mut processes = Vec::new();
            self.charge(bytes_of::<FootprintSnapshot>(1))?;
            for _ in 0..n_processes {
                self.charge(bytes_of::<ProcessFootprint>(1))?;
                let pid = u32::try_from(get_varint(p)?).ok()?;
                let &[vsz, rss, shared, text, data, ..] = get_fields(p)?.as_slice() else { return None };
                processes.push(ProcessFootprint { pid, vsz, rss, shared, text, data });
            }
            out.push(FootprintSnapshot { ts_ns, system, processes });
        }
        self.record.footprints.append(&mut out);
        Some(())
    }

    fn vmas(&mut self, p: &mut &[u8]) -> Option<()> {
        let n = get_varint(p)?;
        let mut out = Vec::new();
        for _ in 0..n {
            let ts_ns = get_varint(p)?;
            let pid = u32::try_from(get_varint(p)?).ok()?;
            let n_vmas = get_varint(p)?;
            let mut vmas = Vec::new();
            self.charge(bytes_of::<VmaSnapshot>(1))?;
            let mut prev_end = 0u64;
            for _ in 0..n_vmas {
                let start = prev_end.wrapping_add(get_varint(p)?);
                let end = start.wrapping_add(get_varint(p)?);
                prev_end = end;
                let offset = get_varint(p)?;
                let perms = String::from_utf8_lossy(&get_bytes(p)?).into_owned();
                let name = String::from_utf8_lossy(&get_bytes(p)?).into_owned();
                self.charge(bytes_of::<Vma>(1) + (perms.len() + name.len()) as u64)?;
                vmas.push(Vma { start, end, perms, offset, name });
            }
            out.push(VmaSnapshot { ts_ns, pid, vmas });
        }
        self.record.vmas.append(&mut out);
        Some(())
    }

    fn proc_stats(&mut self, p: &mut &[u8]) -> Option<()> {
        let n = get_varint(p)?;
        let mut out = Vec::new();
        for _ in 0..n {
            let ts_ns = get_varint(p)?;
            let pid = u32::try_from(get_varint(p)?).ok()?;
            let comm = String::from_utf8_lossy(&get_bytes(p)?).into_owned();
            let &[utime_ns, stime_ns, nr_threads, rss, ..] = get_fields(p)?.as_slice() else { return None };
            self.charge(bytes_of::<ProcStatSample>(1) + comm.len() as u64)?;
            out.push(ProcStatSample { ts_ns, pid, comm, utime_ns, stime_ns, nr_threads, rss });
        }
        self.record.proc_stats.append(&mut out);
        Some(())
    }

    fn code_symbols(&mut self, p: &mut &[u8]) -> Option<()> {
        let n = get_varint(p)?;
        let mut out = Vec::new();
        for _ in 0..n {
            let module = u32::try_from(get_varint(p)?).ok()?;
            let offset = get_varint(p)?;
            let n_frames = usize::try_from(get_varint(p)?).ok()?;
            // Each frame takes at least 3 bytes: a corrupt count must not allocate much.
            if n_frames > p.len() / 3 {
                return None;
            }
            self.charge(bytes_of::<CodeSymbol>(1) + bytes_of::<SourceFrame>(n_frames as u64))?;
            let mut frames = Vec::with_capacity(n_frames);
            for _ in 0..n_frames {
                let name = String::from_utf8_lossy(&get_bytes(p)?).into_owned();
                let file = String::from_utf8_lossy(&get_bytes(p)?).into_owned();
                let line = u32::try_from(get_varint(p)?).ok()?;
                self.charge((name.len() + file.len()) as u64)?;
                frames.push(SourceFrame { name, file, line });
            }
            out.push(CodeSymbol { module, offset, frames });
        }
        self.record.code_symbols.append(&mut out);
        Some(())
    }

    fn jit_symbols(&mut self, p: &mut &[u8]) -> Option<()> {
        let n = get_varint(p)?;
        let mut out = Vec::new();
        for _ in 0..n {
            let pid = u32::try_from(get_varint(p)?).ok()?;
            let start = get_varint(p)?;
            let size = get_varint(p)?;
            let name = String::from_utf8_lossy(&get_bytes(p)?).into_owned();
            self.charge(bytes_of::<JitSymbol>(1) + name.len() as u64)?;
            out.push(JitSymbol { pid, start, size, name });
        }
        self.record.jit_symbols.append(&mut out);
        Some(())
    }

    fn losses(&mut self, p: &mut &[u8]) -> Option<()> {
        let n = get_varint(p)?;
        let counters = (0..n).map(|_| get_varint(p)).collect::<Option<Vec<u64>>>()?;
        let at = |i: usize| counters.get(i).copied().unwrap_or(0);
        self.record.losses = Some(Losses { kernel: [at(0), at(1), at(2), at(3)], incomplete_snapshots: at(4), unnormalized_samples: at(5), undecodable_events: at(6), mapping_records: at(7) });
        Some(())
    }
}

/// A group of fields: their count, then each. Fields past those this reader knows are skipped.
fn get_fields(p: &mut &[u8]) -> Option<Vec<u64>> {
    let n = usize::try_from(get_varint(p)?).ok()?;
    if n > p.len() {
        return None;
    }
    (0..n).map(|_| get_varint(p)).collect()
}
