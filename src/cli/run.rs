//! `resnetc run FILE`: check, load weights and input, execute, write and print the result.

use super::{
    CliError, Color, EXIT_ERRORS, EXIT_OK, Format, feed, images, print_diagnostics, read_source,
    write_stdout,
};
use crate::diag::Diagnostic;
use crate::diag::render::{JsonDiagnostic, to_json};
use crate::interp::{self, RunOptions};
use crate::span::Source;
use ndarray::{ArrayD, ArrayView1};
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
    #[arg(long, default_value_t = 5, value_name = "K", allow_negative_numbers = true,
          value_parser = |t: &str| super::parse_number(t, "a number of classes", 0, usize::MAX as u64).map(|n| n as usize))]
    pub top: usize,
    /// Class names, one per line (as many lines as the output has classes), printed beside
    /// the class indices.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Show the top classes' softmax probabilities instead of their scores (logits).
    #[arg(long)]
    pub probs: bool,
    #[command(flatten)]
    pub image: images::ImageArgs,
    /// Worker threads for convolutions (default: all cores; 1 to 256).
    #[arg(long, value_name = "T", value_parser = feed::parse_threads, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Output format: human text, or one JSON/YAML document on stdout (diagnostics, outputs
    /// and their top classes); on images, one JSON line (YAML document) per image.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// When to color diagnostics.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

/// The JSON/YAML document `run --format json|yaml` prints (schema in README.md).
#[derive(Serialize, Default)]
pub(super) struct RunReport {
    pub diagnostics: Vec<JsonDiagnostic>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    outputs: Vec<OutputReport>,
    /// A run on images printed one line (document) per image: the report is one more line,
    /// printed only when it has something to say.
    #[serde(skip)]
    pub lines: bool,
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
pub(super) struct ClassScore {
    class: usize,
    /// Its name, from `--labels`.
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    /// The output's value (a logit).
    score: f32,
    /// With `--probs`: its softmax probability over the row.
    #[serde(skip_serializing_if = "Option::is_none")]
    prob: Option<f32>,
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
    if machine && !report.lines {
        write_stdout(super::to_machine(&report, a.format)?.as_bytes())?;
    } else if machine && !report.diagnostics.is_empty() {
        write_stdout(images::to_line(&report, a.format)?.as_bytes())?;
    }
    Ok(code)
}

/// Scores from drawn weights say nothing about the input: say so, once, before them (and
/// only once the run has passed its checks, so that a usage error comes alone). A network
/// without parameters draws none, and gets no note.
pub(super) fn note_seeded_weights(a: &RunArgs, net: interp::Network) {
    if feed::has_params(net.graph())
        && a.feed.weights.is_none()
        && !matches!(a.format, Format::Json | Format::Yaml)
    {
        say!(
            "note: no --weights given: running on seeded random weights (seed {}); the scores \
             do not describe the input",
            a.feed.seed()
        );
    }
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
    // The flags and the output path are checked before anything is read or run.
    let feed = a.feed.feed()?;
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
    a.feed.check_seed_used(net.graph())?;
    let options = RunOptions {
        threads: feed::threads(a.threads),
        isa: feed::instruction_set()?,
    };
    let labels = read_labels(a, net)?;
    if images::wanted(&a.feed.input) {
        report.lines = true;
        let weights = match feed::load_weights(feed.weights, feed.seed, net.graph(), net.shapes())?
        {
            Ok(w) => Some(w),
            Err(diags) => {
                emit(&source, &diags, report)?;
                if !machine {
                    say!(
                        "error: the weights do not fit network `{}`",
                        net.graph().name
                    );
                }
                return Ok(EXIT_ERRORS);
            }
        };
        return images::run(
            a,
            net,
            weights,
            options,
            labels.as_deref(),
            output.as_deref(),
            report,
        );
    }
    images::refuse_flags(&a.image)?;
    let request = match feed::request(&feed, net, options)? {
        Ok(r) => r,
        Err(diags) => {
            emit(&source, &diags, report)?;
            if !machine {
                say!(
                    "error: the weights do not fit network `{}`",
                    net.graph().name
                );
            }
            return Ok(EXIT_ERRORS);
        }
    };
    let outcome = interp::run(&net, request).map_err(CliError::input)?;
    note_seeded_weights(a, net);
    for w in &outcome.warnings {
        if machine {
            report.diagnostics.push(JsonDiagnostic::plain_warning(w));
        } else {
            say!("warning: {w}");
        }
    }
    report.outputs = results(a, labels.as_deref(), output.as_deref(), &outcome.outputs)?;
    if !machine {
        write_stdout(to_text(&report.outputs, a.probs).as_bytes())?;
        let n = outcome
            .outputs
            .first()
            .map_or(1, |(_, y)| y.shape().first().copied().unwrap_or(1));
        say!("{}", timing_text(n, "sample", outcome.elapsed));
    }
    Ok(EXIT_OK)
}

/// Write the first output (`-o`) atomically, and collect each output's shape and top classes.
fn results(
    a: &RunArgs,
    labels: Option<&[String]>,
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
                let row = row
                    .into_dimensionality()
                    .expect("a row of a 2-D array is 1-D");
                // Labels name the classes of the first output only.
                top.push(top_classes(row, a.top, labels.filter(|_| i == 0), a.probs));
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

/// The `k` best classes of one row of scores, best first (ties: the lower index first), with
/// their labels and, with `probs`, their softmax probabilities.
pub(super) fn top_classes(
    row: ArrayView1<f32>,
    k: usize,
    labels: Option<&[String]>,
    probs: bool,
) -> Vec<ClassScore> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&p, &q| row[q].total_cmp(&row[p]).then(p.cmp(&q)));
    // Softmax in f64, shifted by the maximum so that no exponential overflows.
    let max = row
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
    idx.iter()
        .take(k)
        .map(|&class| ClassScore {
            class,
            label: labels.and_then(|l| l.get(class)).cloned(),
            score: row[class],
            prob: probs.then(|| ((f64::from(row[class]) - max).exp() / sum) as f32),
        })
        .collect()
}

/// `top-K 238 golden retriever (11.6486), ...`: each class with its label and its score (or
/// its probability with `probs`).
pub(super) fn top_text(best: &[ClassScore], probs: bool) -> String {
    let best: Vec<String> = best
        .iter()
        .map(|c| {
            let value = if probs {
                c.prob.unwrap_or(f32::NAN)
            } else {
                c.score
            };
            match &c.label {
                Some(l) => format!("{} {l} ({value:.4})", c.class),
                None => format!("{} ({value:.4})", c.class),
            }
        })
        .collect();
    format!("top-{} {}", best.len(), best.join(", "))
}

/// The human report: each output's shape, then the top classes per sample.
fn to_text(outputs: &[OutputReport], probs: bool) -> String {
    let mut text = String::new();
    for o in outputs {
        text.push_str(&format!("output {}: {:?}\n", o.name, o.shape));
        for (i, best) in o.top.iter().enumerate() {
            text.push_str(&format!("sample {i}: {}\n", top_text(best, probs)));
        }
    }
    text
}

/// `ran 8 images in 0.412 s: 51.5 ms per image, 19.4 images/s` (`what` is the unit).
pub(super) fn timing_text(n: usize, what: &str, elapsed: std::time::Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let n_f = n.max(1) as f64;
    format!(
        "ran {n} {what}{} in {secs:.3} s: {:.1} ms per {what}, {:.1} {what}s/s",
        if n == 1 { "" } else { "s" },
        secs * 1e3 / n_f,
        n_f / secs.max(1e-9)
    )
}

/// The class names of `--labels`, one per line, as many as the first output has classes.
fn read_labels(a: &RunArgs, net: interp::Network) -> Result<Option<Vec<String>>, CliError> {
    let Some(path) = &a.labels else {
        return Ok(None);
    };
    let shown = path.display();
    let g = net.graph();
    let Some(out) = g.outputs.first() else {
        return Err(CliError::io("--labels needs a network with an output"));
    };
    let classes = net
        .shapes()
        .get(out.node)
        .filter(|s| s.rank() == 2)
        .and_then(|s| s.dim(1).known());
    let Some(classes) = classes else {
        return Err(CliError::io(format!(
            "--labels names the classes of a [N, classes] output, but output `{}` is not one",
            out.name
        )));
    };
    // A class name is short: 1 KiB a line is far more than any label set needs.
    let bytes = super::read_bounded(
        path,
        classes.saturating_mul(1024).saturating_add(1024),
        "labels",
    )
    .map_err(|e| match e {
        super::ReadError::TooLarge(_) => CliError::input(format!(
            "labels `{shown}` is too large for {classes} class names: is it the right file?"
        )),
        super::ReadError::Io(e) => e,
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::input(format!("labels `{shown}` is not UTF-8 text")))?;
    let labels: Vec<String> = text
        .strip_suffix('\n')
        .unwrap_or(&text)
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect();
    let n = if text.is_empty() { 0 } else { labels.len() };
    if n as u64 != classes {
        return Err(CliError::input(format!(
            "labels `{shown}` has {n} line{}, but output `{}` has {classes} classes: give one class name per line",
            if n == 1 { "" } else { "s" },
            out.name
        )));
    }
    Ok(Some(labels))
}

pub(super) fn write_npy_atomically(path: &Path, y: &ArrayD<f32>) -> Result<(), CliError> {
    let mut bytes = Vec::new();
    y.write_npy(&mut bytes)
        .map_err(|e| CliError::io(format!("cannot encode the output as .npy: {e}")))?;
    super::write_atomically(path, &bytes)
}
