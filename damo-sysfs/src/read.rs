//! Reads kdamonds' parameters back from sysfs (`status`), in the document's units. Only
//! reads: stats of kdamonds that are not ours are as fresh as their owner last made them.

use crate::{
    ownership::Ownership,
    params::{AccessPattern, AddrRange, Context, Document, Filter, Intervals, Kdamond, MinMax, NrRegions, PercentRange, Quotas, Scheme, SchemeStats, Target, Watermarks, Weights},
    present,
    tree::{read_u64, Tree},
};

pub fn document(tree: &dyn Tree, owned: &Ownership) -> anyhow::Result<Document> {
    let kdamonds = present(tree, owned)?
        .into_iter()
        .map(|p| {
            let base = format!("kdamonds/{}/contexts", p.index);
            let n = read_u64(tree, &format!("{base}/nr_contexts")).unwrap_or(0);
            Kdamond { contexts: (0..n).map(|c| context(tree, &format!("{base}/{c}"))).collect(), state: Some(if p.running { "on" } else { "off" }.into()), pid: p.pid, ours: Some(p.ours) }
        })
        .collect();
    Ok(Document { kdamonds })
}

fn u(tree: &dyn Tree, path: String) -> u64 {
    read_u64(tree, &path).unwrap_or(0)
}

fn context(tree: &dyn Tree, dir: &str) -> Context {
    let attrs = format!("{dir}/monitoring_attrs");
    let intervals = Intervals {
        sample_us: u(tree, format!("{attrs}/intervals/sample_us")),
        aggr_us: u(tree, format!("{attrs}/intervals/aggr_us")),
        ops_update_us: u(tree, format!("{attrs}/intervals/update_us")),
    };
    let nr_regions = NrRegions { min: u(tree, format!("{attrs}/nr_regions/min")), max: u(tree, format!("{attrs}/nr_regions/max")) };
    let targets = (0..u(tree, format!("{dir}/targets/nr_targets")))
        .map(|t| {
            let tdir = format!("{dir}/targets/{t}");
            let pid = read_u64(tree, &format!("{tdir}/pid_target")).and_then(|p| u32::try_from(p).ok()).filter(|&p| p > 0);
            let regions = (0..u(tree, format!("{tdir}/regions/nr_regions")))
                .map(|r| AddrRange { start: u(tree, format!("{tdir}/regions/{r}/start")), end: u(tree, format!("{tdir}/regions/{r}/end")) })
                .collect();
            Target { pid, regions }
        })
        .collect();
    let schemes = (0..u(tree, format!("{dir}/schemes/nr_schemes"))).map(|s| scheme(tree, &format!("{dir}/schemes/{s}"), intervals)).collect();
    Context { ops: tree.read(&format!("{dir}/operations")).unwrap_or_default(), targets, intervals, nr_regions, schemes }
}

fn scheme(tree: &dyn Tree, dir: &str, i: Intervals) -> Scheme {
    let ap = format!("{dir}/access_pattern");
    let max_nr = i.aggr_us.checked_div(i.sample_us).unwrap_or(0).max(1) as f64;
    let percent = |samples: u64| if samples >= u64::from(u32::MAX) { u64::MAX as f64 } else { samples as f64 * 100.0 / max_nr };
    let us = |aggrs: u64| if aggrs >= u64::from(u32::MAX) { u64::MAX } else { aggrs.saturating_mul(i.aggr_us) };
    let access_pattern = AccessPattern {
        sz_bytes: MinMax { min: u(tree, format!("{ap}/sz/min")), max: u(tree, format!("{ap}/sz/max")) },
        nr_accesses: PercentRange { min: percent(u(tree, format!("{ap}/nr_accesses/min"))), max: percent(u(tree, format!("{ap}/nr_accesses/max"))) },
        age: MinMax { min: us(u(tree, format!("{ap}/age/min"))), max: us(u(tree, format!("{ap}/age/max"))) },
    };
    let quotas = Quotas {
        time_ms: u(tree, format!("{dir}/quotas/ms")),
        sz_bytes: u(tree, format!("{dir}/quotas/bytes")),
        reset_interval_ms: u(tree, format!("{dir}/quotas/reset_interval_ms")),
        weights: Weights {
            sz_permil: u(tree, format!("{dir}/quotas/weights/sz_permil")),
            nr_accesses_permil: u(tree, format!("{dir}/quotas/weights/nr_accesses_permil")),
            age_permil: u(tree, format!("{dir}/quotas/weights/age_permil")),
        },
    };
    let watermarks = Watermarks {
        metric: tree.read(&format!("{dir}/watermarks/metric")).unwrap_or_else(|_| "none".into()),
        interval_us: u(tree, format!("{dir}/watermarks/interval_us")),
        high_permil: u(tree, format!("{dir}/watermarks/high")),
        mid_permil: u(tree, format!("{dir}/watermarks/mid")),
        low_permil: u(tree, format!("{dir}/watermarks/low")),
    };
    let filters = (0..u(tree, format!("{dir}/filters/nr_filters")))
        .map(|f| {
            let fdir = format!("{dir}/filters/{f}");
            let flag = |name: &str| tree.read(&format!("{fdir}/{name}")).is_ok_and(|v| v.trim() == "Y");
            let kind = tree.read(&format!("{fdir}/type")).unwrap_or_default();
            Filter {
                matching: flag("matching"),
                allow: flag("allow"),
                memcg_path: (kind == "memcg").then(|| tree.read(&format!("{fdir}/memcg_path")).unwrap_or_default()),
                addr_range: (kind == "addr").then(|| AddrRange { start: u(tree, format!("{fdir}/addr_start")), end: u(tree, format!("{fdir}/addr_end")) }),
                target_idx: (kind == "target").then(|| u(tree, format!("{fdir}/damon_target_idx")) as u32),
                hugepage_size: (kind == "hugepage_size").then(|| [u(tree, format!("{fdir}/min")), u(tree, format!("{fdir}/max"))]),
                kind,
            }
        })
        .collect();
    let stats = SchemeStats {
        nr_tried: u(tree, format!("{dir}/stats/nr_tried")),
        sz_tried: u(tree, format!("{dir}/stats/sz_tried")),
        nr_applied: u(tree, format!("{dir}/stats/nr_applied")),
        sz_applied: u(tree, format!("{dir}/stats/sz_applied")),
        qt_exceeds: u(tree, format!("{dir}/stats/qt_exceeds")),
    };
    Scheme {
        action: tree.read(&format!("{dir}/action")).unwrap_or_default(),
        access_pattern,
        apply_interval_us: u(tree, format!("{dir}/apply_interval_us")),
        quotas,
        watermarks,
        filters,
        stats: Some(stats),
    }
}
