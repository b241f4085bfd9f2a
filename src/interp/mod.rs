//! The interpreter: runs a checked network on the CPU with ndarray.
//!
//! [`plan`](plan::plan) turns the graph and its validated weights into a flat program of
//! kernel calls; [`run`] executes it, freeing every activation after its last use. Only a
//! network that checked is run, so a shape error cannot become a panic here: kernels trust
//! the shapes (their preconditions), and output sizes come from `shape::formula`. Each op runs
//! as its registry entry says (`ops::Spec::run`), on every rank the entry accepts.

pub mod kernels;
pub mod plan;
pub mod weights;

use crate::machine::simd::Isa;
use kernels as k;
use ndarray::{ArrayD, Ix4};
use plan::{Kernel, Program};

/// How to run.
#[derive(Copy, Clone, Debug)]
pub struct RunOptions {
    /// Worker threads for convolutions (1 = the calling thread only).
    pub threads: usize,
    /// The instruction set of the convolution kernels ([`Isa::best`] unless forced lower).
    pub isa: Isa,
}

impl RunOptions {
    /// `threads` workers and the fastest instruction set this CPU has.
    pub fn new(threads: usize) -> RunOptions {
        RunOptions {
            threads,
            isa: Isa::best(),
        }
    }
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
    // One thread pool for the whole run (the packed convs split their work over it); without
    // one (a single thread, or threads that cannot be started) they run on this thread.
    let pool = (opts.threads > 1)
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(opts.threads)
                .build()
                .ok()
        })
        .flatten();
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
                execute(&step.kernel, &args, opts, pool.as_ref())
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
        .expect("checked: a conv's input is 4-D")
}

/// One kernel call.
fn execute(
    kernel: &Kernel,
    args: &[&ArrayD<f32>],
    opts: RunOptions,
    pool: Option<&rayon::ThreadPool>,
) -> ArrayD<f32> {
    let x = args[0];
    match kernel {
        Kernel::Conv {
            conv,
            relu,
            residual,
        } => k::conv2d_packed(
            v4(x),
            conv,
            residual.then(|| v4(args[1])),
            *relu,
            opts.isa,
            pool,
        )
        .into_dyn(),
        Kernel::Affine { scale, shift, relu } => {
            let mut y = x.to_owned();
            k::scale_shift_channels(&mut y, scale.view(), shift.view(), *relu);
            y
        }
        Kernel::Add { relu: false } => k::add(x.view(), args[1].view()),
        Kernel::Add { relu: true } => k::add_relu(x.view(), args[1].view()),
        Kernel::Op { op, weights } => op.spec().run(args, weights, opts.threads),
    }
}
