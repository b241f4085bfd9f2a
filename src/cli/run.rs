//! `resnetc run FILE`: check, load weights and input, execute, write and print the result.

use super::{
    CliError, Color, EXIT_ERRORS, EXIT_OK, Format, print_diagnostics, read_source, write_stdout,
};
use crate::diag::Diagnostic;
use crate::diag::render::{JsonDiagnostic, to_json};
use crate::interp::{self, RunOptions, plan, weights};
use crate::ir::{DimSpec, Graph};
use crate::shape::Shapes;
use crate::span::Source;
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{ViewNpyExt, WriteNpyExt};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// More workers than this only adds thread start-up to every convolution.
const MAX_THREADS: usize = 256;

/// Run a network on the CPU: weights in, tensor in, tensor out.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The `.res` file; `-` reads standard input.
    pub file: PathBuf,
    /// The network to run, when the file defines several.
    #[arg(long, short = 'n', value_name = "NAME")]
    pub network: Option<String>,
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
    /// Write the (first) output here as `.npy`, atomically.
    #[arg(long, short = 'o', value_name = "FILE.npy")]
    pub output: Option<PathBuf>,
    /// For a [N, classes] output, print the K best classes per sample (0: none).
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub top: usize,
    /// Worker threads for convolutions (default: all cores; at most 256).
    #[arg(long, value_name = "T")]
    pub threads: Option<usize>,
    /// Output format: human text, or one JSON/YAML document on stdout (diagnostics, outputs
    /// and their top classes).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// When to color diagnostics.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

/// The JSON/YAML document `run --format json|yaml` prints (schema in README.md).
#[derive(Serialize, Default)]
struct RunReport {
    diagnostics: Vec<JsonDiagnostic>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    outputs: Vec<OutputReport>,
}

#[derive(Serialize)]
struct OutputReport {
    name: String,
    shape: Vec<usize>,
    /// Per sample, the best classes of a `[N, classes]` output, best first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    top: Vec<Vec<ClassScore>>,
    /// Where the output was written (`-o`).
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
}

#[derive(Serialize)]
struct ClassScore {
    class: usize,
    score: f32,
}

pub fn run(a: &RunArgs) -> Result<i32, CliError> {
    let machine = matches!(a.format, Format::Json | Format::Yaml);
    let mut report = RunReport::default();
    // Diagnostics go to stderr as text, or into the report.
    let emit =
        |source: &Source, diags: &[Diagnostic], report: &mut RunReport| -> Result<(), CliError> {
            if machine {
                report
                    .diagnostics
                    .extend(diags.iter().map(|d| to_json(source, d)));
                Ok(())
            } else {
                print_diagnostics(source, diags, a.format, a.color)
            }
        };
    let finish = |report: &RunReport, code: i32| -> Result<i32, CliError> {
        if machine {
            write_stdout(super::to_machine(report, a.format)?.as_bytes())?;
        }
        Ok(code)
    };
    let source = match read_source(&a.file)? {
        Ok(s) => s,
        Err((source, d)) => {
            emit(&source, &[d], &mut report)?;
            return finish(&report, EXIT_ERRORS);
        }
    };
    let checked = crate::check(&source, a.network.as_deref());
    emit(&source, &checked.diagnostics, &mut report)?;
    let (Some(g), Some(shapes), false) = (&checked.graph, &checked.shapes, checked.has_errors())
    else {
        return finish(&report, EXIT_ERRORS);
    };
    check_output_path(a)?;
    if a.random_input {
        // Before drawing the input: it may be the allocation that does not fit.
        check_memory(g, shapes, a.batch, threads(a))?;
    }
    let inputs = load_inputs(a, g)?;
    if !a.random_input {
        check_memory(
            g,
            shapes,
            inputs.first().map_or(1, |x| x.shape()[0] as u64),
            threads(a),
        )?;
    }
    let weights = match load_weights(a.weights.as_deref(), a.seed, g, shapes)? {
        Ok(w) => w,
        Err(diags) => {
            emit(&source, &diags, &mut report)?;
            if !machine {
                eprintln!("error: the weights do not fit network `{}`", g.name);
            }
            return finish(&report, EXIT_ERRORS);
        }
    };
    let program = plan::plan(g, shapes, weights);
    let threads = threads(a);
    let isa = instruction_set()?;
    let outputs = interp::run(&program, inputs, RunOptions { threads, isa });
    report.outputs = results(a, &outputs)?;
    if !machine {
        write_stdout(to_text(&report.outputs).as_bytes())?;
    }
    finish(&report, EXIT_OK)
}

/// The weights from `--weights` (validated against the network), or drawn from `seed`; or
/// the diagnostics (E0301–E0304) saying why the file does not fit the network. Shared by
/// `run` and `export`.
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

/// The convolution kernels' instruction set: the fastest this CPU has, unless `RESNETC_CPU`
/// (`avx512`, `avx2`, `portable`) names another, so that each can be measured on one machine.
fn instruction_set() -> Result<crate::machine::simd::Isa, CliError> {
    use crate::machine::simd::Isa;
    match std::env::var("RESNETC_CPU") {
        Ok(name) if !name.is_empty() => {
            Isa::named(&name).map_err(|m| CliError::io(format!("RESNETC_CPU: {m}")))
        }
        _ => Ok(Isa::best()),
    }
}

/// Read or draw the inputs, and check them against the declared shapes.
fn load_inputs(a: &RunArgs, g: &Graph) -> Result<Vec<ArrayD<f32>>, CliError> {
    if !a.random_input && a.input.len() != g.inputs.len() {
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
        let x = if a.random_input {
            let dims: Vec<usize> = decl
                .dims
                .iter()
                .map(|d| match d {
                    DimSpec::Known(v) => *v as usize,
                    DimSpec::Sym(_) => a.batch as usize,
                })
                .collect();
            let n: usize = dims.iter().product();
            let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed.wrapping_add(1 + i as u64));
            let data: Vec<f32> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
            ArrayD::from_shape_vec(IxDyn(&dims), data)
                .map_err(|e| CliError::input(format!("cannot make the random input: {e}")))?
        } else {
            read_npy(&a.input[i])?
        };
        check_input(
            &decl.name,
            &decl.dims,
            x.shape(),
            &mut bound,
            if a.random_input {
                None
            } else {
                Some(&a.input[i])
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
    path: Option<&PathBuf>,
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

/// Worker threads: `--threads`, else one per core.
fn threads(a: &RunArgs) -> usize {
    a.threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, MAX_THREADS)
}

/// Refuse a run whose memory estimate exceeds what the machine has available.
fn check_memory(g: &Graph, shapes: &Shapes, batch: u64, threads: usize) -> Result<(), CliError> {
    let need = plan::estimate_bytes(g, shapes, batch, threads);
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

/// The output path must be writable and must not be one of the inputs.
fn check_output_path(a: &RunArgs) -> Result<(), CliError> {
    let Some(out) = &a.output else { return Ok(()) };
    let inputs = std::iter::once(&a.file)
        .chain(a.weights.iter())
        .chain(a.input.iter());
    super::check_output_path(out, inputs.map(PathBuf::as_path))
}

/// Write the first output (`-o`) atomically, and collect each output's shape and top classes.
fn results(a: &RunArgs, outputs: &[(String, ArrayD<f32>)]) -> Result<Vec<OutputReport>, CliError> {
    let mut reports = Vec::new();
    for (i, (name, y)) in outputs.iter().enumerate() {
        let file = match (&a.output, i) {
            (Some(path), 0) => {
                write_npy_atomically(path, y)?;
                Some(path.display().to_string())
            }
            _ => None,
        };
        let mut top = Vec::new();
        if a.top > 0 && y.ndim() == 2 {
            for row in y.outer_iter() {
                let mut idx: Vec<usize> = (0..row.len()).collect();
                idx.sort_by(|&p, &q| row[q].total_cmp(&row[p]).then(p.cmp(&q)));
                top.push(
                    idx.iter()
                        .take(a.top)
                        .map(|&class| ClassScore {
                            class,
                            score: row[class],
                        })
                        .collect(),
                );
            }
        }
        reports.push(OutputReport {
            name: name.clone(),
            shape: y.shape().to_vec(),
            top,
            file,
        });
    }
    Ok(reports)
}

/// The human report: each output's shape, then the top classes per sample.
fn to_text(outputs: &[OutputReport]) -> String {
    let mut text = String::new();
    for o in outputs {
        text.push_str(&format!("output {}: {:?}\n", o.name, o.shape));
        for (i, best) in o.top.iter().enumerate() {
            let best: Vec<String> = best
                .iter()
                .map(|c| format!("{} ({:.4})", c.class, c.score))
                .collect();
            text.push_str(&format!(
                "sample {i}: top-{} {}\n",
                best.len(),
                best.join(", ")
            ));
        }
    }
    text
}

fn write_npy_atomically(path: &Path, y: &ArrayD<f32>) -> Result<(), CliError> {
    let mut bytes = Vec::new();
    y.write_npy(&mut bytes)
        .map_err(|e| CliError::io(format!("cannot encode the output as .npy: {e}")))?;
    super::write_atomically(path, &bytes)
}
