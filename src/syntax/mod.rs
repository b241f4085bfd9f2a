//! Syntax: `.res` text to an AST with spans.
//!
//! Knows nothing of the graph, shapes or the interpreter. Before the (recursive) pest parser
//! runs, `check_nesting` bounds bracket depth, so no input can overflow the stack here or in
//! the recursive passes after it.

pub mod ast;
mod parser;
mod recover;

use crate::diag::{Code, Diagnostic};
use crate::span::Span;

/// The deepest nesting of `(`, `[` and `{` the parser accepts.
pub const MAX_NESTING: usize = 64;

/// Parse a source text into an AST, or report its syntax errors.
pub fn parse(text: &str) -> Result<ast::File, Vec<Diagnostic>> {
    check_nesting(text)?;
    parser::parse_file(text)
}

/// Refuse bracket nesting deeper than [`MAX_NESTING`] (comments are skipped).
fn check_nesting(text: &str) -> Result<(), Vec<Diagnostic>> {
    let mut depth = 0usize;
    let mut in_comment = false;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'\n' => in_comment = false,
            _ if in_comment => {}
            b'#' => in_comment = true,
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(vec![
                        Diagnostic::error(Code::NestingTooDeep, "brackets nested too deep")
                            .with_primary(Span::new(i, i + 1), format!("nesting level {depth}"))
                            .with_note(format!(
                                "resnetc accepts at most {MAX_NESTING} levels of `(`, `[` and `{{`"
                            ))
                            .with_help("name intermediate values instead of nesting expressions"),
                    ]);
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}
