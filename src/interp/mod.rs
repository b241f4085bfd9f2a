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
/// (benchmarks). A batch runs as [`batch_split_of`] cuts it.
///
/// # Shapes
/// Each input must have the shape the network declares (a symbolic batch binds to the
/// input's first dimension), as [`input::check_shapes`] checks.
pub fn run_program(
    program: &Program,
    inputs: Vec<ArrayD<f32>>,
    opts: RunOptions,
) -> Vec<(String, ArrayD<f32>)> {
    run_program_observed(program, inputs, opts, &mut |_, _| {})
}

/// [`run_program`], calling `observe(node, value)` with each step's output as
/// [`run_observed`] does; a step that runs in passes calls it once per pass, with that pass's
/// images.
pub fn run_program_observed(
    program: &Program,
    inputs: Vec<ArrayD<f32>>,
    opts: RunOptions,
    observe: &mut (dyn FnMut(crate::ir::NodeId, &ArrayD<f32>) + Send),
) -> Vec<(String, ArrayD<f32>)> {
    let batch = inputs
        .first()
        .and_then(|x| x.shape().first().copied())
        .unwrap_or(0);
    let split = batch_split_of(program, batch);
    if split.head == 0 || inputs.iter().any(|x| x.shape().first() != Some(&batch)) {
        return run_observed(program, inputs, opts, observe);
    }
    on_pool(opts, |pool| {
        run_split(program, inputs, split, opts, observe, pool)
    })
}

/// How [`run_program`] runs a batch: its first `head` steps in passes of `per_pass` images
/// (the last pass may hold fewer), then the other steps on the whole batch at once, their
/// operands from the passes joined along the batch axis. `head` is 0 where the whole program
/// runs on the whole batch at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSplit {
    pub head: usize,
    pub per_pass: usize,
}

/// How [`run_program`] runs a batch of `batch` images of `program`: the steps from the first
/// one after which every value (each step's output, and each value computed before it and
/// read after) holds at most 8 MiB (`PASS_BYTES`) for the whole batch run on the whole batch
/// at once; the steps before it in passes of as many images as keep their largest output
/// within 8 MiB (at least one). The whole program runs on the whole batch where images may
/// mix or a value's size is not known, or where every pass would hold the whole batch anyway.
///
/// Run whole, a large batch's values overflow the last-level cache layer after layer (the
/// 64x112x112 and 256x56x56 values of ResNet-50 are 3.2 MB an image), and every conv then
/// streams its input and output through memory; a pass of a few images keeps them in cache.
/// But a pass reads every weight of its steps once for its images only: the later layers,
/// whose values are small and weights large (ResNet-50's last 22 MB of weights act on 7x7
/// maps, 0.4 MB an image), are cheapest on the whole batch.
pub fn batch_split_of(program: &Program, batch: usize) -> BatchSplit {
    let whole = BatchSplit {
        head: 0,
        per_pass: batch,
    };
    let Some(bytes) = &program.slot_bytes else {
        return whole;
    };
    let out: Vec<u64> = program.steps.iter().map(|s| bytes[s.output]).collect();
    let across = largest_across(program, bytes);
    split_steps(&out, &across, batch, PASS_BYTES).unwrap_or(whole)
}

/// Each slot's lifetime in steps, `(born, last)`: the boundary (before step `born`) from which
/// its value exists (0 for an input), and the last step that reads it (the number of steps
/// for an output); `None` for a slot nothing reads.
fn lifetimes(program: &Program) -> Vec<Option<(usize, usize)>> {
    let mut born = vec![0usize; program.n_slots];
    let mut last = vec![None::<usize>; program.n_slots];
    for (i, step) in program.steps.iter().enumerate() {
        born[step.output] = i + 1;
        for &slot in &step.inputs {
            last[slot] = Some(i);
        }
    }
    for (_, slot) in &program.outputs {
        last[*slot] = Some(program.steps.len());
    }
    born.into_iter()
        .zip(last)
        .map(|(b, l)| Some((b, l?)))
        .collect()
}

/// For each boundary `s` (before step `s`, `0..=steps`), the largest per-image bytes of a value
/// that exists before it and is read at or after it (or is an output).
fn largest_across(program: &Program, bytes: &[u64]) -> Vec<u64> {
    let mut across = vec![0u64; program.steps.len() + 1];
    for (slot, life) in lifetimes(program).into_iter().enumerate() {
        if let Some((born, last)) = life {
            for a in &mut across[born..=last] {
                *a = (*a).max(bytes[slot]);
            }
        }
    }
    across
}

/// [`batch_split_of`]'s rule, on each step's output bytes per image (`out`) and the largest
/// value across each boundary (`across`, one more than `out`); `None` for the whole batch at
/// once.
fn split_steps(out: &[u64], across: &[u64], batch: usize, pass_bytes: u64) -> Option<BatchSplit> {
    let n = out.len();
    let fits = |b: u64| b.saturating_mul(batch as u64) <= pass_bytes;
    // The first boundary from which every value fits.
    let mut head = n;
    while head > 0 && fits(out[head - 1]) && fits(across[head - 1]) {
        head -= 1;
    }
    let largest = out[..head].iter().copied().max()?;
    let per_pass = usize::try_from(pass_bytes / largest.max(1))
        .unwrap_or(usize::MAX)
        .max(1);
    (per_pass < batch).then_some(BatchSplit { head, per_pass })
}

/// The largest value of a pass of [`run_program`]: 8 MiB, two ResNet-50 images. Measured on
/// ResNet-50 at batch 8 (2 threads, a 32 MiB L3) with every step in passes: passes of 1, 2, 4
/// and 8 images ran in 165-169, 161-163, 173-179 and 183-191 ms (docs/benchmarks.md).
const PASS_BYTES: u64 = 8 << 20;

/// [`run`] on the whole batch at once (where [`run_program`] may cut it), calling
/// `observe(node, value)` with each step's output as soon as it is computed (before a later
/// step may reuse its buffer): the value of graph node `node`. Plan with
/// `plan::plan_keeping` to observe nodes that fusion would hide.
pub fn run_observed(
    program: &Program,
    inputs: Vec<ArrayD<f32>>,
    opts: RunOptions,
    observe: &mut (dyn FnMut(crate::ir::NodeId, &ArrayD<f32>) + Send),
) -> Vec<(String, ArrayD<f32>)> {
    on_pool(opts, |pool| {
        let mut spare = program.take_spare(&inputs);
        let mut values = slots_with(program, inputs);
        run_steps(
            program,
            0..program.steps.len(),
            &mut values,
            &mut spare,
            opts,
            observe,
            pool,
        );
        program.keep_spare(spare);
        take_outputs(program, values)
    })
}

/// `run(pool)` on the pool of `opts.threads` threads (`None` for one thread, or where threads
/// cannot be started).
///
/// The convs split their work over one pool; without one they run on this thread. The whole
/// run goes on on the pool, so that each step's parallel work starts on the thread already
/// running it: a caller outside the pool would go to sleep for every step and wait to be woken.
fn on_pool<R: Send>(
    opts: RunOptions,
    run: impl FnOnce(Option<&rayon::ThreadPool>) -> R + Send,
) -> R {
    let pool = (opts.threads > 1)
        .then(|| worker_pool(opts.threads))
        .flatten();
    match pool.as_deref() {
        Some(p) => p.install(|| {
            let _awake = KeepAwake::start(p);
            run(Some(p))
        }),
        None => run(None),
    }
}

/// A program's value slots, holding its `inputs`.
fn slots_with(program: &Program, inputs: Vec<ArrayD<f32>>) -> Vec<Option<ArrayD<f32>>> {
    let mut values: Vec<Option<ArrayD<f32>>> = vec![None; program.n_slots];
    for ((_, slot), x) in program.inputs.iter().zip(inputs) {
        values[*slot] = Some(x);
    }
    values
}

/// The passes' values of one slot joined along the batch axis, image after image, into
/// memory from `spare` where it holds a buffer large enough: a fresh array of that size (6.4
/// MB for ResNet-50's `layer3` at batch 8) faults its pages in on every run: with it, the
/// step after the join took about 2 ms more than its twins later in `layer3` on the AMD EPYC
/// (Zen 4, AVX2), and about 10 ms more in some processes (presumably the kernel making the
/// huge pages `HugePages` asks for).
fn join_passes(parts: &[ArrayD<f32>], spare: &mut k::Spare) -> ArrayD<f32> {
    let mut shape = parts[0].shape().to_vec();
    shape[0] = parts.iter().map(|p| p.shape()[0]).sum();
    let len = shape.iter().product();
    let Some(mut buffer) = spare.take(len) else {
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        return ndarray::concatenate(Axis(0), &views)
            .expect("every pass's value has the same shape but for its batch axis");
    };
    let mut at = 0;
    for part in parts {
        let dst = &mut buffer[at..at + part.len()];
        match part.as_slice() {
            Some(src) => dst.copy_from_slice(src),
            None => dst.iter_mut().zip(part.iter()).for_each(|(d, &v)| *d = v),
        }
        at += part.len();
    }
    ArrayD::from_shape_vec(ndarray::IxDyn(&shape), buffer)
        .expect("the passes' values fill the batch's shape")
}

/// [`run_program`] on a batch cut as `split` says: the head's passes, each pass's values that
/// the tail reads kept; those joined, image after image; the tail on them.
fn run_split(
    program: &Program,
    inputs: Vec<ArrayD<f32>>,
    split: BatchSplit,
    opts: RunOptions,
    observe: &mut (dyn FnMut(crate::ir::NodeId, &ArrayD<f32>) + Send),
    pool: Option<&rayon::ThreadPool>,
) -> Vec<(String, ArrayD<f32>)> {
    let batch = inputs[0].shape()[0];
    let mut spare = program.take_spare(&inputs);
    let steps = program.steps.len();
    // The values that exist before the tail and that it reads (or the outputs).
    let across: Vec<usize> = (lifetimes(program).into_iter().enumerate())
        .filter_map(|(slot, life)| {
            life.filter(|&(born, last)| born <= split.head && last >= split.head)
                .map(|_| slot)
        })
        .collect();
    let mut parts: Vec<Vec<ArrayD<f32>>> = vec![Vec::new(); across.len()];
    for b0 in (0..batch).step_by(split.per_pass) {
        let images = b0..(b0 + split.per_pass).min(batch);
        let pass = inputs
            .iter()
            .map(|x| x.slice_axis(Axis(0), images.clone().into()).to_owned())
            .collect();
        let mut values = slots_with(program, pass);
        run_steps(
            program,
            0..split.head,
            &mut values,
            &mut spare,
            opts,
            observe,
            pool,
        );
        for (part, &slot) in parts.iter_mut().zip(&across) {
            part.push(values[slot].take().expect("a value the tail reads is kept"));
        }
    }
    let mut values: Vec<Option<ArrayD<f32>>> = vec![None; program.n_slots];
    for (part, &slot) in parts.into_iter().zip(&across) {
        values[slot] = Some(join_passes(&part, &mut spare));
        part.into_iter().for_each(|p| spare.give(p));
    }
    run_steps(
        program,
        split.head..steps,
        &mut values,
        &mut spare,
        opts,
        observe,
        pool,
    );
    program.keep_spare(spare);
    take_outputs(program, values)
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

/// The steps `range` of `program` in order, as [`run_observed`] describes, on the values in
/// their slots, splitting work over `pool`; `spare` is dead values' memory for the next convs'
/// outputs (from the last run, to begin with).
#[allow(clippy::too_many_arguments)]
fn run_steps(
    program: &Program,
    range: std::ops::Range<usize>,
    values: &mut [Option<ArrayD<f32>>],
    spare: &mut k::Spare,
    opts: RunOptions,
    observe: &mut (dyn FnMut(crate::ir::NodeId, &ArrayD<f32>) + Send),
    pool: Option<&rayon::ThreadPool>,
) {
    for step in &program.steps[range] {
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
                conv.run_into(v4(x), residual, *act, opts.isa, pool, Some(&mut *spare))
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
                        let y = execute(&step.kernel, &args, opts, pool, spare);
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
                        let y = execute(&step.kernel, &[&x], opts, pool, spare);
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
                execute(&step.kernel, &args, opts, pool, spare)
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
}

/// The outputs, each moved out of its slot, but for a value that a later output names too
/// (copied for the earlier ones).
fn take_outputs(
    program: &Program,
    mut values: Vec<Option<ArrayD<f32>>>,
) -> Vec<(String, ArrayD<f32>)> {
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

#[cfg(test)]
mod tests {
    use super::{BatchSplit, join_passes, k, split_steps};

    #[test]
    fn the_steps_after_the_first_boundary_where_every_value_fits_run_whole() {
        // Per-image bytes; a pass holds 100 bytes. Steps 0-1 make 40-byte values, steps 2-4
        // 10-byte ones; at batch 4, the whole batch of a 10-byte value (40) fits, of a
        // 40-byte one (160) not.
        let out = [40, 40, 10, 10, 10];
        // Step 1's output is read by step 3: it lies across boundaries 2 and 3.
        let across = [8, 40, 40, 40, 10, 10];
        assert_eq!(
            split_steps(&out, &across, 4, 100),
            Some(BatchSplit {
                head: 4,
                per_pass: 2
            })
        );
        // Step 1's output read by step 2 only: the cut moves up to step 3.
        let across = [8, 40, 40, 10, 10, 10];
        assert_eq!(
            split_steps(&out, &across, 4, 100),
            Some(BatchSplit {
                head: 3,
                per_pass: 2
            })
        );
        // Two images fit in a pass: the whole batch at once.
        assert_eq!(split_steps(&out, &across, 2, 100), None);
        // Nothing fits whole: every step in passes (the old rule).
        let big = [40, 40, 40, 40, 40];
        let across = [8, 40, 40, 40, 40, 40];
        assert_eq!(
            split_steps(&big, &across, 4, 100),
            Some(BatchSplit {
                head: 5,
                per_pass: 2
            })
        );
        // A value larger than a pass: passes of one image.
        assert_eq!(
            split_steps(&[400, 10, 10], &[8, 400, 10, 10], 3, 100),
            Some(BatchSplit {
                head: 2,
                per_pass: 1
            })
        );
        // Everything fits: no cut.
        assert_eq!(split_steps(&[10, 10], &[8, 10, 10], 4, 100), None);
    }

    /// The passes' values joined image after image, the same whether the memory comes from
    /// the spare (a buffer larger than needed, stale values in it) or is fresh, and from parts
    /// in any layout.
    #[test]
    fn passes_join_image_after_image_into_spare_memory_or_fresh() {
        use ndarray::{Array3, IxDyn};
        let first = Array3::from_shape_fn((2, 3, 2), |(b, c, x)| (b * 100 + c * 10 + x) as f32);
        // Shape [1, 3, 2] in a layout of its own (columns first).
        let second =
            Array3::from_shape_fn((1, 2, 3), |(b, x, c)| (200 + b * 100 + c * 10 + x) as f32)
                .permuted_axes([0, 2, 1]);
        assert!(!second.is_standard_layout());
        let parts = [first.into_dyn(), second.into_dyn()];
        let expected = ndarray::ArrayD::from_shape_fn(IxDyn(&[3, 3, 2]), |d| {
            (d[0] * 100 + d[1] * 10 + d[2]) as f32
        });
        let mut fresh = k::Spare::default();
        assert_eq!(join_passes(&parts, &mut fresh), expected);
        let mut spare = k::Spare::default();
        spare.give(ndarray::ArrayD::from_elem(IxDyn(&[1 << 15]), -1.0));
        assert_eq!(spare.len(), 1);
        assert_eq!(join_passes(&parts, &mut spare), expected);
        assert!(
            spare.is_empty(),
            "the spare's buffer holds the joined values"
        );
    }
}
