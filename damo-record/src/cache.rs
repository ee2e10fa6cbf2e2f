//! A cache of damo records converted to damo-trace's format, so only the first report on a
//! big damo file pays for parsing JSON or text: later ones read the compact native copy
//! (tens of millions of regions per second).
//!
//! Entries live in `$XDG_CACHE_HOME/damo-trace/converted` (or `~/.cache/…`). Only files of at
//! least [`MIN_SIZE`] are cached, at most [`MAX_ENTRIES`] of them (oldest out).
//! `DAMO_TRACE_NO_CACHE=1` turns it off. Any cache failure falls back to parsing.
//!
//! damo-trace runs as root with environments it inherits (`sudo -E`, `su`), so the cache
//! trusts nothing it did not make:
//! - `damo-trace/` and `converted/` are created 0700 and opened without following symlinks;
//!   one that is a symlink, not owned by the effective user or writable by group or others
//!   is not used (one line says why) and reports just parse;
//! - everything after that goes through the directory's descriptor (`openat`), so renaming
//!   or replacing the path meanwhile cannot redirect a write or an unlink;
//! - an entry is named by a hash of the source's device, inode, size, modification and
//!   change times and the effective uid, is written 0600 as an [`OutputFile`] (temporary file
//!   and rename), and is read only if it is a regular file owned by the effective user and
//!   closed to others; a changed source misses;
//! - an entry is not `fsync`ed: the wait (0.14 s on this machine's disk) was most of a first
//!   report's time. A power loss may leave a torn copy; every read checks each frame group's
//!   CRC and the end mark, and a copy that fails is removed (the report that found it says
//!   so; the next one parses the source again);
//! - a damo JSON file's entry is encoded as its first read parses it, snapshot by snapshot
//!   ([`crate::first_read`]); a perf_script trace's on a thread of its own while the report
//!   reads the record ([`Whole`]); a report killed meanwhile leaves a temporary file (see
//!   eviction);
//! - eviction only deletes regular files with an entry's name (`<16 hex digits>.dtr`, or its
//!   temporary file's, an hour old) owned by the effective user, inside that directory.

use std::{
    ffi::OsStr,
    hash::{Hash, Hasher},
    io::{Read, Write},
    os::{
        fd::OwnedFd,
        unix::fs::{DirBuilderExt, MetadataExt},
    },
    path::{Path, PathBuf},
    sync::Arc,
    thread::JoinHandle,
};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, CWD};

use crate::{
    load::{self, Format, LoadError, Loaded},
    model::Record,
    native,
    output_file::{OutputFile, OutputOptions},
};

pub const MIN_SIZE: u64 = 8 << 20;
pub const MAX_ENTRIES: usize = 16;

/// A writer whose `flush` waits for the end. The native writer flushes each snapshot (a
/// recording killed at any moment keeps all it wrote), which for a copy written whole and
/// renamed into place was one write call of ~76 bytes per snapshot: 4 k for the bench's
/// record, most of the time its store took.
pub(crate) struct Unflushed<W: Write>(pub(crate) std::io::BufWriter<W>);

impl<W: Write> Write for Unflushed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Like [`load::load`], through the cache for big damo files. A cached copy that does not
/// read whole is parsed again (and stored again).
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let Some((dir, name)) = lookup(path) else { return load::load(path) };
    let Some(mut file) = dir.open_entry(&name) else { return load_and_store(path, &dir, &name) };
    if let Some(data) = read_all(&mut file) {
        if let Ok(read) = native::read(&data) {
            if read.complete && read.damaged_at.is_none() {
                // The format is the original file's: reports name what the user gave them.
                let format = load::sniff_file(path).unwrap_or(Format::Native);
                return Ok(Loaded { record: read.record, format, damage: None });
            }
        }
    }
    load_and_store(path, &dir, &name)
}

/// A record parsed whole, as [`load::Loaded`], its copy stored meanwhile ([`open_in`]).
pub struct Parsed {
    pub record: Whole,
    pub format: Format,
    pub damage: Option<String>,
}

impl From<Loaded> for Parsed {
    fn from(Loaded { record, format, damage }: Loaded) -> Parsed {
        Parsed { record: record.into(), format, damage }
    }
}

/// A cached native copy, open.
pub struct CachedCopy {
    pub file: std::fs::File,
    dir: CacheDir,
    name: String,
}

impl CachedCopy {
    /// Removes the copy (the next report parses the file again): for one that turned out
    /// damaged as it streamed. The cache writes its copies whole, by rename, so that takes a
    /// disk fault. Only a regular file of ours is removed, as eviction removes them.
    pub fn discard(&self) {
        if self.dir.open_entry(&self.name).is_some() {
            let _ = rfs::unlinkat(&self.dir.fd, self.name.as_str(), AtFlags::empty());
        }
    }
}

/// What the cache has for a file, for a report that streams it when it can: its native copy
/// to stream (memory bounded by a snapshot, not by the record), or where the copy its parse
/// makes goes ([`open_in`], [`crate::first_read`]).
pub enum Lookup {
    /// Its native copy.
    Cached(CachedCopy),
    /// Nothing yet: where a copy goes, if the file is cached at all.
    Parse(Option<Slot>),
}

/// Where the native copy of a file goes: its cache directory and entry name.
pub struct Slot {
    dir: CacheDir,
    name: String,
}

/// The cached copy of `path`, or where to store one (caching off, the file too small or the
/// cache unusable: nowhere). Look up once per read: an unusable cache says why on stderr.
pub fn look_up(path: &Path) -> Lookup {
    let Some((dir, name)) = lookup(path) else { return Lookup::Parse(None) };
    match dir.open_entry(&name) {
        Some(file) => Lookup::Cached(CachedCopy { file, dir, name }),
        None => Lookup::Parse(Some(Slot { dir, name })),
    }
}

/// A file the cache has no copy of ([`look_up`]), parsed whole, its copy stored in `slot` on
/// another thread while the report reads the record.
pub fn open_in(path: &Path, slot: Option<Slot>) -> Result<Parsed, LoadError> {
    let loaded = load::load(path)?;
    let Some(Slot { dir, name }) = slot.filter(|_| storable(&loaded)) else { return Ok(loaded.into()) };
    let Loaded { record, format, damage } = loaded;
    Ok(Parsed { record: Whole::storing(record, dir, name), format, damage })
}

impl Slot {
    /// Entry `name` of the cache under `base` (tests: no environment to set).
    #[cfg(test)]
    pub(crate) fn at(base: &Path, name: &str) -> Slot {
        Slot { dir: CacheDir::open(base).expect("a cache directory"), name: name.to_owned() }
    }

    /// The entry's path.
    #[cfg(test)]
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.path.join(&self.name)
    }

    /// A copy written snapshot by snapshot, stored once [`CopyWriter::commit`]ted.
    pub fn writer(&self) -> std::io::Result<CopyWriter<'_>> {
        Ok(CopyWriter { writer: self.dir.writer(&self.name)?, dir: &self.dir })
    }

    /// Stores `copy`, a native copy made elsewhere (read from its start), as the entry.
    pub fn store(&self, copy: &mut std::fs::File) -> std::io::Result<()> {
        let mut out = self.dir.create(&self.name)?;
        std::io::copy(copy, &mut out)?;
        out.commit()?;
        self.dir.evict()
    }
}

/// A native copy being written into the cache.
pub struct CopyWriter<'s> {
    writer: native::NativeWriter<Unflushed<OutputFile>>,
    dir: &'s CacheDir,
}

impl CopyWriter<'_> {
    /// Appends `snapshot`, kept for coding the next one of `target` ([`native::NativeWriter::snapshot_owned`]):
    /// the regions' list of the one kept before comes back, empty.
    pub fn snapshot(&mut self, target: &crate::model::TargetRecord, snapshot: crate::model::Snapshot) -> std::io::Result<Vec<crate::model::Region>> {
        self.writer.snapshot_owned(target, snapshot).map_err(std::io::Error::other)
    }

    /// Ends the copy and puts it in place (a copy dropped uncommitted is removed).
    pub fn commit(self) -> std::io::Result<()> {
        CacheDir::finish(self.writer)?;
        self.dir.evict()
    }
}

/// A record loaded whole, shared with the thread that stores its cached copy until that is
/// done: the first report on a damo file reads the record while a second core writes the
/// copy (10-16 ms for 1 M regions, which the report used to wait for). Dropping it, or
/// taking the record, waits for the copy: a report's process must not end with it half
/// written.
pub struct Whole {
    record: Arc<Record>,
    storing: Option<JoinHandle<()>>,
}

impl Whole {
    fn storing(record: Record, dir: CacheDir, name: String) -> Whole {
        let record = Arc::new(record);
        let shared = Arc::clone(&record);
        // Without a thread there is no copy: the next report parses the file again.
        let storing = std::thread::Builder::new()
            .name("cache-store".into())
            .spawn(move || {
                let _ = dir.store(&name, &shared);
            })
            .ok();
        Whole { record, storing }
    }

    /// The record, once its copy is stored.
    pub fn into_record(mut self) -> Record {
        self.wait();
        let record = std::mem::take(&mut self.record);
        Arc::try_unwrap(record).unwrap_or_else(|shared| (*shared).clone())
    }

    fn wait(&mut self) {
        if let Some(thread) = self.storing.take() {
            let _ = thread.join();
        }
    }
}

impl From<Record> for Whole {
    fn from(record: Record) -> Whole {
        Whole { record: Arc::new(record), storing: None }
    }
}

impl std::ops::Deref for Whole {
    type Target = Record;
    fn deref(&self) -> &Record {
        &self.record
    }
}

impl Drop for Whole {
    fn drop(&mut self) {
        self.wait();
    }
}

fn read_all(file: &mut std::fs::File) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    file.read_to_end(&mut data).ok()?;
    Some(data)
}

/// Parses `path` and stores its native copy as entry `name` of `dir`.
fn load_and_store(path: &Path, dir: &CacheDir, name: &str) -> Result<Loaded, LoadError> {
    let loaded = load::load(path)?;
    if storable(&loaded) {
        let _ = dir.store(name, &loaded.record);
    }
    Ok(loaded)
}

/// Whether a copy of `loaded` reads back as it: a damo file read whole, without the DAMOS
/// details the native format does not keep.
fn storable(loaded: &Loaded) -> bool {
    matches!(loaded.format, Format::Damo(_)) && loaded.damage.is_none() && loaded.record.damos.is_none()
}

/// The cache directory, open and checked.
struct CacheDir {
    fd: OwnedFd,
    path: PathBuf,
}

fn base() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
}

/// The cache directory and the entry name for `path`, unless caching is off or unsafe.
fn lookup(path: &Path) -> Option<(CacheDir, String)> {
    if std::env::var_os("DAMO_TRACE_NO_CACHE").is_some_and(|v| v != "0") {
        return None;
    }
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() < MIN_SIZE {
        return None;
    }
    let name = entry_name(&meta);
    match CacheDir::open(&base()?) {
        Ok(dir) => Some((dir, name)),
        Err(why) => {
            eprintln!("damo-trace: not using the cache: {why}");
            None
        }
    }
}

fn entry_name(meta: &std::fs::Metadata) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (meta.dev(), meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ctime(), meta.ctime_nsec(), rustix::process::geteuid().as_raw()).hash(&mut h);
    format!("{:016x}.dtr", h.finish())
}

/// An entry's name: what eviction may delete.
fn is_entry_name(name: &[u8]) -> bool {
    name.len() == 20 && name.ends_with(b".dtr") && name[..16].iter().all(u8::is_ascii_hexdigit)
}

/// The temporary file of an entry (`<entry>.tmp-<pid>[-<n>]`, see `OutputFile`): what a run
/// killed while storing leaves behind.
fn is_temp_name(name: &[u8]) -> bool {
    name.len() > 25 && is_entry_name(&name[..20]) && name[20..].starts_with(b".tmp-") && name[25..].iter().all(|&b| b.is_ascii_digit() || b == b'-')
}

/// A temporary file this old is no run's any more.
const STALE_TEMP_SECS: i64 = 3600;

impl CacheDir {
    /// Opens (creating, 0700) `base/damo-trace/converted`, each of the two checked.
    fn open(base: &Path) -> Result<Self, String> {
        if !base.exists() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(base).map_err(|e| format!("cannot create {}: {e}", base.display()))?;
        }
        let mut fd = rfs::openat(CWD, base, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| format!("cannot open {}: {e}", base.display()))?;
        let mut path = base.to_path_buf();
        for component in ["damo-trace", "converted"] {
            path.push(component);
            match rfs::mkdirat(&fd, component, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
            }
            fd = rfs::openat(&fd, component, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()).map_err(|e| match e {
                rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => format!("{} is not a directory (a symbolic link?)", path.display()),
                e => format!("cannot open {}: {e}", path.display()),
            })?;
            let st = rfs::fstat(&fd).map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
            let euid = rustix::process::geteuid().as_raw();
            if st.st_uid != euid {
                return Err(format!("{} belongs to uid {}, not to uid {euid}", path.display(), st.st_uid));
            }
            if st.st_mode & 0o022 != 0 {
                return Err(format!("{} is writable by others (mode {:o})", path.display(), st.st_mode & 0o7777));
            }
        }
        Ok(Self { fd, path })
    }

    /// An entry, open, if it is a regular file of ours that no one else can write or read.
    fn open_entry(&self, name: &str) -> Option<std::fs::File> {
        let fd = rfs::openat(&self.fd, name, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty()).ok()?;
        let st = rfs::fstat(&fd).ok()?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || st.st_uid != rustix::process::geteuid().as_raw() || st.st_mode & 0o077 != 0 {
            return None;
        }
        Some(std::fs::File::from(fd))
    }

    fn store(&self, name: &str, record: &Record) -> std::io::Result<()> {
        let mut w = self.writer(name)?;
        for t in &record.targets {
            for s in &t.snapshots {
                w.snapshot(t, s).map_err(std::io::Error::other)?;
            }
        }
        Self::finish(w)?;
        self.evict()
    }

    /// Entry `name`'s temporary file, private, put in place by its commit.
    fn create(&self, name: &str) -> std::io::Result<OutputFile> {
        OutputFile::create_in(self.fd.try_clone()?, &self.path.join(name), OsStr::new(name), OutputOptions::exact(0o600, true).volatile()).map_err(Into::into)
    }

    /// A summarizing native writer of entry `name`, in 64 KiB writes.
    fn writer(&self, name: &str) -> std::io::Result<native::NativeWriter<Unflushed<OutputFile>>> {
        native::NativeWriter::new(Unflushed(std::io::BufWriter::with_capacity(1 << 16, self.create(name)?))).map(native::NativeWriter::summarizing).map_err(std::io::Error::other)
    }

    /// Ends a copy [`Self::writer`] began and puts it in place.
    fn finish(w: native::NativeWriter<Unflushed<OutputFile>>) -> std::io::Result<()> {
        let Unflushed(mut out) = w.finish().map_err(std::io::Error::other)?;
        out.flush()?;
        Ok(out.into_inner().map_err(|e| e.into_error())?.commit()?)
    }

    /// Keeps the newest `MAX_ENTRIES` entries and removes stale temporary files of entries;
    /// touches nothing else.
    fn evict(&self) -> std::io::Result<()> {
        let euid = rustix::process::geteuid().as_raw();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let mut entries = Vec::new();
        for entry in rfs::Dir::read_from(&self.fd)? {
            let entry = entry?;
            let name = entry.file_name().to_owned();
            let (is_entry, is_temp) = (is_entry_name(name.as_bytes()), is_temp_name(name.as_bytes()));
            if !is_entry && !is_temp {
                continue;
            }
            let Ok(st) = rfs::statat(&self.fd, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) else { continue };
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || st.st_uid != euid {
                continue;
            }
            if is_entry {
                entries.push(((st.st_mtime, st.st_mtime_nsec), name));
            } else if now - st.st_mtime > STALE_TEMP_SECS {
                let _ = rfs::unlinkat(&self.fd, name.as_c_str(), AtFlags::empty());
            }
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.0));
        for (_, name) in entries.into_iter().skip(MAX_ENTRIES) {
            let _ = rfs::unlinkat(&self.fd, name.as_c_str(), AtFlags::empty());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::{
        damo::{self, DamoFormat},
        synth::{self, SynthSpec},
    };

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

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
        let (dir, name) = lookup(&path).unwrap();
        let entry = dir.path.join(&name);
        assert!(entry.is_file(), "the first load stores a native copy");
        assert_eq!(mode(&entry), 0o600, "entries are private");
        assert_eq!(mode(&tmp.path().join("cache/damo-trace")), 0o700);
        assert_eq!(mode(&dir.path), 0o700);
        assert_eq!(std::fs::read_dir(&dir.path).unwrap().count(), 1, "no temporary file left");
        let second = load(&path).unwrap();
        assert_eq!(second.record, first.record);
        assert_eq!(second.format, Format::Damo(DamoFormat::PerfScript));
        // A changed file misses.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"\n").unwrap();
        let (_, changed) = lookup(&path).unwrap();
        assert_ne!(changed, name);
        // A one-pass report's open parses it and stores the copy beside the report: done
        // when the record is taken (or dropped), and read back as the same record.
        let Lookup::Parse(slot) = look_up(&path) else { panic!("a changed file is parsed again") };
        let Parsed { record, format, damage: None } = open_in(&path, slot).unwrap() else { panic!("no damage") };
        assert_eq!(format, Format::Damo(DamoFormat::PerfScript));
        assert_eq!(*record, first.record);
        assert_eq!(record.into_record(), first.record);
        assert!(dir.path.join(&changed).is_file(), "the copy is stored once the record is taken");
        assert_eq!(std::fs::read_dir(&dir.path).unwrap().count(), 2, "no temporary file left");
        let Lookup::Cached(copy) = look_up(&path) else { panic!("the second look-up finds the copy") };
        let read = native::read(&read_all(&mut { copy.file }).unwrap()).unwrap();
        assert!(read.complete && read.damaged_at.is_none());
        assert_eq!(read.record, first.record);
    }

    #[test]
    fn a_symlinked_or_open_cache_directory_is_not_used() {
        let tmp = tempfile::tempdir().unwrap();
        // Someone else's directory the link points to, with a file of theirs in it.
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("0123456789abcdef.dtr"), b"theirs").unwrap();
        let base = tmp.path().join("base");
        std::fs::create_dir(&base).unwrap();
        std::os::unix::fs::symlink(&elsewhere, base.join("damo-trace")).unwrap();
        let e = CacheDir::open(&base).err().expect("a symlinked cache directory is refused");
        assert!(e.contains("not a directory (a symbolic link?)"), "{e}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 1, "nothing created through the link");

        let open = tmp.path().join("open");
        std::fs::create_dir_all(open.join("damo-trace/converted")).unwrap();
        std::fs::set_permissions(open.join("damo-trace/converted"), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = CacheDir::open(&open).err().expect("a world-writable cache directory is refused");
        assert!(e.contains("writable by others (mode 777)"), "{e}");
    }

    #[test]
    fn eviction_deletes_only_our_oldest_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CacheDir::open(tmp.path()).unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        for i in 0..MAX_ENTRIES + 4 {
            let p = dir.path.join(format!("{i:016x}.dtr"));
            std::fs::write(&p, b"x").unwrap();
            let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + i as u64);
            std::fs::File::options().write(true).open(&p).unwrap().set_modified(t).unwrap();
        }
        // Temporary files of entries: one a killed run left hours ago goes, a fresh one stays.
        let stale = dir.path.join(format!("{:016x}.dtr.tmp-123", 1));
        std::fs::write(&stale, b"cut").unwrap();
        std::fs::File::options().write(true).open(&stale).unwrap().set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7200)).unwrap();
        std::fs::write(dir.path.join(format!("{:016x}.dtr.tmp-456-2", 2)), b"being written").unwrap();
        // Not entries: a file of another name, and a symlink (to a file outside) with an
        // entry's name and the oldest time of all.
        std::fs::write(dir.path.join("notes.txt"), b"mine").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path.join("ffffffffffffffff.dtr")).unwrap();
        dir.evict().unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&dir.path).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        let mut expected: Vec<String> = (4..MAX_ENTRIES + 4).map(|i| format!("{i:016x}.dtr")).collect();
        expected.extend(["ffffffffffffffff.dtr".into(), "notes.txt".into(), format!("{:016x}.dtr.tmp-456-2", 2)]);
        expected.sort();
        assert_eq!(left, expected);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }
}
