//! `top --plain` (or stdout not a terminal): a compact text block per refresh, for logs and
//! scripts. The UI shows the same facts.

use std::fmt::Write as _;

use super::model::{size, LiveModel};

/// Functions listed per block.
const FUNCTIONS: usize = 5;

/// The block for the model's state now: a header, each target's hot bands and WSS, the hot
/// functions of the last seconds, and the newest phase marker.
pub fn block(model: &LiveModel) -> String {
    let mut out = String::new();
    let t = model.totals;
    let _ = writeln!(out, "top {:.1}s: {} snapshots, {} samples ({:.0}/s), {} lost", model.elapsed(model.last_ns), t.snapshots, t.samples, t.sample_rate, model.losses.total());
    for (pid, (index, intervals)) in &model.kdamonds {
        let iv = intervals.map_or_else(|| "intervals unknown".to_owned(), |i| format!("intervals {}us/{}us/{}us", i.sample_us, i.aggr_us, i.ops_update_us));
        let _ = writeln!(out, "kdamond {index} (pid {pid}): {iv}");
    }
    for (i, target) in model.targets.iter().enumerate() {
        let Some(last) = target.snapshots().last() else { continue };
        let wss = model.newest_wss(i);
        let _ = writeln!(out, "target {} of kdamond pid {}: {} regions, wss {}", target.key.target_id, target.key.kdamond_pid, last.regions.len(), size(wss));
        for (b, &(lo, hi)) in target.bands.iter().enumerate() {
            let rate = model.newest_band_rate(i, b);
            let _ = writeln!(out, "  band {lo:#x}-{hi:#x} ({}): access rate {:.0}%", size(hi - lo), rate * 100.0);
        }
        if let Some(m) = target.markers.last() {
            let top: Vec<String> = m.top.iter().map(|(f, share)| format!("{f} {:.0}%", share * 100.0)).collect();
            let _ = writeln!(out, "  phase since {:.1}s: {}", model.elapsed(m.start_ns), top.join(", "));
        }
    }
    for f in model.hot_functions(FUNCTIONS, None) {
        let _ = writeln!(out, "  {:5.1}%  {:<16} {:<24} {}", f.share * 100.0, f.comm, f.object, f.function);
    }
    out
}
