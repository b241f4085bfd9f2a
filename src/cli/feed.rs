//! Feeding a network: its weights (a safetensors file, or drawn from a seed) and its inputs
//! (`.npy` files, or a seeded standard-normal tensor), checked against the network and against
//! the memory the run needs. Shared by `run` and `analyze`.

use super::CliError;
use crate::diag::Diagnostic;
use crate::interp::{plan, weights};
use crate::ir::{DimSpec, Graph};
use crate::shape::Shapes;
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::ViewNpyExt;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use std::path::{Path, PathBuf};

/// More workers than this only adds thread start-up to every convolution.
const MAX_THREADS: usize = 256;

/// Where the weights and inputs come from (the command-line flags of `run` and `analyze`).
pub struct Feed<'a> {
    /// A safetensors file; without it, weights are drawn from `seed`.
    pub weights: Option<&'a Path>,
    pub seed: u64,
    /// One `.npy` file per network input, in declaration order.
    pub inputs: &'a [PathBuf],
    /// Draw the inputs from `seed` instead, with batch `batch` for a symbolic batch.
    pub random_input: bool,
    pub batch: u64,
}

/// The flags that say where the weights and inputs come from.
#[derive(clap::Args, Debug)]
pub struct FeedArgs {
    /// Weights: a safetensors file whose keys are the layers' paths (PyTorch's state_dict keys).
    #[arg(long, value_name = "FILE.safetensors")]
    pub weights: Option<PathBuf>,
    /// Seed of the weights when no --weights is given (He normal for convs), and of
    /// --random-input.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The input tensor, float32 NCHW `.npy` (once per network input, in declaration order).
    #[arg(long, value_name = "FILE.npy")]
    pub input: Vec<PathBuf>,
    /// Instead of --input: a seeded standard-normal input (the seed is --seed).
    #[arg(long, conflicts_with = "input")]
    pub random_input: bool,
    /// With --random-input: the batch size for a symbolic batch.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub batch: u64,
}

impl FeedArgs {
    pub fn feed(&self) -> Feed<'_> {
        Feed {
            weights: self.weights.as_deref(),
            seed: self.seed,
            inputs: &self.input,
            random_input: self.random_input,
            batch: self.batch,
        }
    }
}

/// The worker threads for a run: `requested`, or all cores; at least 1, at most 256.
pub fn threads(requested: Option<usize>) -> usize {
    requested
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, MAX_THREADS)
}

/// The convolution kernels' instruction set: the fastest this CPU has, unless `RESNETC_CPU`
/// (`avx512`, `avx2`, `portable`) names another, so that each can be measured on one machine.
pub fn instruction_set() -> Result<crate::machine::simd::Isa, CliError> {
    use crate::machine::simd::Isa;
    match std::env::var("RESNETC_CPU") {
        Ok(name) if !name.is_empty() => {
            Isa::named(&name).map_err(|m| CliError::io(format!("RESNETC_CPU: {m}")))
        }
        _ => Ok(Isa::best()),
    }
}

/// The weights and inputs of a checked network, after checking that the run fits in memory;
/// or the diagnostics saying why the weights do not fit the network.
#[allow(clippy::type_complexity)]
pub fn load(
    f: &Feed,
    g: &Graph,
    shapes: &Shapes,
) -> Result<Result<(weights::Weights, Vec<ArrayD<f32>>), Vec<Diagnostic>>, CliError> {
    if f.random_input {
        // Before drawing the input: it may be the allocation that does not fit.
        check_memory(g, shapes, f.batch)?;
    }
    let inputs = load_inputs(f, g)?;
    if !f.random_input {
        check_memory(g, shapes, inputs.first().map_or(1, |x| x.shape()[0] as u64))?;
    }
    Ok(load_weights(f.weights, f.seed, g, shapes)?.map(|w| (w, inputs)))
}

/// The weights from `path` (validated against the network), or drawn from `seed`; or the
/// diagnostics (E0301–E0304) saying why the file does not fit. Shared by `run`, `analyze`
/// and `export`.
pub(super) fn load_weights(
    path: Option<&Path>,
    seed: u64,
    g: &Graph,
    shapes: &Shapes,
) -> Result<Result<weights::Weights, Vec<Diagnostic>>, CliError> {
    let Some(path) = path else {
        return Ok(Ok(weights::seeded(g, shapes, seed)));
    };
    let read_error =
        |e: std::io::Error| CliError::io(format!("cannot read weights `{}`: {e}", path.display()));
    // Refuse a file far larger than the network's weights before reading it into memory
    // (twice the float32 size leaves room to diagnose float64 weights).
    let needed: u64 = weights::expected(g, shapes)
        .iter()
        .map(|e| e.shape.iter().product::<usize>() as u64 * 4)
        .sum();
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > needed.saturating_mul(2).saturating_add(1 << 20) {
        return Err(CliError::input(format!(
            "`{}` is {:.1} MiB, but network `{}` has only {:.1} MiB of float32 weights: is it the right file?",
            path.display(),
            size as f64 / (1u64 << 20) as f64,
            g.name,
            needed as f64 / (1u64 << 20) as f64
        )));
    }
    let file = std::fs::File::open(path).map_err(read_error)?;
    let bytes = weights::FileBytes::map(&file).map_err(read_error)?;
    match weights::from_safetensors(g, shapes, bytes) {
        Ok(w) => Ok(Ok(w)),
        Err(weights::WeightsError::Format(m)) => {
            Err(CliError::input(format!("`{}`: {m}", path.display())))
        }
        Err(weights::WeightsError::Mismatch(diags)) => Ok(Err(diags)),
    }
}

/// Read or draw the inputs, and check them against the declared shapes.
fn load_inputs(f: &Feed, g: &Graph) -> Result<Vec<ArrayD<f32>>, CliError> {
    if !f.random_input && f.inputs.len() != g.inputs.len() {
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
    for decl in &g.inputs {
        if let Some(DimSpec::Sym(s)) = decl
            .dims
            .iter()
            .skip(1)
            .find(|d| matches!(d, DimSpec::Sym(_)))
        {
            return Err(CliError::input(format!(
                "cannot run `{}`: dimension `{s}` of input `{}` is symbolic; only the batch may be (state the size in the network)",
                g.name, decl.name
            )));
        }
    }
    let mut bound: Vec<(String, usize)> = Vec::new();
    let mut out = Vec::new();
    for (i, decl) in g.inputs.iter().enumerate() {
        let x = if f.random_input {
            let dims: Vec<usize> = decl
                .dims
                .iter()
                .map(|d| match d {
                    DimSpec::Known(v) => *v as usize,
                    DimSpec::Sym(_) => f.batch as usize,
                })
                .collect();
            let n: usize = dims.iter().product();
            let mut rng = rand::rngs::StdRng::seed_from_u64(f.seed.wrapping_add(1 + i as u64));
            let data: Vec<f32> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
            ArrayD::from_shape_vec(IxDyn(&dims), data)
                .map_err(|e| CliError::input(format!("cannot make the random input: {e}")))?
        } else {
            read_npy(&f.inputs[i])?
        };
        check_input(
            &decl.name,
            &decl.dims,
            x.shape(),
            &mut bound,
            if f.random_input {
                None
            } else {
                Some(f.inputs[i].as_path())
            },
        )?;
        out.push(x);
    }
    Ok(out)
}

/// Read a float32 `.npy` file. The bytes are read first and viewed in place, so a header that
/// claims more data than the file holds is an error, not an allocation of that size.
fn read_npy(path: &Path) -> Result<ArrayD<f32>, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::io(format!("cannot read input `{}`: {e}", path.display())))?;
    let view = ndarray::ArrayViewD::<f32>::view_npy(&bytes).map_err(|e| {
        CliError::input(format!(
            "`{}` is not a float32 .npy array: {e}",
            path.display()
        ))
    })?;
    Ok(view.as_standard_layout().into_owned())
}

fn check_input(
    name: &str,
    dims: &[DimSpec],
    shape: &[usize],
    bound: &mut Vec<(String, usize)>,
    path: Option<&Path>,
) -> Result<(), CliError> {
    let what = path.map_or_else(
        || "the random input".to_string(),
        |p| format!("`{}`", p.display()),
    );
    let declared: Vec<String> = dims
        .iter()
        .map(|d| match d {
            DimSpec::Known(v) => v.to_string(),
            DimSpec::Sym(s) => s.clone(),
        })
        .collect();
    let mismatch = || {
        CliError::input(format!(
            "{what} has shape {shape:?}, but input `{name}` is declared [{}]",
            declared.join(", ")
        ))
    };
    if shape.len() != dims.len() {
        return Err(mismatch());
    }
    for (d, &actual) in dims.iter().zip(shape) {
        match d {
            DimSpec::Known(v) if *v as usize != actual => return Err(mismatch()),
            DimSpec::Sym(s) => match bound.iter().find(|(b, _)| b == s) {
                Some((_, v)) if *v != actual => {
                    return Err(CliError::input(format!(
                        "{what} binds `{s}` to {actual}, but an earlier input bound it to {v}"
                    )));
                }
                Some(_) => {}
                None => bound.push((s.clone(), actual)),
            },
            _ => {}
        }
        if actual == 0 {
            return Err(CliError::input(format!(
                "{what} has an empty dimension: shape {shape:?}"
            )));
        }
    }
    Ok(())
}

/// Refuse a run whose memory estimate exceeds what the machine has available.
fn check_memory(g: &Graph, shapes: &Shapes, batch: u64) -> Result<(), CliError> {
    // Kernel scratch is per thread: count the default (one per core).
    let need = plan::estimate_bytes(g, shapes, batch, threads(None));
    let Some(available) = available_memory() else {
        return Ok(());
    };
    if need > available {
        return Err(CliError::input(format!(
            "running `{}` at batch {batch} needs about {:.1} GiB (activations, kernel scratch and weights), but only {:.1} GiB are available; use a smaller batch or input size",
            g.name,
            need as f64 / (1u64 << 30) as f64,
            available as f64 / (1u64 << 30) as f64
        )));
    }
    Ok(())
}

/// `MemAvailable` from /proc/meminfo, in bytes.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
