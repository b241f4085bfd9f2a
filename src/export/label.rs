//! The text drawn for an op (`conv 3x3/2, 64→128`) and the diagnostics that belong to each
//! node. Plain strings: escaping for DOT happens in [`super::dot`].

use crate::diag::Diagnostic;
use crate::ir::{Graph, NodeId, Op};
use crate::shape::{Dim, Shapes, rules};
use crate::span::Span;
use std::collections::BTreeMap;
use std::fmt::Write;

/// An op with its key parameters, as its registry entry draws it: `conv 3x3/2, 64→128`,
/// `maxpool 3x3/2`, `linear 512→1000`. Input channels come from the operand's inferred shape,
/// else from the source, else `?`.
pub(super) fn op_text(g: &Graph, shapes: Option<&Shapes>, id: NodeId) -> String {
    let node = g.node(id);
    let c_in = g
        .first_operand(id)
        .and_then(|x| shapes?.get(x))
        .and_then(|s| s.dim(1).known());
    match &node.op {
        Op::Input => format!("input {}", node.path),
        op => op.spec().label(c_in),
    }
}

/// The diagnostics of each node, by node index: those whose primary span is the node's span.
///
/// A block instantiated several times gives all its instances the same spans, so for a shape
/// diagnostic the node's rule is run again on its operands' shapes: only the instances where
/// it fails are marked.
pub(super) fn node_diagnostics<'d>(
    g: &Graph,
    shapes: Option<&Shapes>,
    diags: &'d [Diagnostic],
) -> BTreeMap<usize, Vec<&'d Diagnostic>> {
    let mut by_span: BTreeMap<Span, Vec<&Diagnostic>> = BTreeMap::new();
    for d in diags {
        if let Some(p) = &d.primary {
            by_span.entry(p.span).or_default().push(d);
        }
    }
    let mut out = BTreeMap::new();
    if by_span.is_empty() {
        return out;
    }
    for id in g.node_ids() {
        let Some(found) = by_span.get(&g.node(id).span) else {
            continue;
        };
        let here: Vec<&Diagnostic> = found
            .iter()
            .copied()
            .filter(|d| !is_shape_code(d) || fails_here(g, shapes, id))
            .collect();
        if !here.is_empty() {
            out.insert(id.index(), here);
        }
    }
    out
}

fn is_shape_code(d: &Diagnostic) -> bool {
    d.code.as_str().starts_with("E02")
}

/// Whether this node's shape rule fails on its operands' shapes (true when that is unknown).
fn fails_here(g: &Graph, shapes: Option<&Shapes>, id: NodeId) -> bool {
    let Some(shapes) = shapes else { return true };
    let op = &g.node(id).op;
    let operands = g.operands(id);
    if operands.is_empty() || *op == Op::Input {
        return true;
    }
    // Shape inference reports nothing for a node whose operand has no shape.
    let Some(ins) = operands
        .iter()
        .map(|&x| shapes.get(x))
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    rules::output_shape(op, &ins).is_err()
}

/// The lines a diagnostic adds to its node's label.
pub(super) fn diagnostic_text(d: &Diagnostic) -> String {
    let severity = if d.is_error() { "error" } else { "warning" };
    let mut s = format!("{severity}[{}]: {}", d.code.as_str(), d.message);
    if let Some(p) = d.primary.as_ref().filter(|p| !p.message.is_empty()) {
        let _ = write!(s, "\n{}", p.message);
    }
    s
}

/// A shape for an edge label, or nothing when it is unknown.
pub(super) fn shape_text(shapes: Option<&Shapes>, id: NodeId) -> Option<String> {
    let shape = shapes?.get(id)?;
    if shape.0.iter().all(|d| *d == Dim::Unknown) {
        return None;
    }
    Some(shape.to_string())
}
