//! Reports that need one pass over the snapshots take them one at a time, so the same code
//! reports on a record in memory and on one streamed from its file (a day of recording does
//! not fit in memory). Each keeps its state per target, so the order in which targets'
//! snapshots interleave (a file's) does not change the answer.

use damo_record::{
    budget::{bytes_of, Meter, OverBudget},
    model::{Record, Region, Snapshot, TargetRecord},
};

/// A report fed snapshot by snapshot: `index` is the target's among the record's targets,
/// `target` its identity (its `snapshots` are not looked at).
pub trait Accumulate {
    fn push(&mut self, index: usize, target: &TargetRecord, snapshot: &Snapshot);
}

/// Two reports fed in one pass.
impl<A: Accumulate, B: Accumulate> Accumulate for (A, B) {
    fn push(&mut self, index: usize, target: &TargetRecord, snapshot: &Snapshot) {
        self.0.push(index, target, snapshot);
        self.1.push(index, target, snapshot);
    }
}

/// A report fed through a borrow (its owner reads it after the pass).
impl<A: Accumulate + ?Sized> Accumulate for &mut A {
    fn push(&mut self, index: usize, target: &TargetRecord, snapshot: &Snapshot) {
        (**self).push(index, target, snapshot);
    }
}

/// No report: a pass fed to nothing else.
impl Accumulate for () {
    fn push(&mut self, _: usize, _: &TargetRecord, _: &Snapshot) {}
}

/// Feeds `acc` every snapshot of `record`, target by target.
pub fn feed(record: &Record, acc: &mut impl Accumulate) {
    for (i, t) in record.targets.iter().enumerate() {
        for s in &t.snapshots {
            acc.push(i, t, s);
        }
    }
}

/// The regions an accumulator keeps, charged to the memory limit: a report that keeps
/// snapshots (all of them, unfiltered) would otherwise hold the record it streams.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    meter: Meter,
    over: Option<OverBudget>,
}

impl Held {
    pub(crate) fn new(what: &'static str) -> Self {
        Held { meter: Meter::new().for_what(what), over: None }
    }

    /// `before` regions held became `after`; past the limit, [`Self::is_over`].
    pub(crate) fn change(&mut self, before: usize, after: usize) {
        if let Err(over) = self.meter.charge(bytes_of::<Region>(after as u64)) {
            self.over = Some(over);
        }
        self.meter.release(bytes_of::<Region>(before as u64));
    }

    /// Whether the limit was passed: keep nothing more.
    pub(crate) fn is_over(&self) -> bool {
        self.over.is_some()
    }

    /// The limit's error, if it was passed.
    pub(crate) fn check(&self) -> Result<(), OverBudget> {
        self.over.clone().map_or(Ok(()), Err)
    }
}

/// Per-target state, made on a target's first snapshot.
pub(crate) fn slot<T>(slots: &mut Vec<Option<T>>, index: usize, make: impl FnOnce() -> T) -> &mut T {
    if slots.len() <= index {
        slots.resize_with(index + 1, || None);
    }
    slots[index].get_or_insert_with(make)
}
