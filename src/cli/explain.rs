//! `resnetc explain CODE`: print the page for an error code.

use super::{CliError, EXIT_OK, write_stdout};
use crate::diag::{self, Code};

/// Explain an error code: what it means, an erroneous example, and the fix.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// The code, e.g. E0203; `--list` shows all codes.
    #[arg(required_unless_present = "list")]
    pub code: Option<String>,
    /// List every code with its summary.
    #[arg(long, conflicts_with = "code")]
    pub list: bool,
}

pub fn run(a: &ExplainArgs) -> Result<i32, CliError> {
    if a.list {
        let mut out = String::new();
        for c in Code::ALL {
            out.push_str(&format!("{}  {}\n", c.as_str(), c.title()));
        }
        write_stdout(out.as_bytes())?;
        return Ok(EXIT_OK);
    }
    let code = a.code.as_deref().unwrap_or("");
    match diag::explain(code) {
        Some(page) => {
            write_stdout(page.as_bytes())?;
            Ok(EXIT_OK)
        }
        None => Err(CliError::io(format!(
            "no such error code `{code}`; `resnetc explain --list` shows them all"
        ))),
    }
}
