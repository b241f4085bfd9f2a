//! Signal propagation (Brock, De and Smith 2021, "Characterizing signal propagation to close the
//! performance gap in unnormalized ResNets"): run a checked network once and record, at the
//! output of every block and on both operands of every residual add, the average channel
//! squared mean and variance of the activation ([`stats`]). Where to measure is [`sites()`]; the
//! plain counterpart of a network (shortcuts removed) is [`plain`]; the picture is [`plot`].
//!
//! The interpreter fuses batchnorm and ReLU into the ops before them; the nodes measured here
//! are planned to keep their own values (`interp::plan::plan_keeping`), and read while the
//! network runs (`interp::run_observed`), so no activation is kept beyond its last use.

pub mod plain;
pub mod plot;
pub mod sites;
pub mod stats;

use crate::interp::{self, RunOptions, plan, weights::Weights};
use crate::ir::{Graph, NodeId};
use crate::shape::Shapes;
use crate::span::Source;
use ndarray::ArrayD;
use serde::Serialize;
pub use sites::{Site, sites};
pub use stats::{Stats, channel_stats};

/// How to analyze.
#[derive(Copy, Clone, Debug)]
pub struct Options {
    /// Measure the plain network: every residual add's shortcut removed ([`plain::to_plain`]).
    pub plain: bool,
    pub run: RunOptions,
}

/// The measurements of one run (the JSON/YAML document's body; schema in README.md).
#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    pub network: String,
    pub plain: bool,
    pub input: InputStats,
    pub blocks: Vec<BlockStats>,
}

/// The statistics of the network's (first) input.
#[derive(Clone, Debug, Serialize)]
pub struct InputStats {
    pub name: String,
    pub shape: Vec<usize>,
    pub mean_sq: f64,
    pub var: f64,
}

/// One row: a block instance's output, and its residual add's operands.
#[derive(Clone, Debug, Serialize)]
pub struct BlockStats {
    pub path: String,
    pub block: String,
    /// The block's stage: its path without the last segment (`layer2` for `layer2.0`).
    pub stage: String,
    /// 1 for the first block, in forward order.
    pub depth: usize,
    pub mean_sq: f64,
    pub var: f64,
    /// The residual branch's average channel variance (`None` for a block without a residual
    /// add).
    pub residual_var: Option<f64>,
    /// `identity`, `projection` or `parameter-free`; `None` without a shortcut (no residual
    /// add, or the plain network).
    pub shortcut: Option<&'static str>,
    pub residual_mean_sq: Option<f64>,
    pub shortcut_mean_sq: Option<f64>,
    pub shortcut_var: Option<f64>,
}

/// The name a shortcut kind has in reports.
pub fn kind_name(kind: crate::export::shortcut::Kind) -> &'static str {
    use crate::export::shortcut::Kind;
    match kind {
        Kind::Identity => "identity",
        Kind::Projection => "projection",
        Kind::ParamFree => "parameter-free",
    }
}

/// Run `g` (checked, with `shapes`) once on `inputs` with `weights` (validated for `g`) and
/// measure every block. With `opts.plain` the plain network runs instead, on the same weights.
///
/// # Shapes
/// The inputs have the declared shapes (a symbolic batch binds to theirs); the caller checks.
pub fn analyze(
    source: &Source,
    g: &Graph,
    shapes: &Shapes,
    weights: Weights,
    inputs: Vec<ArrayD<f32>>,
    opts: Options,
) -> Analysis {
    let mut rows = sites(g);
    let plain;
    let plain_shapes;
    let (graph, shapes) = if opts.plain {
        plain = plain::to_plain(g);
        rows = moved_to_plain(rows, &plain);
        plain_shapes = crate::shape::infer(&plain.graph, source).0;
        (&plain.graph, &plain_shapes)
    } else {
        (g, shapes)
    };
    let mut keep: Vec<NodeId> = Vec::new();
    for r in &rows {
        keep.push(r.output);
        if let Some(a) = &r.add {
            keep.extend([a.residual].into_iter().chain(a.shortcut));
        }
    }
    let mut wanted = vec![false; graph.dag.node_count()];
    for k in &keep {
        wanted[k.index()] = true;
    }
    let mut seen: Vec<Option<Stats>> = vec![None; wanted.len()];
    let mut observe = |node: NodeId, x: &ArrayD<f32>| {
        if wanted[node.index()] {
            seen[node.index()] = Some(channel_stats(x));
        }
    };
    let input = input_stats(graph, &inputs);
    // An identity shortcut may be a network input, which no step computes.
    for (decl, x) in graph.inputs.iter().zip(&inputs) {
        observe(decl.node, x);
    }
    let program = plan::plan_keeping(
        graph,
        shapes,
        weights,
        &keep,
        plan::winograd_wanted(),
        crate::machine::simd::Isa::configured(),
    );
    interp::run_observed(&program, inputs, opts.run, &mut observe);
    let at = |n: NodeId| seen[n.index()].expect("every kept node is a step's output");
    let blocks = rows
        .iter()
        .enumerate()
        .map(|(i, r)| block_stats(r, i + 1, &at))
        .collect();
    Analysis {
        network: g.name.clone(),
        plain: opts.plain,
        input,
        blocks,
    }
}

/// The rows of the residual network, on the nodes of its plain counterpart (without shortcut).
fn moved_to_plain(rows: Vec<Site>, plain: &plain::Plain) -> Vec<Site> {
    let moved = |n: NodeId| plain.map[n.index()];
    rows.into_iter()
        .filter_map(|mut r| {
            r.output = moved(r.output)?;
            if let Some(a) = &mut r.add {
                a.residual = moved(a.residual)?;
                a.shortcut = None;
            }
            Some(r)
        })
        .collect()
}

/// The statistics of the first network input.
fn input_stats(g: &Graph, inputs: &[ArrayD<f32>]) -> InputStats {
    match (g.inputs.first(), inputs.first()) {
        (Some(decl), Some(x)) => {
            let s = channel_stats(x);
            InputStats {
                name: decl.name.clone(),
                shape: x.shape().to_vec(),
                mean_sq: s.mean_sq,
                var: s.var,
            }
        }
        _ => InputStats {
            name: String::new(),
            shape: Vec::new(),
            mean_sq: 0.0,
            var: 0.0,
        },
    }
}

/// One row's figures, from the statistics recorded at its nodes.
fn block_stats(r: &Site, depth: usize, at: &dyn Fn(NodeId) -> Stats) -> BlockStats {
    let out = at(r.output);
    let residual = r.add.as_ref().map(|a| at(a.residual));
    let shortcut = r.add.as_ref().and_then(|a| a.shortcut.map(at));
    BlockStats {
        path: r.path.clone(),
        block: r.block.clone(),
        stage: sites::stage(&r.path).to_string(),
        depth,
        mean_sq: out.mean_sq,
        var: out.var,
        residual_var: residual.map(|s| s.var),
        shortcut: r
            .add
            .as_ref()
            .filter(|a| a.shortcut.is_some())
            .map(|a| kind_name(a.kind)),
        residual_mean_sq: residual.map(|s| s.mean_sq),
        shortcut_mean_sq: shortcut.map(|s| s.mean_sq),
        shortcut_var: shortcut.map(|s| s.var),
    }
}
