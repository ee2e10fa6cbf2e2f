//! Line charts of distributions (`report wss --plot`, `report nr_regions --plot`) as SVG,
//! in place of damo's gnuplot `with linespoints`.

use std::fmt::Write;

use crate::{plot_frame::Frame, xml::escape};

const FRAME: Frame = Frame { width: 640.0, height: 420.0, left: 90.0, top: 30.0, plot_w: 530.0, plot_h: 340.0 };
const COLORS: [&str; 6] = ["#9400d3", "#009e73", "#56b4e9", "#e69f00", "#f0e442", "#0072b2"];

/// One line: its legend and its (x, y) points.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// The x axis of a distribution chart: percentiles of sorted values, or time order.
pub fn distribution_x_label(sort: crate::dist::SortBy) -> &'static str {
    match sort {
        crate::dist::SortBy::Size => "percentile",
        crate::dist::SortBy::Time => "runtime (percent)",
    }
}

/// A distribution's line: its values at `percentiles` of a sorted list, or every value in
/// turn with `all` (the points `report wss`, `nr_regions` and `footprints` print).
pub fn distribution_series(label: String, values: &[u64], percentiles: &[i64], all: bool) -> Series {
    let points = if values.is_empty() {
        Vec::new()
    } else if all {
        values.iter().enumerate().map(|(i, &v)| (i as f64, v as f64)).collect()
    } else {
        percentiles.iter().map(|&p| (p as f64, values[crate::dist::percentile_index(p, values.len())] as f64)).collect()
    };
    Series { label, points }
}

pub fn svg(series: &[Series], x_label: &str, y_label: &str) -> String {
    let all = series.iter().flat_map(|s| &s.points);
    let (x_min, x_max) = bounds(all.clone().map(|p| p.0));
    let (_, y_max) = bounds(all.map(|p| p.1));
    let (y_min, y_max) = (0.0, if y_max > 0.0 { y_max * 1.05 } else { 1.0 });
    let x_span = if x_max > x_min { x_max - x_min } else { 1.0 };
    let f = FRAME;
    let px = |x: f64| f.left + (x - x_min) / x_span * f.plot_w;
    let py = |y: f64| f.bottom() - (y - y_min) / (y_max - y_min) * f.plot_h;

    let mut s = String::new();
    f.open(&mut s, "");
    f.border(&mut s);
    for i in 0..=5 {
        let fx = x_min + x_span * f64::from(i) / 5.0;
        let fy = y_min + (y_max - y_min) * f64::from(i) / 5.0;
        f.x_tick(&mut s, px(fx), &tick(fx));
        f.y_tick(&mut s, py(fy), &tick(fy));
    }
    f.titles(&mut s, x_label, y_label);
    for (i, line) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<String> = line.points.iter().map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
        let _ = writeln!(s, r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#, points.join(" "));
        for &(x, y) in &line.points {
            let _ = writeln!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="none" stroke="{color}"/>"#, px(x), py(y));
        }
        if series.len() > 1 {
            let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{color}">{}</text>"#, f.left + f.plot_w - 8.0, f.top + 16.0 * (i as f64 + 1.0), escape(&line.label));
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The smallest and largest value; (0, 1) when there are none.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

/// Short tick labels: 1.5G rather than 1610612736.
fn tick(v: f64) -> String {
    for (unit, scale) in [("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)] {
        if v.abs() >= scale {
            return format!("{:.3}{unit}", v / scale).replace(".000", "");
        }
    }
    format!("{v:.1}").trim_end_matches(".0").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_point_and_label() {
        let s = svg(&[Series { label: "t0".into(), points: vec![(0.0, 10.0), (50.0, 20.0), (100.0, 40.0)] }], "percentile", "wss <bytes>");
        assert_eq!(s.matches("<circle").count(), 3);
        assert!(s.contains("wss &lt;bytes&gt;"));
        assert!(crate::image::svg_to_png(&s).is_ok(), "the SVG must be valid");
    }

    #[test]
    fn empty_series_still_draw_axes() {
        let s = svg(&[], "x", "y");
        assert!(s.contains("<rect"));
    }
}
