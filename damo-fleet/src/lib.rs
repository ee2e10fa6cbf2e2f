//! damo-trace records for the tools fleets already run: a Parquet dataset that DuckDB, Spark,
//! Trino or BigQuery query across many hosts' records ([`dataset`], tables in [`tables`],
//! columns built by [`columns`]), and per-sample pprof labels that say what memory was doing
//! at each sample's moment, for Pyroscope and Parca ([`labels`]). docs/fleet.md has the
//! schema and the queries.
//!
//! The arrow and parquet crates are used here only, so the rest of the workspace does not
//! depend on them.

pub mod columns;
pub mod dataset;
pub mod labels;
pub mod tables;

/// The dataset's schema version, in every file's key-value metadata
/// (`damo_trace.schema_version`). It grows when a column changes type or meaning or goes;
/// new columns keep it.
pub const SCHEMA_VERSION: u32 = 1;

use std::path::Path;

use anyhow::Result;
use damo_profile::stacks::Namer;
use damo_record::model::Record;

pub use dataset::{Partition, Written};
pub use tables::PhaseRow;

/// Exports a record's tables into the dataset at `dir` as `partition`'s files.
pub fn export(dir: &Path, partition: &Partition, record: &Record, namer: &mut Namer, phases: &[PhaseRow]) -> Result<Vec<Written>> {
    dataset::write(dir, partition, tables::all(record, namer, phases)?)
}
