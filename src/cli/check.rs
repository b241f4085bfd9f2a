//! `resnetc check FILE`: diagnostics on stderr; a summary of each network that checks on
//! stdout. A file with several networks has them all checked unless `--network` names one.

use super::{
    CliError, EXIT_ERRORS, EXIT_OK, Format, SourceArgs, print_diagnostics, read_source, to_machine,
    write_stdout,
};
use crate::diag::render::{JsonDiagnostic, to_json};
use crate::summary::{Options, Summary};
use serde::Serialize;

/// Check a network: syntax, names, shapes; print a per-layer summary.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Apply the best verified fix of each error to FILE in place (atomically), then check
    /// the result. Without it nothing is written.
    #[arg(long)]
    pub fix: bool,
    /// Check the plain network: every residual add's shortcut removed (as `analyze --plain`).
    #[arg(long, conflicts_with = "fix")]
    pub plain: bool,
    /// Report, for each input's H and W, the exact sizes in LO..HI at which the network
    /// checks (one axis varied, every other dimension as declared). Done over 1..1024 without
    /// it when an input's H or W is a symbol.
    #[arg(long, value_name = "LO..HI")]
    pub sizes: Option<crate::shape::sizes::SizeRange>,
    /// How deep the table goes: 0 one row per stage (labelled sequence or block instance of
    /// the network's body), 1 (the default) the block instances inside stages, 2 the ops
    /// inside those blocks, and so on. JSON and YAML list every layer and group whatever it is.
    #[arg(long, value_name = "D")]
    pub depth: Option<usize>,
}

/// The JSON/YAML document `check --format json|yaml` prints.
#[derive(Serialize)]
struct Report<'a> {
    diagnostics: Vec<JsonDiagnostic>,
    /// The summary, when the file has one network and it checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<&'a Summary<'a>>,
    /// The summaries of the networks that check, when the file has several.
    #[serde(skip_serializing_if = "Option::is_none")]
    networks: Option<&'a [Summary<'a>]>,
}

/// What `check` prints for a checked source in human or short form without color:
/// (stdout, stderr). Used by the command and by the UI tests.
pub fn render_plain(
    source: &crate::span::Source,
    checked: &crate::CheckedFile,
    format: Format,
) -> (String, String) {
    render_plain_with(source, checked, format, &Options::default())
}

/// [`render_plain`] with the summary options of `--sizes`.
pub fn render_plain_with(
    source: &crate::span::Source,
    checked: &crate::CheckedFile,
    format: Format,
    opts: &Options,
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
    (tables(&checked.summaries_with(source, opts)), stderr)
}

/// The summary tables, one per network, separated by a blank line.
fn tables(summaries: &[Summary]) -> String {
    summaries
        .iter()
        .map(Summary::to_table)
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn run(a: &CheckArgs) -> Result<i32, CliError> {
    let s = &a.source;
    let read = match read_source(&s.file) {
        // In JSON/YAML mode even a missing file is reported in a document.
        Err(e) if matches!(s.format, Format::Json | Format::Yaml) => {
            let report = Report {
                diagnostics: vec![JsonDiagnostic::plain(&e.message)],
                network: None,
                networks: None,
            };
            write_stdout(to_machine(&report, s.format)?.as_bytes())?;
            return Ok(e.code);
        }
        other => other?,
    };
    let (source, checked) = match read {
        Ok(source) => {
            super::require_network(&source, s.network.as_deref())?;
            let mut checked = crate::check_file(&source, s.network.as_deref());
            if a.plain {
                checked = crate::analyze::plain::to_plain_file(&source, checked);
            }
            (source, checked)
        }
        Err((source, d)) => (source, crate::CheckedFile::failed(vec![d])),
    };
    let (source, checked) = if a.fix {
        apply_fixes(&s.file, s.network.as_deref(), source, checked)?
    } else {
        (source, checked)
    };
    let opts = Options {
        sizes: a.sizes,
        depth: a.depth,
    };
    let summaries = checked.summaries_with(&source, &opts);
    if let Some(why) = summaries
        .iter()
        .find_map(|s| s.valid_sizes_skipped.as_ref())
        .filter(|_| a.sizes.is_some())
    {
        return Err(CliError::io(format!("cannot analyse `--sizes`: {why}")));
    }
    let several = checked.networks.len() > 1;
    match s.format {
        Format::Json | Format::Yaml => {
            let report = Report {
                diagnostics: checked
                    .diagnostics
                    .iter()
                    .map(|d| to_json(&source, d))
                    .collect(),
                network: summaries.first().filter(|_| !several),
                networks: several.then_some(summaries.as_slice()),
            };
            write_stdout(to_machine(&report, s.format)?.as_bytes())?;
        }
        Format::Human | Format::Short => {
            print_diagnostics(&source, &checked.diagnostics, s.format, s.color)?;
            if !summaries.is_empty() {
                write_stdout(tables(&summaries).as_bytes())?;
            }
        }
    }
    Ok(if checked.has_errors() {
        EXIT_ERRORS
    } else {
        EXIT_OK
    })
}

/// `check --fix`: write the best fix of each error into the file, atomically, and check the
/// result (what is then reported).
fn apply_fixes(
    path: &std::path::Path,
    network: Option<&str>,
    source: crate::span::Source,
    checked: crate::CheckedFile,
) -> Result<(crate::span::Source, crate::CheckedFile), CliError> {
    if path.as_os_str() == "-" {
        return Err(CliError::io(
            "`--fix` edits a file in place; it cannot read standard input",
        ));
    }
    let (edits, fixed) = crate::fix::best_edits(&source, &checked);
    if edits.is_empty() {
        return Ok((source, checked));
    }
    let Some(text) = crate::fix::verify::apply(&source.text, &edits) else {
        return Ok((source, checked));
    };
    super::write_atomically(path, text.as_bytes())?;
    say!(
        "fixed {fixed} error{} in `{}` ({} edit{})",
        if fixed == 1 { "" } else { "s" },
        source.name,
        edits.len(),
        if edits.len() == 1 { "" } else { "s" }
    );
    let edited = crate::span::Source::new(source.name.clone(), text);
    let rechecked = crate::check_file(&edited, network);
    Ok((edited, rechecked))
}
