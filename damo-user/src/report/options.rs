//! Options every report shares: the input record and damo's record filters, in damo's
//! spellings and units.

use std::{
    io::{Seek, SeekFrom},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use damo_record::{budget::Meter, cache, first_read, load, model::Record, native, units};
use damo_report::{
    accumulate::{self, Accumulate},
    filter::RecordFilter,
    names::Named,
};

#[derive(Debug, Clone, clap::Args)]
pub struct InputArgs {
    /// The record to read: damo-trace's format, or damo's json, json_compressed or perf_script.
    #[arg(short = 'i', long = "input", default_value = "damon.data", value_name = "FILE")]
    pub input: PathBuf,
}

impl InputArgs {
    pub fn load(&self) -> Result<Record> {
        load_record(&self.input)
    }
}

/// A parser for one of the library's option words (`damo_report`'s named enums): offers
/// exactly its names and yields the variant.
pub fn named<T>() -> impl clap::builder::TypedValueParser<Value = T>
where
    T: Named + Clone + Send + Sync + 'static,
{
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(T::NAMES).try_map(|s| s.parse::<T>())
}

/// Sets the memory limit from `DAMO_TRACE_MEMORY_LIMIT`, refusing one that is not a size.
pub fn memory_limit_from_env() -> Result<()> {
    if let Some(limit) = damo_record::budget::limit_from_env()? {
        damo_record::budget::set_limit(limit);
    }
    Ok(())
}

/// Reads a record; a damaged tail is reported on stderr and the intact part is used.
pub fn load_record(path: &Path) -> Result<Record> {
    Ok(load_with_format(path)?.0)
}

/// Set to 1, one-pass reports load a damo-trace record whole as they do other formats, instead
/// of streaming it (to compare the two; the bench measures what streaming saves).
pub const NO_STREAM_ENV: &str = "DAMO_TRACE_NO_STREAM";

/// Feeds every snapshot of the record at `path` to `acc` and gives back the record, less its
/// snapshots when it was streamed. A damo-trace record is streamed from its file: a day of
/// recording (~860 M regions) does not fit in memory, its file does not need to; so is a big
/// damo file's cached native copy ([`Passes::open`]), and damo's JSON files as they are parsed
/// ([`first_read::stream`]). Other inputs are loaded as by [`load_record`] (and keep their
/// snapshots). `rest` says whether a streamed record keeps what it holds besides snapshots
/// (stack samples, footprints…). `acc` is cloned as it comes: a parse given up half way (a
/// document not in damo's layout) starts it again on the whole record.
pub fn accumulate<A: Accumulate + Clone>(path: &Path, rest: native::Rest, acc: &mut A) -> Result<Record> {
    if streams(path) {
        return stream(path, rest, acc, true);
    }
    if no_stream() {
        let (record, _) = load_with_format(path)?;
        accumulate::feed(&record, acc);
        return Ok(record);
    }
    let slot = match cache::look_up(path) {
        cache::Lookup::Cached(copy) => return Streamed::cached(path, copy).pass(rest, acc, true),
        cache::Lookup::Parse(slot) => slot,
    };
    let fresh = acc.clone();
    if let Some(read) = first_read::stream(path, slot.as_ref(), |i, t, s| acc.push(i, t, s))? {
        return Ok(read.rest);
    }
    *acc = fresh;
    let cache::Parsed { record, damage, .. } = cache::open_in(path, slot)?;
    warn_of(path, damage);
    accumulate::feed(&record, acc);
    Ok(record.into_record())
}

fn no_stream() -> bool {
    std::env::var_os(NO_STREAM_ENV).is_some_and(|v| v == "1")
}

/// Whether [`accumulate`] streams the record at `path` (a damo-trace record, streaming not
/// turned off).
pub fn streams(path: &Path) -> bool {
    !no_stream() && load::sniff_file(path) == Some(load::Format::Native)
}

/// A record a report reads in several passes: a damo-trace record streamed from its file, a
/// damo file streamed from its native copy (cached, or made by this report's parse), or one
/// loaded whole.
pub enum Passes {
    Stream(Streamed),
    /// The record and whether it was damo's perf_script.
    Loaded(cache::Whole, bool),
}

/// A record streamed pass after pass, never held whole: its file is opened once and read
/// again from the start for each pass, so every pass reads the same file (a path replaced
/// meanwhile, or a cached copy evicted, does not change what the report reads).
pub struct Streamed {
    path: PathBuf,
    file: StreamedFile,
    perf_script: bool,
    /// A pass read the whole file and found no damage, or the record's summaries were taken
    /// for that: later passes of one target need not decode the others' frames
    /// ([`native::Targets::Only`]).
    intact: bool,
    /// The report was planned from the record's summaries ([`Streamed::summaries`]).
    planned: bool,
}

/// A damo-trace record a report planned from its summaries turned out damaged: what they
/// say is not what a pass reads. The report plans again from a pass.
#[derive(Debug, thiserror::Error)]
#[error("the record is damaged past what its summaries say")]
pub struct PlanBroken;

enum StreamedFile {
    Record(std::fs::File),
    /// The cached native copy of a damo file.
    Cached(cache::CachedCopy),
    /// The native copy of a damo file made by this report's parse ([`first_read::parse_to_copy`]).
    Parsed(std::fs::File),
}

impl Passes {
    /// How the record at `path` is read: streamed, a damo JSON file read the first time from
    /// the native copy its parse makes (and caches, for the next report); loaded whole when
    /// it is damo's perf_script read the first time (its parse caches the copy), or streaming
    /// is turned off.
    pub fn open(path: &Path) -> Result<Passes> {
        if streams(path) {
            return Ok(Passes::Stream(Streamed::new(path, StreamedFile::Record(load::open(path)?), false)));
        }
        if no_stream() {
            let (record, perf) = load_with_format(path)?;
            return Ok(Passes::Loaded(record.into(), perf));
        }
        let slot = match cache::look_up(path) {
            cache::Lookup::Cached(copy) => return Ok(Passes::Stream(Streamed::cached(path, copy))),
            cache::Lookup::Parse(slot) => slot,
        };
        if let Some((copy, _)) = first_read::parse_to_copy(path, slot.as_ref())? {
            return Ok(Passes::Stream(Streamed::new(path, StreamedFile::Parsed(copy), false)));
        }
        let cache::Parsed { record, format, damage } = cache::open_in(path, slot)?;
        Ok(Passes::Loaded(record, is_perf_script(path, format, damage)))
    }
}

impl Streamed {
    fn new(path: &Path, file: StreamedFile, perf_script: bool) -> Streamed {
        Streamed { path: path.to_owned(), file, perf_script, intact: false, planned: false }
    }

    /// The cached copy of the damo file at `path`.
    fn cached(path: &Path, copy: cache::CachedCopy) -> Streamed {
        let perf_script = load::sniff_file(path) == Some(load::Format::Damo(damo_record::damo::DamoFormat::PerfScript));
        Streamed::new(path, StreamedFile::Cached(copy), perf_script)
    }

    fn file(&self) -> &std::fs::File {
        match &self.file {
            StreamedFile::Record(file) | StreamedFile::Parsed(file) => file,
            StreamedFile::Cached(copy) => &copy.file,
        }
    }

    /// Whether the record is damo's perf_script (whose snapshot times damo's heatmap reads
    /// differently).
    pub fn perf_script(&self) -> bool {
        self.perf_script
    }

    /// The targets and what their snapshots add up to, as the end of the record says
    /// ([`native::summaries`]): what a first pass would find, if the record is intact.
    /// `None` when the record has none.
    pub fn summaries(&self) -> Option<native::Summaries> {
        native::summaries(self.file()).ok().flatten()
    }

    /// The report is planned from [`Self::summaries`]: later passes of one target skip the
    /// others' frames, and still check every frame group's CRC and the end mark. A cached
    /// copy that fails is removed, as always; a damo-trace record that fails ends the pass
    /// with [`PlanBroken`], and the report plans again from a pass over what is intact.
    pub fn planned_from_summaries(&mut self) {
        self.intact = true;
        self.planned = true;
    }

    /// Whether the file is a damo-trace record given as input (not a cached copy).
    pub fn is_record(&self) -> bool {
        matches!(self.file, StreamedFile::Record(_))
    }

    /// One pass: every snapshot into `acc`, as [`accumulate`] feeds them; the record less its
    /// snapshots back. A damaged tail is reported when `warn` (once per report).
    pub fn pass(&mut self, rest: native::Rest, acc: &mut impl Accumulate, warn: bool) -> Result<Record> {
        self.pass_of(native::Targets::All, rest, acc, warn)
    }

    /// A pass for `acc` that reads only the target of index `index` ([`Self::pass`] of the
    /// file until a pass found it intact).
    pub fn pass_of_target(&mut self, index: usize, acc: &mut impl Accumulate) -> Result<()> {
        let targets = if self.intact { native::Targets::Only(index) } else { native::Targets::All };
        self.pass_of(targets, native::Rest::Drop, acc, false).map(drop)
    }

    fn pass_of(&mut self, targets: native::Targets, rest: native::Rest, acc: &mut impl Accumulate, warn: bool) -> Result<Record> {
        self.file().seek(SeekFrom::Start(0)).with_context(|| format!("failed to read {} again", self.path.display()))?;
        let end = match &self.file {
            StreamedFile::Record(file) => stream_from(&self.path, file, rest, targets, acc, warn)?,
            StreamedFile::Cached(copy) => stream_copy(&self.path, &copy.file, rest, targets, acc, || {
                copy.discard();
                anyhow::anyhow!("{}: its cached copy is damaged and was removed: run the report again to parse the file", self.path.display())
            })?,
            StreamedFile::Parsed(file) => stream_copy(&self.path, file, rest, targets, acc, || {
                anyhow::anyhow!("{}: the native copy its parse made is damaged (a bug; DAMO_TRACE_NO_STREAM=1 reads the file whole)", self.path.display())
            })?,
        };
        if self.planned && (end.damaged_at.is_some() || !end.complete) {
            return Err(PlanBroken.into());
        }
        self.intact |= targets == native::Targets::All && end.damaged_at.is_none();
        Ok(end.rest)
    }
}

/// Streams `copy`, the native copy of the damo file at `path`; a damaged one is the error
/// `damaged` makes.
fn stream_copy(path: &Path, copy: &std::fs::File, rest: native::Rest, targets: native::Targets, acc: &mut impl Accumulate, damaged: impl FnOnce() -> anyhow::Error) -> Result<native::StreamEnd> {
    let end = native::stream_file(copy, &mut Meter::new(), rest, targets, |i, t, s| acc.push(i, t, s)).map_err(|e| load::native_error(path, e))?;
    if end.damaged_at.is_some() || !end.complete {
        return Err(damaged());
    }
    Ok(end)
}

/// Streams the damo-trace record at `path` into `acc`, as [`accumulate`] does; a damaged
/// tail is reported when `warn` (a report reading the file twice says it once).
pub fn stream(path: &Path, rest: native::Rest, acc: &mut impl Accumulate, warn: bool) -> Result<Record> {
    Ok(stream_from(path, &load::open(path)?, rest, native::Targets::All, acc, warn)?.rest)
}

/// [`stream`] of `targets` from `file`, the record at `path`, open and at its start.
fn stream_from(path: &Path, file: &std::fs::File, rest: native::Rest, targets: native::Targets, acc: &mut impl Accumulate, warn: bool) -> Result<native::StreamEnd> {
    let end = native::stream_file(file, &mut Meter::new(), rest, targets, |i, t, s| acc.push(i, t, s)).map_err(|e| load::native_error(path, e))?;
    if let Some(damage) = load::native_damage(end.damaged_at, end.complete).filter(|_| warn) {
        eprintln!("damo-trace: warning: {}: {damage}", path.display());
    }
    Ok(end)
}

/// [`load_record`], and whether the record was damo's perf_script (whose snapshot times
/// damo's heatmap reads differently).
pub fn load_with_format(path: &Path) -> Result<(Record, bool)> {
    Ok(warn_damage(path, cache::load(path)?))
}

/// The record loaded from `path` (a damaged tail reported on stderr), and whether it was
/// damo's perf_script.
fn warn_damage(path: &Path, loaded: load::Loaded) -> (Record, bool) {
    let perf = is_perf_script(path, loaded.format, loaded.damage);
    (loaded.record, perf)
}

/// Whether a record of `format` was damo's perf_script; its `damage` is reported on stderr.
fn is_perf_script(path: &Path, format: load::Format, damage: Option<String>) -> bool {
    warn_of(path, damage);
    format == load::Format::Damo(damo_record::damo::DamoFormat::PerfScript)
}

/// Reports the `damage` a read of the record at `path` found, on stderr.
fn warn_of(path: &Path, damage: Option<String>) {
    if let Some(damage) = damage {
        eprintln!("damo-trace: warning: {}: {damage}", path.display());
    }
}

/// The stack-sample reports' inputs: the record, where its binaries are, and damo's record
/// filters, which pick the times whose samples count.
#[derive(Debug, Clone, clap::Args)]
pub struct SampleArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub symbols: SymbolArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Prints a distribution report's text, or with `--plot FILE` draws its chart instead.
pub fn print_or_plot(plot: Option<&Path>, out: &mut dyn std::io::Write, text: impl FnOnce() -> Result<String>, chart: impl FnOnce() -> Result<String>) -> Result<()> {
    match plot {
        Some(path) => damo_report::image::write_svg_as(path, &chart()?)?,
        None => out.write_all(text()?.as_bytes())?,
    }
    Ok(())
}

/// Where to find the recorded binaries when the record was made elsewhere (a VM, another
/// machine): directories searched by file name; a file is used only if its build-id matches.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SymbolArgs {
    #[arg(long = "search_dir", value_name = "DIR")]
    pub search_dirs: Vec<PathBuf>,
}

/// damo's record filters. Ranges are inclusive; repeatable ones keep what any range keeps.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilterArgs {
    /// Keep regions of this size (4K, 1.5 MiB, min, max).
    #[arg(long = "sz_region", num_args = 2, value_names = ["MIN", "MAX"], allow_hyphen_values = true)]
    pub sz_region: Option<Vec<String>>,
    /// Keep regions with this access rate: percent of the most accesses an aggregation
    /// interval can see (50%, 100%, min, max). Needs the record's intervals.
    #[arg(long = "access_rate", num_args = 2, value_names = ["MIN", "MAX"], allow_hyphen_values = true)]
    pub access_rate: Option<Vec<String>>,
    /// Keep regions of this age (60s, 1m, min, max; a bare number is µs, as in damo).
    #[arg(long = "age", num_args = 2, value_names = ["MIN", "MAX"], allow_hyphen_values = true)]
    pub age: Option<Vec<String>>,
    /// Keep the parts of regions in [START, END); repeatable.
    #[arg(long = "address", num_args = 2, value_names = ["START", "END"], action = clap::ArgAction::Append)]
    pub address: Vec<String>,
    /// Keep snapshots whose regions total this size; repeatable.
    #[arg(long = "sz_snapshot", num_args = 2, value_names = ["MIN", "MAX"], action = clap::ArgAction::Append)]
    pub sz_snapshot: Vec<String>,
    /// Keep snapshots taken within this time range (a bare number is ns); repeatable.
    #[arg(long = "snapshot_time", num_args = 2, value_names = ["START", "END"], action = clap::ArgAction::Append)]
    pub snapshot_time: Vec<String>,
    /// Keep snapshots with these indices (after the time filter); repeatable.
    #[arg(long = "snapshot_idx", num_args = 2, value_names = ["START", "END"], action = clap::ArgAction::Append)]
    pub snapshot_idx: Vec<String>,
    /// Keep regions of this temperature (see `report access`); repeatable.
    #[arg(long = "temperature", num_args = 2, value_names = ["MIN", "MAX"], action = clap::ArgAction::Append, allow_negative_numbers = true)]
    pub temperature: Vec<String>,
}

impl FilterArgs {
    pub fn to_filter(&self) -> Result<RecordFilter> {
        let mut f = RecordFilter::default();
        if let Some(v) = &self.sz_region {
            f.sz_region = range("--sz_region", v, units::parse_bytes)?;
        }
        if let Some(v) = &self.access_rate {
            f.access_rate = range("--access_rate", v, units::parse_percent)?;
        }
        if let Some(v) = &self.age {
            f.age_us = range("--age", v, units::parse_us)?;
        }
        if !self.address.is_empty() {
            f.address = Some(sorted_disjoint("--address", ranges("--address", &self.address, units::parse_bytes)?)?);
        }
        if !self.sz_snapshot.is_empty() {
            f.sz_snapshot = Some(sorted_disjoint("--sz_snapshot", ranges("--sz_snapshot", &self.sz_snapshot, units::parse_bytes)?)?);
        }
        if !self.snapshot_time.is_empty() {
            f.snapshot_time = Some(ranges("--snapshot_time", &self.snapshot_time, units::parse_ns)?);
        }
        if !self.snapshot_idx.is_empty() {
            f.snapshot_idx = Some(ranges("--snapshot_idx", &self.snapshot_idx, units::parse_count)?);
        }
        if !self.temperature.is_empty() {
            let parse = |s: &str| s.trim().parse::<i64>().map_err(|_| units::UnitError { text: s.into(), what: "temperature (an integer)" });
            f.temperature = Some(ranges("--temperature", &self.temperature, parse)?);
        }
        Ok(f)
    }
}

fn range<T: PartialOrd + Copy>(option: &str, pair: &[String], parse: impl Fn(&str) -> Result<T, units::UnitError>) -> Result<(T, T)> {
    let [lo, hi] = pair else { bail!("{option} takes two values") };
    let lo = parse(lo).with_context(|| format!("bad {option} minimum"))?;
    let hi = parse(hi).with_context(|| format!("bad {option} maximum"))?;
    if lo > hi {
        bail!("{option}: the minimum {:?} is larger than the maximum {:?}", pair[0], pair[1]);
    }
    Ok((lo, hi))
}

fn ranges<T: PartialOrd + Copy>(option: &str, flat: &[String], parse: impl Fn(&str) -> Result<T, units::UnitError> + Copy) -> Result<Vec<(T, T)>> {
    flat.chunks(2).map(|pair| range(option, pair, parse)).collect()
}

/// damo refuses overlapping address and size ranges.
fn sorted_disjoint(option: &str, mut v: Vec<(u64, u64)>) -> Result<Vec<(u64, u64)>> {
    v.sort_unstable();
    if let Some(w) = v.windows(2).find(|w| w[0].1 > w[1].0) {
        bail!("{option}: ranges {}-{} and {}-{} overlap", w[0].0, w[0].1, w[1].0, w[1].1);
    }
    Ok(v)
}
