#![no_main]
//! Format sniffing and every reader behind it (native, JSON, zlib-compressed JSON, perf script).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = damo_record::load::parse(data);
});
