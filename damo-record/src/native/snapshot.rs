//! A snapshot coded against the previous snapshot of its target, in bits (the table is in
//! docs/record-format.md, "Snapshot frames"). DAMON keeps most regions from one aggregation
//! interval to the next, splits a few and merges a few, and a region's age grows by one
//! while its access rate holds: an unchanged region costs one bit, an access count that
//! moved by one costs a few.

use super::codec::{unzigzag, zigzag};
use crate::{
    budget::Meter,
    model::{Region, Snapshot},
};

const PAGE: u64 = 4096;

/// Bits, least significant first, packed into bytes.
pub struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl<'a> BitWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out, acc: 0, n: 0 }
    }

    /// The low `count` (≤ 32) bits of `v`. Fewer than 32 bits wait in `acc`; 32 go out at
    /// once, not a push per byte.
    #[inline]
    fn put(&mut self, v: u64, count: u32) {
        debug_assert!(count <= 32 && self.n < 32);
        self.acc |= (v & ((1u64 << count) - 1)) << self.n;
        self.n += count;
        if self.n >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.n -= 32;
        }
    }

    #[inline]
    fn bit(&mut self, b: bool) {
        self.put(u64::from(b), 1);
    }

    /// Elias gamma code of `v + 1`, for small numbers (< 2^62).
    fn gamma(&mut self, v: u64) {
        let v = v + 1;
        let bits = 64 - v.leading_zeros();
        self.put(0, bits - 1);
        self.put(1, 1);
        self.wide(v, bits - 1);
    }

    /// Any number: the gamma code of its bit length, then its bits below the top one.
    fn num(&mut self, v: u64) {
        let bits = 64 - v.leading_zeros();
        self.gamma(u64::from(bits));
        if bits > 1 {
            self.wide(v, bits - 1);
        }
    }

    fn wide(&mut self, v: u64, bits: u32) {
        if bits > 32 {
            self.put(v, 32);
            self.put(v >> 32, bits - 32);
        } else {
            self.put(v, bits);
        }
    }

    /// Ends the bits with a one bit and pads the last byte with zeros: a frame never ends in
    /// a zero byte, so one whose end was overwritten by zeros does not decode.
    pub fn finish(mut self) {
        self.put(1, 1);
        let bytes = self.n.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
    }
}

pub struct BitReader<'a> {
    data: &'a [u8],
    acc: u64,
    n: u32,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, acc: 0, n: 0 }
    }

    #[inline]
    fn refill(&mut self) {
        if let Some(chunk) = self.data.first_chunk::<8>() {
            let take = (63 - self.n) / 8;
            let word = u64::from_le_bytes(*chunk);
            self.acc |= (word & ((1u64 << (take * 8)) - 1)) << self.n;
            self.n += take * 8;
            self.data = &self.data[take as usize..];
        } else {
            while self.n <= 56 {
                let Some((&b, rest)) = self.data.split_first() else { break };
                self.acc |= u64::from(b) << self.n;
                self.n += 8;
                self.data = rest;
            }
        }
    }

    /// `count` (≤ 32) bits; `None` past the end.
    #[inline]
    fn get(&mut self, count: u32) -> Option<u64> {
        if self.n < count {
            self.refill();
            if self.n < count {
                return None;
            }
        }
        let v = self.acc & ((1u64 << count) - 1);
        self.acc >>= count;
        self.n -= count;
        Some(v)
    }

    #[inline]
    fn bit(&mut self) -> Option<bool> {
        Some(self.get(1)? != 0)
    }

    fn gamma(&mut self) -> Option<u64> {
        // A whole code among the buffered bits (any number below 2^31) is read at once.
        if self.n < 32 {
            self.refill();
        }
        let zeros = self.acc.trailing_zeros();
        if 2 * zeros < self.n {
            let bits = (self.acc >> (zeros + 1)) & ((1u64 << zeros) - 1);
            self.skip(2 * zeros as usize + 1);
            return Some(((1u64 << zeros) | bits) - 1);
        }
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 62 {
                return None;
            }
        }
        Some(((1u64 << zeros) | self.wide(zeros)?) - 1)
    }

    fn num(&mut self) -> Option<u64> {
        let bits = self.gamma()?;
        match bits {
            0 => Some(0),
            1..=64 => Some(1u64 << (bits - 1) | self.wide(bits as u32 - 1)?),
            _ => None,
        }
    }

    fn wide(&mut self, bits: u32) -> Option<u64> {
        if bits > 32 {
            Some(self.get(32)? | self.get(bits - 32)? << 32)
        } else {
            self.get(bits)
        }
    }

    /// Bits left, counting the padding.
    fn left(&self) -> usize {
        self.data.len() * 8 + self.n as usize
    }

    /// How many zero bits come next, of those buffered, up to `max`.
    #[inline]
    fn zeros(&mut self, max: usize) -> usize {
        if self.n < 32 {
            self.refill();
        }
        (self.acc.trailing_zeros().min(self.n) as usize).min(max)
    }

    /// Drops `count` buffered bits ([`Self::zeros`] counted them).
    #[inline]
    fn skip(&mut self, count: usize) {
        debug_assert!(count <= self.n as usize);
        self.acc >>= count;
        self.n -= count as u32;
    }

    /// Only the end mark is left: a one bit, then zeros to the end of the byte.
    fn at_end(&mut self) -> bool {
        self.refill();
        self.data.is_empty() && (1..=8).contains(&self.n) && self.acc == 1
    }
}

/// When the last region ended on a page inside the reference region, `m` pages before its
/// end (m ≥ 2), a region starting there that ends on one of the m − 1 pages between (DAMON
/// split the old region) is coded as which one, in `bit_len(m − 2)` bits.
#[inline]
fn split_range(reference: Option<&Region>, pos: u64) -> Option<u64> {
    let o = reference?;
    let left = o.end.checked_sub(pos)?;
    (o.start <= pos && left % PAGE == 0 && left / PAGE >= 2).then_some(left / PAGE)
}

/// Which of the split points of [`split_range`] `r` ends at (0-based).
fn split_at(r: &Region, pos: u64, m: u64) -> Option<u64> {
    let size = r.end.checked_sub(pos)?;
    (r.start == pos && size % PAGE == 0 && (1..m).contains(&(size / PAGE))).then(|| size / PAGE - 1)
}

fn bit_len(v: u64) -> u32 {
    64 - v.leading_zeros()
}

/// The durations of a target's last snapshots, the latest first (0 where there are none).
pub type Recent = [u64; RECENT];
pub const RECENT: usize = 4;

/// [`Recent`] of a target's snapshots so far.
pub fn recent(snapshots: &[Snapshot]) -> Recent {
    let mut r = [0; RECENT];
    for (slot, s) in r.iter_mut().zip(snapshots.iter().rev()) {
        *slot = duration(s);
    }
    r
}

/// Adds the duration of `s` to `r`.
pub fn push_recent(r: &mut Recent, s: &Snapshot) {
    r.copy_within(..RECENT - 1, 1);
    r[0] = duration(s);
}

fn duration(s: &Snapshot) -> u64 {
    s.end_ns.wrapping_sub(s.start_ns)
}

/// The age a region is expected to have: its reference region's, one interval older.
#[inline]
/// Appends the `run` reference regions from `*j` on, unchanged, and moves `*j` and `*pos`
/// past them as one region at a time would; false (nothing done) unless there are `run` of
/// them and their ends increase, which makes each the next one's reference.
fn copy_unchanged(old: &[Region], j: &mut usize, pos: &mut u64, run: usize, ages: bool, regions: &mut Vec<Region>) -> bool {
    let Some(refs) = old.get(*j..*j + run) else { return false };
    if !refs.windows(2).all(|w| w[0].end < w[1].end) {
        return false;
    }
    regions.extend(refs.iter().map(|o| Region { age: if ages { predicted_age(Some(o)) } else { None }, ..*o }));
    *pos = refs[run - 1].end;
    *j += run;
    while *j < old.len() && old[*j].end <= *pos {
        *j += 1;
    }
    true
}

fn predicted_age(reference: Option<&Region>) -> Option<u32> {
    reference.and_then(|o| o.age).and_then(|a| a.checked_add(1))
}

/// Appends the frame of `s`, coded against `prev` (the target's previous snapshot, if any).
pub fn encode(out: &mut Vec<u8>, index: u64, prev: Option<&Snapshot>, recent: &Recent, s: &Snapshot) {
    let empty = Snapshot::default();
    let prev = prev.unwrap_or(&empty);
    let mut bits = BitWriter::new(out);
    let w = &mut bits;
    w.gamma(index);
    w.bit(s.start_ns != prev.end_ns);
    if s.start_ns != prev.end_ns {
        w.num(zigzag(s.start_ns.wrapping_sub(prev.end_ns) as i64));
    }
    let d = duration(s);
    w.bit(d != recent[0]);
    if d != recent[0] {
        // Durations jitter between a few values: code the difference from the closest of the
        // last four.
        let delta = |k: usize| zigzag(d.wrapping_sub(recent[k]) as i64);
        let k = (0..RECENT).min_by_key(|&k| bit_len(delta(k))).unwrap_or(0);
        w.put(k as u64, 2);
        w.num(delta(k));
    }
    w.bit(s.total_bytes != prev.total_bytes);
    if s.total_bytes != prev.total_bytes {
        w.bit(s.total_bytes.is_some());
        if let Some(t) = s.total_bytes {
            w.num(t);
        }
    }
    let n = s.regions.len() as u64;
    w.bit(n != prev.regions.len() as u64);
    if n != prev.regions.len() as u64 {
        w.gamma(zigzag(n.wrapping_sub(prev.regions.len() as u64) as i64) - 1);
    }
    // Snapshots without ages (damo's perf_script records) say so once.
    let ages = s.regions.iter().any(|r| r.age.is_some());
    w.bit(ages);
    let old = &prev.regions[..];
    let (mut j, mut pos) = (0usize, 0u64);
    for r in &s.regions {
        let reference = old.get(j);
        let ref_nr = reference.map_or(0, |o| o.nr_accesses);
        let age = if ages { predicted_age(reference) } else { None };
        let same = reference.is_some_and(|o| o.start == r.start && o.end == r.end);
        if same && r.nr_accesses == ref_nr && r.age == age {
            w.bit(false);
        } else {
            w.bit(true);
            if same {
                w.bit(false);
            } else {
                w.bit(true);
                let skip = if r.start == pos { old[j..].iter().take_while(|o| o.end <= r.end).position(|o| o.end == r.end) } else { None };
                if let Some(skip) = skip {
                    w.bit(false);
                    w.gamma(skip as u64);
                } else if let Some(m) = split_range(reference, pos) {
                    match split_at(r, pos, m) {
                        Some(k) => {
                            w.put(0b01, 2);
                            w.wide(k, bit_len(m - 2));
                        }
                        None => {
                            w.put(0b11, 2);
                            w.num(r.start.wrapping_sub(pos));
                            w.num(r.end.wrapping_sub(r.start));
                        }
                    }
                } else if r.start == pos && r.end >= r.start && (r.end - r.start) % PAGE == 0 {
                    w.put(0b01, 2);
                    w.num((r.end - r.start) / PAGE);
                } else {
                    w.put(0b11, 2);
                    w.num(r.start.wrapping_sub(pos));
                    w.num(r.end.wrapping_sub(r.start));
                }
            }
            if ages {
                match r.age {
                    a if a == age => w.bit(false),
                    Some(0) => w.put(0b01, 2),
                    None => w.put(0b011, 3),
                    Some(a) => {
                        w.put(0b111, 3);
                        w.num(u64::from(a));
                    }
                }
            }
            // Same bounds and the expected age: the access count must have changed.
            let nr_changed = r.nr_accesses != ref_nr;
            if !(same && r.age == age) {
                w.bit(nr_changed);
            }
            if nr_changed {
                w.gamma(zigzag(i64::from(r.nr_accesses) - i64::from(ref_nr)) - 1);
            }
        }
        pos = r.end;
        while j < old.len() && old[j].end <= pos {
            j += 1;
        }
    }
    bits.finish();
}

/// Decodes a frame: its target index, and a function of the target's previous snapshot that
/// decodes the rest.
pub fn decode(frame: &[u8]) -> Option<(usize, FrameRest<'_>)> {
    let mut r = BitReader::new(frame);
    let index = usize::try_from(r.gamma()?).ok()?;
    Some((index, FrameRest(r)))
}

pub struct FrameRest<'a>(BitReader<'a>);

impl FrameRest<'_> {
    /// The snapshot, coded against `prev`; `None` unless the frame is exactly one snapshot,
    /// or when its regions do not fit in `meter` (then [`Meter::exhausted`] says so).
    pub fn snapshot(self, prev: Option<&Snapshot>, recent: &Recent, meter: &mut Meter) -> Option<Snapshot> {
        self.snapshot_in(prev, recent, meter, Vec::new())
    }

    /// [`Self::snapshot`] with its regions in `regions` (emptied first): a buffer to reuse.
    pub fn snapshot_in(self, prev: Option<&Snapshot>, recent: &Recent, meter: &mut Meter, mut regions: Vec<Region>) -> Option<Snapshot> {
        let empty = Snapshot::default();
        let prev = prev.unwrap_or(&empty);
        let mut r = self.0;
        let start_ns = match r.bit()? {
            false => prev.end_ns,
            true => prev.end_ns.wrapping_add(unzigzag(r.num()?) as u64),
        };
        let duration = match r.bit()? {
            false => recent[0],
            true => {
                let k = r.get(2)? as usize;
                recent[k].wrapping_add(unzigzag(r.num()?) as u64)
            }
        };
        let total_bytes = match r.bit()? {
            false => prev.total_bytes,
            true => match r.bit()? {
                false => None,
                true => Some(r.num()?),
            },
        };
        let n = match r.bit()? {
            false => prev.regions.len(),
            true => usize::try_from((prev.regions.len() as u64).wrapping_add(unzigzag(r.gamma()?.checked_add(1)?) as u64)).ok()?,
        };
        // Every region takes at least a bit: a bogus count cannot make us allocate much.
        if n > r.left() {
            return None;
        }
        // An unchanged region costs one bit: a frame of 1 MB can repeat 8 M regions.
        meter.charge_items::<Region>(n as u64 + 1).ok()?;
        let ages = r.bit()?;
        let old = &prev.regions[..];
        regions.clear();
        regions.reserve(n);
        let (mut j, mut pos) = (0usize, 0u64);
        let mut left = n;
        while left > 0 {
            // Most regions are unchanged (a zero bit each): a run of them is copied at once.
            let run = r.zeros(left);
            if run > 0 && copy_unchanged(old, &mut j, &mut pos, run, ages, &mut regions) {
                r.skip(run);
                left -= run;
                continue;
            }
            left -= 1;
            let reference = old.get(j);
            let region = if !r.bit()? {
                let o = reference?;
                let age = if ages { predicted_age(Some(o)) } else { None };
                Region { start: o.start, end: o.end, nr_accesses: o.nr_accesses, age }
            } else {
                let same = !r.bit()?;
                let (start, end) = if same {
                    let o = reference?;
                    (o.start, o.end)
                } else if !r.bit()? {
                    let skip = usize::try_from(r.gamma()?).ok()?;
                    (pos, old.get(j.checked_add(skip)?)?.end)
                } else if !r.bit()? {
                    match split_range(reference, pos) {
                        Some(m) => {
                            let k = r.wide(bit_len(m - 2))?;
                            if k > m - 2 {
                                return None;
                            }
                            (pos, pos + (k + 1) * PAGE)
                        }
                        None => (pos, pos.wrapping_add(r.num()?.checked_mul(PAGE)?)),
                    }
                } else {
                    let start = pos.wrapping_add(r.num()?);
                    (start, start.wrapping_add(r.num()?))
                };
                let predicted = if ages { predicted_age(reference) } else { None };
                let age = if !ages || !r.bit()? {
                    predicted
                } else if !r.bit()? {
                    Some(0)
                } else if !r.bit()? {
                    None
                } else {
                    Some(u32::try_from(r.num()?).ok()?)
                };
                let ref_nr = reference.map_or(0, |o| o.nr_accesses);
                let nr_changed = (same && age == predicted) || r.bit()?;
                let nr_accesses = match nr_changed {
                    false => ref_nr,
                    true => {
                        let delta = unzigzag(r.gamma()?.checked_add(1)?);
                        u32::try_from(i64::from(ref_nr).checked_add(delta)?).ok()?
                    }
                };
                Region { start, end, nr_accesses, age }
            };
            pos = region.end;
            regions.push(region);
            while j < old.len() && old[j].end <= pos {
                j += 1;
            }
        }
        if !r.at_end() {
            return None;
        }
        Some(Snapshot { start_ns, end_ns: start_ns.wrapping_add(duration), regions, total_bytes })
    }
}
