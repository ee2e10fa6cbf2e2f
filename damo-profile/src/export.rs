//! `report export`: selected stack samples as a file for other tools, in a format chosen by
//! name or by the output's extension, at the period they were sampled at, on the wall clock
//! when the record knows it. A new format is a variant here and an arm in [`write`].

use std::{io::Write, path::Path};

use damo_record::model::{Record, StackSample};

use crate::{pprof, speedscope, stacks::Namer};

/// The file formats `report export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// google/pprof's profile.proto, gzip-compressed.
    Pprof,
    /// speedscope's JSON file format.
    Speedscope,
}

impl Format {
    /// The format an output name implies: .pb.gz or .pprof for pprof, .json for speedscope.
    pub fn of_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".pb.gz") || name.ends_with(".pprof") {
            Some(Format::Pprof)
        } else if name.ends_with(".json") {
            Some(Format::Speedscope)
        } else {
            None
        }
    }
}

/// The time one sample stands for, and where that figure came from (for the summary line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub ns: u64,
    pub source: &'static str,
}

/// The sampling period: `sample_hz` when given, else the rate the record says, else the
/// median gap between a thread's samples, or 99 Hz when there are too few to tell.
pub fn period(record: &Record, sample_hz: Option<u64>) -> Period {
    let recorded_hz = record.metadata.as_ref().map_or(0, |m| m.sample_hz);
    let (ns, source) = match sample_hz.filter(|&hz| hz > 0) {
        Some(hz) => (1_000_000_000 / hz, "--sample_hz"),
        None if recorded_hz > 0 => (1_000_000_000 / recorded_hz, "the record's sampling rate"),
        None => match crate::stacks::sampling_period_ns(&record.samples) {
            (p, true) => (p, "the median gap between samples"),
            (p, false) => (p, "the default 99 Hz: too few samples to measure the rate"),
        },
    };
    Period { ns, source }
}

/// What an export writes besides its samples.
pub struct Output<'a> {
    pub format: Format,
    /// The time one sample stands for.
    pub period_ns: u64,
    pub title: &'a str,
}

/// Writes `selected` (samples of `record`) as `output` says to `w`; in pprof, each sample with
/// its `labels` (one list per sample, or none at all).
pub fn write(output: &Output, record: &Record, selected: &[&StackSample], labels: &[pprof::SampleLabels], namer: &mut Namer, w: &mut dyn Write) -> anyhow::Result<()> {
    let Output { format, period_ns, title } = *output;
    match format {
        Format::Pprof => {
            let mut profile = pprof::build_labelled(&record.modules, selected, labels, namer, period_ns, title);
            // Record times are CLOCK_MONOTONIC; pprof wants the wall clock, when it is known.
            if let Some(offset) = record.metadata.as_ref().and_then(|m| m.realtime_offset_ns) {
                profile.time_nanos = profile.time_nanos.saturating_add(offset);
            }
            pprof::write(&profile, w)?;
        }
        Format::Speedscope => serde_json::to_writer(w, &speedscope::build(&record.modules, selected, namer, period_ns, title))?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_output_name() {
        assert_eq!(Format::of_path(Path::new("out/cpu.pb.gz")), Some(Format::Pprof));
        assert_eq!(Format::of_path(Path::new("cpu.PPROF")), Some(Format::Pprof));
        assert_eq!(Format::of_path(Path::new("run.speedscope.json")), Some(Format::Speedscope));
        assert_eq!(Format::of_path(Path::new("run.gz")), None);
        assert_eq!(Format::of_path(Path::new("profile")), None);
    }

    #[test]
    fn the_period_prefers_the_option_then_the_record() {
        let mut record = Record::default();
        assert_eq!(period(&record, Some(1000)), Period { ns: 1_000_000, source: "--sample_hz" });
        record.metadata = Some(damo_record::model::Metadata { sample_hz: 100, ..Default::default() });
        assert_eq!(period(&record, None), Period { ns: 10_000_000, source: "the record's sampling rate" });
    }
}
