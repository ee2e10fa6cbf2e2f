//! `report heatmap` options, as damo's `report heatmap` names them: when which address
//! ranges were how frequently accessed, on the terminal, as raw numbers, or as an image.
//!
//! One default differs from damo's: without `--draw_range` or `--address_range` the maps are
//! of the hot bands, the address ranges that were accessed (as `report holistic` draws
//! them), not damo's hottest contiguous range. A vaddr target's contiguous ranges span
//! 162 GiB, 201 GiB or 659 MiB in real records, where a few hot MiB are less than a pixel.
//! Given damo's options (`--draw_range hottest` or `all`, `--address_range`), the output is
//! damo's, byte for byte.

use std::{io::Write, path::Path};

use anyhow::{bail, Result};
use damo_record::load::Format;
use damo_report::{
    heatmap::{self, ascii, raw, svg, Colorset, DrawRange, Request},
    image,
};

use super::options::{named, InputArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the heatmap goes: "stdout" (colored digits), "raw" (time, address and heat of
    /// each cell, a line each) or an image file (.svg or .png).
    #[arg(long = "output", default_value = "stdout", value_name = "OUTPUT")]
    pub output: String,
    #[command(flatten)]
    pub input: InputArgs,
    /// kdamond index of the record to draw (default: the largest target's).
    #[arg(long = "kdamond_idx", value_name = "INT")]
    pub kdamond_idx: Option<u32>,
    /// Context index of the record to draw.
    #[arg(long = "context_idx", value_name = "INT")]
    pub context_idx: Option<u32>,
    /// Scheme index of the record to draw (records of DAMOS tried regions).
    #[arg(long = "scheme_idx", value_name = "INT")]
    pub scheme_idx: Option<u32>,
    /// Target id of the record to draw.
    #[arg(long = "tid", value_name = "ID")]
    pub tid: Option<u64>,
    /// Cells along the time and the address axes (default: 40 80 on stdout, else 500 500).
    #[arg(long = "resol", num_args = 2, value_names = ["TIME", "ADDRESS"])]
    pub resol: Option<Vec<usize>>,
    /// Time range to draw: START END [BASE]; BASE is a time, "guided" (the record's start)
    /// or "guided_end" (its end). Default: the whole record.
    #[arg(long = "time_range", num_args = 1.., value_name = "TIME", allow_negative_numbers = true)]
    pub time_range: Option<Vec<String>>,
    /// Address ranges to draw when --address_range is not given: the hot bands (where the
    /// accesses were, a map each; the default), damo's hottest contiguous range, or each of
    /// the contiguous ranges.
    #[arg(long = "draw_range", value_parser = ["bands", "hottest", "all"])]
    pub draw_range: Option<String>,
    /// Address range to draw: START END [BASE]; BASE is an address or "guided" (the start of
    /// the guided range). Repeat for more maps.
    #[arg(long = "address_range", num_args = 2..=3, value_name = "ADDRESS", action = clap::ArgAction::Append, allow_negative_numbers = true)]
    pub address_range: Vec<String>,
    /// Absolute times in the output, not offsets from the map's start.
    #[arg(long = "abs_time")]
    pub abs_time: bool,
    /// Absolute addresses in the output, not offsets from the map's start.
    #[arg(long = "abs_addr")]
    pub abs_addr: bool,
    /// Print each target's time span and contiguous address ranges, to choose ranges.
    #[arg(long = "guide")]
    pub guide: bool,
    /// Like --guide, with sizes and times for humans.
    #[arg(long = "guide_human")]
    pub guide_human: bool,
    /// Colors of the terminal heatmap.
    #[arg(long = "stdout_colorset", default_value = Colorset::default().name(), value_parser = named::<Colorset>())]
    pub stdout_colorset: Colorset,
    /// Do not print the color legend under the terminal heatmap.
    #[arg(long = "stdout_skip_colorset_example")]
    pub stdout_skip_colorset_example: bool,
    /// Only the DAMOS-filter-passed parts of regions (not supported: records here do not
    /// keep the filter-passed sizes).
    #[arg(long = "df_passed")]
    pub df_passed: bool,
    /// Lay regions out by temperature instead of address (needs the record's intervals).
    #[arg(long = "sort_temperature")]
    pub sort_temperature: bool,
    /// Weights of access frequency and age in the temperature.
    #[arg(long = "temperature_weights", num_args = 2, value_names = ["FREQUENCY", "AGE"], default_values_t = [1.0, 1.0], allow_negative_numbers = true)]
    pub temperature_weights: Vec<f64>,
    /// damo's interactive zoom and scroll prompt (not supported).
    #[arg(long = "interactive_edit")]
    pub interactive_edit: bool,
}

/// clap hands repeated `--address_range` values over flat; they are regrouped into
/// START END [BASE]. A third value is a BASE when it is "guided", or when the values left
/// after it cannot pair up (so numeric BASEs are only unambiguous on the last ranges).
fn group_address_ranges(flat: &[String]) -> Option<Vec<Vec<String>>> {
    if flat.is_empty() {
        return None;
    }
    let mut groups = Vec::new();
    let mut rest = flat;
    while !rest.is_empty() {
        let take = match rest.get(2) {
            Some(base) if base == "guided" || (rest.len() - 2) % 2 == 1 => 3,
            _ => 2.min(rest.len()),
        };
        groups.push(rest[..take].to_vec());
        rest = &rest[take..];
    }
    Some(groups)
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    if args.interactive_edit {
        bail!("--interactive_edit is not supported; use --time_range and --address_range");
    }
    if args.df_passed {
        bail!("--df_passed is not supported: the record does not keep DAMOS filter-passed sizes");
    }
    let loaded = damo_record::cache::load(&args.input.input)?;
    if let Some(damage) = &loaded.damage {
        eprintln!("damo-trace: warning: {}: {damage}", args.input.input.display());
    }
    let perf = loaded.format == Format::Damo(damo_record::damo::DamoFormat::PerfScript);
    let record = loaded.record;
    if args.guide || args.guide_human {
        out.write_all(heatmap::guide_text(&record, perf, args.guide).as_bytes())?;
        return Ok(());
    }
    let to_stdout = args.output == "stdout";
    let resol = match args.resol.as_deref() {
        Some(&[t, a]) => (t, a),
        Some(_) => bail!("--resol takes two numbers"),
        None if to_stdout => (40, 80),
        None => (500, 500),
    };
    if resol.0 == 0 || resol.1 == 0 {
        bail!("--resol: the resolution must be at least 1 in both axes");
    }
    let [freq_w, age_w] = args.temperature_weights[..] else { bail!("--temperature_weights takes two numbers") };
    let image_path = (!to_stdout && args.output != "raw").then(|| Path::new(&args.output));
    if let Some(path) = image_path {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !["svg", "png"].contains(&ext.to_ascii_lowercase().as_str()) {
            bail!("--output {}: unsupported image type (use .svg or .png, or stdout or raw)", args.output);
        }
    }
    // The grid holds a heat per cell; the terminal's text and an image take a few dozen bytes
    // more per cell, raw lines are written as they are made.
    let per_cell: u64 = match (to_stdout, image_path.is_some()) {
        (true, _) => 16 + 24,
        (_, true) => 16 + 80,
        _ => 16,
    };
    let cells = (resol.0 as u64).saturating_mul(resol.1 as u64);
    damo_record::budget::check(cells.saturating_mul(per_cell), || format!("a heatmap of {}x{} cells", resol.0, resol.1))?;
    let mut request = Request {
        kdamond_idx: args.kdamond_idx,
        context_idx: args.context_idx,
        scheme_idx: args.scheme_idx,
        tid: args.tid,
        resol,
        time_range: args.time_range,
        address_ranges: group_address_ranges(&args.address_range),
        draw_range: if args.draw_range.as_deref() == Some("all") { DrawRange::All } else { DrawRange::Hottest },
        sort_temperature: args.sort_temperature.then_some((freq_w, age_w)),
    };
    let bands = args.address_range.is_empty() && !args.sort_temperature && args.draw_range.as_deref().is_none_or(|d| d == "bands");
    if bands {
        hot_bands(&record, &mut request);
    }
    let maps = heatmap::build(&record, perf, &request)?;
    for (idx, map) in maps.iter().enumerate() {
        if to_stdout {
            writeln!(out, "{}", ascii::render(map, args.stdout_colorset, !args.stdout_skip_colorset_example))?;
        } else if let Some(path) = image_path {
            let labels = svg::Labels { abs_time: args.abs_time, abs_addr: args.abs_addr, sizes: args.sort_temperature };
            image::write_svg_as(&numbered(path, idx), &svg::render(map, labels))?;
        } else {
            raw::write(map, args.abs_time, args.abs_addr, out)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

/// Bands drawn at most, as `report holistic` draws them.
const MAX_BANDS: usize = 3;

/// Points `request` at the hot bands of its target (the one the selectors name, else the
/// one with the most snapshots), a map each; leaves it as it is when nothing was accessed.
fn hot_bands(record: &damo_record::model::Record, request: &mut Request) {
    let selected = |t: &&damo_record::model::TargetRecord| {
        request.kdamond_idx.is_none_or(|k| k == t.kdamond_idx)
            && request.context_idx.is_none_or(|c| c == t.context_idx)
            && request.scheme_idx.is_none_or(|s| Some(s) == t.scheme_idx)
            && request.tid.is_none_or(|id| id == t.target_id)
    };
    let Some(target) = record.targets.iter().filter(selected).max_by_key(|t| t.snapshots.len()) else { return };
    let ranges = damo_report::holistic::bands::hot_bands(target, MAX_BANDS);
    if ranges.is_empty() {
        return;
    }
    request.kdamond_idx = Some(target.kdamond_idx);
    request.context_idx = Some(target.context_idx);
    request.scheme_idx = target.scheme_idx;
    request.tid = Some(target.target_id);
    request.address_ranges = Some(ranges.iter().map(|&(s, e)| vec![s.to_string(), e.to_string()]).collect());
}

/// damo names the image of the second and later maps `name.<idx>.ext`.
fn numbered(path: &Path, idx: usize) -> std::path::PathBuf {
    if idx == 0 {
        return path.to_path_buf();
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{stem}.{idx}.{ext}"))
}
