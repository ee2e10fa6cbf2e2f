//! A cache of damo records converted to damo-trace's format, so only the first report on a
//! big damo file pays for parsing JSON or text: later ones read the compact native copy
//! (tens of millions of regions per second).
//!
//! Entries live in `$XDG_CACHE_HOME/damo-trace/converted` (or `~/.cache/…`), named by a hash
//! of the file's path, size, modification time and inode, so a changed file misses. Only
//! files of at least [`MIN_SIZE`] are cached, at most [`MAX_ENTRIES`] of them (oldest out).
//! `DAMO_TRACE_NO_CACHE=1` turns it off. Any cache failure falls back to parsing.

use std::{
    hash::{Hash, Hasher},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use crate::{
    load::{self, Format, LoadError, Loaded},
    native,
};

pub const MIN_SIZE: u64 = 8 << 20;
pub const MAX_ENTRIES: usize = 16;

/// Like [`load::load`], through the cache for big damo files.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let Some(entry) = entry_for(path) else { return load::load(path) };
    if let Ok(data) = std::fs::read(&entry) {
        if let Ok(read) = native::read(&data) {
            if read.complete && read.damaged_at.is_none() {
                // The format is the original file's: reports name what the user gave them.
                let format = load::sniff_file(path).unwrap_or(Format::Native);
                return Ok(Loaded { record: read.record, format, damage: None });
            }
        }
    }
    let loaded = load::load(path)?;
    if matches!(loaded.format, Format::Damo(_)) && loaded.damage.is_none() && loaded.record.damos.is_none() {
        let _ = store(&entry, &loaded);
    }
    Ok(loaded)
}

fn dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("damo-trace/converted"))
}

fn entry_for(path: &Path) -> Option<PathBuf> {
    if std::env::var_os("DAMO_TRACE_NO_CACHE").is_some_and(|v| v != "0") {
        return None;
    }
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() < MIN_SIZE {
        return None;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (std::fs::canonicalize(path).ok()?, meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino(), meta.dev()).hash(&mut h);
    Some(dir()?.join(format!("{:016x}.dtr", h.finish())))
}

fn store(entry: &Path, loaded: &Loaded) -> std::io::Result<()> {
    let dir = entry.parent().expect("entries live in a directory");
    std::fs::create_dir_all(dir)?;
    let tmp = entry.with_extension(format!("tmp{}", std::process::id()));
    let mut w = native::NativeWriter::new(std::io::BufWriter::new(std::fs::File::create(&tmp)?)).map_err(std::io::Error::other)?;
    for t in &loaded.record.targets {
        for s in &t.snapshots {
            w.snapshot(t, s).map_err(std::io::Error::other)?;
        }
    }
    let mut out = w.finish().map_err(std::io::Error::other)?;
    std::io::Write::flush(&mut out)?;
    drop(out);
    std::fs::rename(&tmp, entry)?;
    evict(dir)
}

/// Keeps the newest `MAX_ENTRIES` entries.
fn evict(dir: &Path) -> std::io::Result<()> {
    let mut entries: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, p) in entries.into_iter().skip(MAX_ENTRIES) {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        damo::{self, DamoFormat},
        synth::{self, SynthSpec},
    };

    #[test]
    fn a_big_damo_file_is_read_from_the_cache_the_second_time() {
        let tmp = tempfile::tempdir().unwrap();
        // SAFETY: this test alone sets the variable, before any thread reads it.
        unsafe { std::env::set_var("XDG_CACHE_HOME", tmp.path().join("cache")) };
        let record = synth::record(SynthSpec { targets: 2, snapshots_per_target: 400, regions: 200, seed: 5 });
        let path = tmp.path().join("big.perf_script");
        damo::write(&record, DamoFormat::PerfScript, &mut std::fs::File::create(&path).unwrap()).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() >= MIN_SIZE);
        let first = load(&path).unwrap();
        let entry = entry_for(&path).unwrap();
        assert!(entry.is_file(), "the first load stores a native copy");
        let second = load(&path).unwrap();
        assert_eq!(second.record, first.record);
        assert_eq!(second.format, Format::Damo(DamoFormat::PerfScript));
        // A changed file misses.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"\n").unwrap();
        assert_ne!(entry_for(&path).unwrap(), entry);
    }

    use std::io::Write;
}
