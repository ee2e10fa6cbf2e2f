//! damo's `json` and `json_compressed` records: a JSON list of `DamonRecord`s (zlib-deflated
//! for `json_compressed`), as damo's `_damo_records.write_json` writes them.
//!
//! damo writes numbers as JSON numbers, plain strings or human strings ("94,827,419,009,024",
//! "31.340 MiB", "8 m 59.809 s"); every numeric field accepts all three.

pub mod inflate;
pub(super) mod scan;

pub use scan::Each;

use std::{cell::RefCell, fmt, io::Write, marker::PhantomData};

use serde::{de, Deserialize, Deserializer};

use super::DamoError;
use crate::{
    budget::{bytes_of, Meter},
    model::{DamosInfo, DamosSnapshotInfo, Intervals, IntervalsGoal, Record, Region, SchemeFilter, Snapshot, TargetRecord},
    units,
};

/// A numeric field, converted by `P` from whatever form damo stored it in.
struct Field<P: Parse>(P::Out);

trait Parse {
    type Out;
    const WHAT: &'static str;
    fn text(s: &str) -> Result<Self::Out, units::UnitError>;
    fn int(i: i128) -> Option<Self::Out>;
    fn float(f: f64) -> Option<Self::Out>;
    /// Whether a text of plain digits (commas between them, then this suffix if any) is the
    /// int they spell, as [`Self::text`] reads it: read without it, a region's fields cost
    /// no allocation.
    const PLAIN_SUFFIX: Option<&'static str> = None;
}

/// The int a plain text of at most 15 digits (commas ignored, as damo writes them) spells.
/// 15 digits keep µs × 1000 in a u64, so every unit reads it as this int.
fn plain_int(text: &[u8]) -> Option<i128> {
    let mut value: i128 = 0;
    let mut digits = 0;
    for &b in text {
        match b {
            b'0'..=b'9' => {
                value = value * 10 + i128::from(b - b'0');
                digits += 1;
            }
            b',' => {}
            _ => return None,
        }
    }
    (1..=15).contains(&digits).then_some(value)
}

macro_rules! unsigned_parser {
    ($name:ident, $what:literal, $text:path, $suffix:literal) => {
        struct $name;
        impl Parse for $name {
            type Out = u64;
            const WHAT: &'static str = $what;
            const PLAIN_SUFFIX: Option<&'static str> = Some($suffix);
            fn text(s: &str) -> Result<u64, units::UnitError> {
                $text(s)
            }
            fn int(i: i128) -> Option<u64> {
                u64::try_from(i).ok()
            }
            fn float(f: f64) -> Option<u64> {
                (f >= 0.0 && f < u64::MAX as f64).then_some(f as u64)
            }
        }
    };
}

unsigned_parser!(Bytes, "size or address", units::parse_bytes, " B");
unsigned_parser!(Ns, "time in ns", units::parse_ns, "");
unsigned_parser!(Us, "time in µs", units::parse_us, "");
unsigned_parser!(Count, "count", units::parse_count, "");

/// Signed counts: damo's fake snapshot has `nr_accesses` and `age` of -1.
struct SignedCount;
impl Parse for SignedCount {
    type Out = i64;
    const WHAT: &'static str = "count";
    const PLAIN_SUFFIX: Option<&'static str> = Some("");
    fn text(s: &str) -> Result<i64, units::UnitError> {
        match units::parse_number(s)? {
            units::Number::Int(i) => i64::try_from(i).map_err(|_| units::UnitError { text: s.into(), what: "count" }),
            units::Number::Float(f) => Ok(f as i64),
        }
    }
    fn int(i: i128) -> Option<i64> {
        i64::try_from(i).ok()
    }
    fn float(f: f64) -> Option<i64> {
        Some(f as i64)
    }
}

struct Percent;
impl Parse for Percent {
    type Out = f64;
    const WHAT: &'static str = "percentage";
    fn text(s: &str) -> Result<f64, units::UnitError> {
        units::parse_percent(s)
    }
    fn int(i: i128) -> Option<f64> {
        Some(i as f64)
    }
    fn float(f: f64) -> Option<f64> {
        Some(f)
    }
}

impl<'de, P: Parse> Deserialize<'de> for Field<P> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<P>(PhantomData<P>);
        impl<P: Parse> de::Visitor<'_> for V<P> {
            type Value = Field<P>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a {} as a number or a string", P::WHAT)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field<P>, E> {
                self.visit_i128(i128::from(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Field<P>, E> {
                self.visit_i128(i128::from(v))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Field<P>, E> {
                P::int(v).map(Field).ok_or_else(|| E::custom(format!("{v} is out of range for a {}", P::WHAT)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Field<P>, E> {
                P::float(v).map(Field).ok_or_else(|| E::custom(format!("{v} is out of range for a {}", P::WHAT)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field<P>, E> {
                let plain = P::PLAIN_SUFFIX.and_then(|suffix| plain_int(v.strip_suffix(suffix).unwrap_or(v).as_bytes())).and_then(P::int);
                match plain {
                    Some(out) => Ok(Field(out)),
                    None => P::text(v).map(Field).map_err(E::custom),
                }
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[derive(Deserialize)]
struct JsonTarget {
    #[serde(default)]
    kdamond_idx: Option<Field<Count>>,
    #[serde(default)]
    context_idx: Option<Field<Count>>,
    #[serde(default)]
    intervals: Option<JsonIntervals>,
    #[serde(default)]
    scheme_idx: Option<Field<Count>>,
    /// Null in snapshots taken through DAMOS (damo's `damon.data.snapshot.*`).
    #[serde(default)]
    target_id: Option<Field<Count>>,
    snapshots: Charged<JsonSnapshot>,
    #[serde(default)]
    scheme_filters: Option<Charged<JsonFilter>>,
}

#[derive(Deserialize)]
struct JsonFilter {
    filter_type: String,
    #[serde(default)]
    matching: bool,
    #[serde(default)]
    allow: bool,
    #[serde(default)]
    memcg_path: Option<String>,
    #[serde(default)]
    address_range: Option<JsonRange>,
    #[serde(default)]
    damon_target_idx: Option<Field<Count>>,
    #[serde(default)]
    hugepage_size: Option<[Field<Bytes>; 2]>,
}

#[derive(Deserialize)]
struct JsonRange {
    start: Field<Bytes>,
    end: Field<Bytes>,
}

#[derive(Deserialize)]
struct JsonGoal {
    access_bp: Field<Percent>,
    aggrs: Field<Count>,
    min_sample_us: Field<Us>,
    max_sample_us: Field<Us>,
}

#[derive(Deserialize)]
struct JsonStats {
    nr_tried: Field<Count>,
    sz_tried: Field<Bytes>,
    nr_applied: Field<Count>,
    sz_applied: Field<Bytes>,
    sz_ops_filter_passed: Field<Bytes>,
    qt_exceeds: Field<Count>,
    #[serde(default)]
    nr_snapshots: Option<Field<Count>>,
    #[serde(default)]
    max_nr_snapshots: Option<Field<Count>>,
}

#[derive(Deserialize)]
struct JsonIntervals {
    sample_us: Field<Us>,
    aggr_us: Field<Us>,
    ops_update_us: Field<Us>,
    #[serde(default)]
    intervals_goal: Option<JsonGoal>,
}

#[derive(Deserialize)]
struct JsonSnapshot {
    start_time: Option<Field<Ns>>,
    end_time: Field<Ns>,
    regions: Charged<JsonRegion>,
    #[serde(default)]
    total_bytes: Option<Field<Bytes>>,
    #[serde(default)]
    damos_stats: Option<JsonStats>,
}

#[derive(Deserialize)]
struct JsonRegion {
    start: Field<Bytes>,
    end: Field<Bytes>,
    #[serde(default)]
    nr_accesses: Option<JsonNrAccesses>,
    #[serde(default)]
    age: Option<JsonAge>,
    #[serde(default)]
    sz_filter_passed: Option<Field<Bytes>>,
}

#[derive(Deserialize)]
struct JsonNrAccesses {
    #[serde(default)]
    samples: Option<Field<SignedCount>>,
    #[serde(default)]
    percent: Option<Field<Percent>>,
}

#[derive(Deserialize)]
struct JsonAge {
    #[serde(default)]
    usec: Option<Field<Us>>,
    #[serde(default)]
    aggr_intervals: Option<Field<SignedCount>>,
}

/// Parses a `json` record.
pub fn read(text: &[u8]) -> Result<Record, DamoError> {
    read_with(text, &mut Meter::new())
}

/// [`read`], charging what the record takes to `meter`.
pub fn read_with(text: &[u8], meter: &mut Meter) -> Result<Record, DamoError> {
    // damo's own layout is read by the scanner; anything else by serde, which names faults.
    let mut fast = meter.clone();
    match scan::read(std::iter::once(Ok(text)), drop, &mut fast) {
        Ok(record) => {
            *meter = fast;
            return Ok(record);
        }
        Err(scan::Stop::OverBudget) => return Err(DamoError::OverBudget(fast.over())),
        Err(scan::Stop::Unexpected) => {}
    }
    read_by_serde(text, meter)
}

/// [`read_with`] by serde alone.
fn read_by_serde(text: &[u8], meter: &mut Meter) -> Result<Record, DamoError> {
    if !StringGuard::default().feed(text) {
        return Err(DamoError::LongString);
    }
    let targets = metered(meter, || serde_json::from_slice::<Charged<JsonTarget>>(text).map_err(|e| DamoError::Json(e.to_string())))?;
    convert(targets.0)
}

/// Parses a `json` record from a stream (`json_compressed` while it inflates), charging what
/// it takes to `meter`. The stream's strings must be checked by the caller ([`StringGuard`]):
/// the parser buffers each one whole.
pub fn read_from(reader: impl std::io::Read, meter: &mut Meter) -> Result<Record, DamoError> {
    let targets = metered(meter, || {
        serde_json::from_reader::<_, Charged<JsonTarget>>(reader).map_err(|e| match e.io_error_kind() {
            Some(_) => DamoError::Zlib(std::io::Error::other(e.to_string())),
            None => DamoError::Json(e.to_string()),
        })
    })?;
    convert(targets.0)
}

/// The longest JSON string read: damo's strings are numbers, units, filter types and memcg
/// paths. serde_json buffers a string whole, so a 3 GiB one would take 3 GiB.
pub const MAX_STRING: u64 = 1 << 20;

/// Tracks JSON strings across the blocks of a stream and refuses one longer than
/// [`MAX_STRING`].
#[derive(Default)]
pub struct StringGuard {
    in_string: bool,
    escaped: bool,
    run: u64,
}

impl StringGuard {
    /// Reads on through `data`; `false` once a string is too long.
    pub fn feed(&mut self, mut data: &[u8]) -> bool {
        while !data.is_empty() {
            if self.escaped {
                self.escaped = false;
                self.run += 1;
                data = &data[1..];
                continue;
            }
            let next = memchr::memchr2(b'"', b'\\', data);
            let upto = next.unwrap_or(data.len());
            if self.in_string {
                self.run += upto as u64;
                if self.run > MAX_STRING {
                    return false;
                }
            }
            let Some(i) = next else { break };
            match data[i] {
                b'"' => {
                    self.in_string = !self.in_string;
                    self.run = 0;
                }
                _ => self.escaped = self.in_string,
            }
            data = &data[i + 1..];
        }
        true
    }
}

/// Drops the indentation of a JSON stream as it arrives: the spaces and tabs after a newline
/// or a colon, outside strings. damo indents every line, so the parser (a byte at a time
/// through `io::Read`) then reads about half the bytes. Newlines stay, so errors name the
/// same lines and no two values can merge into one.
#[derive(Default)]
pub struct Squeeze {
    in_string: bool,
    /// The block ended on a backslash in a string.
    escaped: bool,
    /// The block ended in whitespace being dropped.
    skipping: bool,
}

impl Squeeze {
    /// Removes the indentation from `block`, the next bytes of the stream.
    pub fn squeeze(&mut self, block: &mut Vec<u8>) {
        let (mut read, mut kept) = (0, 0);
        while read < block.len() {
            if self.escaped {
                self.escaped = false;
                block[kept] = block[read];
                (read, kept) = (read + 1, kept + 1);
                continue;
            }
            if self.skipping {
                read += block[read..].iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
                self.skipping = read == block.len();
                continue;
            }
            let rest = &block[read..];
            let hit = if self.in_string { memchr::memchr2(b'"', b'\\', rest) } else { memchr::memchr3(b'"', b'\n', b':', rest) };
            let len = hit.map_or(rest.len(), |i| i + 1);
            block.copy_within(read..read + len, kept);
            (read, kept) = (read + len, kept + len);
            if hit.is_some() {
                match block[kept - 1] {
                    b'"' => self.in_string = !self.in_string,
                    b'\\' => self.escaped = true,
                    _ => self.skipping = true,
                }
            }
        }
        block.truncate(kept);
    }
}

thread_local! {
    /// The meter of the record being parsed on this thread: serde's visitors reach it here.
    static METER: RefCell<Option<Meter>> = const { RefCell::new(None) };
}

/// Runs `parse` with `meter` reachable by [`Charged`]; an error past the limit is
/// [`DamoError::OverBudget`] whatever serde made of it.
fn metered<T>(meter: &mut Meter, parse: impl FnOnce() -> Result<T, DamoError>) -> Result<T, DamoError> {
    METER.with(|m| *m.borrow_mut() = Some(meter.clone()));
    let result = parse();
    if let Some(m) = METER.with(|m| m.borrow_mut().take()) {
        *meter = m;
    }
    match result {
        Err(_) if meter.exhausted() => Err(DamoError::OverBudget(meter.over())),
        r => r,
    }
}

/// What an element of a JSON list costs beyond itself: the model's value it becomes.
trait Cost {
    const EXTRA: u64;
}
impl Cost for JsonTarget {
    const EXTRA: u64 = std::mem::size_of::<TargetRecord>() as u64 + std::mem::size_of::<DamosInfo>() as u64;
}
impl Cost for JsonSnapshot {
    const EXTRA: u64 = std::mem::size_of::<Snapshot>() as u64 + std::mem::size_of::<DamosSnapshotInfo>() as u64;
}
impl Cost for JsonFilter {
    const EXTRA: u64 = std::mem::size_of::<SchemeFilter>() as u64;
}
impl Cost for JsonRegion {
    /// The region, its converted pair with the fake flag, and a `sz_filter_passed` entry.
    const EXTRA: u64 = std::mem::size_of::<Region>() as u64 + std::mem::size_of::<(Region, bool)>() as u64 + 16;
}

/// A JSON list whose elements are charged to the thread's meter before they are read.
struct Charged<T>(Vec<T>);

impl<'de, T: Deserialize<'de> + Cost> Deserialize<'de> for Charged<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Cost> de::Visitor<'de> for V<T> {
            type Value = Charged<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Charged<T>, A::Error> {
                let mut out = Vec::new();
                let each = bytes_of::<T>(1) + T::EXTRA;
                loop {
                    let charged = METER.with(|m| m.borrow_mut().as_mut().map_or(Ok(()), |m| m.charge(each)));
                    charged.map_err(de::Error::custom)?;
                    match seq.next_element()? {
                        Some(v) => out.push(v),
                        None => return Ok(Charged(out)),
                    }
                }
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

fn convert(targets: Vec<JsonTarget>) -> Result<Record, DamoError> {
    let mut record = Record::default();
    let mut damos = Vec::new();
    for t in targets {
        let (target, info) = convert_target(t)?;
        record.targets.push(target);
        damos.push(info);
    }
    if damos.iter().any(|d| *d != DamosInfo { target_id_null: d.target_id_null, ..Default::default() }) {
        record.damos = Some(damos);
    }
    Ok(record)
}

fn convert_target(mut t: JsonTarget) -> Result<(TargetRecord, DamosInfo), DamoError> {
    let snapshots = std::mem::take(&mut t.snapshots.0);
    let (mut target, mut info) = convert_head(t)?;
    target.snapshots.reserve(snapshots.len());
    for mut s in snapshots {
        if let Some(snapshot) = convert_snapshot(&mut s, target.intervals, &mut info, Vec::new())? {
            target.snapshots.push(snapshot);
        }
    }
    Ok((target, info))
}

/// A target without its snapshots (`t.snapshots` is not looked at).
fn convert_head(t: JsonTarget) -> Result<(TargetRecord, DamosInfo), DamoError> {
    let info = DamosInfo {
        target_id_null: t.target_id.is_none(),
        intervals_goal: t.intervals.as_ref().and_then(|i| i.intervals_goal.as_ref()).map(|g| IntervalsGoal {
            access_bp_milli: (g.access_bp.0 * 1000.0).round() as u64,
            aggrs: g.aggrs.0,
            min_sample_us: g.min_sample_us.0,
            max_sample_us: g.max_sample_us.0,
        }),
        scheme_filters: t
            .scheme_filters
            .map_or_else(Vec::new, |f| f.0)
            .into_iter()
            .map(|f| SchemeFilter {
                filter_type: f.filter_type,
                matching: f.matching,
                allow: f.allow,
                memcg_path: f.memcg_path.unwrap_or_default(),
                address_range: f.address_range.map(|r| (r.start.0, r.end.0)),
                damon_target_idx: f.damon_target_idx.map(|i| i.0),
                hugepage_size: f.hugepage_size.map(|[a, b]| (a.0, b.0)),
            })
            .collect(),
        snapshots: Vec::new(),
    };
    let intervals = t.intervals.map(|i| Intervals { sample_us: i.sample_us.0, aggr_us: i.aggr_us.0, ops_update_us: i.ops_update_us.0 });
    let small = |f: Option<Field<Count>>, what| f.map(|f| u32::try_from(f.0).map_err(|_| DamoError::Json(format!("{what} {} is out of range", f.0)))).transpose();
    let target = TargetRecord {
        kdamond_idx: small(t.kdamond_idx, "kdamond_idx")?.unwrap_or(0),
        context_idx: small(t.context_idx, "context_idx")?.unwrap_or(0),
        scheme_idx: small(t.scheme_idx, "scheme_idx")?,
        target_id: t.target_id.map_or(0, |f| f.0),
        intervals,
        snapshots: Vec::new(),
    };
    Ok((target, info))
}

/// Snapshot `s` of a target with `intervals` (its DAMOS details added to `info`), its regions
/// in `regions` (an empty list, whose allocation a streaming reader reuses); `None` for damo's
/// fake one. Drains the regions of `s` (the scanner reuses their list: a new one per snapshot
/// left holes in the heap that the next snapshot's list did not fit, and the fresh pages cost
/// more than the parse).
fn convert_snapshot(s: &mut JsonSnapshot, intervals: Option<Intervals>, info: &mut DamosInfo, mut regions: Vec<Region>) -> Result<Option<Snapshot>, DamoError> {
    let stats = s.damos_stats.as_ref().map(|d| {
        [
            d.nr_tried.0,
            d.sz_tried.0,
            d.nr_applied.0,
            d.sz_applied.0,
            d.sz_ops_filter_passed.0,
            d.qt_exceeds.0,
            d.nr_snapshots.as_ref().map_or(0, |n| n.0),
            d.max_nr_snapshots.as_ref().map_or(0, |n| n.0),
        ]
    });
    // Every damo record has `sz_filter_passed`, mostly "0 B": a missing entry reads as 0,
    // so plain records keep none and stay cheap (and cacheable).
    let mut sz_filter_passed: Vec<(u64, u64)> =
        s.regions.0.iter().filter_map(|r| r.sz_filter_passed.as_ref().map(|p| (r.start.0, p.0))).filter(|&(_, passed)| stats.is_some() || passed != 0).collect();
    sz_filter_passed.sort_unstable();
    if stats.is_some() || !sz_filter_passed.is_empty() {
        info.snapshots.push(DamosSnapshotInfo { end_ns: s.end_time.0, stats, sz_filter_passed });
    }
    regions.clear();
    regions.reserve(s.regions.0.len());
    // Written in place by `extend`: pushing each converted region went through a copy on
    // the stack that the CPU could not forward (half of this function's time).
    let (mut marked, mut faulty) = (false, false);
    regions.extend(s.regions.0.iter().map(|r| {
        let (region, fake) = converted_region(r, intervals);
        marked |= fake;
        faulty |= region.is_none();
        region.unwrap_or(Region { start: 0, end: 0, nr_accesses: 0, age: None })
    }));
    if faulty {
        // The first fault, named.
        s.regions.0.iter().try_for_each(|r| convert_region(r, intervals).map(drop))?;
    }
    s.regions.0.clear();
    if is_fake(&regions, marked) {
        return Ok(None);
    }
    let end_ns = s.end_time.0;
    Ok(Some(Snapshot { start_ns: s.start_time.as_ref().map_or(end_ns, |f| f.0), end_ns, regions, total_bytes: s.total_bytes.as_ref().map(|f| f.0) }))
}

/// damo's fake snapshot (one `0-0` region with -1 counts, `marked`) only carries a start time.
fn is_fake(regions: &[Region], marked: bool) -> bool {
    matches!(regions, [r] if marked && r.start == 0 && r.end == 0)
}

/// The region, and whether it is damo's fake marker.
fn convert_region(r: &JsonRegion, intervals: Option<Intervals>) -> Result<(Region, bool), DamoError> {
    let (start, end) = (r.start.0, r.end.0);
    if end < start {
        return Err(DamoError::Json(format!("region {start}-{end} ends before it starts")));
    }
    match converted_region(r, intervals) {
        (Some(region), fake) => Ok((region, fake)),
        (None, _) => Err(DamoError::Json(format!("nr_accesses {} is out of range", nr_accesses(r, intervals)))),
    }
}

/// [`convert_region`] without naming a fault: `None` for a region it refuses.
#[inline]
fn converted_region(r: &JsonRegion, intervals: Option<Intervals>) -> (Option<Region>, bool) {
    let (start, end) = (r.start.0, r.end.0);
    let samples = r.nr_accesses.as_ref().and_then(|n| n.samples.as_ref().map(|s| s.0));
    let aggr_intervals = r.age.as_ref().and_then(|a| a.aggr_intervals.as_ref().map(|a| a.0));
    let age_us = r.age.as_ref().and_then(|a| a.usec.as_ref().map(|u| u.0));
    let fake = samples == Some(-1) && aggr_intervals == Some(-1);
    let age = match (aggr_intervals, age_us, intervals) {
        (Some(a), _, _) => u64::try_from(a).ok(),
        (None, Some(us), Some(i)) if i.aggr_us > 0 => Some(us / i.aggr_us),
        _ => None,
    };
    let age = age.map(|a| u32::try_from(a).unwrap_or(u32::MAX));
    let region = u32::try_from(nr_accesses(r, intervals)).ok().filter(|_| end >= start).map(|nr_accesses| Region { start, end, nr_accesses, age });
    (region, fake)
}

/// A region's `nr_accesses` in samples. Like damo's `add_unset_unit`: a value given in the
/// other unit converts when the intervals are known.
#[inline]
fn nr_accesses(r: &JsonRegion, intervals: Option<Intervals>) -> u64 {
    let samples = r.nr_accesses.as_ref().and_then(|n| n.samples.as_ref().map(|s| s.0));
    let percent = r.nr_accesses.as_ref().and_then(|n| n.percent.as_ref().map(|p| p.0));
    match (samples, percent, intervals) {
        (Some(s), _, _) => s.max(0) as u64,
        (None, Some(p), Some(i)) => (p * i.max_nr_accesses() as f64 / 100.0) as u64,
        _ => 0,
    }
}

/// Writes `record` the way damo's `write_json` does (`json.dumps(…, indent=4)` of the raw
/// key-value pairs), so damo and diff tools see the same document.
pub fn write(record: &Record, out: &mut impl Write) -> std::io::Result<()> {
    let mut w = Indented { out, depth: 0 };
    w.open("[")?;
    for (ti, t) in record.targets.iter().enumerate() {
        w.open("{")?;
        w.field("kdamond_idx", &t.kdamond_idx.to_string(), true)?;
        w.field("context_idx", &t.context_idx.to_string(), true)?;
        match t.intervals {
            Some(i) => {
                w.open("\"intervals\": {")?;
                w.field("sample_us", &quoted(i.sample_us), true)?;
                w.field("aggr_us", &quoted(i.aggr_us), true)?;
                w.field("ops_update_us", &quoted(i.ops_update_us), false)?;
                w.close("},")?;
            }
            None => w.field("intervals", "null", true)?,
        }
        w.field("scheme_idx", &t.scheme_idx.map_or("null".into(), |s| s.to_string()), true)?;
        w.field("target_id", &t.target_id.to_string(), true)?;
        w.field("scheme_filters", "[]", true)?;
        if t.snapshots.is_empty() {
            w.field("snapshots", "[]", true)?;
        } else {
            w.open("\"snapshots\": [")?;
            for (si, s) in t.snapshots.iter().enumerate() {
                w.open("{")?;
                w.field("start_time", &quoted(s.start_ns), true)?;
                w.field("end_time", &quoted(s.end_ns), true)?;
                if s.regions.is_empty() {
                    w.field("regions", "[]", true)?;
                } else {
                    w.open("\"regions\": [")?;
                    for (ri, r) in s.regions.iter().enumerate() {
                        write_region(&mut w, r, ri + 1 == s.regions.len())?;
                    }
                    w.close("],")?;
                }
                let total: u64 = s.total_bytes.unwrap_or_else(|| s.regions.iter().map(Region::size).sum());
                w.field("total_bytes", &quoted(total), true)?;
                w.field("damos_stats", "null", true)?;
                w.field("sample_interval_us", "null", false)?;
                w.close(if si + 1 == t.snapshots.len() { "}" } else { "}," })?;
            }
            w.close("],")?;
        }
        w.field("data_source", "\"unknown\"", false)?;
        w.close(if ti + 1 == record.targets.len() { "}" } else { "}," })?;
    }
    w.depth = 0;
    w.out.write_all(b"]")
}

fn write_region(w: &mut Indented<impl Write>, r: &Region, last: bool) -> std::io::Result<()> {
    w.open("{")?;
    // damo writes region fields in their human form (`to_kvpairs()` without `raw`).
    w.field("start", &human(r.start), true)?;
    w.field("end", &human(r.end), true)?;
    w.open("\"nr_accesses\": {")?;
    w.field("samples", &r.nr_accesses.to_string(), true)?;
    w.field("percent", "null", false)?;
    w.close("},")?;
    w.open("\"age\": {")?;
    w.field("usec", "null", true)?;
    w.field("aggr_intervals", &r.age.map_or("null".into(), |a| human(u64::from(a))), false)?;
    w.close("},")?;
    w.field("probe_hits", "[]", true)?;
    w.field("sz_filter_passed", "\"0 B\"", false)?;
    w.close(if last { "}" } else { "}," })
}

fn human(v: u64) -> String {
    format!("\"{}\"", units::format_nr(i128::from(v), false))
}

fn quoted(v: u64) -> String {
    format!("\"{v}\"")
}

/// `json.dumps(indent=4)` layout.
struct Indented<'a, W: Write> {
    out: &'a mut W,
    depth: usize,
}

impl<W: Write> Indented<'_, W> {
    fn line(&mut self, text: &str) -> std::io::Result<()> {
        for _ in 0..self.depth {
            self.out.write_all(b"    ")?;
        }
        self.out.write_all(text.as_bytes())?;
        self.out.write_all(b"\n")
    }
    fn open(&mut self, text: &str) -> std::io::Result<()> {
        self.line(text)?;
        self.depth += 1;
        Ok(())
    }
    fn close(&mut self, text: &str) -> std::io::Result<()> {
        self.depth -= 1;
        self.line(text)
    }
    fn field(&mut self, key: &str, value: &str, comma: bool) -> std::io::Result<()> {
        self.line(&format!("\"{key}\": {value}{}", if comma { "," } else { "" }))
    }
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn plain_digits_read_as_the_unit_parsers_read_them() {
        for text in ["0", "5000", "93,823,560,581,120", "999,999,999,999,999", "1,000,000,000,000,000", "0 B", "4,096 B", "", ",", "12 KiB", "1.5", "-3", " 7"] {
            let quick = |suffix: &str| plain_int(text.strip_suffix(suffix).unwrap_or(text).as_bytes());
            if let Some(i) = quick(" B") {
                assert_eq!(Bytes::int(i).map(Ok), Some(units::parse_bytes(text)), "{text:?} as bytes");
            }
            if let Some(i) = quick("") {
                assert_eq!(Ns::int(i).map(Ok), Some(units::parse_ns(text)), "{text:?} as ns");
                assert_eq!(Us::int(i).map(Ok), Some(units::parse_us(text)), "{text:?} as us");
                assert_eq!(Count::int(i).map(Ok), Some(units::parse_count(text)), "{text:?} as count");
                assert_eq!(SignedCount::int(i).map(Ok), Some(SignedCount::text(text)), "{text:?} as signed count");
            }
        }
        assert_eq!(plain_int(b"93,823,560,581,120"), Some(93_823_560_581_120));
        assert_eq!(plain_int(b"1,000,000,000,000,000"), None);
        assert_eq!(plain_int(b"0 B"), None);
    }

    #[test]
    fn a_faulty_region_is_named_among_good_ones() {
        let record = |regions: &str| format!(r#"[{{"target_id": 0, "snapshots": [{{"end_time": 5, "regions": [{{"start": 0, "end": 4096}}, {regions}, {{"start": 8192, "end": 1}}]}}]}}]"#);
        let error = |regions: &str| read(record(regions).as_bytes()).expect_err("a faulty region").to_string();
        assert!(error(r#"{"start": 9000, "end": 8192}"#).ends_with("region 9000-8192 ends before it starts"), "{}", error(r#"{"start": 9000, "end": 8192}"#));
        let too_many = r#"{"start": 4096, "end": 8192, "nr_accesses": {"samples": 8589934592}}"#;
        assert!(error(too_many).ends_with("nr_accesses 8589934592 is out of range"), "{}", error(too_many));
        // Without the faulty one, the last region is the first fault.
        assert!(error(r#"{"start": 4096, "end": 8192}"#).ends_with("region 8192-1 ends before it starts"));
    }

    #[test]
    fn squeezing_drops_only_indentation() {
        let text = b"[\n    {\n        \"a b\": \"x \\\" , y\",\n        \"n\": [1 2]\r\n    }\n]";
        // In blocks of a few bytes, so strings, escapes and indentation cross block ends.
        for size in 1..=text.len() {
            let mut squeezed = Vec::new();
            let mut squeeze = Squeeze::default();
            for chunk in text.chunks(size) {
                let mut block = chunk.to_vec();
                squeeze.squeeze(&mut block);
                squeezed.extend(block);
            }
            assert_eq!(String::from_utf8(squeezed).unwrap(), "[\n{\n\"a b\":\"x \\\" , y\",\n\"n\":[1 2]\r\n}\n]", "blocks of {size}");
        }
    }

    #[test]
    fn the_string_guard_follows_strings_across_blocks_and_escapes() {
        let mut g = StringGuard::default();
        assert!(g.feed(br#"[{"a": "x\"#));
        // The escaped quote does not end the string: it goes on across the blocks.
        assert!(g.feed(b"\""));
        let long = vec![b'y'; MAX_STRING as usize - 3];
        assert!(g.feed(&long));
        assert!(!g.feed(b"yy"), "the string has passed MAX_STRING");
        let mut g = StringGuard::default();
        assert!(g.feed(br#"["ab", "cd"]"#));
        let many_short: Vec<u8> = std::iter::repeat_n(&b"\"0123456789\", "[..], 200_000).flatten().copied().collect();
        assert!(g.feed(&many_short), "only one string's length counts");
    }

    #[test]
    fn regions_past_the_limit_are_an_error() {
        let text = br#"[{"target_id": 0, "snapshots": [{"end_time": 0, "regions": [{"start": 0, "end": 4096}, {"start": 4096, "end": 8192}]}]}]"#;
        assert!(read_with(text, &mut Meter::with_limit(1 << 20)).is_ok());
        match read_with(text, &mut Meter::with_limit(300)) {
            Err(DamoError::OverBudget(e)) => assert_eq!(e.limit, 300),
            other => panic!("{other:?}"),
        }
        let long = format!(r#"[{{"target_id": 0, "snapshots": [], "scheme_filters": [{{"filter_type": "{}"}}]}}]"#, "a".repeat(MAX_STRING as usize + 1));
        assert!(matches!(read(long.as_bytes()), Err(DamoError::LongString)));
    }
}
