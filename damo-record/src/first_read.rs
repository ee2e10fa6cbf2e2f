//! The first read of a damo JSON record (`json`, `json_compressed`), streamed: each snapshot is
//! handed on as the parser reads it and its regions' list reused, so the record is never held
//! whole. Building it was the first read's largest cost after the inflation itself (32 MB of
//! fresh pages for 1 M regions, then a pass over them and their free), and a record the size
//! of a day's recording does not fit in memory at all.
//!
//! A one-pass report takes the snapshots straight ([`stream`]) while they are encoded into
//! the cache's copy. A report of several passes reads a native copy made by the same parse
//! ([`parse_to_copy`]): in memory, summarized (a heatmap plans from its end), and stored in
//! the cache too.
//!
//! Other files, and documents the scanner does not read (not damo's layout, or damaged), are
//! not streamed: the caller reads them whole as before, which reads them or says what is
//! wrong.

use std::{
    fs::File,
    io::{BufWriter, Seek, Write},
    path::Path,
};

use crate::{
    budget::Meter,
    cache::{Slot, Unflushed},
    damo::{self, DamoFormat},
    load::{self, Format, LoadError},
    model::{Record, Snapshot, TargetRecord},
    native,
};

/// A streamed first read.
#[derive(Debug)]
pub struct Streamed {
    /// The record without its snapshots (its targets, DAMOS details).
    pub rest: Record,
    pub format: Format,
}

/// The file at `path` and its damo JSON format, if it is one: opened once, so what is read
/// is the file whose format was sniffed.
fn open_json(path: &Path) -> Result<Option<(File, DamoFormat)>, LoadError> {
    let file = load::open(path)?;
    Ok(match load::sniff_opened(&file) {
        Some(Format::Damo(format @ (DamoFormat::Json | DamoFormat::JsonCompressed))) => Some((file, format)),
        _ => None,
    })
}

/// Parses the damo JSON record at `path`, showing each snapshot to `visit` with its target's
/// index and the target (without snapshots) and, with a `slot`, storing its copy in the cache.
/// `Ok(None)` when it is not streamed (see the module's doc): drop what `visit` was shown and
/// read it whole.
pub fn stream(path: &Path, slot: Option<&Slot>, mut visit: impl FnMut(usize, &TargetRecord, &Snapshot)) -> Result<Option<Streamed>, LoadError> {
    let Some((file, format)) = open_json(path)? else { return Ok(None) };
    let mut meter = Meter::new();
    let data = load::contents(file, path, &mut meter)?;
    // A copy that fails to write is given up; the report goes on. It is encoded here, not on
    // a thread of its own: handing the snapshots over took longer, one at a time (0.145 s
    // against 0.12 s) or in batches of 16 k or 64 k regions (0.107-0.119 s against
    // 0.100-0.104 s): the inflating core has no room for a third thread.
    let mut copy = slot.and_then(|slot| slot.writer().ok());
    let mut each = |index: usize, target: &TargetRecord, snapshot: Snapshot| {
        visit(index, target, &snapshot);
        let Some(writer) = copy.as_mut() else { return snapshot.regions };
        writer.snapshot(target, snapshot).unwrap_or_else(|_| {
            copy = None;
            Vec::new()
        })
    };
    let read = damo::stream_json(&data, format == DamoFormat::JsonCompressed, &mut meter, &mut each);
    let Some(rest) = read.map_err(|e| load::damo_error(path, format, e))? else { return Ok(None) };
    // The native format keeps no DAMOS details: a record with them is not cached.
    if let Some(copy) = copy.filter(|_| rest.damos.is_none()) {
        let _ = copy.commit();
    }
    Ok(Some(Streamed { rest, format: Format::Damo(format) }))
}

/// Parses the damo JSON record at `path` into a native copy in memory (summarized, read from
/// its start), stored in the cache too with a `slot`. `Ok(None)` when it is not streamed (see
/// the module's doc) or the copy could not be made (no `memfd` here, or no memory for it):
/// read it whole.
pub fn parse_to_copy(path: &Path, slot: Option<&Slot>) -> Result<Option<(File, Format)>, LoadError> {
    let Some((file, format)) = open_json(path)? else { return Ok(None) };
    let mut meter = Meter::new();
    let data = load::contents(file, path, &mut meter)?;
    let Ok(memfd) = rustix::fs::memfd_create("damo-trace-copy", rustix::fs::MemfdFlags::CLOEXEC) else { return Ok(None) };
    let mut file = File::from(memfd);
    let Ok(writer) = native::NativeWriter::new(Unflushed(BufWriter::with_capacity(1 << 16, &file))) else { return Ok(None) };
    let mut writer = Some(writer.summarizing());
    let mut encode = |_: usize, target: &TargetRecord, snapshot: Snapshot| {
        let Some(w) = writer.as_mut() else { return snapshot.regions };
        w.snapshot_owned(target, snapshot).unwrap_or_else(|_| {
            writer = None;
            Vec::new()
        })
    };
    let read = damo::stream_json(&data, format == DamoFormat::JsonCompressed, &mut meter, &mut encode).map_err(|e| load::damo_error(path, format, e))?;
    let (Some(rest), Some(writer)) = (read, writer) else { return Ok(None) };
    // The copy holds one target per identity: targets that share one are drawn apart only
    // from the record read whole.
    if shares_identity(&rest.targets) {
        return Ok(None);
    }
    let Some(Unflushed(mut out)) = writer.finish().ok() else { return Ok(None) };
    if out.flush().is_err() {
        return Ok(None);
    }
    drop(out);
    if let Some(slot) = slot.filter(|_| rest.damos.is_none()) {
        if file.rewind().is_ok() {
            let _ = slot.store(&mut file);
        }
    }
    file.rewind().map_err(|source| LoadError::Io { path: path.display().to_string(), source })?;
    Ok(Some((file, Format::Damo(format))))
}

/// Whether two of `targets` have one kdamond, context, scheme and target id.
fn shares_identity(targets: &[TargetRecord]) -> bool {
    let mut ids: Vec<_> = targets.iter().map(|t| (t.kdamond_idx, t.context_idx, t.scheme_idx, t.target_id)).collect();
    ids.sort_unstable();
    ids.windows(2).any(|w| w[0] == w[1])
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::synth::{self, SynthSpec};

    fn written(record: &Record, format: DamoFormat, path: &Path) {
        damo::write(record, format, &mut File::create(path).unwrap()).unwrap();
    }

    /// What `stream` showed, put back together.
    fn streamed(path: &Path, slot: Option<&Slot>) -> Option<Record> {
        let mut shown: Vec<(usize, Snapshot)> = Vec::new();
        let read = stream(path, slot, |index, target, snapshot| {
            assert!(target.snapshots.is_empty());
            shown.push((index, snapshot.clone()));
        })
        .unwrap()?;
        let mut record = read.rest;
        for (index, snapshot) in shown {
            record.targets[index].snapshots.push(snapshot);
        }
        Some(record)
    }

    fn native_read(file: &mut File) -> native::NativeRead {
        let mut data = Vec::new();
        file.read_to_end(&mut data).unwrap();
        native::read(&data).unwrap()
    }

    #[test]
    fn a_streamed_first_read_shows_the_loaded_record_and_stores_its_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let record = synth::record(SynthSpec { targets: 3, snapshots_per_target: 50, regions: 40, seed: 8 });
        for (i, format) in [DamoFormat::JsonCompressed, DamoFormat::Json].into_iter().enumerate() {
            let path = tmp.path().join(format.name());
            written(&record, format, &path);
            let loaded = load::load(&path).unwrap().record;
            assert_eq!(streamed(&path, None).unwrap(), loaded, "{}", format.name());
            // With a slot, the copy is stored as the cache stores a loaded record's.
            let slot = Slot::at(&tmp.path().join("cache"), &format!("{i:016x}.dtr"));
            assert_eq!(streamed(&path, Some(&slot)).unwrap(), loaded);
            let stored = native_read(&mut File::open(slot.path()).unwrap());
            assert!(stored.complete && stored.damaged_at.is_none());
            assert_eq!(stored.record, loaded);
            assert!(native::summaries(&File::open(slot.path()).unwrap()).unwrap().is_some(), "the copy is summarized");
            // A report of several passes reads a copy in memory, stored too.
            let slot = Slot::at(&tmp.path().join("cache"), &format!("{:016x}.dtr", i + 10));
            let (mut copy, read_format) = parse_to_copy(&path, Some(&slot)).unwrap().unwrap();
            assert_eq!(read_format, Format::Damo(format));
            assert!(native::summaries(&copy).unwrap().is_some());
            assert_eq!(native_read(&mut copy).record, loaded);
            assert_eq!(std::fs::read(slot.path()).unwrap(), std::fs::read(tmp.path().join(format!("cache/damo-trace/converted/{i:016x}.dtr"))).unwrap(), "one copy, however made");
            // The writer kept the snapshots handed to it rather than copying them: the bytes
            // are those of a writer that copies.
            let mut w = native::NativeWriter::new(Vec::new()).unwrap().summarizing();
            for t in &loaded.targets {
                for s in &t.snapshots {
                    w.snapshot(t, s).unwrap();
                }
            }
            assert_eq!(w.finish().unwrap(), std::fs::read(slot.path()).unwrap());
        }
    }

    #[test]
    fn what_is_not_streamed_is_left_to_a_whole_read() {
        let tmp = tempfile::tempdir().unwrap();
        let record = synth::record(SynthSpec { targets: 1, snapshots_per_target: 5, regions: 10, seed: 4 });
        let perf = tmp.path().join("perf_script");
        written(&record, DamoFormat::PerfScript, &perf);
        assert!(streamed(&perf, None).is_none());
        assert!(parse_to_copy(&perf, None).unwrap().is_none());
        // A document the scanner does not read (a region key damo does not write).
        let mut json = Vec::new();
        damo::json::write(&record, &mut json).unwrap();
        let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let last = value[0]["snapshots"].as_array().unwrap().len() - 1;
        value[0]["snapshots"][last]["regions"][0].as_object_mut().unwrap().insert("note".into(), 1.into());
        let other = tmp.path().join("other.json");
        std::fs::write(&other, serde_json::to_vec(&value).unwrap()).unwrap();
        let slot = Slot::at(&tmp.path().join("cache"), "0000000000000001.dtr");
        assert!(streamed(&other, Some(&slot)).is_none());
        assert!(parse_to_copy(&other, Some(&slot)).unwrap().is_none());
        assert!(!slot.path().exists(), "no copy of what was not streamed");
        assert_eq!(std::fs::read_dir(tmp.path().join("cache/damo-trace/converted")).unwrap().count(), 0, "no temporary file left");
        // Two targets of one identity: one in a native copy, two in the record.
        let twins = tmp.path().join("twins.json");
        let doubled = format!("[{0}, {0}]", r#"{"target_id": 4, "snapshots": [{"end_time": 1, "regions": [{"start": 0, "end": 4096}]}]}"#);
        std::fs::write(&twins, doubled).unwrap();
        assert_eq!(streamed(&twins, None).unwrap().targets.len(), 2);
        assert!(parse_to_copy(&twins, None).unwrap().is_none());
        // A damaged one: the whole read says what is wrong.
        let broken = tmp.path().join("broken.json");
        std::fs::write(&broken, &json[..json.len() / 2]).unwrap();
        assert!(streamed(&broken, None).is_none());
        assert!(load::load(&broken).is_err());
    }

    #[test]
    fn a_record_with_damos_details_streams_but_is_not_stored() {
        let tmp = tempfile::tempdir().unwrap();
        let text = br#"[{"target_id": 1, "intervals": {"sample_us": 5000, "aggr_us": 100000, "ops_update_us": 1000000}, "snapshots": [
            {"start_time": 1, "end_time": 2, "regions": [{"start": 4096, "end": 8192, "nr_accesses": {"samples": 3}, "age": {"aggr_intervals": 2}, "sz_filter_passed": "4 KiB"}],
             "damos_stats": {"nr_tried": 1, "sz_tried": 4096, "nr_applied": 0, "sz_applied": 0, "sz_ops_filter_passed": 0, "qt_exceeds": 0}}]}]"#;
        let path = tmp.path().join("damos.json");
        std::fs::write(&path, text).unwrap();
        let slot = Slot::at(&tmp.path().join("cache"), "0000000000000002.dtr");
        let loaded = load::load(&path).unwrap().record;
        assert!(loaded.damos.is_some());
        assert_eq!(streamed(&path, Some(&slot)).unwrap(), loaded);
        assert!(!slot.path().exists(), "the native format keeps no DAMOS details");
        let (mut copy, _) = parse_to_copy(&path, Some(&slot)).unwrap().unwrap();
        assert_eq!(native_read(&mut copy).record, Record { targets: loaded.targets.clone(), ..Default::default() }, "the copy without them");
        assert!(!slot.path().exists());
    }
}
