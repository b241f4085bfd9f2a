//! resnetc: a compiler, shape checker and CPU interpreter for residual-network architectures.
//!
//! The pipeline is a few calls: [`syntax::parse`] → [`ir::lower`] → `shape::infer` →
//! (`interp::run` | `export::to_dot`); [`check`] runs the checking part. Only [`cli`] does IO;
//! the library returns values and diagnostics and never panics on user input.

pub mod analyze;
pub mod cli;
pub mod diag;
pub mod export;
pub mod interp;
pub mod ir;
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

/// Parse, lower and check the network `network` (or the only one) of a source.
pub fn check(source: &Source, network: Option<&str>) -> Checked {
    let file = match syntax::parse(&source.text) {
        Ok(f) => f,
        Err(diags) => return Checked::failed(diags),
    };
    let (graph, mut diagnostics) = ir::lower(&file, network);
    let Some(graph) = graph else {
        return Checked::failed(diagnostics);
    };
    let (shapes, shape_diags) = shape::infer(&graph, source);
    diagnostics.extend(shape_diags);
    diagnostics.sort_by_key(|d| d.primary.as_ref().map_or(0, |p| p.span.start));
    Checked {
        graph: Some(graph),
        shapes: Some(shapes),
        diagnostics,
    }
}
