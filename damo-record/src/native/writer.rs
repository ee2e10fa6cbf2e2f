//! Writes a record incrementally: every chunk reaches the file (the kernel's page cache) as
//! soon as it is complete, so a killed recorder leaves everything up to its last chunk.

use std::{
    collections::HashMap,
    io::{self, Write},
};

use bytes::{BufMut, BytesMut};
use flate2::{write::ZlibEncoder, Compression};

use super::{codec::*, ChunkKind, NativeError, FLAG_ZLIB, MAGIC, VERSION};
use crate::model::{Losses, Module, Snapshot, StackSample, TargetRecord};

/// Payloads at least this long are compressed when that makes them smaller.
const COMPRESS_MIN: usize = 256;

/// Identifies a target; snapshots name it by the index its Target chunk got.
type TargetId = (u32, u32, Option<u32>, u64);

pub struct NativeWriter<W: Write> {
    out: W,
    payload: BytesMut,
    targets: HashMap<TargetId, u64>,
}

impl<W: Write> NativeWriter<W> {
    /// Writes the header.
    pub fn new(mut out: W) -> Result<Self, NativeError> {
        let mut header = [0u8; 16];
        header[..8].copy_from_slice(&MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out.write_all(&header)?;
        out.flush()?;
        Ok(Self { out, payload: BytesMut::with_capacity(1 << 16), targets: HashMap::new() })
    }

    /// Appends one snapshot of `target` (whose `snapshots` are ignored), declaring the target
    /// first if it is new.
    pub fn snapshot(&mut self, target: &TargetRecord, snapshot: &Snapshot) -> Result<(), NativeError> {
        let index = self.target_index(target)?;
        let p = &mut self.payload;
        put_varint(p, index);
        put_varint(p, snapshot.start_ns);
        put_varint(p, snapshot.end_ns.saturating_sub(snapshot.start_ns));
        put_opt(p, snapshot.total_bytes);
        put_varint(p, snapshot.regions.len() as u64);
        let mut prev_end = 0u64;
        for r in &snapshot.regions {
            // Regions are sorted and adjacent more often than not: gaps are mostly 0.
            put_varint(p, r.start.wrapping_sub(prev_end));
            put_varint(p, r.end.wrapping_sub(r.start));
            put_varint(p, u64::from(r.nr_accesses));
            put_opt(p, r.age.map(u64::from));
            prev_end = r.end;
        }
        self.emit(ChunkKind::Snapshot)
    }

    fn target_index(&mut self, t: &TargetRecord) -> Result<u64, NativeError> {
        let key = (t.kdamond_idx, t.context_idx, t.scheme_idx, t.target_id);
        if let Some(&index) = self.targets.get(&key) {
            return Ok(index);
        }
        let index = self.targets.len() as u64;
        let p = &mut self.payload;
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
        self.emit(ChunkKind::Target)?;
        self.targets.insert(key, index);
        Ok(index)
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
        let counters: Vec<u64> = losses
            .kernel
            .iter()
            .copied()
            .chain([losses.incomplete_snapshots, losses.unnormalized_samples, losses.undecodable_events])
            .collect();
        put_varint(p, counters.len() as u64);
        for c in counters {
            put_varint(p, c);
        }
        self.emit(ChunkKind::Losses)
    }

    /// Marks the record complete and hands back the output (e.g. to fsync a file).
    pub fn finish(mut self) -> Result<W, NativeError> {
        self.emit(ChunkKind::End)?;
        Ok(self.out)
    }

    /// Writes the pending payload as one chunk and flushes it.
    fn emit(&mut self, kind: ChunkKind) -> Result<(), NativeError> {
        let raw = self.payload.split();
        let (flags, body) = if raw.len() >= COMPRESS_MIN {
            let compressed = zlib(&raw)?;
            if compressed.len() < raw.len() { (FLAG_ZLIB, compressed) } else { (0, raw.to_vec()) }
        } else {
            (0, raw.to_vec())
        };
        let len = u32::try_from(body.len()).map_err(|_| io::Error::other("chunk larger than 4 GiB"))?;
        let mut header = BytesMut::with_capacity(12);
        header.put_u16_le(kind as u16);
        header.put_u16_le(flags);
        header.put_u32_le(len);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header[..4]);
        crc.update(&body);
        header.put_u32_le(crc.finalize());
        self.out.write_all(&header)?;
        self.out.write_all(&body)?;
        self.out.flush()?;
        Ok(())
    }
}

fn zlib(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(data.len() / 2), Compression::fast());
    encoder.write_all(data)?;
    encoder.finish()
}
