//! What a drawing shows: which scopes become clusters, which collapse into one node under
//! `--depth`, and where every node of the graph lands. Pure data computed from the IR; the DOT
//! text is written elsewhere ([`super::dot`]).
//!
//! A *cluster scope* is a block instance or a labelled sequence (one named by its label or by
//! its index in an enclosing sequence); an unlabelled sequence (`seq#0`) is transparent. The
//! network is level 0 and each cluster scope is one level deeper than its nearest cluster
//! ancestor. With a depth limit `d`, a cluster scope deeper than `d` collapses into one node,
//! and so does a sequence at level `d` whose items are all instances of the same block
//! (`layer3: bottleneck × 36`). The summary table of `check` groups its rows with the same
//! view ([`View::for_table`]), without that last rule: there a stage stays a group of its
//! block instances.

use crate::ir::{Graph, NodeId, ScopeId, ScopeKind};
use std::collections::BTreeMap;

/// One thing drawn as a DOT node: an op, or a collapsed scope standing for all of its ops.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Item {
    Node(NodeId),
    Collapsed(ScopeId),
}

/// What a drawn cluster holds: items and nested clusters.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Member {
    Item(Item),
    Cluster(ScopeId),
}

/// The clusters and collapsed scopes of one drawing.
pub(crate) struct View<'g> {
    g: &'g Graph,
    /// Whether a sequence of one block's instances at the depth limit collapses into one node.
    uniform: bool,
    cluster: Vec<bool>,
    level: Vec<usize>,
    /// The outermost collapsed scope containing each scope (itself included).
    collapsed_in: Vec<Option<ScopeId>>,
    /// The drawn cluster that holds what is made directly in each scope (`None`: top level).
    home: Vec<Option<ScopeId>>,
    /// The smallest node index inside each scope (`None` for a scope without nodes).
    first_node: Vec<Option<usize>>,
    /// Child scopes of each scope, in creation order.
    children: Vec<Vec<ScopeId>>,
    /// Nodes made directly in each scope, in index order.
    direct: Vec<Vec<NodeId>>,
}

impl<'g> View<'g> {
    pub(super) fn new(g: &'g Graph, depth: Option<usize>) -> View<'g> {
        View::with_rule(g, depth, true)
    }

    /// The view of the summary table at depth `depth`: cluster scopes deeper than it collapse
    /// into one row each.
    pub(crate) fn for_table(g: &'g Graph, depth: usize) -> View<'g> {
        View::with_rule(g, Some(depth), false)
    }

    fn with_rule(g: &'g Graph, depth: Option<usize>, uniform: bool) -> View<'g> {
        let n_scopes = g.scopes.len();
        let mut v = View {
            g,
            uniform,
            cluster: vec![false; n_scopes],
            level: vec![0; n_scopes],
            collapsed_in: vec![None; n_scopes],
            home: vec![None; n_scopes],
            first_node: vec![None; n_scopes],
            children: vec![Vec::new(); n_scopes],
            direct: vec![Vec::new(); n_scopes],
        };
        v.index_nodes();
        for s in 0..n_scopes {
            if let Some(p) = v.parent(s) {
                v.children[p].push(s);
            }
        }
        // Lowering creates a scope after its parent, so one pass in index order sees every
        // parent first; a parent index that breaks this is treated as the top level.
        for s in 0..n_scopes {
            let parent = v.parent(s);
            v.cluster[s] = is_cluster(g, s);
            v.level[s] = parent.map_or(0, |p| v.level[p]) + usize::from(v.cluster[s]);
            let collapses = v.cluster[s]
                && depth.is_some_and(|d| {
                    v.level[s] > d || (v.uniform && v.level[s] == d && v.uniform_block(s).is_some())
                });
            v.collapsed_in[s] = parent
                .and_then(|p| v.collapsed_in[p])
                .or(collapses.then_some(s));
            v.home[s] = if v.cluster[s] {
                Some(s)
            } else {
                parent.and_then(|p| v.home[p])
            };
        }
        v
    }

    /// Fill `direct` and `first_node`; needs no parent ordering.
    fn index_nodes(&mut self) {
        for id in self.g.node_ids() {
            let scope = self.g.node(id).scope;
            if let Some(d) = self.direct.get_mut(scope) {
                d.push(id);
            }
            let mut cur = Some(scope).filter(|&s| s < self.first_node.len());
            // Ancestors of a scope that has its first node already have theirs.
            while let Some(s) = cur.filter(|&s| self.first_node[s].is_none()) {
                self.first_node[s] = Some(id.index());
                cur = self.parent(s);
            }
        }
    }

    /// A scope's parent, if it was created before it (always, for a lowered graph).
    fn parent(&self, s: ScopeId) -> Option<ScopeId> {
        self.g.scopes[s].parent.filter(|&p| p < s)
    }

    /// Where a node is drawn: itself, or the collapsed scope that holds it.
    pub(super) fn item_of(&self, id: NodeId) -> Item {
        let scope = self.g.node(id).scope;
        match self.collapsed_in.get(scope).copied().flatten() {
            Some(c) => Item::Collapsed(c),
            None => Item::Node(id),
        }
    }

    /// The drawn cluster an item sits in directly (`None`: the top level).
    fn home_of(&self, item: Item) -> Option<ScopeId> {
        let scope = match item {
            Item::Node(id) => Some(self.g.node(id).scope),
            Item::Collapsed(s) => self.parent(s),
        };
        scope.and_then(|s| self.home.get(s).copied().flatten())
    }

    /// The smallest node index an item covers, to order siblings as the source does.
    fn first_node(&self, item: Item) -> usize {
        match item {
            Item::Node(id) => id.index(),
            Item::Collapsed(s) => self.first_node[s].unwrap_or(usize::MAX),
        }
    }

    /// Whether a scope is drawn as a cluster (not collapsed, holds at least one node).
    fn is_drawn_cluster(&self, s: ScopeId) -> bool {
        self.cluster[s] && self.collapsed_in[s].is_none() && self.first_node[s].is_some()
    }

    /// What each drawn cluster (and the top level, `None`) holds directly, in source order.
    pub(crate) fn members(&self) -> BTreeMap<Option<ScopeId>, Vec<Member>> {
        let mut members: BTreeMap<Option<ScopeId>, Vec<(usize, Member)>> = BTreeMap::new();
        for id in self.g.node_ids() {
            let item = self.item_of(id);
            if self.first_node(item) == id.index() {
                members
                    .entry(self.home_of(item))
                    .or_default()
                    .push((id.index(), Member::Item(item)));
            }
        }
        for s in (0..self.g.scopes.len()).filter(|&s| self.is_drawn_cluster(s)) {
            let home = self.parent(s).and_then(|p| self.home[p]);
            if let Some(first) = self.first_node[s] {
                members
                    .entry(home)
                    .or_default()
                    .push((first, Member::Cluster(s)));
            }
        }
        members
            .into_iter()
            .map(|(k, mut v)| {
                v.sort();
                (k, v.into_iter().map(|(_, m)| m).collect())
            })
            .collect()
    }

    /// The name of the block that every item of sequence `s` instantiates, if there is one.
    pub(crate) fn uniform_block(&self, s: ScopeId) -> Option<(&'g str, usize)> {
        if self.g.scopes[s].kind != ScopeKind::Seq || !self.direct[s].is_empty() {
            return None;
        }
        let mut names = self.children[s]
            .iter()
            .map(|&c| match &self.g.scopes[c].kind {
                ScopeKind::Block { name } => Some(name.as_str()),
                _ => None,
            });
        let first = names.next()??;
        names
            .all(|n| n == Some(first))
            .then_some((first, self.children[s].len()))
    }

    /// The label of a collapsed scope: `layer3: bottleneck × 6`, `layer2.0: basic`, or a
    /// sequence's path above its items (`conv → batchnorm`).
    pub(super) fn collapsed_label(&self, s: ScopeId) -> String {
        let scope = &self.g.scopes[s];
        if let ScopeKind::Block { name } = &scope.kind {
            return format!("{}: {name}", scope.path);
        }
        if let Some((name, n)) = self.uniform_block(s) {
            return format!("{}: {name} × {n}", scope.path);
        }
        format!("{}\n{}", scope.path, self.items_summary(s))
    }

    /// The items of a sequence in order, runs of the same name counted: `basic × 2 → conv`.
    pub(crate) fn items_summary(&self, s: ScopeId) -> String {
        const MAX_RUNS: usize = 4;
        let mut items: Vec<(usize, String)> = self.direct[s]
            .iter()
            .map(|&id| (id.index(), self.g.node(id).op.name().to_string()))
            .collect();
        for &c in &self.children[s] {
            let name = match &self.g.scopes[c].kind {
                ScopeKind::Block { name } => name.clone(),
                _ => "[…]".to_string(),
            };
            items.extend(self.first_node[c].map(|i| (i, name)));
        }
        items.sort();
        let mut runs: Vec<(String, usize)> = Vec::new();
        for (_, name) in items {
            match runs.last_mut() {
                Some((last, n)) if *last == name => *n += 1,
                _ => runs.push((name, 1)),
            }
        }
        let mut parts: Vec<String> = runs
            .iter()
            .take(MAX_RUNS)
            .map(|(name, n)| {
                if *n == 1 {
                    name.clone()
                } else {
                    format!("{name} × {n}")
                }
            })
            .collect();
        if runs.len() > MAX_RUNS {
            parts.push("…".to_string());
        }
        parts.join(" → ")
    }

    /// The label of a drawn cluster: its path, and the block's name for an instance.
    pub(super) fn cluster_label(&self, s: ScopeId) -> String {
        let scope = &self.g.scopes[s];
        match &scope.kind {
            ScopeKind::Block { name } => format!("{}: {name}", scope.path),
            _ => scope.path.clone(),
        }
    }

    pub(super) fn is_block(&self, s: ScopeId) -> bool {
        matches!(self.g.scopes[s].kind, ScopeKind::Block { .. })
    }
}

/// Block instances and labelled sequences are clusters; `seq#0` (an unlabelled sequence) is
/// not, nor is the network.
pub(crate) fn is_cluster(g: &Graph, s: ScopeId) -> bool {
    let scope = &g.scopes[s];
    match scope.kind {
        ScopeKind::Network => false,
        ScopeKind::Block { .. } => true,
        ScopeKind::Seq => !scope.path.rsplit('.').next().unwrap_or("").contains('#'),
    }
}
