//! damo's `--output raw`: one `time<TAB>address<TAB>heat` line per cell, rows of time, each
//! row in address order; empty cells have heat `NaN`.

use std::fmt::Write;

use super::{grid::Grid, pynum::Num};

/// The lines of one map (without the final newline). Times and addresses are relative to
/// the map's start unless asked for absolute ones.
pub fn render(grid: &Grid, abs_time: bool, abs_addr: bool) -> String {
    let mut s = String::with_capacity(grid.heats.len() * 40);
    let time_base = if abs_time { Num::Int(0) } else { grid.time_start };
    let addr_base = if abs_addr { Num::Int(0) } else { grid.addr_start };
    let addrs: Vec<String> = grid.col_addr.iter().map(|&a| Num::Int(a).minus(addr_base).repr()).collect();
    for (i, &t) in grid.row_time.iter().enumerate() {
        let time = Num::Int(t).minus(time_base).repr();
        for (addr, heat) in addrs.iter().zip(grid.row(i)) {
            if !s.is_empty() {
                s.push('\n');
            }
            let _ = match heat {
                Some(h) => write!(s, "{time}\t{addr}\t{}", Num::Float(*h).repr()),
                None => write!(s, "{time}\t{addr}\tNaN"),
            };
        }
    }
    s
}
