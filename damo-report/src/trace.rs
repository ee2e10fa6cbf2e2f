//! damo's `report trace` of a recorded trace: each DAMON tracepoint event as one line
//! (`<timestamp> <proc> <event> <fields>`), its fields in damo's units, wrapped at
//! `max_cols`. Input is text, as `perf script` or `trace-cmd report` print it.

use damo_record::units::format_nr;

use crate::heatmap::guide::format_sz_accurate;

/// The DAMON tracepoints damo knows, in its order.
pub const EVENTS: [&str; 4] = ["damon:damon_aggregated", "damon:damon_region_aggregated", "damon:damos_before_apply", "damon:damos_stat_after_apply_interval"];

/// Which tool printed the lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracer {
    /// `perf script`: `<cmd> <pid> [cpu] <timestamp>: <event>: <fields>`.
    PerfScript,
    /// `trace-cmd report`: `<cmd-pid> [cpu] [latency] <timestamp>: <event>: <fields>`.
    TraceCmd,
}

/// One event line, split as damo splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub timestamp: &'a str,
    pub proc: String,
    pub event: String,
    pub fields: Vec<&'a str>,
}

/// `None` for lines that are not events (headers, short lines).
pub fn parse(line: &str, tracer: Tracer) -> Option<Line<'_>> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 4 {
        return None;
    }
    match tracer {
        Tracer::PerfScript => Some(Line { proc: format!("{}/{}", f[0], f[1]), timestamp: chop(f[3]), event: chop(f.get(4)?).to_string(), fields: f.get(5..)?.to_vec() }),
        Tracer::TraceCmd => {
            // Some trace-cmd versions print no latency column.
            let at = if f[2].ends_with(':') { 2 } else { 3 };
            Some(Line { proc: f[0].to_string(), timestamp: chop(f.get(at)?), event: format!("damon:{}", chop(f.get(at + 1)?)), fields: f.get(at + 2..)?.to_vec() })
        }
    }
}

/// The word less its last character, as damo cuts the trailing ':'.
fn chop(word: &str) -> &str {
    word.char_indices().last().map_or(word, |(i, _)| &word[..i])
}

/// Formats events in order: the region index of `damon_aggregated` counts within a snapshot.
#[derive(Debug, Default)]
pub struct Printer {
    region_idx: u64,
    region_aggregated_idx: u64,
}

/// A malformed event's fields.
#[derive(Debug, thiserror::Error)]
#[error("malformed {event} fields {fields:?}")]
pub struct BadFields {
    pub event: String,
    pub fields: String,
}

impl Printer {
    /// The event's line (before wrapping).
    pub fn format(&mut self, line: &Line) -> Result<String, BadFields> {
        let bad = || BadFields { event: line.event.clone(), fields: line.fields.join(" ") };
        let text = match line.event.as_str() {
            "damon:damon_aggregated" => region_text(&line.fields, &mut self.region_idx, false).ok_or_else(bad)?,
            "damon:damon_region_aggregated" => region_text(&line.fields, &mut self.region_aggregated_idx, true).ok_or_else(bad)?,
            "damon:damos_before_apply" => before_apply(&line.fields).ok_or_else(bad)?,
            "damon:damos_stat_after_apply_interval" => scheme_stat(&line.fields).ok_or_else(bad)?,
            _ => line.fields.join(" "),
        };
        Ok(format!("{} {} {} {}", line.timestamp, line.proc, line.event, text))
    }
}

fn value<T: std::str::FromStr>(field: &str) -> Option<T> {
    field.split('=').nth(1)?.parse().ok()
}

/// "start-end:" as damo reads it.
fn range(field: &str) -> Option<(u64, u64)> {
    let (s, e) = field.split_once('-')?;
    Some((s.parse().ok()?, e.strip_suffix(':').unwrap_or(e).parse().ok()?))
}

fn sz(bytes: i128) -> String {
    match u64::try_from(bytes) {
        Ok(b) => format_sz_accurate(b, false),
        Err(_) => format!("{bytes} B"),
    }
}

fn region_text(f: &[&str], idx: &mut u64, probes: bool) -> Option<String> {
    let target: u64 = value(f.first()?)?;
    let nr_regions: u64 = value(f.get(1)?)?;
    let (start, end) = range(f.get(2)?)?;
    let nr_accesses: u64 = f.get(3)?.parse().ok()?;
    let age: i64 = match f.get(4) {
        Some(a) => a.parse().ok()?,
        None if !probes => -1,
        None => return None,
    };
    let mut text = format!("{target} {idx}/{nr_regions} {} ({}) {nr_accesses} {age}", sz(start.into()), sz(i128::from(end) - i128::from(start)));
    if probes {
        let hits: Vec<String> = match *f.get(5)? {
            "probe_hits=" => Vec::new(),
            first => std::iter::once(first.split('=').nth(1)?).chain(f[6..].iter().copied()).map(|h| u64::from_str_radix(h, 16).ok().map(|h| h.to_string())).collect::<Option<_>>()?,
        };
        text.push(' ');
        text.push_str(&hits.join(" "));
    }
    *idx += 1;
    if *idx == nr_regions {
        *idx = 0;
    }
    Some(text)
}

fn before_apply(f: &[&str]) -> Option<String> {
    let ids: Vec<u64> = f.get(..4)?.iter().map(|w| value(w)).collect::<Option<_>>()?;
    let (start, end) = range(f.get(4)?)?;
    let nr_accesses: u64 = f.get(5)?.parse().ok()?;
    let age: u64 = f.get(6)?.parse().ok()?;
    Some(format!("{} {} {} {} {} ({}) {nr_accesses} {age}", ids[0], ids[1], ids[2], ids[3], sz(start.into()), sz(i128::from(end) - i128::from(start))))
}

fn scheme_stat(f: &[&str]) -> Option<String> {
    let n: Vec<i128> = (0..9).map(|i| f.get(i).map_or(Some(-1), |w| value(w))).collect::<Option<_>>()?;
    if f.len() < 6 {
        return None;
    }
    Some(format!("{} {} {} {} {} {} {} {} {}", n[0], n[1], format_nr(n[2], false), sz(n[3]), format_nr(n[4], false), sz(n[5]), sz(n[6]), format_nr(n[7], false), format_nr(n[8], false)))
}

/// damo's wrapping: words joined up to `max_cols`, later lines indented by two spaces.
pub fn wrap(line: &str, max_cols: usize) -> String {
    if line.len() <= max_cols {
        return format!("{line}\n");
    }
    let mut out = String::new();
    let mut words: Vec<&str> = Vec::new();
    let mut len = 0;
    for word in line.split_whitespace() {
        if len + word.len() > max_cols {
            if words.is_empty() {
                out.push_str(word);
                out.push('\n');
            } else {
                out.push_str(&words.join(" "));
                out.push('\n');
                words.clear();
            }
            words.push("  ");
            len = 2;
        }
        words.push(word);
        len += word.len();
        if words.len() > 1 {
            len += 1;
        }
    }
    if !words.is_empty() {
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_damos_fields() {
        let line = "kdamond.0  4452 [000] 82820.952659: damon:damon_aggregated: target_id=0 nr_regions=2 4096-12288: 3 7";
        let l = parse(line, Tracer::PerfScript).unwrap();
        let mut p = Printer::default();
        assert_eq!(p.format(&l).unwrap(), "82820.952659 kdamond.0/4452 damon:damon_aggregated 0 0/2 4.000000 KiB (8.000000 KiB) 3 7");
        assert!(p.format(&l).unwrap().contains(" 1/2 "));
        assert!(p.format(&l).unwrap().contains(" 0/2 "));
        let tc = parse("kdamond.0-129062 [005] ..... 101005.778382: damon_aggregated:     target_id=0 nr_regions=11 8360624128-8371830784: 0 974", Tracer::TraceCmd).unwrap();
        assert_eq!((tc.timestamp, tc.event.as_str(), tc.proc.as_str()), ("101005.778382", "damon:damon_aggregated", "kdamond.0-129062"));
        assert_eq!(wrap("aaaa bbbb cccc", 9), "aaaa bbbb\n   cccc\n");
    }
}
