//! One diagnostic per cause. The errors of one op in several block instances (same code, same
//! span) become one, with "also in `layer3.0`, `layer4.0` (3 instances)"; and errors of one
//! code that conflict over the same decided value become one, the first in source order with
//! the others as secondary labels and "also causes ..." notes.
//!
//! A *cause* of an error is a value it conflicts over, taken where that value was decided,
//! with the value it conflicts with: for channels (and features), the node that set them (an
//! input declaration, a conv, a concat, ...: one node, so one block instance and the call that
//! made it); for H and W, the root of the size (an input declaration, or an op that sets a size
//! outright such as `upsample(size: ...)`), and only when the value there is itself in conflict
//! (two inputs declared with sizes that differ, a window larger than the declared size it
//! sees unchanged): a size changed on the way is the mistake of that path, local to the op.
//! Two errors that share a cause are fixed by one edit at that node, which fix verification
//! checks (every merged error must go, see `crate::fix`).
//!
//! Causes are computed only for ops that failed: a clean check does no work here.

use super::rules::Mismatch;
use super::{Dim, Shape};
use crate::diag::{Code, Diagnostic};
use crate::ir::op::UpsampleTarget;
use crate::ir::{Graph, NodeId, Op};
use crate::span::{Source, Span};
use std::collections::HashMap;

/// A decided value an error conflicts over: the code, the axis, the node that decided it, its
/// value there, and the value it conflicts with (a size, or the failing op's own argument).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Cause {
    code: Code,
    axis: usize,
    at: NodeId,
    value: u64,
    other: u64,
}

/// One error as inference found it: the diagnostic, the failing node and its causes.
pub(super) struct Found {
    pub diag: Diagnostic,
    pub node: NodeId,
    pub causes: Vec<Cause>,
}

/// Whether an op sets the channels (features) of its output from its own arguments or from
/// several operands, rather than passing its first operand's on.
fn sets_channels(g: &Graph, of: &[Option<Shape>], id: NodeId) -> bool {
    match &g.node(id).op {
        Op::Input
        | Op::Conv(_)
        | Op::ConvTranspose(_)
        | Op::ShortcutA(_)
        | Op::Linear(_)
        | Op::Concat
        | Op::Unflatten(_) => true,
        // Flattened channels of a pooled map are its channels: decided before.
        Op::Flatten => !g
            .first_operand(id)
            .and_then(|p| of.get(p.index())?.as_ref())
            .is_some_and(|s| s.dim(2) == &Dim::Known(1) && s.dim(3) == &Dim::Known(1)),
        _ => false,
    }
}

/// The node that decided the channels of `id`'s value, and their number.
fn channel_decider(g: &Graph, of: &[Option<Shape>], id: NodeId) -> Option<(NodeId, u64)> {
    let value = of.get(id.index())?.as_ref()?.dim(1).known()?;
    let mut cur = id;
    for _ in 0..g.dag.node_count() {
        if sets_channels(g, of, cur) {
            return Some((cur, value));
        }
        cur = g.first_operand(cur)?;
    }
    None
}

/// The root of H or W (`axis`) of `id`'s value: the input declaration, or the op that set the
/// size outright, with the size there.
fn spatial_root(g: &Graph, of: &[Option<Shape>], id: NodeId, axis: usize) -> Option<(NodeId, u64)> {
    let mut cur = id;
    for _ in 0..g.dag.node_count() {
        let shape = of.get(cur.index())?.as_ref()?;
        if shape.rank() != 4 {
            return None;
        }
        let prev = match &g.node(cur).op {
            Op::Input
            | Op::GlobalAvgPool
            | Op::AdaptiveAvgPool(_)
            | Op::Unflatten(_)
            | Op::Upsample(crate::ir::op::Upsample {
                target: UpsampleTarget::Size(_),
                ..
            }) => None,
            Op::Crop
            | Op::Upsample(crate::ir::op::Upsample {
                target: UpsampleTarget::Like,
                ..
            }) => g.operands(cur).get(1).copied(),
            _ => g.first_operand(cur),
        };
        match prev {
            Some(p) => cur = p,
            None => return Some((cur, shape.dim(axis).known()?)),
        }
    }
    None
}

/// Causes of a conflict between two operands' values along `axis`: each side's decided value
/// against the other's; for H and W only when the roots' sizes themselves differ.
fn between(
    g: &Graph,
    of: &[Option<Shape>],
    code: Code,
    axis: usize,
    a: NodeId,
    b: NodeId,
) -> Vec<Cause> {
    let find = |id| match axis {
        1 => channel_decider(g, of, id),
        _ => spatial_root(g, of, id, axis),
    };
    let (Some((at_a, va)), Some((at_b, vb))) = (find(a), find(b)) else {
        return Vec::new();
    };
    if va == vb {
        return Vec::new(); // the roots agree: the sizes parted on the way, a local mistake
    }
    vec![
        Cause {
            code,
            axis,
            at: at_a,
            value: va,
            other: vb,
        },
        Cause {
            code,
            axis,
            at: at_b,
            value: vb,
            other: va,
        },
    ]
}

/// The causes of the failure `m` of node `id`, whose operands have shapes `ins`.
pub(super) fn causes(
    g: &Graph,
    of: &[Option<Shape>],
    id: NodeId,
    ins: &[&Shape],
    m: &Mismatch,
) -> Vec<Cause> {
    let code = super::report::code(&g.node(id).op, m);
    let operands = g.operands(id);
    let Some(&first) = operands.first() else {
        return Vec::new();
    };
    let own = |other: u64| {
        channel_decider(g, of, first)
            .map(|(at, value)| Cause {
                code,
                axis: 1,
                at,
                value,
                other,
            })
            .into_iter()
            .collect()
    };
    match *m {
        Mismatch::Stated { stated, .. } => own(stated),
        Mismatch::Groups { groups, .. } => own(groups),
        Mismatch::ShortcutChannels { c_out, .. } => own(c_out),
        Mismatch::Operands { other, axis } if axis < 4 => match operands.get(other) {
            Some(&b) => between(g, of, code, axis, first, b),
            None => Vec::new(),
        },
        Mismatch::Crop { axis, .. } => match operands.get(1) {
            Some(&like) => between(g, of, code, axis, first, like),
            None => Vec::new(),
        },
        Mismatch::Gate => {
            let (Some(x), Some(gate), Some(&b)) = (ins.first(), ins.get(1), operands.get(1)) else {
                return Vec::new();
            };
            (1..x.rank().min(gate.rank()).min(4))
                .filter(|&axis| {
                    !x.dim(axis).fits(gate.dim(axis)) && gate.dim(axis) != &Dim::Known(1)
                })
                .flat_map(|axis| between(g, of, code, axis, first, b))
                .collect()
        }
        Mismatch::Window {
            axis,
            len,
            kernel,
            dilation,
            ..
        } => match spatial_root(g, of, first, axis) {
            // The size reached the window unchanged from its root: the root is in conflict.
            Some((at, value)) if value == len => vec![Cause {
                code,
                axis,
                at,
                value,
                other: dilation
                    .saturating_mul(kernel.saturating_sub(1))
                    .saturating_add(1),
            }],
            _ => Vec::new(),
        },
        Mismatch::Operands { .. } | Mismatch::Rank { .. } | Mismatch::Overflow(_) => Vec::new(),
    }
}

/// The block instance a node was made in, by path.
fn instance_path(g: &Graph, id: NodeId) -> Option<String> {
    g.instance_chain(g.node(id).scope)
        .first()
        .map(|s| s.path.clone())
}

/// Errors of one op in several instances, before they are merged by cause.
struct Group {
    diag: Diagnostic,
    paths: Vec<String>,
    causes: Vec<Cause>,
}

/// One diagnostic per cause: first the errors of one op in several block instances, then
/// errors that share a cause (in node order in, one diagnostic per cause out).
pub(super) fn merge(g: &Graph, source: &Source, found: Vec<Found>) -> Vec<Diagnostic> {
    let mut groups: Vec<Group> = Vec::new();
    let mut at: HashMap<(Code, Option<Span>), usize> = HashMap::new();
    for f in found {
        let key = (f.diag.code, f.diag.primary.as_ref().map(|p| p.span));
        let path = instance_path(g, f.node).unwrap_or_else(|| g.node(f.node).path.clone());
        match at.get(&key) {
            Some(&i) => {
                let grp = &mut groups[i];
                if !grp.paths.contains(&path) {
                    grp.paths.push(path);
                }
                for c in f.causes {
                    if !grp.causes.contains(&c) {
                        grp.causes.push(c);
                    }
                }
            }
            None => {
                at.insert(key, groups.len());
                groups.push(Group {
                    diag: f.diag,
                    paths: vec![path],
                    causes: f.causes,
                });
            }
        }
    }
    // Groups that share a cause: each joins the first group with any of its causes.
    let mut root: Vec<usize> = (0..groups.len()).collect();
    let mut first: HashMap<&Cause, usize> = HashMap::new();
    fn find(root: &mut [usize], i: usize) -> usize {
        let mut r = i;
        while root[r] != r {
            r = root[r];
        }
        root[i] = r;
        r
    }
    for (i, grp) in groups.iter().enumerate() {
        for c in &grp.causes {
            match first.get(c) {
                Some(&j) => {
                    let (a, b) = (find(&mut root, i), find(&mut root, j));
                    root[a.max(b)] = a.min(b);
                }
                None => {
                    first.insert(c, i);
                }
            }
        }
    }
    let mut sets: Vec<Vec<Group>> = Vec::new();
    let mut set_of: HashMap<usize, usize> = HashMap::new();
    let roots: Vec<usize> = (0..groups.len()).map(|i| find(&mut root, i)).collect();
    for (grp, r) in groups.into_iter().zip(roots) {
        let s = *set_of.entry(r).or_insert_with(|| {
            sets.push(Vec::new());
            sets.len() - 1
        });
        sets[s].push(grp);
    }
    sets.into_iter()
        .filter_map(|set| one_cause(source, set))
        .collect()
}

/// The diagnostic of one cause: the first error in source order, with the others as
/// secondary labels and notes.
fn one_cause(source: &Source, mut set: Vec<Group>) -> Option<Diagnostic> {
    let start = |grp: &Group| grp.diag.primary.as_ref().map_or(0, |p| p.span.start);
    set.sort_by_key(start);
    let mut set = set.into_iter();
    let lead = set.next()?;
    let mut d = with_instances(lead.diag, &lead.paths);
    for other in set {
        let Some(p) = other.diag.primary else {
            continue;
        };
        let line = source.line_col(p.span.start).0;
        let text = super::report::quote(source.slice(p.span));
        let also = if other.paths.len() > 1 {
            format!(" (in {} instances)", other.paths.len())
        } else {
            String::new()
        };
        d = d
            .with_secondary(p.span, format!("the same cause: {}", p.message))
            .with_note(format!(
                "also causes the error at `{text}`, line {line}{also}: {}",
                p.message
            ));
        d.merged.push(p.span);
    }
    Some(d)
}

/// "also in `layer3.0`, `layer4.0` (3 instances)" on the diagnostic of an op that failed in
/// several instances.
fn with_instances(d: Diagnostic, paths: &[String]) -> Diagnostic {
    if paths.len() < 2 {
        return d;
    }
    const SHOWN: usize = 6;
    let mut others: Vec<String> = paths[1..]
        .iter()
        .take(SHOWN)
        .map(|p| format!("`{p}`"))
        .collect();
    if paths.len() - 1 > SHOWN {
        others.push(format!("and {} more", paths.len() - 1 - SHOWN));
    }
    d.with_note(format!(
        "also in {} ({} instances)",
        others.join(", "),
        paths.len()
    ))
}
