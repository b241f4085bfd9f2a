//! Where a signal propagation plot measures: the block instances of a graph in forward order,
//! each with the node that is its output and, for a residual block, its add with the residual
//! branch and the shortcut told apart (`export::shortcut`, the same rule the drawing uses).
//!
//! A row is a residual block: the innermost block instance around an add that has a shortcut.
//! A block instance without such an add (a transition, a stem) is a row of its own unless it
//! lies inside a row; one that only holds residual blocks (a whole stage written as a block) is
//! not, its blocks are. So a squeeze-excitation block nested in a bottleneck is part of the
//! bottleneck's row, as a reader counts depth.

use crate::export::shortcut::{self, Kind};
use crate::ir::{Graph, NodeId, ScopeId, ScopeKind};

/// A block instance whose output is recorded.
#[derive(Clone, Debug)]
pub struct Site {
    /// The instance's path, e.g. `layer2.0`.
    pub path: String,
    /// The block's name, e.g. `basic`.
    pub block: String,
    /// The node whose value leaves the block.
    pub output: NodeId,
    /// The block's residual add, when it has one with a shortcut.
    pub add: Option<AddSite>,
}

/// The two operands of a residual add.
#[derive(Clone, Debug)]
pub struct AddSite {
    pub node: NodeId,
    /// The operand that is the residual branch (the longer path from the block's input).
    pub residual: NodeId,
    /// The shortcut operand: `None` once `--plain` removed it.
    pub shortcut: Option<NodeId>,
    pub kind: Kind,
}

/// The block instances that enclose `scope`, innermost first.
fn blocks_around(g: &Graph, scope: ScopeId) -> Vec<ScopeId> {
    let mut chain = Vec::new();
    let mut cur = Some(scope);
    while let Some(s) = cur {
        if matches!(g.scopes[s].kind, ScopeKind::Block { .. }) {
            chain.push(s);
        }
        cur = g.scopes[s].parent;
    }
    chain
}

/// The rows of a graph, in forward order (by their output node).
pub fn sites(g: &Graph) -> Vec<Site> {
    let n_scopes = g.scopes.len();
    let around: Vec<Vec<ScopeId>> = g
        .node_ids()
        .map(|id| blocks_around(g, g.node(id).scope))
        .collect();
    // A block's output is the node inside it that is read outside it (or is a network output).
    let mut output: Vec<Option<NodeId>> = vec![None; n_scopes];
    let mut leave = |v: NodeId, outside: &[ScopeId]| {
        for &s in &around[v.index()] {
            if !outside.contains(&s) && output[s].is_none_or(|o| o < v) {
                output[s] = Some(v);
            }
        }
    };
    for v in g.node_ids() {
        for u in g.consumers(v) {
            leave(v, &around[u.index()]);
        }
    }
    for o in &g.outputs {
        leave(o.node, &[]);
    }
    // The residual add of each block instance: the last add with a shortcut whose innermost
    // block it is.
    let mut add: Vec<Option<AddSite>> = vec![None; n_scopes];
    let mut holds_residual = vec![false; n_scopes];
    for id in g.node_ids() {
        let (Some(s), Some(&inner)) = (shortcut::of_add(g, id), around[id.index()].first()) else {
            continue;
        };
        let operands = g.operands(id);
        add[inner] = Some(AddSite {
            node: id,
            residual: operands[1 - s.slot as usize],
            shortcut: Some(operands[s.slot as usize]),
            kind: s.kind,
        });
        for &outer in &around[id.index()][1..] {
            holds_residual[outer] = true;
        }
    }
    // A block is a row when it has a residual add; or, holding no residual block, when no
    // enclosing block is a row (or a candidate swallowed by one).
    let candidate = |s: ScopeId| add[s].is_some() || !holds_residual[s];
    let mut rows: Vec<Site> = (0..n_scopes)
        .filter(|&s| {
            let around = blocks_around(g, s);
            around.first() == Some(&s)
                && (add[s].is_some()
                    || (candidate(s) && !around[1..].iter().any(|&a| candidate(a))))
        })
        .filter_map(|s| {
            let ScopeKind::Block { name } = &g.scopes[s].kind else {
                return None;
            };
            Some(Site {
                path: g.scopes[s].path.clone(),
                block: name.clone(),
                output: output[s]?,
                add: add[s].clone(),
            })
        })
        .collect();
    rows.sort_by_key(|r| r.output);
    rows
}

/// The stage of a block path: all but its last segment (`layer2` for `layer2.0`).
pub fn stage(path: &str) -> &str {
    path.rsplit_once('.').map_or("", |(stage, _)| stage)
}
