//! Writes a kdamond's parameters into its sysfs directory, in the order the kernel's
//! documentation gives (counts before the directories they create, state last), converting
//! damo's units into DAMON's: access rates into samples, ages into aggregation intervals.

use crate::{
    params::{Context, Filter, Kdamond, Scheme},
    tree::{write, Tree, WriteError},
};

/// A parameter this kernel has no file for.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("this kernel's DAMON has no {feature} (no {path}); leave the option out or use a newer kernel")]
    Unsupported { feature: &'static str, path: String },
    #[error("{0}")]
    Invalid(String),
}

/// Writes everything below `kdamonds/<idx>` except `state`.
pub fn write_kdamond(tree: &dyn Tree, idx: usize, k: &Kdamond) -> Result<(), ApplyError> {
    let base = format!("kdamonds/{idx}/contexts");
    write(tree, &format!("{base}/nr_contexts"), &k.contexts.len().to_string())?;
    for (c, ctx) in k.contexts.iter().enumerate() {
        write_context(tree, &format!("{base}/{c}"), ctx)?;
    }
    Ok(())
}

fn write_context(tree: &dyn Tree, dir: &str, ctx: &Context) -> Result<(), ApplyError> {
    validate(ctx)?;
    write(tree, &format!("{dir}/operations"), &ctx.ops)?;
    let attrs = format!("{dir}/monitoring_attrs");
    let i = ctx.intervals;
    write(tree, &format!("{attrs}/intervals/sample_us"), &i.sample_us.to_string())?;
    write(tree, &format!("{attrs}/intervals/aggr_us"), &i.aggr_us.to_string())?;
    write(tree, &format!("{attrs}/intervals/update_us"), &i.ops_update_us.to_string())?;
    write(tree, &format!("{attrs}/nr_regions/min"), &ctx.nr_regions.min.to_string())?;
    write(tree, &format!("{attrs}/nr_regions/max"), &ctx.nr_regions.max.to_string())?;
    write(tree, &format!("{dir}/targets/nr_targets"), &ctx.targets.len().to_string())?;
    for (t, target) in ctx.targets.iter().enumerate() {
        let tdir = format!("{dir}/targets/{t}");
        if let Some(pid) = target.pid {
            write(tree, &format!("{tdir}/pid_target"), &pid.to_string())?;
        }
        write(tree, &format!("{tdir}/regions/nr_regions"), &target.regions.len().to_string())?;
        for (r, range) in target.regions.iter().enumerate() {
            write(tree, &format!("{tdir}/regions/{r}/start"), &range.start.to_string())?;
            write(tree, &format!("{tdir}/regions/{r}/end"), &range.end.to_string())?;
        }
    }
    write(tree, &format!("{dir}/schemes/nr_schemes"), &ctx.schemes.len().to_string())?;
    let max_nr_accesses = i.aggr_us.checked_div(i.sample_us).unwrap_or(0);
    for (s, scheme) in ctx.schemes.iter().enumerate() {
        write_scheme(tree, &format!("{dir}/schemes/{s}"), scheme, max_nr_accesses, i.aggr_us)?;
    }
    Ok(())
}

fn validate(ctx: &Context) -> Result<(), ApplyError> {
    let invalid = |m: String| Err(ApplyError::Invalid(m));
    let i = ctx.intervals;
    if i.sample_us == 0 || i.aggr_us < i.sample_us {
        return invalid(format!("the aggregation interval ({} µs) must be at least the sampling interval ({} µs), which must not be 0", i.aggr_us, i.sample_us));
    }
    if ctx.nr_regions.min < 3 || ctx.nr_regions.min > ctx.nr_regions.max {
        return invalid(format!("nr_regions must satisfy 3 ≤ min ≤ max (got {} and {})", ctx.nr_regions.min, ctx.nr_regions.max));
    }
    for t in &ctx.targets {
        if let Some(r) = t.regions.iter().find(|r| r.start >= r.end) {
            return invalid(format!("region {}-{} is empty or reversed", r.start, r.end));
        }
    }
    Ok(())
}

/// `value` in DAMON's u32 fields, saturating ("max" means the most it can hold).
fn clamp32(v: f64) -> String {
    (v.max(0.0).min(f64::from(u32::MAX)) as u32).to_string()
}

fn write_scheme(tree: &dyn Tree, dir: &str, s: &Scheme, max_nr_accesses: u64, aggr_us: u64) -> Result<(), ApplyError> {
    write(tree, &format!("{dir}/action"), &s.action)?;
    let p = s.access_pattern;
    let ap = format!("{dir}/access_pattern");
    write(tree, &format!("{ap}/sz/min"), &p.sz_bytes.min.to_string())?;
    write(tree, &format!("{ap}/sz/max"), &p.sz_bytes.max.to_string())?;
    // damo's conversion: int(percent * max_nr_accesses / 100).
    let samples = |pct: f64| clamp32((pct * max_nr_accesses as f64 / 100.0).trunc());
    write(tree, &format!("{ap}/nr_accesses/min"), &samples(p.nr_accesses.min))?;
    write(tree, &format!("{ap}/nr_accesses/max"), &samples(p.nr_accesses.max))?;
    let aggrs = |us: u64| clamp32((us / aggr_us.max(1)) as f64);
    write(tree, &format!("{ap}/age/min"), &aggrs(p.age.min))?;
    write(tree, &format!("{ap}/age/max"), &aggrs(p.age.max))?;
    let apply_interval = format!("{dir}/apply_interval_us");
    if tree.exists(&apply_interval) {
        write(tree, &apply_interval, &s.apply_interval_us.to_string())?;
    } else if s.apply_interval_us != 0 {
        return Err(ApplyError::Unsupported { feature: "per-scheme apply interval", path: apply_interval });
    }
    let q = s.quotas;
    write(tree, &format!("{dir}/quotas/ms"), &q.time_ms.to_string())?;
    write(tree, &format!("{dir}/quotas/bytes"), &q.sz_bytes.to_string())?;
    write(tree, &format!("{dir}/quotas/reset_interval_ms"), &q.reset_interval_ms.to_string())?;
    write(tree, &format!("{dir}/quotas/weights/sz_permil"), &q.weights.sz_permil.to_string())?;
    write(tree, &format!("{dir}/quotas/weights/nr_accesses_permil"), &q.weights.nr_accesses_permil.to_string())?;
    write(tree, &format!("{dir}/quotas/weights/age_permil"), &q.weights.age_permil.to_string())?;
    let w = &s.watermarks;
    write(tree, &format!("{dir}/watermarks/metric"), &w.metric)?;
    write(tree, &format!("{dir}/watermarks/interval_us"), &w.interval_us.to_string())?;
    write(tree, &format!("{dir}/watermarks/high"), &w.high_permil.to_string())?;
    write(tree, &format!("{dir}/watermarks/mid"), &w.mid_permil.to_string())?;
    write(tree, &format!("{dir}/watermarks/low"), &w.low_permil.to_string())?;
    write(tree, &format!("{dir}/filters/nr_filters"), &s.filters.len().to_string())?;
    for (f, filter) in s.filters.iter().enumerate() {
        write_filter(tree, &format!("{dir}/filters/{f}"), filter)?;
    }
    Ok(())
}

fn write_filter(tree: &dyn Tree, dir: &str, f: &Filter) -> Result<(), ApplyError> {
    write(tree, &format!("{dir}/type"), &f.kind)?;
    match f.kind.as_str() {
        "memcg" => {
            let path = f.memcg_path.as_deref().ok_or_else(|| ApplyError::Invalid("a memcg filter needs a memcg path".into()))?;
            write(tree, &format!("{dir}/memcg_path"), path)?;
        }
        "addr" => {
            let r = f.addr_range.ok_or_else(|| ApplyError::Invalid("an addr filter needs an address range".into()))?;
            write(tree, &format!("{dir}/addr_start"), &r.start.to_string())?;
            write(tree, &format!("{dir}/addr_end"), &r.end.to_string())?;
        }
        "hugepage_size" => {
            let [min, max] = f.hugepage_size.ok_or_else(|| ApplyError::Invalid("a hugepage_size filter needs a size range".into()))?;
            write(tree, &format!("{dir}/min"), &min.to_string())?;
            write(tree, &format!("{dir}/max"), &max.to_string())?;
        }
        "target" => {
            let idx = f.target_idx.ok_or_else(|| ApplyError::Invalid("a target filter needs a target index".into()))?;
            write(tree, &format!("{dir}/damon_target_idx"), &idx.to_string())?;
        }
        _ => {}
    }
    write(tree, &format!("{dir}/matching"), if f.matching { "Y" } else { "N" })?;
    let allow = format!("{dir}/allow");
    if tree.exists(&allow) {
        write(tree, &allow, if f.allow { "Y" } else { "N" })?;
    } else if f.allow {
        return Err(ApplyError::Unsupported { feature: "allow-filters (6.14+)", path: allow });
    }
    Ok(())
}
