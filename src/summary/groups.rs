//! Totals per block instance and labelled sequence: the `groups` of the JSON summary and the
//! group rows of the table. The groups are the scopes `graph` draws as clusters
//! ([`crate::export::view::is_cluster`]), so both commands group alike.

use super::{Counts, Field, Layer};
use crate::export::view::is_cluster;
use crate::ir::{Graph, NodeId, ScopeId, ScopeKind};
use crate::shape::{Shape, Shapes};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Group<'g> {
    pub path: &'g str,
    /// `"block"` (an instance) or `"sequence"` (a labelled one, such as a stage).
    pub kind: &'static str,
    /// The block a `"block"` group instantiates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block: Option<&'g str>,
    /// 1 for a group made in the network's body (a stage), 2 for one inside it, ...
    pub level: usize,
    /// The shape of the group's output: its last op's.
    pub shape: &'g Shape,
    #[serde(flatten)]
    pub counts: Counts,
    pub receptive_field: Option<[u64; 2]>,
    pub jump: Option<[u64; 2]>,
    #[serde(skip)]
    pub scope: ScopeId,
}

/// The groups of `g` in source order; `layers[i]` is the summary row of `nodes[i]`.
pub(super) fn groups<'g>(
    g: &'g Graph,
    shapes: &'g Shapes,
    nodes: &[NodeId],
    layers: &[Layer<'g>],
    fields: &[Option<Field>],
) -> Vec<Group<'g>> {
    let n = g.scopes.len();
    // A scope's parent was created before it; one that is not is treated as the top level.
    let parent = |s: ScopeId| g.scopes[s].parent.filter(|&p| p < s);
    let cluster: Vec<bool> = (0..n).map(|s| is_cluster(g, s)).collect();
    // Per scope: the totals, its first node and its last (the output: nodes are in order).
    let mut acc: Vec<Option<(Counts, NodeId, NodeId)>> = vec![None; n];
    for (layer, &id) in layers.iter().zip(nodes) {
        let mut cur = Some(g.node(id).scope).filter(|&s| s < n);
        while let Some(s) = cur {
            if cluster[s] {
                let e = acc[s].get_or_insert((Counts::zero(), id, id));
                e.0 = e.0.add(layer.counts());
                e.2 = id;
            }
            cur = parent(s);
        }
    }
    let mut level = vec![0usize; n];
    for s in 0..n {
        level[s] = parent(s).map_or(0, |p| level[p]) + usize::from(cluster[s]);
    }
    let mut out: Vec<(NodeId, Group<'g>)> = Vec::new();
    for (s, a) in acc.iter().enumerate() {
        let (Some((counts, first, last)), Some(shape)) = (a, a.and_then(|a| shapes.get(a.2)))
        else {
            continue;
        };
        let scope = &g.scopes[s];
        let field = fields.get(last.index()).copied().flatten();
        out.push((
            *first,
            Group {
                path: &scope.path,
                kind: match scope.kind {
                    ScopeKind::Block { .. } => "block",
                    _ => "sequence",
                },
                block: match &scope.kind {
                    ScopeKind::Block { name } => Some(name),
                    _ => None,
                },
                level: level[s],
                shape,
                counts: *counts,
                receptive_field: field.map(|f| f.size),
                jump: field.map(|f| f.jump),
                scope: s,
            },
        ));
    }
    out.sort_by_key(|(first, _)| *first);
    out.into_iter().map(|(_, grp)| grp).collect()
}
