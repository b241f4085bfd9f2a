//! The intermediate representation: a network lowered to a petgraph DAG, blocks expanded,
//! repetition unrolled, names resolved.
//!
//! Invariants that later phases rely on:
//! - node indices are a topological order (lowering creates a node only after its operands);
//! - operand order is the `slot` on each incoming edge (petgraph lists neighbours in reverse
//!   insertion order, so never rely on that);
//! - every node carries the span of the source expression that made it and the scope (block
//!   instance or sequence) it was made in.

mod lower;
pub mod op;

pub use lower::{MAX_BLOCK_DEPTH, MAX_REPEAT, MAX_WORK, NoShapes, Probe, ShapeOracle, Size, lower};
pub use op::Op;

use crate::span::Span;
use petgraph::Direction;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;

pub type NodeId = NodeIndex<u32>;

/// One op application.
#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    /// The hierarchical path, e.g. `layer2.0.downsample.0`; parameter keys are
    /// `PATH.weight` and so on.
    pub path: String,
    /// The source expression that made this node.
    pub span: Span,
    pub scope: ScopeId,
}

/// An edge from an operand to its consumer; `slot` is the operand's position and `span` the
/// operand's expression where it is used (`x` in `y + x`; the piped-in chain for a stage).
#[derive(Copy, Clone, Debug)]
pub struct Edge {
    pub slot: u32,
    pub span: Span,
}

pub type ScopeId = usize;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeKind {
    Network,
    /// An instance of a block.
    Block {
        name: String,
    },
    /// A sequence `[a, b * 3]`; its items are named by index.
    Seq,
}

/// A block instance or sequence: where the nodes it holds were instantiated.
#[derive(Clone, Debug)]
pub struct Scope {
    pub path: String,
    pub kind: ScopeKind,
    /// The call or sequence expression that created this scope.
    pub span: Span,
    pub parent: Option<ScopeId>,
}

/// A dimension of a declared input shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DimSpec {
    Known(u64),
    Sym(String),
}

#[derive(Clone, Debug)]
pub struct GraphInput {
    pub name: String,
    pub node: NodeId,
    pub dims: Vec<DimSpec>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct GraphOutput {
    pub name: String,
    pub node: NodeId,
    pub span: Span,
}

/// A lowered network.
#[derive(Clone, Debug)]
pub struct Graph {
    pub name: String,
    pub dag: petgraph::Graph<Node, Edge>,
    pub inputs: Vec<GraphInput>,
    pub outputs: Vec<GraphOutput>,
    pub scopes: Vec<Scope>,
}

impl Graph {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.dag[id]
    }

    /// The operands of a node, in order.
    pub fn operands(&self, id: NodeId) -> Vec<NodeId> {
        self.operand_edges(id).into_iter().map(|(n, _)| n).collect()
    }

    /// The operands of a node with the spans where they are used, in order.
    pub fn operand_edges(&self, id: NodeId) -> Vec<(NodeId, Span)> {
        let mut ins: Vec<(u32, NodeId, Span)> = self
            .dag
            .edges_directed(id, Direction::Incoming)
            .map(|e| (e.weight().slot, e.source(), e.weight().span))
            .collect();
        ins.sort_unstable_by_key(|(slot, _, _)| *slot);
        ins.into_iter().map(|(_, n, s)| (n, s)).collect()
    }

    /// The first operand of a node (the piped-in value), without allocating.
    pub fn first_operand(&self, id: NodeId) -> Option<NodeId> {
        self.dag
            .edges_directed(id, Direction::Incoming)
            .find(|e| e.weight().slot == 0)
            .map(|e| e.source())
    }

    /// The nodes that consume this node's value.
    pub fn consumers(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.dag.neighbors_directed(id, Direction::Outgoing)
    }

    /// All nodes in topological order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + use<> {
        (0..self.dag.node_count() as u32).map(|i| NodeIndex::new(i as usize))
    }

    /// The chain of block instances that contains `scope`, innermost first.
    pub fn instance_chain(&self, scope: ScopeId) -> Vec<&Scope> {
        let mut chain = Vec::new();
        let mut cur = Some(scope);
        while let Some(s) = cur {
            let sc = &self.scopes[s];
            if matches!(sc.kind, ScopeKind::Block { .. }) {
                chain.push(sc);
            }
            cur = sc.parent;
        }
        chain
    }
}

/// Join a path prefix and a segment with a dot.
pub fn join_path(prefix: &str, segment: &str) -> String {
    // One exact allocation: this runs for every node of every network.
    let mut path = String::with_capacity(prefix.len() + 1 + segment.len());
    path.push_str(prefix);
    if !prefix.is_empty() {
        path.push('.');
    }
    path.push_str(segment);
    path
}
