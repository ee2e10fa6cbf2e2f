//! `report nr_regions`: the distribution of the number of regions per snapshot, as damo's
//! `damo_nr_regions.py` prints it.

use damo_record::model::Record;

use crate::dist;

/// damo skips the first 20 snapshots: DAMON has not adapted its regions yet.
const SKIPPED: usize = 20;

pub fn distributions(record: &Record, sort_by_size: bool) -> Vec<(u64, Vec<u64>)> {
    record
        .targets
        .iter()
        .map(|t| {
            let mut d: Vec<u64> = t.snapshots.iter().skip(SKIPPED).map(|s| s.regions.len() as u64).collect();
            if sort_by_size {
                d.sort_unstable();
            }
            (t.target_id, d)
        })
        .collect()
}

/// Errors where damo divides by zero: a target with no snapshot after the first 20.
pub fn report(record: &Record, percentiles: &[i64], sort_by_size: bool) -> Result<String, String> {
    let mut out = String::from("# <percentile> <# regions>\n");
    for (id, d) in distributions(record, sort_by_size) {
        if d.is_empty() {
            return Err(format!("target {id} has no snapshot after the first {SKIPPED}, which nr_regions skips"));
        }
        out.push_str(&format!("# target_id\t{id}\n"));
        let sum: u128 = d.iter().map(|&v| u128::from(v)).sum();
        out.push_str(&format!("# avr:\t{}\n", sum / d.len() as u128));
        for &p in percentiles {
            out.push_str(&format!("{p}\t{}\n", d[dist::percentile_index(p, d.len())]));
        }
    }
    Ok(out)
}
