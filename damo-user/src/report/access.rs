//! `report access` and `report raw` options: damo's names, defaults and choices.

use std::io::Write;

use anyhow::{bail, Result};
use damo_report::{
    access::{self, defaults, Align, BoxValue, FormatEdit, Options, Scale, SortDsc, SortKey, Style},
    colors::Colorset,
};

use damo_record::native::Rest;

use super::options::{accumulate, named, FilterArgs, InputArgs};

#[derive(Debug, Clone, clap::Args)]
#[command(rename_all = "snake_case")]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Output style among damo's pre-configured ones.
    #[arg(long, default_value = defaults::STYLE.name(), value_parser = named::<Style>())]
    pub style: Style,
    /// Percentiles to show: up to three numbers are Python range() arguments, more are a list.
    #[arg(long, num_args = 1.., allow_negative_numbers = true)]
    pub percentiles_range: Option<Vec<i64>>,
    /// Fields to sort regions by, applied in turn.
    #[arg(long, num_args = 1.., default_values = defaults::SORT_REGIONS_BY.map(SortKey::name), value_parser = named::<SortKey>())]
    pub sort_regions_by: Vec<SortKey>,
    /// Sort regions in descending order for these keys ("all" for every key).
    #[arg(long, num_args = 1.., value_parser = named::<SortDsc>())]
    pub sort_regions_dsc: Option<Vec<SortDsc>>,
    /// Temperature weights of size, access rate and age.
    #[arg(long, num_args = 3, default_values_t = defaults::TEMPERATURE_WEIGHTS, allow_negative_numbers = true)]
    pub temperature_weights: Vec<i64>,
    /// Draw histograms in log scale.
    #[arg(long)]
    pub hist_logscale: bool,
    /// Histogram ranges: pairs of min and max values.
    #[arg(long, num_args = 1.., allow_hyphen_values = true)]
    pub hist_ranges: Option<Vec<String>>,
    /// Draw histograms cumulatively.
    #[arg(long)]
    pub hist_cumulate: bool,
    /// Customize a template: <set|append> <record_head|snapshot_head|region|snapshot_tail|record_tail> <template>.
    #[arg(long, num_args = 3, action = clap::ArgAction::Append, allow_hyphen_values = true)]
    pub format: Vec<String>,
    /// Template shown at the beginning of each record.
    #[arg(long)]
    pub format_record_head: Option<String>,
    /// Template shown at the end of each record.
    #[arg(long)]
    pub format_record_tail: Option<String>,
    /// Template shown at the beginning of each snapshot.
    #[arg(long)]
    pub format_snapshot_head: Option<String>,
    /// Template shown at the end of each snapshot.
    #[arg(long)]
    pub format_snapshot_tail: Option<String>,
    /// Template shown for each region.
    #[arg(long)]
    pub format_region: Option<String>,
    /// Width of the snapshot heatmap.
    #[arg(long, default_value_t = defaults::SNAPSHOT_HEATMAP_WIDTH)]
    pub snapshot_heatmap_width: usize,
    /// Colorset of the snapshot heatmap.
    #[arg(long, default_value = defaults::SNAPSHOT_HEATMAP_COLORSET.name(), value_parser = named::<Colorset>())]
    pub snapshot_heatmap_colorset: Colorset,
    /// Draw gaps of the snapshot heatmap to scale.
    #[arg(long)]
    pub snapshot_heatmap_static: bool,
    /// Show each region's access pattern as a box.
    #[arg(long)]
    pub region_box: bool,
    /// Values the box's length, color and height show.
    #[arg(long, num_args = 3, default_values = defaults::REGION_BOX_VALUES.map(|v| v.map_or("none", BoxValue::name)), value_parser = ["size", "access_rate", "age", "none"])]
    pub region_box_values: Vec<String>,
    /// Minimum and maximum box length.
    #[arg(long, num_args = 2, default_values_t = pair(defaults::REGION_BOX_MIN_MAX_LENGTH))]
    pub region_box_min_max_length: Vec<i64>,
    /// Minimum and maximum box height.
    #[arg(long, num_args = 2, default_values_t = pair(defaults::REGION_BOX_MIN_MAX_HEIGHT))]
    pub region_box_min_max_height: Vec<i64>,
    /// Colorset of the region box.
    #[arg(long, default_value = defaults::REGION_BOX_COLORSET.name(), value_parser = named::<Colorset>())]
    pub region_box_colorset: Colorset,
    /// Scales of the box's length, color and height.
    #[arg(long, num_args = 3, default_values = defaults::REGION_BOX_SCALES.map(Scale::name), value_parser = named::<Scale>())]
    pub region_box_scales: Vec<Scale>,
    /// Where to align the region box.
    #[arg(long, default_value = defaults::REGION_BOX_ALIGN.name(), value_parser = named::<Align>())]
    pub region_box_align: Align,
    /// Minimum characters of a keyword's text (damo's defaults for a keyword come first and win).
    #[arg(long, num_args = 2, action = clap::ArgAction::Append, value_names = ["KEYWORD", "NUMBER"])]
    pub min_chars_for: Vec<String>,
    /// Print only the total size of each snapshot's regions.
    #[arg(long)]
    pub total_sz_only: bool,
    /// Use machine-friendly raw numbers.
    #[arg(long)]
    pub raw_number: bool,
    /// Print in JSON.
    #[arg(long)]
    pub json: bool,
    /// Print damo's raw region listing.
    #[arg(long)]
    pub raw_form: bool,
}

/// The two numbers of a `(min, max)` default, as the command line takes them.
fn pair((min, max): (i64, i64)) -> [i64; 2] {
    [min, max]
}

impl Args {
    pub(crate) fn options(&self) -> Result<Options> {
        let three = |v: &[String], what: &str| -> Result<[Option<BoxValue>; 3]> {
            match v {
                // "none" shows nothing.
                [a, b, c] => Ok([a, b, c].map(|v| v.parse().ok())),
                _ => bail!("{what} takes three values"),
            }
        };
        let two = |v: &[i64], what: &str| -> Result<(i64, i64)> {
            match v {
                [a, b] => Ok((*a, *b)),
                _ => bail!("{what} takes two values"),
            }
        };
        let [w0, w1, w2] = self.temperature_weights.as_slice() else { bail!("--temperature_weights takes three values") };
        let values = three(&self.region_box_values, "--region_box_values")?;
        let &[length_scale, color_scale, height_scale] = self.region_box_scales.as_slice() else { bail!("--region_box_scales takes three values") };
        let mut min_chars = Vec::new();
        for pair in self.min_chars_for.chunks(2) {
            let [k, n] = pair else { bail!("--min_chars_for takes two values") };
            let n: usize = n.parse().map_err(|_| anyhow::anyhow!("wrong --min_chars_for number {n:?}"))?;
            min_chars.push((k.clone(), n));
        }
        if self.percentiles_range.as_ref().is_some_and(|r| r.len() == 3 && r[2] == 0) {
            bail!("--percentiles_range: the step must not be zero");
        }
        Ok(Options {
            style: self.style,
            percentiles_range: self.percentiles_range.clone(),
            sort_regions_by: self.sort_regions_by.clone(),
            sort_regions_dsc: self.sort_regions_dsc.clone().unwrap_or_default(),
            temperature_weights: [*w0, *w1, *w2],
            hist_logscale: self.hist_logscale,
            hist_ranges: self.hist_ranges.clone(),
            hist_cumulate: self.hist_cumulate,
            format: self.format.chunks(3).map(FormatEdit::parse).collect::<Result<_, _>>()?,
            format_record_head: self.format_record_head.clone(),
            format_record_tail: self.format_record_tail.clone(),
            format_snapshot_head: self.format_snapshot_head.clone(),
            format_snapshot_tail: self.format_snapshot_tail.clone(),
            format_region: self.format_region.clone(),
            snapshot_heatmap_width: self.snapshot_heatmap_width,
            snapshot_heatmap_colorset: self.snapshot_heatmap_colorset,
            snapshot_heatmap_static: self.snapshot_heatmap_static,
            region_box: self.region_box,
            region_box_values: values,
            region_box_min_max_length: two(&self.region_box_min_max_length, "--region_box_min_max_length")?,
            region_box_min_max_height: two(&self.region_box_min_max_height, "--region_box_min_max_height")?,
            region_box_colorset: self.region_box_colorset,
            region_box_scales: [length_scale, color_scale, height_scale],
            region_box_align: self.region_box_align,
            min_chars_for: min_chars,
            total_sz_only: self.total_sz_only,
            raw_number: self.raw_number,
            json: self.json,
            raw_form: self.raw_form,
        })
    }
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let opts = args.options()?;
    let filter = args.filter.to_filter()?;
    let path = &args.input.input;
    // Only the chosen snapshots are kept (a day of recording does not fit in memory).
    let mut chosen = access::chosen::Chosen::new(&filter);
    let rest = accumulate(path, Rest::Keep, &mut chosen)?;
    let record = chosen.into_record(rest).map_err(|over| anyhow::anyhow!("{}: {over}", path.display()))?;
    access::check_text_size(&record, &opts)?;
    if record.targets.is_empty() {
        writeln!(out, "No record in {}", args.input.input.display())?;
        return Ok(());
    }
    let text = access::report(&record, &opts)?;
    writeln!(out, "{text}")?;
    Ok(())
}

/// `report raw`: `report access --raw_form`.
pub fn run_raw(mut args: Args, out: &mut dyn Write) -> Result<()> {
    args.raw_form = true;
    run(args, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_become_typed_options() {
        let args: Args = super::super::tests::parse(&["--style", "hot", "--sort_regions_dsc", "all", "--region_box_values", "size", "none", "age", "--region_box_align", "right"]);
        let o = args.options().unwrap();
        assert_eq!((o.style, o.sort_regions_dsc, o.region_box_values, o.region_box_align), (Style::Hot, vec![SortDsc::All], [Some(BoxValue::Size), None, Some(BoxValue::Age)], Align::Right));
    }
}
