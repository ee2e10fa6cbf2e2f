//! damo's `--output raw`: one `time<TAB>address<TAB>heat` line per cell, rows of time, each
//! row in address order; empty cells have heat `NaN`.

use std::{io::Write, ops::Range, sync::mpsc::sync_channel};

use super::{
    grid::Grid,
    pynum::{push_float_repr, Num},
};

/// Writes the lines of one map (without the final newline) as they are made: at the
/// resolution cap (2^27 cells, 40 bytes a line) the text is 5 GB, so it is never held whole.
/// Times and addresses are relative to the map's start unless asked for absolute ones. A
/// big map's rows are formatted in blocks on two threads, written in order (formatting is
/// most of the time: 250 k lines take about 5 ms on one core).
pub fn write(grid: &Grid, abs_time: bool, abs_addr: bool, out: &mut dyn Write) -> std::io::Result<()> {
    /// Text per block, about.
    const BLOCK: usize = 1 << 16;
    let lines = Lines::new(grid, abs_time, abs_addr);
    let rows_per_block = (BLOCK / (grid.addr_resol.max(1) * 32)).max(1);
    let blocks: Vec<Range<usize>> = (0..grid.row_time.len()).step_by(rows_per_block).map(|r| r..(r + rows_per_block).min(grid.row_time.len())).collect();
    let mut text = String::with_capacity(BLOCK + 128);
    if blocks.len() < 4 {
        for rows in blocks {
            text.clear();
            lines.format(rows, &mut text);
            out.write_all(text.as_bytes())?;
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        // The helper formats the odd blocks while this thread formats and writes the even.
        let (odd_tx, odd_rx) = sync_channel::<String>(1);
        let (lines, blocks) = (&lines, &blocks);
        scope.spawn(move || {
            for rows in blocks.iter().skip(1).step_by(2) {
                let mut odd = String::with_capacity(BLOCK + 128);
                lines.format(rows.clone(), &mut odd);
                if odd_tx.send(odd).is_err() {
                    return; // A write failed.
                }
            }
        });
        for (i, rows) in blocks.iter().enumerate().step_by(2) {
            text.clear();
            lines.format(rows.clone(), &mut text);
            out.write_all(text.as_bytes())?;
            if i + 1 < blocks.len() {
                let odd = odd_rx.recv().expect("the helper formats every odd block");
                out.write_all(odd.as_bytes())?;
            }
        }
        Ok(())
    })
}

/// A map's lines, ready to format by rows.
struct Lines<'g> {
    grid: &'g Grid,
    time_base: Num,
    /// Each column's address, as printed.
    addrs: Vec<String>,
}

impl<'g> Lines<'g> {
    fn new(grid: &'g Grid, abs_time: bool, abs_addr: bool) -> Self {
        let time_base = if abs_time { Num::Int(0) } else { grid.time_start };
        let addr_base = if abs_addr { Num::Int(0) } else { grid.addr_start };
        let addrs = grid.col_addr.iter().map(|&a| Num::Int(a).minus(addr_base).repr()).collect();
        Lines { grid, time_base, addrs }
    }

    /// Appends the lines of `rows`, each but the map's first after a newline.
    fn format(&self, rows: Range<usize>, text: &mut String) {
        for i in rows {
            let time = Num::Int(self.grid.row_time[i]).minus(self.time_base).repr();
            for (col, (addr, heat)) in self.addrs.iter().zip(self.grid.row(i)).enumerate() {
                if i != 0 || col != 0 {
                    text.push('\n');
                }
                text.push_str(&time);
                text.push('\t');
                text.push_str(addr);
                text.push('\t');
                match heat.get() {
                    Some(h) => push_float_repr(h, text),
                    None => text.push_str("NaN"),
                }
            }
        }
    }
}

/// [`write`] into a string, for small maps.
pub fn render(grid: &Grid, abs_time: bool, abs_addr: bool) -> String {
    let mut out = Vec::new();
    write(grid, abs_time, abs_addr, &mut out).expect("writing to memory does not fail");
    String::from_utf8(out).expect("the lines are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heatmap::grid::Cell;

    /// A map of `rows` x `cols` with empty, whole and fractional heats.
    fn grid(rows: usize, cols: usize) -> Grid {
        let mut g = Grid::new((Num::Int(1_000), Num::Int(1_000 + 7 * rows as i128)), (Num::Int(4096), Num::Int(4096 + 3 * cols as i128)), (rows, cols), "samples").unwrap();
        for (i, cell) in g.heats.iter_mut().enumerate() {
            *cell = match i % 5 {
                0 => Cell::EMPTY,
                1 => Cell::of(i as f64),
                _ => Cell::of(i as f64 / 7.0),
            };
        }
        g
    }

    #[test]
    fn blocks_formatted_on_two_threads_are_the_lines_in_order() {
        // From a map of one block (one thread) to one of dozens (two).
        for (rows, cols, abs) in [(1, 1, false), (3, 2, true), (300, 40, false), (97, 500, true), (40, 3000, false)] {
            let g = grid(rows, cols);
            let (time_base, addr_base) = if abs { (0, 0) } else { (1_000, 4096) };
            let mut want = Vec::new();
            for (i, &t) in g.row_time.iter().enumerate() {
                for (j, &a) in g.col_addr.iter().enumerate() {
                    let mut heat = String::new();
                    match g.row(i)[j].get() {
                        Some(h) => push_float_repr(h, &mut heat),
                        None => heat.push_str("NaN"),
                    }
                    want.push(format!("{}\t{}\t{heat}", t - time_base, a - addr_base));
                }
            }
            assert_eq!(render(&g, abs, abs), want.join("\n"), "{rows}x{cols}");
        }
    }
}
