//! The per-layer summary `check` prints for a network that checks: every op with its path,
//! output shape, parameters and MACs, and the totals. Serializable for `--format json|yaml`
//! (the schema is documented in README.md).

use crate::ir::{Graph, Op, ScopeKind};
use crate::shape::{Shape, Shapes, cost};
use serde::Serialize;
use std::collections::BTreeMap;

/// What the table's footer says about how things are counted.
pub const CONVENTION: &str = "params: learnable tensors (conv/linear weights and biases, batchnorm weight and bias; not running statistics); MACs: multiply-accumulates of conv and linear layers for one sample";

#[derive(Debug, Serialize)]
pub struct Summary<'g> {
    pub name: &'g str,
    pub inputs: Vec<NamedShape<'g>>,
    pub outputs: Vec<NamedShape<'g>>,
    /// `None` when a size needed to count is symbolic.
    pub params: Option<u64>,
    pub macs: Option<u64>,
    pub layers: Vec<Layer<'g>>,
    /// Number of nodes of each op.
    pub ops: BTreeMap<&'static str, usize>,
    /// Number of instances of each block.
    pub blocks: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
pub struct NamedShape<'g> {
    pub name: &'g str,
    pub shape: &'g Shape,
}

#[derive(Debug, Serialize)]
pub struct Layer<'g> {
    pub path: &'g str,
    pub op: &'static str,
    pub shape: &'g Shape,
    pub params: Option<u64>,
    pub macs: Option<u64>,
}

impl<'g> Summary<'g> {
    /// Summarize a checked graph (every node has a shape).
    pub fn new(g: &'g Graph, shapes: &'g Shapes) -> Option<Summary<'g>> {
        let mut layers = Vec::with_capacity(g.dag.node_count());
        for id in g.node_ids() {
            let node = g.node(id);
            if matches!(node.op, Op::Input) {
                continue;
            }
            let out = shapes.get(id)?;
            let input = shapes.get(g.first_operand(id)?)?;
            layers.push(Layer {
                path: &node.path,
                op: node.op.name(),
                params: cost::params(&node.op, input),
                macs: cost::macs(&node.op, input, out),
                shape: out,
            });
        }
        let mut ops = BTreeMap::new();
        for l in &layers {
            *ops.entry(l.op).or_insert(0) += 1;
        }
        let mut blocks = BTreeMap::new();
        for s in &g.scopes {
            if let ScopeKind::Block { name } = &s.kind {
                *blocks.entry(name.clone()).or_insert(0) += 1;
            }
        }
        let named = |name: &'g str, id| {
            Some(NamedShape {
                name,
                shape: shapes.get(id)?,
            })
        };
        Some(Summary {
            name: &g.name,
            inputs: g
                .inputs
                .iter()
                .map(|i| named(&i.name, i.node))
                .collect::<Option<_>>()?,
            outputs: g
                .outputs
                .iter()
                .map(|o| named(&o.name, o.node))
                .collect::<Option<_>>()?,
            params: total(layers.iter().map(|l| l.params)),
            macs: total(layers.iter().map(|l| l.macs)),
            layers,
            ops,
            blocks,
        })
    }

    /// Why a total is unknown: a per-sample size it needs is symbolic, or else the count
    /// does not fit in 64 bits.
    fn unknown_reason(&self) -> &'static str {
        let symbolic = |s: &Shape| s.0.iter().skip(1).any(|d| d.known().is_none());
        let any_symbolic = self.inputs.iter().any(|i| symbolic(i.shape))
            || self.layers.iter().any(|l| symbolic(l.shape));
        if any_symbolic {
            "unknown (a size it needs is symbolic)"
        } else {
            "unknown (the count overflows 64 bits)"
        }
    }

    /// The human table.
    pub fn to_table(&self) -> String {
        let rows: Vec<[String; 5]> = self
            .layers
            .iter()
            .map(|l| {
                [
                    l.path.to_string(),
                    l.op.to_string(),
                    l.shape.to_string(),
                    cell(l.params),
                    cell(l.macs),
                ]
            })
            .collect();
        let header = ["layer", "op", "output shape", "params", "MACs"];
        let mut width = header.map(str::len);
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: [&str; 5]| {
            format!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}\n",
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                cells[4],
                w0 = width[0],
                w1 = width[1],
                w2 = width[2],
                w3 = width[3],
                w4 = width[4]
            )
        };
        let mut out = format!("network {}\n", self.name);
        for i in &self.inputs {
            out.push_str(&format!("  input  {}: {}\n", i.name, i.shape));
        }
        for o in &self.outputs {
            out.push_str(&format!("  output {}: {}\n", o.name, o.shape));
        }
        out.push('\n');
        out.push_str(&line(header));
        let total_width: usize = width.iter().sum::<usize>() + 8;
        out.push_str(&"-".repeat(total_width));
        out.push('\n');
        for r in &rows {
            out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
        }
        out.push_str(&"-".repeat(total_width));
        out.push('\n');
        let unknown = self.unknown_reason();
        match self.params {
            Some(p) => out.push_str(&format!("total params: {}\n", group(p))),
            None => out.push_str(&format!("total params: {unknown}\n")),
        }
        match self.macs {
            Some(m) => out.push_str(&format!(
                "total MACs:   {} ({:.3} G)\n",
                group(m),
                m as f64 / 1e9
            )),
            None => out.push_str(&format!("total MACs:   {unknown}\n")),
        }
        let ops: Vec<String> = self
            .ops
            .iter()
            .map(|(op, n)| format!("{op} x{n}"))
            .collect();
        out.push_str(&format!("ops: {}\n", ops.join(", ")));
        if !self.blocks.is_empty() {
            let b: Vec<String> = self
                .blocks
                .iter()
                .map(|(b, n)| format!("{b} x{n}"))
                .collect();
            out.push_str(&format!("blocks: {}\n", b.join(", ")));
        }
        out.push_str(&format!("({CONVENTION})\n"));
        out
    }
}

/// The sum, or `None` if any term is unknown.
fn total(mut terms: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    terms.try_fold(0u64, |acc, t| Some(acc.saturating_add(t?)))
}

/// A count for the table: `-` for zero, `?` for unknown.
fn cell(v: Option<u64>) -> String {
    match v {
        Some(0) => "-".into(),
        Some(v) => group(v),
        None => "?".into(),
    }
}

/// 11689512 -> "11,689,512".
pub fn group(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
