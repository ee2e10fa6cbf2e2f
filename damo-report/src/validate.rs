//! `validate`: is a record what DAMON could have produced with the given parameters?
//!
//! damo's checks, in damo's order and words: each snapshot's aggregation interval and
//! region count within a range (a percentage of snapshots may miss it, `allow_error`),
//! every region non-empty, inside the given boundaries, with an access count within a range.
//! Added here: regions in address order without overlaps and snapshots in time order (DAMON
//! guarantees both, and every report assumes them). The native format's checksums and
//! chunk framing are checked by its reader; a damaged record is reported by the caller.

use damo_record::model::Record;

/// What to accept; damo's defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Aggregation interval, µs.
    pub aggr_us: [u64; 2],
    pub nr_regions: [u64; 2],
    /// Sampled accesses per aggregation interval.
    pub nr_accesses: [u64; 2],
    /// Percent of a target's snapshots whose interval or region count may be out of range.
    pub allow_error_percent: f64,
    /// `[start, end)` ranges every region must lie in; none: anywhere.
    pub boundaries: Vec<[u64; 2]>,
}

impl Default for Limits {
    fn default() -> Self {
        Self { aggr_us: [75_000, 125_000], nr_regions: [3, 1200], nr_accesses: [0, 24], allow_error_percent: 2.0, boundaries: Vec::new() }
    }
}

/// `Ok` when valid; else the first problem, in damo's words where damo has them.
pub fn validate(record: &Record, limits: &Limits) -> Result<(), String> {
    if record.targets.is_empty() {
        return Err("target snapshots is zero".into());
    }
    for target in &record.targets {
        let allowed = target.snapshots.len() as f64 * limits.allow_error_percent / 100.0;
        let (mut interval_errors, mut nr_regions_errors) = (0u64, 0u64);
        let mut previous_end = 0;
        for snapshot in &target.snapshots {
            // damo divides ns by 1000 in floating point and prints the truncated value.
            let aggr_us = snapshot.end_ns.saturating_sub(snapshot.start_ns) as f64 / 1000.0;
            interval_errors += out_of_range(aggr_us, limits.aggr_us, "aggregate interval", (interval_errors as f64) < allowed)?;
            nr_regions_errors += out_of_range(snapshot.regions.len() as f64, limits.nr_regions, "nr_regions", (nr_regions_errors as f64) < allowed)?;
            if snapshot.end_ns < snapshot.start_ns || snapshot.start_ns < previous_end {
                return Err(format!("snapshot [{}, {}) ns ends before it starts or starts before the previous one ended ({previous_end} ns)", snapshot.start_ns, snapshot.end_ns));
            }
            previous_end = snapshot.end_ns;
            let mut previous_region_end = 0;
            for region in &snapshot.regions {
                if region.start >= region.end {
                    return Err(format!("wrong region [{}, {})", region.start, region.end));
                }
                if !limits.boundaries.is_empty() && !limits.boundaries.iter().any(|b| region.start >= b[0] && region.end <= b[1]) {
                    return Err(format!("region {}-{} out of the boundary", region.start, region.end));
                }
                out_of_range(f64::from(region.nr_accesses), limits.nr_accesses, "nr_accesses", false)?;
                if region.start < previous_region_end {
                    return Err(format!("region {}-{} overlaps or precedes the one before it (ending at {previous_region_end})", region.start, region.end));
                }
                previous_region_end = region.end;
            }
        }
    }
    Ok(())
}

/// 0 in range, 1 out of range but still allowed, an error otherwise (damo's
/// `assert_value_in_range`).
fn out_of_range(value: f64, [min, max]: [u64; 2], name: &str, error_allowed: bool) -> Result<u64, String> {
    if min as f64 <= value && value <= max as f64 {
        Ok(0)
    } else if error_allowed {
        Ok(1)
    } else {
        Err(format!("invalid: expect {min}<={name}<={max} but {}", value.trunc()))
    }
}

#[cfg(test)]
mod tests {
    use damo_record::model::{Region, Snapshot, TargetRecord};

    use super::*;

    fn record(snapshots: Vec<Snapshot>) -> Record {
        Record { targets: vec![TargetRecord { snapshots, ..Default::default() }], ..Default::default() }
    }

    fn snapshot(start_ms: u64, regions: &[(u64, u64, u32)]) -> Snapshot {
        let regions = regions.iter().map(|&(start, end, nr_accesses)| Region { start, end, nr_accesses, age: None }).collect();
        Snapshot { start_ns: start_ms * 1_000_000, end_ns: (start_ms + 100) * 1_000_000, regions, ..Default::default() }
    }

    const THREE: [(u64, u64, u32); 3] = [(0, 10, 1), (10, 20, 2), (20, 30, 3)];

    #[test]
    fn a_record_within_the_limits_is_valid() {
        assert_eq!(validate(&record(vec![snapshot(0, &THREE), snapshot(100, &THREE)]), &Limits::default()), Ok(()));
    }

    #[test]
    fn each_check_names_what_failed() {
        let limits = Limits::default();
        assert_eq!(validate(&Record::default(), &limits).unwrap_err(), "target snapshots is zero");
        let hot = [(0, 10, 1), (10, 20, 25), (20, 30, 3)];
        assert_eq!(validate(&record(vec![snapshot(0, &hot)]), &limits).unwrap_err(), "invalid: expect 0<=nr_accesses<=24 but 25");
        let empty = [(0, 10, 1), (10, 10, 2), (20, 30, 3)];
        assert_eq!(validate(&record(vec![snapshot(0, &empty)]), &limits).unwrap_err(), "wrong region [10, 10)");
        let overlapping = [(0, 10, 1), (5, 20, 2), (20, 30, 3)];
        assert!(validate(&record(vec![snapshot(0, &overlapping)]), &limits).unwrap_err().contains("overlaps"));
        let bounded = Limits { boundaries: vec![[0, 25]], ..Limits::default() };
        assert_eq!(validate(&record(vec![snapshot(0, &THREE)]), &bounded).unwrap_err(), "region 20-30 out of the boundary");
        let backwards = record(vec![snapshot(100, &THREE), snapshot(0, &THREE)]);
        assert!(validate(&backwards, &limits).unwrap_err().contains("starts before the previous one ended"));
    }

    #[test]
    fn allow_error_tolerates_that_share_of_snapshots_per_target() {
        // 2 regions is below damo's minimum of 3: one snapshot of 50 may miss it at 2 %.
        let two = [(0, 10, 1), (10, 20, 2)];
        let mut snapshots: Vec<Snapshot> = (0..50).map(|i| snapshot(i * 100, &THREE)).collect();
        snapshots[7] = snapshot(700, &two);
        assert_eq!(validate(&record(snapshots.clone()), &Limits::default()), Ok(()));
        snapshots[9] = snapshot(900, &two);
        assert_eq!(validate(&record(snapshots), &Limits::default()).unwrap_err(), "invalid: expect 3<=nr_regions<=1200 but 2");
    }
}
