//! `resnetc analyze FILE`: check, run once, and print the signal propagation statistics of
//! every block (a table, or JSON/YAML); `--plot` draws them as SVG or PNG.

use super::feed::{self, FeedArgs};
use super::{
    CliError, Color, EXIT_ERRORS, EXIT_OK, Format, print_diagnostics, read_source, write_stdout,
};
use crate::analyze::{self, Analysis, BlockStats, InputStats, Options, plot};
use crate::diag::Diagnostic;
use crate::diag::render::{JsonDiagnostic, to_json};
use crate::interp::RunOptions;
use crate::span::Source;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Signal propagation at initialization: per-block activation statistics (Brock et al. 2021).
#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// The `.res` file; `-` reads standard input.
    pub file: PathBuf,
    /// The network to analyze, when the file defines several.
    #[arg(long, short = 'n', value_name = "NAME")]
    pub network: Option<String>,
    #[command(flatten)]
    pub feed: FeedArgs,
    /// Analyze the plain network instead: every residual add's shortcut removed.
    #[arg(long)]
    pub plain: bool,
    /// Draw the signal propagation plot into this file (`.svg` or `.png`), atomically.
    #[arg(long, value_name = "OUT.svg|OUT.png")]
    pub plot: Option<PathBuf>,
    /// Worker threads for convolutions (default: all cores; 1 to 256).
    #[arg(long, value_name = "T", value_parser = feed::parse_threads, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Output format: a table, or one JSON/YAML document on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// When to color diagnostics.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

/// The JSON/YAML document `analyze --format json|yaml` prints (schema in README.md).
#[derive(Serialize, Default)]
struct Report {
    diagnostics: Vec<JsonDiagnostic>,
    #[serde(flatten)]
    result: Option<Document>,
}

#[derive(Serialize)]
struct Document {
    network: String,
    plain: bool,
    /// The weights' origin: the file, or `seed S`.
    weights: String,
    batch: usize,
    input: InputDoc,
    blocks: Vec<BlockStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plot: Option<String>,
}

#[derive(Serialize)]
struct InputDoc {
    /// The input's file, or `random (seed S)`.
    origin: String,
    #[serde(flatten)]
    stats: InputStats,
}

/// The picture formats of `--plot`, by file extension.
#[derive(Copy, Clone)]
enum PlotFormat {
    Svg,
    Png,
}

pub fn run(a: &AnalyzeArgs) -> Result<i32, CliError> {
    let machine = matches!(a.format, Format::Json | Format::Yaml);
    let mut report = Report::default();
    let emit = |source: &Source, diags: &[Diagnostic], report: &mut Report| {
        if machine {
            report
                .diagnostics
                .extend(diags.iter().map(|d| to_json(source, d)));
            Ok(())
        } else {
            print_diagnostics(source, diags, a.format, a.color)
        }
    };
    let finish = |report: &Report, code: i32| -> Result<i32, CliError> {
        if machine {
            write_stdout(super::to_machine(report, a.format)?.as_bytes())?;
        }
        Ok(code)
    };
    let plot_format = a.plot.as_deref().map(|p| plot_format(a, p)).transpose()?;
    let feed = a.feed.feed()?;
    let source = match read_source(&a.file)? {
        Ok(s) => s,
        Err((source, d)) => {
            emit(&source, &[d], &mut report)?;
            return finish(&report, EXIT_ERRORS);
        }
    };
    super::require_network(&source, a.network.as_deref())?;
    let checked = crate::check(&source, a.network.as_deref());
    emit(&source, &checked.diagnostics, &mut report)?;
    let (Some(g), Some(shapes), false) = (&checked.graph, &checked.shapes, checked.has_errors())
    else {
        return finish(&report, EXIT_ERRORS);
    };
    a.feed.check_seed_used(g)?;
    let (weights, inputs) = match feed::load(&feed, g, shapes)? {
        Ok(loaded) => loaded,
        Err(diags) => {
            emit(&source, &diags, &mut report)?;
            if !machine {
                say!("error: the weights do not fit network `{}`", g.name);
            }
            return finish(&report, EXIT_ERRORS);
        }
    };
    let opts = Options {
        plain: a.plain,
        run: RunOptions {
            threads: feed::threads(a.threads),
            isa: feed::instruction_set()?,
        },
    };
    let analysis = analyze::analyze(&source, g, shapes, weights, inputs, opts);
    let doc = document(a, analysis);
    if let (Some(path), Some(format)) = (&a.plot, plot_format) {
        if doc.blocks.is_empty() {
            return Err(CliError::input(format!(
                "nothing to plot: network `{}` instantiates no block, and the plot draws each \
                 block's statistics; `{}` was not written (run without --plot for the input's)",
                g.name,
                path.display()
            )));
        }
        let title = title(&doc);
        let bytes = match format {
            PlotFormat::Svg => plot::to_svg(&doc.blocks, &title).map(String::into_bytes),
            PlotFormat::Png => plot::to_png(&doc.blocks, &title),
        }
        .map_err(|e| CliError::io(e.to_string()))?;
        super::write_atomically(path, &bytes)?;
    }
    if machine {
        report.result = Some(doc);
        finish(&report, EXIT_OK)
    } else {
        write_stdout(to_text(&doc).as_bytes())?;
        Ok(EXIT_OK)
    }
}

/// The plot's format from its extension; the plot must not overwrite an input.
fn plot_format(a: &AnalyzeArgs, path: &Path) -> Result<PlotFormat, CliError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let format = match ext.as_deref() {
        Some("svg") => PlotFormat::Svg,
        Some("png") => PlotFormat::Png,
        _ => {
            return Err(CliError::io(format!(
                "cannot tell the plot's format from `{}`: name it OUT.svg or OUT.png",
                path.display()
            )));
        }
    };
    let inputs = std::iter::once(&a.file)
        .chain(a.feed.weights.iter())
        .chain(a.feed.input.iter());
    super::check_output_path(path, inputs.map(PathBuf::as_path))?;
    Ok(format)
}

fn document(a: &AnalyzeArgs, analysis: Analysis) -> Document {
    let f = &a.feed;
    let weights = match &f.weights {
        Some(p) => p.display().to_string(),
        None => format!("seed {}", f.seed()),
    };
    let origin = match f.input.first() {
        Some(p) if !f.random_input => p.display().to_string(),
        _ => format!("random (seed {})", f.seed()),
    };
    Document {
        network: analysis.network,
        plain: analysis.plain,
        weights,
        batch: analysis.input.shape.first().copied().unwrap_or(1),
        input: InputDoc {
            origin,
            stats: analysis.input,
        },
        blocks: analysis.blocks,
        plot: a.plot.as_ref().map(|p| p.display().to_string()),
    }
}

/// The plot's title: network, weights' origin, batch.
fn title(doc: &Document) -> String {
    let weights = match doc.weights.strip_prefix("seed ") {
        Some(_) => format!("weights from {}", doc.weights),
        None => format!(
            "weights {}",
            Path::new(&doc.weights)
                .file_name()
                .map_or(doc.weights.clone(), |n| n.to_string_lossy().into_owned())
        ),
    };
    format!(
        "{}{} · {weights} · batch {}",
        doc.network,
        if doc.plain { " (plain)" } else { "" },
        doc.batch
    )
}

/// A figure with 4 significant digits, in scientific notation when very large or small.
fn figure(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(0.0) => "0".into(),
        Some(v) if !(1e-3..1e5).contains(&v.abs()) => format!("{v:.3e}"),
        Some(v) => {
            let decimals = (3 - v.abs().log10().floor() as i32).max(0) as usize;
            format!("{v:.decimals$}")
        }
    }
}

/// The human report: a header, then one row per block.
fn to_text(doc: &Document) -> String {
    let mut rows = vec![[
        "depth".to_string(),
        "path".into(),
        "block".into(),
        "shortcut".into(),
        "mean_sq".into(),
        "var".into(),
        "residual_var".into(),
    ]];
    for b in &doc.blocks {
        rows.push([
            b.depth.to_string(),
            b.path.clone(),
            b.block.clone(),
            b.shortcut.unwrap_or("-").to_string(),
            figure(Some(b.mean_sq)),
            figure(Some(b.var)),
            figure(b.residual_var),
        ]);
    }
    let mut width = [0usize; 7];
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = format!(
        "signal propagation of `{}`{} (weights {}, input {}, batch {})\n",
        doc.network,
        if doc.plain { ", plain" } else { "" },
        doc.weights,
        doc.input.origin,
        doc.batch
    );
    text.push_str(&format!(
        "input `{}` {:?}: mean_sq {}, var {}\n\n",
        doc.input.stats.name,
        doc.input.stats.shape,
        figure(Some(doc.input.stats.mean_sq)),
        figure(Some(doc.input.stats.var))
    ));
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(width)
            .enumerate()
            .map(|(i, (cell, w))| match i {
                // Numbers right-aligned, names left-aligned.
                0 | 4..=6 => format!("{cell:>w$}"),
                _ => format!("{cell:<w$}"),
            })
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    if doc.blocks.is_empty() {
        text.push_str("(no blocks: the network instantiates no block)\n");
    }
    text
}
