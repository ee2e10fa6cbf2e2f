//! The `top` screen, drawn from the model into any ratatui backend (a terminal, or the test
//! backend): a header, the hot bands' heatmap with phase markers, the WSS sparkline, and
//! the hot functions.

use ratatui::{
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Paragraph, Row, Sparkline, Table},
    Frame,
};

use super::model::{size, LiveModel};

/// The access-rate thresholds `f` steps through for the function list.
pub const FILTERS: [f64; 4] = [0.0, 0.25, 0.5, 0.75];
/// Shades of access rate, coldest first (also readable without colors).
const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];
/// Width of the address labels left of the heatmap.
const LABEL: u16 = 16;

/// What the viewer chose: the target and band, the filter, pause.
#[derive(Debug, Default, Clone)]
pub struct ViewState {
    /// `None`: the main target (the one with the most snapshots).
    pub target: Option<usize>,
    pub band: usize,
    pub filter: usize,
    pub paused: bool,
    /// A line for the footer (what `w` wrote, the recording ended).
    pub message: Option<String>,
}

impl ViewState {
    pub fn target(&self, model: &LiveModel) -> Option<usize> {
        self.target.filter(|&t| t < model.targets.len()).or_else(|| model.main_target())
    }

    pub fn next_target(&mut self, model: &LiveModel) {
        if let Some(t) = self.target(model) {
            self.target = Some((t + 1) % model.targets.len());
            self.band = 0;
        }
    }

    pub fn move_band(&mut self, model: &LiveModel, down: bool) {
        let bands = self.target(model).map_or(0, |t| model.targets[t].bands.len());
        self.band = if down { (self.band + 1).min(bands.saturating_sub(1)) } else { self.band.saturating_sub(1) };
    }
}

pub fn draw(frame: &mut Frame, model: &LiveModel, view: &ViewState) {
    let [header, heat, wss, functions, footer] = Layout::vertical([Constraint::Length(3), Constraint::Min(6), Constraint::Length(4), Constraint::Length(9), Constraint::Length(1)]).areas(frame.area());
    frame.render_widget(Paragraph::new(header_lines(model, view)), header);
    let target = view.target(model);
    match target {
        Some(t) => {
            draw_heatmap(frame, heat, model, t, view.band);
            draw_wss(frame, wss, model, t);
        }
        None => frame.render_widget(Paragraph::new("no DAMON snapshots (yet): the heatmap starts with the first aggregation").block(Block::bordered().title(" access ")), heat),
    }
    draw_functions(frame, functions, model, view, target);
    let keys = "q quit  p pause  ↑/↓ band  tab target  f access-rate filter  w write record";
    let text = match &view.message {
        Some(m) => format!("{m}  |  {keys}"),
        None if view.paused => format!("PAUSED  |  {keys}"),
        None => keys.to_owned(),
    };
    frame.render_widget(Paragraph::new(text).style(Style::default().add_modifier(Modifier::REVERSED)), footer);
}

fn header_lines(model: &LiveModel, view: &ViewState) -> Vec<Line<'static>> {
    let t = model.totals;
    let kdamonds: Vec<String> = model
        .kdamonds
        .iter()
        .map(|(pid, (index, iv))| match iv {
            Some(i) => format!("kdamond {index} (pid {pid}) {}/{}/{} us", i.sample_us, i.aggr_us, i.ops_update_us),
            None => format!("kdamond {index} (pid {pid})"),
        })
        .collect();
    let target = view.target(model).map(|i| {
        let tv = &model.targets[i];
        let regions = tv.snapshots().last().map_or(0, |s| s.regions.len());
        let wss = model.newest_wss(i);
        format!("target {}/{}: id {} of pid {}  regions {regions}  WSS {}", i + 1, model.targets.len(), tv.key.target_id, tv.key.kdamond_pid, size(wss))
    });
    vec![
        Line::from(vec![Span::styled("damo-trace top", Style::default().add_modifier(Modifier::BOLD)), Span::raw(format!("  {:.1}s  {}", model.elapsed(model.last_ns), kdamonds.join(", ")))]),
        Line::from(target.unwrap_or_else(|| "no DAMON target".into())),
        Line::from(format!(
            "snapshots {}  samples {} ({:.0}/s)  lost {}{}  history dropped {}",
            t.snapshots,
            t.samples,
            t.sample_rate,
            model.losses.total(),
            lost_causes(model),
            model.dropped_history
        )),
    ]
}

/// What the losses were, when there were any: " (stack samples: ring buffer full 3, …)".
fn lost_causes(model: &LiveModel) -> String {
    let causes: Vec<String> = model.losses.breakdown().iter().map(|(cause, n)| format!("{cause} {n}")).collect();
    if causes.is_empty() {
        String::new()
    } else {
        format!(" ({})", causes.join(", "))
    }
}

/// The selected target's hot bands, stacked, highest addresses first; a `▼` row marks
/// where phases began.
fn draw_heatmap(frame: &mut Frame, area: Rect, model: &LiveModel, t: usize, selected: usize) {
    let tv = &model.targets[t];
    let block = Block::bordered().title(" access heatmap (hot bands, newest right) ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let cols = inner.width.saturating_sub(LABEL) as usize;
    if tv.bands.is_empty() || cols == 0 || inner.height < 2 {
        frame.render_widget(Paragraph::new("nothing accessed in the window"), inner);
        return;
    }
    let snapshots = tv.snapshots();
    let shown = &snapshots[snapshots.len().saturating_sub(cols)..];
    let mut marks = vec![' '; shown.len()];
    for m in &tv.markers {
        if let Some(c) = shown.iter().position(|s| s.end_ns > m.start_ns) {
            if c > 0 || shown[0].start_ns >= m.start_ns {
                marks[c] = '▼';
            }
        }
    }
    let mut lines = vec![Line::from(format!("{:>w$}{}", "phase ", marks.iter().collect::<String>(), w = LABEL as usize))];
    let rows_each = ((inner.height as usize - 1) / tv.bands.len()).max(1);
    for (b, &(lo, hi)) in tv.bands.iter().enumerate() {
        let heat = model.heat(t, b, rows_each, cols);
        for (r, row) in heat.iter().enumerate() {
            let label = match r {
                0 => format!("{hi:#x}"),
                r if r + 1 == rows_each => format!("{lo:#x}"),
                1 => size(hi - lo),
                _ => String::new(),
            };
            let style = if b == selected { Style::default().add_modifier(Modifier::BOLD) } else { Style::default() };
            let mut spans = vec![Span::styled(format!("{label:>w$} ", w = LABEL as usize - 1), style)];
            spans.extend(row.iter().map(|&rate| Span::styled(shade(rate).to_string(), Style::default().fg(heat_color(rate)))));
            lines.push(Line::from(spans));
        }
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The working set size of the snapshots the heatmap shows, in the same columns.
fn draw_wss(frame: &mut Frame, area: Rect, model: &LiveModel, t: usize) {
    let series = model.wss(t);
    let block = Block::bordered().title(format!(" WSS {} ", size(series.last().copied().unwrap_or(0))));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [label, spark] = Layout::horizontal([Constraint::Length(LABEL), Constraint::Fill(1)]).areas(inner);
    let shown = &series[series.len().saturating_sub(spark.width as usize)..];
    let peak = shown.iter().copied().max().unwrap_or(0);
    frame.render_widget(Paragraph::new(format!("{:>w$} ", format!("peak {}", size(peak)), w = LABEL as usize - 1)), label);
    frame.render_widget(Sparkline::default().data(shown).max(peak.max(1)).style(Style::default().fg(Color::Green)), spark);
}

fn shade(rate: f64) -> char {
    if rate <= 0.0 {
        return SHADES[0];
    }
    SHADES[1 + ((rate * 4.0) as usize).min(3)]
}

fn heat_color(rate: f64) -> Color {
    match rate {
        r if r >= 0.75 => Color::Red,
        r if r >= 0.5 => Color::LightRed,
        r if r >= 0.25 => Color::Yellow,
        _ => Color::DarkGray,
    }
}

fn draw_functions(frame: &mut Frame, area: Rect, model: &LiveModel, view: &ViewState, target: Option<usize>) {
    let rate = FILTERS[view.filter % FILTERS.len()];
    let filter = target.filter(|_| rate > 0.0).map(|t| (t, view.band, rate));
    let rows: Vec<Row> =
        model.hot_functions(area.height.saturating_sub(3) as usize, filter).into_iter().map(|f| Row::new(vec![format!("{:5.1}%", f.share * 100.0), f.comm, f.object, f.function])).collect();
    let mut title = format!(" hot functions, last {}s ", super::model::FUNCTION_WINDOW_NS / 1_000_000_000);
    if let Some((_, b, r)) = filter {
        title += &format!("while band {} ≥ {:.0}% ", b + 1, r * 100.0);
    }
    if let Some(m) = target.and_then(|t| model.targets[t].markers.last()) {
        let top: Vec<String> = m.top.iter().map(|(f, s)| format!("{f} {:.0}%", s * 100.0)).collect();
        title += &format!("│ phase since {:.1}s: {} ", model.elapsed(m.start_ns), top.join(", "));
    }
    let table = Table::new(rows, [Constraint::Length(7), Constraint::Length(16), Constraint::Length(24), Constraint::Fill(1)])
        .header(Row::new(["share", "command", "module", "symbol"]).style(Style::default().add_modifier(Modifier::BOLD)))
        .block(Block::bordered().title(title));
    frame.render_widget(table, area);
}
