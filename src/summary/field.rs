//! Receptive fields and effective strides: for every value of a checked network, how many
//! input rows and columns one of its positions sees, and how many input rows and columns
//! apart its neighbouring positions are (the *jump*).
//!
//! The standard recurrence, per axis, from each op's footprint in the registry
//! ([`crate::ops::Footprint`]): `r_out = r_in + (k - 1) * dilation * j_in`, `j_out = j_in *
//! stride`, from `r = j = 1` at each input. A pointwise op with several operands (add, concat,
//! mul) takes the largest field of those that have one; an operand made by a global pool (a
//! squeeze-excitation gate) has none and is left out, or every field after a gate would be the
//! whole input. After a global pool, flatten or linear layer, an adaptive pool with unequal
//! bins, an upsample or a transposed conv (outputs a fraction of a row apart), there is no
//! field (`None`); crop and pad keep it.

use crate::ir::{Graph, Op};
use crate::ops::Footprint;
use crate::shape::Shapes;

/// The receptive field (`size`) and jump of one value, `[h, w]` in input rows and columns.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub size: [u64; 2],
    pub jump: [u64; 2],
}

/// The field of every node, by node index.
pub fn fields(g: &Graph, shapes: &Shapes) -> Vec<Option<Field>> {
    let mut out: Vec<Option<Field>> = Vec::with_capacity(g.dag.node_count());
    for id in g.node_ids() {
        let node = g.node(id);
        if matches!(node.op, Op::Input) {
            out.push(Some(Field {
                size: [1, 1],
                jump: [1, 1],
            }));
            continue;
        }
        let operands = g.operands(id);
        let first = operands.first().and_then(|o| out[o.index()]);
        let footprint = match (
            operands.first().and_then(|&o| shapes.get(o)),
            shapes.get(id),
        ) {
            (Some(input), Some(output)) if output.rank() == 4 => node.op.spec().footprint(input),
            _ => Footprint::Global,
        };
        let field = match footprint {
            Footprint::Pointwise => {
                operands
                    .iter()
                    .filter_map(|o| out[o.index()])
                    .reduce(|a, b| Field {
                        size: [0, 1].map(|i| a.size[i].max(b.size[i])),
                        jump: [0, 1].map(|i| a.jump[i].max(b.jump[i])),
                    })
            }
            Footprint::Sliding {
                kernel,
                stride,
                dilation,
            } => first.map(|f| Field {
                size: [0, 1].map(|i| {
                    f.size[i].saturating_add(
                        kernel[i]
                            .saturating_sub(1)
                            .saturating_mul(dilation[i])
                            .saturating_mul(f.jump[i]),
                    )
                }),
                jump: [0, 1].map(|i| f.jump[i].saturating_mul(stride[i])),
            }),
            Footprint::Global | Footprint::Irregular => None,
        };
        out.push(field);
    }
    out
}
