//! FlameGraph's folded stack lines (`root;caller;callee count`) and SVGs made from them with
//! inferno.

use std::{collections::HashMap, io::Write};

use anyhow::{Context, Result};
use inferno::{
    differential,
    flamegraph::{self, Options},
};

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
            if frame.contains(';') {
                line.extend(frame.chars().map(|c| if c == ';' { ':' } else { c }));
            } else {
                line.push_str(frame);
            }
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
        self.write_flamegraph_noted(title, None, out)
    }

    /// An interactive flamegraph SVG with a subtitle (what the stacks lack, see
    /// [`crate::attribution::Quality::note`]).
    pub fn write_flamegraph_noted(&self, title: &str, subtitle: Option<&str>, out: &mut dyn Write) -> Result<()> {
        let lines = self.lines();
        let mut options = Options::default();
        options.title = title.to_string();
        options.subtitle = subtitle.map(str::to_owned);
        options.count_name = "samples".to_string();
        // Colours from the function names: a function keeps its colour across the per-phase
        // and per-selection flamegraphs of one record.
        options.hash = true;
        flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out).context("failed to draw the flamegraph")
    }
}

impl FoldedStacks {
    /// A differential flamegraph (inferno's, after Brendan Gregg's): frames are sized by
    /// `self`'s samples and coloured by how their share changed from `baseline` (red: more
    /// of `self` is spent there, blue: less). `baseline` is scaled to `self`'s total first,
    /// so selections of different lengths compare.
    pub fn write_differential(&self, baseline: &FoldedStacks, title: &str, out: &mut dyn Write) -> Result<()> {
        let (before, after) = (baseline.lines().join("\n"), self.lines().join("\n"));
        let mut both = Vec::new();
        differential::from_readers(differential::Options { normalize: true, strip_hex: false }, before.as_bytes(), after.as_bytes(), &mut both).context("failed to compare the stacks")?;
        let both = String::from_utf8(both).context("differential stacks are not UTF-8")?;
        let mut options = Options::default();
        options.title = title.to_string();
        options.subtitle = Some("red: a larger share of the samples than in the baseline, blue: a smaller one".into());
        options.count_name = "samples".to_string();
        flamegraph::from_lines(&mut options, both.lines(), out).context("failed to draw the differential flamegraph")
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

    #[test]
    fn differential_flamegraph_colours_what_grew_red_and_what_shrank_blue() {
        let (mut hot, mut rest) = (FoldedStacks::default(), FoldedStacks::default());
        hot.add(["main", "scan_hot"], 90);
        hot.add(["main", "idle"], 10);
        rest.add(["main", "scan_hot"], 100);
        rest.add(["main", "idle"], 900);
        let mut svg = Vec::new();
        hot.write_differential(&rest, "hot vs rest", &mut svg).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        // inferno colours a frame rgb(255,x,x) when it grew and rgb(x,x,255) when it shrank.
        let fill_of = |name: &str| {
            let at = svg.find(&format!("<title>{name} (")).unwrap_or_else(|| panic!("{name} missing"));
            let rect = &svg[at..];
            let fill = &rect[rect.find("fill=\"").unwrap() + 6..];
            fill[..fill.find('"').unwrap()].to_owned()
        };
        assert!(fill_of("scan_hot").starts_with("rgb(255,"), "grown frame not red: {}", fill_of("scan_hot"));
        assert!(fill_of("idle").ends_with(",255)"), "shrunk frame not blue: {}", fill_of("idle"));
    }
}
