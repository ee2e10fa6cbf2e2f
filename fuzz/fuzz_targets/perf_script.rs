#![no_main]
//! damo's perf_script (`perf script` text of damon:damon_aggregated) reader.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = damo_record::damo::perf_script::read(data);
});
