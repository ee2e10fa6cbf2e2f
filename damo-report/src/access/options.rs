//! `report access` options, typed, with damo's defaults written once (`defaults`): the CLI
//! takes its defaults from here, and a test there checks that they agree.

use crate::{
    colors::Colorset,
    names::{named_enum, Named},
};

use super::{AccessError, BoxValue, SortKey};

named_enum! {
    /// damo's pre-configured output styles (`--style`).
    pub enum Style {
        Detailed = "detailed",
        SimpleBoxes = "simple-boxes",
        TemperatureSzHist = "temperature-sz-hist",
        RecencySzHist = "recency-sz-hist",
        ColdMemoryTail = "cold-memory-tail",
        RecencyPercentiles = "recency-percentiles",
        IdleTimePercentiles = "idle-time-percentiles",
        TemperaturePercentiles = "temperature-percentiles",
        Cold = "cold",
        Hot = "hot",
    }
}

/// `--sort_regions_dsc`: a key that sorts in descending order, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDsc {
    Key(SortKey),
    All,
}

impl SortDsc {
    /// Whether `key` sorts in descending order under this choice.
    pub fn covers(self, key: SortKey) -> bool {
        match self {
            SortDsc::Key(k) => k == key,
            SortDsc::All => true,
        }
    }
}

impl std::str::FromStr for SortDsc {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(SortDsc::All),
            _ => s.parse().map(SortDsc::Key),
        }
    }
}

impl Named for SortDsc {
    /// The sort keys' names and "all".
    const NAMES: &'static [&'static str] = &["address", "access_rate", "age", "size", "temperature", "all"];
}

named_enum! {
    /// How a box dimension maps values onto its display range.
    pub enum Scale {
        Linear = "linear",
        Log = "log",
    }
}

named_enum! {
    /// Where region boxes are aligned.
    pub enum Align {
        Left = "left",
        Right = "right",
    }
}

named_enum! {
    /// The templates `--format ACTION AREA TEMPLATE` edits.
    pub enum FormatArea {
        RecordHead = "record_head",
        SnapshotHead = "snapshot_head",
        Region = "region",
        SnapshotTail = "snapshot_tail",
        RecordTail = "record_tail",
    }
}

/// One `--format <set|append> <area> <template>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatEdit {
    /// Append to the template rather than replace it.
    pub append: bool,
    pub area: FormatArea,
    pub template: String,
}

impl FormatEdit {
    /// Reads the three words of a `--format`, refusing others with damo's messages.
    pub fn parse(words: &[String]) -> Result<Self, AccessError> {
        let [action, area, template] = words else {
            return Err(AccessError::Usage(format!("wrong nr of --format option ({words:?})")));
        };
        let append = match action.as_str() {
            "set" => false,
            "append" => true,
            _ => return Err(AccessError::Usage(format!("wrong --format action ({words:?})"))),
        };
        let area = area.parse().map_err(|_| AccessError::Usage(format!("wrong --format target area ({words:?})")))?;
        Ok(FormatEdit { append, area, template: template.clone() })
    }
}

/// damo's defaults of `report access`.
pub mod defaults {
    use super::{Align, BoxValue, Colorset, Scale, SortKey, Style};

    pub const STYLE: Style = Style::Detailed;
    pub const SORT_REGIONS_BY: [SortKey; 1] = [SortKey::Address];
    pub const TEMPERATURE_WEIGHTS: [i64; 3] = [0, 100, 100];
    pub const SNAPSHOT_HEATMAP_WIDTH: usize = 80;
    pub const SNAPSHOT_HEATMAP_COLORSET: Colorset = Colorset::Gray;
    pub const REGION_BOX_VALUES: [Option<BoxValue>; 3] = [Some(BoxValue::Age), Some(BoxValue::AccessRate), Some(BoxValue::Size)];
    pub const REGION_BOX_MIN_MAX_LENGTH: (i64, i64) = (1, 30);
    pub const REGION_BOX_MIN_MAX_HEIGHT: (i64, i64) = (1, 5);
    pub const REGION_BOX_COLORSET: Colorset = Colorset::Gray;
    pub const REGION_BOX_SCALES: [Scale; 3] = [Scale::Log, Scale::Linear, Scale::Log];
    pub const REGION_BOX_ALIGN: Align = Align::Left;
}

/// `report access` options.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub style: Style,
    pub percentiles_range: Option<Vec<i64>>,
    pub sort_regions_by: Vec<SortKey>,
    pub sort_regions_dsc: Vec<SortDsc>,
    pub temperature_weights: [i64; 3],
    pub hist_logscale: bool,
    /// Pairs of values; their unit depends on the histogram's key, so they are read there.
    pub hist_ranges: Option<Vec<String>>,
    pub hist_cumulate: bool,
    pub format: Vec<FormatEdit>,
    pub format_record_head: Option<String>,
    pub format_record_tail: Option<String>,
    pub format_snapshot_head: Option<String>,
    pub format_snapshot_tail: Option<String>,
    pub format_region: Option<String>,
    pub snapshot_heatmap_width: usize,
    pub snapshot_heatmap_colorset: Colorset,
    pub snapshot_heatmap_static: bool,
    pub region_box: bool,
    /// What the box's length, color and height show (`None`: nothing).
    pub region_box_values: [Option<BoxValue>; 3],
    pub region_box_min_max_length: (i64, i64),
    pub region_box_min_max_height: (i64, i64),
    pub region_box_colorset: Colorset,
    /// Scales of the box's length, color and height.
    pub region_box_scales: [Scale; 3],
    pub region_box_align: Align,
    /// Extra `--min_chars_for` pairs (damo's defaults come first and win).
    pub min_chars_for: Vec<(String, usize)>,
    pub total_sz_only: bool,
    pub raw_number: bool,
    pub json: bool,
    pub raw_form: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            style: defaults::STYLE,
            percentiles_range: None,
            sort_regions_by: defaults::SORT_REGIONS_BY.to_vec(),
            sort_regions_dsc: Vec::new(),
            temperature_weights: defaults::TEMPERATURE_WEIGHTS,
            hist_logscale: false,
            hist_ranges: None,
            hist_cumulate: false,
            format: Vec::new(),
            format_record_head: None,
            format_record_tail: None,
            format_snapshot_head: None,
            format_snapshot_tail: None,
            format_region: None,
            snapshot_heatmap_width: defaults::SNAPSHOT_HEATMAP_WIDTH,
            snapshot_heatmap_colorset: defaults::SNAPSHOT_HEATMAP_COLORSET,
            snapshot_heatmap_static: false,
            region_box: false,
            region_box_values: defaults::REGION_BOX_VALUES,
            region_box_min_max_length: defaults::REGION_BOX_MIN_MAX_LENGTH,
            region_box_min_max_height: defaults::REGION_BOX_MIN_MAX_HEIGHT,
            region_box_colorset: defaults::REGION_BOX_COLORSET,
            region_box_scales: defaults::REGION_BOX_SCALES,
            region_box_align: defaults::REGION_BOX_ALIGN,
            min_chars_for: Vec::new(),
            total_sz_only: false,
            raw_number: false,
            json: false,
            raw_form: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_edits_are_checked_with_damos_messages() {
        let words = |w: [&str; 3]| w.map(String::from).to_vec();
        assert_eq!(FormatEdit::parse(&words(["append", "region", "x"])).unwrap(), FormatEdit { append: true, area: FormatArea::Region, template: "x".into() });
        let e = FormatEdit::parse(&words(["sett", "region", "x"])).unwrap_err().to_string();
        assert_eq!(e, r#"wrong --format action (["sett", "region", "x"])"#);
        let e = FormatEdit::parse(&words(["set", "body", "x"])).unwrap_err().to_string();
        assert_eq!(e, r#"wrong --format target area (["set", "body", "x"])"#);
    }

    #[test]
    fn descending_all_covers_every_key() {
        assert!(SortDsc::All.covers(SortKey::Temperature));
        assert!(SortDsc::Key(SortKey::Age).covers(SortKey::Age));
        assert!(!SortDsc::Key(SortKey::Age).covers(SortKey::Size));
        // Every name parses: the keys', then "all".
        assert_eq!(&SortDsc::NAMES[..SortKey::NAMES.len()], SortKey::NAMES);
        assert!(SortDsc::NAMES.iter().all(|n| n.parse::<SortDsc>().is_ok()));
    }
}
