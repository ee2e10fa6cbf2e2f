//! The terminal heatmap: one digit per cell, 0 (cold) to 9 (hot), colored with damo's
//! 256-color colorsets, and damo's comment lines about the axes.

use damo_record::units::{format_sz, format_time_ns};

use super::{grid::Grid, guide::format_sz_accurate};

/// damo's colorsets: background and foreground xterm-256 colors for levels 0..=9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Colorset {
    #[default]
    Gray,
    Flame,
    Emotion,
}

impl Colorset {
    pub const NAMES: [&'static str; 3] = ["gray", "flame", "emotion"];

    pub fn from_name(name: &str) -> Option<Colorset> {
        match name {
            "gray" => Some(Colorset::Gray),
            "flame" => Some(Colorset::Flame),
            "emotion" => Some(Colorset::Emotion),
            _ => None,
        }
    }

    fn colors(self, level: usize) -> (u8, u8) {
        const FG_WARM: [u8; 10] = [239, 235, 237, 239, 243, 245, 247, 249, 251, 255];
        let (bg, fg): ([u8; 10], [u8; 10]) = match self {
            Colorset::Gray => ([232; 10], [237, 239, 241, 243, 245, 247, 249, 251, 253, 255]),
            Colorset::Flame => ([232, 1, 1, 2, 3, 3, 20, 21, 26, 27], FG_WARM),
            Colorset::Emotion => ([232, 234, 20, 21, 26, 2, 3, 1, 1, 1], FG_WARM),
        };
        (bg[level], fg[level])
    }

    fn start(self, level: usize) -> String {
        let (bg, fg) = self.colors(level);
        format!("\x1b[48;5;{bg}m\x1b[38;5;{fg}m")
    }

    /// Every level's digit in its color (damo's `color_samples`).
    pub fn samples(self) -> String {
        let mut s: String = (0..=MAX_LEVEL).map(|l| format!("{}{l}", self.start(l))).collect();
        s += END;
        s
    }
}

const MAX_LEVEL: usize = 9;
const END: &str = "\x1b[0m";

/// The map's lines, rows of time top-down; none when no cell has heat.
fn map_lines(grid: &Grid, colors: Colorset) -> Vec<String> {
    let Some((highest, lowest)) = grid.highest_lowest() else { return Vec::new() };
    let unit = (highest + 1.0 - lowest) / 9.0;
    (0..grid.time_resol)
        .map(|i| {
            let mut line = String::with_capacity(grid.addr_resol * 20);
            for cell in grid.row(i) {
                match cell {
                    // Empty cells are blank, in level 4's colors.
                    None => line.push_str(&format!("{} ", colors.start(4))),
                    Some(h) => {
                        let level = (((h - lowest) / unit).trunc().max(0.0) as usize).min(MAX_LEVEL);
                        line.push_str(&format!("{}{level}", colors.start(level)));
                    }
                }
            }
            line + END
        })
        .collect()
}

fn comment_lines(grid: &Grid, colors: Colorset, show_colorset: bool) -> Vec<String> {
    let mut lines = Vec::new();
    if show_colorset {
        let range = match grid.highest_lowest() {
            Some((hi, lo)) => format!("{lo:.3}-{hi:.3} {}", grid.heat_unit),
            None => format!("no heat ({})", grid.heat_unit),
        };
        lines.push(format!("# access_frequency: {} ({range})", colors.samples()));
    }
    let addr_len = grid.addr_unit.times(super::pynum::Num::Int(grid.addr_resol as i128));
    let addr_end = grid.addr_start.plus(addr_len);
    let accurate = |n: super::pynum::Num| format_sz_accurate(n.f64() as u64, false);
    lines.push(format!("# x-axis: space [{}, {}) ({})", accurate(grid.addr_start), accurate(addr_end), format_sz(addr_len.f64(), false)));
    let time_len = grid.time_unit.times(super::pynum::Num::Int(grid.time_resol as i128));
    let time_end = grid.time_start.plus(time_len);
    lines.push(format!("# y-axis: time [{}, {}) ({})", format_time_ns(grid.time_start.f64(), false), format_time_ns(time_end.f64(), false), format_time_ns(time_len.f64(), false)));
    lines.push(format!(
        "# resolution: {}x{} ({} and {} for each character)",
        grid.addr_resol,
        grid.time_resol,
        format_sz(addr_len.f64() / grid.addr_resol as f64, false),
        format_time_ns(time_len.f64() / grid.time_resol as f64, false)
    ));
    lines
}

/// damo's `--output stdout` text for one map (without the final newline).
pub fn render(grid: &Grid, colors: Colorset, show_colorset: bool) -> String {
    let mut lines = map_lines(grid, colors);
    lines.extend(comment_lines(grid, colors, show_colorset));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colorset_samples_match_damo() {
        let s = Colorset::Flame.samples();
        assert!(s.starts_with("\x1b[48;5;232m\x1b[38;5;239m0\x1b[48;5;1m\x1b[38;5;235m1"));
        assert!(s.ends_with("\x1b[48;5;27m\x1b[38;5;255m9\x1b[0m"));
    }
}
