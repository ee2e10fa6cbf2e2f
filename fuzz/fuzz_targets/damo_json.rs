#![no_main]
//! damo's JSON record reader.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = damo_record::damo::json::read(data);
});
