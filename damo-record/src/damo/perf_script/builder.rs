//! Snapshots rebuilt from the pieces' runs, in order, like damo does: a region line opens a
//! snapshot of its target, which closes after `nr_regions` lines.

use std::collections::HashMap;

use super::piece::{Piece, Run};
use crate::{
    budget::{bytes_of, Meter, OverBudget},
    damo::DamoError,
    model::{Record, Region, Snapshot, TargetRecord},
};

/// The record so far, and where the pieces received so far end.
#[derive(Default)]
pub struct Build {
    builder: Builder,
    lines_before: usize,
    pub truncated_tail: bool,
    pub region_lines: usize,
}

impl Build {
    /// Adds the next piece's runs, then its error if it has one. The piece's memory was
    /// charged to `meter` by the caller (`piece.bytes()`); what the record does not keep is
    /// released.
    pub fn piece(&mut self, piece: Piece, meter: &mut Meter) -> Result<(), DamoError> {
        let runs_cost = bytes_of::<Run>(piece.runs.capacity() as u64);
        self.region_lines += piece.region_lines();
        for run in piece.runs {
            let first_line = self.lines_before + run.first_line;
            self.builder.add(run, meter).map_err(|reason| match reason {
                AddError::Line(offset, reason) => DamoError::Line { line: first_line + offset, reason },
                AddError::OverBudget(e) => DamoError::OverBudget(e),
            })?;
        }
        meter.release(runs_cost);
        if let Some((line, reason)) = piece.error {
            return Err(DamoError::Line { line: self.lines_before + line, reason });
        }
        self.truncated_tail |= piece.truncated_tail;
        self.lines_before += piece.line_count;
        Ok(())
    }

    pub fn finish(self) -> Record {
        self.builder.finish()
    }
}

#[derive(Default)]
struct Builder {
    targets: Vec<TargetRecord>,
    index: HashMap<(Option<u32>, u64), usize>,
    /// Per target: the count the snapshot still collecting regions expects.
    open: Vec<Option<u32>>,
    /// Per target: whether the last snapshot is damo's fake end marker.
    fake_last: Vec<bool>,
}

enum AddError {
    /// The run's line at this offset, and what is wrong.
    Line(usize, String),
    OverBudget(OverBudget),
}

impl Builder {
    fn target(&mut self, run: &Run, meter: &mut Meter) -> Result<usize, AddError> {
        let key = (run.scheme_idx, run.target_id);
        if let Some(&t) = self.index.get(&key) {
            return Ok(t);
        }
        // The target, its index entry and its bookkeeping.
        meter.charge(bytes_of::<TargetRecord>(1) + 64).map_err(AddError::OverBudget)?;
        self.targets.push(TargetRecord { scheme_idx: run.scheme_idx, target_id: run.target_id, ..Default::default() });
        self.open.push(None);
        self.fake_last.push(false);
        self.index.insert(key, self.targets.len() - 1);
        Ok(self.targets.len() - 1)
    }

    /// Adds a run's regions, charged to `meter` already: a run that is a whole snapshot
    /// becomes one as it is; others are copied (and their memory released).
    fn add(&mut self, mut run: Run, meter: &mut Meter) -> Result<(), AddError> {
        let t = self.target(&run, meter)?;
        let run_cost = bytes_of::<Region>(run.regions.capacity() as u64);
        let len = run.regions.len();
        let mut done = 0;
        while done < len {
            let target = &mut self.targets[t];
            if self.open[t].is_none() {
                let start_ns = target.snapshots.last().map_or(run.end_ns, |s| s.end_ns);
                if start_ns > run.end_ns {
                    return Err(AddError::Line(done, "the trace is not sorted by time".into()));
                }
                meter.charge(bytes_of::<Snapshot>(1)).map_err(AddError::OverBudget)?;
                self.fake_last[t] = run.fake;
                if done == 0 && len <= run.nr_regions as usize {
                    // The run is the snapshot (or its start): kept, its charge stays with the
                    // record.
                    let regions = std::mem::take(&mut run.regions);
                    let total_bytes = Some(size_of(&regions));
                    target.snapshots.push(Snapshot { start_ns, end_ns: run.end_ns, regions, total_bytes });
                    self.open[t] = (len < run.nr_regions as usize).then_some(run.nr_regions);
                    done = len;
                    continue;
                }
                // nr_regions is the line's word: a line per target may claim 4 G regions.
                let capacity = (run.nr_regions as usize).min(1 << 12);
                meter.charge(bytes_of::<Region>(capacity as u64)).map_err(AddError::OverBudget)?;
                target.snapshots.push(Snapshot { start_ns, end_ns: run.end_ns, regions: Vec::with_capacity(capacity), total_bytes: Some(0) });
                self.open[t] = Some(run.nr_regions);
            }
            let snapshot = target.snapshots.last_mut().expect("a snapshot was just opened");
            let wanted = self.open[t].unwrap_or(0) as usize;
            let take = wanted.saturating_sub(snapshot.regions.len()).min(len - done);
            let grow = (snapshot.regions.len() + take).saturating_sub(snapshot.regions.capacity());
            if grow > 0 {
                // Vec doubles: charge what it may take.
                meter.charge(bytes_of::<Region>(grow.max(snapshot.regions.capacity()) as u64)).map_err(AddError::OverBudget)?;
            }
            let taken = &run.regions[done..done + take];
            snapshot.regions.extend_from_slice(taken);
            snapshot.total_bytes = snapshot.total_bytes.map(|t| t + size_of(taken));
            done += take;
            if snapshot.regions.len() >= wanted {
                self.open[t] = None;
            }
        }
        if run.regions.capacity() > 0 {
            meter.release(run_cost);
        }
        Ok(())
    }

    /// The record; each snapshot's size was added up as its regions came (here, they would
    /// all be read again, on one core, after the parse).
    fn finish(mut self) -> Record {
        for (target, fake_last) in self.targets.iter_mut().zip(self.fake_last) {
            let snaps = &mut target.snapshots;
            // The trace has end times only: like damo, give the first snapshot the mean
            // duration of the others (counting a fake end marker, which exists for this).
            if snaps.len() >= 2 {
                let first_end = snaps[0].end_ns;
                let span = snaps[snaps.len() - 1].end_ns - first_end;
                let mean = span as f64 / (snaps.len() - 1) as f64;
                snaps[0].start_ns = first_end.saturating_sub(mean.round() as u64);
            }
            if fake_last && snaps.len() >= 2 {
                snaps.pop();
            }
        }
        Record { targets: self.targets, ..Default::default() }
    }
}

/// The bytes `regions` span.
fn size_of(regions: &[Region]) -> u64 {
    regions.iter().map(Region::size).sum()
}
