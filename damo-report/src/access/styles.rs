//! Turning `--style`, `--format*`, `--total_sz_only` and `--region_box` into the five
//! templates, in damo's order (set formats, style, total size only, defaults, appends).

use damo_record::model::Record;

use super::{AccessError, Format, Options, SortDsc, SortKey, Style};
use crate::colors::Colorset;

fn has_ops_filters(record: &Record) -> bool {
    record.damos.as_ref().is_some_and(|d| d.iter().any(|t| t.scheme_filters.iter().any(|f| matches!(f.filter_type.as_str(), "anon" | "active" | "memcg" | "young" | "hugepage_size" | "unmapped"))))
}

fn has_scheme_filters(record: &Record) -> bool {
    record.damos.as_ref().is_some_and(|d| d.iter().any(|t| !t.scheme_filters.is_empty()))
}

fn goal_enabled(record: &Record) -> bool {
    record.damos.as_ref().is_some_and(|d| d.iter().zip(&record.targets).any(|(t, r)| r.intervals.is_some() && t.intervals_goal.is_some_and(|g| g.aggrs != 0)))
}

fn multiple_snapshots(record: &Record) -> bool {
    record.targets.iter().any(|t| t.snapshots.len() > 1)
}

fn hist_style(fmt: &mut Format, record: &Record, temperature: bool) {
    let (legend, key, df_key) = if temperature {
        ("<temperature>", "<temperature-sz histogram>", "<temperature-df-passed-sz histogram>")
    } else {
        ("<idle time (us)>", "<recency-sz histogram>", "<recency-df-passed-sz histogram>")
    };
    let mut lines: Vec<String> = Vec::new();
    if has_ops_filters(record) {
        lines.push("# damos filters (df): <filters passed type>".into());
        lines.push(format!("{legend} <df-passed size>"));
        lines.push(df_key.into());
        lines.push(String::new());
    }
    lines.push(format!("{legend} <total size>"));
    lines.push(key.into());
    fmt.snapshot_head = Some(lines.join("\n"));
    fmt.region = Some(String::new());
}

fn percentiles_style(fmt: &mut Format, record: &Record, what: &str) {
    let mut lines: Vec<String> = Vec::new();
    if multiple_snapshots(record) {
        lines.push("snapshot time: [<start time>, <end time>] (<duration>)".into());
    }
    if has_ops_filters(record) {
        lines.push("# damos filters (df): <filters passed type>".into());
        lines.push(format!("# df-passed {what} percentiles"));
        lines.push(format!("<df-passed {what} percentiles>"));
        lines.push(String::new());
    }
    lines.push(format!("# total {what} percentiles"));
    lines.push(format!("<{what} percentiles>"));
    fmt.snapshot_head = Some(lines.join("\n"));
    fmt.region = Some(String::new());
}

fn boxes_style(fmt: &mut Format) {
    fmt.box_height = (1, 1);
    fmt.box_length = (1, 40);
    fmt.box_align_right = true;
    fmt.box_colorset = Colorset::Emotion;
}

/// Applies the options to `fmt`'s templates; `fmt` starts with the `--format_*` values.
pub fn set_formats(fmt: &mut Format, opts: &Options, record: &Record) -> Result<(), AccessError> {
    for edit in opts.format.iter().filter(|e| !e.append) {
        *fmt.slot(edit.area) = Some(edit.template.clone());
    }
    match opts.style {
        Style::SimpleBoxes => {
            fmt.snapshot_head = Some("snapshot time: [<start time>, <end time>] (<duration>)".into());
            fmt.region = Some("<box> size <size> access <access hz> age <age>".into());
            boxes_style(fmt);
        }
        Style::TemperatureSzHist => hist_style(fmt, record, true),
        Style::RecencySzHist | Style::ColdMemoryTail => hist_style(fmt, record, false),
        Style::RecencyPercentiles | Style::IdleTimePercentiles => percentiles_style(fmt, record, "recency"),
        Style::TemperaturePercentiles => percentiles_style(fmt, record, "temperature"),
        Style::Cold | Style::Hot => {
            fmt.region = Some("<box> <size> access <access hz> <age>".into());
            boxes_style(fmt);
            fmt.sort_regions_by = vec![SortKey::Temperature];
            if opts.style == Style::Hot {
                fmt.sort_dsc = vec![SortDsc::Key(SortKey::Temperature)];
            }
        }
        Style::Detailed => {}
    }
    if opts.total_sz_only {
        fmt.snapshot_head = Some(String::new());
        fmt.region = Some(String::new());
        fmt.snapshot_tail = Some("<total bytes>".into());
    }
    defaults(fmt, opts, record);
    for edit in opts.format.iter().filter(|e| e.append) {
        fmt.slot(edit.area).get_or_insert_with(String::new).push_str(&edit.template);
    }
    Ok(())
}

fn defaults(fmt: &mut Format, opts: &Options, record: &Record) {
    let filters = has_scheme_filters(record);
    if fmt.record_head.is_none() {
        fmt.record_head = Some(if record.targets.len() > 1 {
            "kdamond <kdamond index> / context <context index> / scheme <scheme index> / target id <target id> / recorded for <duration> from <abs start time>".into()
        } else {
            String::new()
        });
    }
    if fmt.record_tail.is_none() {
        let mut tail = vec!["record DAMON intervals: <intervals>"];
        if goal_enabled(record) {
            tail.push("# <intervals goal>");
        }
        fmt.record_tail = Some(tail.join("\n"));
    }
    if fmt.snapshot_head.is_none() {
        let mut lines = Vec::new();
        if multiple_snapshots(record) {
            lines.push("snapshot time: [<start time>, <end time>] (<duration>)");
        }
        lines.push("heatmap: <heatmap>");
        lines.push("intervals: <snapshot intervals>");
        if filters {
            lines.push("# damos filters (df): <filters passed type>");
            lines.push("df-pass: <filters passed heatmap>");
        }
        fmt.snapshot_head = Some(lines.join("\n"));
    }
    if fmt.snapshot_tail.is_none() {
        let mut tail = if filters {
            "memory bw estimate: <estimated memory bandwidth>  df-passed: <filters passed estimated memory bandwidth>\ntotal size: <total bytes>  df-passed <filters passed bytes>".to_string()
        } else {
            "memory bw estimate: <estimated memory bandwidth>\ntotal size: <total bytes>".to_string()
        };
        if filters {
            tail.push_str("\nscheme stats\n<damos stats>");
        }
        fmt.snapshot_tail = Some(tail);
    }
    if opts.region_box {
        let tail = fmt.snapshot_tail.as_deref().unwrap_or("");
        if !tail.contains("<region box description>") {
            // damo builds this from the record tail (sic), dropping the snapshot tail.
            fmt.snapshot_tail = Some(format!("{}\n<region box description>", fmt.record_tail.as_deref().unwrap_or("")));
        }
    }
    let default_region = "<index> addr <start address> size <size> access <access hz> age <age>";
    if opts.region_box {
        fmt.region = Some(if fmt.box_height.1 > 1 { format!("<box>{default_region}") } else { format!("<box>\n{default_region}") });
    }
    if fmt.region.is_none() {
        let mut r = default_region.to_string();
        if filters {
            r.push_str(" df-passed <filters passed bytes>");
        }
        fmt.region = Some(r);
    }
}
