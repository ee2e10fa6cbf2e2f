//! A short view of every kdamond in sysfs (state, pid, operation sets, intervals, target
//! pids), for `sysinfo` and `record --observe`. Unlike [`crate::present`] it lists the
//! kdamonds even when damo-trace's ownership state is not to be trusted: the caller passes
//! the entries it could read (none, then).

use anyhow::Result;
use serde::Serialize;

use crate::{
    ownership,
    tree::{nr_kdamonds, read_u64, Tree},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kdamond {
    pub index: usize,
    pub state: String,
    pub pid: Option<u32>,
    pub operations: Vec<String>,
    /// The first context's sample/aggr/update intervals in µs.
    pub intervals_us: Option<[u64; 3]>,
    /// Whether damo-trace started it; only those are ever written to.
    pub ours: bool,
    /// The processes its contexts monitor (`pid_target` of vaddr/fvaddr targets).
    pub target_pids: Vec<u32>,
}

impl Kdamond {
    /// The first context's intervals, as a record keeps them.
    pub fn intervals(&self) -> Option<damo_record::model::Intervals> {
        self.intervals_us.map(|[sample_us, aggr_us, ops_update_us]| damo_record::model::Intervals { sample_us, aggr_us, ops_update_us })
    }
}

/// Every kdamond of `tree`, with whether `owned` (index and pid) claims it. Errors when
/// sysfs cannot be read (permission denied says so).
pub fn list(tree: &dyn Tree, owned: &[(usize, u32)]) -> Result<Vec<Kdamond>> {
    let count = nr_kdamonds(tree)?;
    Ok((0..count).map(|index| one(tree, index, owned)).collect())
}

fn one(tree: &dyn Tree, index: usize, owned: &[(usize, u32)]) -> Kdamond {
    let dir = format!("kdamonds/{index}");
    let positive_pid = |path: &str| read_u64(tree, path).and_then(|p| u32::try_from(p).ok()).filter(|&p| p > 0);
    let pid = positive_pid(&format!("{dir}/pid"));
    let nr_contexts = read_u64(tree, &format!("{dir}/contexts/nr_contexts")).unwrap_or(0);
    let operations = (0..nr_contexts).filter_map(|c| tree.read(&format!("{dir}/contexts/{c}/operations")).ok()).collect();
    let interval = |name: &str| read_u64(tree, &format!("{dir}/contexts/0/monitoring_attrs/intervals/{name}"));
    let intervals_us = match (interval("sample_us"), interval("aggr_us"), interval("update_us")) {
        (Some(s), Some(a), Some(u)) => Some([s, a, u]),
        _ => None,
    };
    let target_pids = (0..nr_contexts)
        .flat_map(|c| {
            let targets = format!("{dir}/contexts/{c}/targets");
            let n = read_u64(tree, &format!("{targets}/nr_targets")).unwrap_or(0);
            (0..n).filter_map(move |t| positive_pid(&format!("{targets}/{t}/pid_target")))
        })
        .collect();
    Kdamond {
        index,
        state: tree.read(&format!("{dir}/state")).map_or_else(|_| "unknown".into(), |s| s.trim().to_owned()),
        pid,
        operations,
        intervals_us,
        ours: ownership::claims(owned, index, pid),
        target_pids,
    }
}
