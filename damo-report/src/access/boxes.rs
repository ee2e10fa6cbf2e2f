//! The region box (`<box>`): a region's age, access rate and size drawn as a colored bar's
//! length, color and height, scaled against every region of the report.

use damo_record::units::format_sz;

use super::{heatmap, numfmt, Reg};
use crate::colors::Colorset;

crate::names::named_enum! {
    /// What a box dimension shows.
    pub enum BoxValue {
        Size = "size",
        AccessRate = "access_rate",
        Age = "age",
    }
}

impl BoxValue {
    fn of(self, r: &Reg) -> f64 {
        match self {
            BoxValue::Size => (r.end - r.start) as f64,
            BoxValue::AccessRate => r.percent as f64,
            BoxValue::Age => r.age_us as f64,
        }
    }
}

/// One dimension of the box: its value, display range and scale.
#[derive(Debug, Clone, Copy)]
pub struct BoxAttr {
    pub value: Option<BoxValue>,
    pub display: (i64, i64),
    pub log: bool,
}

#[derive(Debug, Clone)]
pub struct BoxFormat {
    pub length: BoxAttr,
    pub color: BoxAttr,
    pub height: BoxAttr,
    pub align_right: bool,
    pub colorset: Colorset,
    /// Min and max of size, access rate and age over every region shown.
    pub minmax: [(f64, f64); 3],
}

fn idx(v: BoxValue) -> usize {
    match v {
        BoxValue::Size => 0,
        BoxValue::AccessRate => 1,
        BoxValue::Age => 2,
    }
}

/// damo's `rescale`.
fn rescale(val: f64, orig: (f64, f64), new: (i64, i64), log: bool) -> f64 {
    let lg = |v: f64| if v > 0.0 { v.log2() } else { 0.0 };
    let (val, orig) = if log { (lg(val), (lg(orig.0), lg(orig.1))) } else { (val, orig) };
    let orig_len = orig.1 - orig.0;
    let new_len = (new.1 - new.0) as f64;
    let ratio = if orig_len > 0.0 { new_len / orig_len } else { 1.0 };
    (val - orig.0) * ratio + new.0 as f64
}

impl BoxFormat {
    fn val(&self, attr: &BoxAttr, r: &Reg) -> Option<(f64, (f64, f64))> {
        attr.value.map(|v| (v.of(r), self.minmax[idx(v)]))
    }

    pub fn to_str(&self, r: &Reg) -> String {
        let length = self.val(&self.length, r).map_or(0, |(v, mm)| rescale(v, mm, self.length.display, self.length.log) as i64).max(0) as usize;
        let height = match self.val(&self.height, r) {
            Some((v, mm)) => rescale(v, mm, self.height.display, self.height.log) as i64,
            None => 1,
        };
        let row = match self.val(&self.color, r) {
            None => "-".repeat(length),
            Some((v, mm)) => {
                let level = rescale(v, mm, (0, 9), self.color.log) as i64;
                heatmap::colored(&level.to_string().repeat(length), self.colorset, level)
            }
        };
        let mut row = format!("|{row}|");
        if self.align_right {
            let indent = (self.length.display.1 - length as i64).max(0) as usize;
            row = format!("{}{row}", " ".repeat(indent));
        }
        let mut out = vec![row; height.max(0) as usize].join("\n");
        if self.height.display.1 > 1 {
            out.push('\n');
        }
        out
    }

    fn format_min_max(&self, v: BoxValue, raw: bool) -> String {
        let (lo, hi) = self.minmax[idx(v)];
        match v {
            BoxValue::Size => format!("[{}, {}]", format_sz(lo, raw), format_sz(hi, raw)),
            BoxValue::Age => format!("[{}, {}] ", numfmt::time_us(lo, raw), numfmt::time_us(hi, raw)),
            BoxValue::AccessRate => format!("[{}, {}]", numfmt::percent(lo, raw), numfmt::percent(hi, raw)),
        }
    }

    /// `<region box description>`.
    pub fn description(&self, raw: bool) -> String {
        let scale = |log: bool| if log { "logscale" } else { "linearscale" };
        let what = |a: &BoxAttr| match a.value {
            Some(v) => (v.name(), self.format_min_max(v, raw)),
            None => ("none", "None".to_string()),
        };
        let (ln, lmm) = what(&self.length);
        let (cn, cmm) = what(&self.color);
        let (hn, hmm) = what(&self.height);
        [
            format!("# length: {ln} (represents {lmm} with [{}, {}] columns in {})", self.length.display.0, self.length.display.1, scale(self.length.log)),
            format!("# color: {cn} (represents {cmm} with [{}, {}] number and color ({}) in {})", self.color.display.0, self.color.display.1, self.colorset.samples(), scale(self.color.log)),
            format!("# height: {hn} (represents {hmm} with [{}, {}] rows in {})", self.height.display.0, self.height.display.1, scale(self.height.log)),
        ]
        .join("\n")
    }
}
