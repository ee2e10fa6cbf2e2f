//! tracefs: where it is mounted and what a tracepoint's `format` file says.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

/// The places tracefs is conventionally mounted, newest first.
const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The mounted tracefs, if any (a mount point without `events/` is not mounted).
pub fn find() -> Option<PathBuf> {
    CANDIDATES.iter().map(PathBuf::from).find(|p| p.join("events").is_dir())
}

/// A tracefs mount point this process may not look into (tracefs is 0700 root), as a message
/// that says so; `find` cannot tell that from "not mounted".
pub fn unreadable() -> Option<String> {
    CANDIDATES.iter().map(Path::new).find_map(|p| match fs::metadata(p.join("events")) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Some(format!("permission denied reading {}: tracefs is readable by root only (run it with sudo)", p.display())),
        _ => None,
    })
}

/// The mounted tracefs; as root, mounts it at /sys/kernel/tracing when nothing is mounted
/// (as perf and bpftrace do), since attaching tracepoints needs it.
pub fn find_or_mount() -> Result<PathBuf> {
    if let Some(path) = find() {
        return Ok(path);
    }
    let target = Path::new(CANDIDATES[0]);
    let status = std::process::Command::new("mount").args(["-t", "tracefs", "nodev"]).arg(target).status().context("failed to run mount")?;
    if !status.success() || find().is_none() {
        bail!("tracefs is not mounted and mounting it failed: mount -t tracefs nodev {}", target.display());
    }
    Ok(target.to_path_buf())
}

/// One `field:` line of a tracepoint format file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Field {
    pub name: String,
    /// The C declaration as the kernel prints it, e.g. `unsigned long start`.
    pub decl: String,
    pub offset: u32,
    pub size: u32,
    pub signed: bool,
}

/// A tracepoint's format: its id and fields, common ones included.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Format {
    pub id: u64,
    pub fields: Vec<Field>,
}

impl Format {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The offset of a field that must exist with the given size.
    pub fn offset_of(&self, name: &str, size: u32) -> Result<u32> {
        match self.field(name) {
            Some(f) if f.size == size => Ok(f.offset),
            Some(f) => bail!("tracepoint field {name} has size {}, expected {size}", f.size),
            None => bail!("tracepoint has no field {name}"),
        }
    }
}

/// Reads `events/<system>/<event>/format` under `tracefs`.
pub fn read_format(tracefs: &Path, system: &str, event: &str) -> Result<Format> {
    let path = tracefs.join("events").join(system).join(event).join("format");
    let text = fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))?;
    parse_format(&text).with_context(|| format!("failed to parse {}", path.display()))
}

/// Parses the text of a tracefs `format` file.
pub fn parse_format(text: &str) -> Result<Format> {
    let mut id = None;
    let mut fields = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("ID:") {
            id = Some(v.trim().parse().context("bad ID line")?);
        } else if let Some(rest) = line.strip_prefix("field:") {
            fields.push(parse_field(rest).with_context(|| format!("bad field line: {line}"))?);
        }
    }
    Ok(Format { id: id.context("no ID line")?, fields })
}

/// `unsigned long start;\toffset:24;\tsize:8;\tsigned:0;` (after `field:`).
fn parse_field(rest: &str) -> Result<Field> {
    let mut parts = rest.split(';').map(str::trim);
    let decl = parts.next().context("no declaration")?.to_string();
    let (mut offset, mut size, mut signed) = (None, None, false);
    for part in parts {
        if let Some((key, value)) = part.split_once(':') {
            match key {
                "offset" => offset = Some(value.parse()?),
                "size" => size = Some(value.parse()?),
                "signed" => signed = value == "1",
                _ => {}
            }
        }
    }
    // The name is the last identifier of the declaration: `char comm[16]` names `comm`.
    let name = decl.rsplit(|c: char| c.is_whitespace() || c == '*').next().map(|n| n.split('[').next().unwrap_or(n)).filter(|n| !n.is_empty()).context("no field name")?.to_string();
    Ok(Field { name, decl, offset: offset.context("no offset")?, size: size.context("no size")?, signed })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAMON_AGGREGATED_6_18: &str = "name: damon_aggregated
ID: 767
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:unsigned long target_id;\toffset:8;\tsize:8;\tsigned:0;
\tfield:unsigned int nr_regions;\toffset:16;\tsize:4;\tsigned:0;
\tfield:unsigned long start;\toffset:24;\tsize:8;\tsigned:0;
\tfield:char comm[16];\toffset:48;\tsize:16;\tsigned:0;

print fmt: \"target_id=%lu\", REC->target_id
";

    #[test]
    fn parses_fields_and_id() {
        let format = parse_format(DAMON_AGGREGATED_6_18).unwrap();
        assert_eq!(format.id, 767);
        assert_eq!(format.offset_of("start", 8).unwrap(), 24);
        assert_eq!(format.offset_of("nr_regions", 4).unwrap(), 16);
        assert!(format.field("common_pid").unwrap().signed);
        assert_eq!(format.field("comm").unwrap().size, 16);
        assert!(format.offset_of("start", 4).is_err(), "size mismatch must be refused");
        assert!(format.offset_of("age", 4).is_err());
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_format("").is_err());
        assert!(parse_format("ID: x\n").is_err());
        assert!(parse_format("ID: 1\nfield:int x;\toffset:zz;\tsize:4;\n").is_err());
    }
}
