//! Residual shortcuts: for every `add`, which operand is the shortcut, the path it takes from
//! the point where it forks off the main branch, and what kind of shortcut that path is. Used
//! to style the drawing and by `analyze` (which operand of an add is the residual branch);
//! nothing here judges whether a network is valid.

use crate::ir::{Graph, NodeId, Op};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// What a shortcut does between its fork and the add.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
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

/// The shortcut of one residual add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortcut {
    /// The add's operand position (0 or 1) that is the shortcut; the other is the residual
    /// branch.
    pub slot: u32,
    pub kind: Kind,
    /// The shortcut's nodes between the fork and the add, nearest the add first (empty for a
    /// plain identity).
    pub path: Vec<NodeId>,
}

/// The shortcut of the two-operand `add` node `id`: the operand with the shorter path back to
/// where the two branches fork. `None` for another node, or when the branches are equally long
/// (an add of two parallel convs has no shortcut).
pub fn of_add(g: &Graph, id: NodeId) -> Option<Shortcut> {
    if g.node(id).op != Op::Add {
        return None;
    }
    let operands = g.operands(id);
    let [a, b] = operands[..] else { return None };
    let (path_a, path_b) = paths_to_fork(g, a, b)?;
    let (slot, path) = match path_a.len().cmp(&path_b.len()) {
        Ordering::Less => (0, path_a),
        Ordering::Greater => (1, path_b),
        Ordering::Equal => return None,
    };
    let kind = classify(g, &path);
    Some(Shortcut { slot, kind, path })
}

/// Find the shortcut of every two-operand `add`.
pub(super) fn find(g: &Graph) -> Shortcuts {
    let mut out = Shortcuts::default();
    for id in g.node_ids() {
        let Some(s) = of_add(g, id) else { continue };
        out.marks.insert((id.index(), s.slot), (s.kind, true));
        for n in s.path {
            out.marks.insert((n.index(), 0), (s.kind, false));
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
