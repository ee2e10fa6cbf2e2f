//! The page as one SVG: three panels stacked on one time axis, phase boundaries drawn through
//! all of them. Elements tests look for carry ids (`heatmap-panel`, `wss-panel`,
//! `timeline-panel`) and classes (`phase-boundary`, `phase-label`, `function-label`).

use std::fmt::Write;

use super::{
    escape, size,
    text::{char_px, fit, fit_function},
    Holistic, PhaseMark, Timeline,
};
use crate::{
    colors,
    heatmap::{pynum::Num, Grid},
};

pub const WIDTH: f64 = 1200.0;
/// Room for function names and addresses.
pub const LEFT: f64 = 230.0;
/// Room for the color bar and the share column.
const RIGHT: f64 = 100.0;
pub const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const FONT: f64 = 12.0;
const SMALL: f64 = 11.0;
const STRIP_TOP: f64 = 40.0;
const STRIP_H: f64 = 26.0;
/// A panel's title sits in this space above it.
const TITLE_H: f64 = 30.0;
pub const HEAT_H: f64 = 300.0;
const BAND_GAP: f64 = 8.0;
const WSS_H: f64 = 130.0;
const ROW_H: f64 = 22.0;
const NO_SAMPLES_H: f64 = 50.0;
/// A line of the legend of phase labels cut to their span.
const LEGEND_H: f64 = 16.0;
/// Heat levels: fewer than 256 makes longer runs of one color, so smaller files.
const LEVELS: f64 = 63.0;
/// Categorical colors for the function rows (Tableau 10).
const COLORS: [&str; 10] = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const OTHER: &str = "(other functions)";

/// Where the panels are, top to bottom.
struct Layout {
    heat_top: f64,
    wss_top: f64,
    lanes_top: f64,
    lanes_h: f64,
    height: f64,
}

impl Layout {
    fn new(h: &Holistic) -> Self {
        let heat_top = STRIP_TOP + STRIP_H + TITLE_H;
        let wss_top = heat_top + HEAT_H + TITLE_H + 8.0;
        let lanes_top = wss_top + WSS_H + TITLE_H + 8.0;
        let lanes_h = match &h.timeline {
            Some(t) if t.total() > 0 => lane_count(t) as f64 * ROW_H,
            _ => NO_SAMPLES_H,
        };
        let legend_h = legend(h).len() as f64 * LEGEND_H;
        Layout { heat_top, wss_top, lanes_top, lanes_h, height: lanes_top + lanes_h + 56.0 + legend_h }
    }

    fn bottom(&self) -> f64 {
        self.lanes_top + self.lanes_h
    }
}

fn lane_count(t: &Timeline) -> usize {
    t.rows.len() + usize::from(t.other().iter().any(|&o| o > 0))
}

/// The x of a time (ns) on the shared axis, clamped to the plot.
pub fn x_of(time: (f64, f64), ns: f64) -> f64 {
    let span = (time.1 - time.0).max(1.0);
    LEFT + ((ns - time.0) / span).clamp(0.0, 1.0) * PLOT_W
}

/// A function's name with its full form as a tooltip when it had to be cut.
fn label(s: &mut String, attrs: &str, full: &str, px: f64, font: f64) {
    let shown = fit_function(full, px, char_px(font, false));
    let tip = if shown == full { String::new() } else { format!("<title>{}</title>", escape(full)) };
    let _ = writeln!(s, r#"<text {attrs} font-size="{font}">{tip}{}</text>"#, escape(&shown));
}

pub fn render(h: &Holistic) -> String {
    let l = Layout::new(h);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{:.0}" viewBox="0 0 {WIDTH} {:.0}" font-family="DejaVu Sans, sans-serif" font-size="{FONT}">"#,
        l.height, l.height
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    header(&mut s, h);
    phase_strip(&mut s, h);
    heatmap_panel(&mut s, h, &l);
    wss_panel(&mut s, h, &l);
    timeline_panel(&mut s, h, &l);
    time_axis(&mut s, h, &l);
    legend_lines(&mut s, h, &l);
    boundaries(&mut s, h, &l);
    s.push_str("</svg>\n");
    s
}

fn header(s: &mut String, h: &Holistic) {
    let samples = h.timeline.as_ref().map_or(0, Timeline::total);
    let summary = format!("{} snapshots · {samples} stack samples · {} phases", h.wss.len(), h.phases.len());
    let _ = writeln!(s, r#"<text x="{LEFT}" y="26" font-size="16" font-weight="bold">{}</text>"#, escape(&fit(&format!("damo-trace: {}", h.title), 520.0, char_px(16.0, true))));
    let _ = writeln!(s, r##"<text x="{}" y="26" text-anchor="end" fill="#444">{}</text>"##, LEFT + PLOT_W, escape(&summary));
}

/// Phase names above the panels, every other one on a light tint.
fn phase_strip(s: &mut String, h: &Holistic) {
    for (i, p) in h.phases.iter().enumerate() {
        let (x0, x1) = (x_of(h.time, p.phase.start_ns as f64), x_of(h.time, p.phase.end_ns as f64));
        if i % 2 == 0 {
            let _ = writeln!(s, r##"<rect x="{x0:.1}" y="{STRIP_TOP:.1}" width="{:.1}" height="{STRIP_H:.1}" fill="#e8eef7"/>"##, x1 - x0);
        }
        let full = full_label(i + 1, p);
        let shown = phase_label(i + 1, p.label.as_deref(), x1 - x0 - 4.0);
        let secs = |ns: u64| (ns as f64 - h.time.0) / 1e9;
        let tip = format!("{full} ({:.2}–{:.2} s, mean WSS {})", secs(p.phase.start_ns), secs(p.phase.end_ns), size(p.phase.mean_wss as f64));
        let _ = writeln!(
            s,
            r#"<text class="phase-label" x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="bold"><title>{}</title>{}</text>"#,
            (x0 + x1) / 2.0,
            STRIP_TOP + 18.0,
            escape(&tip),
            escape(&shown)
        );
    }
}

fn full_label(n: usize, p: &PhaseMark) -> String {
    match &p.label {
        Some(f) => format!("phase {n}: {f}"),
        None => format!("phase {n}"),
    }
}

/// "N: function" of each phase whose label had to be cut, for the legend under the page:
/// a label that does not fit degrades to the number, and the legend names it.
fn legend(h: &Holistic) -> Vec<String> {
    h.phases
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let label = p.label.as_deref()?;
            let (x0, x1) = (x_of(h.time, p.phase.start_ns as f64), x_of(h.time, p.phase.end_ns as f64));
            let shown = phase_label(i + 1, Some(label), x1 - x0 - 4.0);
            (shown != full_label(i + 1, p)).then(|| format!("{}: {label}", i + 1))
        })
        .collect()
}

/// The legend of cut labels, a line each under the time axis.
fn legend_lines(s: &mut String, h: &Holistic, l: &Layout) {
    for (k, entry) in legend(h).iter().enumerate() {
        let y = l.bottom() + 64.0 + k as f64 * LEGEND_H;
        let _ = writeln!(s, r#"<text class="phase-legend" x="{LEFT}" y="{y:.1}">{}</text>"#, escape(&format!("phase {entry}")));
    }
}

/// "phase N: function" in `px`: the word "phase" gives way before the function does, which
/// keeps at least `FUNCTION_CHARS`; then the function, then the word.
fn phase_label(n: usize, function: Option<&str>, px: f64) -> String {
    const FUNCTION_CHARS: usize = 10;
    let char_w = char_px(FONT, true);
    let fits = |chars: usize| chars as f64 * char_w <= px;
    let with_function = |prefix: String| function.map(|f| format!("{prefix}: {}", fit_function(f, px - (prefix.chars().count() + 2) as f64 * char_w, char_w)));
    let (long, short) = (format!("phase {n}"), n.to_string());
    match function.map_or(0, |f| f.chars().count().min(FUNCTION_CHARS) + 2) {
        0 => {}
        f if fits(long.len() + f) => return with_function(long).unwrap_or_default(),
        f if fits(short.len() + f) => return with_function(short).unwrap_or_default(),
        _ => {}
    }
    if fits(long.len()) {
        long
    } else if fits(short.len()) {
        short
    } else {
        String::new()
    }
}

fn panel_title(s: &mut String, top: f64, text: &str) {
    let _ = writeln!(s, r#"<text x="{LEFT}" y="{:.1}" font-size="13" font-weight="bold">{}</text>"#, top - 9.0, escape(text));
}

/// The address range a map shows. Its cells cover a little less when the range does not
/// divide evenly; the end is the page it falls short of, as DAMON's regions are page-aligned.
fn map_range(g: &Grid) -> (u64, u64) {
    const PAGE: u64 = 4096;
    let (start, unit) = (g.addr_start.f64(), g.addr_unit.f64());
    let end = (start + g.addr_unit.times(Num::Int(g.addr_resol as i128)).f64()) as u64;
    let page_end = end.div_ceil(PAGE) * PAGE;
    (start as u64, if ((page_end - end) as f64) < unit { page_end } else { end })
}

fn heatmap_panel(s: &mut String, h: &Holistic, l: &Layout) {
    let _ = writeln!(s, r#"<g id="heatmap-panel">"#);
    let unit = h.maps.first().map_or("samples", |g| g.heat_unit);
    panel_title(s, l.heat_top, "Access heatmap of the main target (address × time, color = access frequency)");
    // One color scale for all bands, so their colors compare.
    let (hi, lo) = h.maps.iter().filter_map(Grid::highest_lowest).fold((f64::NEG_INFINITY, f64::INFINITY), |(hi, lo), (a, b)| (hi.max(a), lo.min(b)));
    let level = |v: f64| if hi > lo { ((v - lo) / (hi - lo) * LEVELS).round() } else { LEVELS };
    let n = h.maps.len().max(1) as f64;
    let band_h = (HEAT_H - BAND_GAP * (n - 1.0)) / n;
    let _ = writeln!(s, r#"<g shape-rendering="crispEdges">"#);
    for (k, g) in h.maps.iter().enumerate() {
        let top = l.heat_top + k as f64 * (band_h + BAND_GAP);
        let (cw, ch) = (PLOT_W / g.time_resol as f64, band_h / g.addr_resol as f64);
        for run in g.runs(level) {
            let x = LEFT + run.time as f64 * cw;
            let y = top + band_h - (run.addr + run.len) as f64 * ch;
            let _ = writeln!(s, r#"<rect x="{x:.2}" y="{y:.2}" width="{:.2}" height="{:.2}" fill="{}"/>"#, cw + 0.05, run.len as f64 * ch + 0.05, colors::heat(run.level / LEVELS));
        }
    }
    let _ = writeln!(s, "</g>");
    for (k, g) in h.maps.iter().enumerate() {
        let top = l.heat_top + k as f64 * (band_h + BAND_GAP);
        let (start, end) = map_range(g);
        let _ = writeln!(s, r#"<rect x="{LEFT}" y="{top:.1}" width="{PLOT_W}" height="{band_h:.1}" fill="none" stroke="black"/>"#);
        let _ = writeln!(s, r#"<text x="{}" y="{:.1}" text-anchor="end" font-size="{SMALL}">{end:#x}</text>"#, LEFT - 6.0, top + SMALL);
        let _ = writeln!(s, r#"<text x="{}" y="{:.1}" text-anchor="end" font-size="{SMALL}">{start:#x}</text>"#, LEFT - 6.0, top + band_h - 2.0);
        if band_h >= 3.0 * SMALL + 8.0 {
            let _ = writeln!(s, r##"<text x="{}" y="{:.1}" text-anchor="end" font-size="{SMALL}" fill="#555">({})</text>"##, LEFT - 6.0, top + band_h / 2.0 + 4.0, size((end - start) as f64));
        }
    }
    if h.maps.is_empty() {
        let _ = writeln!(s, r##"<rect x="{LEFT}" y="{}" width="{PLOT_W}" height="{HEAT_H}" fill="none" stroke="#999"/>"##, l.heat_top);
        let _ = writeln!(s, r##"<text x="{}" y="{}" text-anchor="middle" fill="#555">no address range to draw</text>"##, LEFT + PLOT_W / 2.0, l.heat_top + HEAT_H / 2.0);
    }
    color_bar(s, l, (hi, lo), unit);
    let _ = writeln!(s, "</g>");
}

fn color_bar(s: &mut String, l: &Layout, (hi, lo): (f64, f64), unit: &str) {
    let (x, w) = (LEFT + PLOT_W + 12.0, 12.0);
    const STEPS: usize = 48;
    let step = HEAT_H / STEPS as f64;
    let _ = writeln!(s, r#"<g shape-rendering="crispEdges">"#);
    for k in 0..STEPS {
        let y = l.heat_top + HEAT_H - (k + 1) as f64 * step;
        let _ = writeln!(s, r#"<rect x="{x}" y="{y:.2}" width="{w}" height="{:.2}" fill="{}"/>"#, step + 0.05, colors::heat(k as f64 / (STEPS - 1) as f64));
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, r#"<rect x="{x}" y="{}" width="{w}" height="{HEAT_H}" fill="none" stroke="black"/>"#, l.heat_top);
    let (hi, lo) = if hi.is_finite() { (hi, lo) } else { (0.0, 0.0) };
    let _ = writeln!(s, r#"<text x="{}" y="{}" font-size="{SMALL}">{}</text>"#, x + w + 4.0, l.heat_top + SMALL - 1.0, number(hi));
    let _ = writeln!(s, r#"<text x="{}" y="{}" font-size="{SMALL}">{}</text>"#, x + w + 4.0, l.heat_top + HEAT_H, number(lo));
    let (lx, ly) = (x + w + 14.0, l.heat_top + HEAT_H / 2.0);
    let _ = writeln!(s, r#"<text x="{lx}" y="{ly}" font-size="{SMALL}" text-anchor="middle" transform="rotate(90 {lx} {ly})">access frequency ({unit})</text>"#);
}

/// Short numbers: 1.5K rather than 1500.
fn number(v: f64) -> String {
    for (unit, scale) in [("G", 1e9), ("M", 1e6), ("K", 1e3)] {
        if v.abs() >= scale {
            return format!("{:.1}{unit}", v / scale).replace(".0", "");
        }
    }
    format!("{v:.1}").trim_end_matches(".0").to_owned()
}

/// A round step near `span / count`: 1, 2 or 5 times a power of ten.
fn nice_step(span: f64, count: f64) -> f64 {
    let raw = (span / count).max(f64::MIN_POSITIVE);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * p).find(|&v| v >= raw).unwrap_or(10.0 * p)
}

fn wss_panel(s: &mut String, h: &Holistic, l: &Layout) {
    let _ = writeln!(s, r#"<g id="wss-panel">"#);
    panel_title(s, l.wss_top, "Working set size (bytes of regions with any access, per snapshot)");
    let max = h.wss.iter().map(|w| w.2).max().unwrap_or(0) as f64;
    // Ticks on round numbers of the unit the largest size reads in.
    let unit = [40, 30, 20, 10, 0].into_iter().map(|sh| (1u64 << sh) as f64).find(|&u| max >= u).unwrap_or(1.0);
    let step = nice_step((max / unit).max(1.0), 3.0) * unit;
    let top_value = (max / step).ceil().max(1.0) * step;
    let y_of = |v: f64| l.wss_top + WSS_H - v / top_value * WSS_H;
    let mut v = 0.0;
    while v <= top_value * 1.0001 {
        let y = y_of(v);
        let _ = writeln!(s, r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/>"##, LEFT + PLOT_W);
        let _ = writeln!(s, r#"<text x="{}" y="{:.1}" text-anchor="end" font-size="{SMALL}">{}</text>"#, LEFT - 6.0, y + 4.0, size(v));
        v += step;
    }
    let mut points = Vec::with_capacity(h.wss.len() * 2);
    for &(start, end, bytes) in &h.wss {
        let y = y_of(bytes as f64);
        points.push(format!("{:.1},{y:.1}", x_of(h.time, start as f64)));
        points.push(format!("{:.1},{y:.1}", x_of(h.time, end as f64)));
    }
    if let (Some(first), Some(last)) = (h.wss.first(), h.wss.last()) {
        let base = l.wss_top + WSS_H;
        let (x0, x1) = (x_of(h.time, first.0 as f64), x_of(h.time, last.1 as f64));
        let _ = writeln!(s, r##"<polygon points="{x0:.1},{base:.1} {} {x1:.1},{base:.1}" fill="#1f77b4" fill-opacity="0.18"/>"##, points.join(" "));
        let _ = writeln!(s, r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>"##, points.join(" "));
    }
    let _ = writeln!(s, r#"<rect x="{LEFT}" y="{}" width="{PLOT_W}" height="{WSS_H}" fill="none" stroke="black"/>"#, l.wss_top);
    let _ = writeln!(s, "</g>");
}

fn timeline_panel(s: &mut String, h: &Holistic, l: &Layout) {
    let _ = writeln!(s, r#"<g id="timeline-panel">"#);
    let t = h.timeline.as_ref().filter(|t| t.total() > 0);
    let Some(t) = t else {
        panel_title(s, l.lanes_top, "Function timeline");
        let _ = writeln!(s, r##"<rect x="{LEFT}" y="{}" width="{PLOT_W}" height="{}" fill="none" stroke="#999"/>"##, l.lanes_top, l.lanes_h);
        let _ = writeln!(
            s,
            r##"<text class="no-samples" x="{}" y="{:.1}" text-anchor="middle" fill="#555">no stack samples in this record (record with damo-trace to see functions)</text>"##,
            LEFT + PLOT_W / 2.0,
            l.lanes_top + l.lanes_h / 2.0 + 4.0
        );
        let _ = writeln!(s, "</g>");
        return;
    };
    panel_title(s, l.lanes_top, &format!("Function timeline: each function's share of the samples in each of {} time buckets", t.buckets()));
    let _ = writeln!(s, r##"<text x="{}" y="{:.1}" text-anchor="end" font-size="{SMALL}" fill="#444">of {} samples</text>"##, WIDTH - 6.0, l.lanes_top - 9.0, t.total());
    let other = t.other();
    let mut lanes: Vec<(&str, &[usize], usize, &str)> = t.rows.iter().enumerate().map(|(i, r)| (r.name.as_str(), r.counts.as_slice(), r.total, COLORS[i % COLORS.len()])).collect();
    let other_total: usize = other.iter().sum();
    if other_total > 0 {
        lanes.push((OTHER, &other, other_total, "#888888"));
    }
    let bw = PLOT_W / t.buckets() as f64;
    for (r, (name, counts, total, color)) in lanes.into_iter().enumerate() {
        let y = l.lanes_top + r as f64 * ROW_H;
        if r % 2 == 1 {
            let _ = writeln!(s, r##"<rect x="{LEFT}" y="{y:.1}" width="{PLOT_W}" height="{ROW_H}" fill="#000" fill-opacity="0.04"/>"##);
        }
        label(s, &format!(r#"class="function-label" x="{}" y="{:.1}" text-anchor="end""#, LEFT - 8.0, y + ROW_H / 2.0 + 4.0), name, LEFT - 16.0, FONT);
        let _ = writeln!(s, r#"<g fill="{color}" shape-rendering="crispEdges">"#);
        for (b, &c) in counts.iter().enumerate().filter(|(_, &c)| c > 0) {
            let share = c as f64 / t.bucket_totals[b] as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{:.2}" y="{:.1}" width="{:.2}" height="{:.1}" fill-opacity="{:.2}"><title>{}: {c} of {} samples</title></rect>"#,
                LEFT + b as f64 * bw,
                y + 2.0,
                bw + 0.05,
                ROW_H - 4.0,
                0.15 + 0.85 * share,
                escape(name),
                t.bucket_totals[b]
            );
        }
        let _ = writeln!(s, "</g>");
        let _ = writeln!(s, r#"<text x="{}" y="{:.1}" font-size="{SMALL}">{:.1}%</text>"#, LEFT + PLOT_W + 8.0, y + ROW_H / 2.0 + 4.0, total as f64 * 100.0 / t.total() as f64);
    }
    let _ = writeln!(s, r#"<rect x="{LEFT}" y="{}" width="{PLOT_W}" height="{}" fill="none" stroke="black"/>"#, l.lanes_top, l.lanes_h);
    let _ = writeln!(s, "</g>");
}

/// Seconds since the axis' start, ticked under the last panel and marked on the others.
fn time_axis(s: &mut String, h: &Holistic, l: &Layout) {
    let span_s = (h.time.1 - h.time.0) / 1e9;
    let step = nice_step(span_s.max(1e-9), 10.0);
    let decimals = if step >= 1.0 { 0 } else { (-step.log10().floor()) as usize };
    let bottom = l.bottom();
    let mut k = 0.0;
    while k * step <= span_s * 1.0001 {
        let t = k * step;
        let x = x_of(h.time, h.time.0 + t * 1e9);
        for panel_bottom in [l.heat_top + HEAT_H, l.wss_top + WSS_H, bottom] {
            let _ = writeln!(s, r#"<line x1="{x:.1}" y1="{panel_bottom:.1}" x2="{x:.1}" y2="{:.1}" stroke="black"/>"#, panel_bottom + 5.0);
        }
        let _ = writeln!(s, r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{t:.decimals$}</text>"#, bottom + 19.0);
        k += 1.0;
    }
    let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time (s since the record's first snapshot)</text>"#, LEFT + PLOT_W / 2.0, bottom + 42.0);
}

/// A dashed line down each panel where each phase but the first starts (not over the panel
/// titles); white under dark so it shows on the heatmap's black as on white.
fn boundaries(s: &mut String, h: &Holistic, l: &Layout) {
    let mut spans = vec![(STRIP_TOP, STRIP_TOP + STRIP_H), (l.heat_top, l.heat_top + HEAT_H), (l.wss_top, l.wss_top + WSS_H)];
    // An empty timeline holds only its message, which the lines would strike through.
    if h.timeline.as_ref().is_some_and(|t| t.total() > 0) {
        spans.push((l.lanes_top, l.bottom()));
    }
    for p in h.phases.iter().skip(1) {
        let x = x_of(h.time, p.phase.start_ns as f64);
        let _ = write!(s, r#"<g class="phase-boundary">"#);
        for &(y1, y2) in &spans {
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" y1="{y1:.1}" x2="{x:.1}" y2="{y2:.1}" stroke="white" stroke-width="3" stroke-opacity="0.8"/><line x1="{x:.1}" y1="{y1:.1}" x2="{x:.1}" y2="{y2:.1}" stroke="#222" stroke-width="1.5" stroke-dasharray="6 4"/>"##
            );
        }
        let _ = writeln!(s, "</g>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        holistic::{NamedSample, PhaseMark, Timeline},
        phases::Phase,
    };

    fn phase(start_s: u64, end_s: u64) -> Phase {
        Phase { first: 0, last: 0, start_ns: start_s * 1_000_000_000, end_ns: end_s * 1_000_000_000, mean_wss: 1 << 24, hot_ranges: vec![], heat: vec![] }
    }

    fn page(samples: &[(u64, String)]) -> Holistic {
        let time = (0.0, 9e9);
        let g = Grid::new((Num::Int(0), Num::Int(9_000_000_000)), (Num::Int(0x1000), Num::Int(0x2000)), (90, 16), "samples").unwrap();
        let phases = [(0, 3), (3, 6), (6, 9)].into_iter().map(|(a, b)| PhaseMark::new(phase(a, b), samples, 3)).collect();
        Holistic {
            title: "t.dtr".into(),
            maps: vec![g],
            time,
            wss: (0..90).map(|i| (i * 100_000_000, (i + 1) * 100_000_000, 1 << 24)).collect(),
            timeline: (!samples.is_empty()).then(|| Timeline::build(samples, time, 90, 8)),
            phases,
        }
    }

    #[test]
    fn phase_boundaries_land_where_phases_start() {
        let samples: Vec<(u64, String)> = (0..90).map(|i| (i * 100_000_000 + 1, format!("f{}", i / 30))).collect();
        let svg = render(&page(&samples));
        let xs: Vec<&str> = svg.lines().filter(|l| l.contains(r#"class="phase-boundary""#)).map(|l| l.split("x1=\"").nth(1).unwrap().split('"').next().unwrap()).collect();
        let third = PLOT_W / 3.0;
        assert_eq!(xs, [format!("{:.1}", LEFT + third), format!("{:.1}", LEFT + 2.0 * third)]);
        assert_eq!(svg.matches(r#"class="phase-label""#).count(), 3);
        assert!(svg.contains(">phase 2: f1<"), "phase 2 is labelled with its top function");
        assert_eq!(svg.matches(r#"class="function-label""#).count(), 3, "one row per function, no other row");
        assert!(crate::image::svg_to_png(&svg).is_ok(), "the SVG must render");
    }

    #[test]
    fn without_samples_the_timeline_says_so() {
        let svg = render(&page(&[]));
        assert!(svg.contains(r#"id="heatmap-panel""#) && svg.contains(r#"id="wss-panel""#));
        assert!(svg.contains(r#"class="no-samples""#));
        assert_eq!(svg.matches(r#"class="phase-boundary""#).count(), 2);
    }

    /// A minute of a busy record: eight phases, two of them short, a hot spot moving over two
    /// address ranges, twelve functions with long C++ and Rust names.
    fn busy_page() -> Holistic {
        use crate::heatmap::Source;
        use damo_record::model::{Region, Snapshot, TargetRecord};
        let cuts: [u64; 9] = [0, 8_000, 8_400, 20_000, 21_000, 35_000, 36_500, 50_000, 60_000];
        let names: Vec<String> = (0..12)
            .map(|i| match i % 3 {
                0 => format!("app::solver::Grid<f64, {i}>::step_{i}"),
                1 => format!("fft::radix2::butterfly_{i}<std::complex<double>>(std::complex<double>*, unsigned long)"),
                _ => format!("f{i}"),
            })
            .collect();
        let phase_of = |ms: u64| cuts.partition_point(|&c| c <= ms) - 1;
        let mut noise = 7u64;
        let mut next = move || {
            noise = noise.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            noise >> 33
        };
        let samples: Vec<NamedSample> = (0..6000u64).map(|i| (i * 10_000_000, names[(phase_of(i * 10) + (next() % 4 == 0) as usize * (next() % 12) as usize) % 12].clone())).collect();
        let snapshots: Vec<Snapshot> = (0..600u64)
            .map(|i| {
                let hot = phase_of(i * 100) as u64;
                let regions = (0..16u64)
                    .map(|r| {
                        let base = if r < 8 { 0x5555_0000_0000 } else { 0x7fff_0000_0000 };
                        let nr_accesses = if r % 8 == hot { 20 } else { (next() % 3) as u32 };
                        Region { start: base + (r % 8) * (4 << 20), end: base + (r % 8 + 1) * (4 << 20), nr_accesses, age: None }
                    })
                    .collect();
                Snapshot { start_ns: i * 100_000_000, end_ns: (i + 1) * 100_000_000, regions, total_bytes: None }
            })
            .collect();
        let target = TargetRecord { snapshots, ..Default::default() };
        let maps = [0x7fff_0000_0000i128, 0x5555_0000_0000]
            .map(|base| {
                let mut g = Grid::new((Num::Int(0), Num::Int(60_000_000_000)), (Num::Int(base), Num::Int(base + (32 << 20))), (300, 128), "samples").unwrap();
                g.add_sources(&[Source::new(&target, false)]);
                g
            })
            .to_vec();
        let time = (0.0, 60e9);
        let phases = cuts
            .windows(2)
            .map(|w| PhaseMark::new(Phase { first: 0, last: 0, start_ns: w[0] * 1_000_000, end_ns: w[1] * 1_000_000, mean_wss: 4 << 20, hot_ranges: vec![], heat: vec![] }, &samples, 3))
            .collect();
        Holistic { title: "busy.dtr".into(), maps, time, wss: crate::holistic::wss_series(&target), timeline: Some(Timeline::build(&samples, time, 100, 8)), phases }
    }

    #[test]
    fn a_busy_page_keeps_its_labels_apart() {
        let h = busy_page();
        let svg = render(&h);
        let labels: Vec<&str> = svg.lines().filter(|l| l.contains(r#"class="phase-label""#)).map(|l| l.rsplit("</title>").next().unwrap().trim_end_matches("</text>")).collect();
        assert_eq!(labels.len(), 8);
        for (label, p) in labels.iter().zip(&h.phases) {
            let span = x_of(h.time, p.phase.end_ns as f64) - x_of(h.time, p.phase.start_ns as f64);
            let shown = label.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
            let width = shown.chars().count() as f64 * char_px(FONT, true);
            assert!(width <= span, "{label:?} is {width} px wide in a {span} px phase");
        }
        assert_eq!(labels[0], "phase 1", "no room for enough of its function: {labels:?}");
        assert!(labels[7].starts_with("8: fft:"), "room for its function, not for the word phase: {labels:?}");
        assert_eq!(labels[3], "4", "the 1 s phase has room for its number only: {labels:?}");
        assert_eq!(labels[1], "", "the 0.4 s phase has room for nothing: {labels:?}");
        // Every cut label is named in full in the legend under the page.
        let legend: Vec<&str> = svg.lines().filter(|l| l.contains(r#"class="phase-legend""#)).map(|l| l.rsplit('>').nth(1).unwrap().trim_end_matches("</text")).collect();
        for (n, label) in labels.iter().enumerate() {
            let full = format!("phase {}: {}", n + 1, h.phases[n].label.as_deref().unwrap());
            assert_eq!(*label != full, legend.iter().any(|l| l.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == full), "phase {}: {label:?} and legend {legend:?}", n + 1);
        }
        assert!(legend.len() >= 3, "{legend:?}");
        assert_eq!(svg.matches(r#"class="function-label""#).count(), 9, "eight functions and the others' row");
        let png = crate::image::svg_to_png(&svg).unwrap();
        // To look at it: DAMO_TRACE_KEEP_OUTPUT=DIR.
        if let Some(dir) = std::env::var_os("DAMO_TRACE_KEEP_OUTPUT") {
            std::fs::write(std::path::Path::new(&dir).join("busy-page.png"), png).unwrap();
            std::fs::write(std::path::Path::new(&dir).join("busy-page.svg"), &svg).unwrap();
        }
    }

    #[test]
    fn phase_labels_shrink_to_their_span() {
        let w = |chars: usize| chars as f64 * char_px(FONT, true);
        assert_eq!(phase_label(2, Some("phase_update"), w(40)), "phase 2: phase_update");
        assert_eq!(phase_label(2, Some("phase_update"), w(19)), "phase 2: pha…update");
        assert_eq!(phase_label(2, Some("phase_update"), w(15)), "2: phase_update");
        assert_eq!(phase_label(2, Some("phase_update"), w(12)), "phase 2");
        assert_eq!(phase_label(2, Some("f"), w(10)), "phase 2: f");
        assert_eq!(phase_label(12, Some("phase_update"), w(4)), "12");
        assert_eq!(phase_label(12, None, w(1)), "");
    }
}
