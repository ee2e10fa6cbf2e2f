//! `damon:damon_aggregated`: one event per region at the end of each aggregation interval.
//!
//! Format on 6.18 (offsets are read from tracefs at load time, see `RegionLayout`):
//!   field:unsigned long target_id;  offset:8;  size:8;
//!   field:unsigned int nr_regions;  offset:16; size:4;
//!   field:unsigned long start;      offset:24; size:8;
//!   field:unsigned long end;        offset:32; size:8;
//!   field:unsigned int nr_accesses; offset:40; size:4;
//!   field:unsigned int age;         offset:44; size:4;

use aya_ebpf::{helpers::bpf_ktime_get_ns, macros::tracepoint, programs::TracePointContext, EbpfContext};
use damo_common::{lost, EventKind, RegionEvent, RegionLayout};

use crate::{count_lost, wakeup_flags, EVENTS, KDAMOND_PIDS};

/// Set by the loader from the tracefs `format` file.
#[no_mangle]
static REGION_LAYOUT: RegionLayout = RegionLayout { target_id: 8, nr_regions: 16, start: 24, end: 32, nr_accesses: 40, age: 44 };

#[tracepoint]
pub fn damon_aggregated(ctx: TracePointContext) -> u32 {
    match try_damon_aggregated(&ctx) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn try_damon_aggregated(ctx: &TracePointContext) -> Result<(), i64> {
    let pid = ctx.pid();
    // SAFETY: a map lookup by value.
    if unsafe { KDAMOND_PIDS.get(&pid) }.is_none() {
        return Ok(());
    }
    // SAFETY: the loader wrote the layout before load; volatile so it is not const-folded.
    let layout: RegionLayout = unsafe { core::ptr::read_volatile(&REGION_LAYOUT) };
    // SAFETY: offsets come from the tracepoint's own format file; reads are bounds-checked.
    let event = unsafe {
        RegionEvent {
            kind: EventKind::Region as u32,
            kdamond_pid: pid,
            ts_ns: bpf_ktime_get_ns(),
            target_id: ctx.read_at::<u64>(layout.target_id as usize)?,
            start: ctx.read_at::<u64>(layout.start as usize)?,
            end: ctx.read_at::<u64>(layout.end as usize)?,
            nr_regions: ctx.read_at::<u32>(layout.nr_regions as usize)?,
            nr_accesses: ctx.read_at::<u32>(layout.nr_accesses as usize)?,
            age: if layout.age == u32::MAX { 0 } else { ctx.read_at::<u32>(layout.age as usize)? },
            _pad: 0,
        }
    };
    if EVENTS.output::<RegionEvent>(&event, wakeup_flags()).is_err() {
        count_lost(lost::REGION_RINGBUF_FULL);
    }
    Ok(())
}
