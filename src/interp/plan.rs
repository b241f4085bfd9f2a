//! Planning: a checked graph and its weights become a [`Program`], a flat list of kernel
//! calls with their weights prepared and, for every value, the step after which it is freed.
//!
//! Every op runs through its registry entry ([`crate::ops::Spec::run`]) with its parameter
//! tensors, except where planning fuses: batchnorm folded into the preceding conv, ReLU fused
//! into conv, batchnorm and add, and a max pool into the GEMM conv before it (ResNet's stem:
//! `conv_gemm::conv2d_packed_maxpool`). Output sizes are not computed here: the kernels
//! derive them from the same formulas as `check`, and the program only runs on a graph that
//! checked.

use super::kernels::{FastConv, batchnorm_scale_shift, conv_depthwise, conv_gemm, conv_winograd};
use super::weights::Weights;
use crate::ir::{Graph, NodeId, Op};
use crate::machine::simd::{Act, Isa, MR};
use crate::shape::Shapes;
use ndarray::{Array1, Array4, ArrayD, Ix1, Ix4};

/// PyTorch's default batchnorm epsilon.
pub const BN_EPS: f32 = crate::ops::BN_EPS;

/// One kernel call, with its prepared weights.
#[derive(Debug)]
pub enum Kernel {
    /// A conv, with a following batchnorm folded in, then a residual add (with `residual`, the
    /// step's second input is added in the conv's output pass), then a ReLU fused (or, into a
    /// GEMM or depthwise conv, a ReLU6).
    Conv {
        conv: FastConv,
        act: Act,
        residual: bool,
        /// A max pool that follows (after the ReLU), fused: the step's output is the pool's.
        pool: Option<super::kernels::Pool2dParams>,
    },
    /// A batchnorm not folded into a conv: `x * scale + shift` per channel.
    Affine {
        scale: Array1<f32>,
        shift: Array1<f32>,
        relu: bool,
    },
    /// The residual add, with a following ReLU fused; written into a dying operand.
    Add { relu: bool },
    /// Any op as its registry entry runs it, with its parameter tensors in state_dict order.
    Op { op: Op, weights: Vec<ArrayD<f32>> },
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
    /// Bytes of the largest value a step computes, per image, when every value's size is known
    /// and every value keeps the inputs' batch axis first (so that images never mix, and a
    /// batch can run a few images at a time: [`super::run_program`]); `None` otherwise.
    pub image_bytes: Option<u64>,
    /// Bytes of each slot's value per image (an input's or a step's output), where
    /// [`Program::image_bytes`] is known; `None` otherwise.
    pub slot_bytes: Option<Vec<u64>>,
    /// The dead values' memory the last run left ([`super::kernels::Spare`]), for the next
    /// run's first convs: without it, every run's convs before the first value dies (on
    /// ResNet-50, its stem and the first bottleneck's) took zeroed memory, a serial pass.
    kept: std::sync::Mutex<super::kernels::Spare>,
}

impl Program {
    /// The dead values' memory the program's last run left, for a run on `inputs`, within the
    /// limits of [`super::kernels::Spare::within`] for this run's largest value (a smaller batch
    /// than the last run's keeps none of its larger buffers; [`estimate_bytes`] counts the
    /// spare as [`super::kernels::SPARE_SHARE`] times the largest value). None, and at most
    /// [`super::kernels::SPARE_BUFFERS`] buffers, where the largest value's size is not
    /// known. Runs side by side share none: the first takes them all.
    pub(crate) fn take_spare(&self, inputs: &[ndarray::ArrayD<f32>]) -> super::kernels::Spare {
        let kept = std::mem::take(
            &mut *self
                .kept
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let batch = inputs.first().and_then(|x| x.shape().first()).copied();
        match (self.image_bytes, batch) {
            (Some(bytes), Some(n)) => {
                let largest = usize::try_from(bytes / 4)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(n);
                let input = inputs.iter().map(|x| x.len()).max().unwrap_or(0);
                kept.within(largest.max(input))
            }
            _ => super::kernels::Spare::default(),
        }
    }

    /// Keeps what a run's `spare` holds at its end for the next run (within its limits, with
    /// what a run side by side may have left meanwhile).
    pub(crate) fn keep_spare(&self, spare: super::kernels::Spare) {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let other = std::mem::replace(&mut *kept, spare);
        kept.absorb(other);
    }

    /// The dead values' memory the program keeps between runs: how many buffers, how many
    /// values they hold together, and how many the largest of them holds.
    pub fn kept_memory(&self) -> (usize, usize, usize) {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (kept.len(), kept.values(), kept.largest())
    }
}

/// Build the program. `weights` holds every parameter the graph needs (validated).
pub(crate) fn plan(g: &Graph, shapes: &Shapes, weights: Weights) -> Program {
    plan_keeping(
        g,
        shapes,
        weights,
        &[],
        winograd_wanted(),
        Isa::configured(),
    )
}

/// Whether 3x3 convs may run as Winograd: yes unless the environment variable
/// `RESNETC_WINOGRAD` is `0`, which forces the direct GEMM conv so that both can be measured
/// (a tuning switch like `RAYON_NUM_THREADS`, read where the program is planned; `2` keeps
/// Winograd's output tiles at 2x2, see [`conv_winograd::Budget`]).
pub fn winograd_wanted() -> bool {
    std::env::var_os("RESNETC_WINOGRAD").is_none_or(|v| v != "0")
}

/// Build the program so that each node of `keep` is computed by a step of its own (its value
/// is a step's output, `Step::node`, rather than fused away), for a caller that observes those
/// values while the program runs ([`run_observed`](super::run_observed)). 3x3 convs run as
/// Winograd where it applies if `winograd`, else all convs as packed GEMMs; the convs are
/// planned for `isa`, the instruction set the program is to run with.
pub(crate) fn plan_keeping(
    g: &Graph,
    shapes: &Shapes,
    mut weights: Weights,
    keep: &[NodeId],
    winograd: bool,
    isa: Isa,
) -> Program {
    let n = g.dag.node_count();
    let mut budget = winograd.then(|| conv_winograd::Budget::for_isa(isa));
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
        let mut operand_slots: Vec<usize> = g
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
                    let eps = bn_eps(&g.node(bn).op);
                    let (w2, b2) = super::kernels::fold_batchnorm(
                        w.view(),
                        b.as_ref().map(|b| b.view()),
                        gamma.view(),
                        beta.view(),
                        mean.view(),
                        var.view(),
                        eps,
                    );
                    (w, b) = (w2, Some(b2));
                    absorbed[bn.index()] = true;
                    last = bn;
                }
                // Fold a residual add whose other operand is already computed.
                let residual = sole_consumer(last)
                    .filter(|&s| g.node(s).op == Op::Add)
                    .and_then(|add| {
                        let ops = g.operands(add);
                        let other = match ops[..] {
                            [a, b] if a == last && b != last => b,
                            [a, b] if b == last && a != last => a,
                            _ => return None,
                        };
                        slot_of[other.index()].map(|slot| (add, slot))
                    });
                if let Some((add, slot)) = residual {
                    operand_slots.push(slot);
                    absorbed[add.index()] = true;
                    last = add;
                }
                let relu = fuse_relu(g, &mut absorbed, &mut last, &sole_consumer);
                let conv = FastConv::new(
                    w.view(),
                    b.as_ref().map(|b| b.view()),
                    c.params(),
                    budget.as_mut(),
                    out_hw(shapes, id),
                    isa,
                );
                // A ReLU6 into a conv whose output pass applies it (MobileNetV2's convs): the
                // step writes the capped values, and no step reads and writes them again.
                let act = match sole_consumer(last) {
                    Some(r)
                        if !relu
                            && g.node(r).op == Op::Relu6
                            && matches!(conv, FastConv::Gemm(_) | FastConv::Depthwise(_)) =>
                    {
                        absorbed[r.index()] = true;
                        last = r;
                        Act::RELU6
                    }
                    _ => Act::from(relu),
                };
                // Fuse a max pool that follows a GEMM conv with no residual (ResNet's stem):
                // its tasks pool the conv's rows as they compute them.
                let pool = match sole_consumer(last).map(|s| (s, &g.node(s).op)) {
                    Some((s, Op::MaxPool(mp)))
                        if residual.is_none()
                            && act.cap.is_none()
                            && matches!(conv, FastConv::Gemm(_)) =>
                    {
                        absorbed[s.index()] = true;
                        last = s;
                        Some(mp.params())
                    }
                    _ => None,
                };
                let conv = if pool.is_some() {
                    conv.before_max_pool(w.view(), b.as_ref().map(|b| b.view()), isa)
                } else {
                    conv
                };
                Kernel::Conv {
                    conv,
                    act,
                    residual: residual.is_some(),
                    pool,
                }
            }
            Op::BatchNorm(bn) => {
                let (gamma, beta, mean, var) = take_bn(&mut weights, &node.path);
                let (scale, shift) = batchnorm_scale_shift(
                    gamma.view(),
                    beta.view(),
                    mean.view(),
                    var.view(),
                    bn.eps_f32(),
                );
                let relu = fuse_relu(g, &mut absorbed, &mut last, &sole_consumer);
                Kernel::Affine { scale, shift, relu }
            }
            Op::Add => Kernel::Add {
                relu: fuse_relu(g, &mut absorbed, &mut last, &sole_consumer),
            },
            op => {
                let input = g.first_operand(id).and_then(|i| shapes.get(i));
                let weights = input
                    .map(|x| crate::shape::cost::param_tensors(op, x))
                    .unwrap_or_default()
                    .iter()
                    .map(|t| take(&mut weights, &format!("{}.{}", node.path, t.suffix)))
                    .collect();
                Kernel::Op {
                    op: op.clone(),
                    weights,
                }
            }
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
    let slot_bytes = slot_bytes(g, shapes, &steps, &inputs, n_slots);
    let image_bytes = slot_bytes
        .as_ref()
        .map(|bytes| steps.iter().map(|s| bytes[s.output]).max().unwrap_or(0));
    Program {
        steps,
        n_slots,
        inputs,
        outputs,
        image_bytes,
        slot_bytes,
        kept: Default::default(),
    }
}

/// [`Program::slot_bytes`]: where the batch axis is the first of every input, and every
/// node's value has it first too (the same size or symbol), each slot's value's bytes without
/// it.
fn slot_bytes(
    g: &Graph,
    shapes: &Shapes,
    steps: &[Step],
    inputs: &[(String, usize)],
    n_slots: usize,
) -> Option<Vec<u64>> {
    let batch = |id: NodeId| shapes.get(id).map(|s| s.dim(0).clone());
    // The input nodes, in the order their slots were planned.
    let input_ids: Vec<NodeId> = g
        .node_ids()
        .filter(|&id| matches!(g.node(id).op, Op::Input))
        .collect();
    let first = batch(*input_ids.first()?)?;
    if !g.node_ids().all(|id| batch(id).as_ref() == Some(&first)) {
        return None;
    }
    let per_image = |id: NodeId| {
        let s = shapes.get(id)?;
        (1..s.rank()).try_fold(4u64, |b, axis| b.checked_mul(s.dim(axis).known()?))
    };
    let mut bytes = vec![0u64; n_slots];
    for (&id, (_, slot)) in input_ids.iter().zip(inputs) {
        bytes[*slot] = per_image(id)?;
    }
    for step in steps {
        bytes[step.output] = per_image(step.node)?;
    }
    Some(bytes)
}

/// The epsilon of a batchnorm node (PyTorch's default for anything else).
pub fn bn_eps(op: &Op) -> f32 {
    if let Op::BatchNorm(bn) = op {
        bn.eps_f32()
    } else {
        BN_EPS
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

/// Height and width of node `id`'s (4-D) output, when both are known.
fn out_hw(shapes: &Shapes, id: NodeId) -> Option<(u64, u64)> {
    let s = shapes.get(id)?;
    Some((s.dim(2).known()?, s.dim(3).known()?))
}

/// Height times width of node `id`'s (4-D) output, when both are known.
fn out_pixels(shapes: &Shapes, id: NodeId) -> Option<u64> {
    out_hw(shapes, id).map(|(h, w)| h.saturating_mul(w))
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

/// An upper bound of the bytes a run needs for a batch of `batch` on `threads` threads, before
/// anything is allocated: the activations alive at once (each freed after its last reader,
/// without counting fusion, which only lowers it), the weights as the kernels hold them
/// (conv weights padded to whole channel panels, Winograd ones as 4x4 transformed taps), and
/// every buffer a kernel allocates: each thread's packed conv input block, Winograd scratch
/// (with its chunk of transformed input tiles) and band of a conv fused with its max pool,
/// and the largest pooling input plane;
/// and the dead values a run keeps for the next convs' outputs ([`super::kernels::Spare`], at
/// most [`super::kernels::SPARE_SHARE`] times the largest value, which the program keeps
/// for its next run), and once more the largest value, for a batch whose passes' values are
/// joined to run the later steps on the whole batch ([`super::batch_split_of`]: each value's
/// passes are held beside their join while it is copied).
pub fn estimate_bytes(g: &Graph, shapes: &Shapes, batch: u64, threads: usize) -> u64 {
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
    let (mut live, mut peak, mut weights, mut pool_plane) = (0u64, 0u64, 0u64, 0u64);
    // Per thread: the largest Winograd scratch.
    let mut winograd_scratch = 0u64;
    // The largest padded, phase-split input of a GEMM conv; per thread, the largest
    // phase-split plane of a depthwise conv.
    let (mut gemm_extra, mut depthwise_scratch) = (0u64, 0u64);
    // Per thread: the largest band of a conv fused with the max pool after it.
    let mut pool_band = 0u64;
    // Which convs run as Winograd: as the planner decides (whether or not `RESNETC_WINOGRAD`
    // turns it off: a bound for both).
    let mut budget = conv_winograd::Budget::default();
    let mut largest = 0u64;
    for id in g.node_ids() {
        live = live.saturating_add(elems(id));
        peak = peak.max(live);
        largest = largest.max(elems(id));
        for &v in &dying[id.index()] {
            live = live.saturating_sub(elems(NodeId::new(v)));
        }
        let node = g.node(id);
        let Some(input) = g.first_operand(id).and_then(|i| shapes.get(i)) else {
            continue;
        };
        let product = |d: &[usize]| d.iter().fold(1u64, |a, &x| a.saturating_mul(x as u64));
        for t in crate::shape::cost::param_tensors(&node.op, input) {
            let size = match (&node.op, t.suffix) {
                // Packed in panels of `MR` output channels per group, or of `CR` on narrow
                // maps (on the best instruction set; a lower one forced only packs in `MR`).
                // One filter per channel, as the depthwise kernel holds them.
                (Op::Conv(c), "weight")
                    if conv_depthwise::DepthwiseConv::applies(
                        (c.c_out as usize, t.shape.get(1).copied().unwrap_or(0), 0, 0),
                        c.groups as usize,
                    ) =>
                {
                    if let (Some(h), Some(w)) = (input.dim(2).known(), input.dim(3).known()) {
                        let bytes = conv_depthwise::scratch_bytes(h, w, c.stride[1], c.pad);
                        depthwise_scratch = depthwise_scratch.max(bytes);
                    }
                    product(&t.shape)
                }
                (Op::Conv(c), "weight") => {
                    let groups = c.groups.max(1);
                    let per_group = (c.c_out / groups) as usize;
                    let out_w = out_hw(shapes, id).map(|(_, w)| w);
                    let taps = t.shape.iter().skip(1).product::<usize>();
                    let width = conv_gemm::panel_width(out_w, taps, Isa::best());
                    let rows = per_group.next_multiple_of(width.max(MR)) as u64 * groups;
                    let c_in = t.shape.get(1).copied().unwrap_or(0);
                    // A Winograd conv holds `(m + 2)²` transformed taps instead of 3x3; one
                    // that runs as Winograd on several images only holds both.
                    let pick = budget.take(
                        &c.params(),
                        c.kernel.map(|k| k as usize),
                        c_in,
                        c.c_out as usize,
                        out_pixels(shapes, id),
                    );
                    let mut taps = 0;
                    if let Some(pick) = pick {
                        let (w, m) = (input.dim(3).known().unwrap_or(0), pick.tile);
                        let bytes = conv_winograd::scratch_bytes(w, c_in as u64, m);
                        winograd_scratch = winograd_scratch.max(bytes);
                        taps += ((m + 2) * (m + 2)) as u64;
                    }
                    if pick.is_none_or(|p| p.several_only) {
                        if let (Some(h), Some(w)) = (input.dim(2).known(), input.dim(3).known()) {
                            let dims = conv_gemm::ConvDims {
                                c_in: c_in as u64,
                                kernel: c.kernel,
                                input: [h, w],
                                stride: c.stride,
                                pad: c.pad,
                            };
                            gemm_extra = gemm_extra.max(conv_gemm::extra_len(&dims, batch));
                        }
                        taps += product(&t.shape[2..]);
                    }
                    rows.saturating_mul(c_in as u64).saturating_mul(taps)
                }
                _ => product(&t.shape),
            };
            weights = weights.saturating_add(size);
        }
        if let (Op::MaxPool(_) | Op::AvgPool(_), Some(h), Some(w)) =
            (&node.op, input.dim(2).known(), input.dim(3).known())
        {
            pool_plane = pool_plane.max(h.saturating_mul(w));
        }
        // A max pool fused into the conv before it: a band of the conv's rows per thread.
        if let (Op::MaxPool(mp), Some(c), Some(h), Some(w)) = (
            &node.op,
            input.dim(1).known(),
            input.dim(2).known(),
            input.dim(3).known(),
        ) {
            pool_band = pool_band.max(conv_gemm::pool_band_bytes(c, h, w, &mp.params()));
        }
    }
    let per_thread = (conv_gemm::scratch_bytes() as u64)
        .saturating_add(winograd_scratch)
        .saturating_add(depthwise_scratch)
        .saturating_add(pool_band);
    let scratch = per_thread.saturating_mul(threads as u64 + 1);
    // `SPARE_BUFFERS` buffers where the largest value is not known, each at most its size.
    const _: () = assert!(super::kernels::SPARE_BUFFERS <= super::kernels::SPARE_SHARE);
    let spare = largest.saturating_mul(super::kernels::SPARE_SHARE as u64 + 1);
    peak.saturating_add(weights)
        .saturating_add(spare)
        .saturating_add(pool_plane)
        .saturating_add(gemm_extra)
        .saturating_mul(4)
        .saturating_add(scratch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::{RunOptions, run_program, weights};

    /// A small MobileNetV2: a stem conv, an inverted residual block with its residual add,
    /// one with a stride and no add, and a last 1x1 conv, each conv's batchnorm followed by a
    /// ReLU6 but the projections'.
    const NET: &str = "
block inverted_residual(c_in: int, c_out: int, stride: int = 1) {
    input x
    y = x -> [
        [conv(c_in * 6, k: 1), batchnorm, relu6],
        [conv(c_in * 6, k: 3, stride: stride, pad: 1, groups: c_in * 6), batchnorm, relu6],
        conv(c_out, k: 1), batchnorm,
    ]
    output if stride == 1 and c_in == c_out { x + y } else { y }
}

network small {
    input image: [N, 3, 32, 32]
    logits = image
        -> [conv(16, k: 3, stride: 2, pad: 1), batchnorm, relu6]
        -> inverted_residual(16, 16) -> inverted_residual(16, 24, stride: 2)
        -> [conv(64, k: 1), batchnorm, relu6]
        -> global_avgpool -> flatten -> linear(64 -> 10)
    output logits
}
";

    /// ResNet's stem with its max pool, on an input with several bands of pooled rows (and
    /// a 65-channel conv, so that the last panel of 32 channels has one).
    const STEM: &str = "
network stem {
    input image: [N, 3, 61, 58]
    y = image -> conv1: conv(65, k: 7, stride: 2, pad: 3) -> bn1: batchnorm -> relu
        -> maxpool(k: 3, stride: 2, pad: 1)
    output y
}
";

    #[test]
    fn a_conv_fused_with_its_max_pool_is_packed_for_the_pooled_bands() {
        let source = crate::span::Source::new("stem.res", STEM.to_string());
        let checked = crate::check(&source, None);
        let net = checked.network().expect("the network checks");
        let (g, shapes) = (net.graph(), net.shapes());
        let relu = g
            .node_ids()
            .find(|&id| g.node(id).op == Op::Relu)
            .expect("the stem has a ReLU");
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let x = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[2, 3, 61, 58]), |_| {
            rng.random_range(-1.0f32..1.0)
        });
        let bits = |v: &ArrayD<f32>| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        for isa in Isa::available() {
            let seeded = || weights::seeded(g, shapes, 4);
            let fused = plan_keeping(g, shapes, seeded(), &[], true, isa);
            let widths: Vec<usize> = fused
                .steps
                .iter()
                .filter_map(|s| match &s.kernel {
                    Kernel::Conv {
                        conv: FastConv::Gemm(c),
                        pool: Some(_),
                        ..
                    } => Some(c.width()),
                    _ => None,
                })
                .collect();
            let want = conv_gemm::pooled_width(isa);
            assert_eq!(widths, [want], "{}: one fused step, its panels", isa.name());
            // Keeping the ReLU's value leaves the conv and the pool steps of their own.
            let apart = plan_keeping(g, shapes, seeded(), &[relu], true, isa);
            assert_eq!(apart.steps.len(), fused.steps.len() + 1);
            for threads in [1, 2] {
                let opts = RunOptions { threads, isa };
                let a = bits(&run_program(&fused, vec![x.clone()], opts)[0].1);
                let b = bits(&run_program(&apart, vec![x.clone()], opts)[0].1);
                assert_eq!(a.len(), b.len());
                let first = a.iter().zip(&b).position(|(a, b)| a != b);
                assert_eq!(first, None, "{} on {threads} threads", isa.name());
            }
        }
    }

    #[test]
    fn relu6_runs_in_the_output_pass_of_the_conv_before_it() {
        let source = crate::span::Source::new("small.res", NET.to_string());
        let checked = crate::check(&source, None);
        let net = checked.network().expect("the network checks");
        let (g, shapes) = (net.graph(), net.shapes());
        let relu6: Vec<NodeId> = g
            .node_ids()
            .filter(|&id| g.node(id).op == Op::Relu6)
            .collect();
        assert_eq!(
            relu6.len(),
            6,
            "two per block, the stem's and the last conv's"
        );
        let fused = plan(g, shapes, weights::seeded(g, shapes, 3));
        let capped = fused
            .steps
            .iter()
            .filter(|s| matches!(s.kernel, Kernel::Conv { act, .. } if act == Act::RELU6))
            .count();
        assert_eq!(capped, 6, "every ReLU6 in its conv's output pass");
        assert!(
            !fused
                .steps
                .iter()
                .any(|s| matches!(&s.kernel, Kernel::Op { op: Op::Relu6, .. })),
            "no ReLU6 step"
        );
        // Keeping each ReLU6's operand (its batchnorm) leaves the ReLU6 a step of its own:
        // the same values, bit for bit.
        let operands: Vec<NodeId> = relu6.iter().map(|&r| g.operands(r)[0]).collect();
        let apart = plan_keeping(
            g,
            shapes,
            weights::seeded(g, shapes, 3),
            &operands,
            true,
            Isa::configured(),
        );
        assert_eq!(apart.steps.len(), fused.steps.len() + 6);
        // Inputs in [-8, 8), so that many values cross 6.
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let x = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[2, 3, 32, 32]), |_| {
            rng.random_range(-8.0f32..8.0)
        });
        for threads in [1, 2] {
            let opts = RunOptions::new(threads);
            let a = run_program(&fused, vec![x.clone()], opts);
            let b = run_program(&apart, vec![x.clone()], opts);
            let bits = |v: &ArrayD<f32>| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a[0].1), bits(&b[0].1), "{threads} threads");
        }
    }
}
