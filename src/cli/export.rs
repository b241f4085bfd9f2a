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
use clap::ValueEnum;
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
    /// Also write a Triton Inference Server model repository entry into DIR (ONNX only).
    #[arg(long, value_name = "DIR")]
    pub triton: Option<PathBuf>,
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
    let checked = crate::check(&source, a.network.as_deref());
    print_diagnostics(&source, &checked.diagnostics, Format::Human, a.color)?;
    let (Some(g), Some(shapes), false) = (&checked.graph, &checked.shapes, checked.has_errors())
    else {
        return Ok(EXIT_ERRORS);
    };
    // The weights are validated for every format, so that an exported PyTorch module is known
    // to load the same file.
    let weights = super::feed::load_weights(a.weights.as_deref(), a.seed.unwrap_or(0), g, shapes)?;
    let weights = match weights {
        Ok(w) => w,
        Err(diags) => {
            print_diagnostics(&source, &diags, Format::Human, a.color)?;
            eprintln!("error: the weights do not fit network `{}`", g.name);
            return Ok(EXIT_ERRORS);
        }
    };
    let bytes = to_bytes(a, g, shapes, &weights)?;
    match output {
        Some(out) => super::write_atomically(out, &bytes)?,
        None => write_stdout(&bytes)?,
    }
    Ok(EXIT_OK)
}

/// The exported file.
fn to_bytes(
    a: &ExportArgs,
    _g: &crate::ir::Graph,
    _shapes: &crate::shape::Shapes,
    _weights: &crate::interp::weights::Weights,
) -> Result<Vec<u8>, CliError> {
    Err(unavailable(a.format))
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
    if a.format == ExportFormat::Onnx {
        return Err(unavailable(a.format));
    }
    Ok(())
}

fn unavailable(format: ExportFormat) -> CliError {
    let name = match format {
        ExportFormat::Pytorch => "pytorch",
        ExportFormat::Onnx => "onnx",
    };
    CliError::io(format!("the {name} format is not available in this build"))
}
