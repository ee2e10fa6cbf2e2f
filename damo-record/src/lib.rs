//! DAMON records: what a recording holds ([`model`]), and the files it lives in ([`native`]:
//! damo-trace's own format).

pub mod model;
pub mod native;
