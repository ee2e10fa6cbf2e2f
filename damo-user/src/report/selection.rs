//! The part of a record a profile-like report looks at: the times when an access pattern
//! (damo's record filters) held, and the record to take stack samples from.

use anyhow::{bail, Result};
use damo_record::model::Record;
use damo_report::times;

use super::options::{FilterArgs, InputArgs};

/// The record, the times damo's filters select and what they are, for titles.
pub struct Selected {
    pub record: Record,
    /// `[start, end)` ns; `None`: all of the record.
    pub spans: Option<Vec<(u64, u64)>>,
    pub what: String,
}

/// Loads the record and the times damo's filters pick from its snapshots.
pub fn load(input: &InputArgs, filter: &FilterArgs) -> Result<Selected> {
    let mut record = input.load()?;
    if record.samples.is_empty() {
        bail!("{} has no stack samples: record with damo-trace (damo's records hold accesses only)", input.input.display());
    }
    let filter = filter.to_filter()?;
    if !filter.is_noop() && record.targets.iter().all(|t| t.snapshots.is_empty()) {
        bail!("the filters select times from DAMON snapshots, and {} has none", input.input.display());
    }
    let times::Selection { spans, what } = times::select(&mut record, &filter);
    Ok(Selected { record, spans, what })
}
