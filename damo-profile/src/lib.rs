//! Symbolized stacks: names for recorded frames ([`symbols`]) and the FlameGraph-style folded
//! stacks and SVGs built from them ([`folded`]).

pub mod folded;
pub mod symbols;
