//! A scanner for the JSON damo writes, fast enough to keep up with inflation: regions (all
//! but a few bytes of a record) are read byte by byte straight into their fields, with no
//! token objects and no allocation. Anything else (a target's or snapshot's other members)
//! is copied as text and read by serde into the same structs the generic parser fills, and
//! both convert through the same functions, so a record read here is the one serde reads.
//!
//! It only reads what damo writes: on anything else (an unknown region key, an escape, a
//! float, a number too long, damage) it stops with [`Stop::Unexpected`] and the caller reads
//! the document again with the generic parser, which reads it or says what is wrong. Every
//! allocation is bounded by the input: regions are charged to the meter as the generic
//! parser charges them, and copied text is capped at [`MAX_TEXT`].

mod layout;

use std::io;

use layout::RegionLayout;

use super::{
    convert_head, convert_snapshot, metered, plain_int, Bytes, Charged, Cost, DamoError, Field, JsonAge, JsonNrAccesses, JsonRegion, JsonSnapshot, JsonTarget, Parse, Percent, SignedCount, Us,
    MAX_STRING,
};
use crate::{
    budget::{bytes_of, Meter},
    model::{DamosInfo, Record, Region, Snapshot, TargetRecord},
};

/// Why the scanner stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// Input the scanner does not read (or damaged): the generic parser should read it.
    Unexpected,
    /// The meter refused a charge.
    OverBudget,
}

type Scan<T> = Result<T, Stop>;

/// The two optional fields of a region's `nr_accesses` or `age`.
type Pair<P, Q> = (Option<<P as Parse>::Out>, Option<<Q as Parse>::Out>);

/// The most text copied for serde: a target's or snapshot's members besides its list.
const MAX_TEXT: usize = MAX_STRING as usize;
/// The longest string value read in a region (damo's are numbers with commas and units).
const MAX_VALUE: usize = 64;
/// The deepest nesting copied (serde's own limit is 128).
const MAX_DEPTH: usize = 64;

/// Reads a record from `blocks` of JSON, handing each block to `spent` once read, charging
/// `meter`.
pub fn read<B: AsRef<[u8]> + Default>(blocks: impl Iterator<Item = io::Result<B>>, spent: impl FnMut(B), meter: &mut Meter) -> Scan<Record> {
    let mut kept: Vec<Vec<Snapshot>> = Vec::new();
    let mut keep = |index: usize, _: &TargetRecord, snapshot: Snapshot| {
        if kept.len() <= index {
            kept.resize_with(index + 1, Vec::new);
        }
        kept[index].push(snapshot);
        Vec::new()
    };
    let mut record = scan(blocks, spent, meter, Charging::Record, &mut keep)?;
    for (target, snapshots) in record.targets.iter_mut().zip(kept) {
        target.snapshots = snapshots;
    }
    Ok(record)
}

/// What a snapshot is handed to: the index of its target in the document, that target
/// (without snapshots), and the snapshot, whose regions' list it may give back emptied for
/// the next one.
pub type Each<'a> = dyn FnMut(usize, &TargetRecord, Snapshot) -> Vec<Region> + 'a;

/// Reads a record from `blocks` as [`read`] does, handing each snapshot to `each` as soon as
/// it is read instead of keeping it: the record comes back without snapshots, and `meter` is
/// charged for one snapshot at a time. A document [`read`] refuses is refused here too, but
/// only where the scanner finds what it does not read: `each` may have had snapshots by then.
pub fn stream<B: AsRef<[u8]> + Default>(blocks: impl Iterator<Item = io::Result<B>>, spent: impl FnMut(B), meter: &mut Meter, each: &mut Each) -> Scan<Record> {
    scan(blocks, spent, meter, Charging::Snapshot, each)
}

/// What the meter is charged for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Charging {
    /// The whole record, as the generic parser charges it.
    Record,
    /// One snapshot at a time: each is released once handed over.
    Snapshot,
}

fn scan<B: AsRef<[u8]> + Default>(blocks: impl Iterator<Item = io::Result<B>>, spent: impl FnMut(B), meter: &mut Meter, charging: Charging, each: &mut Each) -> Scan<Record> {
    let input = Input { blocks, spent, block: B::default(), pos: 0, failed: false };
    let mut s = Scanner { input, meter, charging, each, text: Vec::new(), region_list: Vec::new(), regions: Vec::new(), layout: None };
    let mut record = Record::default();
    let mut damos = Vec::new();
    s.input.expect(b'[')?;
    if s.input.peek_token()? == b']' {
        s.input.pos += 1;
    } else {
        loop {
            s.charge::<JsonTarget>()?;
            s.input.expect(b'{')?;
            let (target, info) = s.target(record.targets.len())?;
            record.targets.push(target);
            damos.push(info);
            match s.input.token()? {
                b',' => {}
                b']' => break,
                _ => return Err(Stop::Unexpected),
            }
        }
    }
    // The generic parser charges once more at a list's end.
    s.charge::<JsonTarget>()?;
    if !s.input.at_end() {
        return Err(Stop::Unexpected);
    }
    if damos.iter().any(|d| *d != DamosInfo { target_id_null: d.target_id_null, ..Default::default() }) {
        record.damos = Some(damos);
    }
    Ok(record)
}

/// The JSON bytes, a block at a time.
struct Input<I, B, S> {
    blocks: I,
    spent: S,
    block: B,
    pos: usize,
    /// A block failed (a damaged stream).
    failed: bool,
}

impl<B: AsRef<[u8]>, I: Iterator<Item = io::Result<B>>, S: FnMut(B)> Input<I, B, S> {
    #[inline]
    fn peek(&mut self) -> Scan<u8> {
        match self.block.as_ref().get(self.pos) {
            Some(&b) => Ok(b),
            None => self.refill(),
        }
    }

    #[cold]
    fn refill(&mut self) -> Scan<u8> {
        loop {
            match self.blocks.next() {
                Some(Ok(block)) => {
                    (self.spent)(std::mem::replace(&mut self.block, block));
                    self.pos = 0;
                    if let Some(&b) = self.block.as_ref().first() {
                        return Ok(b);
                    }
                }
                Some(Err(_)) => {
                    self.failed = true;
                    return Err(Stop::Unexpected);
                }
                None => return Err(Stop::Unexpected),
            }
        }
    }

    /// What is left of the current block.
    #[inline]
    fn rest(&self) -> &[u8] {
        &self.block.as_ref()[self.pos..]
    }

    #[inline]
    fn next(&mut self) -> Scan<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    /// The next byte that is not whitespace, not consumed.
    #[inline]
    fn peek_token(&mut self) -> Scan<u8> {
        loop {
            match self.peek()? {
                b' ' | b'\n' | b'\t' | b'\r' => {
                    self.pos += 1;
                    self.skip_spaces();
                }
                b => return Ok(b),
            }
        }
    }

    /// Skips spaces eight at a time: damo indents every line by up to 24 of them.
    #[inline]
    fn skip_spaces(&mut self) {
        const SPACES: u64 = u64::from_le_bytes([b' '; 8]);
        while let Some(word) = self.block.as_ref().get(self.pos..self.pos + 8) {
            let other = u64::from_le_bytes(word.try_into().expect("eight bytes")) ^ SPACES;
            if other != 0 {
                self.pos += other.trailing_zeros() as usize / 8;
                return;
            }
            self.pos += 8;
        }
    }

    /// The next byte that is not whitespace.
    #[inline]
    fn token(&mut self) -> Scan<u8> {
        let b = self.peek_token()?;
        self.pos += 1;
        Ok(b)
    }

    fn expect(&mut self, want: u8) -> Scan<()> {
        if self.token()? == want {
            Ok(())
        } else {
            Err(Stop::Unexpected)
        }
    }

    /// The rest of `word` (its first byte was read).
    fn rest_of(&mut self, word: &[u8]) -> Scan<()> {
        for &want in &word[1..] {
            if self.next()? != want {
                return Err(Stop::Unexpected);
            }
        }
        Ok(())
    }

    /// Whether only whitespace is left, and the stream ended cleanly.
    fn at_end(&mut self) -> bool {
        match self.peek_token() {
            Ok(_) => false,
            Err(_) => !self.failed,
        }
    }

    /// A string's bytes (its opening quote read) into `out`, up to `max` of them and with no
    /// escapes, then the quote.
    #[inline]
    fn string_into<'b>(&mut self, out: &'b mut [u8], max: usize) -> Scan<&'b [u8]> {
        let mut n = 0;
        loop {
            match self.next()? {
                b'"' => return Ok(&out[..n]),
                // Escapes and control bytes (which serde refuses) are serde's to judge.
                b'\\' | 0..=0x1f => return Err(Stop::Unexpected),
                _ if n == max.min(out.len()) => return Err(Stop::Unexpected),
                b => {
                    out[n] = b;
                    n += 1;
                }
            }
        }
    }

    /// A key and its colon.
    #[inline]
    fn key<'b>(&mut self, out: &'b mut [u8; 32]) -> Scan<&'b [u8]> {
        self.expect(b'"')?;
        let n = self.string_into(out, 32)?.len();
        self.expect(b':')?;
        Ok(&out[..n])
    }

    /// A numeric field as serde's `Field<P>` reads it; `None` for `null`.
    #[inline]
    fn field<P: Parse>(&mut self) -> Scan<Option<P::Out>> {
        match self.token()? {
            b'n' => self.rest_of(b"null").map(|()| None),
            b'"' => {
                if let Some(plain) = self.plain_string::<P>() {
                    return Ok(Some(plain));
                }
                let mut buf = [0u8; MAX_VALUE];
                let text = self.string_into(&mut buf, MAX_VALUE)?;
                string_value::<P>(text).map(Some)
            }
            b @ (b'-' | b'0'..=b'9') => {
                let negative = b == b'-';
                let first = if negative { self.next()? } else { b };
                let mut value = i128::from(first.wrapping_sub(b'0'));
                if value > 9 {
                    return Err(Stop::Unexpected);
                }
                let mut digits = 1;
                while let d @ b'0'..=b'9' = self.peek()? {
                    self.pos += 1;
                    value = value * 10 + i128::from(d - b'0');
                    digits += 1;
                }
                // Fractions, exponents, leading zeros, -0 and numbers past u64: serde's.
                let (leading_zero, fraction) = (first == b'0' && (digits > 1 || negative), matches!(self.peek()?, b'.' | b'e' | b'E'));
                if leading_zero || fraction || digits > 18 {
                    return Err(Stop::Unexpected);
                }
                P::int(if negative { -value } else { value }).map(Some).ok_or(Stop::Unexpected)
            }
            _ => Err(Stop::Unexpected),
        }
    }

    /// A string (its opening quote read) that lies in this block and is a plain int for `P`
    /// (digits and commas, as `plain_int` reads them), read in one pass; `None` leaves the
    /// input where it was for the general path.
    #[inline]
    fn plain_string<P: Parse>(&mut self) -> Option<P::Out> {
        P::PLAIN_SUFFIX?;
        let rest = &self.block.as_ref()[self.pos..];
        let (mut value, mut digits) = (0i128, 0);
        for (i, &c) in rest.iter().enumerate().take(MAX_VALUE) {
            match c {
                b'0'..=b'9' if digits < 15 => {
                    value = value * 10 + i128::from(c - b'0');
                    digits += 1;
                }
                b',' => {}
                b'"' if digits > 0 => {
                    let out = P::int(value)?;
                    self.pos += i + 1;
                    return Some(out);
                }
                _ => return None,
            }
        }
        None
    }

    /// Which of `keys` (each `"name":`) comes next, trying `guess` first: damo writes a
    /// region's keys in one order, so that is a compare of a few bytes.
    #[inline]
    fn key_of(&mut self, keys: &[&[u8]], guess: usize) -> Scan<usize> {
        if self.peek_token()? == b'"' {
            if let Some(k) = keys.get(guess) {
                if has_prefix(&self.block.as_ref()[self.pos..], k) {
                    self.pos += k.len();
                    return Ok(guess);
                }
            }
        }
        let mut buf = [0u8; 32];
        let key = self.key(&mut buf)?;
        keys.iter().position(|k| &k[1..k.len() - 2] == key).ok_or(Stop::Unexpected)
    }

    /// `[]` or `null` (damo's empty `probe_hits`).
    fn empty(&mut self) -> Scan<()> {
        match self.token()? {
            b'[' => self.expect(b']'),
            b'n' => self.rest_of(b"null"),
            _ => Err(Stop::Unexpected),
        }
    }

    /// After a member: whether another follows (`,`) or the object ended (`}`).
    #[inline]
    fn more_members(&mut self) -> Scan<bool> {
        match self.token()? {
            b',' => Ok(true),
            b'}' => Ok(false),
            _ => Err(Stop::Unexpected),
        }
    }

    /// A small object of numeric fields: `null`, or `{` keys from `keys`, each once `}`;
    /// `set` reads key `i`'s value.
    fn small_object(&mut self, keys: &[&[u8]], mut set: impl FnMut(&mut Self, usize) -> Scan<()>) -> Scan<bool> {
        match self.token()? {
            b'n' => return self.rest_of(b"null").map(|()| false),
            b'{' => {}
            _ => return Err(Stop::Unexpected),
        }
        if self.peek_token()? == b'}' {
            self.pos += 1;
            return Ok(true);
        }
        let (mut seen, mut guess) = (0u32, 0);
        loop {
            let i = self.key_of(keys, guess)?;
            guess = i + 1;
            if seen & (1 << i) != 0 {
                return Err(Stop::Unexpected);
            }
            seen |= 1 << i;
            set(self, i)?;
            if !self.more_members()? {
                return Ok(true);
            }
        }
    }

    /// `null` (`None`), or an object of two optional numeric fields named `keys`.
    fn pair<P: Parse, Q: Parse>(&mut self, keys: &[&[u8]; 2]) -> Scan<Option<Pair<P, Q>>> {
        let (mut a, mut b) = (None, None);
        let given = self.small_object(keys, |s, i| {
            match i {
                0 => a = s.field::<P>()?,
                _ => b = s.field::<Q>()?,
            }
            Ok(())
        })?;
        Ok(given.then_some((a, b)))
    }

    /// One region, its `{` read.
    fn region(&mut self) -> Scan<JsonRegion> {
        let (mut start, mut end, mut nr_accesses, mut age, mut sz_filter_passed) = (None, None, None, None, None);
        const KEYS: [&[u8]; 6] = [b"\"start\":", b"\"end\":", b"\"nr_accesses\":", b"\"age\":", b"\"probe_hits\":", b"\"sz_filter_passed\":"];
        let (mut seen, mut guess) = (0u32, 0);
        if self.peek_token()? != b'}' {
            loop {
                let i = self.key_of(&KEYS, guess)?;
                guess = i + 1;
                let bit = 1 << i;
                match i {
                    0 => {
                        start = Some(self.field::<Bytes>()?.ok_or(Stop::Unexpected)?);
                    }
                    1 => {
                        end = Some(self.field::<Bytes>()?.ok_or(Stop::Unexpected)?);
                    }
                    2 => {
                        let pair = self.pair::<SignedCount, Percent>(&[b"\"samples\":", b"\"percent\":"])?;
                        nr_accesses = pair.map(|(samples, percent)| JsonNrAccesses { samples: samples.map(Field), percent: percent.map(Field) });
                    }
                    3 => {
                        let pair = self.pair::<Us, SignedCount>(&[b"\"usec\":", b"\"aggr_intervals\":"])?;
                        age = pair.map(|(usec, aggr_intervals)| JsonAge { usec: usec.map(Field), aggr_intervals: aggr_intervals.map(Field) });
                    }
                    4 => self.empty()?,
                    _ => sz_filter_passed = self.field::<Bytes>()?.map(Field),
                }
                if seen & bit != 0 {
                    return Err(Stop::Unexpected);
                }
                seen |= bit;
                if !self.more_members()? {
                    break;
                }
            }
        } else {
            self.pos += 1;
        }
        let (Some(start), Some(end)) = (start, end) else { return Err(Stop::Unexpected) };
        Ok(JsonRegion { start: Field(start), end: Field(end), nr_accesses, age, sz_filter_passed })
    }

    /// One JSON value, copied into `out` as it is (serde reads it later). Bounded by
    /// [`MAX_TEXT`] and [`MAX_DEPTH`].
    fn copy_value(&mut self, out: &mut Vec<u8>) -> Scan<()> {
        let mut depth = 0;
        loop {
            if out.len() > MAX_TEXT {
                return Err(Stop::Unexpected);
            }
            let b = self.peek()?;
            match b {
                b'"' => {
                    self.pos += 1;
                    out.push(b);
                    loop {
                        let c = self.next()?;
                        out.push(c);
                        match c {
                            b'"' => break,
                            b'\\' => out.push(self.next()?),
                            _ if out.len() > MAX_TEXT => return Err(Stop::Unexpected),
                            _ => {}
                        }
                    }
                    if depth == 0 {
                        return Ok(());
                    }
                    continue;
                }
                b'{' | b'[' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(Stop::Unexpected);
                    }
                }
                b'}' | b']' if depth == 0 => return Ok(()),
                b'}' | b']' => depth -= 1,
                b',' if depth == 0 => return Ok(()),
                _ => {}
            }
            self.pos += 1;
            out.push(b);
        }
    }
}

/// A string value's text (no escapes) as serde's `Field<P>` reads it.
fn string_value<P: Parse>(text: &[u8]) -> Scan<P::Out> {
    match P::PLAIN_SUFFIX.and_then(|suffix| plain_int(text.strip_suffix(suffix.as_bytes()).unwrap_or(text))).and_then(P::int) {
        Some(v) => Ok(v),
        None => {
            let text = std::str::from_utf8(text).map_err(|_| Stop::Unexpected)?;
            P::text(text).map_err(|_| Stop::Unexpected)
        }
    }
}

/// `hay.starts_with(key)` for keys of 4 bytes or more, as two word compares (overlapping) and
/// no call to `memcmp`, which costs more than the compare for keys this short.
#[inline]
fn has_prefix(hay: &[u8], key: &[u8]) -> bool {
    let n = key.len();
    if hay.len() < n || n < 4 {
        return hay.starts_with(key);
    }
    if n < 8 {
        let word = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().expect("four bytes"));
        return word(hay, 0) == word(key, 0) && word(hay, n - 4) == word(key, n - 4);
    }
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("eight bytes"));
    word(hay, 0) == word(key, 0) && word(hay, n - 8) == word(key, n - 8) && (n <= 16 || hay[8..n - 8] == key[8..n - 8])
}

struct Scanner<'m, 'e, I, B, S> {
    input: Input<I, B, S>,
    meter: &'m mut Meter,
    charging: Charging,
    each: &'m mut Each<'e>,
    /// A target's or snapshot's members besides its list, as JSON text for serde.
    text: Vec<u8>,
    /// The list a snapshot's regions are read into, emptied by their conversion and reused.
    region_list: Vec<JsonRegion>,
    /// The list the next snapshot's converted regions go into (given back by `each`).
    regions: Vec<Region>,
    /// damo's region layout at the depth regions were last read.
    layout: Option<RegionLayout>,
}

impl<B: AsRef<[u8]>, I: Iterator<Item = io::Result<B>>, S: FnMut(B)> Scanner<'_, '_, I, B, S> {
    /// What the generic parser charges for one element of a list of `T`.
    #[inline]
    fn charge<T: Cost>(&mut self) -> Scan<()> {
        self.meter.charge(bytes_of::<T>(1) + T::EXTRA).map_err(|_| Stop::OverBudget)
    }

    /// The members of an object (its `{` read) copied into `self.text` as an object, except
    /// the one named `list`, whose value `read_list` reads (called with the text so far).
    fn members(&mut self, list: &[u8], mut read_list: impl FnMut(&mut Self) -> Scan<()>) -> Scan<()> {
        let mut found = false;
        self.text.clear();
        self.text.push(b'{');
        if self.input.peek_token()? == b'}' {
            self.input.pos += 1;
        } else {
            loop {
                let mut buf = [0u8; 32];
                let key = self.input.key(&mut buf)?;
                if key == list {
                    if found {
                        return Err(Stop::Unexpected);
                    }
                    found = true;
                    read_list(self)?;
                } else {
                    if self.text.len() > 1 {
                        self.text.push(b',');
                    }
                    self.text.push(b'"');
                    self.text.extend_from_slice(key);
                    self.text.extend_from_slice(b"\":");
                    self.input.peek_token()?;
                    self.input.copy_value(&mut self.text)?;
                }
                if !self.input.more_members()? {
                    break;
                }
            }
        }
        if !found {
            return Err(Stop::Unexpected);
        }
        Ok(())
    }

    /// `self.text` closed with an empty `list` of `L`, read by serde. With `charge`, what it
    /// holds (DAMOS filters) is charged as the generic parser charges it.
    fn parse_text<T: serde::de::DeserializeOwned, L: Cost>(&mut self, list: &str, charge: bool) -> Scan<T> {
        let mut text = std::mem::take(&mut self.text);
        if text.len() > 1 {
            text.push(b',');
        }
        text.extend_from_slice(format!("\"{list}\":[]}}").as_bytes());
        let parse = || serde_json::from_slice(&text).map_err(|e| DamoError::Json(e.to_string()));
        let parsed = match charge {
            true => metered(self.meter, parse).inspect(|_| self.meter.release(bytes_of::<L>(1) + L::EXTRA)),
            false => parse(),
        };
        text.truncate(0);
        self.text = text;
        parsed.map_err(|e| match e {
            DamoError::OverBudget(_) => Stop::OverBudget,
            _ => Stop::Unexpected,
        })
    }

    /// The target the members copied so far describe (its identity and intervals).
    fn target_so_far(&mut self) -> Scan<TargetRecord> {
        let saved = self.text.clone();
        let head: JsonTarget = self.parse_text::<_, JsonSnapshot>("snapshots", false)?;
        self.text = saved;
        convert_head(head).map(|(target, _)| target).map_err(|_| Stop::Unexpected)
    }

    /// Target `index`, its `{` read. Its snapshots are handed over as they are read, with the
    /// target that the members before them describe (damo writes them first); one that
    /// members after a list of snapshots change is not damo's layout.
    fn target(&mut self, index: usize) -> Scan<(TargetRecord, DamosInfo)> {
        let mut early: Option<TargetRecord> = None;
        let mut details = DamosInfo::default();
        let mut text = Vec::new();
        self.members(b"snapshots", |s| {
            let target = s.target_so_far()?;
            // The target's members go on after the list: keep them aside meanwhile.
            text = std::mem::take(&mut s.text);
            let handed = s.snapshots(index, &target, &mut details)?;
            s.text = std::mem::take(&mut text);
            early = handed.then_some(target);
            Ok(())
        })?;
        let head: JsonTarget = self.parse_text::<_, JsonSnapshot>("snapshots", true)?;
        let (target, mut info) = convert_head(head).map_err(|_| Stop::Unexpected)?;
        if early.is_some_and(|early| early != target) {
            return Err(Stop::Unexpected);
        }
        info.snapshots = details.snapshots;
        Ok((target, info))
    }

    /// A target's list of snapshots, each converted (its DAMOS details into `info`) and handed
    /// over; whether any was (damo's fake snapshot is not).
    fn snapshots(&mut self, index: usize, target: &TargetRecord, info: &mut DamosInfo) -> Scan<bool> {
        self.input.expect(b'[')?;
        if self.input.peek_token()? == b']' {
            self.input.pos += 1;
            return self.charge::<JsonSnapshot>().map(|()| false);
        }
        let mut handed = false;
        loop {
            let used = self.meter.used();
            self.charge::<JsonSnapshot>()?;
            self.input.expect(b'{')?;
            let mut regions = std::mem::take(&mut self.region_list);
            self.members(b"regions", |s| s.regions(&mut regions))?;
            let mut snapshot: JsonSnapshot = self.parse_text::<_, JsonRegion>("regions", true)?;
            snapshot.regions = Charged(regions);
            let converted = convert_snapshot(&mut snapshot, target.intervals, info, std::mem::take(&mut self.regions)).map_err(|_| Stop::Unexpected)?;
            self.region_list = std::mem::take(&mut snapshot.regions.0);
            if let Some(converted) = converted {
                self.regions = (self.each)(index, target, converted);
                handed = true;
            }
            if self.charging == Charging::Snapshot {
                self.meter.release(self.meter.used().saturating_sub(used));
            }
            match self.input.token()? {
                b',' => {}
                b']' => return self.charge::<JsonSnapshot>().map(|()| handed),
                _ => return Err(Stop::Unexpected),
            }
        }
    }

    /// A snapshot's list of regions.
    fn regions(&mut self, out: &mut Vec<JsonRegion>) -> Scan<()> {
        self.input.expect(b'[')?;
        if self.input.peek_token()? == b']' {
            self.input.pos += 1;
            return self.charge::<JsonRegion>();
        }
        self.charge::<JsonRegion>()?;
        self.input.expect(b'{')?;
        loop {
            // damo's layout as whole stretches where it holds, the byte scanner elsewhere.
            match RegionLayout::read(&mut self.layout, self.input.rest()) {
                Some((region, len)) => {
                    self.input.pos += len;
                    out.push(region);
                }
                None => out.push(self.input.region()?),
            }
            if let Some(next) = self.layout.as_ref().map(RegionLayout::next).filter(|next| layout::starts_with(self.input.rest(), next)) {
                self.input.pos += next.len();
                self.charge::<JsonRegion>()?;
                continue;
            }
            match self.input.token()? {
                b',' => {
                    self.charge::<JsonRegion>()?;
                    self.input.expect(b'{')?;
                }
                b']' => return self.charge::<JsonRegion>(),
                _ => return Err(Stop::Unexpected),
            }
        }
    }
}

#[cfg(test)]
mod tests;
