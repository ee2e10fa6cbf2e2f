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

pub fn write(record: &Record, format: DamoFormat, out: &mut (impl Write + Send)) -> std::io::Result<()> {
    match format {
        DamoFormat::Json => json::write(record, out),
        DamoFormat::PerfScript => perf_script::write(record, out),
        DamoFormat::JsonCompressed => write_compressed(record, out),
    }
}

/// JSON text handed to the compressing thread at a time.
const TEXT_BLOCK: usize = 256 << 10;

/// `json_compressed`: the JSON is written on this thread and compressed on another, in
/// blocks. Compressing on the writing thread was 42 % of `adjust`'s time (`bench --long`)
/// while the other core idled.
fn write_compressed(record: &Record, out: &mut (impl Write + Send)) -> std::io::Result<()> {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(4);
    std::thread::scope(|scope| {
        let compressor = scope.spawn(move || {
            let mut encoder = flate2::write::ZlibEncoder::new(out, flate2::Compression::default());
            for block in rx {
                encoder.write_all(&block)?;
            }
            encoder.finish().map(drop)
        });
        let written = {
            let mut text = TextBlocks { tx, block: Vec::with_capacity(TEXT_BLOCK) };
            json::write(record, &mut text).and_then(|()| text.send())
        };
        // The blocks' sender is gone: the compressor finishes. Its error, if any, is why a
        // block could not be handed over.
        let compressed = compressor.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        compressed.and(written)
    })
}

/// JSON text gathered into blocks for the compressing thread.
struct TextBlocks {
    tx: crossbeam_channel::Sender<Vec<u8>>,
    block: Vec<u8>,
}

impl TextBlocks {
    /// Hands the block over, if it holds anything.
    fn send(&mut self) -> std::io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(TEXT_BLOCK));
        self.tx.send(block).map_err(|_| std::io::Error::other("the compressing thread stopped"))
    }
}

impl Write for TextBlocks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.block.extend_from_slice(buf);
        if self.block.len() >= TEXT_BLOCK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::synth::{self, SynthSpec};

    /// A record whose JSON spans many of the compressing thread's blocks.
    fn record() -> Record {
        synth::record(SynthSpec { targets: 2, snapshots_per_target: 40, regions: 200, seed: 11 })
    }

    #[test]
    fn compressed_text_inflates_to_the_json() {
        let record = record();
        let mut json = Vec::new();
        write(&record, DamoFormat::Json, &mut json).unwrap();
        assert!(json.len() > 4 * TEXT_BLOCK, "several blocks: {} bytes", json.len());
        let mut compressed = Vec::new();
        write(&record, DamoFormat::JsonCompressed, &mut compressed).unwrap();
        let mut inflated = Vec::new();
        flate2::read::ZlibDecoder::new(&compressed[..]).read_to_end(&mut inflated).unwrap();
        assert!(inflated == json, "the compressed text is the JSON");
    }

    /// Takes `room` bytes, then fails as a full disk does.
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::from_raw_os_error(28));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_outputs_error_is_the_one_returned() {
        let record = record();
        for room in [0, 10_000] {
            let err = write(&record, DamoFormat::JsonCompressed, &mut Full { room }).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(28), "room {room}: {err}");
        }
    }
}
