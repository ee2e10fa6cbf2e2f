//! Turning `--style`, `--format*`, `--total_sz_only` and `--region_box` into the five
//! templates, in damo's order (set formats, style, total size only, defaults, appends).

use damo_record::model::Record;

use super::{AccessError, Format, Options};

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
    fmt.box_colorset = "emotion".into();
}

/// Applies the options to `fmt`'s templates; `fmt` starts with the `--format_*` values.
pub fn set_formats(fmt: &mut Format, opts: &Options, record: &Record) -> Result<(), AccessError> {
    for f in &opts.format {
        let [action, area, text] = f.as_slice() else {
            return Err(AccessError::Usage(format!("wrong nr of --format option ({f:?})")));
        };
        if action != "set" && action != "append" {
            return Err(AccessError::Usage(format!("wrong --format action ({f:?})")));
        }
        let slot = fmt.slot(area).ok_or_else(|| AccessError::Usage(format!("wrong --format target area ({f:?})")))?;
        if action == "set" {
            *slot = Some(text.clone());
        }
    }
    match opts.style.as_str() {
        "simple-boxes" => {
            fmt.snapshot_head = Some("snapshot time: [<start time>, <end time>] (<duration>)".into());
            fmt.region = Some("<box> size <size> access <access hz> age <age>".into());
            boxes_style(fmt);
        }
        "temperature-sz-hist" => hist_style(fmt, record, true),
        "recency-sz-hist" | "cold-memory-tail" => hist_style(fmt, record, false),
        "recency-percentiles" | "idle-time-percentiles" => percentiles_style(fmt, record, "recency"),
        "temperature-percentiles" => percentiles_style(fmt, record, "temperature"),
        "cold" | "hot" => {
            fmt.region = Some("<box> <size> access <access hz> <age>".into());
            boxes_style(fmt);
            fmt.sort_regions_by = vec![super::SortKey::Temperature];
            if opts.style == "hot" {
                fmt.sort_dsc = vec!["temperature".into()];
            }
        }
        _ => {}
    }
    if opts.total_sz_only {
        fmt.snapshot_head = Some(String::new());
        fmt.region = Some(String::new());
        fmt.snapshot_tail = Some("<total bytes>".into());
    }
    defaults(fmt, opts, record);
    for f in &opts.format {
        if let [action, area, text] = f.as_slice() {
            if action == "append" {
                if let Some(slot) = fmt.slot(area) {
                    slot.get_or_insert_with(String::new).push_str(text);
                }
            }
        }
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
