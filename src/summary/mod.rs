//! The per-layer summary `check` prints for a network that checks: every op with its path,
//! output shape, trainable and non-trainable parameters, memory, MACs, receptive field and
//! effective stride; the same totals for every block instance and labelled sequence
//! (`groups`); and the network's totals. Serializable for `--format json|yaml` (the schema is
//! documented in README.md); `table` prints it grouped as `graph --depth` draws it.

mod field;
mod groups;
mod table;

pub use field::Field;
pub use groups::Group;
pub use table::group;

use crate::ir::{Graph, Op, ScopeKind};
use crate::shape::sizes::{self, AxisSizes, SizeRange};
use crate::shape::{Shape, Shapes, cost};
use crate::span::Source;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;

/// What the table's footer says about how things are counted.
pub const CONVENTION: &str = "params: trainable tensors (conv/linear weights and biases, batchnorm weight and bias); non-trainable: batchnorm running mean and variance; MB: float32, 10^6 bytes, activations = each op's output for one sample; MACs: multiply-accumulates of conv and linear layers for one sample; RF, stride: receptive field and effective stride along H in input rows";

/// The depth the table shows unless asked: stages, and the block instances in them.
pub const DEFAULT_DEPTH: usize = 1;

#[derive(Debug, Serialize)]
pub struct Summary<'g> {
    pub name: &'g str,
    pub inputs: Vec<NamedShape<'g>>,
    pub outputs: Vec<NamedShape<'g>>,
    /// Trainable parameters; `None` when a size needed to count is symbolic.
    pub params: Option<u64>,
    pub non_trainable_params: Option<u64>,
    /// Every tensor (trainable or not), float32.
    pub param_mb: Option<Megabytes>,
    /// Every op's output for one sample, float32.
    pub activation_mb: Option<Megabytes>,
    pub macs: Option<u64>,
    pub layers: Vec<Layer<'g>>,
    /// Every block instance and labelled sequence, with totals, in source order.
    pub groups: Vec<Group<'g>>,
    /// Number of nodes of each op.
    pub ops: BTreeMap<&'static str, usize>,
    /// Number of instances of each block.
    pub blocks: BTreeMap<String, usize>,
    /// The range of sizes analysed for `valid_sizes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sizes_range: Option<SizeRange>,
    /// The valid input sizes of each spatial axis (`--sizes`, or by default when an input's H
    /// or W is symbolic).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_sizes: Option<Vec<AxisSizes>>,
    /// Why the valid sizes were not analysed (too much work).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_sizes_skipped: Option<String>,
    /// How deep the human table goes (not serialized: JSON lists every layer and group).
    #[serde(skip)]
    pub depth: usize,
    #[serde(skip)]
    graph: &'g Graph,
}

/// What a summary shows beyond the layers: the table's depth, and the valid input sizes over
/// `sizes` (`None`: over [`sizes::DEFAULT_RANGE`] when an input's H or W is symbolic, else
/// not at all).
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub sizes: Option<SizeRange>,
    /// `None`: [`DEFAULT_DEPTH`].
    pub depth: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct NamedShape<'g> {
    pub name: &'g str,
    pub shape: &'g Shape,
}

/// A size in bytes, shown and serialized in MB (10^6 bytes).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct Megabytes(pub u64);

impl Megabytes {
    pub fn mb(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

impl Serialize for Megabytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.mb())
    }
}

/// The counts of one layer or group.
#[derive(Copy, Clone, Debug, Default, Serialize)]
pub struct Counts {
    /// Trainable parameters.
    pub params: Option<u64>,
    pub non_trainable: Option<u64>,
    pub param_mb: Option<Megabytes>,
    pub activation_mb: Option<Megabytes>,
    pub macs: Option<u64>,
}

impl Counts {
    /// The sum, each field unknown if either is.
    fn add(self, o: Counts) -> Counts {
        let sum = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_add(b?));
        Counts {
            params: sum(self.params, o.params),
            non_trainable: sum(self.non_trainable, o.non_trainable),
            param_mb: sum(self.param_mb.map(|m| m.0), o.param_mb.map(|m| m.0)).map(Megabytes),
            activation_mb: sum(
                self.activation_mb.map(|m| m.0),
                o.activation_mb.map(|m| m.0),
            )
            .map(Megabytes),
            macs: sum(self.macs, o.macs),
        }
    }

    /// Nothing counted yet: the start of a sum.
    fn zero() -> Counts {
        Counts {
            params: Some(0),
            non_trainable: Some(0),
            param_mb: Some(Megabytes(0)),
            activation_mb: Some(Megabytes(0)),
            macs: Some(0),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Layer<'g> {
    pub path: &'g str,
    pub op: &'static str,
    pub shape: &'g Shape,
    /// Trainable parameters.
    pub params: Option<u64>,
    pub non_trainable: Option<u64>,
    pub param_mb: Option<Megabytes>,
    pub activation_mb: Option<Megabytes>,
    pub macs: Option<u64>,
    /// Receptive field `[h, w]` in input rows and columns (`None` after a global pool or
    /// flatten).
    pub receptive_field: Option<[u64; 2]>,
    /// Effective stride `[h, w]`: input rows and columns between neighbouring positions.
    pub jump: Option<[u64; 2]>,
}

impl Layer<'_> {
    /// The layer's counts, as a group's are kept.
    pub fn counts(&self) -> Counts {
        Counts {
            params: self.params,
            non_trainable: self.non_trainable,
            param_mb: self.param_mb,
            activation_mb: self.activation_mb,
            macs: self.macs,
        }
    }
}

/// Bytes of float32 elements of a shape, a symbolic batch counted as 1.
fn float32_bytes(shape: &Shape) -> Option<Megabytes> {
    let dims = shape.concrete(1)?;
    let n = dims.iter().try_fold(4u64, |acc, &d| acc.checked_mul(d))?;
    Some(Megabytes(n))
}

impl<'g> Summary<'g> {
    /// Summarize a checked graph (every node has a shape).
    pub fn new(g: &'g Graph, shapes: &'g Shapes) -> Option<Summary<'g>> {
        let fields = field::fields(g, shapes);
        let mut layers = Vec::with_capacity(g.dag.node_count());
        let mut nodes = Vec::with_capacity(g.dag.node_count());
        for id in g.node_ids() {
            let node = g.node(id);
            if matches!(node.op, Op::Input) {
                continue;
            }
            let out = shapes.get(id)?;
            let input = shapes.get(g.first_operand(id)?)?;
            let counts = cost::counts(&node.op, input);
            let (params, non_trainable) = (counts.map(|c| c.0), counts.map(|c| c.1));
            let field = fields.get(id.index()).copied().flatten();
            layers.push(Layer {
                path: &node.path,
                op: node.op.name(),
                params,
                non_trainable,
                param_mb: params
                    .zip(non_trainable)
                    .map(|(a, b)| Megabytes(a.saturating_add(b).saturating_mul(4))),
                activation_mb: float32_bytes(out),
                macs: cost::macs(&node.op, input, out),
                shape: out,
                receptive_field: field.map(|f| f.size),
                jump: field.map(|f| f.jump),
            });
            nodes.push(id);
        }
        let total = layers
            .iter()
            .fold(Counts::zero(), |acc, l| acc.add(l.counts()));
        let groups = groups::groups(g, shapes, &nodes, &layers, &fields);
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
            params: total.params,
            non_trainable_params: total.non_trainable,
            param_mb: total.param_mb,
            activation_mb: total.activation_mb,
            macs: total.macs,
            layers,
            groups,
            ops,
            blocks,
            sizes_range: None,
            valid_sizes: None,
            valid_sizes_skipped: None,
            depth: DEFAULT_DEPTH,
            graph: g,
        })
    }

    /// Add what `opts` asks for beyond the layers.
    pub fn with(mut self, source: &Source, opts: &Options) -> Summary<'g> {
        let g = self.graph;
        self.depth = opts.depth.unwrap_or(DEFAULT_DEPTH);
        let range = match opts.sizes {
            Some(r) => Some(r),
            None => sizes::has_symbolic_size(g).then_some(sizes::DEFAULT_RANGE),
        };
        if let Some(range) = range {
            self.sizes_range = Some(range);
            match sizes::valid_sizes(source, g, range) {
                Ok(v) => self.valid_sizes = Some(v),
                Err(e) => self.valid_sizes_skipped = Some(e.to_string()),
            }
        }
        self
    }

    /// Why a total is unknown: a per-sample size it needs is symbolic, or else the count
    /// does not fit in 64 bits.
    pub(crate) fn unknown_reason(&self) -> &'static str {
        let symbolic = |s: &Shape| s.0.iter().skip(1).any(|d| d.known().is_none());
        let any_symbolic = self.inputs.iter().any(|i| symbolic(i.shape))
            || self.layers.iter().any(|l| symbolic(l.shape));
        if any_symbolic {
            "unknown (a size it needs is symbolic)"
        } else {
            "unknown (the count overflows 64 bits)"
        }
    }
}
