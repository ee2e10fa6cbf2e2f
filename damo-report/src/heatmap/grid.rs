//! The heatmap itself: time rows × address columns of heat, accumulated like damo's
//! `HeatMap.add_heat`, one region at a time into the cells it covers.

use damo_record::model::{Intervals, Region, Snapshot};

use super::{
    bucket::IntMap,
    pynum::Num,
    source::{age, Source},
    HeatmapError,
};

/// More cells than this is a mistake (damo would build a Python object per cell).
const MAX_CELLS: usize = 1 << 27;

#[derive(Debug, Clone)]
pub struct Grid {
    pub time_start: Num,
    pub time_unit: Num,
    pub time_resol: usize,
    pub addr_start: Num,
    pub addr_unit: Num,
    pub addr_resol: usize,
    /// "hz" when the records have intervals, else "samples".
    pub heat_unit: &'static str,
    /// Row-major, `time_resol` rows of `addr_resol` cells.
    pub heats: Vec<Cell>,
    /// Each row's start time and each column's start address (damo truncates them).
    pub row_time: Vec<i128>,
    pub col_addr: Vec<i128>,
}

/// A cell's heat, or none where no region reached it: an `f64`, one NaN set aside for
/// none. Half an `Option<f64>`: 500 × 500 cells are 2 MB, not 4, and every region of the
/// drawn target lands in them, so their page faults and cache misses are the map's.
/// Arithmetic makes quiet NaNs only, never this signaling one, so no heat reads as none.
#[derive(Clone, Copy)]
pub struct Cell(f64);

impl Cell {
    pub const EMPTY: Cell = Cell(f64::from_bits(NONE_BITS));

    pub fn of(heat: f64) -> Cell {
        debug_assert_ne!(heat.to_bits(), NONE_BITS, "a heat made by arithmetic");
        Cell(heat)
    }

    pub fn get(self) -> Option<f64> {
        (self.0.to_bits() != NONE_BITS).then_some(self.0)
    }
}

const NONE_BITS: u64 = 0x7ff4_0000_0000_d0a0;

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// Cells `addr..addr + len` of time row `time`, all of one `level`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    pub time: usize,
    pub addr: usize,
    pub len: usize,
    pub level: f64,
}

impl Grid {
    /// An empty map of `[time_start, time_end)` × `[addr_start, addr_end)`.
    pub fn new((time_start, time_end): (Num, Num), (addr_start, addr_end): (Num, Num), (time_resol, addr_resol): (usize, usize), heat_unit: &'static str) -> Result<Grid, HeatmapError> {
        if time_resol == 0 || addr_resol == 0 {
            return Err(HeatmapError::new("the resolution must be at least 1 in both axes"));
        }
        if time_resol.checked_mul(addr_resol).is_none_or(|n| n > MAX_CELLS) {
            return Err(HeatmapError(format!("resolution {time_resol}x{addr_resol} is too large (at most {MAX_CELLS} cells)")));
        }
        if time_end.lt(time_start) {
            return Err(HeatmapError(format!("time range start {} is after its end {}", time_start.repr(), time_end.repr())));
        }
        if addr_end.lt(addr_start) {
            return Err(HeatmapError(format!("address range start {} is after its end {}", addr_start.repr(), addr_end.repr())));
        }
        let unit = |start: Num, end: Num, resol: usize, what: &str| {
            let u = end.minus(start).floordiv(Num::Int(resol as i128)).filter(|u| u.f64() > 0.0);
            u.ok_or_else(|| HeatmapError(format!("the {what} range [{}, {}) is too short for a resolution of {resol}: each cell would be empty", start.repr(), end.repr())))
        };
        let time_unit = unit(time_start, time_end, time_resol, "time")?;
        let addr_unit = unit(addr_start, addr_end, addr_resol, "address")?;
        let steps = |start: Num, u: Num, n: usize| -> Result<Vec<i128>, HeatmapError> {
            (0..n).map(|i| start.plus(Num::Int(i as i128).times(u)).trunc().ok_or_else(|| HeatmapError::new("a range is not finite"))).collect()
        };
        Ok(Grid {
            row_time: steps(time_start, time_unit, time_resol)?,
            col_addr: steps(addr_start, addr_unit, addr_resol)?,
            time_start,
            time_unit,
            time_resol,
            addr_start,
            addr_unit,
            addr_resol,
            heat_unit,
            heats: vec![Cell::EMPTY; time_resol * addr_resol],
        })
    }

    pub fn row(&self, i: usize) -> &[Cell] {
        &self.heats[i * self.addr_resol..(i + 1) * self.addr_resol]
    }

    /// Runs of cells along the address axis with one level (`level` of their heat), a time
    /// row after another; empty cells are in no run. Images draw one rect per run, which
    /// keeps the files small.
    pub fn runs(&self, level: impl Fn(f64) -> f64) -> Vec<Run> {
        let mut runs = Vec::new();
        for time in 0..self.time_resol {
            let row = self.row(time);
            let mut addr = 0;
            while addr < row.len() {
                let Some(h) = row[addr].get() else {
                    addr += 1;
                    continue;
                };
                let l = level(h);
                let len = row[addr..].iter().take_while(|c| c.get().is_some_and(|c| level(c) == l)).count();
                runs.push(Run { time, addr, len, level: l });
                addr += len;
            }
        }
        runs
    }

    /// The highest and lowest heats, if any cell has one.
    pub fn highest_lowest(&self) -> Option<(f64, f64)> {
        self.heats.iter().filter_map(|c| c.get()).fold(None, |acc, h| match acc {
            None => Some((h, h)),
            Some((hi, lo)) => Some((if hi < h { h } else { hi }, if lo > h { h } else { lo })),
        })
    }

    fn idx_of(v: Num, start: Num, unit: Num) -> Option<i128> {
        Num::Float(v.minus(start).truediv(unit)).trunc()
    }

    /// Clamps damo's cell index range `[first, last]` to the map.
    fn clamp(first: Option<i128>, last: Option<i128>, n: usize) -> std::ops::Range<usize> {
        let (Some(first), Some(last)) = (first, last) else { return 0..0 };
        super::bucket::clamp(first, last, n)
    }

    /// Adds every snapshot of the sources, in order (damo's `heatmap_from_records`), in
    /// integers where damo's numbers are ints.
    pub fn add_sources(&mut self, sources: &[Source]) {
        let int_map = IntMap::of(self);
        let mut last_end = None;
        for src in sources {
            for (i, snap) in src.snapshots().iter().enumerate() {
                self.add(int_map.as_ref(), src.start(i), snap, last_end, src.target.intervals);
                last_end = Some(snap.end_ns);
            }
        }
    }

    /// Adds one snapshot that starts at `start`; `last_end` is where the snapshot added
    /// before it ended, `int_map` this map's [`IntMap`].
    pub(super) fn add(&mut self, int_map: Option<&IntMap>, start: Num, snap: &Snapshot, last_end: Option<u64>, intervals: Option<Intervals>) {
        if !int_map.is_some_and(|map| map.add_snapshot(self, start, snap, last_end, intervals)) {
            self.add_snapshot(start, snap, last_end, intervals);
        }
    }

    /// [`Self::add_sources`] in damo's arithmetic throughout, the reference of the integer path.
    #[cfg(test)]
    pub(super) fn add_sources_general(&mut self, sources: &[Source]) {
        let mut last_end = None;
        for src in sources {
            for (i, snap) in src.snapshots().iter().enumerate() {
                self.add_snapshot(src.start(i), snap, last_end, src.target.intervals);
                last_end = Some(snap.end_ns);
            }
        }
    }

    fn add_snapshot(&mut self, start: Num, snap: &Snapshot, last_end: Option<u64>, intervals: Option<Intervals>) {
        let aggr_ns = intervals.map(|iv| i128::from(iv.aggr_us) * 1000);
        let map_end = self.addr_start.plus(self.addr_unit.times(Num::Int(self.addr_resol as i128)));
        let end = Num::Int(i128::from(snap.end_ns));
        let last_end = last_end.map(|l| Num::Int(i128::from(l)));
        // With intervals, the heat of a region is spread over its whole age.
        let heat_val = |r: &Region| match intervals {
            Some(iv) => Num::Float(f64::from(r.nr_accesses) / (iv.aggr_us as f64 / 1e6)),
            None => Num::Int(i128::from(r.nr_accesses)),
        };
        for r in &snap.regions {
            let (rs, re) = (Num::Int(i128::from(r.start)), Num::Int(i128::from(r.end)));
            if re.lt(self.addr_start) || map_end.lt(rs) {
                continue;
            }
            let aged = aggr_ns.map_or(start, |a| start.minus(Num::Int(age(r) * a)));
            let clip = |t: Num| match last_end {
                Some(le) if t.lt(le) => le,
                _ => t,
            };
            let rows_start = clip(aged);
            // damo clips the observation start only when the record has intervals.
            let observe_start = if intervals.is_some() { clip(aged) } else { start };
            let rows = Self::clamp(Self::idx_of(rows_start, self.time_start, self.time_unit), Self::idx_of(end, self.time_start, self.time_unit), self.time_resol);
            let cols = Self::clamp(Self::idx_of(rs, self.addr_start, self.addr_unit), Self::idx_of(re, self.addr_start, self.addr_unit), self.addr_resol);
            let hv = heat_val(r);
            for row in rows {
                let pt = Num::Int(self.row_time[row]);
                let account_time = end.min(pt.plus(self.time_unit)).minus(observe_start.max(pt));
                let hv_time = hv.times(account_time);
                for col in cols.clone() {
                    let pa = Num::Int(self.col_addr[col]);
                    let account_sz = re.min(pa.plus(self.addr_unit)).minus(rs.max(pa));
                    self.add_cell(row, col, hv_time.times(account_sz));
                }
            }
        }
    }

    /// damo keeps a cell's heat as a mean over the cell's time × space; each region adds its
    /// share of heat × time × bytes.
    fn add_cell(&mut self, row: usize, col: usize, heat: Num) {
        let cell = &mut self.heats[row * self.addr_resol + col];
        let space = self.time_unit.times(self.addr_unit);
        let prev = cell.get().map_or(Num::Int(0), Num::Float);
        let total = heat.plus(prev.times(space));
        *cell = Cell::of(total.f64() / space.f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use damo_record::model::TargetRecord;

    #[test]
    fn one_region_fills_its_cells() {
        let t =
            TargetRecord { snapshots: vec![Snapshot { start_ns: 0, end_ns: 100, regions: vec![Region { start: 0, end: 50, nr_accesses: 4, age: None }], total_bytes: None }], ..Default::default() };
        let mut g = Grid::new((Num::Int(0), Num::Int(100)), (Num::Int(0), Num::Int(100)), (2, 4), "samples").unwrap();
        g.add_sources(&[Source::new(&t, false)]);
        // Row 1 ends where the snapshot does: damo still visits it (time 0) and the column
        // after the region's end (size 0), so those cells are 0, not empty.
        let row = |i: usize| g.row(i).iter().map(|c| c.get()).collect::<Vec<_>>();
        assert_eq!(row(0), [Some(4.0), Some(4.0), Some(0.0), None]);
        assert_eq!(row(1), [Some(4.0), Some(4.0), Some(0.0), None]);
        assert_eq!(g.highest_lowest(), Some((4.0, 0.0)));
    }

    #[test]
    fn bad_ranges_are_errors() {
        let z = Num::Int(0);
        assert!(Grid::new((z, Num::Int(10)), (z, Num::Int(10)), (0, 1), "samples").is_err());
        assert!(Grid::new((Num::Int(10), z), (z, Num::Int(10)), (1, 1), "samples").is_err());
        assert!(Grid::new((z, Num::Int(3)), (z, Num::Int(10)), (4, 1), "samples").is_err());
    }
}
