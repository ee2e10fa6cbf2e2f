//! FlameGraph's folded stack lines (`root;caller;callee count`) and SVGs made from them with
//! inferno.

use std::{collections::HashMap, io::Write};

use anyhow::{Context, Result};
use inferno::flamegraph::{self, Options};

/// Counts of identical stacks, each a list of frame names outermost first.
#[derive(Debug, Default, Clone)]
pub struct FoldedStacks {
    counts: HashMap<String, u64>,
}

impl FoldedStacks {
    /// Adds `count` samples of a stack given outermost frame first.
    pub fn add<'a>(&mut self, frames: impl IntoIterator<Item = &'a str>, count: u64) {
        let mut line = String::new();
        for frame in frames {
            if !line.is_empty() {
                line.push(';');
            }
            // `;` separates frames and a trailing number is the count: keep names from
            // breaking either (C++/Rust names can hold `;` only in odd cases, spaces often).
            line.extend(frame.chars().map(|c| if c == ';' { ':' } else { c }));
        }
        if line.is_empty() {
            line.push_str("[no frames]");
        }
        *self.counts.entry(line).or_default() += count;
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The folded lines, sorted, as flamegraph.pl and inferno read them.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.counts.iter().map(|(stack, n)| format!("{stack} {n}")).collect();
        lines.sort();
        lines
    }

    pub fn write_folded(&self, out: &mut dyn Write) -> Result<()> {
        for line in self.lines() {
            writeln!(out, "{line}")?;
        }
        Ok(())
    }

    /// An interactive flamegraph SVG.
    pub fn write_flamegraph(&self, title: &str, out: &mut dyn Write) -> Result<()> {
        let lines = self.lines();
        let mut options = Options::default();
        options.title = title.to_string();
        options.count_name = "samples".to_string();
        flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
            .context("failed to draw the flamegraph")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_identical_stacks_and_sorts() {
        let mut folded = FoldedStacks::default();
        folded.add(["main", "compute"], 2);
        folded.add(["main", "fill", "memset"], 1);
        folded.add(["main", "compute"], 3);
        folded.add(["odd;name"], 1);
        folded.add([], 1);
        assert_eq!(folded.total(), 8);
        assert_eq!(folded.lines(), ["[no frames] 1", "main;compute 5", "main;fill;memset 1", "odd:name 1"]);
    }

    #[test]
    fn flamegraph_is_an_svg_with_the_frames() {
        let mut folded = FoldedStacks::default();
        folded.add(["main", "workload_compute"], 60);
        folded.add(["main", "workload_fill", "__memset_avx2"], 40);
        let mut svg = Vec::new();
        folded.write_flamegraph("test", &mut svg).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.starts_with("<?xml"), "not an SVG document");
        for frame in ["workload_compute", "workload_fill", "__memset_avx2"] {
            assert!(svg.contains(frame), "{frame} missing from the SVG");
        }
    }
}
