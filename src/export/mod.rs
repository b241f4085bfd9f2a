//! Export of a lowered network: Graphviz DOT ([`to_dot`]). Exporters turn a graph, its shapes
//! and its diagnostics into text; they do no IO (running Graphviz is the CLI's job).

pub mod dot;
mod label;
pub mod shortcut;
mod view;

pub use dot::{DotOptions, to_dot};
