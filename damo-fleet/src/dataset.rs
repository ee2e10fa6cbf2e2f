//! Records into one dataset: `DIR/<table>/host=<host>/record=<record>/part-0.parquet`, the
//! hive-style layout Spark writes with `partitionBy("host", "record")`, so `host` and
//! `record` are columns of every table in DuckDB (`hive_partitioning`) and Spark
//! (`spark.read.parquet("DIR/<table>")`). Tables come first in the path so that each
//! table's directory holds only its own files, which Spark reads as one table.
//!
//! Exporting a record again replaces its files. Directories below `DIR` are made with
//! `mkdirat` and opened with `O_NOFOLLOW`, each relative to the one above it, and files go
//! through `damo_record::output_file` (temporary file, rename): a planted symlink anywhere
//! below `DIR` is never followed.

use std::{
    io::BufWriter,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use damo_record::output_file::{OutputFile, OutputOptions};
use parquet::{
    arrow::ArrowWriter,
    basic::Compression,
    file::{metadata::KeyValue, properties::WriterProperties},
};
use rustix::fs::{self as rfs, Mode, OFlags, CWD};

use crate::{columns::Table, SCHEMA_VERSION};

/// The file each partition directory holds.
pub const FILE_NAME: &str = "part-0.parquet";

/// Which host and which record of it the files are: partition values, so only characters
/// that need no escaping in a path or a hive partition (letters, digits, `.`, `_`, `-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub host: String,
    pub record: String,
}

impl Partition {
    pub fn new(host: &str, record: &str) -> Result<Self> {
        for (option, value) in [("--host", host), ("--record_name", record)] {
            if value.is_empty() || value.chars().all(|c| c == '.') || !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
                bail!("{option} {value:?}: a dataset partition name takes letters, digits, '.', '_' and '-' (not only dots); give {option} NAME");
            }
        }
        Ok(Self { host: host.into(), record: record.into() })
    }
}

/// One file written.
#[derive(Debug, Clone)]
pub struct Written {
    pub table: &'static str,
    pub rows: usize,
    pub path: PathBuf,
    pub bytes: u64,
}

/// Writes `tables` as `partition`'s files under `dir` (made if missing).
pub fn write(dir: &Path, partition: &Partition, tables: Vec<Table>) -> Result<Vec<Written>> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let root = rfs::openat(CWD, dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).with_context(|| format!("failed to open {}", dir.display()))?;
    let props =
        WriterProperties::builder().set_compression(Compression::SNAPPY).set_key_value_metadata(Some(vec![KeyValue::new("damo_trace.schema_version".into(), SCHEMA_VERSION.to_string())])).build();
    let mut written = Vec::new();
    for table in tables {
        let name = table.name;
        let mut path = dir.to_path_buf();
        let mut at = subdir(&root, name, &mut path)?;
        for level in [format!("host={}", partition.host), format!("record={}", partition.record)] {
            at = subdir(&at, &level, &mut path)?;
        }
        let path = path.join(FILE_NAME);
        let batch = table.batch()?;
        let out = OutputFile::create_in(at, &path, FILE_NAME.as_ref(), OutputOptions::REPORT)?;
        let mut writer = ArrowWriter::try_new(BufWriter::with_capacity(1 << 16, out), batch.schema(), Some(props.clone())).with_context(|| format!("failed to start {}", path.display()))?;
        writer.write(&batch).with_context(|| format!("failed to write {}", path.display()))?;
        let file = writer
            .into_inner()
            .with_context(|| format!("failed to write {}", path.display()))?
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("failed to write {}", path.display()))?;
        let bytes = file.file().metadata().with_context(|| format!("failed to stat {}", path.display()))?.len();
        file.commit()?;
        written.push(Written { table: name, rows: batch.num_rows(), path, bytes });
    }
    Ok(written)
}

/// The directory `name` in `parent`, made if missing, opened without following a symlink.
fn subdir(parent: &OwnedFd, name: &str, path: &mut PathBuf) -> Result<OwnedFd> {
    path.push(name);
    match rfs::mkdirat(parent, name, Mode::from_raw_mode(0o777)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(std::io::Error::from(e)).with_context(|| format!("failed to create {}", path.display())),
    }
    match rfs::openat(parent, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => bail!("{} is not a directory (a symbolic link or a file): not writing through it", path.display()),
        Err(e) => Err(std::io::Error::from(e)).with_context(|| format!("failed to open {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<Table> {
        vec![Table::new("regions").int("start", vec![4096, 8192])]
    }

    #[test]
    fn writes_hive_partitions_and_refuses_links_and_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        let p = Partition::new("web-1.example", "run_2").unwrap();
        let w = write(dir.path(), &p, table()).unwrap();
        assert_eq!(w[0].path, dir.path().join("regions/host=web-1.example/record=run_2/part-0.parquet"));
        assert_eq!(w[0].rows, 2);
        assert_eq!(std::fs::metadata(&w[0].path).unwrap().len(), w[0].bytes);
        assert_eq!(&std::fs::read(&w[0].path).unwrap()[..4], b"PAR1");
        // Again: replaced in place, no temporary file left.
        write(dir.path(), &p, table()).unwrap();
        assert_eq!(std::fs::read_dir(w[0].path.parent().unwrap()).unwrap().count(), 1);

        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("regions/host=planted")).unwrap();
        let err = write(dir.path(), &Partition::new("planted", "r").unwrap(), table()).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err:#}");
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0, "wrote through the link");

        for (host, record) in [("a/b", "r"), ("h", ".."), ("", "r"), ("h", "x=y"), ("h", "é")] {
            assert!(Partition::new(host, record).is_err(), "{host:?} {record:?}");
        }
    }
}
