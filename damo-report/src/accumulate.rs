//! Reports that need one pass over the snapshots take them one at a time, so the same code
//! reports on a record in memory and on one streamed from its file (a day of recording does
//! not fit in memory). Each keeps its state per target, so the order in which targets'
//! snapshots interleave (a file's) does not change the answer.

use damo_record::model::{Record, Snapshot, TargetRecord};

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

/// Per-target state, made on a target's first snapshot.
pub(crate) fn slot<T>(slots: &mut Vec<Option<T>>, index: usize, make: impl FnOnce() -> T) -> &mut T {
    if slots.len() <= index {
        slots.resize_with(index + 1, || None);
    }
    slots[index].get_or_insert_with(make)
}
