//! Shape inference: the NCHW shape of every value, and a diagnostic for every op whose
//! operands do not fit.
//!
//! Each op's rule lives in [`rules`]; the window formulas in [`formula`] are shared with the
//! interpreter's kernels. Inference walks the graph once in node order (a topological order),
//! so it is linear in the network's size. A node whose operand already failed gets no shape
//! and reports nothing: one mistake, one diagnostic.

mod cause;
pub mod cost;
pub mod formula;
mod lint;
mod report;
pub mod rules;
pub mod sizes;

pub use lint::lint;

use crate::diag::Diagnostic;
use crate::ir::{DimSpec, Graph, NodeId, Probe, ShapeOracle, Size};
use crate::span::Source;
use serde::{Serialize, Serializer};
use std::fmt;

/// One dimension: a known size, a named symbol (the batch `N`), or unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    Known(u64),
    Sym(std::sync::Arc<str>),
    /// Not computable statically (e.g. a conv over a symbolic height); matches anything.
    Unknown,
}

impl Dim {
    pub fn known(&self) -> Option<u64> {
        match self {
            Dim::Known(v) => Some(*v),
            _ => None,
        }
    }

    /// Whether two dims are certainly compatible for an exact-shape op.
    pub fn fits(&self, other: &Dim) -> bool {
        match (self, other) {
            (Dim::Unknown, _) | (_, Dim::Unknown) => true,
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(v) => write!(f, "{v}"),
            Dim::Sym(s) => f.write_str(s),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

impl Serialize for Dim {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Dim::Known(v) => s.serialize_u64(*v),
            Dim::Sym(n) => s.serialize_str(n),
            Dim::Unknown => s.serialize_str("?"),
        }
    }
}

/// A tensor shape: `[N, C, H, W]`, or `[N, F]` after flatten.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    pub fn dim(&self, axis: usize) -> &Dim {
        self.0.get(axis).unwrap_or(&Dim::Unknown)
    }

    /// Whether every dim fits the other's.
    pub fn fits(&self, other: &Shape) -> bool {
        self.rank() == other.rank() && self.0.iter().zip(&other.0).all(|(a, b)| a.fits(b))
    }

    /// The sizes, with every symbol bound to `batch` (for counting MACs per sample).
    pub fn concrete(&self, batch: u64) -> Option<Vec<u64>> {
        self.0
            .iter()
            .map(|d| match d {
                Dim::Known(v) => Some(*v),
                Dim::Sym(_) => Some(batch),
                Dim::Unknown => None,
            })
            .collect()
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// The inferred shape of every node (`None` where inference failed).
#[derive(Clone, Debug)]
pub struct Shapes {
    of: Vec<Option<Shape>>,
}

impl Shapes {
    pub fn get(&self, id: NodeId) -> Option<&Shape> {
        self.of.get(id.index()).and_then(Option::as_ref)
    }
}

/// Infer the shape of every node and report every op whose operands do not fit.
pub fn infer(g: &Graph, source: &Source) -> (Shapes, Vec<Diagnostic>) {
    let operands: Vec<Vec<NodeId>> = g.node_ids().map(|id| g.operands(id)).collect();
    let inputs: Vec<(NodeId, Shape)> = g
        .inputs
        .iter()
        .map(|i| (i.node, declared(&i.dims)))
        .collect();
    let mut diags = Vec::new();
    let of = propagate(g, &operands, &inputs, |id, of, ins, m| {
        let causes = cause::causes(g, of, id, ins, &m);
        let diag = report::mismatch(g, of, source, id, ins, m);
        diags.push(cause::Found {
            diag,
            node: id,
            causes,
        });
        true
    });
    let diags = cause::merge(g, source, diags);
    (Shapes { of }, diags)
}

/// The shape an input declaration states.
fn declared(dims: &[DimSpec]) -> Shape {
    Shape(
        dims.iter()
            .map(|d| match d {
                DimSpec::Known(v) => Dim::Known(*v),
                DimSpec::Sym(s) => Dim::Sym(s.as_str().into()),
            })
            .collect(),
    )
}

/// One pass of inference in node order, the one both [`infer`] and [`sizes`] run: `inputs`
/// gives the input nodes' shapes, `operands` each node's operands in order. `fail` hears of
/// each op whose rule failed (with the shapes so far) and says whether to go on; a node whose
/// operand failed gets no shape.
fn propagate(
    g: &Graph,
    operands: &[Vec<NodeId>],
    inputs: &[(NodeId, Shape)],
    mut fail: impl FnMut(NodeId, &[Option<Shape>], &[&Shape], rules::Mismatch) -> bool,
) -> Vec<Option<Shape>> {
    let mut of: Vec<Option<Shape>> = Vec::with_capacity(g.dag.node_count());
    let input = |id: NodeId| inputs.iter().find(|i| i.0 == id).map(|i| i.1.clone());
    for id in g.node_ids() {
        let shape = match step(g, &of, id, &operands[id.index()], input) {
            Ok(shape) => shape,
            Err((ins, m)) => {
                let recovered = rules::recover(&g.node(id).op, &ins, &m);
                if !fail(id, &of, &ins, m) {
                    break;
                }
                recovered
            }
        };
        of.push(shape);
    }
    of
}

/// The shape of node `id` from the shapes of the nodes before it (`of`), its operands and the
/// input shapes: `None` when an operand has none (it failed: one mistake, one diagnostic), or
/// the operands' shapes and what does not fit.
fn step<'s>(
    g: &Graph,
    of: &'s [Option<Shape>],
    id: NodeId,
    operands: &[NodeId],
    input: impl Fn(NodeId) -> Option<Shape>,
) -> Result<Option<Shape>, (Vec<&'s Shape>, rules::Mismatch)> {
    let node = g.node(id);
    if matches!(node.op, crate::ir::Op::Input) {
        return Ok(input(id));
    }
    let ins: Option<Vec<&Shape>> = operands
        .iter()
        .map(|o| of.get(o.index()).and_then(Option::as_ref))
        .collect();
    match ins {
        None => Ok(None),
        Some(ins) => match rules::output_shape(&node.op, &ins) {
            Ok(s) => Ok(Some(s)),
            Err(m) => Err((ins, m)),
        },
    }
}

/// Shapes of a graph while lowering builds it: the [`ShapeOracle`] behind `channels(x)`,
/// `height(x)` and `width(x)`. Each node's shape is computed once, by the rules [`infer`]
/// applies (a local mistake recovers as there), the first time a later node is asked about,
/// so all the probes of one lowering cost one pass over the graph.
#[derive(Default)]
pub struct Partial {
    of: Vec<Option<Shape>>,
}

impl ShapeOracle for Partial {
    fn shape(&mut self, g: &Graph, id: NodeId) -> Probe {
        while self.of.len() <= id.index() {
            let next = NodeId::new(self.of.len());
            let input = |id: NodeId| {
                g.inputs
                    .iter()
                    .find(|i| i.node == id)
                    .map(|i| declared(&i.dims))
            };
            let shape = match step(g, &self.of, next, &g.operands(next), input) {
                Ok(shape) => shape,
                Err((ins, m)) => rules::recover(&g.node(next).op, &ins, &m),
            };
            self.of.push(shape);
        }
        match &self.of[id.index()] {
            None => Probe::Failed,
            Some(s) => Probe::Shape(
                s.0.iter()
                    .map(|d| match d {
                        Dim::Known(v) => Size::Known(*v),
                        Dim::Sym(n) => Size::Symbol(n.to_string()),
                        Dim::Unknown => Size::Unknown,
                    })
                    .collect(),
            ),
        }
    }
}
