//! DAMON records: what a recording holds ([`model`]), the files it lives in ([`native`]:
//! damo-trace's own format; [`damo`]: damo's), opening any of them ([`load`]), writing files safely ([`output_file`]), and damo's
//! number and unit texts ([`units`]).

pub mod budget;
pub mod cache;
pub mod clock;
pub mod damo;
pub mod first_read;
pub mod input;
pub mod load;
pub mod mapped;
pub mod model;
pub mod native;
pub mod output_file;
pub mod summary;
pub mod synth;
pub mod text;
pub mod units;
