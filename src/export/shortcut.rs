//! Residual shortcuts: for every `add`, which operand is the shortcut, the path it takes from
//! the point where it forks off the main branch, and what kind of shortcut that path is. Used
//! only to style the drawing; nothing here judges whether a network is valid.

use crate::ir::{Graph, NodeId, Op};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// What a shortcut does between its fork and the add.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// The add's operand is the block input itself (ops like `identity` or `dropout` aside).
    Identity,
    /// The shortcut passes through an op with parameters: a 1x1 conv (`downsample`).
    Projection,
    /// The shortcut reshapes without parameters (`shortcut_a`, pooling).
    ParamFree,
}

/// The edges on shortcut paths, keyed by (consumer node index, operand slot); the edge into
/// the add itself is `into_add`.
#[derive(Default)]
pub(super) struct Shortcuts {
    marks: BTreeMap<(usize, u32), (Kind, bool)>,
}

impl Shortcuts {
    /// The kind of shortcut an edge belongs to, and whether it is the edge into the add.
    pub(super) fn mark(&self, consumer: NodeId, slot: u32) -> Option<(Kind, bool)> {
        self.marks.get(&(consumer.index(), slot)).copied()
    }
}

/// How far back to look for the fork of a residual add: a block is a few dozen ops.
const MAX_STEPS: usize = 4096;

/// Find the shortcut of every two-operand `add`.
pub(super) fn find(g: &Graph) -> Shortcuts {
    let mut out = Shortcuts::default();
    for id in g.node_ids().filter(|&id| g.node(id).op == Op::Add) {
        let operands = g.operands(id);
        let [a, b] = operands[..] else { continue };
        let Some((path_a, path_b)) = paths_to_fork(g, a, b) else {
            continue;
        };
        // The shortcut is the shorter branch; two branches of equal length (an add of two
        // parallel convs) have no shortcut.
        let (slot, path) = match path_a.len().cmp(&path_b.len()) {
            Ordering::Less => (0, path_a),
            Ordering::Greater => (1, path_b),
            Ordering::Equal => continue,
        };
        let kind = classify(g, &path);
        out.marks.insert((id.index(), slot), (kind, true));
        for n in path {
            out.marks.insert((n.index(), 0), (kind, false));
        }
    }
    out
}

/// Walk back from both operands along first operands until they meet. Node indices are a
/// topological order, so stepping back from the later of the two finds the nearest common
/// node on these paths (the block input, for a residual block). Returns the nodes each side
/// passed, nearest the add first.
fn paths_to_fork(g: &Graph, mut a: NodeId, mut b: NodeId) -> Option<(Vec<NodeId>, Vec<NodeId>)> {
    let (mut path_a, mut path_b) = (Vec::new(), Vec::new());
    for _ in 0..MAX_STEPS {
        if a == b {
            return Some((path_a, path_b));
        }
        let (cur, path) = if a.index() > b.index() {
            (&mut a, &mut path_a)
        } else {
            (&mut b, &mut path_b)
        };
        path.push(*cur);
        *cur = g.operands(*cur).first().copied()?;
    }
    None
}

fn classify(g: &Graph, path: &[NodeId]) -> Kind {
    let ops = path.iter().map(|&n| &g.node(n).op);
    if ops.clone().any(Op::has_params) {
        Kind::Projection
    } else if ops
        .clone()
        .all(|op| matches!(op, Op::Identity | Op::Dropout { .. }))
    {
        Kind::Identity
    } else {
        Kind::ParamFree
    }
}
