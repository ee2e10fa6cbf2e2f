//! Inflating a `json_compressed` record on a second core while the scanner reads it. The
//! inflater writes straight into the blocks the scanner hands back once read: `Read`-based
//! inflation (`read_to_end` into a recycled block) zeroed each block first, a sixth of the
//! inflating core's time.

use std::{
    io,
    sync::mpsc::{sync_channel, Receiver, SyncSender},
};

use flate2::{Decompress, FlushDecompress, Status};

/// Bytes of JSON handed over at a time: a few blocks in flight stay in the shared cache.
pub const BLOCK: usize = 1 << 20;

/// Runs `parse` on the blocks of JSON that a second thread inflates from `data`, a zlib
/// stream; a damaged or cut stream ends with an error. `parse` may hand read blocks back to
/// be filled again: a fresh block costs page faults, as much as inflating into it.
pub fn inflating<T>(data: &[u8], parse: impl FnOnce(Receiver<io::Result<Vec<u8>>>, SyncSender<Vec<u8>>) -> T) -> T {
    inflating_shaped(data, |_| {}, parse)
}

/// [`inflating`], each block passed through `shape` on the inflating thread before it is
/// handed over (serde's fallback reads the JSON without its indentation); a block `shape`
/// empties is not handed over.
pub fn inflating_shaped<T>(data: &[u8], mut shape: impl FnMut(&mut Vec<u8>) + Send, parse: impl FnOnce(Receiver<io::Result<Vec<u8>>>, SyncSender<Vec<u8>>) -> T) -> T {
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(4);
    let (spent_tx, spent_rx) = sync_channel::<Vec<u8>>(8);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut inflater = Decompress::new(true);
            loop {
                let mut block = spent_rx.try_recv().unwrap_or_else(|_| Vec::with_capacity(BLOCK));
                block.clear();
                let filled = fill(&mut inflater, data, &mut block);
                let ended = !matches!(filled, Ok(false));
                if filled.is_ok() {
                    shape(&mut block);
                }
                let sent = match filled {
                    Ok(_) if block.is_empty() => Ok(()),
                    Ok(_) => tx.send(Ok(block)),
                    Err(e) => tx.send(Err(e)),
                };
                // Done, or the parser stopped early.
                if ended || sent.is_err() {
                    return;
                }
            }
        });
        parse(rx, spent_tx)
    })
}

/// Inflates the next bytes of `data` into `block` (within its capacity, not zeroed first)
/// until it is full (`false`) or the stream ends (`true`).
fn fill(inflater: &mut Decompress, data: &[u8], block: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        let (in_before, out_before) = (inflater.total_in(), block.len());
        let rest = usize::try_from(in_before).ok().and_then(|at| data.get(at..)).unwrap_or_default();
        let status = inflater.decompress_vec(rest, block, FlushDecompress::None).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if status == Status::StreamEnd {
            return Ok(true);
        }
        if block.len() == block.capacity() {
            return Ok(false);
        }
        if inflater.total_in() == in_before && block.len() == out_before {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "incomplete deflate stream"));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn deflated(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// What the inflating thread hands over: the blocks joined, or the error that ended them.
    fn inflated(data: &[u8]) -> io::Result<Vec<u8>> {
        inflating(data, |blocks, spent| {
            let mut out = Vec::new();
            for block in blocks {
                let block = block?;
                assert!(!block.is_empty() && block.len() <= BLOCK);
                out.extend_from_slice(&block);
                let _ = spent.try_send(block);
            }
            Ok(out)
        })
    }

    #[test]
    fn blocks_join_to_what_the_stream_holds() {
        // Several blocks' worth, and a tail after the stream that zlib ignores.
        let json: Vec<u8> = (0..BLOCK * 5 / 2).map(|i| b"[{\"a\": 1}, \n "[i % 13]).collect();
        let mut data = deflated(&json);
        assert_eq!(inflated(&data).unwrap(), json);
        data.extend_from_slice(b"trailing");
        assert_eq!(inflated(&data).unwrap(), json);
        assert_eq!(inflated(&deflated(b"")).unwrap(), b"");
    }

    #[test]
    fn a_cut_or_damaged_stream_ends_in_an_error_as_the_reader_gives_one() {
        let json: Vec<u8> = (0..BLOCK * 2).map(|i| (i * 7 % 251) as u8).collect();
        let data = deflated(&json);
        let read = |data: &[u8]| flate2::read::ZlibDecoder::new(data).read_to_end(&mut Vec::new()).map(drop);
        for cut in [0, 1, 2, 10, data.len() / 2, data.len() - 4, data.len() - 1] {
            let error = inflated(&data[..cut]).expect_err("a cut stream is an error");
            assert_eq!(error.kind(), read(&data[..cut]).expect_err("flate2's reader refuses it too").kind(), "cut at {cut}");
        }
        let mut damaged = data.clone();
        damaged[0] ^= 0x40;
        assert!(inflated(&damaged).is_err(), "a damaged header");
        let mut damaged = data;
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(inflated(&damaged).is_err(), "a wrong checksum");
    }

    /// A document the scanner does not expect (a region key of its own; keys in another
    /// order, indented over several blocks) is read by serde from the squeezed blocks as from the
    /// plain JSON; cut, it is an error.
    #[test]
    fn another_layout_reads_through_serde_as_the_plain_json_does() {
        use crate::{damo, synth};
        let record = synth::record(synth::SynthSpec { targets: 2, snapshots_per_target: 300, regions: 60, seed: 9 });
        let mut json = Vec::new();
        damo::json::write(&record, &mut json).unwrap();
        // serde_json's maps sort their keys; a region key damo does not write stops the
        // scanner.
        let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        value[0]["snapshots"][0]["regions"][0].as_object_mut().unwrap().insert("note".into(), "tab\tand \"quotes\"".into());
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        assert!(pretty.len() > 2 * BLOCK, "{} bytes", pretty.len());
        let want = super::super::read_by_serde(&pretty, &mut crate::budget::Meter::new()).unwrap();
        assert_eq!(want, damo::json::read(&json).unwrap(), "the layouts hold one record");
        let data = deflated(&pretty);
        assert_eq!(damo::read_compressed(&data).unwrap(), want);
        assert!(damo::read_compressed(&data[..data.len() / 2]).is_err(), "a cut stream");
    }

    /// A record cut or damaged anywhere is refused with the generic reader's error (the
    /// scanner never answers from part of a stream).
    #[test]
    fn a_cut_or_damaged_record_is_an_error() {
        use crate::{damo, synth};
        let record = synth::record(synth::SynthSpec { targets: 2, snapshots_per_target: 40, regions: 60, seed: 6 });
        let mut data = Vec::new();
        damo::write(&record, damo::DamoFormat::JsonCompressed, &mut data).unwrap();
        let mut json = Vec::new();
        damo::json::write(&record, &mut json).unwrap();
        let want = super::super::read_by_serde(&json, &mut crate::budget::Meter::new()).unwrap();
        assert_eq!(damo::read_compressed(&data).unwrap(), want);
        for cut in [2, data.len() / 3, data.len() / 2, data.len() - 5, data.len() - 1] {
            let error = damo::read_compressed(&data[..cut]).expect_err("a cut record").to_string();
            assert!(error.contains("zlib stream is damaged") || error.contains("EOF"), "cut at {cut}: {error}");
        }
        for at in [10, data.len() / 2, data.len() - 2] {
            let mut damaged = data.clone();
            damaged[at] ^= 0x10;
            assert!(damo::read_compressed(&damaged).is_err(), "damaged at {at}");
        }
    }
}
