//! Turning diagnostics into text: human (codespan-reporting), short (one line each), and the
//! serde structs of the JSON/YAML schema. The only module that knows codespan-reporting.

use super::{Diagnostic, Severity};
use crate::span::Source;
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor::WriteColor};
use serde::Serialize;

/// Render diagnostics the way a compiler does, with source excerpts.
pub fn human(
    out: &mut dyn WriteColor,
    source: &Source,
    diags: &[Diagnostic],
) -> std::io::Result<()> {
    let file = SimpleFile::new(source.name.as_str(), source.text.as_str());
    let config = term::Config::default();
    for d in diags {
        let diag = to_codespan(d);
        term::emit_to_write_style(out, &config, &file, &diag).map_err(|e| match e {
            codespan_reporting::files::Error::Io(e) => e,
            other => std::io::Error::other(other.to_string()),
        })?;
    }
    Ok(())
}

fn to_codespan(d: &Diagnostic) -> cs::Diagnostic<()> {
    let severity = match d.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
    };
    let mut labels = Vec::new();
    if let Some(p) = &d.primary {
        labels.push(cs::Label::primary((), p.span.range()).with_message(&p.message));
    }
    for s in &d.secondary {
        labels.push(cs::Label::secondary((), s.span.range()).with_message(&s.message));
    }
    let mut notes: Vec<String> = d.notes.iter().map(|n| format!("note: {n}")).collect();
    if let Some(h) = &d.help {
        notes.push(format!("help: {h}"));
    }
    cs::Diagnostic::new(severity)
        .with_code(d.code.as_str())
        .with_message(&d.message)
        .with_labels(labels)
        .with_notes(notes)
}

/// One line per diagnostic: `file:line:col: error[E0203]: message`.
pub fn short(source: &Source, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let severity = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match &d.primary {
            Some(p) => {
                let (line, col) = source.line_col(p.span.start);
                out.push_str(&format!("{}:{line}:{col}: ", source.name));
            }
            None => out.push_str(&format!("{}: ", source.name)),
        }
        out.push_str(&format!("{severity}[{}]: {}", d.code.as_str(), d.message));
        if let Some(p) = &d.primary
            && !p.message.is_empty()
        {
            out.push_str(&format!(": {}", p.message));
        }
        out.push('\n');
    }
    out
}

/// A diagnostic in the JSON/YAML schema (documented in README.md).
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic {
    pub severity: Severity,
    /// `None` for a problem outside the source (a missing file, a bad input).
    pub code: Option<&'static str>,
    pub message: String,
    pub labels: Vec<JsonLabel>,
    pub notes: Vec<String>,
    pub help: Option<String>,
}

/// A label: where (file, 1-based line and column of both ends, byte range) and what it says.
#[derive(Debug, Serialize)]
pub struct JsonLabel {
    pub primary: bool,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub start: u32,
    pub end: u32,
    pub message: String,
}

impl JsonDiagnostic {
    /// An error outside the source, without code or labels.
    pub fn plain(message: &str) -> JsonDiagnostic {
        JsonDiagnostic {
            severity: Severity::Error,
            code: None,
            message: message.to_string(),
            labels: Vec::new(),
            notes: Vec::new(),
            help: None,
        }
    }

    /// A warning outside the source (NaN in an input).
    pub fn plain_warning(message: &str) -> JsonDiagnostic {
        JsonDiagnostic {
            severity: Severity::Warning,
            ..JsonDiagnostic::plain(message)
        }
    }
}

pub fn to_json(source: &Source, d: &Diagnostic) -> JsonDiagnostic {
    let label = |primary: bool, l: &super::Label| {
        let (line, column) = source.line_col(l.span.start);
        let (end_line, end_column) = source.line_col(l.span.end);
        JsonLabel {
            primary,
            file: source.name.clone(),
            line,
            column,
            end_line,
            end_column,
            start: l.span.start,
            end: l.span.end,
            message: l.message.clone(),
        }
    };
    let labels = d
        .primary
        .iter()
        .map(|l| label(true, l))
        .chain(d.secondary.iter().map(|l| label(false, l)))
        .collect();
    JsonDiagnostic {
        severity: d.severity,
        code: Some(d.code.as_str()),
        message: d.message.clone(),
        labels,
        notes: d.notes.clone(),
        help: d.help.clone(),
    }
}
