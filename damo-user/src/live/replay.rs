//! A record as the stream the live view would have seen while it was made: its snapshots
//! and samples in time order, a tick every second of record time. For tests, and for
//! looking at a record the way `top` showed it.

use damo_record::model::Record;

use super::feed::Feed;
use crate::snapshots::TargetKey;

/// What the collector's tick stands for: a second.
const TICK_NS: u64 = 1_000_000_000;

/// The feeds of `record`, in time order: kdamonds first (pid `1000 + index`: records keep no
/// pids), the module table, then snapshots (at their end) and samples, a tick after every
/// whole second of the record's clock and one at the end.
pub fn feeds(record: &Record) -> Vec<Feed> {
    let pid = |kdamond_idx: u32| 1000 + kdamond_idx;
    let mut feeds: Vec<Feed> = Vec::new();
    let mut kdamonds: Vec<u32> = record.targets.iter().map(|t| t.kdamond_idx).collect();
    kdamonds.sort_unstable();
    kdamonds.dedup();
    for index in kdamonds {
        let intervals = record.targets.iter().find(|t| t.kdamond_idx == index).and_then(|t| t.intervals);
        feeds.push(Feed::Kdamond { pid: pid(index), index, intervals });
    }
    feeds.push(Feed::Modules(record.modules.clone()));
    let mut timed: Vec<(u64, Feed)> = Vec::new();
    for t in &record.targets {
        let key = TargetKey { kdamond_pid: pid(t.kdamond_idx), target_id: t.target_id, context_idx: t.context_idx, scheme_idx: t.scheme_idx };
        timed.extend(t.snapshots.iter().map(|s| (s.end_ns, Feed::Snapshot(key, s.clone()))));
    }
    timed.extend(record.samples.iter().map(|s| (s.ts_ns, Feed::Stack(s.clone()))));
    timed.sort_by_key(|(ts, _)| *ts);
    // Ticks on whole seconds of the clock; what happened at a tick's time comes before it.
    let mut next_tick = timed.first().map_or(0, |(ts, _)| (ts / TICK_NS + 1) * TICK_NS);
    for (ts, feed) in timed {
        while ts > next_tick {
            feeds.push(Feed::Tick);
            next_tick += TICK_NS;
        }
        feeds.push(feed);
    }
    feeds.push(Feed::Tick);
    feeds
}
