//! Reads the eBPF ring buffer as it becomes readable (epoll through tokio's `AsyncFd`, no
//! sleep-polling) and hands each event to a sink.

use std::future::Future;

use anyhow::Result;
use aya::maps::{MapData, RingBuf};
use damo_common::{RegionEvent, SchemeRegionEvent, StackEvent};
use tokio::io::{unix::AsyncFd, Interest};

use crate::bpf::Event;

/// Where events go: the record writer, a live view, a test.
pub trait EventSink {
    fn region(&mut self, event: &RegionEvent) -> Result<()>;
    /// A stack sample, with the user stack bytes copied from `event.regs.sp` (dwarf mode).
    fn stack(&mut self, event: &StackEvent, stack: &[u8]) -> Result<()>;
    /// A region a DAMOS scheme is about to act on. Only recordings that attach
    /// `damos_before_apply` get them; a sink without a use for them counts them as undecodable.
    fn scheme_region(&mut self, _event: &SchemeRegionEvent) -> Result<()> {
        self.undecodable(size_of::<SchemeRegionEvent>())
    }
    /// A ring buffer item that did not decode (a kernel/user version mismatch).
    fn undecodable(&mut self, len: usize) -> Result<()>;
    /// Called before each batch of ring buffer events: what must be known before them (the
    /// mappings their stacks need) is read here.
    fn before_batch(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called about once a second, e.g. to redraw a status line.
    fn tick(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Feeds every event to `sink` until `shutdown` completes, then drains what is left, so no
/// event that reached the ring buffer before the shutdown is lost. A sink error ends it.
pub async fn collect(ring: RingBuf<MapData>, sink: &mut dyn EventSink, shutdown: impl Future<Output = ()>) -> Result<()> {
    // SAFETY: the AsyncFd owns the ring buffer, so its fd stays open while registered.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }.map_err(|e| anyhow::anyhow!("failed to register the ring buffer with tokio: {e}"))?;
    tokio::pin!(shutdown);
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard?;
                drain(guard.get_inner_mut(), sink)?;
                guard.clear_ready();
            }
            _ = ticks.tick() => {
                // The eBPF side wakes us for batches (at most every 100 ms, or when 256 KiB
                // wait): whatever came after the last wakeup is read here, within a second.
                drain(ring.get_mut(), sink)?;
                sink.tick()?;
            }
            () = &mut shutdown => break,
        }
    }
    drain(ring.get_mut(), sink)
}

fn drain(ring: &mut RingBuf<MapData>, sink: &mut dyn EventSink) -> Result<()> {
    sink.before_batch()?;
    while let Some(item) = ring.next() {
        match Event::decode(&item) {
            Some(Event::Region(event)) => sink.region(&event)?,
            Some(Event::SchemeRegion(event)) => sink.scheme_region(&event)?,
            Some(Event::Stack(event, stack)) => sink.stack(&event, stack)?,
            None => sink.undecodable(item.len())?,
        }
    }
    Ok(())
}
