//! Planning: a checked graph and its weights become a [`Program`], a flat list of kernel
//! calls with their weights prepared (batchnorm folded into the preceding conv, ReLU fused into
//! conv, batchnorm and add) and, for every value, the step after which it is freed.
//!
//! Output sizes are not computed here: the kernels derive them from the same formulas as
//! `check`, and the program only runs on a graph that checked.

use super::kernels::{Conv2dParams, Pool2dParams};
use super::weights::Weights;
use crate::ir::{Graph, NodeId, Op};
use crate::shape::Shapes;
use ndarray::{Array1, Array2, Array4, Ix1, Ix2, Ix4};

/// PyTorch's default batchnorm epsilon.
pub const BN_EPS: f32 = 1e-5;

/// One kernel call, with its prepared weights.
#[derive(Debug)]
pub enum Kernel {
    Conv {
        w: Array4<f32>,
        b: Option<Array1<f32>>,
        p: Conv2dParams,
        relu: bool,
    },
    /// A batchnorm not folded into a conv: `x * scale + shift` per channel.
    Affine {
        scale: Array1<f32>,
        shift: Array1<f32>,
        relu: bool,
    },
    Linear {
        w: Array2<f32>,
        b: Option<Array1<f32>>,
    },
    Relu,
    Sigmoid,
    Tanh,
    LeakyRelu(f32),
    Softmax,
    MaxPool(Pool2dParams),
    AvgPool(Pool2dParams),
    GlobalAvgPool,
    Flatten,
    Add {
        relu: bool,
    },
    Mul,
    Concat,
    Identity,
    ShortcutA {
        stride: usize,
        before: usize,
        after: usize,
    },
}

#[derive(Debug)]
pub struct Step {
    pub kernel: Kernel,
    /// Value slots read, in operand order.
    pub inputs: Vec<usize>,
    pub output: usize,
    /// Slots no later step reads: freed after this step.
    pub free: Vec<usize>,
    /// The graph node whose value this step produces (for messages and observers).
    pub node: NodeId,
}

/// A runnable network.
#[derive(Debug)]
pub struct Program {
    pub steps: Vec<Step>,
    pub n_slots: usize,
    /// (name, slot) of each network input, in declaration order.
    pub inputs: Vec<(String, usize)>,
    /// (name, slot) of each output.
    pub outputs: Vec<(String, usize)>,
}

/// Build the program of a checked network. `weights` holds every parameter the graph needs
/// (validated).
pub fn plan(net: &super::Network, weights: Weights) -> Program {
    plan_keeping(net.graph(), net.shapes(), weights, &[])
}

/// Build the program so that each node of `keep` is computed by a step of its own (its value
/// is a step's output, `Step::node`, rather than fused away), for a caller that observes those
/// values while the program runs ([`run_observed`](super::run_observed)). Only for a graph
/// that checked (crate-internal: outside, [`plan`] takes a checked network).
pub(crate) fn plan_keeping(
    g: &Graph,
    shapes: &Shapes,
    mut weights: Weights,
    keep: &[NodeId],
) -> Program {
    let n = g.dag.node_count();
    // A node whose value must exist (an output, a kept node) is never fused into its consumer.
    let mut kept = vec![false; n];
    for id in g.outputs.iter().map(|o| o.node).chain(keep.iter().copied()) {
        kept[id.index()] = true;
    }
    let is_output = |id: NodeId| kept[id.index()];
    // The node that will hold each node's value: itself, or the fused node downstream.
    let mut slot_of: Vec<Option<usize>> = vec![None; n];
    let mut absorbed = vec![false; n];
    let mut steps = Vec::new();
    let mut n_slots = 0;
    let mut new_slot = || {
        n_slots += 1;
        n_slots - 1
    };
    // The only consumer of a node, if it has exactly one and is not itself an output.
    let sole_consumer = |id: NodeId| {
        let mut it = g.consumers(id);
        let first = it.next()?;
        (it.next().is_none() && !is_output(id)).then_some(first)
    };
    let mut inputs = Vec::new();
    for id in g.node_ids() {
        if absorbed[id.index()] {
            continue;
        }
        let node = g.node(id);
        if let Op::Input = node.op {
            let slot = new_slot();
            slot_of[id.index()] = Some(slot);
            inputs.push((node.path.clone(), slot));
            continue;
        }
        let operand_slots: Vec<usize> = g
            .operands(id)
            .iter()
            .map(|o| slot_of[o.index()].expect("operands are planned before their consumers"))
            .collect();
        // Fuse: conv -> batchnorm -> relu, batchnorm -> relu, add -> relu.
        let mut last = id;
        let kernel = match &node.op {
            Op::Conv(c) => {
                let mut w = take4(&mut weights, &format!("{}.weight", node.path));
                let mut b = c
                    .bias
                    .then(|| take1(&mut weights, &format!("{}.bias", node.path)));
                if let Some(bn) =
                    sole_consumer(id).filter(|&s| matches!(g.node(s).op, Op::BatchNorm(_)))
                {
                    let (gamma, beta, mean, var) = take_bn(&mut weights, &g.node(bn).path);
                    let (w2, b2) = super::kernels::fold_batchnorm(
                        w.view(),
                        b.as_ref().map(|b| b.view()),
                        gamma.view(),
                        beta.view(),
                        mean.view(),
                        var.view(),
                        BN_EPS,
                    );
                    (w, b) = (w2, Some(b2));
                    absorbed[bn.index()] = true;
                    last = bn;
                }
                let relu = fuse_relu(g, &mut absorbed, &mut last, &sole_consumer);
                Kernel::Conv {
                    w,
                    b,
                    p: Conv2dParams {
                        stride: [c.stride as usize; 2],
                        pad: [c.pad as usize; 2],
                        dilation: [c.dilation as usize; 2],
                        groups: c.groups as usize,
                    },
                    relu,
                }
            }
            Op::BatchNorm(_) => {
                let (gamma, beta, mean, var) = take_bn(&mut weights, &node.path);
                let scale: Array1<f32> = gamma
                    .iter()
                    .zip(var.iter())
                    .map(|(g, v)| g / (v + BN_EPS).sqrt())
                    .collect();
                let shift: Array1<f32> = beta
                    .iter()
                    .zip(mean.iter())
                    .zip(scale.iter())
                    .map(|((b, m), s)| b - m * s)
                    .collect();
                let relu = fuse_relu(g, &mut absorbed, &mut last, &sole_consumer);
                Kernel::Affine { scale, shift, relu }
            }
            Op::Linear(l) => Kernel::Linear {
                w: take2(&mut weights, &format!("{}.weight", node.path)),
                b: l.bias
                    .then(|| take1(&mut weights, &format!("{}.bias", node.path))),
            },
            Op::Add => Kernel::Add {
                relu: fuse_relu(g, &mut absorbed, &mut last, &sole_consumer),
            },
            Op::Relu => Kernel::Relu,
            Op::Sigmoid => Kernel::Sigmoid,
            Op::Tanh => Kernel::Tanh,
            Op::LeakyRelu { slope } => Kernel::LeakyRelu(*slope as f32),
            Op::Softmax => Kernel::Softmax,
            Op::MaxPool(p) => Kernel::MaxPool(pool_params(p)),
            Op::AvgPool(p) => Kernel::AvgPool(pool_params(p)),
            Op::GlobalAvgPool => Kernel::GlobalAvgPool,
            Op::Flatten => Kernel::Flatten,
            Op::Mul => Kernel::Mul,
            Op::Concat => Kernel::Concat,
            Op::Identity | Op::Dropout { .. } => Kernel::Identity,
            Op::ShortcutA(s) => {
                let c_in = g
                    .first_operand(id)
                    .and_then(|i| shapes.get(i))
                    .and_then(|s| s.dim(1).known())
                    .unwrap_or(s.c_out);
                let pad = ((s.c_out - c_in) / 2) as usize;
                Kernel::ShortcutA {
                    stride: s.stride as usize,
                    before: pad,
                    after: pad,
                }
            }
            Op::Input => unreachable!("handled above"),
        };
        let slot = new_slot();
        slot_of[id.index()] = Some(slot);
        slot_of[last.index()] = Some(slot);
        steps.push(Step {
            kernel,
            inputs: operand_slots,
            output: slot,
            free: Vec::new(),
            node: last,
        });
    }
    let outputs: Vec<(String, usize)> = g
        .outputs
        .iter()
        .map(|o| {
            (
                o.name.clone(),
                slot_of[o.node.index()].expect("outputs are planned"),
            )
        })
        .collect();
    schedule_frees(&mut steps, n_slots, &outputs);
    Program {
        steps,
        n_slots,
        inputs,
        outputs,
    }
}

/// If `last`'s sole consumer is a ReLU, absorb it and move `last` to it.
fn fuse_relu(
    g: &Graph,
    absorbed: &mut [bool],
    last: &mut NodeId,
    sole_consumer: &dyn Fn(NodeId) -> Option<NodeId>,
) -> bool {
    match sole_consumer(*last).filter(|&s| g.node(s).op == Op::Relu) {
        Some(r) => {
            absorbed[r.index()] = true;
            *last = r;
            true
        }
        None => false,
    }
}

/// Free each slot right after the last step that reads it (outputs are kept).
fn schedule_frees(steps: &mut [Step], n_slots: usize, outputs: &[(String, usize)]) {
    let mut last_read: Vec<Option<usize>> = vec![None; n_slots];
    for (i, s) in steps.iter().enumerate() {
        for &slot in &s.inputs {
            last_read[slot] = Some(i);
        }
    }
    for (_, slot) in outputs {
        last_read[*slot] = None;
    }
    for (slot, last) in last_read.iter().enumerate() {
        if let Some(i) = last {
            steps[*i].free.push(slot);
        }
    }
}

fn pool_params(p: &crate::ir::op::Pool) -> Pool2dParams {
    Pool2dParams {
        kernel: [p.kernel as usize; 2],
        stride: [p.stride as usize; 2],
        pad: [p.pad as usize; 2],
        ceil_mode: p.ceil_mode,
        count_include_pad: p.count_include_pad,
    }
}

fn take(weights: &mut Weights, key: &str) -> ndarray::ArrayD<f32> {
    weights
        .take(key)
        .unwrap_or_else(|| panic!("validated weights lack `{key}`"))
}

fn take1(weights: &mut Weights, key: &str) -> Array1<f32> {
    take(weights, key)
        .into_dimensionality::<Ix1>()
        .expect("validated shape")
}

fn take2(weights: &mut Weights, key: &str) -> Array2<f32> {
    take(weights, key)
        .into_dimensionality::<Ix2>()
        .expect("validated shape")
}

fn take4(weights: &mut Weights, key: &str) -> Array4<f32> {
    take(weights, key)
        .into_dimensionality::<Ix4>()
        .expect("validated shape")
}

fn take_bn(
    weights: &mut Weights,
    path: &str,
) -> (Array1<f32>, Array1<f32>, Array1<f32>, Array1<f32>) {
    let t = |w: &mut Weights, s: &str| take1(w, &format!("{path}.{s}"));
    (
        t(weights, "weight"),
        t(weights, "bias"),
        t(weights, "running_mean"),
        t(weights, "running_var"),
    )
}

/// An upper bound of the bytes a run needs for a batch of `batch`, before anything is
/// allocated: the activations alive at once (each freed after its last reader, without
/// counting fusion, which only lowers it), the largest scratch buffer (a conv's im2col
/// buffer, a pool's phase buffer), and the weights.
pub fn estimate_bytes(g: &Graph, shapes: &Shapes, batch: u64) -> u64 {
    let elems = |id: NodeId| {
        shapes
            .get(id)
            .and_then(|s| s.concrete(batch))
            .map_or(0, |d| d.iter().fold(1u64, |a, &x| a.saturating_mul(x)))
    };
    let n = g.dag.node_count();
    let mut last_reader = vec![0usize; n];
    for id in g.node_ids() {
        for o in g.operands(id) {
            last_reader[o.index()] = id.index();
        }
    }
    for o in &g.outputs {
        last_reader[o.node.index()] = usize::MAX;
    }
    let mut dying: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (v, &r) in last_reader.iter().enumerate() {
        if r != usize::MAX && r > v {
            dying[r].push(v);
        }
    }
    let (mut live, mut peak, mut weights, mut im2col) = (0u64, 0u64, 0u64, 0u64);
    for id in g.node_ids() {
        live = live.saturating_add(elems(id));
        peak = peak.max(live);
        for &v in &dying[id.index()] {
            live = live.saturating_sub(elems(NodeId::new(v)));
        }
        let node = g.node(id);
        if let (Some(input), Some(out)) = (
            g.first_operand(id).and_then(|i| shapes.get(i)),
            shapes.get(id),
        ) {
            for t in crate::shape::cost::param_tensors(&node.op, input) {
                weights = weights.saturating_add(
                    t.shape
                        .iter()
                        .fold(1u64, |a, &x| a.saturating_mul(x as u64)),
                );
            }
            // A pool's phase buffer: at most two input planes (`kernels::pool`).
            if let (Op::MaxPool(_) | Op::AvgPool(_), Some(d)) = (&node.op, input.concrete(1)) {
                im2col = im2col.max(d[2].saturating_mul(d[3]).saturating_mul(2));
            }
            if let (Op::Conv(c), Some(d)) = (&node.op, out.concrete(1)) {
                let c_in = input.dim(1).known().unwrap_or(0) / c.groups.max(1);
                im2col = im2col.max(
                    c_in.saturating_mul(c.kernel * c.kernel)
                        .saturating_mul(d[2].saturating_mul(d[3])),
                );
            }
        }
    }
    peak.saturating_add(weights)
        .saturating_add(im2col)
        .saturating_mul(4)
}
