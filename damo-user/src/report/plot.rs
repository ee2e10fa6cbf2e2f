//! `--plot FILE` of the distribution reports: the table's points drawn as a chart.

use std::path::Path;

use anyhow::Result;
use damo_report::{chart, dist, image};

/// Draws each target's distribution: values at `percentiles`, or every value with `all`.
pub fn write_distribution(path: &Path, dists: &[(u64, Vec<u64>)], percentiles: &[i64], all: bool, x_label: &str, y_label: &str) -> Result<()> {
    let series: Vec<chart::Series> = dists
        .iter()
        .map(|(id, values)| {
            let points = if values.is_empty() {
                Vec::new()
            } else if all {
                values.iter().enumerate().map(|(i, &v)| (i as f64, v as f64)).collect()
            } else {
                percentiles.iter().map(|&p| (p as f64, values[dist::percentile_index(p, values.len())] as f64)).collect()
            };
            chart::Series { label: format!("target {id}"), points }
        })
        .collect();
    image::write_svg_as(path, &chart::svg(&series, x_label, y_label))?;
    Ok(())
}
