//! Samples as a pprof profile (google/pprof `proto/profile.proto`, gzip-compressed), which
//! `go tool pprof`, Pyroscope and Parca read: a mapping per recorded file, a location per
//! frame with one line per (inlined) function, and pid/tid/comm labels on each sample, plus
//! whatever labels the caller adds per sample (`damo_fleet::labels`: the access pattern of
//! the sample's moment, for `go tool pprof -tagfocus` and Pyroscope/Parca label filters).
//!
//! The messages are derived by hand with the proto's field numbers (only what we write), so
//! the build needs no protoc.

use std::{
    collections::HashMap,
    io::{Read, Write},
};

use anyhow::{Context, Result};
use damo_record::model::{Module, StackSample};
use flate2::{read::GzDecoder, write::GzEncoder, Compression};
use prost::Message;

use crate::stacks::{FrameAt, NamedFrame, Namer};

/// The mapping of kernel frames, named as perf names it.
pub const KERNEL_MAPPING: &str = "[kernel.kallsyms]";

#[derive(Clone, PartialEq, Message)]
pub struct Profile {
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    /// `string_table[0]` is always "".
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub period: i64,
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
}

/// String table indices of a value's kind and unit.
#[derive(Clone, PartialEq, Message)]
pub struct ValueType {
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    /// The leaf first.
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(int64, tag = "1")]
    pub key: i64,
    #[prost(int64, tag = "2")]
    pub str: i64,
    #[prost(int64, tag = "3")]
    pub num: i64,
    #[prost(int64, tag = "4")]
    pub num_unit: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Mapping {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    #[prost(int64, tag = "5")]
    pub filename: i64,
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct Location {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// 0: no mapping (an address outside any file).
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    #[prost(uint64, tag = "3")]
    pub address: u64,
    /// The innermost inlined function first, the function they are inlined into last.
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    #[prost(int64, tag = "2")]
    pub line: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    #[prost(int64, tag = "4")]
    pub filename: i64,
    #[prost(int64, tag = "5")]
    pub start_line: i64,
}

impl Profile {
    /// The string at a table index ("" when out of range, as for a malformed profile).
    pub fn str(&self, index: i64) -> &str {
        usize::try_from(index).ok().and_then(|i| self.string_table.get(i)).map_or("", String::as_str)
    }
}

/// A label a caller adds to a sample: a string, or a number with its unit ("bytes").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LabelValue {
    Str(String),
    Num(i64, &'static str),
}

/// One sample's extra labels, by key.
pub type SampleLabels = Vec<(&'static str, LabelValue)>;

/// What makes samples one: locations, pid, tid, comm and the extra labels' fields.
type MergeKey = (Vec<u64>, u32, u32, i64, Vec<[i64; 4]>);

/// Builds a profile of `samples` (of a record whose files are `modules`), each standing for
/// `period_ns` of CPU time; `comment` says what was selected.
pub fn build(modules: &[Module], samples: &[&StackSample], namer: &mut Namer, period_ns: u64, comment: &str) -> Profile {
    build_labelled(modules, samples, &[], namer, period_ns, comment)
}

/// [`build`], with `labels[i]` added to `samples[i]`'s pid/tid/comm (none where `labels` is
/// shorter). Samples merge only when their labels are equal too.
pub fn build_labelled(modules: &[Module], samples: &[&StackSample], labels: &[SampleLabels], namer: &mut Namer, period_ns: u64, comment: &str) -> Profile {
    let mut b = Builder::new(modules);
    let period = i64::try_from(period_ns).unwrap_or(i64::MAX);
    let samples_count = b.value_type("samples", "count");
    let cpu = b.value_type("cpu", "nanoseconds");
    b.p.default_sample_type = cpu.r#type;
    b.p.sample_type = vec![samples_count, cpu.clone()];
    b.p.period_type = Some(cpu);
    b.p.period = period;
    b.p.comment = vec![b.string(comment)];
    let [pid, tid, comm] = ["pid", "tid", "comm"].map(|k| b.string(k));
    // Equal stacks of the same thread with equal labels become one sample with the summed values.
    let mut merged: HashMap<MergeKey, usize> = HashMap::new();
    for (n, s) in samples.iter().enumerate() {
        let mut ids: Vec<u64> = namer.frames(s).iter().map(|f| b.location(f)).collect();
        if ids.is_empty() {
            ids.push(b.no_stack());
        }
        let comm_str = b.string(&s.comm);
        let extra: Vec<Label> = labels.get(n).map_or(&[][..], Vec::as_slice).iter().map(|(key, value)| b.label(key, value)).collect();
        let extra_key = extra.iter().map(|l| [l.key, l.str, l.num, l.num_unit]).collect();
        let next = b.p.sample.len();
        let i = *merged.entry((ids.clone(), s.pid, s.tid, comm_str, extra_key)).or_insert(next);
        if i == next {
            let mut label = vec![
                Label { key: pid, num: s.pid.into(), ..Default::default() },
                Label { key: tid, num: s.tid.into(), ..Default::default() },
                Label { key: comm, str: comm_str, ..Default::default() },
            ];
            label.extend(extra);
            b.p.sample.push(Sample { location_id: ids, value: vec![0, 0], label });
        }
        let value = &mut b.p.sample[i].value;
        value[0] += 1;
        value[1] = value[1].saturating_add(period);
    }
    // The collection starts at the first sample and lasts until the last one's period ends.
    // These are CLOCK_MONOTONIC times (records keep no wall clock), not ns since the epoch.
    let first = samples.iter().map(|s| s.ts_ns).min().unwrap_or(0);
    let last = samples.iter().map(|s| s.ts_ns).max().unwrap_or(0);
    b.p.time_nanos = i64::try_from(first).unwrap_or(0);
    b.p.duration_nanos = i64::try_from(last - first).unwrap_or(i64::MAX).saturating_add(if samples.is_empty() { 0 } else { period });
    b.p
}

/// Writes a profile the way pprof files are stored: gzip-compressed.
pub fn write(profile: &Profile, w: impl Write) -> std::io::Result<()> {
    let mut gz = GzEncoder::new(w, Compression::default());
    gz.write_all(&profile.encode_to_vec())?;
    gz.finish()?.flush()
}

/// Reads a gzip-compressed profile (or a plain one, as pprof accepts both).
pub fn read(mut r: impl Read) -> Result<Profile> {
    let mut data = Vec::new();
    r.read_to_end(&mut data).context("failed to read the profile")?;
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        GzDecoder::new(&data[..]).read_to_end(&mut plain).context("failed to gunzip the profile")?;
        data = plain;
    }
    Profile::decode(&data[..]).context("not a pprof profile")
}

struct Builder {
    p: Profile,
    strings: HashMap<String, i64>,
    /// By (name, source file).
    functions: HashMap<(String, String), u64>,
    locations: HashMap<(FrameAt, bool), u64>,
    /// Mapping index of `Record::modules[i]` is `i`; the kernel's is created when first seen.
    kernel_mapping: Option<usize>,
    no_stack: Option<u64>,
}

impl Builder {
    fn new(modules: &[Module]) -> Self {
        let mut b = Self { p: Profile::default(), strings: HashMap::new(), functions: HashMap::new(), locations: HashMap::new(), kernel_mapping: None, no_stack: None };
        b.string("");
        for (i, m) in modules.iter().enumerate() {
            let filename = b.string(&m.path.display().to_string());
            let build_id = m.build_id.as_deref().map_or(0, |id| b.string(&hex(id)));
            // Locations hold file offsets, so the mapping is the file from offset 0 (start 0,
            // file_offset 0); `memory_limit` grows with the offsets seen.
            b.p.mapping.push(Mapping { id: i as u64 + 1, filename, build_id, has_functions: true, has_inline_frames: true, ..Default::default() });
        }
        b
    }

    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.p.string_table.len() as i64;
        self.p.string_table.push(s.to_owned());
        self.strings.insert(s.to_owned(), i);
        i
    }

    fn label(&mut self, key: &str, value: &LabelValue) -> Label {
        let key = self.string(key);
        match value {
            LabelValue::Str(v) => Label { key, str: self.string(v), ..Default::default() },
            LabelValue::Num(v, unit) => Label { key, num: *v, num_unit: self.string(unit), ..Default::default() },
        }
    }

    fn value_type(&mut self, kind: &str, unit: &str) -> ValueType {
        ValueType { r#type: self.string(kind), unit: self.string(unit) }
    }

    /// A function by name and source file ("" when unknown): `go tool pprof -list` reads the
    /// file to show its lines.
    fn function(&mut self, name: &str, file: &str) -> u64 {
        let key = (name.to_owned(), file.to_owned());
        if let Some(&id) = self.functions.get(&key) {
            return id;
        }
        let id = self.p.function.len() as u64 + 1;
        let name_index = self.string(name);
        let filename = self.string(file);
        self.p.function.push(Function { id, name: name_index, system_name: name_index, filename, ..Default::default() });
        self.functions.insert(key, id);
        id
    }

    fn kernel_mapping(&mut self) -> usize {
        if let Some(i) = self.kernel_mapping {
            return i;
        }
        let i = self.p.mapping.len();
        let filename = self.string(KERNEL_MAPPING);
        self.p.mapping.push(Mapping { id: i as u64 + 1, memory_start: u64::MAX, filename, has_functions: true, ..Default::default() });
        self.kernel_mapping = Some(i);
        i
    }

    fn location(&mut self, f: &NamedFrame) -> u64 {
        if let Some(&id) = self.locations.get(&(f.at, f.is_return)) {
            return id;
        }
        let (mapping, address) = match f.at {
            FrameAt::User { module, offset } => (Some(module as usize).filter(|&m| m < self.p.mapping.len()), offset),
            FrameAt::Unknown(addr) | FrameAt::Jit { addr, .. } => (None, addr),
            FrameAt::Kernel(addr) => (Some(self.kernel_mapping()), addr),
        };
        let has_lines = f.lines.iter().any(Option::is_some);
        if let Some(m) = mapping.map(|m| &mut self.p.mapping[m]) {
            m.memory_start = m.memory_start.min(address);
            m.memory_limit = m.memory_limit.max(address.saturating_add(1));
            m.has_filenames |= has_lines;
            m.has_line_numbers |= has_lines;
        }
        // pprof wants the innermost inlined function first; kernel names lose FlameGraph's
        // `_[k]`, the mapping says where they are.
        let kernel = matches!(f.at, FrameAt::Kernel(_));
        let line = f
            .names
            .iter()
            .zip(f.lines.iter())
            .rev()
            .map(|(n, source)| {
                let name = if kernel { n.strip_suffix("_[k]").unwrap_or(n) } else { n };
                let (file, line) = source.as_ref().map_or(("", 0), |s| (&*s.file, i64::from(s.line)));
                Line { function_id: self.function(name, file), line }
            })
            .collect();
        let id = self.p.location.len() as u64 + 1;
        self.p.location.push(Location { id, mapping_id: mapping.map_or(0, |m| m as u64 + 1), address, line });
        self.locations.insert((f.at, f.is_return), id);
        id
    }

    /// A location for samples without any frame, so they still count.
    fn no_stack(&mut self) -> u64 {
        if let Some(id) = self.no_stack {
            return id;
        }
        let id = self.p.location.len() as u64 + 1;
        let function_id = self.function("[no stack]", "");
        self.p.location.push(Location { id, line: vec![Line { function_id, line: 0 }], ..Default::default() });
        self.no_stack = Some(id);
        id
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use damo_record::model::{FileAddr, Record, UNKNOWN_MODULE};

    const HOT: u64 = 0xffff_ffff_8100_1000;
    const CALLER: u64 = 0xffff_ffff_8100_3000;

    fn sample(ts_ns: u64, tid: u32, kernel: Vec<u64>, user: Vec<FileAddr>) -> StackSample {
        StackSample { ts_ns, pid: 7, tid, cpu: 0, comm: "t".into(), user, kernel }
    }

    fn record() -> Record {
        let gone = FileAddr { module: 0, offset: 0x1234 };
        let jit = FileAddr { module: UNKNOWN_MODULE, offset: 0x7f00_0000_0000 };
        Record {
            samples: vec![
                sample(1_000, 7, vec![HOT, CALLER], vec![gone]),
                sample(2_000, 7, vec![HOT, CALLER], vec![gone]),
                sample(3_000, 8, vec![HOT, CALLER], vec![gone]),
                sample(4_000, 7, vec![], vec![jit, gone]),
                sample(5_000, 7, vec![], vec![]),
            ],
            modules: vec![Module { path: "/nonexistent/libgone.so".into(), build_id: Some(vec![0xab, 0x01]) }],
            kernel_symbols: vec![(HOT, "hot_function".into()), (CALLER, "caller".into())],
            ..Default::default()
        }
    }

    fn names(p: &Profile, s: &Sample) -> Vec<String> {
        let loc = |id: u64| p.location.iter().find(|l| l.id == id).unwrap();
        let func = |id: u64| p.function.iter().find(|f| f.id == id).unwrap();
        s.location_id.iter().flat_map(|&id| loc(id).line.iter().map(|l| p.str(func(l.function_id).name).to_owned())).collect()
    }

    #[test]
    fn builds_merged_labelled_samples_and_round_trips() {
        let rec = record();
        let mut namer = Namer::new(&rec, &[]);
        let samples: Vec<&StackSample> = rec.samples.iter().collect();
        let p = build(&rec.modules, &samples, &mut namer, 1_000, "all samples");
        assert_eq!(p.string_table[0], "");
        assert_eq!(p.str(p.comment[0]), "all samples");
        let types: Vec<(&str, &str)> = p.sample_type.iter().map(|t| (p.str(t.r#type), p.str(t.unit))).collect();
        assert_eq!(types, [("samples", "count"), ("cpu", "nanoseconds")]);
        assert_eq!((p.period, p.time_nanos, p.duration_nanos), (1_000, 1_000, 5_000));

        // Two equal stacks of tid 7 merge; tid 8's stays apart.
        let got: Vec<(Vec<String>, Vec<i64>)> = p.sample.iter().map(|s| (names(&p, s), s.value.clone())).collect();
        let kernel_stack = vec!["hot_function".to_string(), "caller".into(), "[libgone.so changed or missing]".into()];
        assert_eq!(got[0], (kernel_stack.clone(), vec![2, 2_000]));
        assert_eq!(got[1], (kernel_stack, vec![1, 1_000]));
        assert_eq!(got[2].0, ["[unknown] 0x7f0000000000", "[libgone.so changed or missing]"]);
        assert_eq!(got[3], (vec!["[no stack]".to_string()], vec![1, 1_000]));
        assert_eq!(p.sample.len(), 4);
        let labels: Vec<(&str, i64, &str)> = p.sample[1].label.iter().map(|l| (p.str(l.key), l.num, p.str(l.str))).collect();
        assert_eq!(labels, [("pid", 7, ""), ("tid", 8, ""), ("comm", 0, "t")]);

        // The file mapping (build-id in hex) and the kernel's, each holding its addresses.
        assert_eq!(p.mapping.len(), 2);
        assert_eq!((p.str(p.mapping[0].filename), p.str(p.mapping[0].build_id)), ("/nonexistent/libgone.so", "ab01"));
        assert_eq!((p.str(p.mapping[1].filename), p.mapping[1].memory_start, p.mapping[1].memory_limit), (KERNEL_MAPPING, HOT, CALLER + 1));
        for l in &p.location {
            if let Some(m) = p.mapping.iter().find(|m| m.id == l.mapping_id) {
                assert!((m.memory_start..m.memory_limit).contains(&l.address), "location {l:?} outside {m:?}");
            } else {
                assert_eq!(l.mapping_id, 0, "location {l:?} has no mapping");
            }
        }

        let mut gz = Vec::new();
        write(&p, &mut gz).unwrap();
        assert_eq!(&gz[..2], [0x1f, 0x8b], "not gzip");
        assert_eq!(read(&gz[..]).unwrap(), p);
        assert!(read(&b"not a profile"[..]).is_err());
    }

    #[test]
    fn caller_labels_reach_samples_and_keep_them_apart() {
        let rec = record();
        let mut namer = Namer::new(&rec, &[]);
        let samples: Vec<&StackSample> = rec.samples[..2].iter().collect();
        let phase = |n: &str| vec![("damon_phase", LabelValue::Str(n.into())), ("damon_wss_bytes", LabelValue::Num(4096, "bytes"))];
        let p = build_labelled(&rec.modules, &samples, &[phase("1"), phase("2")], &mut namer, 1_000, "labelled");
        assert_eq!(p.sample.len(), 2, "equal stacks in different phases stay apart");
        let labels: Vec<(&str, &str, i64, &str)> = p.sample[1].label[3..].iter().map(|l| (p.str(l.key), p.str(l.str), l.num, p.str(l.num_unit))).collect();
        assert_eq!(labels, [("damon_phase", "2", 0, ""), ("damon_wss_bytes", "", 4096, "bytes")]);
        let same = build_labelled(&rec.modules, &samples, &[phase("1"), phase("1")], &mut namer, 1_000, "labelled");
        assert_eq!(same.sample.len(), 1, "equal labels merge");
        assert_eq!(same.sample[0].value, [2, 2_000]);
    }

    #[test]
    fn recorded_lines_and_jit_names_reach_the_profile() {
        use damo_record::model::{CodeSymbol, JitSymbol, SourceFrame};
        let mut rec = record();
        let frame = |name: &str, file: &str, line| SourceFrame { name: name.into(), file: file.into(), line };
        // The binary is gone: only the record's names, with the leaf inlined into its caller; the
        // frame is a return address (0x1234), whose call the record named (0x1233).
        rec.code_symbols = vec![CodeSymbol { module: 0, offset: 0x1233, frames: vec![frame("caller_fn", "/src/app.c", 20), frame("leaf_fn", "/src/leaf.h", 5)] }];
        rec.jit_symbols = vec![JitSymbol { pid: 7, start: 0x7f00_0000_0000, size: 0x100, name: "LazyCompile:hot app.js:1".into() }];
        let mut namer = Namer::new(&rec, &[]);
        let samples: Vec<&StackSample> = rec.samples[3..4].iter().collect();
        let p = build(&rec.modules, &samples, &mut namer, 1_000, "jit");
        let loc = |id: u64| p.location.iter().find(|l| l.id == id).unwrap();
        let func = |id: u64| p.function.iter().find(|f| f.id == id).unwrap();
        let lines: Vec<(String, String, i64)> =
            p.sample[0].location_id.iter().flat_map(|&id| loc(id).line.iter().map(|l| (p.str(func(l.function_id).name).to_owned(), p.str(func(l.function_id).filename).to_owned(), l.line))).collect();
        assert_eq!(
            lines,
            [("LazyCompile:hot app.js:1 [jit]".to_string(), String::new(), 0), ("leaf_fn".into(), "/src/leaf.h".into(), 5), ("caller_fn".into(), "/src/app.c".into(), 20),],
            "the innermost inlined function first, each with its own file and line"
        );
        assert!(p.mapping[0].has_line_numbers && p.mapping[0].has_filenames);
        assert_eq!(loc(p.sample[0].location_id[0]).mapping_id, 0, "JIT code is in no file");
    }
}
