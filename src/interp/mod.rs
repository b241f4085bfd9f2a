//! The interpreter: runs a checked network on the CPU with ndarray.
//!
//! [`plan`](plan::plan) turns the graph and its validated weights into a flat program of
//! kernel calls; [`run`] executes it, freeing every activation after its last use. Only a
//! network that checked is run, so a shape error cannot become a panic here: kernels trust
//! the shapes (their preconditions), and output sizes come from `shape::formula`.

pub mod kernels;
pub mod plan;
pub mod weights;

use kernels as k;
use ndarray::{ArrayD, Ix2, Ix4};
use plan::{Kernel, Program};

/// How to run.
#[derive(Copy, Clone, Debug)]
pub struct RunOptions {
    /// Worker threads for convolutions (1 = the calling thread only).
    pub threads: usize,
}

/// Run the program on its inputs (in declaration order); returns the outputs in order.
///
/// # Shapes
/// Each input must have the shape the network declares (a symbolic batch binds to the
/// input's first dimension); the caller checks this.
pub fn run(
    program: &Program,
    inputs: Vec<ArrayD<f32>>,
    opts: RunOptions,
) -> Vec<(String, ArrayD<f32>)> {
    run_observed(program, inputs, opts, &mut |_, _| {})
}

/// [`run`], calling `observe(node, value)` with each step's output as soon as it is computed
/// (before a later step may reuse its buffer): the value of graph node `node`. Plan with
/// [`plan::plan_keeping`] to observe nodes that fusion would hide.
pub fn run_observed(
    program: &Program,
    inputs: Vec<ArrayD<f32>>,
    opts: RunOptions,
    observe: &mut dyn FnMut(crate::ir::NodeId, &ArrayD<f32>),
) -> Vec<(String, ArrayD<f32>)> {
    let mut values: Vec<Option<ArrayD<f32>>> = vec![None; program.n_slots];
    for ((_, slot), x) in program.inputs.iter().zip(inputs) {
        values[*slot] = Some(x);
    }
    for step in &program.steps {
        const ALIVE: &str = "a value is alive until its last reader ran";
        let out = match (&step.kernel, dying_operand(step)) {
            // The residual add writes into an operand no later step reads.
            (Kernel::Add { relu }, Some(pos)) => {
                let mut acc = values[step.inputs[pos]].take().expect(ALIVE);
                let other = values[step.inputs[1 - pos]].as_ref().expect(ALIVE);
                k::add_inplace(&mut acc, other, *relu);
                acc
            }
            _ => {
                let args: Vec<&ArrayD<f32>> = step
                    .inputs
                    .iter()
                    .map(|&s| values[s].as_ref().expect(ALIVE))
                    .collect();
                execute(&step.kernel, &args, opts)
            }
        };
        observe(step.node, &out);
        values[step.output] = Some(out);
        for &slot in &step.free {
            values[slot] = None;
        }
    }
    program
        .outputs
        .iter()
        .map(|(name, slot)| {
            (
                name.clone(),
                values[*slot].clone().expect("outputs are kept"),
            )
        })
        .collect()
}

/// Which operand of a two-operand step dies at it (is freed after it), so its buffer can be
/// reused for the result; `None` when neither does or both are the same value.
fn dying_operand(step: &plan::Step) -> Option<usize> {
    let [a, b] = step.inputs[..] else { return None };
    if a == b {
        return None;
    }
    [a, b].iter().position(|s| step.free.contains(s))
}

fn v4(x: &ArrayD<f32>) -> ndarray::ArrayView4<'_, f32> {
    x.view()
        .into_dimensionality::<Ix4>()
        .expect("checked: a 4-D value")
}

fn v2(x: &ArrayD<f32>) -> ndarray::ArrayView2<'_, f32> {
    x.view()
        .into_dimensionality::<Ix2>()
        .expect("checked: a 2-D value")
}

/// One kernel call.
fn execute(kernel: &Kernel, args: &[&ArrayD<f32>], opts: RunOptions) -> ArrayD<f32> {
    let x = args[0];
    match kernel {
        Kernel::Conv { w, b, p, relu } => k::conv2d_threads(
            v4(x),
            w.view(),
            b.as_ref().map(|b| b.view()),
            p,
            *relu,
            opts.threads,
        )
        .into_dyn(),
        Kernel::Affine { scale, shift, relu } => {
            let mut y = x.to_owned();
            for mut plane in y.axis_iter_mut(ndarray::Axis(0)) {
                for (c, mut ch) in plane.axis_iter_mut(ndarray::Axis(0)).enumerate() {
                    let (s, t) = (scale[c], shift[c]);
                    if *relu {
                        ch.mapv_inplace(|v| (v * s + t).max(0.0));
                    } else {
                        ch.mapv_inplace(|v| v * s + t);
                    }
                }
            }
            y
        }
        Kernel::Linear { w, b } => {
            k::linear(v2(x), w.view(), b.as_ref().map(|b| b.view())).into_dyn()
        }
        Kernel::Relu => k::relu(x),
        Kernel::Sigmoid => k::sigmoid(x),
        Kernel::Tanh => k::tanh(x),
        Kernel::LeakyRelu(slope) => k::leaky_relu(x, *slope),
        Kernel::Softmax => k::softmax(v2(x)).into_dyn(),
        Kernel::MaxPool(p) => k::maxpool2d(v4(x), p).into_dyn(),
        Kernel::AvgPool(p) => k::avgpool2d(v4(x), p).into_dyn(),
        Kernel::GlobalAvgPool => k::global_avgpool(v4(x)).into_dyn(),
        Kernel::Flatten => k::flatten(v4(x).to_owned()).into_dyn(),
        Kernel::Add { relu: false } => k::add(v4(x), v4(args[1])).into_dyn(),
        Kernel::Add { relu: true } => k::add_relu(v4(x), v4(args[1])).into_dyn(),
        Kernel::Mul => k::mul_broadcast(v4(x), v4(args[1])).into_dyn(),
        Kernel::Concat => {
            let views: Vec<_> = args.iter().map(|a| v4(a)).collect();
            k::concat_channels(&views).into_dyn()
        }
        Kernel::Identity => x.clone(),
        Kernel::ShortcutA {
            stride,
            before,
            after,
        } => k::shortcut_a(v4(x), *stride, *before, *after).into_dyn(),
    }
}
