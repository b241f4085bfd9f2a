//! Turning diagnostics into text: human (codespan-reporting), short (one line each), and the
//! serde structs of the JSON/YAML schema. The only module that knows codespan-reporting.

use super::{Diagnostic, Severity};
use crate::span::Source;
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor::WriteColor};
use serde::Serialize;

/// At most this many diagnostics of one code are printed in human and short form; the rest
/// are counted in one line (JSON and YAML list them all).
pub const MAX_PER_CODE: usize = 20;
/// A source line longer than this is not quoted: the diagnostic gives its position instead.
pub const MAX_QUOTED_LINE: usize = 400;
/// Messages, labels and notes are shortened past this many characters (a 1 MB identifier).
pub const MAX_TEXT: usize = 300;

/// The diagnostics to print (at most [`MAX_PER_CODE`] per code, in order) and, per code, how
/// many were left out.
pub fn capped(diags: &[Diagnostic]) -> (Vec<&Diagnostic>, Vec<(&Diagnostic, usize)>) {
    let mut shown = Vec::new();
    let mut counts: Vec<(&Diagnostic, usize)> = Vec::new();
    for d in diags {
        match counts.iter_mut().find(|(first, _)| first.code == d.code) {
            Some((_, n)) => {
                *n += 1;
                if *n <= MAX_PER_CODE {
                    shown.push(d);
                }
            }
            None => {
                counts.push((d, 1));
                shown.push(d);
            }
        }
    }
    let hidden = counts
        .into_iter()
        .filter(|(_, n)| *n > MAX_PER_CODE)
        .map(|(d, n)| (d, n - MAX_PER_CODE))
        .collect();
    (shown, hidden)
}

/// "... and 9,980 more warnings W0101 like these (`--format json` lists them all)".
fn hidden_line(d: &Diagnostic, n: usize) -> String {
    let severity = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    format!(
        "... and {n} more {severity}{} {} like these (`--format json` lists them all)\n",
        if n == 1 { "" } else { "s" },
        d.code.as_str()
    )
}

/// `text` cut to [`MAX_TEXT`] characters, saying how much was left out.
pub fn shorten(text: &str) -> String {
    let n = text.chars().count();
    if n <= MAX_TEXT {
        return text.to_string();
    }
    let head: String = text.chars().take(MAX_TEXT - 60).collect();
    let tail: String = text.chars().skip(n - 40).collect();
    format!(
        "{head}...({} characters left out)...{tail}",
        n - MAX_TEXT + 20
    )
}

/// Render diagnostics the way a compiler does, with source excerpts.
pub fn human(
    out: &mut dyn WriteColor,
    source: &Source,
    diags: &[Diagnostic],
) -> std::io::Result<()> {
    let file = SimpleFile::new(source.name.as_str(), source.text.as_str());
    let config = term::Config::default();
    let (shown, hidden) = capped(diags);
    for d in shown {
        let diag = to_codespan(source, d);
        term::emit_to_write_style(out, &config, &file, &diag).map_err(|e| match e {
            codespan_reporting::files::Error::Io(e) => e,
            other => std::io::Error::other(other.to_string()),
        })?;
    }
    for (d, n) in hidden {
        out.write_all(hidden_line(d, n).as_bytes())?;
    }
    Ok(())
}

/// Whether a span lies on a line too long to quote.
fn on_long_line(source: &Source, span: crate::span::Span) -> bool {
    let text = source.text.as_bytes();
    let (start, end) = (span.start as usize, span.end as usize);
    let line_start = text[..start.min(text.len())]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line_end = text[end.min(text.len())..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |i| end + i);
    line_end - line_start > MAX_QUOTED_LINE
}

fn to_codespan(source: &Source, d: &Diagnostic) -> cs::Diagnostic<()> {
    let severity = match d.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
    };
    let mut labels = Vec::new();
    let mut notes = Vec::new();
    let primary = d.primary.iter().map(|l| (true, l));
    for (is_primary, l) in primary.chain(d.secondary.iter().map(|l| (false, l))) {
        if on_long_line(source, l.span) {
            // Quoting a 100 KB line once per diagnostic would bury the message.
            let (line, col) = source.line_col(l.span.start);
            notes.push(format!(
                "at {}:{line}:{col} (a line too long to show): {}",
                source.name,
                shorten(&l.message)
            ));
        } else if is_primary {
            labels.push(cs::Label::primary((), l.span.range()).with_message(shorten(&l.message)));
        } else {
            labels.push(cs::Label::secondary((), l.span.range()).with_message(shorten(&l.message)));
        }
    }
    notes.extend(d.notes.iter().map(|n| format!("note: {}", shorten(n))));
    if let Some(h) = &d.help {
        notes.push(format!("help: {}", shorten(h)));
    }
    for (i, f) in d.fixes.iter().enumerate() {
        notes.push(format!(
            "help: {}{}",
            if i == 0 { "" } else { "or " },
            f.message
        ));
    }
    cs::Diagnostic::new(severity)
        .with_code(d.code.as_str())
        .with_message(shorten(&d.message))
        .with_labels(labels)
        .with_notes(notes)
}

/// One line per diagnostic: `file:line:col: error[E0203]: message`.
pub fn short(source: &Source, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    let (shown, hidden) = capped(diags);
    for d in shown {
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
        out.push_str(&format!(
            "{severity}[{}]: {}",
            d.code.as_str(),
            shorten(&d.message)
        ));
        if let Some(p) = &d.primary
            && !p.message.is_empty()
        {
            out.push_str(&format!(": {}", shorten(&p.message)));
        }
        out.push('\n');
    }
    for (d, n) in hidden {
        out.push_str(&hidden_line(d, n));
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
    /// Verified fixes, best first: edits with byte offsets into the file as read.
    pub fixes: Vec<JsonFix>,
}

#[derive(Debug, Serialize)]
pub struct JsonFix {
    pub message: String,
    pub edits: Vec<JsonEdit>,
}

#[derive(Debug, Serialize)]
pub struct JsonEdit {
    pub file: String,
    pub start: u32,
    pub end: u32,
    pub replacement: String,
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
            fixes: Vec::new(),
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
        fixes: d
            .fixes
            .iter()
            .map(|f| JsonFix {
                message: f.message.clone(),
                edits: f
                    .edits
                    .iter()
                    .map(|e| JsonEdit {
                        file: source.name.clone(),
                        start: e.span.start,
                        end: e.span.end,
                        replacement: e.replacement.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}
