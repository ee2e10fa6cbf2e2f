//! `damon:damos_before_apply`: one event per region a DAMOS scheme is about to act on, for
//! `record --schemes_target_regions` (damo's option of that name).
//!
//! Format on 6.12 and 6.18 (offsets are read from tracefs at load time, see
//! `SchemeRegionLayout`):
//!   field:unsigned int context_idx;  offset:8;  size:4;
//!   field:unsigned int scheme_idx;   offset:12; size:4;
//!   field:unsigned long target_idx;  offset:16; size:8;
//!   field:unsigned long start;       offset:24; size:8;
//!   field:unsigned long end;         offset:32; size:8;
//!   field:unsigned int nr_accesses;  offset:40; size:4;
//!   field:unsigned int age;          offset:44; size:4;
//!   field:unsigned int nr_regions;   offset:48; size:4;

use aya_ebpf::{helpers::bpf_ktime_get_ns, macros::tracepoint, programs::TracePointContext, EbpfContext};
use damo_common::{lost, EventKind, SchemeRegionEvent, SchemeRegionLayout};

use crate::{count_lost, wakeup_flags, EVENTS, KDAMOND_PIDS};

/// Set by the loader from the tracefs `format` file.
#[no_mangle]
static SCHEME_REGION_LAYOUT: SchemeRegionLayout = SchemeRegionLayout { context_idx: 8, scheme_idx: 12, target_idx: 16, start: 24, end: 32, nr_accesses: 40, age: 44, nr_regions: 48 };

#[tracepoint]
pub fn damos_before_apply(ctx: TracePointContext) -> u32 {
    match try_damos_before_apply(&ctx) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn try_damos_before_apply(ctx: &TracePointContext) -> Result<(), i64> {
    let pid = ctx.pid();
    // SAFETY: a map lookup by value.
    if unsafe { KDAMOND_PIDS.get(&pid) }.is_none() {
        return Ok(());
    }
    // SAFETY: the loader wrote the layout before load; volatile so it is not const-folded.
    let layout: SchemeRegionLayout = unsafe { core::ptr::read_volatile(&SCHEME_REGION_LAYOUT) };
    // SAFETY: offsets come from the tracepoint's own format file; reads are bounds-checked.
    let event = unsafe {
        SchemeRegionEvent {
            kind: EventKind::SchemeRegion as u32,
            kdamond_pid: pid,
            ts_ns: bpf_ktime_get_ns(),
            target_idx: ctx.read_at::<u64>(layout.target_idx as usize)?,
            start: ctx.read_at::<u64>(layout.start as usize)?,
            end: ctx.read_at::<u64>(layout.end as usize)?,
            context_idx: ctx.read_at::<u32>(layout.context_idx as usize)?,
            scheme_idx: ctx.read_at::<u32>(layout.scheme_idx as usize)?,
            nr_regions: ctx.read_at::<u32>(layout.nr_regions as usize)?,
            nr_accesses: ctx.read_at::<u32>(layout.nr_accesses as usize)?,
            age: ctx.read_at::<u32>(layout.age as usize)?,
            _pad: 0,
        }
    };
    if EVENTS.output::<SchemeRegionEvent>(&event, wakeup_flags()).is_err() {
        count_lost(lost::REGION_RINGBUF_FULL);
    }
    Ok(())
}
