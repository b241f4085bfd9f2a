//! `resnetc run FILE`: check, load weights and input, execute, write and print the result.

use super::{
    CliError, Color, EXIT_ERRORS, EXIT_OK, Format, feed, print_diagnostics, read_source,
    write_stdout,
};
use crate::diag::Diagnostic;
use crate::diag::render::{JsonDiagnostic, to_json};
use crate::interp::{self, RunOptions};
use crate::span::Source;
use ndarray::ArrayD;
use ndarray_npy::WriteNpyExt;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Run a network on the CPU: weights in, tensor in, tensor out.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The `.res` file; `-` reads standard input.
    pub file: PathBuf,
    /// The network to run, when the file defines several.
    #[arg(long, short = 'n', value_name = "NAME")]
    pub network: Option<String>,
    #[command(flatten)]
    pub feed: feed::FeedArgs,
    /// Write the (first) output here as `.npy`, atomically.
    #[arg(long, short = 'o', value_name = "FILE.npy")]
    pub output: Option<PathBuf>,
    /// For a [N, classes] output, print the K best classes per sample (0: none).
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub top: usize,
    /// Worker threads for convolutions (default: all cores; 1 to 256).
    #[arg(long, value_name = "T", value_parser = feed::parse_threads)]
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
                .chain(a.feed.weights.as_deref())
                .chain(a.feed.input.iter().map(PathBuf::as_path))
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
    super::require_network(&source, a.network.as_deref())?;
    let checked = crate::check(&source, a.network.as_deref());
    emit(&source, &checked.diagnostics, report)?;
    let Some(net) = checked.network() else {
        return Ok(EXIT_ERRORS);
    };
    let options = RunOptions {
        threads: feed::threads(a.threads),
        isa: feed::instruction_set()?,
    };
    let request = match feed::request(&a.feed.feed(), net, options)? {
        Ok(r) => r,
        Err(diags) => {
            emit(&source, &diags, report)?;
            if !machine {
                eprintln!(
                    "error: the weights do not fit network `{}`",
                    net.graph().name
                );
            }
            return Ok(EXIT_ERRORS);
        }
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
