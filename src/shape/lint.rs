//! Lints: warnings for networks that check but are probably not what was meant. They run on a
//! network without shape errors (a failing network has better things to report).
//!
//! - W0103: `flatten` of a spatial map (H*W > 1) straight into `linear`: the linear layer ties
//!   the network to one input size and usually wanted `global_avgpool` first.
//! - W0104: two inputs whose H and W are each other's: one of them was declared swapped.
//! - W0105: one linear layer holding most of the network's parameters.

use super::{Shapes, cost};
use crate::diag::{Code, Diagnostic};
use crate::ir::{Graph, Op};
use crate::summary::group;

/// A linear layer is reported when it holds more than this share of the parameters...
const MOST: f64 = 0.5;
/// ...of a network with at least this many parameters (small test networks are often so).
const MIN_PARAMS: u64 = 1_000_000;

pub fn lint(g: &Graph, shapes: &Shapes) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut linears = Vec::new();
    for id in g.node_ids() {
        let node = g.node(id);
        let Some(input) = g.first_operand(id).and_then(|o| shapes.get(o)) else {
            continue;
        };
        let params = cost::params(&node.op, input).unwrap_or(0);
        total = total.saturating_add(params);
        if let Op::Linear(_) = node.op {
            linears.push((id, params));
            let Some(flat) = g.first_operand(id) else {
                continue;
            };
            let Some(map) = g.first_operand(flat).and_then(|o| shapes.get(o)) else {
                continue;
            };
            let (Some(h), Some(w)) = (map.dim(2).known(), map.dim(3).known()) else {
                continue;
            };
            if g.node(flat).op != Op::Flatten || map.rank() != 4 || h * w <= 1 {
                continue;
            }
            out.push(
                Diagnostic::warning(
                    Code::FlattenSpatial,
                    format!("`flatten` of a {h}x{w} map straight into `linear`"),
                )
                .with_primary(g.node(flat).span, format!("flattens {map} into {input}"))
                .with_secondary(
                    node.span,
                    format!("so this layer has {} parameters", group(params)),
                )
                .with_note(format!(
                    "the layer sees every position separately: it fits only {h}x{w} maps and has {h}*{w} = {} times the weights of a pooled one",
                    h * w
                ))
                .with_help("pool first: `-> global_avgpool -> flatten -> linear(...)`"),
            );
        }
    }
    if total >= MIN_PARAMS {
        for (id, params) in linears {
            if params as f64 > MOST * total as f64 {
                out.push(
                    Diagnostic::warning(
                        Code::LinearDominates,
                        format!(
                            "one linear layer holds {:.0}% of the network's parameters",
                            100.0 * params as f64 / total as f64
                        ),
                    )
                    .with_primary(
                        g.node(id).span,
                        format!("{} of {} parameters", group(params), group(total)),
                    )
                    .with_note("in a residual network the convolutions should hold most of the weights; a huge classifier usually means a spatial map was flattened without pooling"),
                );
            }
        }
    }
    for (i, a) in g.inputs.iter().enumerate() {
        for b in &g.inputs[i + 1..] {
            let (Some(sa), Some(sb)) = (shapes.get(a.node), shapes.get(b.node)) else {
                continue;
            };
            if sa.rank() == 4
                && sb.rank() == 4
                && sa.dim(2) != sa.dim(3)
                && sa.dim(2) == sb.dim(3)
                && sa.dim(3) == sb.dim(2)
            {
                out.push(
                    Diagnostic::warning(
                        Code::SwappedInput,
                        format!("inputs `{}` and `{}` have H and W swapped", a.name, b.name),
                    )
                    .with_primary(b.span, format!("H x W = {} x {}", sb.dim(2), sb.dim(3)))
                    .with_secondary(a.span, format!("H x W = {} x {}", sa.dim(2), sa.dim(3)))
                    .with_note("NCHW puts the height before the width: one of the two declarations is probably [N, C, W, H]"),
                );
            }
        }
    }
    out
}
