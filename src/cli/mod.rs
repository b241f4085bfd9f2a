//! The command-line interface: argument parsing (clap), reading files, printing, exit codes.
//! The only module that does IO or prints; one file per subcommand.
//!
//! Exit codes: 0 no errors (warnings allowed), 1 errors in the source (or in weights/inputs
//! given to `run`), 2 usage or IO error, 101 internal error.

/// `eprintln!` for the command line: a line on stderr, lost if stderr is closed
/// (`resnetc run ... 2>&1 | head -1`), as a closed stdout loses the product; `eprintln!`
/// would panic there and exit with 101, the code of an internal error.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod analyze;
pub mod check;
mod explain;
mod export;
mod feed;
mod graph;
mod images;
mod memory;
mod run;

use crate::diag::{Diagnostic, render};
use crate::span::{MAX_SOURCE_BYTES, Source};
use clap::{Parser, Subcommand, ValueEnum};
use codespan_reporting::term::termcolor::{ColorChoice, StandardStream};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

pub const EXIT_OK: i32 = 0;
pub const EXIT_ERRORS: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INTERNAL: i32 = 101;

/// Check, run and draw residual networks described in `.res` files.
#[derive(Parser, Debug)]
#[command(name = "resnetc", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 ok (warnings allowed), 1 errors in the input, 2 usage or IO error, 101 internal error.\nRun `resnetc explain E0203` for what an error code means."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Check(check::CheckArgs),
    Run(run::RunArgs),
    Graph(graph::GraphArgs),
    Export(export::ExportArgs),
    Analyze(analyze::AnalyzeArgs),
    Explain(explain::ExplainArgs),
}

/// How diagnostics and results are printed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Diagnostics with source excerpts on stderr, a table on stdout.
    #[default]
    Human,
    /// One line per diagnostic on stderr.
    Short,
    /// One JSON document on stdout (diagnostics and results).
    Json,
    /// One YAML document on stdout (diagnostics and results).
    Yaml,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Color {
    /// Color when stderr is a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    Always,
    Never,
}

/// Options shared by the subcommands that compile a `.res` file.
#[derive(clap::Args, Debug, Clone)]
pub struct SourceArgs {
    /// The `.res` file; `-` reads standard input.
    pub file: PathBuf,
    /// The network to compile, when the file defines several.
    #[arg(long, short = 'n', value_name = "NAME")]
    pub network: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// When to color diagnostics.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

/// An error outside the source: a missing file, a bad weights file, a failed write.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: i32,
}

impl CliError {
    pub fn io(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: EXIT_USAGE,
        }
    }

    pub fn input(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: EXIT_ERRORS,
        }
    }
}

/// Entry point: parse arguments, run the subcommand in a thread with a large stack, map
/// panics to exit code 101.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    let worker = std::thread::Builder::new()
        .name("resnetc".into())
        .stack_size(256 << 20)
        .spawn(move || run_command(cli));
    let result = match worker {
        Ok(handle) => handle.join(),
        Err(e) => {
            say!("error: cannot start: {e}");
            return EXIT_INTERNAL;
        }
    };
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            if !e.message.is_empty() {
                say!("error: {}", e.message);
            }
            e.code
        }
        Err(_) => {
            say!(
                "error: internal error in resnetc; please report it with the input that caused it"
            );
            EXIT_INTERNAL
        }
    }
}

fn run_command(cli: Cli) -> Result<i32, CliError> {
    match cli.command {
        Command::Check(a) => check::run(&a),
        Command::Run(a) => run::run(&a),
        Command::Graph(a) => graph::run(&a),
        Command::Export(a) => export::run(&a),
        Command::Analyze(a) => analyze::run(&a),
        Command::Explain(a) => explain::run(&a),
    }
}

/// Read a `.res` source (a path or `-` for stdin). Invalid UTF-8 is reported as E0004.
pub fn read_source(path: &Path) -> Result<Result<Source, (Source, Diagnostic)>, CliError> {
    let name = path.display().to_string();
    let bytes = if name == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .take(MAX_SOURCE_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| CliError::io(format!("cannot read standard input: {}", io_reason(&e))))?;
        buf
    } else {
        let meta = std::fs::metadata(path)
            .map_err(|e| CliError::io(format!("cannot read `{name}`: {}", io_reason(&e))))?;
        if meta.is_dir() {
            return Err(CliError::io(format!(
                "`{name}` is a directory, not a .res file"
            )));
        }
        let file = std::fs::File::open(path)
            .map_err(|e| CliError::io(format!("cannot read `{name}`: {}", io_reason(&e))))?;
        let mut buf = Vec::new();
        file.take(MAX_SOURCE_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| CliError::io(format!("cannot read `{name}`: {}", io_reason(&e))))?;
        buf
    };
    let name = if name == "-" {
        "<stdin>".to_string()
    } else {
        name
    };
    if bytes.len() > MAX_SOURCE_BYTES {
        return Err(CliError::input(format!(
            "`{name}` is larger than {} MiB; resnetc does not read source files this large",
            MAX_SOURCE_BYTES >> 20
        )));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Ok(Source::new(name, text))),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let d = Diagnostic::error(
                crate::diag::Code::NotUtf8,
                format!("`{name}` is not UTF-8 text"),
            )
            .with_note(format!("the first invalid byte is at offset {at}"))
            .with_help("a .res file is plain text; is this the right file?");
            Ok(Err((Source::new(name, ""), d)))
        }
    }
}

/// Why [`read_bounded`] did not return the bytes.
#[derive(Debug)]
pub enum ReadError {
    /// Over the limit: the size when the file says it (a regular file), else `None`.
    TooLarge(Option<u64>),
    Io(CliError),
}

/// Read at most `limit` bytes of a file. A regular file is refused by its size before it is
/// read; anything else (`/dev/zero`, a FIFO, a pipe) is read in chunks and refused as soon
/// as it passes the limit, so no file can make resnetc read without end. `what` names the
/// file's role in messages ("weights", "input").
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, ReadError> {
    let shown = path.display();
    let fail = |e: &std::io::Error| {
        ReadError::Io(CliError::io(format!(
            "cannot read {what} `{shown}`: {}",
            io_reason(e)
        )))
    };
    let file = std::fs::File::open(path).map_err(|e| fail(&e))?;
    let meta = file.metadata().map_err(|e| fail(&e))?;
    if meta.is_dir() {
        return Err(ReadError::Io(CliError::io(format!(
            "cannot read {what} `{shown}`: it is a directory"
        ))));
    }
    if meta.is_file() && meta.len() > limit {
        return Err(ReadError::TooLarge(Some(meta.len())));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| fail(&e))?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(None));
    }
    Ok(bytes)
}

/// Check an `-o` path before anything runs, and return the file to write: the path itself, or
/// the target of a symlink (written through, never replaced). Refuses `-`, directories,
/// devices, FIFOs and sockets, a directory that does not exist or cannot be written, and any
/// of `inputs` (through symlinks and hard links too).
pub fn output_target(out: &Path, inputs: &[&Path]) -> Result<PathBuf, CliError> {
    let shown = out.display();
    let refuse = |why: String| CliError::io(format!("cannot write `{shown}`: {why}"));
    if out.as_os_str() == "-" {
        return Err(refuse(
            "`-o -` would mix binary output into the text on stdout; give a file name".into(),
        ));
    }
    if out
        .as_os_str()
        .to_string_lossy()
        .ends_with(std::path::MAIN_SEPARATOR)
    {
        return Err(refuse("it names a directory; give a file name".into()));
    }
    let target = match std::fs::symlink_metadata(out) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(out).map_err(|_| {
            refuse(
                "it is a symlink to a file that does not exist; remove it or give the target"
                    .into(),
            )
        })?,
        _ => out.to_path_buf(),
    };
    match std::fs::metadata(&target) {
        Ok(m) if m.is_dir() => return Err(refuse("it is a directory; give a file name".into())),
        Ok(m) if !m.is_file() => {
            return Err(refuse(
                "it is not a regular file (a device, FIFO or socket); resnetc writes only regular files".into(),
            ));
        }
        _ => {}
    }
    if let Some(p) = inputs.iter().find(|p| same_file(p, &target)) {
        return Err(CliError::io(format!(
            "refusing to overwrite the input file `{}` with the output; choose another -o path",
            p.display()
        )));
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(refuse(format!(
            "the directory `{}` does not exist",
            dir.display()
        )));
    }
    // Writable: a temporary file can be made there (and is removed at once).
    tempfile::Builder::new()
        .prefix(".resnetc-")
        .tempfile_in(dir)
        .map_err(|e| {
            refuse(format!(
                "cannot create files in `{}` ({})",
                dir.display(),
                io_reason(&e)
            ))
        })?;
    Ok(target)
}

/// `--network NAME` must name a network of the file: otherwise it is a usage error (exit 2),
/// like an unknown option. A file that does not parse is left to the checker to report.
pub fn require_network(source: &Source, network: Option<&str>) -> Result<(), CliError> {
    let (Some(wanted), Some(names)) = (network, crate::network_names(source)) else {
        return Ok(());
    };
    if names.iter().any(|n| n == wanted) {
        return Ok(());
    }
    let defined = if names.is_empty() {
        "it defines no network".to_string()
    } else {
        let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        format!("it defines {}", list.join(", "))
    };
    Err(CliError::io(format!(
        "`--network {wanted}`: `{}` has no network of that name; {defined}",
        source.name
    )))
}

/// A flag's whole number in `min..=max`; the message says what the number counts (`what`,
/// e.g. "a number of classes") and which values are accepted. Flags that take one also
/// accept a leading `-`, so that `--top -1` reaches this message instead of clap's advice
/// to write `-- -1`.
pub fn parse_number(text: &str, what: &str, min: u64, max: u64) -> Result<u64, String> {
    let refuse = || match max {
        u64::MAX => format!("`{text}` is not {what}: give {min} or more"),
        m if m == i64::MAX as u64 => format!("`{text}` is not {what}: give {min} to 2^63 - 1"),
        m => format!("`{text}` is not {what}: give {min} to {m}"),
    };
    match text.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(refuse()),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "it is a directory, not a file".into(),
        _ => e.to_string(),
    }
}

/// Print diagnostics to stderr in human or short form.
pub fn print_diagnostics(
    source: &Source,
    diags: &[Diagnostic],
    format: Format,
    color: Color,
) -> Result<(), CliError> {
    if diags.is_empty() {
        return Ok(());
    }
    match format {
        Format::Short => {
            let text = render::short(source, diags);
            write_stderr(text.as_bytes())
        }
        _ => {
            let choice = match color {
                Color::Always => ColorChoice::Always,
                Color::Never => ColorChoice::Never,
                Color::Auto => {
                    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
                        || !std::io::stderr().is_terminal()
                    {
                        ColorChoice::Never
                    } else {
                        ColorChoice::Auto
                    }
                }
            };
            let mut stream = StandardStream::stderr(choice);
            match render::human(&mut stream, source, diags) {
                // Whoever reads them stopped (`2>&1 | head`): the exit code still says it all.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(CliError::io(format!("cannot write diagnostics: {e}"))),
                Ok(()) => {}
            }
            let n_err = diags.iter().filter(|d| d.is_error()).count();
            let n_warn = diags.len() - n_err;
            let mut parts = Vec::new();
            if n_err > 0 {
                parts.push(format!(
                    "{n_err} error{}",
                    if n_err == 1 { "" } else { "s" }
                ));
            }
            if n_warn > 0 {
                parts.push(format!(
                    "{n_warn} warning{}",
                    if n_warn == 1 { "" } else { "s" }
                ));
            }
            write_stderr(format!("{}: {}\n", source.name, parts.join(", ")).as_bytes())
        }
    }
}

fn write_stderr(bytes: &[u8]) -> Result<(), CliError> {
    let mut err = std::io::stderr().lock();
    ignore_broken_pipe(err.write_all(bytes))
}

/// Write the product to stdout; a closed pipe (`| head`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    ignore_broken_pipe(out.write_all(bytes).and_then(|_| out.flush()))
}

fn ignore_broken_pipe(r: std::io::Result<()>) -> Result<(), CliError> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::io(format!("cannot write output: {e}"))),
    }
}

/// Serialize a report as JSON or YAML.
pub fn to_machine<T: serde::Serialize>(value: &T, format: Format) -> Result<String, CliError> {
    match format {
        Format::Yaml => serde_yaml::to_string(value).map_err(|e| CliError {
            message: format!("cannot serialize: {e}"),
            code: EXIT_INTERNAL,
        }),
        _ => serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| CliError {
                message: format!("cannot serialize: {e}"),
                code: EXIT_INTERNAL,
            }),
    }
}

/// Whether two paths name the same existing file (through symlinks or hard links too).
pub fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(meta_a), Ok(meta_b)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta_a.dev() == meta_b.dev() && meta_a.ino() == meta_b.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (meta_a, meta_b);
        matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
    }
}

/// An output path must be a regular file (or a new one) in a writable directory and must not
/// be one of the inputs (so that an export or a run never replaces what it reads); see
/// [`output_target`].
pub fn check_output_path<'a>(
    out: &Path,
    inputs: impl IntoIterator<Item = &'a Path>,
) -> Result<(), CliError> {
    let inputs: Vec<&Path> = inputs.into_iter().collect();
    output_target(out, &inputs).map(|_| ())
}

/// Write `bytes` to `path` through a temporary file in the same directory, renamed into place,
/// so that `path` is either untouched or complete. A symlink is written through (its target
/// is replaced, never the link); a file that exists keeps its permissions (a private source
/// fixed by `check --fix` stays private); other hard links to an existing file keep its old
/// bytes, since a new file takes its name; `path` should have passed [`output_target`].
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let shown = path.display();
    let resolved;
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            resolved = std::fs::canonicalize(path)
                .map_err(|e| CliError::io(format!("cannot write `{shown}`: {}", io_reason(&e))))?;
            resolved.as_path()
        }
        _ => path,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let fail = |e: &dyn std::fmt::Display| CliError::io(format!("cannot write `{shown}`: {e}"));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".resnetc-");
    // A temporary file is private (0600); the graph gets the permissions of any new file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            fail(&format!("the directory `{}` does not exist", dir.display()))
        }
        // The error names the temporary file, which the user never asked for.
        _ => fail(&format!(
            "cannot create files in `{}` ({})",
            dir.display(),
            io_reason(&e)
        )),
    })?;
    if let Some(m) = std::fs::metadata(path).ok().filter(|m| m.is_file()) {
        tmp.as_file()
            .set_permissions(m.permissions())
            .map_err(|e| fail(&e))?;
    }
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| fail(&e))?;
    tmp.persist(path).map_err(|e| fail(&e.error))?;
    Ok(())
}
