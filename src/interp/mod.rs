//! The interpreter: runs a checked network on the CPU with ndarray.
//!
//! [`run`] is the front door: it takes a [`Network`], which only a successful check can make
//! (`Checked::network`), so an unchecked graph can never reach a kernel; it validates or draws
//! the inputs, refuses a run that would not fit in memory before allocating it, plans
//! ([`Network::plan`]: the graph and its validated weights become a flat program of kernel
//! calls) and executes, freeing every activation after its last use. Kernels trust the shapes
//! (their preconditions), and output sizes come from `shape::formula`. Each op runs as its
//! registry entry says (`ops::Spec::run`), on every rank the entry accepts.

pub mod input;
pub mod kernels;
pub mod picture;
pub mod plan;
pub mod weights;

use crate::ir::Graph;
use crate::machine::simd::Isa;
use crate::shape::Shapes;
use kernels as k;
use ndarray::{ArrayD, Axis, Ix4};
use plan::{Kernel, Program};

/// A network that checked without errors: its graph and shapes. Only
/// [`crate::Checked::network`] makes one.
#[derive(Copy, Clone, Debug)]
pub struct Network<'a> {
    graph: &'a Graph,
    shapes: &'a Shapes,
}

impl<'a> Network<'a> {
    /// Only for a graph and shapes without errors (see `Checked::network`).
    pub(crate) fn new(graph: &'a Graph, shapes: &'a Shapes) -> Network<'a> {
        Network { graph, shapes }
    }

    pub fn graph(&self) -> &'a Graph {
        self.graph
    }

    pub fn shapes(&self) -> &'a Shapes {
        self.shapes
    }

    /// The network and its validated weights as a program of kernels, to run many times with
    /// [`run_program`] (benchmarks). Only a checked network can be planned, so no kernel ever
    /// sees a shape its op's rule rejects.
    pub fn plan(&self, weights: weights::Weights) -> Program {
        plan::plan(self.graph, self.shapes, weights)
    }

    /// [`Network::plan`], with Winograd for the 3x3 convs where it applies if `winograd`, else
    /// every conv as a packed GEMM (to measure one against the other).
    pub fn plan_with(&self, weights: weights::Weights, winograd: bool) -> Program {
        self.plan_for(weights, winograd, Isa::configured())
    }

    /// [`Network::plan_with`], its convs planned for `isa` (the instruction set the program
    /// is then run with, [`RunOptions::isa`]) rather than the one `RESNETC_CPU` picks: so
    /// that a benchmark can hold one program per instruction set in one process.
    pub fn plan_for(&self, weights: weights::Weights, winograd: bool, isa: Isa) -> Program {
        plan::plan_keeping(self.graph, self.shapes, weights, &[], winograd, isa)
    }
}

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

/// The inputs of a run.
#[derive(Debug)]
pub enum Inputs {
    /// One array per network input, in declaration order, each with what it is called in
    /// messages (its file name).
    Given(Vec<(String, ArrayD<f32>)>),
    /// Seeded standard-normal inputs; `batch` sets a symbolic batch.
    Random { batch: u64 },
}

/// Everything a run needs besides the network.
#[derive(Debug)]
pub struct Request {
    /// Validated weights (`weights::from_safetensors`), or `None` for weights drawn from `seed`.
    pub weights: Option<weights::Weights>,
    pub inputs: Inputs,
    /// Seed of the drawn weights and of the random inputs.
    pub seed: u64,
    pub options: RunOptions,
    /// Bytes the run may use; a larger estimate is refused before anything is allocated.
    pub memory_limit: Option<u64>,
}

/// What a run produced: each output in order, and warnings (non-finite values).
#[derive(Debug)]
pub struct Outcome {
    pub outputs: Vec<(String, ArrayD<f32>)>,
    pub warnings: Vec<String>,
    /// How long the network ran (after the weights were packed).
    pub elapsed: std::time::Duration,
}

/// A request made ready to run: validated weights and inputs, and warnings about them.
#[derive(Debug)]
pub struct Prepared {
    pub weights: weights::Weights,
    pub inputs: Vec<ArrayD<f32>>,
    pub warnings: Vec<String>,
}

/// Run a checked network: [`prepare`], plan, execute. The error is a plain sentence about
/// the inputs or the machine.
pub fn run(net: &Network, request: Request) -> Result<Outcome, String> {
    let options = request.options;
    let ready = prepare(net, request)?;
    let program = net.plan(ready.weights);
    let start = std::time::Instant::now();
    let outputs = run_program(&program, ready.inputs, options);
    let elapsed = start.elapsed();
    let mut warnings = ready.warnings;
    warnings.extend(non_finite_outputs(&outputs));
    Ok(Outcome {
        outputs,
        warnings,
        elapsed,
    })
}

/// Warnings about given weights: NaN or infinite values, negative batchnorm variances.
fn weight_warnings(w: &weights::Weights) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some((key, bad)) = w.first_non_finite() {
        warnings.push(format!(
            "the weights hold NaN or infinite values ({bad} in `{key}`); the outputs they reach are meaningless"
        ));
    }
    if let Some((key, bad)) = w.first_negative_variance() {
        warnings.push(format!(
            "`{key}` holds {bad} negative value{}: a batchnorm divides by sqrt(var + eps), NaN where var + eps < 0, and so are the outputs it reaches",
            if bad == 1 { "" } else { "s" }
        ));
    }
    warnings
}

/// A warning for each output holding NaN or infinite values, which finite inputs and weights
/// can still produce (a batchnorm's negative variance, a product past `f32::MAX`): scores
/// that mean nothing should not pass silently.
pub fn non_finite_outputs(outputs: &[(String, ArrayD<f32>)]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|(name, y)| {
            let bad = input::count_non_finite(y);
            (bad > 0).then(|| {
                format!(
                    "output `{name}` holds {bad} NaN or infinite value{} of {}; its results mean nothing",
                    if bad == 1 { "" } else { "s" },
                    y.len()
                )
            })
        })
        .collect()
}

/// A network planned once on its weights, to run batch after batch (a directory of images):
/// the memory estimate is checked once, for the largest batch.
pub struct Session<'a> {
    net: Network<'a>,
    program: Program,
    options: RunOptions,
    max_batch: u64,
}

impl<'a> Session<'a> {
    /// Plan `net` on `weights` (or weights drawn from `seed`) for batches of at most
    /// `max_batch`; refused when that would not fit in `memory_limit` bytes. Returns the
    /// session and warnings about the weights.
    pub fn start(
        net: Network<'a>,
        weights: Option<weights::Weights>,
        seed: u64,
        options: RunOptions,
        memory_limit: Option<u64>,
        max_batch: u64,
    ) -> Result<(Session<'a>, Vec<String>), String> {
        input::check_runnable(net.graph)?;
        check_memory(&net, max_batch, memory_limit, options.threads)?;
        let mut warnings = Vec::new();
        let weights = match weights {
            Some(w) => {
                warnings.extend(weight_warnings(&w));
                w
            }
            None => weights::seeded(net.graph, net.shapes, seed),
        };
        let program = net.plan(weights);
        let session = Session {
            net,
            program,
            options,
            max_batch,
        };
        Ok((session, warnings))
    }

    /// Run one batch: each input (named for messages) checked against the declared shapes.
    pub fn run(
        &self,
        given: Vec<(String, ArrayD<f32>)>,
    ) -> Result<Vec<(String, ArrayD<f32>)>, String> {
        let (names, arrays): (Vec<String>, Vec<ArrayD<f32>>) = given.into_iter().unzip();
        if arrays.len() != self.net.graph.inputs.len() {
            return Err(format!(
                "network `{}` has {} inputs, but {} were given",
                self.net.graph.name,
                self.net.graph.inputs.len(),
                arrays.len()
            ));
        }
        let batch = input::check_shapes(self.net.graph, &arrays, &names)?;
        if batch as u64 > self.max_batch {
            return Err(format!(
                "a batch of {batch} is larger than the {} this run was planned for",
                self.max_batch
            ));
        }
        Ok(run_program(&self.program, arrays, self.options))
    }
}

/// Check (or draw) the inputs and the memory estimate, before anything large is allocated,
/// and draw the weights when none are given.
pub fn prepare(net: &Network, request: Request) -> Result<Prepared, String> {
    let g = net.graph;
    input::check_runnable(g)?;
    let mut warnings = Vec::new();
    let inputs = match request.inputs {
        Inputs::Random { batch } => {
            check_memory(net, batch, request.memory_limit, request.options.threads)?;
            let batch =
                usize::try_from(batch).map_err(|_| format!("batch {batch} is too large"))?;
            input::random(g, batch, request.seed)
        }
        Inputs::Given(given) => {
            if given.len() != g.inputs.len() {
                return Err(format!(
                    "network `{}` has {} input{}, but {} were given",
                    g.name,
                    g.inputs.len(),
                    if g.inputs.len() == 1 { "" } else { "s" },
                    given.len()
                ));
            }
            let (names, arrays): (Vec<String>, Vec<ArrayD<f32>>) = given.into_iter().unzip();
            let batch = input::check_shapes(g, &arrays, &names)?;
            check_memory(
                net,
                batch as u64,
                request.memory_limit,
                request.options.threads,
            )?;
            for (name, x) in names.iter().zip(&arrays) {
                let bad = input::count_non_finite(x);
                if bad > 0 {
                    warnings.push(format!(
                        "{name} holds {bad} NaN or infinite value{}; the outputs they reach are meaningless",
                        if bad == 1 { "" } else { "s" }
                    ));
                }
            }
            arrays
        }
    };
    let weights = match request.weights {
        Some(w) => {
            warnings.extend(weight_warnings(&w));
            w
        }
        None => weights::seeded(g, net.shapes, request.seed),
    };
    Ok(Prepared {
        weights,
        inputs,
        warnings,
    })
}

/// Refuse a run whose estimate exceeds `limit` bytes.
fn check_memory(
    net: &Network,
    batch: u64,
    limit: Option<u64>,
    threads: usize,
) -> Result<(), String> {
    let need = plan::estimate_bytes(net.graph, net.shapes, batch, threads);
    match limit {
        Some(available) if need > available => {
            let name = &net.graph.name;
            let need = match gib(need) {
                Some(g) => format!("needs {g}, but only"),
                None => "needs more memory than any machine has (over a million GiB);".into(),
            };
            let available = gib(available).unwrap_or_else(|| "over a million GiB".into());
            Err(format!(
                "running `{name}` at batch {batch} {need} {available} are available; use a smaller batch or input size"
            ))
        }
        _ => Ok(()),
    }
}

/// Bytes as "about N GiB"; `None` from a million GiB on, more than any machine has.
fn gib(bytes: u64) -> Option<String> {
    let g = bytes as f64 / (1u64 << 30) as f64;
    (g < 1e6).then(|| format!("about {g:.1} GiB"))
}

/// The process's pool of `threads` workers, started on first use and kept for later runs: a
/// directory of images or a benchmark runs the program many times, and fresh threads would
/// start each run with cold caches and empty scratch buffers (their pages faulted in again).
/// `None` if the threads cannot be started.
fn worker_pool(threads: usize) -> Option<std::sync::Arc<rayon::ThreadPool>> {
    use std::sync::{Arc, Mutex};
    static POOLS: Mutex<Vec<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(Vec::new());
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = pools.iter().find(|(t, _)| *t == threads) {
        return Some(Arc::clone(p));
    }
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .ok()?,
    );
    pools.push((threads, Arc::clone(&pool)));
    Some(pool)
}

/// Execute a planned program on its inputs (in declaration order); returns the outputs in
/// order. [`run`] is the checked way in; this one is for running one program many times
/// (benchmarks).
///
/// # Shapes
/// Each input must have the shape the network declares (a symbolic batch binds to the
/// input's first dimension), as [`input::check_shapes`] checks.
pub fn run_program(
    program: &Program,
    inputs: Vec<ArrayD<f32>>,
    opts: RunOptions,
) -> Vec<(String, ArrayD<f32>)> {
    let batch = inputs
        .first()
        .and_then(|x| x.shape().first().copied())
        .unwrap_or(0);
    let per_pass = images_per_pass(program.image_bytes);
    if batch <= per_pass || inputs.iter().any(|x| x.shape().first() != Some(&batch)) {
        return run_observed(program, inputs, opts, &mut |_, _| {});
    }
    let passes: Vec<Vec<(String, ArrayD<f32>)>> = (0..batch)
        .step_by(per_pass)
        .map(|b0| {
            let images = b0..(b0 + per_pass).min(batch);
            let part = inputs
                .iter()
                .map(|x| x.slice_axis(Axis(0), images.clone().into()).to_owned())
                .collect();
            run_observed(program, part, opts, &mut |_, _| {})
        })
        .collect();
    (0..program.outputs.len())
        .map(|i| {
            let parts: Vec<_> = passes.iter().map(|p| p[i].1.view()).collect();
            let joined = ndarray::concatenate(Axis(0), &parts)
                .expect("every pass's output has the same shape but for its batch axis");
            (passes[0][i].0.clone(), joined)
        })
        .collect()
}

/// Images per pass [`run_program`] takes of a batch of `program`'s inputs (`usize::MAX`: the
/// whole batch at once), so that a benchmark timing [`run_observed`] can run the same passes.
pub fn images_per_pass_of(program: &Program) -> usize {
    images_per_pass(program.image_bytes)
}

/// Images per pass of [`run_program`] over a batch: as many as keep the largest value a step
/// computes within [`PASS_BYTES`] (at least one), or the whole batch when images may mix or
/// a value's size is not known.
///
/// Run whole, a large batch's values overflow the last-level cache layer after layer (the
/// 64x112x112 and 256x56x56 values of ResNet-50 are 3.2 MB an image), and every conv then
/// streams its input and output through memory; a pass of a few images keeps them in cache,
/// and still reads each layer's weights once for several images.
fn images_per_pass(image_bytes: Option<u64>) -> usize {
    match image_bytes {
        Some(b) => usize::try_from(PASS_BYTES / b.max(1))
            .unwrap_or(usize::MAX)
            .max(1),
        None => usize::MAX,
    }
}

/// The largest value of a pass of [`run_program`]: 8 MiB, two ResNet-50 images. Measured on
/// ResNet-50 at batch 8 (2 threads, a 32 MiB L3): passes of 1, 2, 4 and 8 images ran in
/// 165-169, 161-163, 173-179 and 183-191 ms (docs/benchmarks.md).
const PASS_BYTES: u64 = 8 << 20;

/// [`run`], calling `observe(node, value)` with each step's output as soon as it is computed
/// (before a later step may reuse its buffer): the value of graph node `node`. Plan with
/// [`plan::plan_keeping`] to observe nodes that fusion would hide.
pub fn run_observed(
    program: &Program,
    inputs: Vec<ArrayD<f32>>,
    opts: RunOptions,
    observe: &mut (dyn FnMut(crate::ir::NodeId, &ArrayD<f32>) + Send),
) -> Vec<(String, ArrayD<f32>)> {
    // The convs split their work over one pool; without one (a single thread, or threads
    // that cannot be started) they run on this thread. The whole program runs on the pool,
    // so that each step's parallel work starts on the thread already running it: a caller
    // outside the pool would go to sleep for every step and wait to be woken.
    let pool = (opts.threads > 1)
        .then(|| worker_pool(opts.threads))
        .flatten();
    match pool.as_deref() {
        Some(p) => p.install(|| {
            let _awake = KeepAwake::start(p);
            run_steps(program, inputs, opts, observe, Some(p))
        }),
        None => run_steps(program, inputs, opts, observe, None),
    }
}

/// While alive, the pool's other threads wait for work spinning rather than asleep.
///
/// Between two steps the run goes on on one thread (freeing and allocating buffers, the
/// serial parts of a step), and a pool thread with nothing to do goes to sleep within
/// microseconds; waking it again at the next step's parallel work costs tens of
/// microseconds (more on a busy host), once or twice per conv. So for the length of a run
/// each other thread takes a job that looks for the pool's pending work itself
/// ([`rayon::yield_now`]) and spins in between, until the run ends (or, as a safeguard, after
/// [`KeepAwake::IDLE`] without any work). Only while it is the process's one run: runs side by
/// side (a program's tests) share the pools, and one run's spinning job must not hold a thread
/// another run waits on.
struct KeepAwake(std::sync::Arc<std::sync::atomic::AtomicBool>);

/// Runs under way in this process (see [`KeepAwake`]).
static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl KeepAwake {
    const IDLE: std::time::Duration = std::time::Duration::from_millis(50);

    fn start(pool: &rayon::ThreadPool) -> KeepAwake {
        use std::sync::atomic::{AtomicBool, Ordering};
        let done = std::sync::Arc::new(AtomicBool::new(false));
        if RUNS.fetch_add(1, Ordering::AcqRel) > 0 {
            return KeepAwake(done);
        }
        let me = rayon::current_thread_index();
        let flag = std::sync::Arc::clone(&done);
        pool.spawn_broadcast(move |ctx| {
            if Some(ctx.index()) == me {
                return;
            }
            let mut idle_since = std::time::Instant::now();
            let mut spins = 0u32;
            while !flag.load(Ordering::Acquire) && RUNS.load(Ordering::Acquire) == 1 {
                if rayon::yield_now() == Some(rayon::Yield::Executed) {
                    idle_since = std::time::Instant::now();
                    continue;
                }
                std::hint::spin_loop();
                spins = spins.wrapping_add(1);
                // Now and then: let another thread of this process or the machine run, and
                // give up after a long wait with nothing to do.
                if spins.is_multiple_of(1024) {
                    if idle_since.elapsed() > Self::IDLE {
                        return;
                    }
                    std::thread::yield_now();
                }
            }
        });
        KeepAwake(done)
    }
}

impl Drop for KeepAwake {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        self.0.store(true, Ordering::Release);
        RUNS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The steps of `program` in order, as [`run_observed`] describes, splitting work over `pool`.
fn run_steps(
    program: &Program,
    inputs: Vec<ArrayD<f32>>,
    opts: RunOptions,
    observe: &mut (dyn FnMut(crate::ir::NodeId, &ArrayD<f32>) + Send),
    pool: Option<&rayon::ThreadPool>,
) -> Vec<(String, ArrayD<f32>)> {
    let mut values: Vec<Option<ArrayD<f32>>> = vec![None; program.n_slots];
    // Dead values' memory, for the next convs' outputs: from the last run, to begin with.
    let mut spare = program.take_spare(&inputs);
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
            // A conv whose residual no later step reads writes its output over it.
            (
                Kernel::Conv {
                    conv,
                    act,
                    residual: true,
                    ..
                },
                _,
            ) if second_dies(step) => {
                let residual = values[step.inputs[1]].take().expect(ALIVE);
                let residual = residual
                    .into_dimensionality::<Ix4>()
                    .expect("checked: a conv's residual is 4-D");
                let x = values[step.inputs[0]].as_ref().expect(ALIVE);
                conv.run_into(v4(x), residual, *act, opts.isa, pool, Some(&mut spare))
                    .into_dyn()
            }
            // An op whose first operand no later step reads (a squeeze-excitation gate's
            // product) writes its result over it, where the op can.
            (Kernel::Op { op, .. }, Some(0)) => {
                let x = values[step.inputs[0]].take().expect(ALIVE);
                let rest: Vec<&ArrayD<f32>> = step.inputs[1..]
                    .iter()
                    .map(|&s| values[s].as_ref().expect(ALIVE))
                    .collect();
                match op.spec().run_over_first(x, &rest, opts.threads) {
                    Ok(y) => y,
                    // Run as usual; the operand's memory then goes where freed values go.
                    Err(x) => {
                        let args: Vec<&ArrayD<f32>> = std::iter::once(&x).chain(rest).collect();
                        let y = execute(&step.kernel, &args, opts, pool, &mut spare);
                        spare.give(x);
                        y
                    }
                }
            }
            // A one-operand op (an activation) whose operand no later step reads writes its
            // result over it, where the op can.
            (Kernel::Op { op, .. }, _)
                if step.inputs.len() == 1 && step.free.contains(&step.inputs[0]) =>
            {
                let x = values[step.inputs[0]].take().expect(ALIVE);
                match op.spec().run_owned(x) {
                    Ok(y) => y,
                    Err(x) => {
                        let y = execute(&step.kernel, &[&x], opts, pool, &mut spare);
                        spare.give(x);
                        y
                    }
                }
            }
            _ => {
                let args: Vec<&ArrayD<f32>> = step
                    .inputs
                    .iter()
                    .map(|&s| values[s].as_ref().expect(ALIVE))
                    .collect();
                execute(&step.kernel, &args, opts, pool, &mut spare)
            }
        };
        observe(step.node, &out);
        values[step.output] = Some(out);
        for &slot in &step.free {
            if let Some(value) = values[slot].take() {
                spare.give(value);
            }
        }
    }
    program.keep_spare(spare);
    // Each output moved out of its slot, but for a value that a later output names too
    // (copied for the earlier ones).
    let outputs = &program.outputs;
    outputs
        .iter()
        .enumerate()
        .map(|(i, (name, slot))| {
            let later = outputs[i + 1..].iter().any(|(_, s)| s == slot);
            let value = if later {
                values[*slot].clone()
            } else {
                values[*slot].take()
            };
            (name.clone(), value.expect("outputs are kept"))
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

/// Whether a step's second operand (a conv's residual) is read by no later step, and is not
/// also its first.
fn second_dies(step: &plan::Step) -> bool {
    let [a, b] = step.inputs[..] else {
        return false;
    };
    a != b && step.free.contains(&b)
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
    spare: &mut k::Spare,
) -> ArrayD<f32> {
    let x = args[0];
    match kernel {
        Kernel::Conv {
            conv,
            act,
            pool: Some(pool_p),
            ..
        } => conv
            .run_maxpool(v4(x), pool_p, *act, opts.isa, pool, Some(spare))
            .into_dyn(),
        Kernel::Conv {
            conv,
            act,
            residual,
            pool: None,
        } => conv
            .run(
                v4(x),
                residual.then(|| v4(args[1])),
                *act,
                opts.isa,
                pool,
                Some(spare),
            )
            .into_dyn(),
        Kernel::Affine { scale, shift, relu } => {
            let mut y = x.to_owned();
            k::scale_shift_channels(&mut y, scale.view(), shift.view(), *relu);
            y
        }
        Kernel::Add { relu: false } => k::add(x.view(), args[1].view()),
        Kernel::Add { relu: true } => k::add_relu(x.view(), args[1].view()),
        // Already on the pool (see `run_observed`), so an op that shares out its work (max
        // pooling) uses its threads.
        Kernel::Op { op, weights } => op.spec().run(args, weights, opts.threads),
    }
}
