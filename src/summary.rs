//! The summary `check` prints for a network that checks: its inputs and outputs, and what it
//! is made of. Built from the graph alone; serializable for `--format json|yaml`.

use crate::ir::{DimSpec, Graph, ScopeKind};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub name: String,
    pub inputs: Vec<NamedShape>,
    pub outputs: Vec<NamedShape>,
    /// Number of nodes of each op.
    pub ops: BTreeMap<String, usize>,
    /// Number of instances of each block.
    pub blocks: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
pub struct NamedShape {
    pub name: String,
    pub shape: Vec<String>,
}

impl Summary {
    pub fn new(g: &Graph) -> Summary {
        let mut ops = BTreeMap::new();
        for id in g.node_ids() {
            let op = &g.node(id).op;
            if !matches!(op, crate::ir::Op::Input) {
                *ops.entry(op.name().to_string()).or_insert(0) += 1;
            }
        }
        let mut blocks = BTreeMap::new();
        for s in &g.scopes {
            if let ScopeKind::Block { name } = &s.kind {
                *blocks.entry(name.clone()).or_insert(0) += 1;
            }
        }
        let inputs = g
            .inputs
            .iter()
            .map(|i| NamedShape {
                name: i.name.clone(),
                shape: i
                    .dims
                    .iter()
                    .map(|d| match d {
                        DimSpec::Known(v) => v.to_string(),
                        DimSpec::Sym(s) => s.clone(),
                    })
                    .collect(),
            })
            .collect();
        let outputs = g
            .outputs
            .iter()
            .map(|o| NamedShape {
                name: o.name.clone(),
                shape: Vec::new(),
            })
            .collect();
        Summary {
            name: g.name.clone(),
            inputs,
            outputs,
            ops,
            blocks,
        }
    }

    pub fn to_table(&self) -> String {
        let mut out = format!("network {}\n", self.name);
        for i in &self.inputs {
            out.push_str(&format!("  input  {}: [{}]\n", i.name, i.shape.join(", ")));
        }
        for o in &self.outputs {
            out.push_str(&format!("  output {}\n", o.name));
        }
        let n_nodes: usize = self.ops.values().sum();
        out.push_str(&format!("  {n_nodes} ops:"));
        for (op, n) in &self.ops {
            out.push_str(&format!(" {op} {n},"));
        }
        out.pop();
        out.push('\n');
        if !self.blocks.is_empty() {
            out.push_str("  blocks:");
            for (b, n) in &self.blocks {
                out.push_str(&format!(" {b} x{n},"));
            }
            out.pop();
            out.push('\n');
        }
        out
    }
}
