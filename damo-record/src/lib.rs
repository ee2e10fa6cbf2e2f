//! DAMON records: what a recording holds ([`model`]), and the files it lives in.

pub mod model;
