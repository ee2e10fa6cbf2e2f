#![no_main]
//! damo-trace's native reader: any bytes give a record or an error, never a panic, a hang or
//! a huge allocation.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Well under libFuzzer's -rss_limit_mb (run.sh): an input that gets past the budget and
    // still grows the process is a finding.
    damo_record::budget::set_limit(FUZZ_MEMORY_LIMIT);
    let _ = damo_record::native::read(data);
});

const FUZZ_MEMORY_LIMIT: u64 = 256 << 20;
