//! The plain counterpart of a residual network (He et al. 2016 compare the two): every residual
//! add whose shortcut is known (`export::shortcut`) is replaced by its residual branch, and what
//! only fed the shortcuts (projection convs, option-A subsampling) is dropped. Nodes keep their
//! paths, scopes and spans, so the result checks, draws and runs like any graph, and weights
//! made for the residual network fit it (the plain network needs a subset of them).

use crate::export::shortcut;
use crate::ir::{Edge, Graph, GraphOutput, NodeId, Op};

/// A plain graph and where each node of the residual graph went.
#[derive(Clone, Debug)]
pub struct Plain {
    pub graph: Graph,
    /// For each node of the residual graph, the node of `graph` that holds its value: itself,
    /// or for a removed add its residual branch; `None` for a node that only fed shortcuts.
    pub map: Vec<Option<NodeId>>,
    /// How many adds lost their shortcut.
    pub n_removed: usize,
}

/// Remove every residual add's shortcut operand from `g` (the add becomes its residual branch).
///
/// # Shapes
/// The residual branch has the add's shape, so every remaining node keeps its shape.
pub fn to_plain(g: &Graph) -> Plain {
    let n = g.dag.node_count();
    // Each node's value in the plain network, as a node of `g`: itself, or for a removed add
    // its residual operand's. Node indices are topological, so operands are resolved first.
    let mut value_of: Vec<NodeId> = g.node_ids().collect();
    let mut removed = vec![false; n];
    for id in g.node_ids() {
        if let Some(s) = shortcut::of_add(g, id) {
            let residual = g.operands(id)[1 - s.slot as usize];
            value_of[id.index()] = value_of[residual.index()];
            removed[id.index()] = true;
        }
    }
    // Keep what the outputs read (and every input: the network's signature does not change).
    let mut live = vec![false; n];
    for o in &g.outputs {
        live[value_of[o.node.index()].index()] = true;
    }
    for id in (0..n).rev().map(NodeId::new) {
        if g.node(id).op == Op::Input {
            live[id.index()] = true;
        }
        if !live[id.index()] || removed[id.index()] {
            continue;
        }
        for o in g.operands(id) {
            live[value_of[o.index()].index()] = true;
        }
    }
    let mut dag: petgraph::Graph<crate::ir::Node, Edge> = petgraph::Graph::new();
    let mut map: Vec<Option<NodeId>> = vec![None; n];
    for id in g.node_ids() {
        if removed[id.index()] {
            map[id.index()] = map[value_of[id.index()].index()];
            continue;
        }
        if !live[id.index()] {
            continue;
        }
        let new = dag.add_node(g.node(id).clone());
        for (slot, (o, span)) in g.operand_edges(id).into_iter().enumerate() {
            let from = map[value_of[o.index()].index()].expect("a live node's operands are live");
            dag.add_edge(
                from,
                new,
                Edge {
                    slot: slot as u32,
                    span,
                },
            );
        }
        map[id.index()] = Some(new);
    }
    let inputs = g
        .inputs
        .iter()
        .map(|i| {
            let mut i = i.clone();
            i.node = map[i.node.index()].expect("inputs are kept");
            i
        })
        .collect();
    let outputs = g
        .outputs
        .iter()
        .map(|o| GraphOutput {
            node: map[o.node.index()].expect("outputs are live"),
            ..o.clone()
        })
        .collect();
    Plain {
        graph: Graph {
            name: g.name.clone(),
            dag,
            inputs,
            outputs,
            scopes: g.scopes.clone(),
        },
        map,
        n_removed: removed.iter().filter(|&&r| r).count(),
    }
}

/// The plain network of a source that checked, checked again (its shapes inferred anew); a
/// source with errors is returned as it is.
pub fn to_plain_checked(source: &crate::span::Source, checked: crate::Checked) -> crate::Checked {
    let Some(g) = checked.graph.as_ref().filter(|_| !checked.has_errors()) else {
        return checked;
    };
    let graph = to_plain(g).graph;
    let (shapes, diags) = crate::shape::infer(&graph, source);
    let mut diagnostics = checked.diagnostics;
    diagnostics.extend(diags);
    crate::Checked {
        graph: Some(graph),
        shapes: Some(shapes),
        diagnostics,
    }
}

/// [`to_plain_checked`] for every network of a checked file; new diagnostics of the plain
/// networks join the file's.
pub fn to_plain_file(source: &crate::span::Source, file: crate::CheckedFile) -> crate::CheckedFile {
    let mut diagnostics = file.diagnostics;
    let networks = file
        .networks
        .into_iter()
        .map(|c| {
            let before = c.diagnostics.len();
            let plain = to_plain_checked(source, c);
            diagnostics.extend(plain.diagnostics.iter().skip(before).cloned());
            plain
        })
        .collect();
    crate::CheckedFile {
        networks,
        diagnostics,
    }
}
