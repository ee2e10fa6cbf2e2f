//! A live snapshot of a running kdamond's regions, as damo takes one for `report access`:
//! a DAMOS `stat` scheme (which changes nothing) reports the regions it tried, after
//! `update_schemes_tried_regions`. Only for our own kdamonds: both steps write to the kdamond
//! (a stat scheme added for the snapshot is removed after it).

use anyhow::{bail, Context as _, Result};
use damo_record::model::{Intervals, Record, Region, Snapshot, TargetRecord};

use crate::{
    apply,
    ownership::Ownership,
    params::{Document, Kdamond, Scheme},
    present, read,
    tree::{read_u64, write_state, Tree},
};

/// Regions of every target of context 0 of our kdamond `idx`.
pub fn take(tree: &dyn Tree, owned: &Ownership, idx: usize, now_ns: u64) -> Result<Record> {
    match present(tree, owned)?.into_iter().find(|p| p.index == idx) {
        Some(p) if p.ours && p.running => {}
        Some(p) if !p.ours => bail!("kdamond {idx} was not started by damo-trace: a live snapshot would write to it; `damo-trace record --observe` reads it without writing"),
        _ => bail!("kdamond {idx} is not running"),
    }
    let doc: Document = read::document(tree, owned)?;
    let mut kdamond = doc.kdamonds.into_iter().nth(idx).context("the kdamond vanished")?;
    let ctx = kdamond.contexts.first_mut().context("the kdamond has no context")?;
    for s in &mut ctx.schemes {
        s.stats = None;
    }
    if let Some(stat) = ctx.schemes.iter().position(is_plain_stat) {
        return tried_regions(tree, idx, &kdamond, stat, now_ns, false);
    }
    // Add a stat scheme that matches every region, commit it, and take it away again after
    // (as damo does): the kdamond is left with the parameters it was started or tuned with.
    let original = kdamond.clone();
    kdamond.contexts[0].schemes.push(plain_stat());
    apply::write_kdamond(tree, idx, &kdamond)?;
    write_state(tree, idx, "commit").context("failed to add a stat scheme for the snapshot")?;
    let added = kdamond.contexts[0].schemes.len() - 1;
    let taken = tried_regions(tree, idx, &kdamond, added, now_ns, true);
    // Leaving the kdamond as it was matters more than this snapshot, which can be taken
    // again: a failure here is the error, and says what is left behind.
    let left = || format!("failed to remove the stat scheme the snapshot added: kdamond {idx} keeps it as scheme {added}");
    apply::write_kdamond(tree, idx, &original).with_context(left)?;
    write_state(tree, idx, "commit").with_context(left)?;
    taken
}

/// The regions scheme `stat` of `kdamond` (our kdamond `idx`) tried; `committed`: the scheme
/// was just committed.
fn tried_regions(tree: &dyn Tree, idx: usize, kdamond: &Kdamond, stat: usize, now_ns: u64, committed: bool) -> Result<Record> {
    let ctx = &kdamond.contexts[0];
    let aggr = std::time::Duration::from_micros(ctx.intervals.aggr_us.clamp(10_000, 2_000_000));
    if committed {
        // The commit can restart the regions' counting: let a few aggregation intervals pass
        // so the snapshot shows accesses, not a fresh start.
        std::thread::sleep(aggr * 3);
    }
    let dir = format!("kdamonds/{idx}/contexts/0/schemes/{stat}/tried_regions");
    // A scheme reports regions once it has been applied: a new one after an aggregation
    // interval or so. Ask again until it has.
    let mut n = 0;
    for _ in 0..10 {
        write_state(tree, idx, "update_schemes_tried_regions").context("failed to ask for the tried regions")?;
        n = tree.read_dir_count(&dir);
        if n > 0 {
            break;
        }
        std::thread::sleep(aggr);
    }
    if n == 0 {
        bail!("kdamond {idx}'s stat scheme reported no regions (is its target alive?)");
    }
    let mut per_target: Vec<Vec<Region>> = vec![Vec::new(); ctx.targets.len().max(1)];
    for r in 0..n {
        let f = |name: &str| read_u64(tree, &format!("{dir}/{r}/{name}")).unwrap_or(0);
        let target = tree.read(&format!("{dir}/{r}/target_idx")).ok().and_then(|t| t.trim().parse::<usize>().ok()).unwrap_or(0);
        let region = Region { start: f("start"), end: f("end"), nr_accesses: f("nr_accesses") as u32, age: Some(f("age") as u32) };
        if let Some(list) = per_target.get_mut(target) {
            list.push(region);
        }
    }
    let intervals: Intervals = ctx.intervals.into();
    let targets = per_target
        .into_iter()
        .enumerate()
        .map(|(t, mut regions)| {
            regions.sort_unstable_by_key(|r| r.start);
            TargetRecord {
                kdamond_idx: idx as u32,
                context_idx: 0,
                scheme_idx: Some(stat as u32),
                target_id: t as u64,
                intervals: Some(intervals),
                snapshots: vec![Snapshot { start_ns: now_ns.saturating_sub(intervals.aggr_us * 1000), end_ns: now_ns, regions, total_bytes: None }],
            }
        })
        .collect();
    Ok(Record { targets, ..Default::default() })
}

fn plain_stat() -> Scheme {
    Scheme { action: "stat".into(), access_pattern: Default::default(), apply_interval_us: 0, quotas: Default::default(), watermarks: Default::default(), filters: Vec::new(), stats: None }
}

fn is_plain_stat(s: &Scheme) -> bool {
    s.action == "stat" && s.filters.is_empty() && s.quotas.time_ms == 0 && s.quotas.sz_bytes == 0 && s.access_pattern.sz_bytes.max == u64::MAX
}
