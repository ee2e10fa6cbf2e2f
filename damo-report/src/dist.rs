//! Percentile tables, in damo's `_damo_dist.fmt_dists` line format:
//!
//! ```text
//! # <percentile> <wss>
//! # avr:<TAB>113456913
//!   1        99979264 |********************************************************** |
//! ```

use std::fmt::Write;

use crate::names::named_enum;

named_enum! {
    /// `--sortby`: sizes in order (percentiles) or values in time order.
    #[derive(Default)]
    pub enum SortBy {
        #[default]
        Size = "size",
        Time = "time",
    }
}

/// The defaults damo's distribution reports share (`wss`, `footprints`).
pub mod defaults {
    /// `--range START STOP STEP`: percentiles 0, 25, 50, 75 and 100.
    pub const RANGE: [i64; 3] = [0, 101, 25];
    /// `--nr_cols_bar`.
    pub const NR_COLS_BAR: usize = 59;
}

#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    #[error("--range: the step must not be 0")]
    ZeroStep,
    #[error(transparent)]
    OverBudget(#[from] damo_record::budget::OverBudget),
}

/// The percentiles of `--range START STOP STEP`, refusing a zero step and a range whose
/// lines do not fit in the memory limit: each is a value, a few sorted copies and a line
/// of text with a bar of `bar_cols` columns (`wss -r 0 1000000000 1` asks for a billion
/// lines, `--nr_cols_bar 100000000000` for 100 GB a line).
pub fn checked_percentiles((start, stop, step): (i64, i64, i64), bar_cols: usize) -> Result<Vec<i64>, RangeError> {
    if step == 0 {
        return Err(RangeError::ZeroStep);
    }
    let span = if step > 0 { i128::from(stop) - i128::from(start) } else { i128::from(start) - i128::from(stop) };
    let step_abs = i128::from(step).abs().max(1);
    let n = u64::try_from((span.max(0) + step_abs - 1) / step_abs).unwrap_or(u64::MAX);
    // The line, the list of lines and their join.
    let per_line = PER_PERCENTILE.saturating_add((bar_cols as u64).saturating_mul(3));
    damo_record::budget::check(n.saturating_mul(per_line), || format!("--range {start} {stop} {step} ({n} percentiles) with bars of {bar_cols} columns"))?;
    Ok(percentiles(start, stop, step))
}

/// Bytes a printed percentile takes: its value, its entry in each distribution and its line.
const PER_PERCENTILE: u64 = 128;

/// Index of `percentile` in a sorted list of `len` values, as damo picks it.
pub fn percentile_index(percentile: i64, len: usize) -> usize {
    let idx = (percentile as f64 / 100.0 * len as f64) as usize;
    idx.min(len.saturating_sub(1))
}

/// Percentile steps like Python's `range(start, stop, step)`.
pub fn percentiles(start: i64, stop: i64, step: i64) -> Vec<i64> {
    match step {
        0 => Vec::new(),
        s if s > 0 => (start..stop).step_by(s as usize).collect(),
        s => {
            let mut v = Vec::new();
            let mut p = start;
            while p > stop {
                v.push(p);
                p += s;
            }
            v
        }
    }
}

/// The table of `values` at `percentiles` (or every value with `all`), each formatted by
/// `format(value, raw)`, with a bar of up to `bar_cols` columns.
pub fn format(metric: &str, values: &[u64], percentiles: &[i64], all: bool, format: impl Fn(f64, bool) -> String, raw: bool, bar_cols: usize) -> String {
    let mut s = format!("# <percentile> <{metric}>\n");
    if values.is_empty() {
        s.push_str("# no snapshot");
        return s;
    }
    let sum: u128 = values.iter().map(|&v| u128::from(v)).sum();
    let _ = writeln!(s, "# avr:\t{}", format(sum as f64 / values.len() as f64, raw));
    if all {
        let lines: Vec<String> = values.iter().enumerate().map(|(i, &v)| format!("{i} {}", format(v as f64, raw))).collect();
        s.push_str(&lines.join("\n"));
        return s;
    }
    let at = |p: i64| values[percentile_index(p, values.len())];
    let max = percentiles.iter().map(|&p| at(p)).max().unwrap_or(0);
    let per_col = if max > 0 { max as f64 / bar_cols as f64 } else { 1.0 };
    let lines: Vec<String> = percentiles
        .iter()
        .map(|&p| {
            let v = at(p);
            let mut line = format!("{p:3} {:>15}", format(v as f64, raw));
            if bar_cols > 0 {
                let cols = ((v as f64 / per_col) as usize).min(bar_cols);
                let _ = write!(line, " |{}{}|", "*".repeat(cols), " ".repeat(bar_cols - cols));
            }
            line
        })
        .collect();
    s.push_str(&lines.join("\n"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_ranges_and_indices() {
        assert_eq!(percentiles(0, 101, 25), [0, 25, 50, 75, 100]);
        assert_eq!(percentiles(100, -1, -50), [100, 50, 0]);
        assert!(percentiles(1, 1, 1).is_empty());
        assert_eq!(percentile_index(100, 4), 3);
        assert_eq!(percentile_index(50, 5), 2);
    }

    #[test]
    fn table_matches_damo_layout() {
        let raw = |v: f64, _| format!("{}", v as u64);
        let t = format("wss", &[10, 20, 30, 40], &[0, 100], false, raw, true, 4);
        assert_eq!(t, "# <percentile> <wss>\n# avr:\t25\n  0              10 |*   |\n100              40 |****|");
    }
}
