//! Symbolized stacks: names for recorded frames ([`symbols`]), samples selected by time and
//! named outermost first ([`stacks`]), the profile table ([`table`]), FlameGraph-style
//! folded stacks and SVGs ([`folded`]), and exports for other tools ([`export`]): pprof
//! ([`pprof`]) and speedscope ([`speedscope`]).

pub mod attribution;
pub mod export;
pub mod folded;
pub mod json;
pub mod phases;
pub mod pprof;
pub mod speedscope;
pub mod stacks;
pub mod summary;
pub mod symbols;
pub mod table;
pub mod timeline;
