#![no_main]
//! damo-trace's native reader: any bytes give a record or an error, never a panic, a hang or
//! a huge allocation.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = damo_record::native::read(data);
});
