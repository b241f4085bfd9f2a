//! ONNX export: a checked network, its shapes and its weights become an ONNX `ModelProto`
//! (opset [`OPSET`], IR version [`IR_VERSION`]) that ONNX Runtime, TensorRT or a Triton server
//! can load.
//!
//! The model mirrors the `.res` file: graph inputs and outputs carry the network's names, a
//! symbolic batch stays a `dim_param` with the `.res` symbol's name, nodes are named by layer
//! path (`layer1.0.conv1`) and initializers by parameter key (`layer1.0.conv1.weight`), and every
//! intermediate value's shape in `value_info` is resnetc's own inference. Each op's mapping is in
//! `super::onnx_ops`. The message types are generated at build time from ONNX's own
//! `onnx.proto` (vendored in `proto/`); this module builds values of them and does no IO.

use super::onnx_ops::Emitter;
use crate::interp::weights::{self, Weights};
use crate::ir::{DimSpec, Graph};
use crate::shape::{Dim, Shape, Shapes};
use prost::Message;
use std::fmt;

/// The ONNX message types, generated from `proto/onnx.proto` by `build.rs`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

use proto::tensor_shape_proto::{Dimension, dimension};
use proto::{ModelProto, TensorShapeProto, TypeProto, ValueInfoProto, type_proto};

/// The ONNX operator set the export targets: 17 (ONNX 1.12) is read by every current runtime,
/// TensorRT 8.6 and Triton's ONNX Runtime backend included.
pub const OPSET: i64 = 17;
/// The IR version that goes with [`OPSET`].
pub const IR_VERSION: i64 = 8;
/// A protobuf message cannot exceed 2 GiB; larger models need ONNX's external-data files.
pub const MAX_MODEL_BYTES: u64 = (1 << 31) - 1;

/// How to export.
#[derive(Copy, Clone, Debug, Default)]
pub struct Options {
    /// Fold each batchnorm into the conv before it (as `run` does), leaving one Conv node.
    pub fold_batchnorm: bool,
}

/// Why a network cannot be exported to ONNX.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnnxError {
    /// An op with no ONNX equivalent, at the layer `path`.
    Unsupported { op: &'static str, path: String },
    /// The weights alone exceed what one protobuf file can hold.
    TooLarge { bytes: u64 },
}

impl fmt::Display for OnnxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnnxError::Unsupported { op, path } => write!(
                f,
                "op `{op}` (at `{path}`) has no equivalent in ONNX opset {OPSET}; nothing was written"
            ),
            OnnxError::TooLarge { bytes } => write!(
                f,
                "the weights take {:.1} GiB, more than the 2 GiB a single ONNX file can hold",
                *bytes as f64 / (1u64 << 30) as f64
            ),
        }
    }
}

impl std::error::Error for OnnxError {}

/// Refuse, before any weight is loaded or drawn, a network whose weights cannot fit one file.
pub fn check_size(g: &Graph, shapes: &Shapes) -> Result<(), OnnxError> {
    let bytes = weights::expected(g, shapes)
        .iter()
        .map(|e| {
            e.shape
                .iter()
                .fold(4u64, |a, &d| a.saturating_mul(d as u64))
        })
        .fold(0u64, u64::saturating_add);
    if bytes > MAX_MODEL_BYTES {
        return Err(OnnxError::TooLarge { bytes });
    }
    Ok(())
}

/// Build the model of a checked network. `weights` must have been validated against it
/// (`interp::weights::from_safetensors` or `seeded`).
pub fn to_model(
    g: &Graph,
    shapes: &Shapes,
    weights: &Weights,
    opts: Options,
) -> Result<ModelProto, OnnxError> {
    check_size(g, shapes)?;
    let mut e = Emitter::new(g, shapes, weights, opts);
    for id in g.node_ids() {
        e.emit(id)?;
    }
    let produced: Vec<String> = g
        .outputs
        .iter()
        .map(|o| e.name(o.node).to_string())
        .collect();
    let (mut nodes, initializer, value_info) = e.finish();
    let mut output = Vec::new();
    for (o, produced) in g.outputs.iter().zip(produced) {
        if produced != o.name {
            // An output that is an input, or a second name for one value.
            nodes.push(proto::NodeProto {
                name: Some(o.name.clone()),
                op_type: Some("Identity".into()),
                input: vec![produced],
                output: vec![o.name.clone()],
                ..Default::default()
            });
        }
        output.push(value_info_of(&o.name, shapes.get(o.node)));
    }
    let input = g
        .inputs
        .iter()
        .map(|i| {
            let dims = i.dims.iter().map(|d| match d {
                DimSpec::Known(v) => Dim::Known(*v),
                DimSpec::Sym(s) => Dim::Sym(s.as_str().into()),
            });
            value_info_of(&i.name, Some(&Shape(dims.collect())))
        })
        .collect();
    let graph = proto::GraphProto {
        name: Some(g.name.clone()),
        node: nodes,
        initializer,
        input,
        output,
        value_info,
        doc_string: Some(format!("network `{}`, exported by resnetc", g.name)),
        ..Default::default()
    };
    Ok(ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![proto::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("resnetc".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        ..Default::default()
    })
}

/// The model's bytes (protobuf wire format), as a `.onnx` file holds them.
pub fn encode(model: &ModelProto) -> Result<Vec<u8>, OnnxError> {
    let bytes = model.encoded_len() as u64;
    if bytes > MAX_MODEL_BYTES {
        return Err(OnnxError::TooLarge { bytes });
    }
    Ok(model.encode_to_vec())
}

/// Export in one call: build the model and encode it.
pub fn to_bytes(
    g: &Graph,
    shapes: &Shapes,
    weights: &Weights,
    opts: Options,
) -> Result<Vec<u8>, OnnxError> {
    encode(&to_model(g, shapes, weights, opts)?)
}

/// A float tensor's name, element type and shape; a symbol stays a `dim_param`, an unknown
/// size stays unset.
pub(super) fn value_info_of(name: &str, shape: Option<&Shape>) -> ValueInfoProto {
    value_info_typed(name, shape, proto::tensor_proto::DataType::Float)
}

/// The `value_info` of a value of another element type (the int64 sizes a Resize takes).
pub(super) fn value_info_typed(
    name: &str,
    shape: Option<&Shape>,
    ty: proto::tensor_proto::DataType,
) -> ValueInfoProto {
    let dim = shape.map_or_else(Vec::new, |s| {
        s.0.iter()
            .map(|d| Dimension {
                value: match d {
                    Dim::Known(v) => Some(dimension::Value::DimValue(*v as i64)),
                    Dim::Sym(s) => Some(dimension::Value::DimParam(s.to_string())),
                    Dim::Unknown => None,
                },
                ..Default::default()
            })
            .collect()
    });
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(ty as i32),
                shape: shape.map(|_| TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}
