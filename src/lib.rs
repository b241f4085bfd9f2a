//! resnetc: a compiler, shape checker and CPU interpreter for residual-network architectures.
//!
//! The pipeline is a few calls: [`syntax::parse`] → [`ir::lower`] → `shape::infer` →
//! (`interp::run` | `export::to_dot`); [`check`] runs the checking part. Only [`cli`] does IO;
//! the library returns values and diagnostics and never panics on user input.
#![deny(unsafe_code)]

pub mod analyze;
pub mod cli;
pub mod diag;
pub mod export;
pub mod fix;
pub mod interp;
pub mod ir;
pub mod machine;
pub mod ops;
pub mod shape;
pub mod span;
pub mod summary;
pub mod syntax;

use diag::Diagnostic;
use span::Source;

/// The result of checking a source: the lowered graph when there were no errors, and every
/// diagnostic.
#[derive(Debug)]
pub struct Checked {
    pub graph: Option<ir::Graph>,
    pub shapes: Option<shape::Shapes>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn failed(diagnostics: Vec<Diagnostic>) -> Checked {
        Checked {
            graph: None,
            shapes: None,
            diagnostics,
        }
    }

    pub fn has_errors(&self) -> bool {
        diag::has_errors(&self.diagnostics)
    }

    /// The network, when it checked without errors: the only way to [`interp::run`] it.
    pub fn network(&self) -> Option<interp::Network<'_>> {
        if self.has_errors() {
            return None;
        }
        Some(interp::Network::new(
            self.graph.as_ref()?,
            self.shapes.as_ref()?,
        ))
    }

    /// The summary of a network without errors.
    pub fn summary(&self) -> Option<summary::Summary<'_>> {
        if self.has_errors() {
            return None;
        }
        summary::Summary::new(self.graph.as_ref()?, self.shapes.as_ref()?)
    }
}

/// The result of checking every network of a file (or the one asked for): each network's own
/// result, and the file's diagnostics merged (a diagnostic that several networks share, in a
/// block they both use, is listed once), in source order, each with its verified fixes.
#[derive(Debug)]
pub struct CheckedFile {
    pub networks: Vec<Checked>,
    pub diagnostics: Vec<Diagnostic>,
}

impl CheckedFile {
    pub fn failed(diagnostics: Vec<Diagnostic>) -> CheckedFile {
        CheckedFile {
            networks: Vec::new(),
            diagnostics,
        }
    }

    pub fn has_errors(&self) -> bool {
        diag::has_errors(&self.diagnostics)
    }

    /// The summary of each network that checked without errors, in file order.
    pub fn summaries(&self) -> Vec<summary::Summary<'_>> {
        self.networks.iter().filter_map(Checked::summary).collect()
    }
}

/// The names of the networks a source defines, or `None` when it does not parse.
pub fn network_names(source: &Source) -> Option<Vec<String>> {
    let file = syntax::parse(&source.text).ok()?;
    Some(file.networks.iter().map(|n| n.name.name.clone()).collect())
}

/// Check every network of a file, or only `network` when given, and attach verified fixes to
/// the diagnostics (see [`fix`]).
pub fn check_file(source: &Source, network: Option<&str>) -> CheckedFile {
    let mut checked = check_file_plain(source, network);
    fix::attach(source, &mut checked);
    checked
}

/// [`check_file`] without looking for fixes: what fix verification re-runs.
pub fn check_file_plain(source: &Source, network: Option<&str>) -> CheckedFile {
    let names = match (network, network_names(source)) {
        (None, Some(names)) if names.len() > 1 => names,
        _ => return single(check(source, network)),
    };
    let networks: Vec<Checked> = names.iter().map(|n| check(source, Some(n))).collect();
    let mut seen = std::collections::HashSet::new();
    let mut diagnostics: Vec<Diagnostic> = networks
        .iter()
        .flat_map(|c| c.diagnostics.iter())
        .filter(|d| {
            seen.insert((
                d.code,
                d.message.clone(),
                d.primary.as_ref().map(|p| p.span),
            ))
        })
        .cloned()
        .collect();
    diagnostics.sort_by_key(|d| d.primary.as_ref().map_or(0, |p| p.span.start));
    CheckedFile {
        networks,
        diagnostics,
    }
}

fn single(checked: Checked) -> CheckedFile {
    CheckedFile {
        diagnostics: checked.diagnostics.clone(),
        networks: vec![checked],
    }
}

/// Parse, lower and check the network `network` (or the only one) of a source.
pub fn check(source: &Source, network: Option<&str>) -> Checked {
    let file = match syntax::parse(&source.text) {
        Ok(f) => f,
        Err(diags) => return Checked::failed(diags),
    };
    // `channels(x)`, `height(x)`, `width(x)` read shapes while lowering builds the graph.
    let mut shapes_so_far = shape::Partial::default();
    let (graph, mut diagnostics) = ir::lower(&file, network, &mut shapes_so_far);
    let Some(graph) = graph else {
        return Checked::failed(diagnostics);
    };
    let (shapes, shape_diags) = shape::infer(&graph, source);
    diagnostics.extend(shape_diags);
    if !diag::has_errors(&diagnostics) {
        diagnostics.extend(shape::lint(&graph, &shapes));
    }
    diagnostics.sort_by_key(|d| d.primary.as_ref().map_or(0, |p| p.span.start));
    Checked {
        graph: Some(graph),
        shapes: Some(shapes),
        diagnostics,
    }
}
