//! damo's record formats: `json`, `json_compressed` (zlib over the same JSON) and
//! `perf_script` (text of DAMON's tracepoints), read and written so records move freely
//! between damo and damo-trace.

pub mod json;
pub mod perf_script;

use std::io::{Read, Write};

use crate::model::Record;

#[derive(Debug, thiserror::Error)]
pub enum DamoError {
    #[error("not a valid damo JSON record: {0}")]
    Json(String),
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("failed to read: {0}")]
    Read(std::io::Error),
    #[error("the zlib stream is damaged: {0}")]
    Zlib(std::io::Error),
    #[error("no line is a DAMON tracepoint event (damon:damon_aggregated or damon:damos_before_apply)")]
    NoEvents,
    #[error("a JSON string is longer than {} bytes (damo writes none longer than a path)", json::MAX_STRING)]
    LongString,
    #[error(transparent)]
    OverBudget(#[from] crate::budget::OverBudget),
}

/// The formats damo writes, named as damo's `--format` options name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamoFormat {
    Json,
    JsonCompressed,
    PerfScript,
}

impl DamoFormat {
    pub const NAMES: [&'static str; 3] = ["json_compressed", "json", "perf_script"];

    pub fn name(self) -> &'static str {
        match self {
            DamoFormat::Json => "json",
            DamoFormat::JsonCompressed => "json_compressed",
            DamoFormat::PerfScript => "perf_script",
        }
    }
}

impl std::str::FromStr for DamoFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(DamoFormat::Json),
            "json_compressed" => Ok(DamoFormat::JsonCompressed),
            "perf_script" => Ok(DamoFormat::PerfScript),
            _ => Err(format!("unknown format {s:?} (one of {})", Self::NAMES.join(", "))),
        }
    }
}

/// Reads a `json_compressed` record: one thread inflates while this one parses, so neither
/// waits for the other and the inflated JSON (often 40× the file) never sits in memory.
pub fn read_compressed(data: &[u8]) -> Result<Record, DamoError> {
    read_compressed_with(data, &mut crate::budget::Meter::new())
}

/// [`read_compressed`], charging what the record takes to `meter`. damo's own records are read
/// by [`json::scan`], which keeps up with inflation; a document it does not expect is read
/// again by serde (from the indentation-free stream), which reads it or names its fault.
pub fn read_compressed_with(data: &[u8], meter: &mut crate::budget::Meter) -> Result<Record, DamoError> {
    let mut fast = meter.clone();
    match json::inflate::inflating(data, |blocks, spent| json::scan::read(blocks.into_iter(), |b| drop(spent.try_send(b)), &mut fast)) {
        Ok(record) => {
            *meter = fast;
            return Ok(record);
        }
        Err(json::scan::Stop::OverBudget) => return Err(DamoError::OverBudget(fast.over())),
        Err(json::scan::Stop::Unexpected) => {}
    }
    let mut squeezer = json::Squeeze::default();
    json::inflate::inflating_shaped(
        data,
        move |block| squeezer.squeeze(block),
        |rx, _| {
            let mut reader = Blocks { rx, block: Vec::new(), pos: 0, guard: json::StringGuard::default(), long_string: false };
            let read = json::read_from(std::io::BufReader::with_capacity(json::inflate::BLOCK, &mut reader), meter);
            if reader.long_string {
                return Err(DamoError::LongString);
            }
            read
        },
    )
}

/// Streams a `json` (`compressed`: `json_compressed`) record in `data` through the scanner,
/// handing each snapshot to `each` as [`json::scan::stream`] does, charging `meter` for one
/// snapshot at a time; the record without its snapshots comes back. `Ok(None)` when the
/// document is not in damo's layout (or is damaged): [`read_compressed_with`] or
/// [`json::read_with`] read it whole, or say what is wrong; `each` may have had snapshots.
pub fn stream_json(data: &[u8], compressed: bool, meter: &mut crate::budget::Meter, each: &mut json::Each) -> Result<Option<Record>, DamoError> {
    let read = match compressed {
        true => json::inflate::inflating(data, |blocks, spent| json::scan::stream(blocks.into_iter(), |b| drop(spent.try_send(b)), meter, each)),
        false => json::scan::stream(std::iter::once(Ok(data)), drop, meter, each),
    };
    match read {
        Ok(record) => Ok(Some(record)),
        Err(json::scan::Stop::OverBudget) => Err(DamoError::OverBudget(meter.over())),
        Err(json::scan::Stop::Unexpected) => Ok(None),
    }
}

/// `Read` over blocks arriving from the inflating thread.
struct Blocks {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    block: Vec<u8>,
    pos: usize,
    guard: json::StringGuard,
    /// The guard refused a string: the read failed because of that.
    long_string: bool,
}

impl Read for Blocks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.block.len() {
            match self.rx.recv() {
                Ok(block) => {
                    self.block = block?;
                    self.pos = 0;
                    if !self.guard.feed(&self.block) {
                        self.long_string = true;
                        return Err(std::io::Error::other("a JSON string is too long"));
                    }
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

pub fn write(record: &Record, format: DamoFormat, out: &mut impl Write) -> std::io::Result<()> {
    match format {
        DamoFormat::Json => json::write(record, out),
        DamoFormat::PerfScript => perf_script::write(record, out),
        DamoFormat::JsonCompressed => {
            let mut encoder = flate2::write::ZlibEncoder::new(out, flate2::Compression::default());
            json::write(record, &mut encoder)?;
            encoder.finish()?;
            Ok(())
        }
    }
}
