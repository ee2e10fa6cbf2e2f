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
    #[error("the zlib stream is damaged: {0}")]
    Zlib(std::io::Error),
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

/// Inflated JSON may not grow past this: a corrupt or hostile file must not exhaust memory.
const MAX_INFLATED: u64 = 16 << 30;

/// Inflates a `json_compressed` record.
pub fn inflate(data: &[u8]) -> Result<Vec<u8>, DamoError> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(8));
    flate2::read::ZlibDecoder::new(data).take(MAX_INFLATED).read_to_end(&mut out).map_err(DamoError::Zlib)?;
    Ok(out)
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
