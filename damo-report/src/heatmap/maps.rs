//! The maps of one request, fed a snapshot at a time: from a record in memory, or from one
//! streamed from its file (the grids are the only state, not the record).

use damo_record::model::{Intervals, Snapshot, TargetRecord};

use super::{bucket::IntMap, guide::Guide, pynum::Num, Grid, HeatmapError};
use crate::accumulate::Accumulate;

/// One grid per address range, of the snapshots of the guide's target.
pub struct Maps {
    guide: Guide,
    grids: Vec<(Grid, Option<IntMap>)>,
    /// Where the snapshot added last ended: damo clips the next one's time there.
    last_end: Option<u64>,
    /// Where damo starts the first snapshot streamed in, when not where it says (a
    /// perf-script trace's: [`super::source::Source::new`]).
    first_start: Option<f64>,
}

impl Maps {
    /// Empty maps of `time` × each of `addrs`, `resol` cells, for `guide`'s target.
    pub fn new(guide: &Guide, time: (Num, Num), addrs: Vec<(Num, Num)>, resol: (usize, usize), heat_unit: &'static str) -> Result<Maps, HeatmapError> {
        let grids = addrs
            .into_iter()
            .map(|addr| {
                let grid = Grid::new(time, addr, resol, heat_unit)?;
                let int_map = IntMap::of(&grid);
                Ok((grid, int_map))
            })
            .collect::<Result<_, HeatmapError>>()?;
        Ok(Maps { guide: guide.clone(), grids, last_end: None, first_start: None })
    }

    /// Streamed maps of a perf-script trace: the first snapshot starts at `start`.
    pub fn first_starting_at(mut self, start: Option<f64>) -> Self {
        self.first_start = start;
        self
    }

    /// Adds a snapshot of the guide's target, which starts at `start` as damo sees it.
    pub fn add(&mut self, start: Num, snap: &Snapshot, intervals: Option<Intervals>) {
        for (grid, int_map) in &mut self.grids {
            grid.add(int_map.as_ref(), start, snap, self.last_end, intervals);
        }
        self.last_end = Some(snap.end_ns);
    }

    /// Whether `target`'s snapshots are drawn.
    pub fn draws(&self, target: &TargetRecord) -> bool {
        self.guide.matches(target)
    }

    pub fn finish(self) -> Vec<Grid> {
        self.grids.into_iter().map(|(grid, _)| grid).collect()
    }
}

/// A streamed record's snapshots start where they say; the caller makes sure one target
/// is drawn ([`super::guide::GuideBuilder::shared`]), as its snapshots come in order.
impl Accumulate for Maps {
    fn push(&mut self, _index: usize, target: &TargetRecord, snapshot: &Snapshot) {
        if self.draws(target) {
            let start = match self.first_start.take() {
                Some(f) if self.last_end.is_none() => Num::Float(f),
                _ => Num::Int(i128::from(snapshot.start_ns)),
            };
            self.add(start, snapshot, target.intervals);
        }
    }
}
