//! `resnetc check FILE`: diagnostics on stderr; on success a summary of the network on stdout.

use super::{
    CliError, EXIT_ERRORS, EXIT_OK, Format, SourceArgs, print_diagnostics, read_source, to_machine,
    write_stdout,
};
use crate::diag::render::{JsonDiagnostic, to_json};
use crate::summary::Summary;
use serde::Serialize;

/// Check a network: syntax, names, shapes; print a per-layer summary.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub source: SourceArgs,
}

/// The JSON/YAML document `check --format json|yaml` prints.
#[derive(Serialize)]
struct Report<'a> {
    diagnostics: Vec<JsonDiagnostic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<&'a Summary<'a>>,
}

/// What `check` prints for a checked source in human or short form without color:
/// (stdout, stderr). Used by the command and by the UI tests.
pub fn render_plain(
    source: &crate::span::Source,
    checked: &crate::Checked,
    format: Format,
) -> (String, String) {
    let stderr = match format {
        Format::Short => crate::diag::render::short(source, &checked.diagnostics),
        _ => {
            let mut buf = codespan_reporting::term::termcolor::NoColor::new(Vec::new());
            // Writing into memory cannot fail.
            let _ = crate::diag::render::human(&mut buf, source, &checked.diagnostics);
            String::from_utf8_lossy(&buf.into_inner()).into_owned()
        }
    };
    let stdout = checked.summary().map(|s| s.to_table()).unwrap_or_default();
    (stdout, stderr)
}

pub fn run(a: &CheckArgs) -> Result<i32, CliError> {
    let s = &a.source;
    let read = match read_source(&s.file) {
        // In JSON/YAML mode even a missing file is reported in a document.
        Err(e) if matches!(s.format, Format::Json | Format::Yaml) => {
            let report = Report {
                diagnostics: vec![JsonDiagnostic::plain(&e.message)],
                network: None,
            };
            write_stdout(to_machine(&report, s.format)?.as_bytes())?;
            return Ok(e.code);
        }
        other => other?,
    };
    let (source, checked) = match read {
        Ok(source) => {
            let checked = crate::check(&source, s.network.as_deref());
            (source, checked)
        }
        Err((source, d)) => (source, crate::Checked::failed(vec![d])),
    };
    let summary = checked.summary();
    match s.format {
        Format::Json | Format::Yaml => {
            let report = Report {
                diagnostics: checked
                    .diagnostics
                    .iter()
                    .map(|d| to_json(&source, d))
                    .collect(),
                network: summary.as_ref(),
            };
            write_stdout(to_machine(&report, s.format)?.as_bytes())?;
        }
        Format::Human | Format::Short => {
            print_diagnostics(&source, &checked.diagnostics, s.format, s.color)?;
            if let Some(summary) = &summary {
                write_stdout(summary.to_table().as_bytes())?;
            }
        }
    }
    Ok(if checked.has_errors() {
        EXIT_ERRORS
    } else {
        EXIT_OK
    })
}
