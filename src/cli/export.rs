//! `resnetc export FILE --format pytorch|onnx`: a checked network leaves resnetc as code or as
//! a model file.
//!
//! The command checks first (a network with errors is not exported), validates `--weights`
//! exactly as `run` does (E0301–E0304), then asks the library for the bytes of the chosen
//! format and writes them to stdout (text formats, no `-o` or `-o -`) or atomically to `-o`
//! (never over an input, never half-written).

use super::{
    CliError, Color, EXIT_ERRORS, EXIT_OK, Format, print_diagnostics, read_source, write_stdout,
};
use crate::export::{onnx, onnx_triton, pytorch};
use crate::interp::weights::Weights;
use crate::ir::Graph;
use crate::shape::Shapes;
use crate::span::Source;
use clap::ValueEnum;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Export a checked network as PyTorch code or as an ONNX model.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The `.res` file; `-` reads standard input.
    pub file: PathBuf,
    /// The network to export, when the file defines several.
    #[arg(long, short = 'n', value_name = "NAME")]
    pub network: Option<String>,
    /// What to write: a PyTorch module (Python source) or an ONNX model.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Write to this file, atomically, instead of stdout (`-` is stdout).
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Weights: a safetensors file whose keys are the layers' paths, checked against the
    /// network as `run` checks them.
    #[arg(long, value_name = "FILE.safetensors", conflicts_with = "seed")]
    pub weights: Option<PathBuf>,
    /// Seed of the weights when no --weights is given (He normal for convs, as `run` draws
    /// them).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Fold each batchnorm into the convolution before it (ONNX only).
    #[arg(long)]
    pub fold_batchnorm: bool,
    /// Also write a Triton Inference Server model repository entry into DIR (ONNX only):
    /// `DIR/NETWORK/1/model.onnx` and `DIR/NETWORK/config.pbtxt`. Without -o, only these.
    #[arg(long, value_name = "DIR")]
    pub triton: Option<PathBuf>,
    /// With --triton: the largest batch Triton may form, when the network's batch is symbolic.
    #[arg(long, value_name = "B", default_value_t = 8, requires = "triton")]
    pub max_batch_size: u64,
    /// When to color diagnostics.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

/// The formats `export` writes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One self-contained Python file with an `nn.Module` per block and per network.
    Pytorch,
    /// An ONNX model (ModelProto) with the weights as initializers.
    Onnx,
}

pub fn run(a: &ExportArgs) -> Result<i32, CliError> {
    check_options(a)?;
    let output = a.output.as_deref().filter(|p| *p != Path::new("-"));
    if let Some(out) = output {
        let inputs = std::iter::once(a.file.as_path()).chain(a.weights.as_deref());
        super::check_output_path(out, inputs)?;
    }
    let source = match read_source(&a.file)? {
        Ok(s) => s,
        Err((source, d)) => {
            print_diagnostics(&source, &[d], Format::Human, a.color)?;
            return Ok(EXIT_ERRORS);
        }
    };
    super::require_network(&source, a.network.as_deref())?;
    let checked = crate::check(&source, a.network.as_deref());
    print_diagnostics(&source, &checked.diagnostics, Format::Human, a.color)?;
    let (Some(g), Some(shapes), false) = (&checked.graph, &checked.shapes, checked.has_errors())
    else {
        return Ok(EXIT_ERRORS);
    };
    if a.format == ExportFormat::Onnx {
        // Before any weight is read or drawn: a model over 2 GiB cannot be written.
        onnx::check_size(g, shapes).map_err(|e| CliError::input(e.to_string()))?;
    }
    // `--weights` is validated for every format, so that an exported PyTorch module is known
    // to load that file; seeded weights are drawn only for a format that embeds them.
    let weights = if a.weights.is_some() || a.format == ExportFormat::Onnx {
        let loaded =
            super::feed::load_weights(a.weights.as_deref(), a.seed.unwrap_or(0), g, shapes)?;
        match loaded {
            Ok(w) => Some(w),
            Err(diags) => {
                print_diagnostics(&source, &diags, Format::Human, a.color)?;
                say!("error: the weights do not fit network `{}`", g.name);
                return Ok(EXIT_ERRORS);
            }
        }
    } else {
        None
    };
    let bytes = match to_bytes(a, &source, g, shapes, weights)? {
        Ok(bytes) => bytes,
        Err(message) => {
            say!("error: {message}");
            return Ok(EXIT_ERRORS);
        }
    };
    if let Some(dir) = &a.triton {
        write_triton(dir, a.max_batch_size, g, shapes, &bytes)?;
    }
    match output {
        Some(out) => super::write_atomically(out, &bytes)?,
        None if a.triton.is_some() && a.output.is_none() => {}
        None => write_stdout(&bytes)?,
    }
    Ok(EXIT_OK)
}

/// The exported file, or why the network has no equivalent in the format (exit 1).
fn to_bytes(
    a: &ExportArgs,
    source: &Source,
    g: &Graph,
    shapes: &Shapes,
    weights: Option<Weights>,
) -> Result<Result<Vec<u8>, String>, CliError> {
    match a.format {
        ExportFormat::Pytorch => {
            // The source checked, so it parses; the exporter follows its blocks.
            let Ok(file) = crate::syntax::parse(&source.text) else {
                return Ok(Err("the source does not parse".into()));
            };
            Ok(pytorch::to_pytorch(source, &file, g, shapes)
                .map(String::into_bytes)
                .map_err(|e| format!("cannot export network `{}` to PyTorch: {e}", g.name)))
        }
        ExportFormat::Onnx => {
            let opts = onnx::Options {
                fold_batchnorm: a.fold_batchnorm,
            };
            // Drawn or loaded above for every ONNX export.
            let Some(weights) = weights else {
                return Ok(Err("no weights to embed".into()));
            };
            onnx::to_bytes(g, shapes, &weights.read_all(), opts)
                .map(Ok)
                .map_err(|e| CliError::input(e.to_string()))
        }
    }
}

/// Options that only one format understands are usage errors with the other.
fn check_options(a: &ExportArgs) -> Result<(), CliError> {
    if a.format != ExportFormat::Onnx {
        let only_onnx = [
            (a.fold_batchnorm, "--fold-batchnorm"),
            (a.triton.is_some(), "--triton"),
            (a.seed.is_some(), "--seed"),
        ];
        if let Some((_, flag)) = only_onnx.iter().find(|(given, _)| *given) {
            return Err(CliError::io(format!(
                "{flag} applies to --format onnx only (a PyTorch module initialises its own weights and loads them with `load_state_dict`)"
            )));
        }
    }
    // `-o model.py --format onnx`: the name says one format, the flag another.
    if let Some(out) = a.output.as_deref() {
        let ext = out
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let named = match ext.as_deref() {
            Some("py") => Some(ExportFormat::Pytorch),
            Some("onnx") => Some(ExportFormat::Onnx),
            _ => None,
        };
        let what = |f: ExportFormat| match f {
            ExportFormat::Pytorch => "Python source",
            ExportFormat::Onnx => "an ONNX model",
        };
        let flag = |f: ExportFormat| {
            f.to_possible_value()
                .expect("no format is skipped")
                .get_name()
                .to_string()
        };
        if let Some(named) = named.filter(|f| *f != a.format) {
            return Err(CliError::io(format!(
                "`{}` is named for {}, but --format {} writes {}: rename the output or give --format {}",
                out.display(),
                what(named),
                flag(a.format),
                what(a.format),
                flag(named)
            )));
        }
    }
    let to_stdout = a.output.as_deref().is_none_or(|p| p == Path::new("-"));
    if a.format == ExportFormat::Onnx
        && to_stdout
        && (a.triton.is_none() || a.output.is_some())
        && std::io::stdout().is_terminal()
    {
        return Err(CliError::io(
            "an ONNX model is binary: write it with -o FILE.onnx (or redirect standard output)",
        ));
    }
    if let Some(dir) = a.triton.as_deref().filter(|d| !d.is_dir()) {
        // As `-o` does with a missing directory: nothing is made where the user did not ask.
        let why = if dir.exists() {
            "is not a directory"
        } else {
            "does not exist (make the repository directory first)"
        };
        return Err(CliError::io(format!(
            "cannot write the Triton model repository: `{}` {why}",
            dir.display()
        )));
    }
    Ok(())
}

/// A Triton model repository entry: `DIR/NAME/1/model.onnx` and `DIR/NAME/config.pbtxt`,
/// each written atomically.
fn write_triton(
    dir: &Path,
    max_batch_size: u64,
    g: &crate::ir::Graph,
    shapes: &crate::shape::Shapes,
    model: &[u8],
) -> Result<(), CliError> {
    let entry = dir.join(&g.name);
    let file = entry.join(onnx_triton::MODEL_FILE);
    let version = file.parent().unwrap_or(&entry);
    std::fs::create_dir_all(version)
        .map_err(|e| CliError::io(format!("cannot create `{}`: {e}", version.display())))?;
    super::write_atomically(&file, model)?;
    let config = onnx_triton::config_pbtxt(g, shapes, max_batch_size);
    super::write_atomically(&entry.join("config.pbtxt"), config.as_bytes())
}
