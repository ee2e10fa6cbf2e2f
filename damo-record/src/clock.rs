//! The clocks of a record. Times in a record are CLOCK_MONOTONIC ns: the clock of DAMON's
//! trace events and of `bpf_ktime_get_ns`, so snapshots, samples and /proc readings line up;
//! the wall-clock offset turns them into dates. One reader of the kernel's clocks for every
//! crate that stamps record times (this is the lowest crate they all depend on).

/// CLOCK_MONOTONIC now, in ns.
pub fn monotonic_ns() -> u64 {
    u64::try_from(now_ns(libc::CLOCK_MONOTONIC)).unwrap_or(0)
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC, now: what turns record times into wall-clock times.
pub fn realtime_offset_ns() -> i64 {
    now_ns(libc::CLOCK_REALTIME) - now_ns(libc::CLOCK_MONOTONIC)
}

fn now_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills the struct we own; the clocks used always exist.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_moves() {
        let a = monotonic_ns();
        assert!(monotonic_ns() >= a && a > 0);
    }

    #[test]
    fn the_offset_turns_monotonic_times_into_today() {
        let wall = monotonic_ns() as i64 + realtime_offset_ns();
        // Within a second of the wall clock, and after 2020.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
        assert!((wall - now).abs() < 1_000_000_000);
        assert!(wall > 1_577_836_800_000_000_000);
    }
}
