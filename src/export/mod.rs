//! Export of a lowered network: Graphviz DOT ([`to_dot`]), PyTorch code
//! ([`pytorch::to_pytorch`]). Exporters turn a graph, its shapes
//! and its diagnostics into text; they do no IO (running Graphviz is the CLI's job).

pub mod dot;
mod label;
pub mod pytorch;
mod pytorch_ops;
mod pytorch_py;
mod shortcut;
mod view;

pub use dot::{DotOptions, to_dot};
