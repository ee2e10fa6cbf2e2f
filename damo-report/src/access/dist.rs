//! Per-snapshot distributions: idle time and temperature percentiles, and size histograms
//! over them, drawn as damo draws them.

use damo_record::units::format_sz;

use super::{numfmt, Format, Reg};

/// Which per-region metric a distribution is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Idle time in µs: 0 for accessed regions, else age plus one aggregation interval.
    Recency,
    /// damo's temperature with the size weight zeroed.
    Temperature,
}

impl Metric {
    pub fn value(self, r: &Reg, fmt: &Format, aggr_us: f64) -> f64 {
        match self {
            Metric::Recency => {
                if r.percent > 0 {
                    0.0
                } else {
                    r.age_us as f64 + aggr_us
                }
            }
            Metric::Temperature => {
                let w = [0, fmt.temperature_weights[1], fmt.temperature_weights[2]];
                r.temperature(w) as f64
            }
        }
    }

    fn format(self, v: f64, raw: bool) -> String {
        match self {
            Metric::Recency => numfmt::time_us(v, raw),
            Metric::Temperature => numfmt::nr_f(v, raw),
        }
    }

    fn parse(self, text: &str) -> Result<f64, String> {
        let bad = || format!("wrong --hist_ranges value {text:?}");
        match self {
            Metric::Recency => damo_record::units::parse_us(text).map(|v| v as f64).map_err(|_| bad()),
            Metric::Temperature => damo_record::units::parse_number(text).map(|n| n.as_f64()).map_err(|_| bad()),
        }
    }
}

fn weight(r: &Reg, df_passed: bool) -> u64 {
    if df_passed {
        r.passed.unwrap_or(0)
    } else {
        r.end - r.start
    }
}

/// The percentiles damo shows by default, or `--percentiles_range` (Python `range()` for up
/// to three numbers, else the sorted list).
pub fn percentiles_to_show(range: Option<&[i64]>) -> Vec<i64> {
    let Some(r) = range else {
        return vec![0, 1, 25, 50, 75, 99, 100];
    };
    if r.len() > 3 {
        let mut v = r.to_vec();
        v.sort_unstable();
        return v;
    }
    let (start, stop, step) = match *r {
        [stop] => (0, stop, 1),
        [start, stop] => (start, stop, 1),
        [start, stop, step] => (start, stop, step),
        _ => return Vec::new(),
    };
    let mut v = Vec::new();
    let mut x = start;
    while (step > 0 && x < stop) || (step < 0 && x > stop) {
        v.push(x);
        x += step;
    }
    v
}

/// `<recency percentiles>` and friends.
pub fn percentiles_str(regs: &[Reg], fmt: &Format, aggr_us: f64, metric: Metric, df_passed: bool) -> String {
    if regs.is_empty() {
        return "no region in snapshot".into();
    }
    let mut order: Vec<(f64, u64)> = regs.iter().map(|r| (metric.value(r, fmt, aggr_us), weight(r, df_passed))).collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: u128 = order.iter().map(|&(_, w)| u128::from(w)).sum();
    if total == 0 {
        return "no bytes in snapshot".into();
    }
    let mut to_show = percentiles_to_show(fmt.percentiles_range.as_deref()).into_iter().peekable();
    let mut values: Vec<(i64, f64)> = Vec::new();
    let mut percentile = 0.0_f64;
    let mut last = 0.0;
    for &(v, w) in &order {
        last = v;
        percentile += (u128::from(w) * 100) as f64 / total as f64;
        while let Some(&p) = to_show.peek() {
            if percentile < p as f64 {
                break;
            }
            values.push((p, v));
            to_show.next();
        }
        if percentile >= 100.0 {
            break;
        }
    }
    if to_show.any(|p| p == 100) {
        values.push((100, last));
    }
    format_percentiles(&values, fmt, metric, df_passed)
}

fn format_percentiles(values: &[(i64, f64)], fmt: &Format, metric: Metric, df_passed: bool) -> String {
    let legend = match metric {
        Metric::Recency if fmt.raw_number => "<idle time (us)>".to_string(),
        Metric::Recency => "<idle time>".to_string(),
        Metric::Temperature => {
            let w = fmt.temperature_weights;
            format!("<temperature (weights: [{}, {}, {}])>", w[0], w[1], w[2])
        }
    };
    let head = if df_passed { "<df-passed percentile>" } else { "<percentile>" };
    let mut lines = vec![format!("{head} {legend}")];
    if values.is_empty() {
        return lines.join("\n");
    }
    let ptxt: Vec<String> = values.iter().map(|(p, _)| p.to_string()).collect();
    let vtxt: Vec<String> = values.iter().map(|&(_, v)| metric.format(v, fmt.raw_number)).collect();
    let pw = ptxt.iter().map(String::len).max().unwrap_or(0);
    let vw = vtxt.iter().map(String::len).max().unwrap_or(0);
    let (min_val, max_val) = (values[0].1, values[values.len() - 1].1);
    const MAX_DOTS: i64 = 20;
    let per_dot = if max_val != min_val { (max_val - min_val) / MAX_DOTS as f64 } else { 1.0 };
    for (i, (p, v)) in ptxt.iter().zip(&vtxt).enumerate() {
        let bar = ((values[i].1 - min_val) / per_dot) as i64;
        lines.push(format!("{}{p}  {}{v}  |{}{}|", " ".repeat(pw - p.len()), " ".repeat(vw - v.len()), "*".repeat(bar.max(0) as usize), " ".repeat((MAX_DOTS - bar).max(0) as usize)));
    }
    lines.join("\n")
}

fn hist_ranges(min: f64, max: f64, n: usize, log: bool, cumulate: bool) -> Vec<(f64, f64)> {
    let mut ranges = Vec::new();
    if log {
        let initial = (((max - min) / 2f64.powi(n as i32)) as i64).max(1) as f64;
        ranges.push((min, min + initial));
        while ranges[ranges.len() - 1].1 < max {
            let (s, e) = ranges[ranges.len() - 1];
            let start = if cumulate { min } else { e };
            ranges.push((start, e + (e - s) * 2.0));
        }
        return ranges;
    }
    let interval = ((max + 1.0 - min) / n as f64).ceil().max(1.0);
    for i in 0..n {
        let start = if cumulate { min } else { min + interval * i as f64 };
        ranges.push((start, min + interval * (i + 1) as f64));
    }
    ranges
}

/// `<temperature-sz histogram>` and friends.
pub fn sz_hist_str(regs: &[Reg], fmt: &Format, aggr_us: f64, metric: Metric, df_passed: bool) -> Result<String, String> {
    if regs.is_empty() {
        return Ok("no region in snapshot".into());
    }
    let mut dist: Vec<(f64, u128)> = regs.iter().map(|r| (metric.value(r, fmt, aggr_us), u128::from(weight(r, df_passed)))).collect();
    dist.sort_by(|a, b| a.0.total_cmp(&b.0));
    let ranges = match &fmt.hist_ranges {
        Some(texts) => {
            let mut v = Vec::new();
            for pair in texts.chunks(2) {
                let [a, b] = pair else {
                    return Err("--hist_ranges needs pairs of values".into());
                };
                v.push((metric.parse(a)?, metric.parse(b)?));
            }
            v
        }
        None => hist_ranges(dist[0].0, dist[dist.len() - 1].0, 10, fmt.hist_logscale, fmt.hist_cumulate),
    };
    let raw = fmt.raw_number;
    let rows: Vec<(String, String, u128)> = ranges
        .iter()
        .map(|&(lo, hi)| {
            let from = dist.partition_point(|d| d.0 < lo);
            let to = dist.partition_point(|d| d.0 < hi);
            let y: u128 = if from < to { dist[from..to].iter().map(|d| d.1).sum() } else { 0 };
            (format!("[{}, {})", metric.format(lo, raw), metric.format(hi, raw)), format_sz(y as f64, raw), y)
        })
        .collect();
    Ok(histogram_str(&rows))
}

fn histogram_str(rows: &[(String, String, u128)]) -> String {
    let Some(min_y) = rows.iter().map(|r| r.2).min() else {
        return String::new();
    };
    let max_y = rows.iter().map(|r| r.2).max().unwrap_or(min_y);
    let xw = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let yw = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    const MAX_DOTS: u128 = 20;
    let per_dot = (((max_y - min_y) as f64 / MAX_DOTS as f64) as u128).max(1);
    rows.iter()
        .map(|(x, y, v)| {
            let dots = ((v - min_y) as f64 / per_dot as f64).ceil() as u128;
            let dots = dots.min(MAX_DOTS) as usize;
            format!("{x:<xw$} {y:<yw$} |{}{}|", "*".repeat(dots), " ".repeat(20 - dots))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_ranges() {
        assert_eq!(percentiles_to_show(Some(&[0, 101, 25])), vec![0, 25, 50, 75, 100]);
        assert_eq!(percentiles_to_show(Some(&[3])), vec![0, 1, 2]);
        assert_eq!(percentiles_to_show(Some(&[9, 1, 5, 3])), vec![1, 3, 5, 9]);
        assert_eq!(hist_ranges(0.0, 9.0, 10, false, false)[9], (9.0, 10.0));
        let log = hist_ranges(0.0, 100.0, 10, true, false);
        assert_eq!(log[0], (0.0, 1.0));
        assert!(log.last().unwrap().1 >= 100.0);
    }
}
