//! `resnetc graph FILE`: draw a network with Graphviz.
//!
//! DOT is written by the library ([`crate::export::to_dot`]); this command prints diagnostics
//! as `check` does, runs the system `dot` for SVG and PNG, and writes the result to stdout or
//! atomically to `-o FILE` (a temporary file in the same directory, renamed into place). A
//! network with shape errors is still drawn, with the failing ops in red.

use super::{
    CliError, Color, EXIT_ERRORS, EXIT_OK, Format, print_diagnostics, read_source, write_stdout,
};
use crate::export::{DotOptions, to_dot};
use clap::ValueEnum;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Draw a network as a Graphviz graph (DOT, or SVG/PNG through Graphviz's `dot`).
#[derive(clap::Args, Debug)]
pub struct GraphArgs {
    /// The `.res` file; `-` reads standard input.
    pub file: PathBuf,
    /// The network to draw, when the file defines several.
    #[arg(long, short = 'n', value_name = "NAME")]
    pub network: Option<String>,
    /// Write the graph to this file instead of stdout (`-` is stdout).
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Output format [default: from the extension of -o, else dot].
    #[arg(long, value_enum)]
    pub format: Option<GraphFormat>,
    /// Collapse block instances and sequences nested deeper than D into one node each; a
    /// sequence at level D that repeats one block becomes one node (`layer3: bottleneck × 36`).
    #[arg(long, value_name = "D")]
    pub depth: Option<usize>,
    /// Draw the plain network: every residual add's shortcut removed (as `analyze --plain`).
    #[arg(long)]
    pub plain: bool,
    /// When to color diagnostics.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

/// What `graph` writes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT text.
    Dot,
    /// SVG, rendered by Graphviz's `dot -Tsvg`.
    Svg,
    /// PNG, rendered by Graphviz's `dot -Tpng`.
    Png,
}

impl GraphFormat {
    /// The name in a message.
    fn title(self) -> &'static str {
        match self {
            GraphFormat::Dot => "DOT",
            GraphFormat::Svg => "SVG",
            GraphFormat::Png => "PNG",
        }
    }

    /// The format an output path asks for by its extension, if it names one.
    fn from_path(path: &Path) -> Option<GraphFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "dot" | "gv" => Some(GraphFormat::Dot),
            "svg" => Some(GraphFormat::Svg),
            "png" => Some(GraphFormat::Png),
            _ => None,
        }
    }
}

pub fn run(a: &GraphArgs) -> Result<i32, CliError> {
    let output = a.output.as_deref().filter(|p| *p != Path::new("-"));
    let format = a
        .format
        .or_else(|| output.and_then(GraphFormat::from_path))
        .unwrap_or(GraphFormat::Dot);
    // Checked before anything is drawn: a regular file, not the source.
    let target = match output {
        Some(out) => Some(super::output_target(out, &[a.file.as_path()])?),
        None => None,
    };
    // A named format and an extension naming another: one of them is a mistake.
    if let (Some(out), Some(given)) = (output, a.format)
        && let Some(named) = GraphFormat::from_path(out)
        && named != given
    {
        return Err(CliError::io(format!(
            "`{}` names a {} file, but --format {} writes {}: rename the output or drop --format",
            out.display(),
            named.title(),
            given
                .to_possible_value()
                .expect("no format is skipped")
                .get_name(),
            given.title()
        )));
    }
    if let (Some(out), None) = (output, a.format)
        && out.extension().is_some()
        && GraphFormat::from_path(out).is_none()
    {
        return Err(CliError::io(format!(
            "cannot tell which format to write into `{}`: resnetc writes .dot/.gv, .svg and .png; give --format dot|svg|png",
            out.display()
        )));
    }

    if output.is_none() && format == GraphFormat::Png && std::io::stdout().is_terminal() {
        return Err(CliError::io(
            "refusing to write PNG to a terminal; use `-o FILE.png` or redirect stdout",
        ));
    }
    let (source, checked) = match read_source(&a.file)? {
        Ok(source) => {
            super::require_network(&source, a.network.as_deref())?;
            let mut checked = crate::check(&source, a.network.as_deref());
            if a.plain {
                checked = crate::analyze::plain::to_plain_checked(&source, checked);
            }
            (source, checked)
        }
        Err((source, d)) => (source, crate::Checked::failed(vec![d])),
    };
    print_diagnostics(&source, &checked.diagnostics, Format::Human, a.color)?;
    if let Some(graph) = &checked.graph {
        let opts = DotOptions { depth: a.depth };
        let dot = to_dot(graph, checked.shapes.as_ref(), &checked.diagnostics, &opts);
        if format != GraphFormat::Dot {
            refuse_huge_render(&dot, &graph.name)?;
        }
        let bytes = match format {
            GraphFormat::Dot => dot.into_bytes(),
            GraphFormat::Svg => run_graphviz(&dot, "svg")?,
            GraphFormat::Png => run_graphviz(&dot, "png")?,
        };
        match &target {
            Some(out) => super::write_atomically(out, &bytes)?,
            None => write_stdout(&bytes)?,
        }
    }
    Ok(if checked.has_errors() {
        EXIT_ERRORS
    } else {
        EXIT_OK
    })
}

/// Graphviz's layout is superlinear: past this many drawn nodes it runs for minutes or hours.
const MAX_RENDERED_NODES: usize = 5_000;

/// Refuse to render a graph too large for Graphviz, pointing at `--depth`.
fn refuse_huge_render(dot: &str, name: &str) -> Result<(), CliError> {
    // Node statements are the lines `n<index> [...]` (see `export::dot`).
    let n_nodes = dot
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            t.strip_prefix('n')
                .and_then(|r| r.split_once(' '))
                .is_some_and(|(digits, rest)| {
                    !digits.is_empty()
                        && digits.bytes().all(|b| b.is_ascii_digit())
                        && rest.starts_with('[')
                })
        })
        .count();
    if n_nodes > MAX_RENDERED_NODES {
        return Err(CliError::io(format!(
            "network `{name}` would draw {n_nodes} nodes; Graphviz does not lay out more than about {MAX_RENDERED_NODES} in reasonable time: collapse blocks with `--depth 1` (or 2), or write DOT with `--format dot`"
        )));
    }
    Ok(())
}

/// Render DOT with Graphviz's `dot -T<format>`, feeding the text on stdin.
fn run_graphviz(dot: &str, format: &str) -> Result<Vec<u8>, CliError> {
    let child = Command::new("dot")
        .arg(format!("-T{format}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CliError::io(format!(
                "cannot find Graphviz's `dot` program, needed for --format {format}\n  \
                 install Graphviz (`apt-get install graphviz`, `brew install graphviz`, or https://graphviz.org/download/),\n  \
                 or write DOT with `--format dot` and render it elsewhere"
            )));
        }
        Err(e) => return Err(CliError::io(format!("cannot run Graphviz's `dot`: {e}"))),
    };
    let stdin = child.stdin.take();
    // Feed stdin from another thread so that neither side can block the other on a full pipe.
    let result = std::thread::scope(|scope| {
        scope.spawn(move || {
            if let Some(mut stdin) = stdin {
                // A write error shows up as dot's exit status below.
                let _ = stdin.write_all(dot.as_bytes());
            }
        });
        child.wait_with_output()
    });
    let out = result.map_err(|e| CliError::io(format!("cannot run Graphviz's `dot`: {e}")))?;
    let messages = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(CliError::io(format!(
            "Graphviz's `dot -T{format}` failed ({}):\n{}",
            out.status,
            messages.trim_end()
        )));
    }
    for line in messages.lines().filter(|l| !l.trim().is_empty()) {
        say!("warning: dot: {line}");
    }
    Ok(out.stdout)
}
