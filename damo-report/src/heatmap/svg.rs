//! The heatmap as an SVG image (damo draws it with gnuplot): time on the x axis, address on
//! the y axis, heat as color, with a color bar. PNG output rasterizes this SVG.

use std::fmt::Write;

use damo_record::units::{format_sz, format_time_ns};

use super::{grid::Grid, pynum::Num};
use crate::{colors, plot_frame::Frame};

const FRAME: Frame = Frame { width: 900.0, height: 600.0, left: 110.0, top: 30.0, plot_w: 600.0, plot_h: 480.0 };
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
    FRAME.open(&mut s, r#" shape-rendering="crispEdges""#);
    let range = grid.highest_lowest();
    let level = |h: f64| match range {
        Some((hi, lo)) if hi > lo => ((h - lo) / (hi - lo) * LEVELS).round(),
        _ => LEVELS,
    };
    let cell_w = FRAME.plot_w / grid.time_resol as f64;
    let cell_h = FRAME.plot_h / grid.addr_resol as f64;
    // One rect per run of same-colored cells along the address axis keeps the file small.
    for run in grid.runs(level) {
        let x = FRAME.left + run.time as f64 * cell_w;
        let y = FRAME.bottom() - (run.addr + run.len) as f64 * cell_h;
        let _ = writeln!(s, r#"<rect x="{x:.3}" y="{y:.3}" width="{:.3}" height="{:.3}" fill="{}"/>"#, cell_w + 0.05, run.len as f64 * cell_h + 0.05, colors::heat(run.level / LEVELS));
    }
    FRAME.border(&mut s);
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
        let x = FRAME.left + frac * FRAME.plot_w;
        let t = time_base + frac * time_len;
        FRAME.x_tick(s, x, &format_time_ns(t, false));
        let y = FRAME.bottom() - frac * FRAME.plot_h;
        let a = addr_base + frac * addr_len;
        let text = if labels.abs_addr && !labels.sizes { format!("{:#x}", a as u64) } else { format_sz(a, false) };
        FRAME.y_tick(s, y, &text);
    }
    let time_label = if labels.abs_time { "Time" } else { "Time (from the map's start)" };
    let addr_label = match (labels.sizes, labels.abs_addr) {
        (true, _) => "Size",
        (false, true) => "Address",
        (false, false) => "Address (from the map's start)",
    };
    FRAME.titles(s, time_label, addr_label);
}

fn color_bar(s: &mut String, grid: &Grid, range: Option<(f64, f64)>) {
    let (x, w) = (FRAME.left + FRAME.plot_w + 40.0, 20.0);
    const STEPS: usize = 64;
    for k in 0..STEPS {
        let frac = k as f64 / (STEPS - 1) as f64;
        let h = FRAME.plot_h / STEPS as f64;
        let y = FRAME.bottom() - (k + 1) as f64 * h;
        let _ = writeln!(s, r#"<rect x="{x}" y="{y:.3}" width="{w}" height="{:.3}" fill="{}"/>"#, h + 0.05, colors::heat(frac));
    }
    let _ = writeln!(s, r#"<rect x="{x}" y="{}" width="{w}" height="{}" fill="none" stroke="black"/>"#, FRAME.top, FRAME.plot_h);
    let (hi, lo) = range.unwrap_or((0.0, 0.0));
    for (v, y) in [(hi, FRAME.top + 4.0), (lo, FRAME.bottom() + 4.0)] {
        let _ = writeln!(s, r#"<text x="{}" y="{y}">{v:.3}</text>"#, x + w + 5.0);
    }
    let (lx, ly) = (x + w + 75.0, FRAME.top + FRAME.plot_h / 2.0);
    let _ = writeln!(s, r#"<text x="{lx}" y="{ly}" text-anchor="middle" transform="rotate(-90 {lx} {ly})">Access frequency ({})</text>"#, grid.heat_unit);
}
