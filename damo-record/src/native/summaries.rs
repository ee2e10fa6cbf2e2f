//! A record's targets and what each one's snapshots add up to ([`crate::summary`]), read
//! without a pass over the snapshots: a writer [`super::NativeWriter::summarizing`] ends the
//! record with a Summary chunk, whose offset the End chunk holds. The cache writes its
//! copies so, and `record` its records; a heatmap plans its passes from them.

use std::{fs::File, os::unix::fs::FileExt};

use bytes::BufMut;

use super::{
    codec::{get_varint, put_varint},
    reader::{checked_payload, Decoder},
    writer::put_target,
    ChunkKind, NativeError, CHUNK_HEADER_LEN,
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

/// The targets and summaries the end of the record in `file` holds, or `None` (a record
/// written without them, or cut or damaged there). They say what a pass over the snapshots
/// would find only if the rest of the file is intact: a pass that finds damage tells.
pub fn summaries(file: &File) -> Result<Option<Summaries>, NativeError> {
    let len = file.metadata().map_err(NativeError::Read)?.len();
    summaries_at(len, |buf, at| file.read_exact_at(buf, at)).map_err(NativeError::Read)
}

/// [`summaries`] of a record in memory.
pub fn summaries_of(data: &[u8]) -> Option<Summaries> {
    let read_at = |buf: &mut [u8], at: u64| {
        let from = usize::try_from(at).ok().filter(|&a| a.checked_add(buf.len()).is_some_and(|end| end <= data.len()));
        let from = from.ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(&data[from..from + buf.len()]);
        Ok(())
    };
    summaries_at(data.len() as u64, read_at).ok().flatten()
}

/// [`summaries`] of a record of `len` bytes that `read_at` reads.
fn summaries_at(len: u64, read_at: impl Fn(&mut [u8], u64) -> std::io::Result<()>) -> std::io::Result<Option<Summaries>> {
    if len < END_LEN {
        return Ok(None);
    }
    let mut end = [0u8; END_LEN as usize];
    read_at(&mut end, len - END_LEN)?;
    let mut meter = Meter::new();
    let (header, body) = end.split_at(CHUNK_HEADER_LEN);
    if kind_and_len(header) != (ChunkKind::End as u16, 8) || checked_payload(header, body, &mut meter).is_none() {
        return Ok(None);
    }
    // The Summary chunk ends where the End chunk starts.
    let at = u64::from_le_bytes(body.try_into().unwrap());
    let Some(chunk_len) = (len - END_LEN).checked_sub(at).filter(|&l| l >= CHUNK_HEADER_LEN as u64) else { return Ok(None) };
    if chunk_len > meter.available() {
        return Ok(None);
    }
    let mut chunk = vec![0u8; chunk_len as usize];
    read_at(&mut chunk, at)?;
    let (header, body) = chunk.split_at(CHUNK_HEADER_LEN);
    if kind_and_len(header) != (ChunkKind::Summary as u16, body.len() as u64) {
        return Ok(None);
    }
    let Some(payload) = checked_payload(header, body, &mut meter) else { return Ok(None) };
    Ok(get_summaries(&payload, &mut meter))
}

/// A chunk header's kind and length.
fn kind_and_len(header: &[u8]) -> (u16, u64) {
    (u16::from_le_bytes([header[0], header[1]]), u64::from(u32::from_le_bytes(header[4..8].try_into().unwrap())))
}

/// A Summary chunk's payload: the count, then each target (as its Target chunk has it) and
/// its summary, by index.
pub(super) fn put_summaries(p: &mut impl BufMut, summaries: &[(TargetRecord, TargetSummary)]) {
    put_varint(p, summaries.len() as u64);
    for (index, (target, s)) in summaries.iter().enumerate() {
        put_target(p, index as u64, target);
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

fn get_summaries(mut p: &[u8], meter: &mut Meter) -> Option<Summaries> {
    let p = &mut p;
    let n = usize::try_from(get_varint(p)?).ok()?;
    // Each target and summary take at least 15 bytes: a corrupt count must not allocate much.
    if n > p.len() / 15 {
        return None;
    }
    let mut decoder = Decoder::new(meter);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        decoder.target(p)?;
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
    p.is_empty().then(|| Summaries { targets: std::mem::take(&mut decoder.record.targets), summaries: out })
}
