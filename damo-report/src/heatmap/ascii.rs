//! The terminal heatmap: one digit per cell, 0 (cold) to 9 (hot), colored with damo's
//! 256-color colorsets, and damo's comment lines about the axes.

use damo_record::units::{format_sz, format_time_ns};

use super::{grid::Grid, guide::format_sz_accurate};

pub use crate::colors::Colorset;
use crate::colors::{END, MAX_LEVEL};

/// The map's lines, rows of time top-down; none when no cell has heat.
fn map_lines(grid: &Grid, colors: Colorset) -> Vec<String> {
    let Some((highest, lowest)) = grid.highest_lowest() else { return Vec::new() };
    let unit = (highest + 1.0 - lowest) / 9.0;
    (0..grid.time_resol)
        .map(|i| {
            let mut line = String::with_capacity(grid.addr_resol * 20);
            for cell in grid.row(i) {
                match cell.get() {
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
