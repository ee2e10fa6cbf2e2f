//! The one-line snapshot heatmap (`<heatmap>`): the snapshot's address space cut into
//! columns, each a digit and a terminal color for its size-weighted temperature.

use damo_record::units::format_sz;

use super::{numfmt, Format, Reg};
use crate::colors::{Colorset, END, MAX_LEVEL};

pub const MAX_COLOR_LEVEL: i64 = MAX_LEVEL as i64;

/// Python list indexing: negative levels count from the end; out of range is clamped.
fn level_index(level: i64) -> usize {
    let l = if level < 0 { level + 10 } else { level };
    l.clamp(0, MAX_COLOR_LEVEL) as usize
}

pub fn colored(txt: &str, set: Colorset, level: i64) -> String {
    format!("{}{txt}{END}", set.start(level_index(level)))
}

/// Sums `temperature * size` exactly while every part is whole, like Python's ints, and in
/// floats once a clipped (fractional) part joins.
#[derive(Clone, Copy)]
enum Heat {
    Int(i128),
    Float(f64),
}

impl Heat {
    fn add_int(self, v: i128) -> Self {
        match self {
            Heat::Int(a) => Heat::Int(a + v),
            Heat::Float(a) => Heat::Float(a + v as f64),
        }
    }
    fn add_float(self, v: f64) -> Self {
        match self {
            Heat::Int(a) => Heat::Float(a as f64 + v),
            Heat::Float(a) => Heat::Float(a + v),
        }
    }
    fn as_f64(self) -> f64 {
        match self {
            Heat::Int(a) => a as f64,
            Heat::Float(a) => a,
        }
    }
}

struct Pixel {
    start: f64,
    end: f64,
    temperature: f64,
    void: bool,
}

fn pixel(start: f64, end: f64, regs: &[Reg], weights: [i64; 3]) -> Pixel {
    let first = regs.partition_point(|r| (r.end as f64) <= start);
    let mut heat = Heat::Int(0);
    let mut void = true;
    for r in &regs[first..] {
        let (rs, re) = (r.start as f64, r.end as f64);
        if end <= rs {
            break;
        }
        if re <= start {
            continue;
        }
        void = false;
        if start <= rs && re <= end {
            heat = heat.add_int(r.temperature(weights) * i128::from(r.end - r.start));
        } else {
            let (cs, ce) = (rs.max(start), re.min(end));
            let size = ce - cs;
            let score = size * weights[0] as f64 + (r.percent as i128 * i128::from(weights[1])) as f64 + (i128::from(r.age_us) * i128::from(weights[2])) as f64;
            let t = if r.percent > 0 { score } else { -score };
            heat = heat.add_float(t * size);
        }
    }
    Pixel { start, end, temperature: heat.as_f64() / (end - start), void }
}

/// `<heatmap>` of the given (address-sorted) regions.
pub fn heatmap_str(regs: &[Reg], fmt: &Format) -> String {
    if regs.is_empty() {
        return "n/a (no region)".into();
    }
    let raw = fmt.raw_number;
    let is_static = fmt.snapshot_heatmap_static;
    let total: f64 = if is_static { (regs[regs.len() - 1].end - regs[0].start) as f64 } else { regs.iter().map(|r| r.end - r.start).sum::<u64>() as f64 };
    let unit = total / fmt.snapshot_heatmap_width as f64;
    if unit <= 0.0 || !unit.is_finite() {
        return "n/a (empty address space)".into();
    }
    let weights = fmt.temperature_weights;
    let mut pixels: Vec<Pixel> = Vec::new();
    let (mut min_t, mut max_t): (Option<f64>, Option<f64>) = (None, None);
    let mut start = regs[0].start as f64;
    let last_end = regs[regs.len() - 1].end as f64;
    while start < last_end {
        let end = start + unit;
        let p = pixel(start, end, regs, weights);
        if p.void {
            let next = regs.partition_point(|r| (r.start as f64) <= end);
            pixels.push(p);
            let Some(next) = regs.get(next) else { break };
            start = numfmt::py_floordiv(next.start as f64, unit) * unit;
            if let Some(last) = pixels.last_mut() {
                last.end = start;
            }
        } else {
            if min_t.is_none_or(|m| p.temperature < m) {
                min_t = Some(p.temperature);
            }
            if max_t.is_none_or(|m| p.temperature > m) {
                max_t = Some(p.temperature);
            }
            pixels.push(p);
            start = end;
        }
    }
    let (Some(min_t), Some(max_t)) = (min_t, max_t) else {
        return "n/a (no region)".into();
    };
    let mut tunit = (max_t - min_t) / MAX_COLOR_LEVEL as f64;
    if tunit == 0.0 {
        tunit = max_t / MAX_COLOR_LEVEL as f64;
    }
    if tunit == 0.0 {
        tunit = 1.0;
    }
    let mut dots = String::new();
    for p in &pixels {
        if p.void {
            let n = (p.end - p.start) / unit;
            if !is_static && n > 4.0 {
                dots.push_str("[...]");
            } else if n > 0.0 {
                dots.push_str(&".".repeat(n as usize));
            }
            continue;
        }
        let level = ((p.temperature - min_t) / tunit) as i64;
        dots.push_str(&colored(&level.to_string(), fmt.snapshot_heatmap_colorset, level));
    }
    format!("{dots}\n# min/max temperatures: {}, {}, column size: {}", numfmt::nr_f(min_t, raw), numfmt::nr_f(max_t, raw), format_sz(unit, raw))
}
