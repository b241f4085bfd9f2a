//! Shape introspection in expressions: `channels(x)`, `height(x)` and `width(x)` read one size
//! of a tensor built so far, so that a block can decide its layers from its input
//! (`down = stride != 1 or channels(x) != planes * 4`).
//!
//! Lowering runs before shape inference and knows nothing of it: the caller hands it a
//! [`ShapeOracle`], which answers with the registry's shape rules on the nodes built so far. A
//! size must be a number when the network is checked (E0118 for a symbol or an unknown size).
//! A value whose shape does not check is poison and reports nothing here: shape inference
//! reports that error at the op that made it.

use super::{Lowerer, Value};
use crate::diag::{Code, Diagnostic};
use crate::ir::{Graph, NodeId};
use crate::span::Span;

/// What lowering may ask about the shapes of the graph it is building.
pub trait ShapeOracle {
    /// The shape of node `id` of `g`, whose nodes up to `id` are final.
    fn shape(&mut self, g: &Graph, id: NodeId) -> Probe;
}

/// One size of a shape, as the oracle knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Size {
    Known(u64),
    /// A symbol of an input declaration (the batch `N`, a height `H`).
    Symbol(String),
    /// Not computable statically (computed from a symbol).
    Unknown,
}

/// What the oracle knows of a value's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    Shape(Vec<Size>),
    /// The value (or one it is computed from) fails its shape rule; shape inference reports it.
    Failed,
}

/// An oracle that knows no shape: every probe fails. For lowering without shape rules.
pub struct NoShapes;

impl ShapeOracle for NoShapes {
    fn shape(&mut self, _: &Graph, _: NodeId) -> Probe {
        Probe::Failed
    }
}

/// The introspection functions: name, axis of an NCHW tensor, what the axis is called.
const FUNCTIONS: [(&str, usize, &str); 3] = [
    ("channels", 1, "channel count"),
    ("height", 2, "height"),
    ("width", 3, "width"),
];

/// Whether `name` is an introspection function (such names cannot be blocks).
pub(crate) fn is_introspection(name: &str) -> bool {
    FUNCTIONS.iter().any(|(n, _, _)| *n == name)
}

impl Lowerer<'_> {
    /// `name(x)` for an introspection function `name`: the size as an integer. `tensors` are
    /// the call's tensors (the piped one first), `others` every other argument.
    pub(super) fn introspect(
        &mut self,
        name: &str,
        call: Span,
        tensors: &[(Value, Span)],
        others: &[Span],
    ) -> Value {
        let Some(&(_, axis, what)) = FUNCTIONS.iter().find(|(n, _, _)| *n == name) else {
            return Value::Poison;
        };
        if let Some(&extra) = others.first() {
            self.error(
                Diagnostic::error(
                    Code::WrongType,
                    format!("`{name}` takes one tensor and nothing else"),
                )
                .with_primary(extra, "not a tensor")
                .with_help(format!("write `{name}(x)` for a tensor `x`")),
            );
            return Value::Poison;
        }
        let [(value, span)] = tensors else {
            self.error(
                Diagnostic::error(
                    Code::WrongInputCount,
                    format!("`{name}` takes one tensor, not {}", tensors.len()),
                )
                .with_primary(call, format!("{} tensors", tensors.len()))
                .with_help(format!("write `{name}(x)` for a tensor `x`")),
            );
            return Value::Poison;
        };
        let id = match value {
            Value::Tensor(id) => *id,
            Value::Poison => return Value::Poison,
            _ => return Value::Poison,
        };
        let dims = match self.oracle.shape(&self.graph, id) {
            Probe::Shape(dims) => dims,
            Probe::Failed => {
                // Shape inference reports the op that failed; nothing more here.
                self.deferred = true;
                return Value::Poison;
            }
        };
        let shown = show(&dims);
        let Some(size) = dims.get(axis).filter(|_| axis == 1 || dims.len() == 4) else {
            self.error(
                Diagnostic::error(
                    Code::Rank,
                    format!("`{name}` needs an NCHW tensor"),
                )
                .with_primary(*span, format!("this has shape {shown}"))
                .with_note("`height` and `width` read axes 2 and 3 of [N, C, H, W]; `channels` reads axis 1 (the features of [N, F])"),
            );
            return Value::Poison;
        };
        let symbol = match size {
            Size::Known(v) => {
                return match i64::try_from(*v) {
                    Ok(v) => Value::Int(v),
                    Err(_) => {
                        self.error(
                            Diagnostic::error(
                                Code::Arithmetic,
                                format!("the {what} is larger than 2^63 - 1"),
                            )
                            .with_primary(call, format!("{v}")),
                        );
                        Value::Poison
                    }
                };
            }
            Size::Symbol(s) => format!("the symbol `{s}`"),
            Size::Unknown => "computed from a symbolic size".to_string(),
        };
        let axis_name = ["N", "C", "H", "W"][axis];
        self.error(
            Diagnostic::error(
                Code::SizeNotKnown,
                format!("the {what} of a value is not known when the network is checked"),
            )
            .with_primary(call, format!("{axis_name} of {shown} is {symbol}"))
            .with_note("lowering decides the layers from sizes read in expressions, so they must be numbers")
            .with_help(format!(
                "declare the network input with a number for {axis_name}, e.g. `input x: [N, 3, 224, 224]`"
            )),
        );
        Value::Poison
    }
}

fn show(dims: &[Size]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Size::Known(v) => v.to_string(),
            Size::Symbol(s) => s.clone(),
            Size::Unknown => "?".to_string(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}
