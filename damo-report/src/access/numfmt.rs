//! damo's number texts that `damo_record::units` lacks: µs times, hz, percentages, basis
//! points and exact (all-units) times, with damo's rounding.

use damo_record::units::{format_nr, format_time_ns};

/// damo's `format_time_us`: µs given as a float, shown like `format_time_ns`.
pub fn time_us(us: f64, raw: bool) -> String {
    if raw {
        return format!("{}", us as i128);
    }
    format_time_ns(us * 1000.0, false)
}

/// damo's `format_time_ns` of an integer: exact when `raw` (f64 would round big times).
pub fn time_ns_int(ns: i128, raw: bool) -> String {
    if raw {
        return ns.to_string();
    }
    format_time_ns(ns as f64, false)
}

/// damo's `format_nr` of a float (`'%d' % x` truncates).
pub fn nr_f(x: f64, raw: bool) -> String {
    format_nr(x as i128, raw)
}

/// damo's `format_hz`.
pub fn hz(hz: f64, raw: bool, suffix: bool) -> String {
    let suffix = if suffix { " hz" } else { "" };
    if raw {
        return format!("{hz:.6}");
    }
    if hz < 10.0 && hz != 0.0 {
        return format!("{hz:.3}{suffix}");
    }
    format!("{}{suffix}", nr_f(hz, false))
}

/// damo's `format_ratio`: whole percent, then up to 7 fraction digits without trailing zeros.
pub fn ratio(ratio: f64, raw: bool) -> String {
    if raw {
        return format!("{ratio:.6}");
    }
    let pct = ratio * 100.0;
    let over = format_nr(pct as i128, false);
    let under = pct.rem_euclid(1.0);
    let under = format!("{under:.7}");
    let under = under.trim_end_matches('0');
    let under = under.get(2..).unwrap_or("");
    if under.is_empty() {
        format!("{over} %")
    } else {
        format!("{over}.{under} %")
    }
}

/// damo's `format_percent`.
pub fn percent(p: f64, raw: bool) -> String {
    if raw {
        return format!("{p:.6}");
    }
    ratio(p / 100.0, false)
}

/// damo's `format_bp`.
pub fn bp(bp: f64, raw: bool) -> String {
    if raw {
        return format!("{bp:.6}");
    }
    ratio(bp / 10000.0, false)
}

/// damo's `format_time_ns_exact`: every unit spelled out ("8 m 59 s 809 ms 434 us 100 ns").
pub fn time_ns_exact(ns: i128, raw: bool) -> String {
    if raw {
        return ns.to_string();
    }
    let (sign, ns) = if ns < 0 { ("-", -ns) } else { ("", ns) };
    if ns >= i128::from(u64::MAX) {
        return format!("{sign}max");
    }
    const UNITS: [(i128, &str); 7] = [(86_400_000_000_000, "d"), (3_600_000_000_000, "h"), (60_000_000_000, "m"), (1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us"), (1, "ns")];
    let mut parts = Vec::new();
    let mut rest = ns;
    for (unit, name) in UNITS {
        if rest < unit {
            continue;
        }
        let n = rest / unit;
        parts.push(format!("{} {name}", format_nr(n, false)));
        rest -= n * unit;
        if rest == 0 {
            break;
        }
    }
    if parts.is_empty() {
        return "0 ns".into();
    }
    format!("{sign}{}", parts.join(" "))
}

/// Python's float floor division (`a // b`), for damo's heatmap columns.
pub fn py_floordiv(a: f64, b: f64) -> f64 {
    let mut m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        m += b;
        div -= 1.0;
    }
    let _ = m;
    if div != 0.0 {
        let mut f = div.floor();
        if div - f > 0.5 {
            f += 1.0;
        }
        f
    } else {
        0.0_f64.copysign(a / b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_damo() {
        assert_eq!(hz(200.0, false, true), "200 hz");
        assert_eq!(hz(0.6666, false, true), "0.667 hz");
        assert_eq!(hz(0.0, false, true), "0 hz");
        assert_eq!(hz(200.0, true, true), "200.000000");
        assert_eq!(percent(7.0, false), "7 %");
        assert_eq!(percent(12.5, false), "12.5 %");
        assert_eq!(bp(400.0, false), "4 %");
        assert_eq!(time_ns_exact(539_809_434_100, false), "8 m 59 s 809 ms 434 us 100 ns");
        assert_eq!(time_ns_exact(0, false), "0 ns");
        assert_eq!(time_us(3_400_000.0, false), "3.400 s");
        assert_eq!(py_floordiv(7.0, 2.0), 3.0);
    }
}
