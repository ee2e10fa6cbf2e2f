//! The dataset's tables, built from one record (docs/fleet.md lists their columns). Keys:
//! a snapshot is `(target, snapshot)`, the indices of its target in the record and of the
//! snapshot in its target; a stack is `stack`, shared by the samples that have it. No column
//! is named by an SQL keyword (`start_addr`, not `end`), so queries need no quoting.

use std::collections::HashMap;

use anyhow::Result;
use damo_profile::stacks::{FrameAt, Namer};
use damo_record::model::{FileAddr, Record, UNKNOWN_MODULE};
use damo_report::phases::Phase;

use crate::columns::{int, Table};

/// A phase of `report phases` and what that report says of it.
pub struct PhaseRow<'a> {
    /// The index of the phases' target in the record.
    pub target: usize,
    pub phase: &'a Phase,
    pub responsible: Option<&'a str>,
    /// Stack samples in the phase's time span.
    pub samples: usize,
}

/// Every table of one record, in the order they are written.
pub fn all(record: &Record, namer: &mut Namer, phases: &[PhaseRow]) -> Result<Vec<Table>> {
    let (samples, stacks) = samples_and_stacks(record, namer)?;
    Ok(vec![snapshots(record)?, regions(record)?, samples, stacks, footprints(record)?, phases_table(phases)?])
}

fn opt_int(v: Option<u64>, what: &str) -> Result<Option<i64>> {
    v.map(|v| int(v, what)).transpose()
}

pub fn snapshots(record: &Record) -> Result<Table> {
    let mut c: [Vec<i64>; 8] = Default::default();
    let mut opt: [Vec<Option<i64>>; 5] = Default::default();
    for (t, target) in record.targets.iter().enumerate() {
        for (i, s) in target.snapshots.iter().enumerate() {
            let row = [
                t as i64,
                i as i64,
                target.kdamond_idx.into(),
                target.context_idx.into(),
                int(target.target_id, "target id")?,
                int(s.start_ns, "time")?,
                int(s.end_ns, "time")?,
                s.regions.len() as i64,
            ];
            for (col, v) in c.iter_mut().zip(row) {
                col.push(v);
            }
            let iv = target.intervals;
            let row = [
                target.scheme_idx.map(i64::from),
                opt_int(iv.map(|i| i.sample_us), "interval")?,
                opt_int(iv.map(|i| i.aggr_us), "interval")?,
                opt_int(iv.map(|i| i.ops_update_us), "interval")?,
                opt_int(s.total_bytes, "size")?,
            ];
            for (col, v) in opt.iter_mut().zip(row) {
                col.push(v);
            }
        }
    }
    let [target, snapshot, kdamond, context, target_id, start_ns, end_ns, nr_regions] = c;
    let [scheme, sample_us, aggr_us, ops_update_us, total_bytes] = opt;
    Ok(Table::new("snapshots")
        .int("target", target)
        .int("snapshot", snapshot)
        .int("kdamond", kdamond)
        .int("context", context)
        .opt_int("scheme", scheme)
        .int("target_id", target_id)
        .int("start_ns", start_ns)
        .int("end_ns", end_ns)
        .opt_int("sample_us", sample_us)
        .opt_int("aggr_us", aggr_us)
        .opt_int("ops_update_us", ops_update_us)
        .int("nr_regions", nr_regions)
        .opt_int("total_bytes", total_bytes))
}

pub fn regions(record: &Record) -> Result<Table> {
    let n: usize = record.targets.iter().flat_map(|t| &t.snapshots).map(|s| s.regions.len()).sum();
    damo_record::budget::check((n as u64).saturating_mul(6 * 8 + 8), || format!("{n} regions as columns"))?;
    let mut c: [Vec<i64>; 5] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut age = Vec::with_capacity(n);
    for (t, target) in record.targets.iter().enumerate() {
        for (i, s) in target.snapshots.iter().enumerate() {
            for r in &s.regions {
                for (col, v) in c.iter_mut().zip([t as i64, i as i64, int(r.start, "address")?, int(r.end, "address")?, r.nr_accesses.into()]) {
                    col.push(v);
                }
                age.push(r.age.map(i64::from));
            }
        }
    }
    let [target, snapshot, start, end, nr_accesses] = c;
    Ok(Table::new("regions").int("target", target).int("snapshot", snapshot).int("start_addr", start).int("end_addr", end).int("nr_accesses", nr_accesses).opt_int("age", age))
}

/// What makes two samples' stacks name the same: their frames, and the process where a frame
/// is outside any file (a perf map names it per process).
type StackKey<'a> = (&'a [FileAddr], &'a [u64], Option<u32>);

/// The stack samples, each with the id of its stack, and the distinct stacks named.
pub fn samples_and_stacks(record: &Record, namer: &mut Namer) -> Result<(Table, Table)> {
    let mut ids: HashMap<StackKey, i64> = HashMap::new();
    let mut first_of: Vec<usize> = Vec::new();
    let mut c: [Vec<i64>; 5] = Default::default();
    for (n, s) in record.samples.iter().enumerate() {
        let pid = s.user.iter().any(|f| f.module == UNKNOWN_MODULE).then_some(s.pid);
        let next = ids.len() as i64;
        let id = *ids.entry((&s.user, &s.kernel, pid)).or_insert_with(|| {
            first_of.push(n);
            next
        });
        for (col, v) in c.iter_mut().zip([int(s.ts_ns, "time")?, s.pid.into(), s.tid.into(), s.cpu.into(), id]) {
            col.push(v);
        }
    }
    let comms: Vec<&str> = record.samples.iter().map(|s| s.comm.as_str()).collect();
    let [ts_ns, pid, tid, cpu, stack] = c;
    let samples = Table::new("stack_samples").int("ts_ns", ts_ns).int("pid", pid).int("tid", tid).int("cpu", cpu).str("comm", &comms).int("stack", stack);

    let objects: Vec<String> = record.modules.iter().map(|m| m.path.file_name().map_or_else(|| m.path.display().to_string(), |n| n.to_string_lossy().into_owned())).collect();
    let (mut function, mut module) = (Vec::new(), Vec::new());
    let (mut f_function, mut f_module, mut f_file, mut f_line, mut lengths) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &n in &first_of {
        let s = &record.samples[n];
        let named = namer.name(s);
        function.push(named.symbol.to_string());
        module.push(named.object.to_string());
        let mut len = 0;
        for f in namer.frames(s) {
            let (object, kernel) = match f.at {
                FrameAt::User { module, .. } => (objects.get(module as usize).map_or("[unknown]", String::as_str), false),
                FrameAt::Unknown(_) => ("[unknown]", false),
                FrameAt::Jit { .. } => ("[jit]", false),
                FrameAt::Kernel(_) => (damo_profile::pprof::KERNEL_MAPPING, true),
            };
            // Innermost inlined function first, as pprof orders a location's lines.
            for (name, source) in f.names.iter().zip(f.lines.iter()).rev() {
                let name = if kernel { name.strip_suffix("_[k]").unwrap_or(name) } else { name };
                f_function.push(name.to_owned());
                f_module.push(object.to_owned());
                f_file.push(source.as_ref().map(|s| s.file.to_string()));
                f_line.push(source.as_ref().map(|s| i64::from(s.line)));
                len += 1;
            }
        }
        lengths.push(len);
    }
    let items = Table::new("frame").str("function", &f_function).str("module", &f_module).opt_str("file", f_file.iter().map(Option::as_deref).collect()).opt_int("line", f_line);
    let stacks = Table::new("stacks").int("stack", (0..first_of.len() as i64).collect()).str("function", &function).str("module", &module).list("frames", items, lengths)?;
    Ok((samples, stacks))
}

/// Process footprints (`pid` set, system columns null) and the system's memory (`pid` null).
pub fn footprints(record: &Record) -> Result<Table> {
    let mut ts = Vec::new();
    let mut pid = Vec::new();
    let mut process: [Vec<Option<i64>>; 5] = Default::default();
    let mut system: [Vec<Option<i64>>; 5] = Default::default();
    for f in &record.footprints {
        let t = int(f.ts_ns, "time")?;
        if let Some(m) = f.system {
            ts.push(t);
            pid.push(None);
            for (col, v) in process.iter_mut().zip([None; 5]) {
                col.push(v);
            }
            for (col, v) in system.iter_mut().zip([m.total, m.free, m.available, m.buffers, m.cached]) {
                col.push(Some(int(v, "size")?));
            }
        }
        for p in &f.processes {
            ts.push(t);
            pid.push(Some(i64::from(p.pid)));
            for (col, v) in process.iter_mut().zip([p.vsz, p.rss, p.shared, p.text, p.data]) {
                col.push(Some(int(v, "size")?));
            }
            for col in &mut system {
                col.push(None);
            }
        }
    }
    let [vsz, rss, shared, text, data] = process;
    let [total, free, available, buffers, cached] = system;
    Ok(Table::new("footprints")
        .int("ts_ns", ts)
        .opt_int("pid", pid)
        .opt_int("vsz", vsz)
        .opt_int("rss", rss)
        .opt_int("shared", shared)
        .opt_int("text", text)
        .opt_int("data", data)
        .opt_int("mem_total", total)
        .opt_int("mem_free", free)
        .opt_int("mem_available", available)
        .opt_int("buffers", buffers)
        .opt_int("cached", cached))
}

/// The phases, numbered from 1 as `report phases` numbers them, with their hottest range
/// flat (for simple queries) and all hot ranges as a list.
pub fn phases_table(phases: &[PhaseRow]) -> Result<Table> {
    let mut c: [Vec<i64>; 8] = Default::default();
    let (mut hot_start, mut hot_end, mut hot_rate, mut responsible) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut r_start, mut r_end, mut r_rate, mut lengths) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (n, row) in phases.iter().enumerate() {
        let p = row.phase;
        let values = [n as i64 + 1, row.target as i64, p.first as i64, p.last as i64, int(p.start_ns, "time")?, int(p.end_ns, "time")?, int(p.mean_wss, "size")?, row.samples as i64];
        for (col, v) in c.iter_mut().zip(values) {
            col.push(v);
        }
        let hottest = p.hot_ranges.first();
        hot_start.push(hottest.map(|h| int(h.0, "address")).transpose()?);
        hot_end.push(hottest.map(|h| int(h.1, "address")).transpose()?);
        hot_rate.push(hottest.map(|h| h.2));
        responsible.push(row.responsible);
        for &(s, e, rate) in &p.hot_ranges {
            r_start.push(int(s, "address")?);
            r_end.push(int(e, "address")?);
            r_rate.push(rate);
        }
        lengths.push(p.hot_ranges.len());
    }
    let [phase, target, first, last, start_ns, end_ns, mean_wss, samples] = c;
    let ranges = Table::new("hot_range").int("start_addr", r_start).int("end_addr", r_end).float("access_rate", r_rate);
    Table::new("phases")
        .int("phase", phase)
        .int("target", target)
        .int("first_snapshot", first)
        .int("last_snapshot", last)
        .int("start_ns", start_ns)
        .int("end_ns", end_ns)
        .int("mean_wss_bytes", mean_wss)
        .opt_int("hot_start", hot_start)
        .opt_int("hot_end", hot_end)
        .opt_float("hot_access_rate", hot_rate)
        .opt_str("responsible", responsible)
        .int("samples", samples)
        .list("hot_ranges", ranges, lengths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray};
    use damo_record::model::{FootprintSnapshot, ProcessFootprint, StackSample, SystemMemory};

    fn ints(b: &RecordBatch, name: &str) -> Vec<Option<i64>> {
        b.column_by_name(name).unwrap().as_any().downcast_ref::<Int64Array>().unwrap().iter().collect()
    }

    fn strs(b: &RecordBatch, name: &str) -> Vec<String> {
        b.column_by_name(name).unwrap().as_any().downcast_ref::<StringArray>().unwrap().iter().map(|s| s.unwrap_or("NULL").to_owned()).collect()
    }

    #[test]
    fn equal_stacks_share_an_id_and_frames_are_innermost_first() {
        let sample = |ts_ns, kernel: Vec<u64>| StackSample { ts_ns, pid: 7, tid: 7, cpu: 0, comm: "app".into(), user: vec![], kernel };
        let record = Record {
            samples: vec![sample(1, vec![0xffff_1000, 0xffff_2000]), sample(2, vec![0xffff_2000]), sample(3, vec![0xffff_1000, 0xffff_2000])],
            kernel_symbols: vec![(0xffff_1000, "leaf".into()), (0xffff_2000, "caller".into())],
            ..Default::default()
        };
        let mut namer = Namer::new(&record, &[]);
        let (samples, stacks) = samples_and_stacks(&record, &mut namer).unwrap();
        let (samples, stacks) = (samples.batch().unwrap(), stacks.batch().unwrap());
        assert_eq!(ints(&samples, "stack"), [Some(0), Some(1), Some(0)]);
        assert_eq!(strs(&stacks, "function"), ["leaf", "caller"]);
        assert_eq!(strs(&stacks, "module"), ["[kernel.kallsyms]"; 2]);
        let frames = stacks.column_by_name("frames").unwrap().as_any().downcast_ref::<ListArray>().unwrap();
        let first = frames.value(0);
        let first = first.as_any().downcast_ref::<StructArray>().unwrap();
        let names: Vec<&str> = first.column_by_name("function").unwrap().as_any().downcast_ref::<StringArray>().unwrap().iter().map(Option::unwrap).collect();
        assert_eq!(names, ["leaf", "caller"], "kernel names without _[k], innermost first");
        assert!(first.column_by_name("line").unwrap().is_null(0));
    }

    #[test]
    fn footprints_keep_the_system_apart_and_phases_count_from_one() {
        let system = SystemMemory { total: 100, free: 10, available: 50, buffers: 1, cached: 2 };
        let record = Record {
            footprints: vec![FootprintSnapshot { ts_ns: 5, system: Some(system), processes: vec![ProcessFootprint { pid: 9, vsz: 4, rss: 3, shared: 2, text: 1, data: 1 }] }],
            ..Default::default()
        };
        let b = footprints(&record).unwrap().batch().unwrap();
        assert_eq!(ints(&b, "pid"), [None, Some(9)]);
        assert_eq!(ints(&b, "mem_total"), [Some(100), None]);
        assert_eq!(ints(&b, "rss"), [None, Some(3)]);

        let phase = Phase { first: 3, last: 7, start_ns: 10, end_ns: 20, mean_wss: 4096, hot_ranges: vec![(0x1000, 0x2000, 0.5), (0x3000, 0x4000, 0.25)], heat: Vec::new() };
        let rows = [PhaseRow { target: 0, phase: &phase, responsible: Some("scan"), samples: 12 }, PhaseRow { target: 0, phase: &phase, responsible: None, samples: 0 }];
        let b = phases_table(&rows).unwrap().batch().unwrap();
        assert_eq!(ints(&b, "phase"), [Some(1), Some(2)]);
        assert_eq!(ints(&b, "hot_start"), [Some(0x1000); 2]);
        assert_eq!(strs(&b, "responsible"), ["scan", "NULL"]);
        let ranges = b.column_by_name("hot_ranges").unwrap().as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(ranges.value_length(0), 2);

        let regions_of = |end| Record {
            targets: vec![damo_record::model::TargetRecord {
                snapshots: vec![damo_record::model::Snapshot { regions: vec![damo_record::model::Region { start: 0, end, nr_accesses: 1, age: None }], ..Default::default() }],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(regions(&regions_of(1 << 40)).is_ok());
        assert!(regions(&regions_of(u64::MAX)).unwrap_err().to_string().contains("signed 64-bit"));
    }
}
