//! damo's own region layout, matched as whole stretches of bytes. `json.dumps(indent=4)` of
//! `DamonRegion.to_kvpairs()` puts the same bytes between a region's values in every region
//! at one depth (keys, punctuation and indentation: 510 of its 554 bytes in a typical
//! record), so a region is eight compares of known bytes and seven values, with no state
//! per byte. A region's `start` is mostly the last one's `end`, text and all: that is one
//! more compare. The scan of a record in the cache went from 0.5 ns a byte of CPU to 0.15
//! (layout 60% of it); the inflating core takes 0.13-0.15.
//!
//! Whatever is not exactly this layout (other whitespace, key order or forms, a region that
//! crosses a block's end, a value that is not a plain number, `null` or a short string) is
//! left to the byte scanner from the region's start, so a region read here is the one it
//! reads.

use super::{string_value, Bytes, JsonAge, JsonNrAccesses, JsonRegion, Parse, Percent, SignedCount, Us, MAX_VALUE};
use crate::damo::json::Field;

/// The deepest member indentation learned (damo's regions are at 28 spaces).
const MAX_INDENT: usize = 256;

/// The stretches between a region's values at one indentation.
pub(super) struct RegionLayout {
    /// The indentation of the region's members (its braces are 4 spaces less).
    indent: usize,
    stretches: [Box<[u8]>; STRETCHES],
    /// The CPU compares 32 bytes at a time (AVX2): a region's stretches in 16 compares.
    avx2: bool,
    /// The last region's `end` as text (quotes included), its length (0: none) and value:
    /// regions mostly start where the last one ended, and comparing the text costs a tenth
    /// of reading it.
    last_end: ([u8; LAST_END], usize, u64),
}

/// The longest `end` text kept: quotes and 15 digits with commas.
const LAST_END: usize = 24;

/// How stretches are compared.
trait Compare {
    fn starts_with(hay: &[u8], lit: &[u8]) -> bool;
}

/// Eight or sixteen bytes at a time, on any CPU.
struct Words;

impl Compare for Words {
    #[inline(always)]
    fn starts_with(hay: &[u8], lit: &[u8]) -> bool {
        starts_with(hay, lit)
    }
}

/// Before each of the six values, the region's close, and what joins it to the next region.
const STRETCHES: usize = 9;
const CLOSE: usize = 7;
const NEXT: usize = 8;

impl RegionLayout {
    /// The layout of regions whose members are indented by `indent` spaces (4 or more).
    fn new(indent: usize) -> Self {
        let (i, j, o) = (" ".repeat(indent), " ".repeat(indent + 4), " ".repeat(indent - 4));
        let stretches = [
            format!("\n{i}\"start\": "),
            format!(",\n{i}\"end\": "),
            format!(",\n{i}\"nr_accesses\": {{\n{j}\"samples\": "),
            format!(",\n{j}\"percent\": "),
            format!("\n{i}}},\n{i}\"age\": {{\n{j}\"usec\": "),
            format!(",\n{j}\"aggr_intervals\": "),
            format!("\n{i}}},\n{i}\"probe_hits\": [],\n{i}\"sz_filter_passed\": "),
            format!("\n{o}}}"),
            format!(",\n{o}{{"),
        ];
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        Self { indent, stretches: stretches.map(|s| s.into_bytes().into_boxed_slice()), avx2, last_end: ([0; LAST_END], 0, 0) }
    }

    /// The region at the start of `rest` (just after its `{`) in the `current` layout, or in
    /// one learned from the indentation of its first member, and the bytes it took.
    #[inline]
    pub fn read(current: &mut Option<Self>, rest: &[u8]) -> Option<(JsonRegion, usize)> {
        if let Some(read) = current.as_mut().and_then(|l| l.region(rest)) {
            return Some(read);
        }
        let indent = match rest {
            [b'\n', tail @ ..] => tail.iter().take(MAX_INDENT + 1).take_while(|&&b| b == b' ').count(),
            _ => return None,
        };
        if !(4..=MAX_INDENT).contains(&indent) || current.as_ref().is_some_and(|l| l.indent == indent) {
            return None;
        }
        current.insert(Self::new(indent)).region(rest)
    }

    /// The region at the start of `rest` (just after its `{`) through its `}`, and the bytes
    /// it took; `None` unless it is all in `rest` and exactly in this layout.
    #[inline]
    pub fn region(&mut self, rest: &[u8]) -> Option<(JsonRegion, usize)> {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: the CPU has AVX2 (asked when the layout was made).
            return unsafe { self.region_avx2(rest) };
        }
        self.region_in::<Words>(rest)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn region_avx2(&mut self, rest: &[u8]) -> Option<(JsonRegion, usize)> {
        self.region_in::<avx2::Avx2>(rest)
    }

    /// [`Self::region`], comparing stretches with `C`.
    #[inline(always)]
    fn region_in<C: Compare>(&mut self, rest: &[u8]) -> Option<(JsonRegion, usize)> {
        let mut at = 0;
        let start = match self.stretch::<C>(0, rest, &mut at) {
            true => self.repeated_end::<C>(rest, &mut at),
            false => return None,
        };
        let start = match start {
            Some(v) => v,
            None => self.value::<Bytes>(rest, &mut at)??,
        };
        if !self.stretch::<C>(1, rest, &mut at) {
            return None;
        }
        let end_at = at;
        let end = self.value::<Bytes>(rest, &mut at)??;
        self.keep_end(&rest[end_at..], at - end_at, end);
        let samples = self.stretch_value::<C, SignedCount>(2, rest, &mut at)?;
        let percent = self.stretch_value::<C, Percent>(3, rest, &mut at)?;
        let usec = self.stretch_value::<C, Us>(4, rest, &mut at)?;
        let aggr_intervals = self.stretch_value::<C, SignedCount>(5, rest, &mut at)?;
        let sz_filter_passed = self.stretch_value::<C, Bytes>(6, rest, &mut at)?;
        if !C::starts_with(&rest[at..], &self.stretches[CLOSE]) {
            return None;
        }
        let region = JsonRegion {
            start: Field(start),
            end: Field(end),
            nr_accesses: Some(JsonNrAccesses { samples: samples.map(Field), percent: percent.map(Field) }),
            age: Some(JsonAge { usec: usec.map(Field), aggr_intervals: aggr_intervals.map(Field) }),
            sz_filter_passed: sz_filter_passed.map(Field),
        };
        Some((region, at + self.stretches[CLOSE].len()))
    }

    /// The bytes that join a region to the next (its `,` and the next one's `{`).
    pub fn next(&self) -> &[u8] {
        &self.stretches[NEXT]
    }

    /// Whether stretch `i` comes at `rest[*at..]` (then read).
    #[inline(always)]
    fn stretch<C: Compare>(&self, i: usize, rest: &[u8], at: &mut usize) -> bool {
        let stretch = &self.stretches[i];
        let found = C::starts_with(&rest[*at..], stretch);
        if found {
            *at += stretch.len();
        }
        found
    }

    /// A value read as `P` from `rest[*at..]`; `Some(None)` is `null`.
    #[inline(always)]
    fn value<P: Parse>(&self, rest: &[u8], at: &mut usize) -> Option<Option<P::Out>> {
        let (value, len) = value::<P>(&rest[*at..])?;
        *at += len;
        Some(value)
    }

    /// Stretch `i`, then a value read as `P`.
    #[inline(always)]
    fn stretch_value<C: Compare, P: Parse>(&self, i: usize, rest: &[u8], at: &mut usize) -> Option<Option<P::Out>> {
        match self.stretch::<C>(i, rest, at) {
            true => self.value::<P>(rest, at),
            false => None,
        }
    }

    /// The last region's `end` if its text comes at `rest[*at..]` (then read).
    #[inline(always)]
    fn repeated_end<C: Compare>(&self, rest: &[u8], at: &mut usize) -> Option<u64> {
        let (text, len, value) = &self.last_end;
        let repeated = *len > 0 && C::starts_with(&rest[*at..], &text[..*len]);
        if repeated {
            *at += len;
        }
        repeated.then_some(*value)
    }

    /// Keeps an `end` of `len` bytes at the start of `text` for [`Self::repeated_end`], if
    /// it is a string (which its closing quote ends: a number could go on in the next
    /// region's text).
    #[inline(always)]
    fn keep_end(&mut self, text: &[u8], len: usize, value: u64) {
        self.last_end.1 = 0;
        if let (Some(kept), Some(b'"')) = (text.get(..LAST_END), text.first()) {
            if len <= LAST_END {
                self.last_end = (kept.try_into().expect("LAST_END bytes"), len, value);
            }
        }
    }
}

/// A value at the start of `rest` as the byte scanner's `field::<P>` reads it, and its length;
/// `None` where that one stops (or the value may go on past `rest`).
#[inline(always)]
fn value<P: Parse>(rest: &[u8]) -> Option<(Option<P::Out>, usize)> {
    match *rest.first()? {
        b'"' => {
            let text = &rest[1..];
            if let Some(suffix) = P::PLAIN_SUFFIX {
                if let Some((out, len)) = quoted_number(text, suffix.as_bytes()).and_then(|(v, len)| Some((P::int(i128::from(v))?, len))) {
                    return Some((Some(out), len + 1));
                }
            }
            let len = memchr::memchr(b'"', &text[..text.len().min(MAX_VALUE + 1)])?;
            let text = &text[..len];
            if text.iter().any(|&b| b == b'\\' || b < 0x20) {
                return None;
            }
            Some((Some(string_value::<P>(text).ok()?), len + 2))
        }
        b'n' => rest.starts_with(b"null").then_some((None, 4)),
        b'-' | b'0'..=b'9' => {
            let negative = rest[0] == b'-';
            let digits = rest[usize::from(negative)..].iter().take(19).take_while(|b| b.is_ascii_digit()).count();
            let after = usize::from(negative) + digits;
            let text = &rest[usize::from(negative)..after];
            // Leading zeros, -0, fractions, exponents and long numbers: the byte scanner's.
            let leading_zero = text.first() == Some(&b'0') && (digits > 1 || negative);
            if digits == 0 || digits > 18 || leading_zero || matches!(rest.get(after), None | Some(b'.' | b'e' | b'E')) {
                return None;
            }
            let magnitude = text.iter().fold(0i128, |v, &d| v * 10 + i128::from(d - b'0'));
            Some((Some(P::int(if negative { -magnitude } else { magnitude })?), after))
        }
        _ => None,
    }
}

/// A number as damo writes one in a string (its opening quote read): digits, in groups of
/// three after commas when there are more than three, then `suffix` and the closing quote
/// ("72", "93,823,560,581,120", "0 B"); its value and length through the quote. `plain_int`
/// reads any such text of at most 15 digits as this value; other texts are `None`.
#[inline(always)]
fn quoted_number(text: &[u8], suffix: &[u8]) -> Option<(u64, usize)> {
    let lead = text.iter().take(16).take_while(|b| b.is_ascii_digit()).count();
    let mut value = text[..lead].iter().fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
    let (mut at, mut digits) = (lead, lead);
    if (1..=3).contains(&lead) {
        // Each `,ddd` as one word: the comma and three digits.
        while let Some(word) = text.get(at..at + 4) {
            let x = u32::from_le_bytes(word.try_into().expect("four bytes")) ^ u32::from_le_bytes(*b",000");
            if x & 0xf0f0_f0ff != 0 || x.wrapping_add(0x0606_0600) & 0x1010_1000 != 0 {
                break;
            }
            let [_, a, b, c] = x.to_le_bytes();
            value = value * 1000 + u64::from(a) * 100 + u64::from(b) * 10 + u64::from(c);
            (at, digits) = (at + 4, digits + 3);
        }
    }
    if !(1..=15).contains(&digits) {
        return None;
    }
    // The suffix byte by byte: it is at most two, and a call to `memcmp` costs ten times that.
    let tail = &text[at..];
    let suffixed = tail.len() > suffix.len() && tail.iter().zip(suffix).all(|(a, b)| a == b) && tail[suffix.len()] == b'"';
    match (suffixed, tail.first()) {
        (true, _) => Some((value, at + suffix.len() + 1)),
        (false, Some(b'"')) => Some((value, at + 1)),
        _ => None,
    }
}

/// `hay.starts_with(lit)`, 16 bytes at a time (vector compares): a call to `memcmp` costs
/// more than comparing stretches this short (4 to 130 bytes) inline.
#[inline(always)]
pub(super) fn starts_with(hay: &[u8], lit: &[u8]) -> bool {
    let n = lit.len();
    let Some(hay) = hay.get(..n) else { return false };
    if n < 8 {
        return hay.iter().zip(lit).all(|(a, b)| a == b);
    }
    if n < 16 {
        let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("eight bytes"));
        return word(hay, 0) == word(lit, 0) && word(hay, n - 8) == word(lit, n - 8);
    }
    let word = |s: &[u8], i: usize| u128::from_le_bytes(s[i..i + 16].try_into().expect("sixteen bytes"));
    let mut diff = word(hay, n - 16) ^ word(lit, n - 16);
    for i in (0..n - 16).step_by(16) {
        diff |= word(hay, i) ^ word(lit, i);
    }
    diff == 0
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{__m256i, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8};

    /// 32 bytes at a time; only for code compiled with AVX2 on.
    pub struct Avx2;

    impl super::Compare for Avx2 {
        #[inline(always)]
        fn starts_with(hay: &[u8], lit: &[u8]) -> bool {
            // SAFETY: only called from `region_avx2`, which runs once the CPU has AVX2.
            unsafe { starts_with(hay, lit) }
        }
    }

    /// `hay.starts_with(lit)`, 32 bytes at a time. Not a `target_feature` function, which
    /// cannot be inlined always: it is, into `region_avx2`, whose AVX2 its intrinsics then
    /// use (as a call of its own it took a fifth of the layout's time).
    ///
    /// # Safety
    /// Only for a CPU with AVX2, from code compiled with it on.
    #[inline(always)]
    pub unsafe fn starts_with(hay: &[u8], lit: &[u8]) -> bool {
        let n = lit.len();
        if n < 32 || hay.len() < n {
            return super::starts_with(hay, lit);
        }
        // SAFETY (the loads): both slices hold n ≥ 32 bytes, and each load reads the 32 from
        // an offset at most n - 32.
        let (hay, lit) = (hay.as_ptr(), lit.as_ptr());
        let mut same = unsafe { _mm256_cmpeq_epi8(_mm256_loadu_si256(hay.add(n - 32).cast::<__m256i>()), _mm256_loadu_si256(lit.add(n - 32).cast::<__m256i>())) };
        let mut i = 0;
        while i + 32 < n {
            same = unsafe { _mm256_and_si256(same, _mm256_cmpeq_epi8(_mm256_loadu_si256(hay.add(i).cast::<__m256i>()), _mm256_loadu_si256(lit.add(i).cast::<__m256i>()))) };
            i += 32;
        }
        unsafe { _mm256_movemask_epi8(same) == -1 }
    }
}

#[cfg(test)]
mod tests;
