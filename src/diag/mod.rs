//! Diagnostics: one data type for every problem a phase finds in the source, the stable error
//! codes, their `explain` pages, and rendering (human, short, JSON, YAML).
//!
//! Phases build [`Diagnostic`] values; only [`render`] turns them into text, and it is the only
//! user of codespan-reporting. Problems outside the `.res` source (a missing file, a bad `.npy`)
//! are not diagnostics: the CLI reports them as plain errors.

mod codes;
pub mod render;
pub(crate) mod suggest;

pub use codes::{Code, explain};

use crate::span::Span;
use serde::Serialize;

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A span with a message: "this branch has shape [N, 128, 28, 28]".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

impl Label {
    pub fn new(span: Span, message: impl Into<String>) -> Label {
        Label {
            span,
            message: message.into(),
        }
    }
}

/// One edit of the source text: replace the bytes of `span` with `replacement` (an empty
/// span inserts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub span: Span,
    pub replacement: String,
}

/// A fix: edits that make the diagnostic go away without any new one appearing, verified by
/// re-checking the edited file (see `crate::fix`), and what it does in one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fix {
    pub message: String,
    pub edits: Vec<Edit>,
}

/// One problem in the source.
///
/// `message` is one line, lower-case, without a final period. `primary` points at what is wrong;
/// `secondary` labels show where the values involved came from. A note is a fact, a help is one
/// concrete thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    pub primary: Option<Label>,
    pub secondary: Vec<Label>,
    pub notes: Vec<String>,
    pub help: Option<String>,
    /// Verified fixes, best first.
    pub fixes: Vec<Fix>,
    /// The primary spans of other errors merged into this one because they share its cause
    /// (also shown as secondary labels): a fix must remove them all.
    pub merged: Vec<Span>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            notes: Vec::new(),
            help: None,
            fixes: Vec::new(),
            merged: Vec::new(),
        }
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn with_primary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.primary = Some(Label::new(span, message));
        self
    }

    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label::new(span, message));
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Whether any diagnostic in the list is an error.
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(Diagnostic::is_error)
}
