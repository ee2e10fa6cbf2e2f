//! The `perf report`-like table of `report profile`: where the CPU was, by command, object
//! and symbol, with each row's share of the selected samples.

use std::{collections::HashMap, fmt::Write};

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub overhead_percent: f64,
    pub samples: u64,
    pub command: String,
    pub object: String,
    pub symbol: String,
}

#[derive(Default)]
pub struct Table {
    counts: HashMap<(String, String, String), u64>,
    total: u64,
}

impl Table {
    pub fn add(&mut self, command: &str, object: &str, symbol: &str) {
        *self.counts.entry((command.to_owned(), object.to_owned(), symbol.to_owned())).or_default() += 1;
        self.total += 1;
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// The `top` largest rows, largest first (ties by name, for stable output).
    pub fn rows(&self, top: usize) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .counts
            .iter()
            .map(|((command, object, symbol), &n)| Row {
                overhead_percent: n as f64 * 100.0 / self.total.max(1) as f64,
                samples: n,
                command: command.clone(),
                object: object.clone(),
                symbol: symbol.clone(),
            })
            .collect();
        rows.sort_by(|a, b| b.samples.cmp(&a.samples).then_with(|| a.symbol.cmp(&b.symbol)).then_with(|| a.command.cmp(&b.command)));
        rows.truncate(top);
        rows
    }

    pub fn text(&self, top: usize) -> String {
        let rows = self.rows(top);
        let mut s = format!("# Samples: {}\n#\n# {:>8}  {:<16} {:<24} {}\n", self.total, "Overhead", "Command", "Shared Object", "Symbol");
        for r in rows {
            let p = damo_record::text::printable;
            let _ = writeln!(s, "  {:>7.2}%  {:<16} {:<24} {}", r.overhead_percent, p(&r.command), p(&r.object), p(&r.symbol));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_sorted_by_share() {
        let mut t = Table::default();
        for _ in 0..3 {
            t.add("app", "app", "hot");
        }
        t.add("app", "libc.so.6", "memset");
        let rows = t.rows(10);
        assert_eq!(rows[0].symbol, "hot");
        assert_eq!(rows[0].overhead_percent, 75.0);
        assert_eq!(t.rows(1).len(), 1);
        assert!(t.text(10).contains("  75.00%  app"));
    }
}
