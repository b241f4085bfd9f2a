//! `resnetc run FILE`: check, load weights and input, execute, write and print the result.

use super::{
    CliError, Color, EXIT_ERRORS, EXIT_OK, Format, print_diagnostics, read_source, write_stdout,
};
use crate::diag::Diagnostic;
use crate::diag::render::{JsonDiagnostic, to_json};
use crate::interp::plan::estimate_bytes;
use crate::interp::{self, Inputs, Network, Request, RunOptions, input, weights};
use crate::ir::DimSpec;
use crate::span::Source;
use ndarray::ArrayD;
use ndarray_npy::WriteNpyExt;
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
    /// With --random-input: the batch size for a symbolic batch (1 to 2^63 - 1).
    #[arg(long, default_value_t = 1, value_name = "N", requires = "random_input",
          value_parser = clap::value_parser!(u64).range(1..=i64::MAX as u64))]
    pub batch: u64,
    /// Write the (first) output here as `.npy`, atomically.
    #[arg(long, short = 'o', value_name = "FILE.npy")]
    pub output: Option<PathBuf>,
    /// For a [N, classes] output, print the K best classes per sample (0: none).
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub top: usize,
    /// Worker threads for convolutions (default: all cores; 1 to 256).
    #[arg(long, value_name = "T", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Output format: human text, or one JSON/YAML document on stdout (diagnostics, outputs
    /// and their top classes).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// When to color diagnostics.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

fn parse_threads(text: &str) -> Result<usize, String> {
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
    let code = match run_reporting(a, &mut report) {
        Ok(code) => code,
        // In JSON/YAML mode an error outside the source is a diagnostic of the document.
        Err(e) if machine => {
            report.diagnostics.push(JsonDiagnostic::plain(&e.message));
            e.code
        }
        Err(e) => return Err(e),
    };
    if machine {
        write_stdout(super::to_machine(&report, a.format)?.as_bytes())?;
    }
    Ok(code)
}

fn run_reporting(a: &RunArgs, report: &mut RunReport) -> Result<i32, CliError> {
    let machine = matches!(a.format, Format::Json | Format::Yaml);
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
    // The output path is checked before anything is read or run.
    let output = match &a.output {
        Some(out) => {
            let inputs: Vec<&Path> = std::iter::once(a.file.as_path())
                .chain(a.weights.as_deref())
                .chain(a.input.iter().map(PathBuf::as_path))
                .collect();
            Some(super::output_target(out, &inputs)?)
        }
        None => None,
    };
    let source = match read_source(&a.file)? {
        Ok(s) => s,
        Err((source, d)) => {
            emit(&source, &[d], report)?;
            return Ok(EXIT_ERRORS);
        }
    };
    let checked = crate::check(&source, a.network.as_deref());
    emit(&source, &checked.diagnostics, report)?;
    let Some(net) = checked.network() else {
        return Ok(EXIT_ERRORS);
    };
    let g = net.graph();
    input::check_runnable(g).map_err(CliError::input)?;
    let limit = super::memory::available();
    let inputs = if a.random_input {
        Inputs::Random { batch: a.batch }
    } else {
        Inputs::Given(load_inputs(a, net, limit)?)
    };
    let weights = match load_weights(a, net)? {
        Ok(w) => w,
        Err(diags) => {
            emit(&source, &diags, report)?;
            if !machine {
                eprintln!("error: the weights do not fit network `{}`", g.name);
            }
            return Ok(EXIT_ERRORS);
        }
    };
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(MAX_THREADS);
    let request = Request {
        weights,
        inputs,
        seed: a.seed,
        options: RunOptions { threads },
        memory_limit: limit,
    };
    let outcome = interp::run(&net, request).map_err(CliError::input)?;
    for w in &outcome.warnings {
        if machine {
            report.diagnostics.push(JsonDiagnostic::plain_warning(w));
        } else {
            eprintln!("warning: {w}");
        }
    }
    report.outputs = results(a, output.as_deref(), &outcome.outputs)?;
    if !machine {
        write_stdout(to_text(&report.outputs).as_bytes())?;
    }
    Ok(EXIT_OK)
}

/// The weights (`None`: drawn from the seed), or the diagnostics saying why they do not fit
/// the network.
fn load_weights(
    a: &RunArgs,
    net: Network,
) -> Result<Result<Option<weights::Weights>, Vec<Diagnostic>>, CliError> {
    let Some(path) = &a.weights else {
        return Ok(Ok(None));
    };
    let (g, shapes) = (net.graph(), net.shapes());
    // Refuse a file far larger than the network's weights before reading it into memory
    // (twice the float32 size leaves room to diagnose float64 weights).
    let needed: u64 = weights::expected(g, shapes)
        .iter()
        .map(|e| e.shape.iter().product::<usize>() as u64 * 4)
        .sum();
    let limit = needed.saturating_mul(2).saturating_add(1 << 20);
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64);
    let bytes = super::read_bounded(path, limit, "weights").map_err(|e| match e {
        super::ReadError::TooLarge(size) => CliError::input(format!(
            "`{}` {}, but network `{}` has only {} of float32 weights: is it the right file?",
            path.display(),
            size.map_or_else(
                || format!("is not a regular file and holds more than {}", mib(limit)),
                |s| format!("is {}", mib(s))
            ),
            g.name,
            mib(needed)
        )),
        super::ReadError::Io(e) => e,
    })?;
    match weights::from_safetensors(g, shapes, &bytes) {
        Ok(w) => Ok(Ok(Some(w))),
        Err(weights::WeightsError::Format(m)) => {
            Err(CliError::input(format!("`{}`: {m}", path.display())))
        }
        Err(weights::WeightsError::Mismatch(diags)) => Ok(Err(diags)),
    }
}

/// Read each `--input` (bounded by the declared shape), with its name for messages.
fn load_inputs(
    a: &RunArgs,
    net: Network,
    limit: Option<u64>,
) -> Result<Vec<(String, ArrayD<f32>)>, CliError> {
    let (g, shapes) = (net.graph(), net.shapes());
    if a.input.len() != g.inputs.len() {
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
    // A symbolic batch is bounded by the largest batch that could run in `limit` bytes.
    let max_batch = limit.map_or(u64::MAX, |l| l / estimate_bytes(g, shapes, 1).max(1));
    let mut out = Vec::new();
    for (path, decl) in a.input.iter().zip(&g.inputs) {
        // A file holds the declared shape plus a header.
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
        let max = per_sample.saturating_mul(batch).saturating_add(1 << 16);
        let shown = format!("`{}`", path.display());
        let bytes = super::read_bounded(path, max, "input").map_err(|e| match e {
            super::ReadError::TooLarge(size) => CliError::input(format!(
                "{shown} {} than input `{}` (declared {}) can be: is it the right file?",
                if size.is_some() {
                    "is larger"
                } else {
                    "is not a regular file and holds more"
                },
                decl.name,
                super::memory::dims_text(&decl.dims)
            )),
            super::ReadError::Io(e) => e,
        })?;
        let x = input::from_npy(&bytes).map_err(|m| CliError::input(format!("{shown} {m}")))?;
        out.push((shown, x));
    }
    Ok(out)
}

/// Write the first output (`-o`) atomically, and collect each output's shape and top classes.
fn results(
    a: &RunArgs,
    output: Option<&Path>,
    outputs: &[(String, ArrayD<f32>)],
) -> Result<Vec<OutputReport>, CliError> {
    let mut reports = Vec::new();
    for (i, (name, y)) in outputs.iter().enumerate() {
        let file = match (output, i) {
            (Some(path), 0) => {
                write_npy_atomically(path, y)?;
                a.output.as_ref().map(|p| p.display().to_string())
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
