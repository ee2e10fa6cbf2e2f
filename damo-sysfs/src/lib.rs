//! DAMON through sysfs: the kdamonds' admin tree (real, or a fake root in tests), which
//! kdamonds damo-trace started, parameter documents (damo's kdamonds JSON), writing and
//! reading them back, live snapshots, feature detection and the DAMON kernel modules
//! (DAMON_RECLAIM, DAMON_LRU_SORT, DAMON_STAT). Controls kdamonds like `damo
//! start/tune/stop/status` without ever touching one damo-trace did not start.
//!
//! Every reader of DAMON in damo-trace (`sysinfo`, `status`, `start/tune/stop`, `record`,
//! `record --observe`) goes through this crate; the binary keeps the command line.

pub mod apply;
pub mod features;
pub mod iomem;
pub mod modules;
pub mod ownership;
pub mod params;
pub mod read;
pub mod snapshot;
pub mod summary;
pub mod tree;

pub use tree::ADMIN;

use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use ownership::Ownership;
use params::{Document, Kdamond};
use tree::{read_u64, write, write_state, Tree};

/// One kdamond as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Present {
    pub index: usize,
    pub running: bool,
    pub pid: Option<u32>,
    pub ours: bool,
}

/// The kdamonds in sysfs and which are ours. Errors when sysfs cannot be read (not root) or
/// the ownership state is not to be trusted.
pub fn present(tree: &dyn Tree, owned: &Ownership) -> Result<Vec<Present>> {
    let n = tree::nr_kdamonds(tree)?;
    let entries = if n == 0 { Vec::new() } else { owned.entries()? };
    Ok((0..n)
        .map(|index| {
            let running = tree.read(&format!("kdamonds/{index}/state")).is_ok_and(|s| s.trim() == "on");
            let pid = read_u64(tree, &format!("kdamonds/{index}/pid")).and_then(|p| u32::try_from(p).ok()).filter(|&p| p > 0);
            Present { index, running, pid, ours: owned.is_ours(&entries, index, pid) }
        })
        .collect())
}

fn describe(kdamonds: &[&Present]) -> String {
    kdamonds.iter().map(|k| format!("kdamond {} ({}{})", k.index, k.pid.map_or("stopped".into(), |p| format!("pid {p}")), if k.ours { ", ours" } else { "" })).collect::<Vec<_>>().join(", ")
}

/// Starts the document's kdamonds; returns their indices and pids.
pub fn start(tree: &dyn Tree, owned: &Ownership, doc: &Document) -> Result<Vec<(usize, u32)>> {
    if !tree.exists("kdamonds/nr_kdamonds") {
        bail!("DAMON's sysfs interface is missing ({}); the kernel needs CONFIG_DAMON_SYSFS", tree::ADMIN);
    }
    if doc.kdamonds.is_empty() {
        bail!("nothing to start: the parameters have no kdamond");
    }
    let existing = present(tree, owned)?;
    let running: Vec<&Present> = existing.iter().filter(|k| k.running).collect();
    if !running.is_empty() {
        bail!(
            "cannot add kdamonds while {} run{}: the kernel refuses to change nr_kdamonds (EBUSY) while any kdamond runs. \
             damo-trace never stops kdamonds it did not start; `damo-trace record --observe` records running kdamonds without touching them{}",
            describe(&running),
            if running.len() == 1 { "s" } else { "" },
            if running.iter().all(|k| k.ours) { ", and `damo-trace stop` stops ours" } else { "" }
        );
    }
    let mine = owned.indices()?;
    let foreign: Vec<&Present> = existing.iter().filter(|k| !mine.contains(&k.index)).collect();
    if !foreign.is_empty() {
        bail!(
            "{} exist{} with parameters set by another tool: writing nr_kdamonds would erase them, so damo-trace leaves them alone. \
             Remove them with the tool that made them (e.g. `damo stop`) first",
            describe(&foreign),
            if foreign.len() == 1 { "s" } else { "" }
        );
    }
    let mut doc = doc.clone();
    iomem::fill_paddr_regions(&mut doc, || std::fs::read_to_string("/proc/iomem"))?;
    write(tree, "kdamonds/nr_kdamonds", &doc.kdamonds.len().to_string())?;
    let mut started = Vec::new();
    for (idx, k) in doc.kdamonds.iter().enumerate() {
        apply::write_kdamond(tree, idx, k)?;
        write_state(tree, idx, "on").with_context(|| format!("failed to start kdamond {idx}"))?;
        let pid = read_u64(tree, &format!("kdamonds/{idx}/pid"))
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p > 0)
            .with_context(|| format!("kdamond {idx} did not start (no pid); check the parameters and dmesg"))?;
        started.push((idx, pid));
        owned.replace(&started).context("failed to note the kdamonds damo-trace started")?;
    }
    Ok(started)
}

/// Stops our running kdamonds (all, or those at `only`); others are never touched. When
/// every kdamond left is ours and stopped, `nr_kdamonds` goes back to 0 as we found it.
pub fn stop(tree: &dyn Tree, owned: &Ownership, only: Option<&[usize]>) -> Result<Vec<usize>> {
    let existing = present(tree, owned)?;
    if let Some(only) = only {
        if let Some(&bad) = only.iter().find(|&&i| !existing.iter().any(|k| k.index == i && k.ours)) {
            bail!("kdamond {bad} was not started by damo-trace (or no longer runs); damo-trace stops only its own");
        }
    }
    let to_stop: Vec<&Present> = existing.iter().filter(|k| k.ours && k.running && only.is_none_or(|o| o.contains(&k.index))).collect();
    for k in &to_stop {
        write_state(tree, k.index, "off").with_context(|| format!("failed to stop kdamond {}", k.index))?;
        wait_off(tree, k.index)?;
    }
    let stopped: Vec<usize> = to_stop.iter().map(|k| k.index).collect();
    let remaining: Vec<(usize, u32)> = owned.entries()?.into_iter().filter(|(i, _)| !stopped.contains(i)).collect();
    owned.replace(&remaining).context("failed to update the kdamonds damo-trace owns")?;
    let mine: Vec<usize> = stopped.iter().copied().chain(remaining.iter().map(|(i, _)| *i)).collect();
    let after = present(tree, owned)?;
    if !after.is_empty() && after.iter().all(|k| !k.running && mine.contains(&k.index)) && remaining.is_empty() {
        write(tree, "kdamonds/nr_kdamonds", "0")?;
    }
    Ok(stopped)
}

fn wait_off(tree: &dyn Tree, idx: usize) -> Result<()> {
    for _ in 0..100 {
        if tree.read(&format!("kdamonds/{idx}/state")).is_ok_and(|s| s.trim() == "off") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("kdamond {idx} did not stop within 5 s")
}

/// Applies new parameters to one of our running kdamonds and commits them.
pub fn tune(tree: &dyn Tree, owned: &Ownership, idx: usize, k: &Kdamond) -> Result<()> {
    let existing = present(tree, owned)?;
    match existing.iter().find(|p| p.index == idx) {
        None => bail!("there is no kdamond {idx}"),
        Some(p) if !p.ours => bail!("kdamond {idx} was not started by damo-trace; damo-trace tunes only its own"),
        Some(p) if !p.running => bail!("kdamond {idx} is not running; use `damo-trace start`"),
        Some(_) => {}
    }
    apply::write_kdamond(tree, idx, k)?;
    write_state(tree, idx, "commit").with_context(|| format!("the kernel refused the new parameters of kdamond {idx}"))?;
    Ok(())
}

#[cfg(test)]
mod tests;
