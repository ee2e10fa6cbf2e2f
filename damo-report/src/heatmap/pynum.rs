//! Python's number semantics, as far as damo's heatmap arithmetic needs them.
//!
//! damo mixes exact integers and floats (a perf-script record's first snapshot starts at a
//! fractional nanosecond; `--time_range 1.5s 3s` gives floats): whether a step is exact or
//! rounded decides the last bits of its heats, and the raw output prints `0` or `0.0`
//! accordingly. [`Num`] keeps that distinction so the numbers come out identical.

use std::cmp::Ordering;

/// An `int` or a `float`, as Python would hold it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i128),
    Float(f64),
}

use Num::{Float, Int};

impl Num {
    pub fn f64(self) -> f64 {
        match self {
            // The same rounding; the hardware converts an i64, an i128 takes a call (and
            // LLVM merges the two branches back into that call unless it cannot see through).
            Int(i) => i64::try_from(i).map_or(i as f64, |i| std::hint::black_box(i) as f64),
            Float(f) => f,
        }
    }

    pub fn plus(self, o: Num) -> Num {
        match (self, o) {
            (Int(a), Int(b)) => a.checked_add(b).map_or_else(|| Float(a as f64 + b as f64), Int),
            _ => Float(self.f64() + o.f64()),
        }
    }

    pub fn minus(self, o: Num) -> Num {
        match (self, o) {
            (Int(a), Int(b)) => a.checked_sub(b).map_or_else(|| Float(a as f64 - b as f64), Int),
            _ => Float(self.f64() - o.f64()),
        }
    }

    pub fn times(self, o: Num) -> Num {
        match (self, o) {
            (Int(a), Int(b)) => a.checked_mul(b).map_or_else(|| Float(a as f64 * b as f64), Int),
            _ => Float(self.f64() * o.f64()),
        }
    }

    /// `/`: always a float; integer operands are divided exactly when they fit a double.
    pub fn truediv(self, o: Num) -> f64 {
        self.f64() / o.f64()
    }

    /// `//`: floor division, an `int` for two ints.
    pub fn floordiv(self, o: Num) -> Option<Num> {
        match (self, o) {
            (_, Int(0)) => None,
            (Int(a), Int(b)) => Some(Int(a.div_euclid(b) - i128::from(b < 0 && a.rem_euclid(b) != 0))),
            _ => {
                let (a, b) = (self.f64(), o.f64());
                if b == 0.0 {
                    return None;
                }
                // CPython's float_floor_div.
                let m = a % b;
                let mut div = (a - m) / b;
                if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
                    div -= 1.0;
                }
                Some(Float(if div != 0.0 {
                    let fl = div.floor();
                    if div - fl > 0.5 {
                        fl + 1.0
                    } else {
                        fl
                    }
                } else {
                    0.0f64.copysign(a / b)
                }))
            }
        }
    }

    /// `int(x)`: truncation toward zero.
    pub fn trunc(self) -> Option<i128> {
        match self {
            Int(i) => Some(i),
            Float(f) if f.abs() < 9.2e18 => Some(i128::from(f as i64)),
            Float(f) if f.is_finite() => Some(f.trunc() as i128),
            Float(_) => None,
        }
    }

    /// Python's `max(self, o)`: the first argument unless the second is larger.
    pub fn max(self, o: Num) -> Num {
        if o.compare(self) == Ordering::Greater {
            o
        } else {
            self
        }
    }

    /// Python's `min(self, o)`: the first argument unless the second is smaller.
    pub fn min(self, o: Num) -> Num {
        if o.compare(self) == Ordering::Less {
            o
        } else {
            self
        }
    }

    /// Exact comparison, as Python compares ints with floats (NaN compares equal here).
    pub fn compare(self, o: Num) -> Ordering {
        match (self, o) {
            (Int(a), Int(b)) => a.cmp(&b),
            (Float(a), Float(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            (Int(a), Float(b)) => cmp_int_float(a, b),
            (Float(a), Int(b)) => cmp_int_float(b, a).reverse(),
        }
    }

    pub fn lt(self, o: Num) -> bool {
        self.compare(o) == Ordering::Less
    }

    /// `repr()` / `'%s' %`.
    pub fn repr(self) -> String {
        match self {
            Int(i) => i.to_string(),
            Float(f) => float_repr(f),
        }
    }
}

fn cmp_int_float(a: i128, b: f64) -> Ordering {
    if b.is_nan() {
        return Ordering::Equal;
    }
    if b >= 1.7e38 {
        return Ordering::Less;
    }
    if b <= -1.7e38 {
        return Ordering::Greater;
    }
    let fl = b.floor();
    match a.cmp(&(fl as i128)) {
        Ordering::Equal if b > fl => Ordering::Less,
        other => other,
    }
}

/// Python's `repr(float)`: the shortest digits that read back the same, in fixed notation
/// for exponents -4..16 (always with a fraction) and `1.5e-05` style otherwise.
pub fn float_repr(f: f64) -> String {
    let mut out = String::new();
    push_float_repr(f, &mut out);
    out
}

/// [`float_repr`] appended to `out`, with no allocation of its own (raw maps print one per
/// cell).
pub fn push_float_repr(f: f64, out: &mut String) {
    if f.is_nan() {
        return out.push_str("nan");
    }
    if f.is_infinite() {
        return out.push_str(if f > 0.0 { "inf" } else { "-inf" });
    }
    if f.is_sign_negative() {
        out.push('-');
    }
    if f == 0.0 {
        return out.push_str("0.0");
    }
    let mut buf = ryu::Buffer::new();
    if (1e-4..1e16).contains(&f.abs()) {
        // ryu writes this range as Python does (fixed, `.0` on whole numbers): no need to
        // take its digits apart (a third of a raw heatmap's formatting).
        let text = buf.format_finite(f.abs());
        if !text.contains('e') {
            return out.push_str(text);
        }
    }
    let (digits, exp) = shortest_digits(&mut buf, f.abs());
    let n = digits.len();
    if !(-4..16).contains(&exp) {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let (sign, magnitude) = if exp < 0 { ('-', -exp) } else { ('+', exp) };
        out.push('e');
        out.push(sign);
        if magnitude < 10 {
            out.push('0');
        }
        push_digits(magnitude as u32, out);
    } else if exp < 0 {
        out.push_str("0.");
        (0..-exp - 1).for_each(|_| out.push('0'));
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if n <= int_len {
            out.push_str(&digits);
            (n..int_len).for_each(|_| out.push('0'));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
}

/// The shortest digits that read back as `f` (positive, finite), without leading or trailing
/// zeros, and the decimal exponent of the first: ryu's (Python's repr picks the same digits:
/// the shortest, the closest of them to `f`), read from its text, which is fixed or
/// scientific (`123.45`, `0.0012`, `1e16`, `1.5e-5`).
fn shortest_digits(buf: &mut ryu::Buffer, f: f64) -> (DigitText, i32) {
    let text = buf.format_finite(f).as_bytes();
    let (mantissa, e) = match text.iter().position(|&b| b == b'e') {
        Some(at) => {
            let (negative, digits) = match &text[at + 1..] {
                [b'-', rest @ ..] => (true, rest),
                rest => (false, rest),
            };
            let magnitude = digits.iter().fold(0i32, |v, &d| v * 10 + i32::from(d - b'0'));
            (&text[..at], if negative { -magnitude } else { magnitude })
        }
        None => (text, 0),
    };
    let int_len = mantissa.iter().position(|&b| b == b'.').unwrap_or(mantissa.len());
    let mut digits = DigitText::default();
    let mut leading = 0;
    for &b in mantissa.iter().filter(|&&b| b != b'.') {
        if digits.len == 0 && b == b'0' {
            leading += 1;
        } else {
            digits.buf[digits.len] = b;
            digits.len += 1;
        }
    }
    while digits.len > 1 && digits.buf[digits.len - 1] == b'0' {
        digits.len -= 1;
    }
    (digits, int_len as i32 - 1 - leading + e)
}

/// Up to 17 significant digits of a double, on the stack.
#[derive(Default)]
struct DigitText {
    buf: [u8; 32],
    len: usize,
}

impl std::ops::Deref for DigitText {
    type Target = str;
    fn deref(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).expect("digits are ASCII")
    }
}

/// `v` in decimal.
fn push_digits(v: u32, out: &mut String) {
    let mut buf = [0u8; 10];
    let mut at = buf.len();
    let mut v = v;
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[at..]).expect("digits are ASCII"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        for (f, s) in [
            (0.0, "0.0"),
            (-0.03125, "-0.03125"),
            (1.0, "1.0"),
            (20.816666666666666, "20.816666666666666"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789012345.6, "123456789012345.6"),
            (1234567890123456.0, "1234567890123456.0"),
            (-2.5e20, "-2.5e+20"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.001, "0.001"),
            (1e-5, "1e-05"),
            (-1e22, "-1e+22"),
            (1e15, "1000000000000000.0"),
            (-0.0, "-0.0"),
            (1e100, "1e+100"),
            (0.1 + 0.2, "0.30000000000000004"),
            // Ties between two shortest candidates: Python takes the even digit.
            (f64::from_bits(0x4311b1c47f269339), "1245133027255502.2"),
            (f64::from_bits(0x42e66b7cf9a526f4), "197207312378167.62"),
            (f64::from_bits(0xc2d1b5a28790e108), "-77887254184836.12"),
        ] {
            assert_eq!(float_repr(f), s);
        }
    }

    /// Python's repr by way of Rust's `{:e}` (shortest digits, closest first), as this file
    /// formatted floats before ryu.
    fn repr_by_core_fmt(f: f64) -> String {
        let sci = format!("{f:e}");
        let (sign, text) = sci.strip_prefix('-').map_or(("", &sci[..]), |t| ("-", t));
        let (mantissa, exp) = text.split_once('e').unwrap();
        let exp: i32 = exp.parse().unwrap();
        let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
        let n = digits.len();
        let body = if !(-4..16).contains(&exp) {
            let fraction = if n > 1 { format!(".{}", &digits[1..]) } else { String::new() };
            format!("{}{fraction}e{}{:02}", &digits[..1], if exp < 0 { '-' } else { '+' }, exp.abs())
        } else if exp < 0 {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        } else if n <= exp as usize + 1 {
            format!("{digits}{}.0", "0".repeat(exp as usize + 1 - n))
        } else {
            format!("{}.{}", &digits[..exp as usize + 1], &digits[exp as usize + 1..])
        };
        format!("{sign}{body}")
    }

    #[test]
    fn repr_by_ryu_is_repr_by_core_fmt() {
        // Random bit patterns (every exponent) and heats as maps make them (ratios of sums).
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut ties, mut checked) = (0, 0);
        for _ in 0..400_000 {
            let bits = f64::from_bits(next());
            let ratio = (next() % 1_000_000_007) as f64 / ((next() % 9_973) + 1) as f64;
            let scaled = ratio * 10f64.powi((next() % 40) as i32 - 20);
            for f in [bits, ratio, scaled, ratio.round(), -scaled] {
                if !f.is_finite() {
                    continue;
                }
                checked += 1;
                let (ours, core) = (float_repr(f), repr_by_core_fmt(f));
                assert_eq!(ours.parse::<f64>().unwrap().to_bits(), f.to_bits(), "{ours} reads back as {f:e}");
                if ours != core {
                    // Only a tie between two shortest candidates may differ: Python (and ryu)
                    // take the even one, `{:e}` the one away from zero.
                    let (a, b) = (ours.as_bytes(), core.as_bytes());
                    let last = a.len() - 1;
                    assert!(a.len() == b.len() && a[..last] == b[..last] && a[last] % 2 == 0 && b[last] == a[last] + 1, "{f:e} ({:#x}): {ours} against {core}", f.to_bits());
                    ties += 1;
                }
            }
        }
        // About 0.15 % are ties (a value with a fraction of .x5 past 2^52 / 10^k).
        assert!(ties * 100 < checked, "{ties} of {checked} differ");
    }

    #[test]
    fn mixed_arithmetic_follows_python() {
        assert_eq!(Int(7).floordiv(Int(2)), Some(Int(3)));
        assert_eq!(Int(-7).floordiv(Int(2)), Some(Int(-4)));
        assert_eq!(Float(7.5).floordiv(Int(2)), Some(Float(3.0)));
        assert_eq!(Int(1).floordiv(Int(0)), None);
        assert_eq!(Int(3).max(Float(3.0)), Int(3));
        assert_eq!(Float(3.0).max(Int(3)), Float(3.0));
        assert_eq!(Int(3).min(Float(2.5)), Float(2.5));
        assert_eq!(Float(-0.5).trunc(), Some(0));
        assert!(Int(9_007_199_254_740_993).compare(Float(9_007_199_254_740_992.0)) == Ordering::Greater);
        assert_eq!(Int(2).times(Int(3)).repr(), "6");
        assert_eq!(Int(2).times(Float(3.0)).repr(), "6.0");
    }
}
