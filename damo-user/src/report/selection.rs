//! The part of a record a profile-like report looks at: the times when an access pattern
//! (damo's record filters) held, and the record to take stack samples from.

use anyhow::{bail, Result};
use damo_record::{
    model::{Record, Snapshot, TargetRecord},
    native::Rest,
};
use damo_report::{accumulate::Accumulate, times};

use super::options::{stream, streams, FilterArgs, InputArgs};

/// The record, the times damo's filters select and what they are, for titles.
pub struct Selected {
    /// Without its snapshots when it was streamed (the samples are what is looked at).
    pub record: Record,
    /// `[start, end)` ns; `None`: all of the record.
    pub spans: Option<Vec<(u64, u64)>>,
    pub what: String,
}

/// Loads the record and the times damo's filters pick from its snapshots. Unless `whole`, a
/// damo-trace record's snapshots are streamed from its file, so only the times they select
/// are held (a day of snapshots does not fit in memory), besides the stack samples.
pub fn load(input: &InputArgs, filter: &FilterArgs, whole: bool) -> Result<Selected> {
    let filter = filter.to_filter()?;
    let path = &input.input;
    let (record, selection, snapshots) = if !whole && streams(path) {
        let mut acc = (times::Accumulator::new((!filter.is_noop()).then_some(&filter)), Count(0));
        let record = stream(path, Rest::Keep, &mut acc, true)?;
        let selection = if filter.is_noop() { times::Selection::all() } else { times::Selection::of(acc.0.finish()) };
        (record, selection, acc.1 .0)
    } else {
        let mut record = input.load()?;
        let snapshots = record.targets.iter().map(|t| t.snapshots.len()).sum();
        let selection = times::select(&mut record, &filter);
        (record, selection, snapshots)
    };
    if record.samples.is_empty() {
        bail!("{} has no stack samples: record with damo-trace (damo's records hold accesses only)", path.display());
    }
    if !filter.is_noop() && snapshots == 0 {
        bail!("the filters select times from DAMON snapshots, and {} has none", path.display());
    }
    let times::Selection { spans, what } = selection;
    Ok(Selected { record, spans, what })
}

/// Snapshots seen.
struct Count(usize);

impl Accumulate for Count {
    fn push(&mut self, _index: usize, _target: &TargetRecord, _snapshot: &Snapshot) {
        self.0 += 1;
    }
}
