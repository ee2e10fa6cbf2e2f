#![no_main]
//! Format sniffing and every reader behind it (native, JSON, zlib-compressed JSON, perf script).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Well under libFuzzer's -rss_limit_mb (run.sh): an input that gets past the budget and
    // still grows the process is a finding.
    damo_record::budget::set_limit(FUZZ_MEMORY_LIMIT);
    let _ = damo_record::load::parse(data);
});

const FUZZ_MEMORY_LIMIT: u64 = 256 << 20;
