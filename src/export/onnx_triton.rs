//! The Triton Inference Server side of an ONNX export: the `config.pbtxt` that sits beside
//! `1/model.onnx` in a model repository (`MODEL/config.pbtxt`, `MODEL/1/model.onnx`), naming
//! the inputs and outputs with their dtype and dims. Text only; the CLI writes the files.
//!
//! Triton batches a model only when every input and output has the batch as its first
//! dimension: then `max_batch_size` is positive and `dims` leave the batch out. A network whose
//! first dimensions are fixed sizes (or different symbols) gets `max_batch_size: 0` and its full
//! shapes, any other symbolic size as `-1`.

use crate::ir::{DimSpec, Graph};
use crate::shape::{Dim, Shapes};
use std::fmt::Write;

/// The directory of the model's version inside the model's folder, and the file Triton's
/// ONNX Runtime backend loads by default.
pub const MODEL_FILE: &str = "1/model.onnx";

/// The `config.pbtxt` of network `g` served from an ONNX file, batching up to
/// `max_batch_size` requests when the network's batch is symbolic.
pub fn config_pbtxt(g: &Graph, shapes: &Shapes, max_batch_size: u64) -> String {
    let inputs: Vec<(&str, Vec<Dim>)> = g
        .inputs
        .iter()
        .map(|i| {
            let dims = i.dims.iter().map(|d| match d {
                DimSpec::Known(v) => Dim::Known(*v),
                DimSpec::Sym(s) => Dim::Sym(s.as_str().into()),
            });
            (i.name.as_str(), dims.collect())
        })
        .collect();
    let outputs: Vec<(&str, Vec<Dim>)> = g
        .outputs
        .iter()
        .map(|o| {
            let dims = shapes.get(o.node).map_or_else(Vec::new, |s| s.0.clone());
            (o.name.as_str(), dims)
        })
        .collect();
    let batched = batch_symbol(&inputs, &outputs).is_some() && max_batch_size > 0;
    let mut text = String::new();
    let _ = writeln!(text, "name: {}", quoted(&g.name));
    let _ = writeln!(text, "platform: \"onnxruntime_onnx\"");
    let _ = writeln!(
        text,
        "max_batch_size: {}",
        if batched { max_batch_size } else { 0 }
    );
    for (section, values) in [("input", &inputs), ("output", &outputs)] {
        let _ = writeln!(text, "{section} [");
        for (i, (name, dims)) in values.iter().enumerate() {
            let shown: Vec<String> = dims
                .iter()
                .skip(usize::from(batched))
                .map(|d| d.known().map_or("-1".to_string(), |v| v.to_string()))
                .collect();
            let _ = writeln!(text, "  {{");
            let _ = writeln!(text, "    name: {}", quoted(name));
            let _ = writeln!(text, "    data_type: TYPE_FP32");
            let _ = writeln!(text, "    dims: [ {} ]", shown.join(", "));
            let comma = if i + 1 < values.len() { "," } else { "" };
            let _ = writeln!(text, "  }}{comma}");
        }
        let _ = writeln!(text, "]");
    }
    text
}

/// The symbol that is the first dimension of every input and output, if there is one.
fn batch_symbol<'a>(
    inputs: &'a [(&str, Vec<Dim>)],
    outputs: &[(&str, Vec<Dim>)],
) -> Option<&'a Dim> {
    let first = inputs.first()?.1.first()?;
    let is_batch = |dims: &Vec<Dim>| matches!(dims.first(), Some(d @ Dim::Sym(_)) if d == first);
    (inputs.iter().chain(outputs).all(|(_, d)| is_batch(d))).then_some(first)
}

/// A protobuf text-format string literal.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
