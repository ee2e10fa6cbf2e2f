//! The integer path of [`Grid::add_sources`]: when the map's start and cell sizes and a
//! snapshot's times are Python ints (every record but a perf-script one's first snapshot,
//! without float `--time_range`s), damo's cell indices and accounted times and sizes are
//! integer arithmetic, and only the heat itself is a float. Each region is then bucketed
//! with machine integers and primitive floats instead of [`Num`] (whose `i128` to `f64`
//! conversions run in software): a few ns per region, the same bits as the general path.
//!
//! A perf-script record's map starts at a fractional nanosecond (its first snapshot's start),
//! so its rows' times are floats. Without intervals a snapshot's regions all share its rows
//! and their accounted times: those are worked out once per snapshot in [`Num`], and only
//! the addresses, still ints, per region.

use damo_record::model::{Intervals, Region, Snapshot};

use super::{
    grid::{Cell, Grid},
    pynum::Num,
    source::age,
};

/// Integers below this convert to `f64` exactly, and a float division of two of them
/// truncates to their integer quotient: `a / b` rounds to a double within half an ulp of
/// the quotient, never across the next integer while `a + b < 2^53`.
const EXACT: u64 = 1 << 52;

/// Times, addresses and ages × intervals below this keep every sum and difference here in
/// an `i64`. (`i128` would do without the bound, but its conversions to `f64` are calls.)
const SMALL: i64 = 1 << 61;

/// The map's geometry as ints; its time axis as ints when it is.
pub(super) struct IntMap {
    time: Option<IntTime>,
    addr_start: i64,
    addr_unit: i64,
    /// The map's address end, `addr_start + addr_unit * addr_resol`.
    addr_end: i64,
    /// A cell's time × space, as damo divides by it (`float` of the product).
    space: f64,
}

struct IntTime {
    start: i64,
    unit: i64,
}

/// A row a snapshot covers, and the time it accounts there (damo's `account_time`).
#[derive(Clone, Copy)]
enum RowTime {
    Int(usize, i64),
    Float(usize, f64),
}

/// What a region adds per ns and byte: accesses per second with intervals (a float),
/// sampled accesses without (an int).
#[derive(Clone, Copy)]
enum Heat {
    PerSec(f64),
    Count(i64),
}

/// damo's `int((v - start) / unit)`, a float division; integer division where that is
/// the same number.
fn cell_idx(v: i64, start: i64, unit: i64) -> i64 {
    let a = v - start;
    if a.unsigned_abs() < EXACT && unit.unsigned_abs() < EXACT {
        a / unit
    } else {
        (a as f64 / unit as f64).trunc() as i64
    }
}

/// damo's `[first, last]` cell range clamped to `n` cells.
pub(super) fn clamp(first: i128, last: i128, n: usize) -> std::ops::Range<usize> {
    let lo = first.max(0);
    let hi = (last + 1).min(n as i128);
    if lo >= hi {
        0..0
    } else {
        lo as usize..hi as usize
    }
}

/// The heat one region adds to one cell, `heat_val * account_time * account_sz` in
/// Python's order and types (an int product stays exact until it overflows).
fn cell_heat(heat: Heat, time: i64, size: i64) -> f64 {
    match heat {
        Heat::PerSec(h) => h * time as f64 * size as f64,
        Heat::Count(n) => {
            // The same rounding as the i128 below, by the hardware (an i128 converts in a
            // call that took a twentieth of a perf-script heatmap).
            match n.checked_mul(time).and_then(|nt| nt.checked_mul(size)) {
                Some(v) => v as f64,
                None => wide_count_heat(n, time, size),
            }
        }
    }
}

/// [`cell_heat`] of a count whose product overflows an `i64`. Out of line: inlined, its
/// `i128` conversion (a call) was hoisted out of the cell loop and made for every region.
#[cold]
#[inline(never)]
fn wide_count_heat(n: i64, time: i64, size: i64) -> f64 {
    let nt = i128::from(n) * i128::from(time);
    match nt.checked_mul(i128::from(size)) {
        Some(v) => v as f64,
        None => nt as f64 * size as f64,
    }
}

/// `n` when it is an int below [`SMALL`].
fn small(n: Num) -> Option<i64> {
    match n {
        Num::Int(i) => i64::try_from(i).ok().filter(|i| i.unsigned_abs() < SMALL as u64),
        Num::Float(_) => None,
    }
}

impl IntMap {
    /// The map's geometry when its addresses are small ints, else `None` (the general path).
    pub(super) fn of(grid: &Grid) -> Option<IntMap> {
        let (addr_start, addr_unit) = (small(grid.addr_start)?, small(grid.addr_unit)?);
        let end = |start: Num, unit: Num, resol: usize| small(start.plus(unit.times(Num::Int(resol as i128 + 1))));
        let time = (|| {
            end(grid.time_start, grid.time_unit, grid.time_resol)?;
            Some(IntTime { start: small(grid.time_start)?, unit: small(grid.time_unit)? })
        })();
        Some(IntMap { time, addr_start, addr_unit, addr_end: end(grid.addr_start, grid.addr_unit, grid.addr_resol)? - addr_unit, space: grid.time_unit.times(grid.addr_unit).f64() })
    }

    /// damo's `add_heat` for every region of `snap`, which starts at `start`; false (nothing
    /// added) if its numbers need the general path.
    pub(super) fn add_snapshot(&self, grid: &mut Grid, start: Num, snap: &Snapshot, last_end: Option<u64>, intervals: Option<Intervals>) -> bool {
        match &self.time {
            Some(axis) if self.add_int_snapshot(axis, grid, start, snap, last_end, intervals) => true,
            _ => intervals.is_none() && self.add_snapshot_by_rows(grid, start, snap, last_end),
        }
    }

    /// The rows `snap` covers and their accounted times, in damo's numbers (no intervals:
    /// every region starts with the snapshot); `None` if a time is an int too large here.
    fn rows(grid: &Grid, start: Num, snap: &Snapshot, last_end: Option<u64>) -> Option<Vec<RowTime>> {
        let end = Num::Int(i128::from(snap.end_ns));
        let rows_start = match last_end.map(|l| Num::Int(i128::from(l))) {
            Some(le) if start.lt(le) => le,
            _ => start,
        };
        let idx = |v: Num| Num::Float(v.minus(grid.time_start).truediv(grid.time_unit)).trunc();
        let (Some(first), Some(last)) = (idx(rows_start), idx(end)) else { return Some(Vec::new()) };
        clamp(first, last, grid.time_resol)
            .map(|row| {
                let pt = Num::Int(grid.row_time[row]);
                match end.min(pt.plus(grid.time_unit)).minus(start.max(pt)) {
                    Num::Int(t) => i64::try_from(t).ok().filter(|t| t.unsigned_abs() < SMALL as u64).map(|t| RowTime::Int(row, t)),
                    Num::Float(t) => Some(RowTime::Float(row, t)),
                }
            })
            .collect()
    }

    /// damo's `add_heat` for `snap` of a record without intervals, with its rows' times from
    /// [`Self::rows`] and its addresses in ints; false (nothing added) if an address is too
    /// large.
    fn add_snapshot_by_rows(&self, grid: &mut Grid, start: Num, snap: &Snapshot, last_end: Option<u64>) -> bool {
        if !snap.regions.iter().all(|r| r.end < SMALL as u64) {
            return false;
        }
        let Some(rows) = Self::rows(grid, start, snap, last_end) else { return false };
        let addr_resol = grid.addr_resol;
        for r in &snap.regions {
            let (rs, re) = (r.start as i64, r.end as i64);
            if re < self.addr_start || self.addr_end < rs {
                continue;
            }
            let cols = clamp(cell_idx(rs, self.addr_start, self.addr_unit).into(), cell_idx(re, self.addr_start, self.addr_unit).into(), addr_resol);
            let accesses = i64::from(r.nr_accesses);
            for &row_time in &rows {
                let (RowTime::Int(row, _) | RowTime::Float(row, _)) = row_time;
                let cells = &mut grid.heats[row * addr_resol..][..addr_resol];
                for col in cols.clone() {
                    let pa = grid.col_addr[col] as i64;
                    let size = re.min(pa + self.addr_unit) - rs.max(pa);
                    // `heat_val * account_time * account_sz`: an int product, or floats
                    // from the first float on.
                    let heat = match row_time {
                        RowTime::Int(_, time) => cell_heat(Heat::Count(accesses), time, size),
                        RowTime::Float(_, time) => accesses as f64 * time * size as f64,
                    };
                    let cell = &mut cells[col];
                    let prev = cell.get().unwrap_or(0.0);
                    *cell = Cell::of((heat + prev * self.space) / self.space);
                }
            }
        }
        true
    }

    /// damo's `add_heat` for every region of `snap`, which starts at `start`, if all its
    /// numbers are small ints; false (nothing added) if not.
    fn add_int_snapshot(&self, axis: &IntTime, grid: &mut Grid, start: Num, snap: &Snapshot, last_end: Option<u64>, intervals: Option<Intervals>) -> bool {
        let aggr_ns = intervals.map(|iv| i64::try_from(iv.aggr_us.saturating_mul(1000)).unwrap_or(SMALL));
        let as_small = |n: u64| i64::try_from(n).ok().filter(|&i| i < SMALL);
        let (Some(start), Some(end), Some(last_end)) = (small(start), as_small(snap.end_ns), last_end.map_or(Some(None), |l| as_small(l).map(Some))) else { return false };
        let fits = |r: &Region| as_small(r.end).is_some() && aggr_ns.is_none_or(|a| (age(r) as i64).checked_mul(a).is_some_and(|aged| aged < SMALL));
        if !snap.regions.iter().all(fits) {
            return false;
        }
        let clip = |t: i64| match last_end {
            Some(le) if t < le => le,
            _ => t,
        };
        let last_row = cell_idx(end, axis.start, axis.unit);
        let (time_resol, addr_resol) = (grid.time_resol, grid.addr_resol);
        for r in &snap.regions {
            let (rs, re) = (r.start as i64, r.end as i64);
            if re < self.addr_start || self.addr_end < rs {
                continue;
            }
            let aged = aggr_ns.map_or(start, |a| start - age(r) as i64 * a);
            let rows_start = clip(aged);
            // damo clips the observation start only when the record has intervals.
            let observe_start = if intervals.is_some() { rows_start } else { start };
            let rows = clamp(cell_idx(rows_start, axis.start, axis.unit).into(), last_row.into(), time_resol);
            let cols = clamp(cell_idx(rs, self.addr_start, self.addr_unit).into(), cell_idx(re, self.addr_start, self.addr_unit).into(), addr_resol);
            let heat = match intervals {
                Some(iv) => Heat::PerSec(f64::from(r.nr_accesses) / (iv.aggr_us as f64 / 1e6)),
                None => Heat::Count(i64::from(r.nr_accesses)),
            };
            for row in rows {
                let pt = grid.row_time[row] as i64;
                let time = end.min(pt + axis.unit) - observe_start.max(pt);
                let cells = &mut grid.heats[row * addr_resol..][..addr_resol];
                for col in cols.clone() {
                    let pa = grid.col_addr[col] as i64;
                    let size = re.min(pa + self.addr_unit) - rs.max(pa);
                    // damo keeps a cell's heat as a mean over its time × space.
                    let cell = &mut cells[col];
                    let prev = cell.get().unwrap_or(0.0);
                    *cell = Cell::of((cell_heat(heat, time, size) + prev * self.space) / self.space);
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heatmap::source::Source;
    use damo_record::{
        model::{Region, TargetRecord},
        synth::Rng,
    };

    /// Random snapshots of random regions (overlapping the map and not, of any age), with
    /// access counts below `accesses`.
    fn random_target(rng: &mut Rng, intervals: bool, base_addr: u64, base_ns: u64, accesses: u64) -> TargetRecord {
        let mut t = base_ns;
        let snapshots = (0..20)
            .map(|_| {
                let start_ns = t;
                t += 1 + rng.below(50_000_000);
                let mut addr = base_addr + rng.below(1 << 20);
                let regions = (0..30)
                    .map(|_| {
                        let start = addr;
                        addr += 1 + rng.below(1 << 18);
                        Region { start, end: addr, nr_accesses: rng.below(accesses) as u32, age: Some(rng.below(40) as u32) }
                    })
                    .collect();
                Snapshot { start_ns, end_ns: t, regions, total_bytes: None }
            })
            .collect();
        let iv = Intervals { sample_us: 5_000, aggr_us: 100_000, ops_update_us: 1_000_000 };
        TargetRecord { intervals: intervals.then_some(iv), snapshots, ..Default::default() }
    }

    #[test]
    fn integer_bucketing_equals_damo_arithmetic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut filled = 0;
        for case in 0..200 {
            let intervals = case % 2 == 0;
            // Small addresses and times, and large ones where floats lose integers.
            let (base_addr, base_ns) = if case % 3 == 0 { (0x1ff0_0000_0000_0000, 1_700_000_000_000_000_000) } else { (rng.below(1 << 40), rng.below(1 << 30)) };
            // Counts whose heat × time × bytes overflows an i64 take the wide path.
            let accesses = if case % 5 == 4 { u64::from(u32::MAX) } else { 30 };
            let target = random_target(&mut rng, intervals, base_addr, base_ns, accesses);
            let (first, last) = (target.snapshots[0].start_ns, target.snapshots[19].end_ns);
            let t0 = i128::from(first) + i128::from(rng.below(1 << 20)) - (1 << 19);
            let t1 = i128::from(last) - i128::from(rng.below(1 << 20));
            let a0 = i128::from(base_addr) + i128::from(rng.below(1 << 21)) - (1 << 20);
            let a1 = a0 + 1 + i128::from(rng.below(1 << 24));
            let resol = (1 + rng.below(40) as usize, 1 + rng.below(60) as usize);
            let Ok(empty) = Grid::new((Num::Int(t0), Num::Int(t1)), (Num::Int(a0), Num::Int(a1)), resol, "hz") else { continue };
            assert!(IntMap::of(&empty).is_some(), "case {case}: the integer path is taken");
            let src = Source::new(&target, false);
            filled += usize::from(fast_path_is_exact(empty, src, || format!("case {case}: {resol:?} cells of [{t0}, {t1}) x [{a0}, {a1})")));
        }
        assert!(filled > 150, "only {filled} maps got heat");
    }

    /// Fills `empty` from `src` by the fast path and by the exact one, asserts the two agree
    /// bit for bit (`what` says which case), and says whether any cell got heat.
    fn fast_path_is_exact(empty: Grid, src: Source, what: impl Fn() -> String) -> bool {
        let (mut fast, mut reference) = (empty.clone(), empty);
        fast.add_sources(std::slice::from_ref(&src));
        reference.add_sources_general(&[src]);
        let bits = |g: &Grid| g.heats.iter().map(|h| h.get().map(f64::to_bits)).collect::<Vec<_>>();
        assert_eq!(bits(&fast), bits(&reference), "{}", what());
        fast.heats.iter().any(|c| c.get().is_some())
    }

    #[test]
    fn float_time_rows_equal_damo_arithmetic() {
        let mut rng = Rng(0x51_7cc1_b727_220a);
        let mut filled = 0;
        for case in 0..200 {
            let (base_addr, base_ns) = if case % 3 == 0 { (0x1ff0_0000_0000_0000, 1_700_000_000_000_000_000) } else { (rng.below(1 << 40), rng.below(1 << 30)) };
            let target = random_target(&mut rng, false, base_addr, base_ns, 30);
            // A perf-script record: the first snapshot starts at a fractional ns, and so
            // does the map (damo's default range) or a float --time_range.
            let src = Source::new(&target, true);
            let first = src.first_start.expect("20 snapshots");
            let last = target.snapshots[19].end_ns as f64;
            let t0 = if case % 2 == 0 { first } else { first + rng.below(1 << 20) as f64 - (1 << 19) as f64 + 0.25 };
            let t1 = last - rng.below(1 << 20) as f64;
            let a0 = i128::from(base_addr) + i128::from(rng.below(1 << 21)) - (1 << 20);
            let a1 = a0 + 1 + i128::from(rng.below(1 << 24));
            let resol = (1 + rng.below(40) as usize, 1 + rng.below(60) as usize);
            let Ok(empty) = Grid::new((Num::Float(t0), Num::Float(t1)), (Num::Int(a0), Num::Int(a1)), resol, "samples") else { continue };
            assert!(IntMap::of(&empty).is_some(), "case {case}: the row path is taken");
            filled += usize::from(fast_path_is_exact(empty, src, || format!("case {case}: {resol:?} cells of [{t0}, {t1}) x [{a0}, {a1})")));
        }
        assert!(filled > 150, "only {filled} maps got heat");
    }

    #[test]
    fn float_division_truncates_like_integer_division_below_2_53() {
        let mut rng = Rng(42);
        for _ in 0..100_000 {
            let unit = (1 + (rng.below(EXACT - 1) >> rng.below(52))) as i64;
            let a = (rng.below(EXACT) >> rng.below(52)) as i64 * if rng.below(2) == 0 { 1 } else { -1 };
            assert_eq!(cell_idx(a, 0, unit), (a as f64 / unit as f64).trunc() as i64, "{a} / {unit}");
        }
    }
}
