//! Export of a lowered network: Graphviz DOT.

pub mod dot;
