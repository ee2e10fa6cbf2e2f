//! The snapshots `report access` shows, chosen while the record streams: damo's record
//! filters (`--snapshot_idx`, `--snapshot_time`…) applied one snapshot at a time, so only
//! the chosen ones are kept, not the record.

use damo_record::{
    budget::OverBudget,
    model::{Record, Snapshot, TargetRecord},
};

use crate::{
    accumulate::{slot, Accumulate, Held},
    filter::RecordFilter,
};

/// Keeps what `filter` keeps of each snapshot, per target, within the memory limit (with no
/// filter, that is every snapshot).
#[derive(Clone)]
pub struct Chosen<'f> {
    filter: &'f RecordFilter,
    /// Per target: snapshots the snapshot filters passed so far (damo's index), and the kept ones.
    targets: Vec<Option<(u64, Vec<Snapshot>)>>,
    held: Held,
}

impl<'f> Chosen<'f> {
    pub fn new(filter: &'f RecordFilter) -> Self {
        Chosen { filter, targets: Vec::new(), held: Held::new("keeping the snapshots to show") }
    }

    /// `rest` (the streamed record's targets and other chunks) with the kept snapshots: what
    /// [`RecordFilter::apply`] leaves of the whole record.
    pub fn into_record(self, mut rest: Record) -> Result<Record, OverBudget> {
        self.held.check()?;
        for (t, kept) in rest.targets.iter_mut().zip(self.targets.into_iter().chain(std::iter::repeat_with(|| None))) {
            t.snapshots = kept.map(|(_, s)| s).unwrap_or_default();
        }
        Ok(rest)
    }
}

impl Accumulate for Chosen<'_> {
    fn push(&mut self, index: usize, target: &TargetRecord, snapshot: &Snapshot) {
        if self.held.is_over() {
            return;
        }
        let (passed, kept) = slot(&mut self.targets, index, || (0, Vec::new()));
        if let Some(s) = self.filter.kept_of(snapshot, target.intervals.as_ref(), passed) {
            self.held.change(0, s.regions.len());
            kept.push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accumulate::feed;
    use damo_record::synth::{self, SynthSpec};

    #[test]
    fn keeps_what_the_filter_keeps_of_the_whole_record() {
        let record = synth::record(SynthSpec { targets: 2, snapshots_per_target: 30, regions: 20, seed: 5 });
        let filter = RecordFilter { snapshot_idx: Some(vec![(3, 7), (29, 29)]), sz_region: (8192, u64::MAX), ..Default::default() };
        let mut chosen = Chosen::new(&filter);
        feed(&record, &mut chosen);
        let mut rest = record.clone();
        rest.targets.iter_mut().for_each(|t| t.snapshots.clear());
        let mut want = record;
        filter.apply(&mut want);
        assert_eq!(chosen.into_record(rest).unwrap(), want);
    }
}
