//! `report heatmap` options, as damo's `report heatmap` names them: when which address
//! ranges were how frequently accessed, on the terminal, as raw numbers, or as an image.
//!
//! One default differs from damo's: without `--draw_range` or `--address_range` the maps are
//! of the hot bands, the address ranges that were accessed (as `report holistic` draws
//! them), not damo's hottest contiguous range. A vaddr target's contiguous ranges span
//! 162 GiB, 201 GiB or 659 MiB in real records, where a few hot MiB are less than a pixel.
//! Given damo's options (`--draw_range hottest` or `all`, `--address_range`), the output is
//! damo's, byte for byte.

use std::io::Write;

use anyhow::{bail, Result};
use damo_report::{
    accumulate::Accumulate,
    heatmap::{
        self, ascii,
        guide::{GuideBuilder, HeatAdder},
        raw, svg,
        temperature::{self, SortedMaps},
        Colorset, Draw, DrawRange, Grid, Guide, Maps, Output, Request,
    },
    holistic::bands::{BandBuilder, BandTally, TargetBands, MAX_BANDS},
    image,
};

use damo_record::{
    cache::Whole,
    model::{Record, TargetRecord},
    native::Rest,
};

use super::options::{load_with_format, named, InputArgs, Passes, PlanBroken, Streamed};

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
    #[arg(long = "draw_range", default_value = Draw::default().name(), value_parser = named::<Draw>())]
    pub draw_range: Draw,
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

/// The record the maps are drawn from: loaded whole, or streamed from its file (a day of
/// recording does not fit in memory) with what a first pass found.
enum Input {
    Loaded(Whole, bool),
    Streamed(Streamed, FirstPass),
}

/// A streamed record's first pass: its guides, its targets (without snapshots), their band
/// tallies, and where damo starts each target's first snapshot when not where it says.
pub(super) struct FirstPass {
    pub guides: Vec<Guide>,
    pub targets: Vec<TargetRecord>,
    pub tally: BandTally,
    pub first_starts: Vec<(usize, f64)>,
}

impl Input {
    /// Streams a damo-trace record (or a damo file's cached copy) unless the maps need it
    /// whole: targets sharing a guide do (their snapshots are drawn in target order, not the
    /// file's).
    /// With `plan`, from the record's summaries where it has them: a cached copy's always,
    /// a damo-trace record's when passes follow that check it (not for `--guide` alone).
    fn read(args: &Args, plan: bool) -> Result<Input> {
        let path = &args.input.input;
        let mut src = match Passes::open(path)? {
            Passes::Stream(src) => src,
            Passes::Loaded(record, perf) => return Ok(Input::Loaded(record, perf)),
        };
        let passes_follow = !(args.guide || args.guide_human);
        if plan && (passes_follow || !src.is_record()) {
            if let Some(first) = FirstPass::of_summaries(&mut src) {
                return Ok(Input::Streamed(src, first));
            }
        }
        if let Some((first, _)) = FirstPass::read(&mut src, Rest::Drop, &mut ())? {
            return Ok(Input::Streamed(src, first));
        }
        let (record, perf) = load_with_format(path)?;
        Ok(Input::Loaded(record.into(), perf))
    }
}

impl FirstPass {
    /// The first pass over a streamed record, which also feeds `extra`; the record less its
    /// snapshots (`rest` says what else it keeps). `None` when its targets share a guide: their
    /// maps are drawn in target order, not the file's, so they need the record whole.
    pub(super) fn read(src: &mut Streamed, rest: Rest, extra: &mut impl Accumulate) -> Result<Option<(FirstPass, Record)>> {
        let mut first = ((GuideBuilder::default(), BandTally::default()), extra);
        let record = src.pass(rest, &mut first, true)?;
        let ((mut guides, tally), _) = first;
        if guides.shared() {
            return Ok(None);
        }
        let first_starts = if src.perf_script() { guides.redate_perf_script() } else { Vec::new() };
        Ok(Some((FirstPass { guides: guides.finish(), targets: record.targets.clone(), tally, first_starts }, record)))
    }

    /// What [`Self::read`] finds, from the summaries the record's end holds
    /// ([`Streamed::summaries`]), without its pass; `None` without them, or when targets share
    /// a guide.
    fn of_summaries(src: &mut Streamed) -> Option<FirstPass> {
        let summed = src.summaries()?;
        let mut guides = GuideBuilder::of_summaries(&summed.targets, &summed.summaries);
        if guides.shared() {
            return None;
        }
        src.planned_from_summaries();
        let first_starts = if src.perf_script() { guides.redate_perf_script() } else { Vec::new() };
        Some(FirstPass { guides: guides.finish(), tally: BandTally::of_summaries(&summed.summaries), targets: summed.targets, first_starts })
    }

    /// The hot bands of the target of index `index` (none when nothing of it was accessed): a
    /// pass over its snapshots.
    pub(super) fn hot_bands(&self, src: &mut Streamed, index: usize) -> Result<Vec<(u64, u64)>> {
        let Some(builder) = BandBuilder::new(self.tally.busiest(index)) else { return Ok(Vec::new()) };
        let mut bands = TargetBands { index, builder };
        src.pass_of_target(index, &mut bands)?;
        Ok(bands.builder.finish(MAX_BANDS))
    }
}

/// Points `request` at the hot bands of a streamed record's chosen target.
fn at_streamed_bands(src: &mut Streamed, first: &FirstPass, request: &mut Request) -> Result<()> {
    let Some(index) = request.band_target(&first.targets, |i| first.tally.snapshots(i)) else { return Ok(()) };
    request.at_bands(&first.targets[index], &first.hot_bands(src, index)?);
    Ok(())
}

/// The maps of a streamed record: the guide's heats (when the ranges depend on them) and
/// then the maps, each a pass over the file.
pub(super) fn build_streamed(src: &mut Streamed, first: &FirstPass, request: &Request) -> Result<Vec<Grid>> {
    let heat_unit = heatmap::heat_unit(&first.targets)?;
    let mut guide = heatmap::choose_guide(&first.guides, request)?;
    // The guide is one target's (not shared): only its snapshots are read.
    let drawn = first.targets.iter().position(|t| guide.matches(t));
    if heatmap::needs_heats(request) {
        let mut heats = HeatAdder::new(guide);
        pass_of_drawn(src, drawn, &mut heats)?;
        guide = heats.finish();
    }
    let (time, addrs) = heatmap::ranges_of(&guide, request)?;
    let first_start = first.first_starts.iter().find(|(i, _)| Some(*i) == drawn).map(|&(_, f)| f);
    let Some(weights) = request.sort_temperature else {
        let mut maps = Maps::new(&guide, time, addrs, request.resol, heat_unit)?.first_starting_at(first_start);
        pass_of_drawn(src, drawn, &mut maps)?;
        return Ok(maps.finish());
    };
    // Each snapshot is laid out by temperature as it comes (the guide is the record's own).
    let ranges = temperature::byte_ranges(&addrs)?;
    for t in &first.targets {
        temperature::intervals_of(t)?;
    }
    let maps = Maps::new(&guide, time, addrs, request.resol, heat_unit)?.first_starting_at(first_start);
    let mut sorted = SortedMaps::new(maps, ranges, weights);
    pass_of_drawn(src, drawn, &mut sorted)?;
    Ok(sorted.maps.finish())
}

/// A pass for `acc`, which reads the snapshots of the drawn target (by index) only.
pub(super) fn pass_of_drawn(src: &mut Streamed, drawn: Option<usize>, acc: &mut impl Accumulate) -> Result<()> {
    match drawn {
        Some(index) => src.pass_of_target(index, acc),
        None => src.pass(Rest::Drop, acc, false).map(drop),
    }
}

/// The maps `request` draws from `input` (`at_bands`: of the hot bands of its main target).
fn maps_of(input: &mut Input, mut request: Request, at_bands: bool) -> Result<Vec<Grid>> {
    Ok(match input {
        Input::Streamed(src, first) => {
            if at_bands {
                at_streamed_bands(src, first, &mut request)?;
            }
            build_streamed(src, first, &request)?
        }
        Input::Loaded(record, perf) => {
            if at_bands {
                request.at_hot_bands(record);
            }
            heatmap::build(record, *perf, &request)?
        }
    })
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    if args.interactive_edit {
        bail!("--interactive_edit is not supported; use --time_range and --address_range");
    }
    if args.df_passed {
        bail!("--df_passed is not supported: the record does not keep DAMOS filter-passed sizes");
    }
    let mut input = Input::read(&args, true)?;
    if args.guide || args.guide_human {
        let text = match &input {
            Input::Loaded(record, perf) => heatmap::guide_text(record, *perf, args.guide),
            Input::Streamed(_, first) => heatmap::guides_text(&first.guides, args.guide),
        };
        out.write_all(text.as_bytes())?;
        return Ok(());
    }
    let output = Output::parse(&args.output)?;
    let resol = match args.resol.as_deref() {
        Some(&[t, a]) => (t, a),
        Some(_) => bail!("--resol takes two numbers"),
        None => output.default_resol(),
    };
    if resol.0 == 0 || resol.1 == 0 {
        bail!("--resol: the resolution must be at least 1 in both axes");
    }
    let [freq_w, age_w] = args.temperature_weights[..] else { bail!("--temperature_weights takes two numbers") };
    output.check_budget(resol)?;
    let request = Request {
        kdamond_idx: args.kdamond_idx,
        context_idx: args.context_idx,
        scheme_idx: args.scheme_idx,
        tid: args.tid,
        resol,
        time_range: args.time_range.clone(),
        address_ranges: group_address_ranges(&args.address_range),
        draw_range: if args.draw_range == Draw::All { DrawRange::All } else { DrawRange::Hottest },
        sort_temperature: args.sort_temperature.then_some((freq_w, age_w)),
    };
    let at_bands = args.draw_range == Draw::Bands && args.address_range.is_empty() && !args.sort_temperature;
    let maps = match maps_of(&mut input, request.clone(), at_bands) {
        // A damaged record: its maps are drawn from what a pass reads of it.
        Err(e) if e.is::<PlanBroken>() => maps_of(&mut Input::read(&args, false)?, request, at_bands)?,
        maps => maps?,
    };
    for (idx, map) in maps.iter().enumerate() {
        match &output {
            Output::Stdout => writeln!(out, "{}", ascii::render(map, args.stdout_colorset, !args.stdout_skip_colorset_example))?,
            Output::Image(path) => {
                let labels = svg::Labels { abs_time: args.abs_time, abs_addr: args.abs_addr, sizes: args.sort_temperature };
                image::write_svg_as(&heatmap::numbered_path(path, idx), &svg::render(map, labels))?;
            }
            Output::Raw => {
                raw::write(map, args.abs_time, args.abs_addr, out)?;
                writeln!(out)?;
            }
        }
    }
    Ok(())
}
