//! The in-memory record, shared by every reader, writer and report.
//!
//! It follows damo's model (`_damon.DamonRecord`): one [`TargetRecord`] per
//! kdamond/context/target (or per DAMOS scheme for `--schemes_target_regions`), each a list of
//! [`Snapshot`]s of [`Region`]s. Units are fixed here once: addresses in bytes, times in ns,
//! intervals in µs, `nr_accesses` in samples, `age` in aggregation intervals.

/// DAMON's monitoring intervals, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    pub sample_us: u64,
    pub aggr_us: u64,
    pub ops_update_us: u64,
}

impl Intervals {
    /// The largest `nr_accesses` a region can reach in one aggregation interval; damo's
    /// `--access_rate` percentages are relative to it.
    pub fn max_nr_accesses(&self) -> u64 {
        self.aggr_us.checked_div(self.sample_us).unwrap_or(0)
    }
}

/// One monitoring region of a snapshot: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    /// Sampled accesses in the aggregation interval.
    pub nr_accesses: u32,
    /// Aggregation intervals the region kept its access pattern.
    pub age: u32,
}

impl Region {
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
}

/// The regions of one target at the end of one aggregation interval.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub start_ns: u64,
    pub end_ns: u64,
    pub regions: Vec<Region>,
    /// Total bytes of memory the target has, when the source said (damo's `total_bytes`).
    pub total_bytes: Option<u64>,
}

/// Everything recorded for one kdamond/context/target (or scheme).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetRecord {
    pub kdamond_idx: u32,
    pub context_idx: u32,
    /// Set when the snapshots are a DAMOS scheme's tried regions.
    pub scheme_idx: Option<u32>,
    pub target_id: u64,
    /// Unknown for perf_script input and for old damo records.
    pub intervals: Option<Intervals>,
    pub snapshots: Vec<Snapshot>,
}

/// A whole record: the access snapshots, and what recording adds beside them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub targets: Vec<TargetRecord>,
}
