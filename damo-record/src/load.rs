//! Opens a record of any kind this tool reads, telling the kind from the content (damo asks
//! the `file` command; the answer is the same for every file damo writes).

use std::path::Path;

use crate::{
    budget::{Meter, OverBudget},
    damo, input,
    mapped::Mapped,
    model::Record,
    native,
};

/// What a file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Native,
    Damo(damo::DamoFormat),
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Native => "damo-trace",
            Format::Damo(f) => f.name(),
        }
    }
}

/// A record read from a file, and what its reader noticed about the file's end.
#[derive(Debug)]
pub struct Loaded {
    pub record: Record,
    pub format: Format,
    /// Set when the file ends early (a recording killed mid-write): everything before the
    /// damage is in `record`, and this says where it is.
    pub damage: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} {what}: records are read from regular files only")]
    NotRegular { path: String, what: input::NotRegular },
    #[error("{path} is empty")]
    Empty { path: String },
    #[error("{path} is not a DAMON record (neither damo-trace's format, damo's JSON, zlib-compressed JSON nor a perf script text)")]
    Unrecognized { path: String },
    #[error("{path}: {source}")]
    Native { path: String, source: native::NativeError },
    #[error("{path} ({format}): {source}")]
    Damo { path: String, format: &'static str, source: damo::DamoError },
    #[error("{path}: {over}")]
    OverBudget { path: String, over: OverBudget },
}

/// Reads the record at `path`, a regular file, within the memory limit ([`budget`]).
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let mut meter = Meter::new();
    // Opened once: the format is sniffed from the file that is then read.
    let file = open(path)?;
    // damo's files are parsed in place from their map (copying a 15 MB json_compressed file
    // took 8 ms, a text trace a fifth of its parse), or else as they are read.
    if let Some(Format::Damo(format)) = sniff_opened(&file) {
        let mapped = Mapped::open(&file, path).map_err(|source| LoadError::Io { path: path.display().to_string(), source })?;
        let read = match (&mapped, format) {
            (Some(data), _) => parse_with(data, &mut meter),
            (None, damo::DamoFormat::PerfScript) => perf_script(|meter| damo::perf_script::read_from(file, meter), &mut meter),
            (None, _) => parse_with(&read_opened(file, path, &mut meter)?, &mut meter),
        };
        return read.map_err(|e| e.at(path));
    }
    let data = read_opened(file, path, &mut meter)?;
    parse_with(&data, &mut meter).map_err(|e| e.at(path))
}

/// A damo file's bytes: mapped (with [`Mapped`]'s guard), or read when it cannot be.
pub(crate) enum Contents {
    Mapped(Mapped),
    Read(Vec<u8>),
}

impl std::ops::Deref for Contents {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Contents::Mapped(m) => m,
            Contents::Read(v) => v,
        }
    }
}

/// The contents of the damo file `file`, opened from `path` (which errors name), as [`load`]
/// parses them in place.
pub(crate) fn contents(file: std::fs::File, path: &Path, meter: &mut Meter) -> Result<Contents, LoadError> {
    match Mapped::open(&file, path).map_err(|source| LoadError::Io { path: path.display().to_string(), source })? {
        Some(mapped) => Ok(Contents::Mapped(mapped)),
        None => read_opened(file, path, meter).map(Contents::Read),
    }
}

/// A damo record's read of `format` failing, as an error naming `path`.
pub(crate) fn damo_error(path: &Path, format: damo::DamoFormat, source: damo::DamoError) -> LoadError {
    let path = path.display().to_string();
    match source {
        damo::DamoError::OverBudget(over) => LoadError::OverBudget { path, over },
        source => LoadError::Damo { path, format: format.name(), source },
    }
}

/// All of `file`, opened from `path` (which errors name), charged to `meter`.
///
/// Read, not mapped: a mapped file that another program truncates while a report reads it
/// kills the report with SIGBUS (no message, exit 135), and records are often read while
/// their recorder still writes them (damo's files are mapped with a guard for that:
/// [`Mapped`]). The copy has a cost: dd reads 512 MiB from the page
/// cache in 0.33-0.41 s on this (loaded) 2-core machine, a third of what parsing a text trace
/// that size takes; later reports of a damo file read the cache's compact copy.
fn read_opened(mut file: std::fs::File, path: &Path, meter: &mut Meter) -> Result<Vec<u8>, LoadError> {
    let p = || path.display().to_string();
    input::read_all(&mut file, meter).map_err(|e| match e {
        input::ReadError::Io(source) => LoadError::Io { path: p(), source },
        input::ReadError::OverBudget(over) => LoadError::OverBudget { path: p(), over },
    })
}

/// Opens the regular file at `path` for reading (a report that streams it reads it itself).
pub fn open(path: &Path) -> Result<std::fs::File, LoadError> {
    input::open_regular(path).map_err(|source| classify(path.display().to_string(), source))
}

/// A damo-trace record's read failing, as an error naming `path`.
pub fn native_error(path: &Path, source: native::NativeError) -> LoadError {
    let path = path.display().to_string();
    match source {
        native::NativeError::OverBudget(over) => LoadError::OverBudget { path, over },
        source => LoadError::Native { path, source },
    }
}

/// What a damo-trace record's end says about the file, when it is not a clean end.
pub fn native_damage(damaged_at: Option<u64>, complete: bool) -> Option<String> {
    match (damaged_at, complete) {
        (Some(at), _) => Some(format!("the record is damaged or cut short at byte {at}; read what came before")),
        (None, false) => Some("the record has no end mark: its recorder did not finish".to_owned()),
        (None, true) => None,
    }
}

fn classify(path: String, source: std::io::Error) -> LoadError {
    if source.get_ref().is_some_and(|e| e.is::<input::NotRegular>()) {
        let inner = source.into_inner().expect("checked above").downcast::<input::NotRegular>().expect("checked above");
        return LoadError::NotRegular { path, what: *inner };
    }
    LoadError::Io { path, source }
}

/// Like [`load`], for bytes already in memory; errors name the file "the input".
pub fn parse(data: &[u8]) -> Result<Loaded, LoadError> {
    parse_with(data, &mut Meter::new())
}

/// [`parse`], charging what the record takes to `meter`.
pub fn parse_with(data: &[u8], meter: &mut Meter) -> Result<Loaded, LoadError> {
    let path = String::from("the input");
    let damo_err = |format| move |source| damo_error(Path::new("the input"), format, source);
    match sniff(data) {
        None if data.is_empty() => Err(LoadError::Empty { path }),
        None => Err(LoadError::Unrecognized { path }),
        Some(Format::Native) => {
            let read = native::read_with(data, meter).map_err(|source| native_error(Path::new(&path), source))?;
            let damage = native_damage(read.damaged_at, read.complete);
            Ok(Loaded { record: read.record, format: Format::Native, damage })
        }
        Some(Format::Damo(f @ damo::DamoFormat::Json)) => {
            let record = damo::json::read_with(data, meter).map_err(damo_err(f))?;
            Ok(Loaded { record, format: Format::Damo(f), damage: None })
        }
        Some(Format::Damo(f @ damo::DamoFormat::JsonCompressed)) => {
            let record = damo::read_compressed_with(data, meter).map_err(damo_err(f))?;
            Ok(Loaded { record, format: Format::Damo(f), damage: None })
        }
        Some(Format::Damo(damo::DamoFormat::PerfScript)) => perf_script(|meter| damo::perf_script::read_with(data, meter), meter),
    }
}

/// A perf_script text read by `read`; errors name the file "the input".
fn perf_script(read: impl FnOnce(&mut Meter) -> Result<damo::perf_script::PerfScriptRead, damo::DamoError>, meter: &mut Meter) -> Result<Loaded, LoadError> {
    let path = String::from("the input");
    let format = damo::DamoFormat::PerfScript;
    let read = read(meter).map_err(|e| match e {
        damo::DamoError::NoEvents => LoadError::Unrecognized { path: path.clone() },
        damo::DamoError::OverBudget(over) => LoadError::OverBudget { path: path.clone(), over },
        source => LoadError::Damo { path: path.clone(), format: format.name(), source },
    })?;
    let damage = read.truncated_tail.then(|| "the last line is cut short; read the lines before it".to_owned());
    Ok(Loaded { record: read.record, format: Format::Damo(format), damage })
}

impl LoadError {
    fn at(self, p: &Path) -> Self {
        let path = p.display().to_string();
        match self {
            LoadError::Empty { .. } => LoadError::Empty { path },
            LoadError::Unrecognized { .. } => LoadError::Unrecognized { path },
            LoadError::Native { source, .. } => LoadError::Native { path, source },
            LoadError::Damo { format, source, .. } => LoadError::Damo { path, format, source },
            LoadError::OverBudget { over, .. } => LoadError::OverBudget { path, over },
            LoadError::NotRegular { what, .. } => LoadError::NotRegular { path, what },
            io @ LoadError::Io { .. } => io,
        }
    }
}

/// The format of the file at `path`, from its first bytes.
pub fn sniff_file(path: &Path) -> Option<Format> {
    sniff_opened(&input::open_regular(path).ok()?)
}

/// The format of `file` from its first bytes, read without moving its offset: a reader given
/// the file next reads it from its start.
pub(crate) fn sniff_opened(file: &std::fs::File) -> Option<Format> {
    let mut head = [0u8; 4096];
    let n = std::os::unix::fs::FileExt::read_at(file, &mut head, 0).ok()?;
    sniff(&head[..n])
}

/// The format of `data` from its first bytes; `None` when it is none of ours.
pub fn sniff(data: &[u8]) -> Option<Format> {
    if data.starts_with(&native::MAGIC[..data.len().min(native::MAGIC.len())]) && data.len() >= 4 {
        return Some(Format::Native);
    }
    // A zlib header: deflate method, a window ≤ 32 KiB, and a check value that makes the
    // first two bytes a multiple of 31 (RFC 1950).
    if let [cmf, flg, ..] = *data {
        if cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0 {
            return Some(Format::Damo(damo::DamoFormat::JsonCompressed));
        }
    }
    let head = &data[..data.len().min(4096)];
    let first = head.iter().find(|b| !b.is_ascii_whitespace())?;
    if matches!(first, b'[' | b'{') {
        return Some(Format::Damo(damo::DamoFormat::Json));
    }
    // Text: printable ASCII and whitespace (a cut may split a UTF-8 comm name, so allow
    // bytes ≥ 0x80 too).
    let text = head.iter().all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace() || b >= 0x80);
    text.then_some(Format::Damo(damo::DamoFormat::PerfScript))
}
