#![no_main]
//! damo-trace's native reader and its summaries reader: any bytes give a record (or
//! summaries, or none) or an error, never a panic, a hang or a huge allocation.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Well under libFuzzer's -rss_limit_mb (run.sh): an input that gets past the budget and
    // still grows the process is a finding.
    damo_record::budget::set_limit(FUZZ_MEMORY_LIMIT);
    let _ = damo_record::native::read(data);
    // The summaries at a record's end, read without the rest.
    let _ = damo_record::native::summaries_of(data);
});

const FUZZ_MEMORY_LIMIT: u64 = 256 << 20;
