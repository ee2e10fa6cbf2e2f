//! The time and address ranges to draw: the user's texts (with damo's `guided` bases), or
//! the guide's.

use damo_record::units;

use super::{guide::Guide, pynum::Num, HeatmapError};

/// Which of the guide's contiguous address ranges to draw by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DrawRange {
    #[default]
    Hottest,
    All,
}

/// damo's `text_to_nr`: an int if the text is one (commas ignored), else a float.
fn text_to_nr(text: &str) -> Option<Num> {
    if text == "max" {
        return Some(Num::Int(i128::from(u64::MAX)));
    }
    let t: String = text.chars().filter(|c| *c != ',').collect();
    let t = t.trim();
    if let Ok(i) = t.parse::<i128>() {
        return Some(Num::Int(i));
    }
    t.parse::<f64>().ok().filter(|f| f.is_finite()).map(Num::Float)
}

/// damo's `try_common_input`: "min", "max" or a plain number.
fn common(text: &str) -> Option<Num> {
    match text {
        "min" => Some(Num::Int(0)),
        _ => text_to_nr(text),
    }
}

fn bad(text: &str, what: &str) -> HeatmapError {
    HeatmapError(format!("{text:?} is not a valid {what}"))
}

/// damo's `text_to_ns`: a bare number is ns; "1.5 s", "2m 3s" and the like are summed.
pub fn text_to_ns(text: &str) -> Result<Num, HeatmapError> {
    if let Some(n) = common(text) {
        return Ok(n);
    }
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() > 1 {
        let mut sum = Num::Int(0);
        for pair in fields.chunks(2) {
            sum = sum.plus(text_to_ns(&pair.concat())?);
        }
        return Ok(sum);
    }
    const UNITS: [(&str, i128); 7] = [("ns", 1), ("us", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000), ("d", 86_400_000_000_000)];
    for (unit, ns) in UNITS {
        if let Some(number) = text.strip_suffix(unit) {
            // "5ms" must not read as "5m" + "s".
            if unit == "s" && (number.ends_with('n') || number.ends_with('u') || number.ends_with('m')) {
                continue;
            }
            return text_to_nr(number).map(|n| n.times(Num::Int(ns))).ok_or_else(|| bad(text, "time"));
        }
    }
    Err(bad(text, "time"))
}

/// damo's `text_to_bytes`: a bare number stays as it is, sizes with units are whole bytes.
pub fn text_to_bytes(text: &str) -> Result<Num, HeatmapError> {
    if let Some(n) = common(text) {
        return Ok(n);
    }
    units::parse_bytes(text).map(|b| Num::Int(i128::from(b))).map_err(|_| bad(text, "address or size"))
}

/// `--time_range START END [BASE]`, BASE a time, `guided` or `guided_end`.
pub fn time_range(user: Option<&[String]>, guide: &Guide) -> Result<(Num, Num), HeatmapError> {
    let Some(user) = user else { return Ok((guide.start_time, guide.end_time)) };
    if !(2..=3).contains(&user.len()) {
        return Err(HeatmapError::new("--time_range takes START END [BASE]"));
    }
    let (start, end) = (text_to_ns(&user[0])?, text_to_ns(&user[1])?);
    let base = match user.get(2).map(String::as_str) {
        None => return Ok((start, end)),
        Some("guided") => guide.start_time,
        Some("guided_end") => guide.end_time,
        Some(t) => text_to_ns(t)?,
    };
    Ok((base.plus(start), base.plus(end)))
}

/// The guide's default address ranges for `--draw_range`.
pub fn guided_address_ranges(draw: DrawRange, guide: &Guide) -> Vec<(Num, Num)> {
    let num = |a: u64| Num::Int(i128::from(a));
    match draw {
        DrawRange::Hottest => guide.hottest().map(|r| vec![(num(r.start), num(r.end))]).unwrap_or_default(),
        DrawRange::All => guide.contig_regions.iter().map(|r| (num(r.start), num(r.end))).collect(),
    }
}

/// `--address_range START END [BASE]` (repeatable); BASE an address or `guided`, the start
/// of the guided range of the same position.
pub fn address_ranges(user: Option<&[Vec<String>]>, draw: DrawRange, guide: &Guide) -> Result<Vec<(Num, Num)>, HeatmapError> {
    let guided = guided_address_ranges(draw, guide);
    let Some(user) = user else { return Ok(guided) };
    user.iter()
        .enumerate()
        .map(|(i, r)| {
            if !(2..=3).contains(&r.len()) {
                return Err(HeatmapError::new("--address_range takes START END [BASE]"));
            }
            let (start, end) = (text_to_bytes(&r[0])?, text_to_bytes(&r[1])?);
            let base = match r.get(2).map(String::as_str) {
                None => return Ok((start, end)),
                Some("guided") => guided.get(i).map(|g| g.0).ok_or_else(|| HeatmapError(format!("--address_range {}: no guided range to use as its base", i + 1)))?,
                Some(t) => text_to_bytes(t)?,
            };
            Ok((base.plus(start), base.plus(end)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_keep_python_types() {
        assert_eq!(text_to_ns("1000").unwrap(), Num::Int(1000));
        assert_eq!(text_to_ns("1.5s").unwrap(), Num::Float(1.5e9));
        assert_eq!(text_to_ns("2s").unwrap(), Num::Int(2_000_000_000));
        assert_eq!(text_to_ns("5ms").unwrap(), Num::Int(5_000_000));
        assert_eq!(text_to_ns("1 m 30 s").unwrap(), Num::Int(90_000_000_000));
        assert!(text_to_ns("soon").is_err());
        assert_eq!(text_to_bytes("4K").unwrap(), Num::Int(4096));
        assert_eq!(text_to_bytes("1,024").unwrap(), Num::Int(1024));
        assert!(text_to_bytes("lots").is_err());
    }
}
