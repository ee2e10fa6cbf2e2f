//! damo's number and unit texts: "4K", "1.5 MiB", "94,827,419,009,024", "60s", "8 m 59.809 s",
//! "50%", "min", "max".
//!
//! The rules follow damo's `_damo_fmt_str.text_to_*` so that an option or a record field means
//! the same in both tools: commas are ignored, "min"/"max" are the type's bounds, sizes are
//! binary (K = KiB), a time without a unit is in the function's own unit.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a valid {what}")]
pub struct UnitError {
    pub text: String,
    pub what: &'static str,
}

fn err(text: &str, what: &'static str) -> UnitError {
    UnitError { text: text.to_owned(), what }
}

/// A plain number: an integer when it is one, else a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    /// Multiplies by `scale` and clamps into `u64` (damo clamps sizes to ULONG_MAX).
    fn scaled_u64(self, scale: u64) -> Option<u64> {
        match self {
            Number::Int(i) if i < 0 => None,
            Number::Int(i) => Some(u64::try_from(i.saturating_mul(i128::from(scale))).unwrap_or(u64::MAX)),
            Number::Float(f) if f.is_nan() || f < 0.0 => None,
            // `as` saturates: damo's `min(ulong_max, int(x))`.
            Number::Float(f) => Some((f * scale as f64) as u64),
        }
    }
}

/// damo's `text_to_nr`: commas ignored, "max" is `u64::MAX`.
pub fn parse_number(text: &str) -> Result<Number, UnitError> {
    let t = text.trim();
    if t == "max" {
        return Ok(Number::Int(i128::from(u64::MAX)));
    }
    let cleaned: std::borrow::Cow<str> = if t.contains(',') { t.replace(',', "").into() } else { t.into() };
    if let Ok(i) = cleaned.parse::<i128>() {
        return Ok(Number::Int(i));
    }
    // Hexadecimal addresses, as /proc/pid/maps and DAMON's sysfs show them (damo-trace only).
    if let Some(hex) = cleaned.strip_prefix("0x").or_else(|| cleaned.strip_prefix("0X")) {
        return i128::from_str_radix(hex, 16).map(Number::Int).map_err(|_| err(text, "number"));
    }
    match cleaned.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Number::Float(f)),
        _ => Err(err(text, "number")),
    }
}

/// An unsigned integer count ("1,234", "max"); fractions are refused.
pub fn parse_count(text: &str) -> Result<u64, UnitError> {
    match parse_number(text)? {
        Number::Int(i) => u64::try_from(i).map_err(|_| err(text, "count")),
        Number::Float(_) => Err(err(text, "count")),
    }
}

const SIZE_UNITS: [(&str, u32); 7] = [("B", 0), ("K", 10), ("M", 20), ("G", 30), ("T", 40), ("P", 50), ("E", 60)];

/// Bytes: "4096", "4K", "4 KiB", "1.5 MiB", "min" (0), "max".
pub fn parse_bytes(text: &str) -> Result<u64, UnitError> {
    let t = text.trim();
    if t == "min" {
        return Ok(0);
    }
    if let Ok(n) = parse_number(t) {
        return n.scaled_u64(1).ok_or_else(|| err(text, "size"));
    }
    let digits_end = t.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(|| err(text, "size"))?;
    let (number, unit) = t.split_at(digits_end);
    let shift = SIZE_UNITS
        .iter()
        .find(|(prefix, _)| unit == *prefix || (*prefix != "B" && (unit == format!("{prefix}B") || unit == format!("{prefix}iB"))))
        .map(|&(_, shift)| shift)
        .ok_or_else(|| err(text, "size (units: B, K, M, G, T, P, E, optionally with B or iB)"))?;
    parse_number(number).ok().and_then(|n| n.scaled_u64(1u64 << shift)).ok_or_else(|| err(text, "size"))
}

const TIME_UNITS_NS: [(&str, u64); 7] = [("ns", 1), ("us", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000), ("d", 86_400_000_000_000)];

/// What a bare number means in a time option: damo decides per option (`text_to_ns`,
/// `text_to_us`, `text_to_ms`, `text_to_sec`; `record --timeout` is in seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Ns,
    Us,
    Ms,
    S,
}

impl TimeUnit {
    const fn ns(self) -> u64 {
        match self {
            TimeUnit::Ns => 1,
            TimeUnit::Us => 1_000,
            TimeUnit::Ms => 1_000_000,
            TimeUnit::S => 1_000_000_000,
        }
    }
}

/// A time in ns, for texts like "100ms", "1.5 s", "8 m 59.809 s"; "min" is 0, "max" is
/// `u64::MAX`. A bare number is in `bare`. The one time parser: every time option and
/// record field goes through it.
pub fn parse_time(text: &str, bare: TimeUnit) -> Result<u64, UnitError> {
    let t = text.trim();
    match t {
        "min" => return Ok(0),
        "max" => return Ok(u64::MAX),
        _ => {}
    }
    if let Ok(n) = parse_number(t) {
        return n.scaled_u64(bare.ns()).ok_or_else(|| err(text, "time"));
    }
    // Terms like "8 m 59.809 s" or "8m59.809s" add up.
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(|| err(text, "time"))?;
        let number = parse_number(&rest[..number_end]).map_err(|_| err(text, "time"))?;
        let after = &rest[number_end..];
        let unit_end = after.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(after.len());
        let unit = &after[..unit_end];
        let scale = TIME_UNITS_NS.iter().find(|(name, _)| *name == unit).map(|&(_, ns)| ns).ok_or_else(|| err(text, "time (units: ns, us, ms, s, m, h, d)"))?;
        total = total.saturating_add(number.scaled_u64(scale).ok_or_else(|| err(text, "time"))?);
        rest = after[unit_end..].trim_start();
    }
    Ok(total)
}

/// damo's `text_to_ns`: a bare number is nanoseconds.
pub fn parse_ns(text: &str) -> Result<u64, UnitError> {
    parse_time(text, TimeUnit::Ns)
}

/// damo's `text_to_us`, in µs: a bare number is microseconds.
pub fn parse_us(text: &str) -> Result<u64, UnitError> {
    let ns = parse_time(text, TimeUnit::Us)?;
    Ok(if ns == u64::MAX { u64::MAX } else { ns / 1_000 })
}

/// A span to wait or run for ("30s", "100ms", "2m"; a bare number is in `bare`): more than
/// zero and at most 10⁹ s, so "min", "max" and 0 are refused.
pub fn parse_duration(text: &str, bare: TimeUnit) -> Result<std::time::Duration, UnitError> {
    match parse_time(text, bare)? {
        ns if ns == 0 || ns > 1_000_000_000 * 1_000_000_000 => Err(err(text, "duration (more than 0, at most 10^9 s)")),
        ns => Ok(std::time::Duration::from_nanos(ns)),
    }
}

/// damo's `text_to_percent`: "50%" and "50" are both 50; "min" is 0, "max" is `u64::MAX`.
pub fn parse_percent(text: &str) -> Result<f64, UnitError> {
    let t = text.trim();
    match t {
        "min" => return Ok(0.0),
        "max" => return Ok(u64::MAX as f64),
        _ => {}
    }
    let number = t.strip_suffix('%').unwrap_or(t).trim_end();
    match parse_number(number) {
        Ok(n) if n.as_f64() >= 0.0 => Ok(n.as_f64()),
        _ => Err(err(text, "percentage")),
    }
}

/// damo's `format_nr`: digits grouped by commas unless `raw`.
pub fn format_nr(n: i128, raw: bool) -> String {
    let digits = n.unsigned_abs().to_string();
    let sign = if n < 0 { "-" } else { "" };
    if raw {
        return format!("{sign}{digits}");
    }
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    out.push_str(sign);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// damo's `format_sz`: "4.000 KiB" style, or plain bytes when `raw`.
pub fn format_sz(bytes: f64, raw: bool) -> String {
    if raw {
        return format!("{}", bytes as i128);
    }
    if bytes == u64::MAX as f64 {
        return "max".into();
    }
    for (unit, shift) in [("EiB", 60), ("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        let scale = (1u64 << shift) as f64;
        if bytes > scale {
            return format!("{:.3} {unit}", bytes / scale);
        }
    }
    format!("{} B", bytes as i128)
}

/// damo's `format_time_ns`: "1.500 s", "2 m 3.250 s", "1 h 2 m", or the bare ns when `raw`.
pub fn format_time_ns(ns: f64, raw: bool) -> String {
    if raw {
        return format!("{}", ns as i128);
    }
    let (sign, ns) = if ns < 0.0 { ("-", -ns) } else { ("", ns) };
    if ns >= u64::MAX as f64 {
        return format!("{sign}max");
    }
    const US: f64 = 1e3;
    const MS: f64 = 1e6;
    const S: f64 = 1e9;
    const MIN: f64 = 60e9;
    const HOUR: f64 = 3600e9;
    if ns >= HOUR {
        let hours = (ns / HOUR).trunc();
        let rest = ns - hours * HOUR;
        if rest == 0.0 {
            return format!("{sign}{hours} h");
        }
        return format!("{sign}{hours} h {}", format_time_ns(rest, false));
    }
    let whole_or_3 = |value: f64, divisor: f64, unit: &str| {
        if value % divisor == 0.0 {
            format!("{sign}{} {unit}", (value / divisor) as i64)
        } else {
            format!("{sign}{:.3} {unit}", value / divisor)
        }
    };
    if ns >= MIN {
        let minutes = (ns / MIN) as i64;
        if ns % MIN == 0.0 {
            return format!("{sign}{minutes} m");
        }
        let secs = ns % MIN;
        if ns % S == 0.0 {
            return format!("{sign}{minutes} m {} s", (secs / S) as i64);
        }
        return format!("{sign}{minutes} m {:.3} s", secs / S);
    }
    if ns >= S {
        return whole_or_3(ns, S, "s");
    }
    if ns >= MS {
        return whole_or_3(ns, MS, "ms");
    }
    if ns >= US {
        return whole_or_3(ns, US, "us");
    }
    format!("{sign}{} ns", ns as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_damo() {
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes("4K").unwrap(), 4096);
        assert_eq!(parse_bytes("4 KiB").unwrap(), 4096);
        assert_eq!(parse_bytes("1.5 MiB").unwrap(), 1_572_864);
        assert_eq!(parse_bytes("2GB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("94,827,419,009,024").unwrap(), 94_827_419_009_024);
        assert_eq!(parse_bytes("min").unwrap(), 0);
        assert_eq!(parse_bytes("0x7f00_0000".replace('_', "").as_str()).unwrap(), 0x7f00_0000);
        assert_eq!(parse_bytes("max").unwrap(), u64::MAX);
        assert_eq!(parse_bytes("20E").unwrap(), u64::MAX, "clamped like damo");
        for bad in ["", "4Q", "-1", "K", "1.2.3M", "nan"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn times_follow_damo() {
        assert_eq!(parse_ns("539809434100").unwrap(), 539_809_434_100);
        assert_eq!(parse_ns("100ms").unwrap(), 100_000_000);
        assert_eq!(parse_ns("8 m 59.809 s").unwrap(), 539_809_000_000);
        assert_eq!(parse_ns("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_us("60s").unwrap(), 60_000_000);
        assert_eq!(parse_us("5000").unwrap(), 5000, "a bare number is µs");
        assert_eq!(parse_us("max").unwrap(), u64::MAX);
        for bad in ["5 parsecs", "s", "1..2s", "-3s"] {
            assert!(parse_ns(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn durations_take_the_options_bare_unit() {
        use std::time::Duration;
        assert_eq!(parse_duration("30s", TimeUnit::S), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5", TimeUnit::S), Ok(Duration::from_secs(5)), "record --timeout: seconds");
        assert_eq!(parse_duration("5", TimeUnit::Us), Ok(Duration::from_micros(5)), "DAMON's intervals: µs");
        assert_eq!(parse_duration("1.5", TimeUnit::Ms), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_duration("100ms", TimeUnit::S), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("2m", TimeUnit::S), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1 m 30 s", TimeUnit::S), Ok(Duration::from_secs(90)));
        for bad in ["0", "min", "max", "-1s", "10 parsecs", "s", "2000000000"] {
            assert!(parse_duration(bad, TimeUnit::S).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn percents_follow_damo() {
        assert_eq!(parse_percent("50%").unwrap(), 50.0);
        assert_eq!(parse_percent("50").unwrap(), 50.0);
        assert_eq!(parse_percent("12.5 %").unwrap(), 12.5);
        assert_eq!(parse_percent("min").unwrap(), 0.0);
        assert!(parse_percent("-5%").is_err());
        assert!(parse_percent("lots").is_err());
    }

    #[test]
    fn formats_match_damo_outputs() {
        assert_eq!(format_nr(94_827_419_009_024, false), "94,827,419,009,024");
        assert_eq!(format_nr(-1234, false), "-1,234");
        assert_eq!(format_nr(12, true), "12");
        assert_eq!(format_sz(4_141_056.0, false), "3.949 MiB");
        assert_eq!(format_sz(1024.0, false), "1024 B", "damo switches units only above the unit");
        assert_eq!(format_time_ns(104_599_000.0, false), "104.599 ms");
        assert_eq!(format_time_ns(56_797_000_000.0, false), "56.797 s");
        assert_eq!(format_time_ns(539_809_434_100.0, false), "8 m 59.809 s");
        assert_eq!(format_time_ns(0.0, false), "0 ns");
    }
}
