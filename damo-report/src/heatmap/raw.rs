//! damo's `--output raw`: one `time<TAB>address<TAB>heat` line per cell, rows of time, each
//! row in address order; empty cells have heat `NaN`.

use std::io::Write;

use super::{
    grid::Grid,
    pynum::{push_float_repr, Num},
};

/// Writes the lines of one map (without the final newline) as they are made: at the
/// resolution cap (2^27 cells, 40 bytes a line) the text is 5 GB, so it is never held whole.
/// Times and addresses are relative to the map's start unless asked for absolute ones.
pub fn write(grid: &Grid, abs_time: bool, abs_addr: bool, out: &mut dyn Write) -> std::io::Result<()> {
    /// Lines are gathered up to this size, then written.
    const CHUNK: usize = 1 << 16;
    let time_base = if abs_time { Num::Int(0) } else { grid.time_start };
    let addr_base = if abs_addr { Num::Int(0) } else { grid.addr_start };
    let addrs: Vec<String> = grid.col_addr.iter().map(|&a| Num::Int(a).minus(addr_base).repr()).collect();
    let mut text = String::with_capacity(CHUNK + 128);
    let mut first = true;
    for (i, &t) in grid.row_time.iter().enumerate() {
        let time = Num::Int(t).minus(time_base).repr();
        for (addr, heat) in addrs.iter().zip(grid.row(i)) {
            if !first {
                text.push('\n');
            }
            first = false;
            text.push_str(&time);
            text.push('\t');
            text.push_str(addr);
            text.push('\t');
            match heat {
                Some(h) => push_float_repr(*h, &mut text),
                None => text.push_str("NaN"),
            }
            if text.len() >= CHUNK {
                out.write_all(text.as_bytes())?;
                text.clear();
            }
        }
    }
    out.write_all(text.as_bytes())
}

/// [`write`] into a string, for small maps.
pub fn render(grid: &Grid, abs_time: bool, abs_addr: bool) -> String {
    let mut out = Vec::new();
    write(grid, abs_time, abs_addr, &mut out).expect("writing to memory does not fail");
    String::from_utf8(out).expect("the lines are ASCII")
}
