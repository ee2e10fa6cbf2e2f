//! One line of a text trace: a region of a DAMON event, another event's line, or an error.
//!
//! Nearly every line of a trace has one shape (`... TS: damon:damon_aggregated: target_id=N
//! nr_regions=N START-END: NR AGE`), which [`LineParser::parse`] reads in place: the event
//! name found with memmem, then the fields by position; a line that starts as the last one
//! did up to its address range (a snapshot's lines do) is read from there. A line of any other shape (tabs,
//! extra spaces, a bad number) goes to [`parse_words`], which splits it into words and gives
//! the exact error; what the fast path accepts, the words would read the same.

use memchr::memmem::Finder;

use crate::model::Region;

/// One region line.
pub struct RegionLine {
    pub end_ns: u64,
    pub scheme_idx: Option<u32>,
    pub target_id: u64,
    pub nr_regions: u32,
    pub region: Region,
    /// damo's fake end-marker region (`0-0: -1 -1`).
    pub fake: bool,
}

#[derive(Clone, Copy)]
enum Event {
    Aggregated,
    BeforeApply,
}

const AGGREGATED: &[u8] = b"damon_aggregated:";
const BEFORE_APPLY: &[u8] = b"damos_before_apply:";

/// Parses lines; holds its searchers and the last timestamp.
pub struct LineParser {
    aggregated: Finder<'static>,
    before_apply: Finder<'static>,
    /// Where the last line's event name was: lines of one trace mostly share it.
    last_name_at: usize,
    /// The last line's text up to its address range, and what it says: the lines of a
    /// snapshot repeat it (a line that starts with it reads the same up to there).
    head: Vec<u8>,
    head_event: Event,
    head_fields: (u64, Option<u32>, u64, u32),
    /// The last region's end, as text and number: the next region mostly starts there.
    last_end: ([u8; 20], usize, u64),
    clock: TimestampCache,
}

impl Default for LineParser {
    fn default() -> Self {
        LineParser {
            aggregated: Finder::new(AGGREGATED),
            before_apply: Finder::new(BEFORE_APPLY),
            last_name_at: 0,
            head: Vec::new(),
            head_event: Event::Aggregated,
            head_fields: (0, None, 0, 0),
            last_end: ([0; 20], 0, 0),
            clock: TimestampCache::default(),
        }
    }
}

impl LineParser {
    /// The region of `line` (no newline), `None` for lines of other events and headers.
    pub fn parse(&mut self, line: &[u8]) -> Result<Option<RegionLine>, String> {
        match self.fast(line) {
            Fast::Region(r) => Ok(Some(r)),
            Fast::NoEvent => Ok(None),
            Fast::Unsure => parse_words(line, &mut self.clock),
        }
    }

    fn fast(&mut self, line: &[u8]) -> Fast {
        let (event, at) = match self.head_at(line) {
            Some(at) => (self.head_event, at),
            None => {
                let (event, name_at, name_len) = match self.known_name_at(line) {
                    Some(found) => found,
                    None => match self.aggregated.find(line) {
                        Some(at) => {
                            // A before_apply name earlier in the line would be the event:
                            // rare, let the words decide.
                            if self.before_apply.find(&line[..at]).is_some() {
                                return Fast::Unsure;
                            }
                            (Event::Aggregated, at, AGGREGATED.len())
                        }
                        None => match self.before_apply.find(line) {
                            Some(at) => (Event::BeforeApply, at, BEFORE_APPLY.len()),
                            None => return Fast::NoEvent,
                        },
                    },
                };
                self.last_name_at = name_at;
                let Some(at) = self.head(line, event, name_at, name_len) else { return Fast::Unsure };
                (event, at)
            }
        };
        match self.region(line, event, at) {
            Some(region) => Fast::Region(region),
            None => Fast::Unsure,
        }
    }

    /// Where the last line's head ends in `line`, if `line` starts with it.
    fn head_at(&self, line: &[u8]) -> Option<usize> {
        (!self.head.is_empty() && line.starts_with(&self.head)).then_some(self.head.len())
    }

    /// The event name at the last line's place, if it is the first in the line: both names
    /// have a '_' in their first six bytes and cannot overlap themselves or each other that
    /// closely, so with no '_' before it, no name starts earlier.
    fn known_name_at(&self, line: &[u8]) -> Option<(Event, usize, usize)> {
        let at = self.last_name_at;
        let rest = line.get(at..)?;
        let (event, len) = if rest.starts_with(AGGREGATED) {
            (Event::Aggregated, AGGREGATED.len())
        } else if rest.starts_with(BEFORE_APPLY) {
            (Event::BeforeApply, BEFORE_APPLY.len())
        } else {
            return None;
        };
        memchr::memchr(b'_', &line[..at]).is_none().then_some((event, at, len))
    }

    /// The timestamp (as ns), scheme, target and region count of a line, from `*at` just past
    /// its event name, to just past the count and its space.
    fn head_fields(&mut self, line: &[u8], event: Event, timestamp: std::ops::Range<usize>, at: &mut usize) -> Option<(u64, Option<u32>, u64, u32)> {
        let timestamp = line[timestamp].strip_suffix(b":")?;
        let (scheme_idx, target_id) = match event {
            Event::Aggregated => {
                expect(line, at, b"target_id=")?;
                (None, number(line, at)?)
            }
            Event::BeforeApply => {
                // ctx_idx: any word, like the words path.
                let word = line[*at..].iter().position(u8::is_ascii_whitespace)?;
                if word == 0 {
                    return None;
                }
                *at += word;
                expect(line, at, b" scheme_idx=")?;
                let scheme = u32::try_from(number(line, at)?).ok()?;
                expect(line, at, b" target_idx=")?;
                (Some(scheme), number(line, at)?)
            }
        };
        expect(line, at, b" nr_regions=")?;
        let nr_regions = u32::try_from(number(line, at)?).ok().filter(|&n| n != 0)?;
        expect(line, at, b" ")?;
        let end_ns = self.clock.ns(timestamp).ok()?;
        Some((end_ns, scheme_idx, target_id, nr_regions))
    }

    /// Reads the head of a line whose event name is at `name_at` (its timestamp, scheme,
    /// target and count, if it has the usual shape with single spaces) and keeps it for the
    /// lines after; where the address range starts. `None` sends the line to [`parse_words`].
    fn head(&mut self, line: &[u8], event: Event, name_at: usize, name_len: usize) -> Option<usize> {
        // The name is a word of its own, perhaps with the "damon:" system before it.
        let word_start = if line[..name_at].ends_with(b"damon:") { name_at - 6 } else { name_at };
        if word_start < 2 || line[word_start - 1] != b' ' {
            return None;
        }
        let mut at = name_at + name_len;
        expect(line, &mut at, b" ")?;
        let timestamp_end = word_start - 1;
        let timestamp_start = line[..timestamp_end].iter().rposition(u8::is_ascii_whitespace).map_or(0, |i| i + 1);
        let fields = self.head_fields(line, event, timestamp_start..timestamp_end, &mut at)?;
        self.head.clear();
        self.head.extend_from_slice(&line[..at]);
        self.head_event = event;
        self.head_fields = fields;
        Some(at)
    }

    /// The region of a line whose head (the last one read) ends at `at`.
    fn region(&mut self, line: &[u8], event: Event, mut at: usize) -> Option<RegionLine> {
        let (end_ns, scheme_idx, target_id, nr_regions) = self.head_fields;
        let (start, end, nr_accesses, nr_fake);
        if line[at..].starts_with(b"0-0: -1") {
            // damo's fake end marker.
            at += 7;
            (start, end, nr_accesses, nr_fake) = (0, 0, 0, true);
        } else {
            let (last_text, last_len, last_value) = self.last_end;
            start = if last_len > 0 && line[at..].starts_with(&last_text[..last_len]) && line.get(at + last_len) == Some(&b'-') {
                at += last_len;
                last_value
            } else {
                number(line, &mut at)?
            };
            expect(line, &mut at, b"-")?;
            let end_at = at;
            end = number(line, &mut at)?;
            let end_text = &line[end_at..at];
            if end_text.len() <= 20 {
                self.last_end.0[..end_text.len()].copy_from_slice(end_text);
                self.last_end.1 = end_text.len();
                self.last_end.2 = end;
            }
            expect(line, &mut at, b": ")?;
            nr_accesses = u32::try_from(number(line, &mut at)?).ok()?;
            nr_fake = false;
            if end < start {
                return None;
            }
        }
        // before_apply lines always have both counts (seven fields).
        let one_count = at == line.len();
        if one_count && matches!(event, Event::BeforeApply) {
            return None;
        }
        let (age, age_fake) = match &line[at..] {
            [] => (None, false),
            b" None" => (None, false),
            b" -1" => (Some(0), true),
            [b' ', ..] => {
                at += 1;
                let age = u32::try_from(number(line, &mut at)?).ok()?;
                (at == line.len()).then_some(())?;
                (Some(age), false)
            }
            _ => return None,
        };
        Some(RegionLine { end_ns, scheme_idx, target_id, nr_regions, region: Region { start, end, nr_accesses, age }, fake: nr_fake && (age_fake || one_count) })
    }
}

enum Fast {
    Region(RegionLine),
    NoEvent,
    Unsure,
}

/// Steps over `text` at `*at`, or `None` if it is not there.
fn expect(line: &[u8], at: &mut usize, text: &[u8]) -> Option<()> {
    line[*at..].starts_with(text).then(|| *at += text.len())
}

/// The decimal `u64` at `*at`, stepping over it; `None` without a digit, above `u64::MAX`
/// or longer than 20 digits (like [`integer`]). Eight digits at a time: numbers were a
/// quarter of the time parsing a trace byte by byte.
fn number(line: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    let mut i = *at;
    while let Some(eight) = line.get(i..i + 8) {
        let word = u64::from_le_bytes(eight.try_into().expect("8 bytes"));
        let digits = leading_digits(word);
        if i + digits - *at > 19 {
            return long_number(line, at);
        }
        if digits > 0 {
            v = v * POW10[digits] + eight_digits(word, digits);
            i += digits;
        }
        if digits < 8 {
            return finish_number(v, i, at);
        }
    }
    while let Some(d) = line.get(i).map(|b| b.wrapping_sub(b'0')).filter(|&d| d <= 9) {
        if i - *at == 19 {
            return long_number(line, at);
        }
        v = v * 10 + u64::from(d);
        i += 1;
    }
    finish_number(v, i, at)
}

const POW10: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

fn finish_number(v: u64, end: usize, at: &mut usize) -> Option<u64> {
    (end > *at).then(|| {
        *at = end;
        v
    })
}

/// A number of 20 digits or more, which may overflow.
fn long_number(line: &[u8], at: &mut usize) -> Option<u64> {
    let digits = line[*at..].iter().take(21).take_while(|b| b.is_ascii_digit()).count();
    let v = integer(&line[*at..*at + digits])?;
    *at += digits;
    Some(v)
}

/// How many of the 8 bytes of `word` (first byte lowest) are ASCII digits before the first
/// other byte.
fn leading_digits(word: u64) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Per byte, without carries between bytes: the high nibble is not 3, or the low one is
    // above 9 (adding 6 carries into the high nibble).
    let high_not_3 = (word & (0xf0 * ONES)) ^ (0x30 * ONES);
    let low_above_9 = ((word & (0x0f * ONES)) + 0x06 * ONES) & (0xf0 * ONES);
    let bad = high_not_3 | low_above_9;
    // The top bit of each nonzero byte.
    let flags = (((bad & (0x7f * ONES)) + 0x7f * ONES) | bad) & (0x80 * ONES);
    (flags.trailing_zeros() / 8) as usize
}

/// The value of the first `n` (1 to 8) bytes of `word`, all digits, first byte most
/// significant.
fn eight_digits(word: u64, n: usize) -> u64 {
    // Shift the digits to the top: the bytes below become leading zeros.
    let v = (word & 0x0f0f_0f0f_0f0f_0f0f) << (8 * (8 - n));
    let v = (v * 10 + (v >> 8)) & 0x00ff_00ff_00ff_00ff;
    let v = (v * 100 + (v >> 16)) & 0x0000_ffff_0000_ffff;
    (v * 10_000 + (v >> 32)) & 0xffff_ffff
}

/// The line split into words: any whitespace, any number of fields, exact errors.
fn parse_words(line: &[u8], clock: &mut TimestampCache) -> Result<Option<RegionLine>, String> {
    let mut tokens = line.split(|b| b.is_ascii_whitespace()).filter(|t| !t.is_empty());
    let mut previous: &[u8] = &[];
    let event = loop {
        let Some(token) = tokens.next() else { return Ok(None) };
        match token {
            b"damon:damon_aggregated:" | b"damon_aggregated:" => break Event::Aggregated,
            b"damon:damos_before_apply:" | b"damos_before_apply:" => break Event::BeforeApply,
            _ => previous = token,
        }
    };
    let mut fields: [&[u8]; 8] = [&[]; 8];
    let mut n = 0;
    for token in tokens {
        if n == fields.len() {
            return Err("too many fields".into());
        }
        fields[n] = token;
        n += 1;
    }
    let timestamp = previous.strip_suffix(b":").ok_or("no timestamp before the event name")?;
    let end_ns = clock.ns(timestamp)?;
    let (scheme_idx, target_id, nr_regions, range, counts) = match (event, n) {
        (Event::Aggregated, 4 | 5) => (None, key_value(fields[0], b"target_id=")?, key_value(fields[1], b"nr_regions=")?, fields[2], &fields[3..n]),
        (Event::BeforeApply, 7) => {
            let scheme = key_value(fields[1], b"scheme_idx=")?;
            let scheme = u32::try_from(scheme).map_err(|_| "scheme_idx out of range")?;
            // Like damo: the target's index stands for its id.
            (Some(scheme), key_value(fields[2], b"target_idx=")?, key_value(fields[3], b"nr_regions=")?, fields[4], &fields[5..7])
        }
        _ => return Err(format!("{n} fields after the event name")),
    };
    let range = range.strip_suffix(b":").ok_or("no ':' after the address range")?;
    let dash = memchr::memchr(b'-', range).ok_or("no '-' in the address range")?;
    let start = integer(&range[..dash]).ok_or("bad region start")?;
    let end = integer(&range[dash + 1..]).ok_or("bad region end")?;
    if end < start {
        return Err("region ends before it starts".into());
    }
    let (nr_accesses, nr_fake) = count(counts[0]).ok_or("bad nr_accesses")?;
    // damo writes "None" when it did not know the age.
    let (age, age_fake) = match counts.get(1) {
        None | Some(&b"None") => (None, false),
        Some(a) => {
            let (age, fake) = count(a).ok_or("bad age")?;
            (Some(age), fake)
        }
    };
    let nr_regions = u32::try_from(nr_regions).map_err(|_| "nr_regions out of range")?;
    if nr_regions == 0 {
        return Err("nr_regions is 0".into());
    }
    Ok(Some(RegionLine { end_ns, scheme_idx, target_id, nr_regions, region: Region { start, end, nr_accesses, age }, fake: nr_fake && (age_fake || counts.len() == 1) && start == 0 && end == 0 }))
}

fn key_value(token: &[u8], key: &[u8]) -> Result<u64, String> {
    token.strip_prefix(key).and_then(integer).ok_or_else(|| format!("expected {}<number>, found {:?}", String::from_utf8_lossy(key), String::from_utf8_lossy(token)))
}

/// A decimal `u64`; `None` on anything else, overflow included.
pub(super) fn integer(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    // 19 digits cannot overflow a u64; only the 20th is checked.
    let (head, last) = if digits.len() == 20 { (&digits[..19], Some(digits[19])) } else { (digits, None) };
    let mut v: u64 = 0;
    for &d in head {
        let digit = d.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        v = v * 10 + u64::from(digit);
    }
    match last {
        None => Some(v),
        Some(d) => {
            let digit = d.wrapping_sub(b'0');
            (digit <= 9).then_some(())?;
            v.checked_mul(10)?.checked_add(u64::from(digit))
        }
    }
}

/// A count as a `u32`, and whether it was damo's fake-snapshot marker -1.
fn count(token: &[u8]) -> Option<(u32, bool)> {
    if token == b"-1" {
        return Some((0, true));
    }
    Some((u32::try_from(integer(token)?).ok()?, false))
}

/// Timestamps repeat for every region of a snapshot: parse each distinct one once.
#[derive(Default)]
struct TimestampCache {
    text: Vec<u8>,
    ns: u64,
}

impl TimestampCache {
    /// Seconds with a fraction, to ns the way damo computes it (`int(float(ts) * 1e9)`), so
    /// both tools agree to the nanosecond.
    fn ns(&mut self, timestamp: &[u8]) -> Result<u64, String> {
        if timestamp != self.text.as_slice() {
            let secs: f64 = std::str::from_utf8(timestamp)
                .ok()
                .and_then(|t| t.parse().ok())
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| format!("bad timestamp {:?}", String::from_utf8_lossy(timestamp)))?;
            self.ns = (secs * 1e9) as u64;
            self.text.clear();
            self.text.extend_from_slice(timestamp);
        }
        Ok(self.ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A region line's fields, comparable.
    type Fields = (u64, Option<u32>, u64, u32, Region, bool);

    fn fields(r: Result<Option<RegionLine>, String>) -> Result<Option<Fields>, String> {
        r.map(|l| l.map(|l| (l.end_ns, l.scheme_idx, l.target_id, l.nr_regions, l.region, l.fake)))
    }

    #[test]
    fn the_fast_path_reads_every_line_as_the_words_do() {
        let lines: &[&str] = &[
            "kdamond.0  4452 [000] 82820.952659: damon:damon_aggregated: target_id=18446623435582458880 nr_regions=8 94253027950592-94253031862272: 0 3",
            "kdamond.0-129062 [005] ..... 101005.778382: damon_aggregated: target_id=0 nr_regions=11 8360624128-8371830784: 0 974",
            "kworker  80 [001] 80801.060214: damon:damos_before_apply: ctx_idx=0 scheme_idx=0 target_idx=0 nr_regions=11 121932607488-135128711168: 0 136",
            "kworker  80 [001] 80801.060214: damon:damos_before_apply: ctx_idx=0 scheme_idx=0 target_idx=0 nr_regions=11 121932607488-135128711168: 0",
            "kworker  80 [001] 80801.060214: damon:damos_before_apply: ctx_idx=0 scheme_idx=4294967296 target_idx=0 nr_regions=11 1-2: 0 1",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 5-9: 7",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 9-12: 7 3",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 9-: 7 3",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 -12: 7 3",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=20 12-13: 7 3",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=20 123-124: 7 3",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=20 124-123: 7 3",
            "k 1 [0] 1.55: damon:damon_aggregated: target_id=0 nr_regions=20 123-124: 7 3",
            "k 1 [0] 11.55: damon:damon_aggregated: target_id=0 nr_regions=20 123-124: 7 3",
            "k 1 [0] 1.55: damon:damon_aggregated: target_id=0 nr_regions=20 1234-1235: 7 3",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 5-9: 7 None",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 0-0: -1 -1",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 0-0: -1",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 0-0: -1 5",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 0-0: 3 -1",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 0-7: -1 -1",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 0-0: -10 1",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 9-5: 7 1",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=0 5-9: 7 1",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 5-9: 4294967296 1",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 5-9: 7 1\r",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 5-9: 7 1 ",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 5-9: 7 1 8",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 ",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 5-9: 7 1",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 5-9: 7 1",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=20 5-9: 7 1",
            "k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 5-9: 7 1",
            "k 2 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=2 5-9: 7 1",
            "k 1 [0] 1.5:\tdamon:damon_aggregated:  target_id=0\tnr_regions=2 5-9: 7 1",
            "k 1 [0] 1.5: damon:damon_aggregated:x target_id=0 nr_regions=2 5-9: 7 1",
            "k 1 [0] 1.5: xdamon:damon_aggregated: target_id=0 nr_regions=2 5-9: 7 1",
            "k 1 [0] 1.5: damon:damon_aggregated:",
            "k 1 [0] 1.5 damon:damon_aggregated: target_id=0 nr_regions=2 5-9: 7 1",
            "k 1 [0] x.5: damon:damon_aggregated: target_id=0 nr_regions=2 5-9: 7 1",
            "damon_aggregated: target_id=0 nr_regions=2 5-9: 7 1",
            "k_1 [0] 1.5: damos_before_apply: damon:damon_aggregated: target_id=0 nr_regions=2 5-9: 7 1",
            "k 1 [0] 1.5: damon:other_event: a=1",
            "# a header",
            "",
        ];
        // One parser for all lines, so the place of the last name is reused and missed.
        let mut parser = LineParser::default();
        for line in lines.iter().chain(lines.iter().rev()) {
            let want = fields(parse_words(line.as_bytes(), &mut TimestampCache::default()));
            assert_eq!(fields(parser.parse(line.as_bytes())), want, "{line:?}");
        }
    }

    #[test]
    fn numbers_eight_digits_at_a_time_read_as_integer_does() {
        let cases: &[&[u8]] = &[
            b"0",
            b"7 ",
            b"12345678",
            b"123456789",
            b"93823560581120-9",
            b"18446744073709551615",
            b"18446744073709551616",
            b"99999999999999999999",
            b"100000000000000000000",
            b"0000000000000000000001",
            b"x1",
            b"",
            b"1234567:",
            b"12345678901234567890123",
            b"9999999999999999999 1",
            b"00000000",
            b"4294967296 ",
            b"/9:",
            b"09/:0",
        ];
        for &text in cases {
            for pad in [&b""[..], b" 12345678 abc"] {
                let line = [text, pad].concat();
                let digits = line.iter().take_while(|b| b.is_ascii_digit()).count();
                let want = integer(&line[..digits]).map(|v| (v, digits));
                let mut at = 0;
                let got = number(&line, &mut at).map(|v| (v, at));
                assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&line));
            }
        }
    }
}
