//! `report profile`'s output: the selection, what its stacks lack, the responsible function
//! and the most distinctive frames against the rest of the record (with a selection), and
//! the self-time table; as text or as JSON.

use std::io::{self, Write};

use serde::Serialize;

use crate::{
    attribution::{Attribution, FrameShare, Quality},
    table::{Row, Table},
};

/// What `report profile` found.
pub struct Profile {
    /// What was selected, for the header.
    pub what: String,
    pub quality: Quality,
    /// Against the rest of the record; only with a selection (without one there is no rest).
    pub attributed: Option<Attribution>,
    pub table: Table,
}

/// `report profile --json`. Printed with its keys sorted, as [`crate::json`] prints.
#[derive(Debug, Serialize)]
pub struct ProfileJson<'a> {
    pub selection: &'a str,
    pub samples: u64,
    pub notes: Vec<String>,
    pub responsible: Option<&'a str>,
    pub chain: &'a [String],
    pub distinctive: &'a [FrameShare],
    pub rows: Vec<Row>,
}

impl Profile {
    /// The JSON document with `top` distinctive frames and rows.
    pub fn json(&self, top: usize) -> ProfileJson<'_> {
        let a = self.attributed.as_ref();
        ProfileJson {
            selection: &self.what,
            samples: self.table.total(),
            notes: self.quality.lines(),
            responsible: a.and_then(|a| a.responsible.as_deref()),
            chain: a.map_or(&[], |a| &a.chain),
            distinctive: a.map_or(&[], |a| &a.frames[..a.frames.len().min(top)]),
            rows: self.table.rows(top),
        }
    }

    /// The text report with `top` distinctive frames and rows.
    pub fn write_text(&self, top: usize, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "# {}", self.what)?;
        for line in self.quality.lines() {
            writeln!(out, "# note: {line}")?;
        }
        if let Some(a) = &self.attributed {
            match &a.responsible {
                Some(r) => writeln!(out, "# responsible: {r} (call chain to the hot leaf: {})", a.chain.join(" > "))?,
                None => writeln!(out, "# responsible: none (the selection runs what the rest of the record runs)")?,
            }
            writeln!(out, "#\n# By distinctive share: of the selection's stacks containing the frame, minus of the rest's\n# {:>8}  {:>9}  {:>9}  Function", "Distinct", "Selected", "Rest")?;
            for f in a.frames.iter().take(top) {
                writeln!(out, "  {:>+7.2}%  {:>8.2}%  {:>8.2}%  {}", f.distinctive * 100.0, f.inside * 100.0, f.rest * 100.0, f.function)?;
            }
            writeln!(out, "#\n# By self time")?;
        }
        out.write_all(self.table.text(top).as_bytes())
    }
}

/// One phase of `report phases --json`. Printed with its keys sorted, as [`crate::json`]
/// prints.
#[derive(Debug, Serialize)]
pub struct PhaseJson<'a> {
    /// Counted from 1.
    pub phase: usize,
    /// Seconds since the record's first snapshot.
    pub start_s: f64,
    pub end_s: f64,
    /// The record's clock (CLOCK_MONOTONIC ns).
    pub start_ns: u64,
    pub end_ns: u64,
    /// The first and last snapshot's index.
    pub snapshots: [usize; 2],
    pub mean_wss_bytes: u64,
    pub hot_ranges: Vec<HotRange>,
    pub samples: u64,
    pub incomplete_stacks: usize,
    pub responsible: Option<&'a str>,
    pub chain: &'a [String],
    /// The first and last phase (counted from 1) of the step this phase is part of, and the
    /// function that ran the whole step; absent for a step of one phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<StepJson<'a>>,
    pub distinctive: &'a [FrameShare],
    pub top: Vec<Row>,
}

/// Neighbouring phases one function ran (split where the memory it worked on changed).
#[derive(Debug, Clone, Serialize)]
pub struct StepJson<'a> {
    pub phases: [usize; 2],
    pub driver: &'a str,
}

/// An address range hot in a phase, with its mean access rate (0..1).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct HotRange {
    pub start: u64,
    pub end: u64,
    pub access_rate: f64,
}
