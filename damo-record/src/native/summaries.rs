//! A record's targets and what each one's snapshots add up to ([`crate::summary`]), read
//! without a pass over the snapshots: a writer [`super::NativeWriter::summarizing`] declares
//! the targets first and ends the record with a Summary chunk, whose offset the End chunk
//! holds. The cache writes its copies so, and a heatmap plans its passes from them.

use std::{
    fs::File,
    io::{BufReader, Read, Seek, SeekFrom},
    os::unix::fs::FileExt,
};

use bytes::BufMut;

use super::{
    codec::{get_varint, put_varint},
    reader::{check_header, checked_payload, framed_kind, Decoder},
    ChunkKind, NativeError, CHUNK_HEADER_LEN, HEADER_LEN,
};
use crate::{
    budget::Meter,
    model::TargetRecord,
    summary::{Coverage, TargetSummary},
};

/// A record's targets and their summaries, a target's by its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summaries {
    pub targets: Vec<TargetRecord>,
    pub summaries: Vec<TargetSummary>,
}

/// The End chunk of a summarized record: its header and the Summary chunk's offset.
const END_LEN: u64 = CHUNK_HEADER_LEN as u64 + 8;

/// The targets declared before the first snapshot of the record in `file` and the summaries
/// its end holds, when there is one for each; else `None`. Reads from the start, wherever
/// the file's offset was (a recording's record has none).
/// Damage in what is read is `None` too: a pass over the record finds it.
pub fn summaries(file: &File) -> Result<Option<Summaries>, NativeError> {
    let len = file.metadata().map_err(NativeError::Read)?.len();
    let Some(targets) = leading_targets(file)? else { return Ok(None) };
    if len < END_LEN {
        return Ok(None);
    }
    let mut end = [0u8; END_LEN as usize];
    file.read_exact_at(&mut end, len - END_LEN).map_err(NativeError::Read)?;
    let mut meter = Meter::new();
    let (header, body) = end.split_at(CHUNK_HEADER_LEN);
    if kind_and_len(header) != (ChunkKind::End as u16, 8) || checked_payload(header, body, &mut meter).is_none() {
        return Ok(None);
    }
    // The Summary chunk ends where the End chunk starts.
    let at = u64::from_le_bytes(body.try_into().unwrap());
    let Some(chunk_len) = (len - END_LEN).checked_sub(at).filter(|&l| l >= CHUNK_HEADER_LEN as u64) else { return Ok(None) };
    let Ok(chunk_len) = usize::try_from(chunk_len) else { return Ok(None) };
    if chunk_len as u64 > meter.available() {
        return Ok(None);
    }
    let mut chunk = vec![0u8; chunk_len];
    file.read_exact_at(&mut chunk, at).map_err(NativeError::Read)?;
    let (header, body) = chunk.split_at(CHUNK_HEADER_LEN);
    if kind_and_len(header) != (ChunkKind::Summary as u16, body.len() as u64) {
        return Ok(None);
    }
    let Some(payload) = checked_payload(header, body, &mut meter) else { return Ok(None) };
    Ok(get_summaries(&payload).filter(|s| s.len() == targets.len()).map(|summaries| Summaries { targets, summaries }))
}

/// A chunk header's kind and length.
fn kind_and_len(header: &[u8]) -> (u16, u64) {
    (u16::from_le_bytes([header[0], header[1]]), u64::from(u32::from_le_bytes(header[4..8].try_into().unwrap())))
}

/// The targets of the Target chunks right after the header, up to the first snapshot; `None`
/// if another chunk comes first or one does not read.
fn leading_targets(file: &File) -> Result<Option<Vec<TargetRecord>>, NativeError> {
    let mut input = BufReader::with_capacity(1 << 12, file);
    input.seek(SeekFrom::Start(0)).map_err(NativeError::Read)?;
    let mut head = [0u8; HEADER_LEN];
    if input.read_exact(&mut head).is_err() {
        return Ok(None);
    }
    check_header(&head)?;
    let mut meter = Meter::new();
    let mut decoder = Decoder::new(&mut meter);
    let mut header = [0u8; CHUNK_HEADER_LEN];
    loop {
        match input.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(NativeError::Read(e)),
        }
        if framed_kind(&header).is_some() {
            let targets = std::mem::take(&mut decoder.record.targets);
            return Ok((!targets.is_empty()).then_some(targets));
        }
        let (kind, len) = kind_and_len(&header);
        if kind != ChunkKind::Target as u16 {
            return Ok(None);
        }
        let mut body = Vec::new();
        // A length that lies reads no more than the file holds.
        if (&mut input).take(len).read_to_end(&mut body).map_err(NativeError::Read)? as u64 != len {
            return Ok(None);
        }
        let Some(payload) = checked_payload(&header, &body, decoder.meter) else { return Ok(None) };
        if decoder.chunk(kind, &payload).is_none() {
            return Ok(None);
        }
    }
}

/// A Summary chunk's payload: the count, then each target's summary, by index.
pub(super) fn put_summaries(p: &mut impl BufMut, summaries: &[TargetSummary]) {
    put_varint(p, summaries.len() as u64);
    for s in summaries {
        let c = &s.coverage;
        for v in [s.snapshots, s.first_start_ns, s.first_end_ns, s.last_end_ns, u64::from(s.first_longest_age), u64::from(s.busiest), c.lowest, c.highest, c.gaps.len() as u64] {
            put_varint(p, v);
        }
        for &(start, end) in &c.gaps {
            put_varint(p, start);
            put_varint(p, end);
        }
    }
}

fn get_summaries(mut p: &[u8]) -> Option<Vec<TargetSummary>> {
    let p = &mut p;
    let n = usize::try_from(get_varint(p)?).ok()?;
    // Each summary takes at least 9 bytes: a corrupt count must not allocate much.
    if n > p.len() / 9 {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut next = || get_varint(p);
        let (snapshots, first_start_ns, first_end_ns, last_end_ns) = (next()?, next()?, next()?, next()?);
        let first_longest_age = u32::try_from(next()?).ok()?;
        let busiest = u32::try_from(next()?).ok()?;
        let (lowest, highest, n_gaps) = (next()?, next()?, usize::try_from(next()?).ok()?);
        if n_gaps > p.len() / 2 {
            return None;
        }
        let gaps = (0..n_gaps).map(|_| Some((get_varint(p)?, get_varint(p)?))).collect::<Option<Vec<_>>>()?;
        let coverage = Coverage { lowest, highest, gaps };
        out.push(TargetSummary { snapshots, first_start_ns, first_end_ns, last_end_ns, first_longest_age, busiest, coverage });
    }
    p.is_empty().then_some(out)
}
