//! Feeding a network: its weights (a safetensors file, or drawn from a seed) and its inputs
//! (`.npy` files, or a seeded standard-normal tensor). Shared by `run` and `analyze`.
//!
//! This module only reads files, each bounded before it is read ([`super::read_bounded`]):
//! decoding, validation against the declared shapes, random inputs and the memory check are
//! the library's front door ([`crate::interp::prepare`]).

use super::{CliError, ReadError, memory, read_bounded};
use crate::diag::Diagnostic;
use crate::interp::plan::estimate_bytes;
use crate::interp::{self, Inputs, Network, Request, RunOptions, input, weights};
use crate::ir::{DimSpec, Graph};
use crate::shape::Shapes;
use ndarray::ArrayD;
use std::path::{Path, PathBuf};

/// More workers than this only adds thread start-up to every convolution.
pub const MAX_THREADS: usize = 256;

/// Where the weights and inputs come from (the command-line flags of `run` and `analyze`).
pub struct Feed<'a> {
    /// A safetensors file; without it, weights are drawn from `seed`.
    pub weights: Option<&'a Path>,
    pub seed: u64,
    /// One `.npy` file per network input, in declaration order.
    pub inputs: &'a [PathBuf],
    /// Draw the inputs from `seed` instead, with batch `batch` (default 1) for a symbolic batch.
    pub random_input: bool,
    /// `--batch`, when given: refused with `.npy` inputs, whose batch is their first dimension.
    pub batch: Option<u64>,
}

/// The flags that say where the weights and inputs come from.
#[derive(clap::Args, Debug)]
pub struct FeedArgs {
    /// Weights: a safetensors file whose keys are the layers' paths (PyTorch's state_dict keys).
    #[arg(long, value_name = "FILE.safetensors")]
    pub weights: Option<PathBuf>,
    /// Seed of the weights when no --weights is given (He normal for convs), and of
    /// --random-input [default: 0].
    #[arg(long, allow_negative_numbers = true,
          value_parser = |t: &str| super::parse_number(t, "a seed", 0, u64::MAX))]
    pub seed: Option<u64>,
    /// The input tensor, float32 NCHW `.npy` (once per network input, in declaration order);
    /// for `run`, also PNG or JPEG images or directories of them (each image a result).
    #[arg(long, value_name = "FILE.npy|IMAGE|DIR")]
    pub input: Vec<PathBuf>,
    /// Instead of --input: a seeded standard-normal input (the seed is --seed).
    #[arg(long, conflicts_with = "input")]
    pub random_input: bool,
    /// The batch size for a symbolic batch, with --random-input or images (1 to 2^63 - 1;
    /// default 1). A `.npy` input's batch is its first dimension.
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = |t: &str| super::parse_number(t, "a batch size", 1, i64::MAX as u64))]
    pub batch: Option<u64>,
}

impl FeedArgs {
    /// Where the weights and inputs come from; refused when --seed is given but nothing is
    /// drawn from it (weights from --weights, inputs from --input), rather than ignored.
    pub fn feed(&self) -> Result<Feed<'_>, CliError> {
        if self.seed.is_some() && self.weights.is_some() && !self.random_input {
            return Err(CliError::io(
                "--seed has nothing to seed: the weights come from --weights and the inputs \
                 from --input (it seeds random weights, when no --weights is given, and \
                 --random-input)",
            ));
        }
        Ok(Feed {
            weights: self.weights.as_deref(),
            seed: self.seed(),
            inputs: &self.input,
            random_input: self.random_input,
            batch: self.batch,
        })
    }

    /// `--seed`, 0 when not given.
    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or(0)
    }

    /// Once the network is known: refused when --seed is given, its inputs come from
    /// --input and it has no parameters, so that no weights are drawn either (as `feed`
    /// refuses the seed beside --weights).
    pub fn check_seed_used(&self, g: &Graph) -> Result<(), CliError> {
        if self.seed.is_some()
            && self.weights.is_none()
            && !self.random_input
            && !self.input.is_empty()
            && !has_params(g)
        {
            return Err(CliError::io(format!(
                "--seed has nothing to seed: network `{}` has no parameters and the inputs \
                 come from --input (it seeds the weights of a network with parameters, when no \
                 --weights is given, and --random-input)",
                g.name
            )));
        }
        Ok(())
    }
}

/// Whether any op of `g` has parameters (weights that a run without --weights draws).
pub fn has_params(g: &Graph) -> bool {
    g.node_ids().any(|id| g.node(id).op.has_params())
}

/// `--threads`: 1 to 256, refused otherwise (never silently clamped).
pub fn parse_threads(text: &str) -> Result<usize, String> {
    let n: usize = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of threads"))?;
    if (1..=MAX_THREADS).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{n} threads: give 1 to {MAX_THREADS} (more workers only add thread start-up)"
        ))
    }
}

/// The worker threads for a run: `requested`, or all cores (at most 256).
pub fn threads(requested: Option<usize>) -> usize {
    requested
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, MAX_THREADS)
}

/// The convolution kernels' instruction set: the fastest this CPU has, unless `RESNETC_CPU`
/// (`avx512`, `avx2`, `portable`) names another, so that each can be measured on one machine.
pub fn instruction_set() -> Result<crate::machine::simd::Isa, CliError> {
    crate::machine::simd::Isa::from_env().map_err(|m| CliError::io(format!("RESNETC_CPU: {m}")))
}

/// A run request for a checked network: its weights (read and validated, or `None` to draw
/// them) and inputs (read, or to be drawn); or the diagnostics saying why the weights do not
/// fit the network.
pub fn request(
    f: &Feed,
    net: Network,
    options: RunOptions,
) -> Result<Result<Request, Vec<Diagnostic>>, CliError> {
    let (g, shapes) = (net.graph(), net.shapes());
    input::check_runnable(g).map_err(CliError::input)?;
    let limit = memory::available();
    let inputs = if f.random_input {
        Inputs::Random {
            batch: f.batch.unwrap_or(1),
        }
    } else {
        if f.batch.is_some() {
            return Err(CliError::io(
                "--batch applies to --random-input and images; a .npy input's batch is its first dimension",
            ));
        }
        Inputs::Given(read_inputs(f, g, shapes, limit, options.threads)?)
    };
    let weights = match f.weights {
        None => None,
        Some(path) => match load_weights(Some(path), f.seed, g, shapes)? {
            Ok(w) => Some(w),
            Err(diags) => return Ok(Err(diags)),
        },
    };
    Ok(Ok(Request {
        weights,
        inputs,
        seed: f.seed,
        options,
        memory_limit: limit,
    }))
}

/// The weights and checked inputs of a checked network (and warnings about non-finite
/// values), for a caller that plans and runs by itself (`analyze`).
#[allow(clippy::type_complexity)]
pub fn load(
    f: &Feed,
    g: &Graph,
    shapes: &Shapes,
) -> Result<Result<(weights::Weights, Vec<ArrayD<f32>>), Vec<Diagnostic>>, CliError> {
    let net = Network::new(g, shapes);
    let request = match request(f, net, RunOptions::new(threads(None)))? {
        Ok(r) => r,
        Err(diags) => return Ok(Err(diags)),
    };
    let ready = interp::prepare(&net, request).map_err(CliError::input)?;
    for w in &ready.warnings {
        say!("warning: {w}");
    }
    Ok(Ok((ready.weights, ready.inputs)))
}

/// The weights from `path` (validated against the network), or drawn from `seed`; or the
/// diagnostics (E0301–E0304) saying why the file does not fit. Shared by `run`, `analyze`
/// and `export`. The file is refused past twice the network's float32 weights (room to
/// diagnose float64 weights) before it is read, whatever kind of file it is.
pub(super) fn load_weights(
    path: Option<&Path>,
    seed: u64,
    g: &Graph,
    shapes: &Shapes,
) -> Result<Result<weights::Weights, Vec<Diagnostic>>, CliError> {
    let Some(path) = path else {
        return Ok(Ok(weights::seeded(g, shapes, seed)));
    };
    let needed: u64 = weights::expected(g, shapes)
        .iter()
        .map(|e| e.shape.iter().product::<usize>() as u64 * 4)
        .sum();
    let limit = needed.saturating_mul(2).saturating_add(1 << 20);
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64);
    let too_large = |size: Option<u64>| {
        CliError::input(format!(
            "`{}` {}, but network `{}` has only {} of float32 weights: is it the right file?",
            path.display(),
            size.map_or_else(
                || format!("is not a regular file and holds more than {}", mib(limit)),
                |s| format!("is {}", mib(s))
            ),
            g.name,
            mib(needed)
        ))
    };
    let read_error =
        |e: std::io::Error| CliError::io(format!("cannot read weights `{}`: {e}", path.display()));
    // A regular file is mapped after its size is checked; anything else (a FIFO, /dev/zero)
    // cannot be mapped and is read in chunks up to the limit. The type comes from `stat`, not
    // from an open file: a FIFO may be opened only once (a second open waits for a writer).
    let meta = std::fs::metadata(path).map_err(read_error)?;
    let bytes = if meta.is_file() {
        if meta.len() > limit {
            return Err(too_large(Some(meta.len())));
        }
        let file = std::fs::File::open(path).map_err(read_error)?;
        weights::FileBytes::map(&file).map_err(read_error)?
    } else {
        let bytes = read_bounded(path, limit, "weights").map_err(|e| match e {
            ReadError::TooLarge(size) => too_large(size),
            ReadError::Io(e) => e,
        })?;
        weights::FileBytes::Read(bytes)
    };
    match weights::from_safetensors(g, shapes, bytes) {
        Ok(w) => Ok(Ok(w)),
        Err(weights::WeightsError::Format(m)) => {
            Err(CliError::input(format!("`{}`: {m}", path.display())))
        }
        Err(weights::WeightsError::Mismatch(diags)) => Ok(Err(diags)),
    }
}

/// Read and decode each `--input`, bounded by its declared shape (a symbolic batch by the
/// largest batch that could run in `limit` bytes), with its name for messages.
fn read_inputs(
    f: &Feed,
    g: &Graph,
    shapes: &Shapes,
    limit: Option<u64>,
    threads: usize,
) -> Result<Vec<(String, ArrayD<f32>)>, CliError> {
    if f.inputs.len() != g.inputs.len() {
        return Err(CliError::io(format!(
            "network `{}` has {} input{}; give {} with --input X.npy (or use --random-input)",
            g.name,
            g.inputs.len(),
            if g.inputs.len() == 1 { "" } else { "s" },
            if g.inputs.len() == 1 {
                "one"
            } else {
                "one --input per input, in order"
            }
        )));
    }
    let max_batch = limit.map_or(u64::MAX, |l| {
        l / estimate_bytes(g, shapes, 1, threads).max(1)
    });
    let mut out = Vec::new();
    for (path, decl) in f.inputs.iter().zip(&g.inputs) {
        let per_sample: u64 = decl
            .dims
            .iter()
            .skip(1)
            .map(|d| match d {
                DimSpec::Known(v) => *v,
                DimSpec::Sym(_) => 1,
            })
            .fold(4u64, u64::saturating_mul);
        let batch = match decl.dims.first() {
            Some(DimSpec::Known(n)) => *n,
            _ => max_batch.max(1),
        };
        // The data plus a header.
        let max = per_sample.saturating_mul(batch).saturating_add(1 << 16);
        let shown = format!("`{}`", path.display());
        let bytes = read_bounded(path, max, "input").map_err(|e| match e {
            ReadError::TooLarge(size) => CliError::input(format!(
                "{shown} {} than input `{}` (declared {}) can be: is it the right file?",
                if size.is_some() {
                    "is larger"
                } else {
                    "is not a regular file and holds more"
                },
                decl.name,
                memory::dims_text(&decl.dims)
            )),
            ReadError::Io(e) => e,
        })?;
        let x = input::from_npy(&bytes).map_err(|m| CliError::input(format!("{shown} {m}")))?;
        out.push((shown, x));
    }
    Ok(out)
}
