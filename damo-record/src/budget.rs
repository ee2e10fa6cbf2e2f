//! How much memory reading a record and building a report may take.
//!
//! A record's length fields (region, sample and string counts, chunk sizes) and some report
//! options (`wss -r`, `holistic --time_buckets`, `heatmap --resol`) decide how much memory is
//! allocated. A crafted 1 MB file can ask for gigabytes; allocating them would abort the
//! process (or wake the OOM killer) with no word on why. Readers charge a [`Meter`] before
//! they allocate what such a field asks for, and reports [`check`] their buffers: past the
//! limit is one clear error naming it, never an abort.
//!
//! The limit is `DAMO_TRACE_MEMORY_LIMIT` (a size: `512M`, `4 GiB`, bytes), or half of the
//! machine's `MemAvailable` when that is unset (at least [`MIN_DEFAULT`]). Charges are what
//! the decoded structures take (element sizes, string lengths), not counting the slack of a
//! growing `Vec`: the process's peak stays within about twice the limit.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::units;

pub const ENV: &str = "DAMO_TRACE_MEMORY_LIMIT";
/// The default never goes below this, so a machine short of memory still reads small records.
pub const MIN_DEFAULT: u64 = 256 << 20;
/// When `/proc/meminfo` cannot be read.
const FALLBACK: u64 = 4 << 30;

/// 0 until the limit is first read or set.
static LIMIT: AtomicU64 = AtomicU64::new(0);

/// The limit exceeded: what needed more, and the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} needs more than the memory limit of {} (set {ENV} to raise it)", units::format_sz(*.limit as f64, false))]
pub struct OverBudget {
    pub what: String,
    pub limit: u64,
}

/// `DAMO_TRACE_MEMORY_LIMIT` was set to something that is not a size.
#[derive(Debug, thiserror::Error)]
#[error("{ENV}={0:?} is not a size (e.g. 512M, 4 GiB)")]
pub struct BadLimit(String);

/// The limit in bytes: the one [`set_limit`] set, else the environment's, else the default.
/// An unparsable `DAMO_TRACE_MEMORY_LIMIT` reads as the default here; [`limit_from_env`]
/// is what the CLI calls first to refuse it.
pub fn limit() -> u64 {
    match LIMIT.load(Ordering::Relaxed) {
        0 => {
            let l = limit_from_env().ok().flatten().unwrap_or_else(default_limit);
            LIMIT.store(l, Ordering::Relaxed);
            l
        }
        l => l,
    }
}

/// Sets the limit for this process (the CLI does, from the environment; fuzz targets pick
/// one below libFuzzer's RSS limit).
pub fn set_limit(bytes: u64) {
    LIMIT.store(bytes.max(1), Ordering::Relaxed);
}

/// `DAMO_TRACE_MEMORY_LIMIT`, if set.
pub fn limit_from_env() -> Result<Option<u64>, BadLimit> {
    let Some(v) = std::env::var_os(ENV) else { return Ok(None) };
    let text = v.to_string_lossy();
    match units::parse_bytes(&text) {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(BadLimit(text.into_owned())),
    }
}

/// Half of `MemAvailable`, at least [`MIN_DEFAULT`].
pub fn default_limit() -> u64 {
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib.saturating_mul(1024))
    });
    available.map_or(FALLBACK, |a| (a / 2).max(MIN_DEFAULT))
}

/// Fails unless `bytes` fit in the limit: for a report's buffers, sized by its options.
pub fn check(bytes: u64, what: impl FnOnce() -> String) -> Result<(), OverBudget> {
    let limit = limit();
    if bytes > limit {
        return Err(OverBudget { what: what(), limit });
    }
    Ok(())
}

/// `n` values of `T`, in bytes (saturating).
pub fn bytes_of<T>(n: u64) -> u64 {
    n.saturating_mul(std::mem::size_of::<T>() as u64)
}

/// The memory one reading has taken so far, against the limit.
#[derive(Debug, Clone)]
pub struct Meter {
    limit: u64,
    used: u64,
    what: &'static str,
    /// A charge was refused: decoders that answer `None` for any failure check this to tell
    /// "over the limit" from "damaged".
    refused: bool,
}

impl Default for Meter {
    fn default() -> Self {
        Self::new()
    }
}

impl Meter {
    /// Against the process's [`limit`].
    pub fn new() -> Self {
        Self::with_limit(limit())
    }

    pub fn with_limit(limit: u64) -> Self {
        Self { limit, used: 0, what: "reading the record", refused: false }
    }

    /// Names what the charges are for in the error.
    pub fn for_what(mut self, what: &'static str) -> Self {
        self.what = what;
        self
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    /// Bytes left under the limit.
    pub fn available(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    /// Takes `bytes` from the budget, or says it is spent.
    pub fn charge(&mut self, bytes: u64) -> Result<(), OverBudget> {
        match self.used.checked_add(bytes).filter(|&u| u <= self.limit) {
            Some(u) => {
                self.used = u;
                Ok(())
            }
            None => {
                self.refused = true;
                Err(self.over())
            }
        }
    }

    /// Whether a charge was refused.
    pub fn exhausted(&self) -> bool {
        self.refused
    }

    /// `n` values of `T`.
    pub fn charge_items<T>(&mut self, n: u64) -> Result<(), OverBudget> {
        self.charge(bytes_of::<T>(n))
    }

    /// Gives back what a transient buffer took.
    pub fn release(&mut self, bytes: u64) {
        self.used = self.used.saturating_sub(bytes);
    }

    /// The error for this meter's limit.
    pub fn over(&self) -> OverBudget {
        OverBudget { what: self.what.to_owned(), limit: self.limit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meter_refuses_what_passes_its_limit_and_takes_back_releases() {
        let mut m = Meter::with_limit(100);
        m.charge(60).unwrap();
        assert_eq!(m.available(), 40);
        let err = m.charge(41).unwrap_err();
        assert_eq!(m.used(), 60, "a refused charge takes nothing");
        assert!(m.exhausted());
        assert!(err.to_string().contains("memory limit of 100 B"), "{err}");
        assert!(err.to_string().contains(ENV), "{err}");
        m.release(60);
        m.charge_items::<u64>(12).unwrap();
        assert!(m.charge(u64::MAX).is_err(), "no overflow");
    }

    #[test]
    fn the_default_is_half_the_available_memory_and_never_tiny() {
        let d = default_limit();
        assert!(d >= MIN_DEFAULT);
        let text = std::fs::read_to_string("/proc/meminfo").unwrap();
        let kib: u64 = text.lines().find(|l| l.starts_with("MemAvailable:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        // MemAvailable moves between the two reads: within 10 %.
        let half = (kib * 1024 / 2).max(MIN_DEFAULT) as f64;
        assert!((d as f64 - half).abs() < half * 0.1, "default {d}, half of MemAvailable {half}");
    }
}
