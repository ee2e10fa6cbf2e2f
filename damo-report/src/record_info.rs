//! `report record_info`: per target, the time span and the address ranges that stayed
//! monitored in every snapshot (damo's "guide"), largest address space first.

use crate::{
    access::numfmt::time_ns_int,
    accumulate::{self, Accumulate},
    heatmap::guide::{format_sz_accurate, Coverage},
};
use damo_record::{
    model::{DamosInfo, Record, Snapshot, TargetRecord},
    units::format_sz,
};

#[derive(Clone)]
struct Guide {
    header: Vec<String>,
    start_ns: i128,
    end_ns: u64,
    coverage: Coverage,
}

/// kdamond, context, scheme and target id (`u64::MAX` for a null id).
type GuideKey = (u32, u32, Option<u32>, u64);

pub fn report(record: &Record, raw: bool) -> String {
    let mut acc = Accumulator::new(record.damos.as_deref());
    accumulate::feed(record, &mut acc);
    acc.finish(record, raw)
}

/// The guides of a record's snapshots, fed one at a time.
#[derive(Clone)]
pub struct Accumulator<'r> {
    damos: Option<&'r [DamosInfo]>,
    /// Per key: the first target that had it, and its guide.
    guides: Vec<(GuideKey, usize, Guide)>,
    /// Targets whose first snapshot was seen.
    seen: Vec<bool>,
    /// The earliest start of a target's first snapshot.
    first_ns: Option<u64>,
}

impl<'r> Accumulator<'r> {
    /// `damos`: damo's per-target scheme information, where damo wrote null target ids.
    pub fn new(damos: Option<&'r [DamosInfo]>) -> Self {
        Self { damos, guides: Vec::new(), seen: Vec::new(), first_ns: None }
    }

    /// The report; `rest` gives what the record holds besides snapshots.
    pub fn finish(self, rest: &Record, raw: bool) -> String {
        let mut guides = self.guides;
        // In the order their first targets come in the record (a file interleaves them), then
        // largest address space first; stable, like damo's sort.
        guides.sort_by_key(|(_, first, _)| *first);
        let mut list: Vec<Guide> = guides.into_iter().map(|(_, _, g)| g).collect();
        let space = |g: &Guide| g.coverage.contiguous().iter().map(|&(a, b)| i128::from(b) - i128::from(a)).sum::<i128>();
        list.sort_by_key(|g| std::cmp::Reverse(space(g)));
        let mut out = Vec::new();
        for g in &list {
            out.extend(g.header.iter().cloned());
            out.push(format!("time: [{}, {}) ({})", time_ns_int(g.start_ns, raw), time_ns_int(i128::from(g.end_ns), raw), time_ns_int(i128::from(g.end_ns) - g.start_ns, raw)));
            for (i, (a, b)) in g.coverage.contiguous().into_iter().enumerate() {
                out.push(format!("region\t{i:2}: [{}, {}) ({})", format_sz_accurate(a, raw), format_sz_accurate(b, raw), format_sz(b.saturating_sub(a) as f64, raw)));
            }
        }
        // damo keeps these in files of their own; only records that have them say so.
        if !rest.footprints.is_empty() || !rest.vmas.is_empty() || !rest.proc_stats.is_empty() {
            out.push(format!("proc samples: {} footprint snapshots, {} vma snapshots, {} proc stats", rest.footprints.len(), rest.vmas.len(), rest.proc_stats.len()));
        }
        if let Some(m) = &rest.metadata {
            out.push(metadata_line(m, self.first_ns, rest));
            out.extend(clock_line(m, self.first_ns));
        }
        if let Some(losses) = &rest.losses {
            out.push(losses_line(losses));
        }
        out.join("\n")
    }
}

impl Accumulate for Accumulator<'_> {
    fn push(&mut self, ti: usize, t: &TargetRecord, s: &Snapshot) {
        if !std::mem::replace(seen(&mut self.seen, ti), true) {
            self.first_ns = Some(self.first_ns.map_or(s.start_ns, |f| f.min(s.start_ns)));
        }
        let null_id = self.damos.and_then(|d| d.get(ti)).is_some_and(|d| d.target_id_null);
        let key = (t.kdamond_idx, t.context_idx, t.scheme_idx, if null_id { u64::MAX } else { t.target_id });
        let gi = match self.guides.iter().position(|(k, _, _)| *k == key) {
            Some(i) => i,
            None => {
                let oldest = match t.intervals {
                    None => i128::from(s.start_ns),
                    Some(iv) => {
                        let age = s.regions.iter().map(|r| r.age.unwrap_or(0)).max().unwrap_or(0);
                        i128::from(s.start_ns) - i128::from(age) * i128::from(iv.aggr_us) * 1000
                    }
                };
                let mut header = vec![format!("kdamond_idx: {}", t.kdamond_idx), format!("context_idx: {}", t.context_idx)];
                if let Some(i) = t.scheme_idx {
                    header.push(format!("scheme_idx: {i}"));
                }
                if !null_id {
                    header.push(format!("target_id: {}", t.target_id));
                }
                self.guides.push((key, ti, Guide { header, start_ns: oldest, end_ns: 0, coverage: Coverage::default() }));
                self.guides.len() - 1
            }
        };
        let g = &mut self.guides[gi].2;
        g.end_ns = s.end_ns;
        g.coverage.add(&s.regions);
    }
}

/// Whether target `ti`'s first snapshot was seen, to set.
fn seen(seen: &mut Vec<bool>, ti: usize) -> &mut bool {
    if seen.len() <= ti {
        seen.resize(ti + 1, false);
    }
    &mut seen[ti]
}

/// What the recording dropped, by cause: "lost: nothing" or "lost 12: stack samples:
/// unnormalized 10, children: target map full 2".
fn losses_line(losses: &damo_record::model::Losses) -> String {
    let causes = losses.breakdown();
    if causes.is_empty() {
        return "lost: nothing".into();
    }
    let causes: Vec<String> = causes.iter().map(|(cause, n)| format!("{cause} {n}")).collect();
    format!("lost {}: {}", losses.total(), causes.join(", "))
}

/// One line on how a damo-trace record was made: by what, where, when, at what sampling rate.
/// `first_snapshot_ns`: the earliest start of a target's first snapshot.
fn metadata_line(m: &damo_record::model::Metadata, first_snapshot_ns: Option<u64>, record: &Record) -> String {
    let first_ns = first_snapshot_ns.into_iter().chain(record.samples.first().map(|s| s.ts_ns)).min();
    let when = match (m.realtime_offset_ns, first_ns) {
        (Some(offset), Some(ns)) => {
            u64::try_from(i128::from(ns) + i128::from(offset)).ok().map(|wall| format!(" from {}", humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(wall))))
        }
        _ => None,
    };
    let stacks = if m.sample_hz > 0 { format!("stacks at {} Hz", m.sample_hz) } else { "no stacks".into() };
    // Arguments with spaces (a "command" target) quoted, so the line reads as it was typed.
    let command: Vec<String> = m.command_line.iter().map(|a| if a.contains(char::is_whitespace) { format!("\"{a}\"") } else { a.clone() }).collect();
    // All of it comes from the record, which anyone may have written.
    let p = damo_record::text::printable;
    format!("recorded by {} on {} (Linux {}, {} CPUs){}, {stacks}: {}", p(&m.recorder), p(&m.hostname), p(&m.kernel_release), m.nr_cpus, when.unwrap_or_default(), p(&command.join(" ")))
}

/// Both clocks of the record's time 0 for phase reports: the record's own clock
/// (CLOCK_MONOTONIC ns, as in JSON `start_ns`) and the wall clock, where the reports' seconds
/// (since the first snapshot) start.
fn clock_line(m: &damo_record::model::Metadata, first_snapshot_ns: Option<u64>) -> Option<String> {
    let first = first_snapshot_ns?;
    let wall = m
        .realtime_offset_ns
        .and_then(|o| u64::try_from(i128::from(first) + i128::from(o)).ok())
        .map(|w| format!(" = {} (wall clock)", humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(w))))
        .unwrap_or_default();
    Some(format!("time 0 of reports (the first snapshot): {first} ns CLOCK_MONOTONIC{wall}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use damo_record::model::{Region, Snapshot, TargetRecord};

    #[test]
    fn gaps_common_to_all_snapshots() {
        let reg = |start, end| Region { start, end, nr_accesses: 0, age: None };
        let snap = |regions| Snapshot { start_ns: 0, end_ns: 10, regions, total_bytes: None };
        let rec =
            Record { targets: vec![TargetRecord { snapshots: vec![snap(vec![reg(100, 200), reg(300, 400)]), snap(vec![reg(100, 250), reg(280, 400)])], ..Default::default() }], ..Default::default() };
        let out = report(&rec, true);
        assert!(out.contains("region\t 0: [100, 250) (150)"), "{out}");
        assert!(out.contains("region\t 1: [280, 400) (120)"), "{out}");
    }

    #[test]
    fn says_how_a_damo_trace_record_was_made() {
        let metadata = damo_record::model::Metadata {
            recorder: "damo-trace 0.1.0".into(),
            command_line: vec!["damo-trace".into(), "record".into(), "ls -l".into()],
            hostname: "box".into(),
            kernel_release: "6.12.117".into(),
            nr_cpus: 2,
            sample_hz: 99,
            // 2026-12-01T00:00:00Z is 1_796_083_200 s after the epoch.
            realtime_offset_ns: Some(1_796_083_200_000_000_000 - 5_000_000_000),
            damon: None,
        };
        let sample = damo_record::model::StackSample { ts_ns: 5_000_000_000, pid: 1, tid: 1, cpu: 0, comm: "ls".into(), user: vec![], kernel: vec![] };
        let mut rec = Record { metadata: Some(metadata), samples: vec![sample], ..Default::default() };
        assert_eq!(report(&rec, true), "recorded by damo-trace 0.1.0 on box (Linux 6.12.117, 2 CPUs) from 2026-12-01T00:00:00Z, stacks at 99 Hz: damo-trace record \"ls -l\"");
        // With snapshots, where the reports' time axis starts, in both clocks.
        let snapshot = Snapshot { start_ns: 5_500_000_000, end_ns: 5_600_000_000, regions: vec![], total_bytes: None };
        rec.targets = vec![TargetRecord { snapshots: vec![snapshot], ..Default::default() }];
        let text = report(&rec, true);
        assert!(text.ends_with("\ntime 0 of reports (the first snapshot): 5500000000 ns CLOCK_MONOTONIC = 2026-12-01T00:00:00.500Z (wall clock)"), "{text}");
    }

    #[test]
    fn breaks_losses_down_by_cause() {
        let none = Record { losses: Some(Default::default()), ..Default::default() };
        assert_eq!(report(&none, true), "lost: nothing");
        let losses = damo_record::model::Losses { kernel: [0, 3, 0, 2], unnormalized_samples: 10, mapping_records: 4, ..Default::default() };
        let rec = Record { losses: Some(losses), ..Default::default() };
        assert_eq!(report(&rec, true), "lost 15: stack samples: ring buffer full 3, children: target map full 2, stack samples: unnormalized 10, mapping records: lost 4");
        assert!(!report(&Record::default(), true).contains("lost"), "records of other tools say nothing");
    }

    #[test]
    fn counts_proc_samples_when_there_are_any() {
        assert!(!report(&Record::default(), true).contains("proc samples"));
        let rec = Record { footprints: vec![Default::default(); 3], proc_stats: vec![Default::default(); 6], ..Default::default() };
        assert_eq!(report(&rec, true), "proc samples: 3 footprint snapshots, 0 vma snapshots, 6 proc stats");
    }
}
