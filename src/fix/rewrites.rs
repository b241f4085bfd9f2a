//! Candidate rewrites beyond the arguments of the ops on the chains: repetition counts, input
//! declarations, the failing op's own sizes (`unflatten`, a `crop` the wrong way round), and
//! inserted structure (a projection shortcut, `global_avgpool` before `flatten`). Like every
//! candidate, they are only proposed here; verification decides.

use super::candidates::{
    Axes, Candidate, contains, line, param_exprs, quote_call, replace, replace_arg,
};
use super::index::Index;
use crate::diag::{Edit, Fix};
use crate::ir::{Graph, NodeId, Op};
use crate::shape::Shapes;
use crate::span::{Source, Span};
use crate::syntax::ast::{self, ExprKind};
use std::collections::BTreeSet;

/// `unflatten([c, h, w])` whose sizes multiply to another number than the `found` features
/// it receives: each size in turn made what the others leave (`[4, 2, 2]` for 12 features
/// becomes `[3, 2, 2]`).
pub(super) fn unflatten_sizes(
    source: &Source,
    ix: &Index,
    span: Span,
    dims: [u64; 3],
    found: u64,
) -> Vec<Candidate> {
    let Some(call) = ix.site(span).and_then(|s| s.call) else {
        return Vec::new();
    };
    let Some(ExprKind::List(items)) = call.args.first().map(|a| &a.value.kind) else {
        return Vec::new();
    };
    let Some(arg) = call.args.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate().take(3) {
        let rest: u64 = (0..3)
            .filter(|&j| j != i)
            .map(|j| dims[j])
            .fold(1, u64::saturating_mul);
        if rest == 0 || !found.is_multiple_of(rest) || found / rest == dims[i] {
            continue;
        }
        let v = (found / rest).to_string();
        out.push(replace_arg(source, call, arg.span, item.span, v, 1, 0));
    }
    // A gate of every feature as a channel: `[c, 1, 1]`.
    if let [c, h, w] = items.as_slice()
        && dims[0] == found
        && (dims[1], dims[2]) != (1, 1)
    {
        let old = source.slice(arg.value.span);
        let new = format!("[{}, 1, 1]", source.slice(c.span));
        out.push(Candidate {
            class: 1,
            distance: 0,
            fix: Fix {
                message: format!(
                    "change `{old}` to `{new}` in `{}` at line {}",
                    quote_call(source, call),
                    line(source, call.span)
                ),
                edits: [h.span, w.span]
                    .into_iter()
                    .map(|span| Edit {
                        span,
                        replacement: "1".into(),
                    })
                    .collect(),
            },
        });
    }
    out
}

/// A center crop written the wrong way round, `concat(skip, u -> crop(like: skip))` where `u`
/// is the smaller: crop the other operand of the op that takes the crop,
/// `concat(skip -> crop(like: u), u)`. Only when both are written as names.
pub(super) fn crop_swap(
    source: &Source,
    g: &Graph,
    shapes: &Shapes,
    crop: NodeId,
) -> Vec<Candidate> {
    let edges = g.operand_edges(crop);
    let (Some(&(input_node, input_use)), Some(&(like, like_use))) = (edges.first(), edges.get(1))
    else {
        return Vec::new();
    };
    // A center crop trims the border that unpadded convs lose, not half a map: a `like`
    // value more than half as large again as the input is a mistake of its own size.
    let (Some(a), Some(b)) = (shapes.get(input_node), shapes.get(like)) else {
        return Vec::new();
    };
    let trims = (2..4).all(|axis| match (a.dim(axis).known(), b.dim(axis).known()) {
        (Some(small), Some(large)) => large <= small + small / 2,
        _ => false,
    });
    if !trims {
        return Vec::new();
    }
    let is_name = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    // The `like` operand is used as the argument `like: skip`.
    let like_arg = source.slice(like_use);
    let like_name = like_arg.split_once(':').map_or(like_arg, |(_, v)| v).trim();
    let input = source.slice(input_use);
    let crop_span = g.node(crop).span;
    // The crop must be the first stage piped from the name: `u -> crop(like: skip)`.
    let piped = Span::new(input_use.start as usize, crop_span.end as usize);
    let between = source
        .text
        .get(input_use.end as usize..crop_span.start as usize)
        .unwrap_or("");
    if !is_name(input) || !is_name(like_name) || between.trim() != "->" {
        return Vec::new();
    }
    let mut out = Vec::new();
    for consumer in g.consumers(crop) {
        for (producer, use_span) in g.operand_edges(consumer) {
            if producer != like || source.slice(use_span) != like_name || use_span == piped {
                continue;
            }
            let cropped = format!("{like_name} -> crop(like: {input})");
            let message = format!(
                "crop `{like_name}` to `{input}` instead: write `{cropped}` for `{like_name}` and `{input}` for `{}` at line {}",
                source.slice(piped),
                line(source, use_span)
            );
            // Only names the file already has, reordered: the first class.
            out.push(Candidate {
                class: 0,
                distance: 0,
                fix: Fix {
                    message,
                    edits: vec![
                        Edit {
                            span: use_span,
                            replacement: cropped,
                        },
                        Edit {
                            span: piped,
                            replacement: input.to_string(),
                        },
                    ],
                },
            });
        }
    }
    out
}

/// Other repetition counts: near the current one, half and double.
pub(super) fn repeat(source: &Source, count: &ast::Expr, d: usize) -> Vec<Candidate> {
    let ExprKind::Int(n) = count.kind else {
        return Vec::new();
    };
    let mut values: Vec<u64> = Vec::new();
    for k in [1, 2, 4, 8] {
        values.push(n.saturating_sub(k));
        values.push(n + k);
    }
    values.extend([n / 2, n * 2]);
    values.retain(|&v| v >= 1 && v != n);
    values.dedup();
    values
        .into_iter()
        .map(|v| {
            let mut c = replace(source, count.span, v.to_string(), 1, d);
            c.fix.message = format!(
                "repeat {v} times instead of {n} at line {}",
                line(source, count.span)
            );
            c
        })
        .collect()
}

/// Edits of an input declaration: swap H and W, the H and W of another input the chains
/// reach (`sizes`), or other channels.
pub(super) fn input_decl(
    source: &Source,
    ix: &Index,
    g: &Graph,
    id: NodeId,
    axes: Axes,
    ch: &BTreeSet<u64>,
    sizes: &[(String, String)],
) -> Vec<Candidate> {
    let Some(gi) = g.inputs.iter().find(|i| i.node == id) else {
        return Vec::new();
    };
    let Some(stmt) = ix
        .inputs
        .iter()
        .find(|s| contains(s.span, gi.span) || contains(gi.span, s.span))
    else {
        return Vec::new();
    };
    let Some(dims) = &stmt.shape else {
        return Vec::new();
    };
    let span_of = |d: &ast::Dim| match d {
        ast::Dim::Int(_, s) => *s,
        ast::Dim::Sym(i) => i.span,
    };
    let mut out = Vec::new();
    if dims.len() == 4 && axes.spatial {
        let (h, w) = (span_of(&dims[2]), span_of(&dims[3]));
        let (th, tw) = (source.slice(h).to_string(), source.slice(w).to_string());
        if th != tw {
            // One candidate per input, tried early: a swapped declaration breaks every
            // stream it feeds (several errors merged into one by their cause).
            out.push(Candidate {
                class: 1,
                distance: 0,
                fix: Fix {
                    message: format!(
                        "swap H and W in the declaration of `{}` at line {}: [.., {tw}, {th}]",
                        gi.name,
                        line(source, stmt.span)
                    ),
                    edits: vec![
                        Edit {
                            span: h,
                            replacement: tw,
                        },
                        Edit {
                            span: w,
                            replacement: th,
                        },
                    ],
                },
            });
        }
    }
    if dims.len() == 4 && axes.spatial {
        let (h, w) = (span_of(&dims[2]), span_of(&dims[3]));
        let now = (source.slice(h).to_string(), source.slice(w).to_string());
        for (sh, sw) in sizes.iter().filter(|s| **s != now) {
            out.push(Candidate {
                class: 1,
                distance: 1,
                fix: Fix {
                    message: format!(
                        "declare `{}` at {sh} x {sw} at line {}, as the other input",
                        gi.name,
                        line(source, stmt.span)
                    ),
                    edits: vec![
                        Edit {
                            span: h,
                            replacement: sh.clone(),
                        },
                        Edit {
                            span: w,
                            replacement: sw.clone(),
                        },
                    ],
                },
            });
        }
    }
    if dims.len() == 4 && axes.channels {
        let c = span_of(&dims[1]);
        for v in ch {
            if source.slice(c) != v.to_string() {
                let mut cand = replace(source, c, v.to_string(), 1, 3);
                cand.fix.message = format!(
                    "declare `{}` with {v} channels at line {}",
                    gi.name,
                    line(source, stmt.span)
                );
                out.push(cand);
            }
        }
    }
    out
}

/// A projection shortcut for an operand of an add used by name: `(x -> downsample: [conv(C,
/// k: 1, stride: S), batchnorm])`, with C and S in the block's parameters when it has them.
pub(super) fn projection(
    source: &Source,
    ix: &Index,
    (g, shapes): (&Graph, &Shapes),
    add: NodeId,
) -> Vec<Candidate> {
    let edges = g.operand_edges(add);
    let (Some(a), Some(b)) = (
        edges.first().and_then(|e| shapes.get(e.0)),
        edges.get(1).and_then(|e| shapes.get(e.0)),
    ) else {
        return Vec::new();
    };
    let block = ix
        .blocks
        .values()
        .find(|b| contains(b.span, g.node(add).span))
        .copied();
    let mut out = Vec::new();
    let home = g
        .instance_chain(g.node(add).scope)
        .first()
        .map(|s| s.path.clone());
    for (i, (producer, use_span)) in edges.iter().enumerate().take(2) {
        let (this, other) = if i == 0 { (a, b) } else { (b, a) };
        let text = source.slice(*use_span);
        // The shortcut is the value from outside: the block's input, or a network input.
        let outside = matches!(g.node(*producer).op, Op::Input)
            || g.instance_chain(g.node(*producer).scope)
                .first()
                .map(|s| s.path.clone())
                != home;
        if !outside {
            continue;
        }
        if !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let (Some(h), Some(oh), Some(c)) = (
            this.dim(2).known(),
            other.dim(2).known(),
            other.dim(1).known(),
        ) else {
            continue;
        };
        // Only the shortcut is projected: the operand with the larger map (or the name).
        if h < oh {
            continue;
        }
        let stride = if oh > 0 && h > oh { h.div_ceil(oh) } else { 1 };
        let mut cs: Vec<(String, u8)> = param_exprs(block, "channels")
            .into_iter()
            .map(|e| (e, 0))
            .collect();
        cs.push((c.to_string(), 1));
        let has_stride = block.is_some_and(|b| b.params.iter().any(|p| p.name.name == "stride"));
        let st = if has_stride && stride != 1 {
            ", stride: stride".to_string()
        } else if stride != 1 {
            format!(", stride: {stride}")
        } else {
            String::new()
        };
        for (cexpr, _) in cs.into_iter().take(8) {
            let with = format!("({text} -> downsample: [conv({cexpr}, k: 1{st}), batchnorm])");
            out.push(Candidate {
                class: 2,
                distance: 0,
                fix: Fix {
                    message: format!(
                        "project the shortcut: write `{with}` for `{text}` at line {}",
                        line(source, *use_span)
                    ),
                    edits: vec![Edit {
                        span: *use_span,
                        replacement: with,
                    }],
                },
            });
        }
    }
    out
}

/// For W0103: pool before the flatten at `span`, and state the pooled features where the
/// linear layer after it states its input features.
pub fn pool_before_flatten(
    source: &Source,
    ix: &Index,
    nets: &[(&Graph, &Shapes)],
    span: Span,
) -> Vec<Candidate> {
    let Some(flat) = ix.site(span) else {
        return Vec::new();
    };
    let mut edits = vec![Edit {
        span: Span::new(flat.name_span.start as usize, flat.name_span.start as usize),
        replacement: "global_avgpool -> ".into(),
    }];
    for (g, shapes) in nets {
        for id in g.node_ids() {
            if g.node(id).span != span {
                continue;
            }
            let channels = g
                .first_operand(id)
                .and_then(|o| shapes.get(o))
                .and_then(|s| s.dim(1).known());
            for lin in g.consumers(id) {
                let Some(call) = ix.site(g.node(lin).span).and_then(|s| s.call) else {
                    continue;
                };
                if let (Some(a), Some(c)) = (call.args.first(), channels)
                    && a.name.is_none()
                    && let ExprKind::Pipe { head, .. } = &a.value.kind
                {
                    let e = Edit {
                        span: head.span,
                        replacement: c.to_string(),
                    };
                    if !edits.contains(&e) {
                        edits.push(e);
                    }
                }
            }
        }
    }
    let stated = edits.len() > 1;
    vec![Candidate {
        class: 2,
        distance: 0,
        fix: Fix {
            message: format!(
                "pool before flattening: insert `global_avgpool ->` before `flatten` at line {}{}",
                line(source, span),
                if stated {
                    " and state the pooled features in the linear layer"
                } else {
                    ""
                }
            ),
            edits,
        },
    }]
}
