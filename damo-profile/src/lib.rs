//! Symbolized stacks: names for recorded frames ([`symbols`]), samples selected by time and
//! named outermost first ([`stacks`]), the profile table ([`table`]) and FlameGraph-style
//! folded stacks and SVGs ([`folded`]).

pub mod folded;
pub mod stacks;
pub mod symbols;
pub mod table;
