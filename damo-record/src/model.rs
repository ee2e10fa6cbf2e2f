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
    /// Aggregation intervals the region kept its access pattern; unknown in damo's old
    /// 6-field perf_script lines and in records that stored none.
    pub age: Option<u32>,
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
    /// CPU samples with call stacks, in time order.
    pub samples: Vec<StackSample>,
    /// Files that `FileAddr::module` indexes.
    pub modules: Vec<Module>,
    /// Names of kernel addresses, resolved on the recording machine.
    pub kernel_symbols: Vec<(u64, String)>,
    /// What was dropped while recording; `None` for records from other tools.
    pub losses: Option<Losses>,
    /// DAMOS details of damo's JSON records (`damon.data.snapshot.*`), one per target in
    /// `targets` order; `None` for every other source. Only `report access` reads them.
    pub damos: Option<Vec<DamosInfo>>,
    /// Memory footprints of the recorded processes and of the system, about once a second
    /// (damo's `mem_footprint`); empty for records that have none (damo's, older ones).
    pub footprints: Vec<FootprintSnapshot>,
    /// Memory mappings of the recorded processes: an entry when a process's mappings differ
    /// from its previous entry, which holds until then (damo's `vmas`).
    pub vmas: Vec<VmaSnapshot>,
    /// CPU time and threads of the recorded processes and kdamonds, about once a second
    /// (damo's `proc_stats`).
    pub proc_stats: Vec<ProcStatSample>,
    /// How the record was made; `None` for other tools' records and older ones.
    pub metadata: Option<Metadata>,
    /// What the sampled code in files was, resolved while recording, so the record names its
    /// frames without the binaries (a copy on another machine, deleted files). Empty for
    /// other tools' records and older ones.
    pub code_symbols: Vec<CodeSymbol>,
    /// The JIT code (perf map entries, `/tmp/perf-<pid>.map`) that samples fell in.
    pub jit_symbols: Vec<JitSymbol>,
}

/// The functions at one sampled file offset, resolved while recording.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodeSymbol {
    /// Index into [`Record::modules`].
    pub module: u32,
    /// The file offset looked up: a leaf frame's own, a return address's minus one (which is
    /// inside the call instruction).
    pub offset: u64,
    /// The function, then the functions inlined into it at that offset (outermost first);
    /// empty when the file has no symbol there.
    pub frames: Vec<SourceFrame>,
}

/// A function, and where in its source the address is (when the binary has debug info).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceFrame {
    pub name: String,
    /// The source file; empty when unknown.
    pub file: String,
    /// 0 when unknown.
    pub line: u32,
}

/// A perf map entry (`START SIZE name`) of a process that a sample fell in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JitSymbol {
    pub pid: u32,
    pub start: u64,
    pub size: u64,
    pub name: String,
}

/// How a recording was made: what reports need to read it right (the sampling rate, the
/// wall clock) and what a reader wants to know (the command, the machine, the parameters).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Metadata {
    /// The recorder and its version, e.g. "damo-trace 0.1.0".
    pub recorder: String,
    /// Its command line.
    pub command_line: Vec<String>,
    pub hostname: String,
    pub kernel_release: String,
    pub nr_cpus: u32,
    /// cpu-clock samples per second on each CPU; 0: no stacks were sampled.
    pub sample_hz: u64,
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC when the recording started: added to a record
    /// time (CLOCK_MONOTONIC), it gives the wall-clock time in ns since the epoch.
    pub realtime_offset_ns: Option<i64>,
    /// The DAMON parameters of the kdamonds the recording started (damo's kdamonds JSON).
    pub damon: Option<serde_json::Value>,
}

/// The memory footprints read at one moment (damo's `MemFootprintsSnapshot`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FootprintSnapshot {
    /// CLOCK_MONOTONIC, like snapshot times.
    pub ts_ns: u64,
    /// `/proc/meminfo`; `None` if it could not be read.
    pub system: Option<SystemMemory>,
    /// `/proc/<pid>/statm` of each recorded process alive at `ts_ns`.
    pub processes: Vec<ProcessFootprint>,
}

/// System-wide memory from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SystemMemory {
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub buffers: u64,
    pub cached: u64,
}

/// A process's `/proc/<pid>/statm`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessFootprint {
    pub pid: u32,
    pub vsz: u64,
    pub rss: u64,
    pub shared: u64,
    pub text: u64,
    pub data: u64,
}

/// A process's mappings (`/proc/<pid>/maps`) from `ts_ns` on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VmaSnapshot {
    pub ts_ns: u64,
    pub pid: u32,
    /// In address order.
    pub vmas: Vec<Vma>,
}

/// One mapping: `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    /// `r-xp` and the like.
    pub perms: String,
    /// File offset of `start`.
    pub offset: u64,
    /// The file, `[heap]`, `[stack]`…; empty for anonymous memory.
    pub name: String,
}

/// What `/proc/<pid>/stat` said about a process at `ts_ns`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcStatSample {
    pub ts_ns: u64,
    pub pid: u32,
    /// `kdamond.0` for kdamonds.
    pub comm: String,
    /// CPU time since the process started, in user and in kernel mode.
    pub utime_ns: u64,
    pub stime_ns: u64,
    pub nr_threads: u64,
    /// Resident memory, in bytes.
    pub rss: u64,
}

/// What damo's JSON keeps beside a target's regions when they come through DAMOS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DamosInfo {
    /// damo wrote `"target_id": null`.
    pub target_id_null: bool,
    /// The intervals auto-tuning goal, when damo wrote one.
    pub intervals_goal: Option<IntervalsGoal>,
    pub scheme_filters: Vec<SchemeFilter>,
    /// Per snapshot, keyed by `end_ns`.
    pub snapshots: Vec<DamosSnapshotInfo>,
}

/// damo's `intervals_goal`; `access_bp_milli` is the basis points times 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IntervalsGoal {
    pub access_bp_milli: u64,
    pub aggrs: u64,
    pub min_sample_us: u64,
    pub max_sample_us: u64,
}

/// A DAMOS filter of the scheme that took the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchemeFilter {
    pub filter_type: String,
    pub matching: bool,
    pub allow: bool,
    pub memcg_path: String,
    pub address_range: Option<(u64, u64)>,
    pub damon_target_idx: Option<u64>,
    pub hugepage_size: Option<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DamosSnapshotInfo {
    pub end_ns: u64,
    /// damo's `damos_stats` (nr_tried, sz_tried, nr_applied, sz_applied,
    /// sz_ops_filter_passed, qt_exceeds, nr_snapshots, max_nr_snapshots).
    pub stats: Option<[u64; 8]>,
    /// `(region start, sz_filter_passed)`, sorted by start.
    pub sz_filter_passed: Vec<(u64, u64)>,
}

/// An executable or shared library that stack addresses were found in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Module {
    pub path: std::path::PathBuf,
    pub build_id: Option<Vec<u8>>,
}

/// `FileAddr::module` of an address outside any file (JIT code, a vanished mapping).
pub const UNKNOWN_MODULE: u32 = u32::MAX;

/// A user address made position independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileAddr {
    /// Index into [`Record::modules`], or [`UNKNOWN_MODULE`].
    pub module: u32,
    /// File offset in the module; the raw address for `UNKNOWN_MODULE`.
    pub offset: u64,
}

/// One cpu-clock sample of a target task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSample {
    /// CLOCK_MONOTONIC, like snapshot times.
    pub ts_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub cpu: u32,
    pub comm: String,
    /// Innermost first.
    pub user: Vec<FileAddr>,
    /// Kernel addresses, innermost first.
    pub kernel: Vec<u64>,
}

/// Counts of everything dropped or degraded while recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Losses {
    /// The eBPF side's per-CPU counters: region events and stack samples that found the ring
    /// buffer full, unreadable stacks, a full target map.
    pub kernel: [u64; 4],
    /// Snapshots that lost regions and were dropped.
    pub incomplete_snapshots: u64,
    /// Samples whose process exited before its addresses could be normalized.
    pub unnormalized_samples: u64,
    pub undecodable_events: u64,
    /// mmap/exec/fork/exit records the kernel dropped (their processes fell back to /proc).
    /// 0 in records from before they were counted.
    pub mapping_records: u64,
}

impl Losses {
    /// What each count means, in the order of [`Losses::counts`].
    pub const CAUSES: [&'static str; 8] = [
        "region events: ring buffer full",
        "stack samples: ring buffer full",
        "stack samples: stacks unreadable",
        "children: target map full",
        "snapshots: incomplete",
        "stack samples: unnormalized",
        "events: undecodable",
        "mapping records: lost",
    ];

    /// Every counter, in the record's order.
    pub fn counts(&self) -> [u64; 8] {
        let [a, b, c, d] = self.kernel;
        [a, b, c, d, self.incomplete_snapshots, self.unnormalized_samples, self.undecodable_events, self.mapping_records]
    }

    /// The causes that lost something, with their counts.
    pub fn breakdown(&self) -> Vec<(&'static str, u64)> {
        Self::CAUSES.into_iter().zip(self.counts()).filter(|&(_, n)| n > 0).collect()
    }

    /// Everything dropped. Lost mapping records are not in it: they drop nothing by
    /// themselves (samples they would have named are counted as unnormalized).
    pub fn total(&self) -> u64 {
        self.kernel.iter().sum::<u64>() + self.incomplete_snapshots + self.unnormalized_samples + self.undecodable_events
    }
}
