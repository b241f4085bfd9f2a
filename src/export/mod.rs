//! Export of a lowered network: Graphviz DOT ([`to_dot`]), ONNX ([`onnx`]) and PyTorch code
//! ([`pytorch::to_pytorch`]). Exporters turn a graph, its shapes (and, for ONNX, its weights)
//! into text or messages; they do no IO (running Graphviz and writing files is the CLI's job).

pub mod dot;
mod label;
pub mod onnx;
mod onnx_ops;
pub mod onnx_triton;
pub mod pytorch;
mod pytorch_ops;
mod pytorch_py;
pub mod shortcut;
pub(crate) mod view;

pub use dot::{DotOptions, to_dot};
