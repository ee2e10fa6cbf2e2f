//! The heatmap as an SVG image (damo draws it with gnuplot): time on the x axis, address on
//! the y axis, heat as color, with a color bar. PNG output rasterizes this SVG.

use std::fmt::Write;

use damo_record::units::{format_sz, format_time_ns};

use super::{grid::Grid, pynum::Num};
use crate::{colors, xml::escape};

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 600.0;
const LEFT: f64 = 110.0;
const TOP: f64 = 30.0;
const PLOT_W: f64 = 600.0;
const PLOT_H: f64 = 480.0;
const LEVELS: f64 = 255.0;

/// What the axes show.
#[derive(Debug, Clone, Copy, Default)]
pub struct Labels {
    /// Absolute times and addresses instead of offsets from the map's start.
    pub abs_time: bool,
    pub abs_addr: bool,
    /// The address axis shows sizes (`--sort_temperature`).
    pub sizes: bool,
}

/// The image of one map.
pub fn render(grid: &Grid, labels: Labels) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, sans-serif" font-size="12" shape-rendering="crispEdges">"#
    );
    let _ = writeln!(s, r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#);
    let range = grid.highest_lowest();
    let level = |h: f64| match range {
        Some((hi, lo)) if hi > lo => ((h - lo) / (hi - lo) * LEVELS).round(),
        _ => LEVELS,
    };
    let cell_w = PLOT_W / grid.time_resol as f64;
    let cell_h = PLOT_H / grid.addr_resol as f64;
    // One rect per run of same-colored cells along the address axis keeps the file small.
    for run in grid.runs(level) {
        let x = LEFT + run.time as f64 * cell_w;
        let y = TOP + PLOT_H - (run.addr + run.len) as f64 * cell_h;
        let _ = writeln!(s, r#"<rect x="{x:.3}" y="{y:.3}" width="{:.3}" height="{:.3}" fill="{}"/>"#, cell_w + 0.05, run.len as f64 * cell_h + 0.05, colors::heat(run.level / LEVELS));
    }
    let _ = writeln!(s, r#"<rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{PLOT_H}" fill="none" stroke="black"/>"#);
    axes(&mut s, grid, labels);
    color_bar(&mut s, grid, range);
    s.push_str("</svg>\n");
    s
}

fn axes(s: &mut String, grid: &Grid, labels: Labels) {
    let time_len = grid.time_unit.times(Num::Int(grid.time_resol as i128)).f64();
    let addr_len = grid.addr_unit.times(Num::Int(grid.addr_resol as i128)).f64();
    let time_base = if labels.abs_time { grid.time_start.f64() } else { 0.0 };
    let addr_base = if labels.abs_addr { grid.addr_start.f64() } else { 0.0 };
    const TICKS: usize = 5;
    for k in 0..=TICKS {
        let frac = k as f64 / TICKS as f64;
        let x = LEFT + frac * PLOT_W;
        let t = time_base + frac * time_len;
        let _ = writeln!(s, r#"<line x1="{x:.2}" y1="{}" x2="{x:.2}" y2="{}" stroke="black"/>"#, TOP + PLOT_H, TOP + PLOT_H + 5.0);
        let _ = writeln!(s, r#"<text x="{x:.2}" y="{}" text-anchor="middle">{}</text>"#, TOP + PLOT_H + 20.0, escape(&format_time_ns(t, false)));
        let y = TOP + PLOT_H - frac * PLOT_H;
        let a = addr_base + frac * addr_len;
        let text = if labels.abs_addr && !labels.sizes { format!("{:#x}", a as u64) } else { format_sz(a, false) };
        let _ = writeln!(s, r#"<line x1="{}" y1="{y:.2}" x2="{LEFT}" y2="{y:.2}" stroke="black"/>"#, LEFT - 5.0);
        let _ = writeln!(s, r#"<text x="{}" y="{:.2}" text-anchor="end">{}</text>"#, LEFT - 8.0, y + 4.0, escape(&text));
    }
    let time_label = if labels.abs_time { "Time" } else { "Time (from the map's start)" };
    let _ = writeln!(s, r#"<text x="{}" y="{}" text-anchor="middle">{time_label}</text>"#, LEFT + PLOT_W / 2.0, TOP + PLOT_H + 45.0);
    let addr_label = match (labels.sizes, labels.abs_addr) {
        (true, _) => "Size",
        (false, true) => "Address",
        (false, false) => "Address (from the map's start)",
    };
    let (lx, ly) = (20.0, TOP + PLOT_H / 2.0);
    let _ = writeln!(s, r#"<text x="{lx}" y="{ly}" text-anchor="middle" transform="rotate(-90 {lx} {ly})">{addr_label}</text>"#);
}

fn color_bar(s: &mut String, grid: &Grid, range: Option<(f64, f64)>) {
    let (x, w) = (LEFT + PLOT_W + 40.0, 20.0);
    const STEPS: usize = 64;
    for k in 0..STEPS {
        let frac = k as f64 / (STEPS - 1) as f64;
        let h = PLOT_H / STEPS as f64;
        let y = TOP + PLOT_H - (k + 1) as f64 * h;
        let _ = writeln!(s, r#"<rect x="{x}" y="{y:.3}" width="{w}" height="{:.3}" fill="{}"/>"#, h + 0.05, colors::heat(frac));
    }
    let _ = writeln!(s, r#"<rect x="{x}" y="{TOP}" width="{w}" height="{PLOT_H}" fill="none" stroke="black"/>"#);
    let (hi, lo) = range.unwrap_or((0.0, 0.0));
    for (v, y) in [(hi, TOP + 4.0), (lo, TOP + PLOT_H + 4.0)] {
        let _ = writeln!(s, r#"<text x="{}" y="{y}">{v:.3}</text>"#, x + w + 5.0);
    }
    let (lx, ly) = (x + w + 75.0, TOP + PLOT_H / 2.0);
    let _ = writeln!(s, r#"<text x="{lx}" y="{ly}" text-anchor="middle" transform="rotate(-90 {lx} {ly})">Access frequency ({})</text>"#, grid.heat_unit);
}
