//! Syntax-error recovery: every syntax error of a file in one run, not only the first.
//!
//! pest stops at the first error, so after a failed parse the text is cut at the boundaries a
//! reader sees and each piece is parsed alone: top-level items (lines starting with `block` or
//! `network`), then, inside an item that fails, each statement (a line starting with `input`,
//! `output` or `NAME =`, up to the next one) and the item's frame with its statements blanked
//! out (for errors in the header or braces). Pieces are slices of the text, so each error's
//! offsets are shifted back by the piece's start; every step is linear in the text.

use crate::diag::Diagnostic;
use crate::span::Span;

/// A piece of the text: its byte range.
type Piece = std::ops::Range<usize>;

/// At most this many syntax errors are reported from one file.
pub const MAX_ERRORS: usize = 50;

/// Every syntax error of `text`, given a parser for a whole file and one for a single
/// statement (each returning the first error of the slice it gets, offsets relative to it).
pub fn all_errors(
    text: &str,
    first: Diagnostic,
    parse_file: impl Fn(&str) -> Option<Diagnostic>,
    parse_stmt: impl Fn(&str) -> Option<Diagnostic>,
) -> Vec<Diagnostic> {
    // The whole-file parser's first error has the most context: it wins over a piece's error
    // at the same place.
    let first_at = first.primary.as_ref().map(|p| p.span.start as usize);
    let mut errors = vec![first];
    // Whether the first error is where the whole-file parser, missing a statement's `)` or
    // `]`, ran past the statement's end into the next one or the item's `}`: a cascade of that
    // statement's own error, which is kept instead.
    let mut cascade = false;
    for item in items(text) {
        let slice = &text[item.clone()];
        let Some(item_error) = parse_file(slice) else {
            continue;
        };
        let before = errors.len();
        let (frame, stmts) = statements(slice);
        for s in &stmts {
            if let Some(d) = parse_stmt(&slice[s.clone()]) {
                let end = item.start + s.end;
                cascade |= first_at.is_some_and(|at| {
                    at >= end
                        && text[end..at]
                            .lines()
                            .all(|l| l.trim().starts_with('#') || l.trim().is_empty())
                });
                errors.push(shift(d, item.start + s.start));
            }
        }
        if let Some(d) = parse_file(&frame) {
            errors.push(shift(d, item.start));
        }
        if errors.len() == before {
            // The pieces parse alone: the error depends on their context.
            errors.push(shift(item_error, item.start));
        }
        if errors.len() >= MAX_ERRORS {
            break;
        }
    }
    if cascade && errors.len() > 1 {
        errors.remove(0);
    }
    errors.sort_by_key(|d| d.primary.as_ref().map_or(0, |p| p.span.start));
    errors.dedup_by_key(|d| d.primary.as_ref().map(|p| p.span));
    errors.truncate(MAX_ERRORS);
    errors
}

/// Move a diagnostic's spans by `by` bytes.
fn shift(mut d: Diagnostic, by: usize) -> Diagnostic {
    let move_span = |s: Span| Span::new(s.start as usize + by, s.end as usize + by);
    if let Some(p) = &mut d.primary {
        p.span = move_span(p.span);
    }
    for l in &mut d.secondary {
        l.span = move_span(l.span);
    }
    d
}

/// Byte offsets of the start of each line.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start = 0;
    text.split_inclusive('\n').map(move |l| {
        let at = start;
        start += l.len();
        (at, l)
    })
}

/// The first word of a line (after indentation), and the rest after it.
fn first_word(line: &str) -> (&str, &str) {
    let t = line.trim_start();
    let end = t
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    (&t[..end], &t[end..])
}

/// Top-level items: a new one starts at each line beginning (in column 0) with `block` or
/// `network`, or a misspelling of one (`netwrok small {`, so that its error is the only one);
/// text before the first is an item of its own.
fn items(text: &str) -> Vec<Piece> {
    let mut starts = vec![0];
    for (at, line) in lines(text) {
        let (word, rest) = first_word(line);
        // A misspelling only where a header would be: `WORD NAME ... {`.
        let header = rest.starts_with([' ', '\t'])
            && rest
                .trim_start()
                .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && rest
                .split('#')
                .next()
                .is_some_and(|code| code.contains('{'));
        let keyword = matches!(word, "block" | "network")
            || (header
                && crate::diag::suggest::closest(word, ["block", "network"].into_iter()).is_some());
        if at > 0 && !line.starts_with(char::is_whitespace) && keyword {
            starts.push(at);
        }
    }
    starts.push(text.len());
    starts.dedup();
    starts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Whether a code line ends so that the next line continues it (`->`, an operator, `,`, an
/// opening bracket).
fn continues(code: &str) -> bool {
    let code = code.split('#').next().unwrap_or("").trim_end();
    code.ends_with("->")
        || code.ends_with(['=', '+', '-', '*', '/', '%', ',', '(', '[', '<', '>'])
        || ["and", "or", "not", "else", "if"]
            .iter()
            .any(|w| code.ends_with(&format!(" {w}")))
}

/// The statements of an item (from a line starting with `input`, `output` or `NAME =` that
/// does not continue the line before, to the next such line or the item's last `}`), and the
/// item with those statements blanked out (newlines kept, so offsets stay).
fn statements(item: &str) -> (String, Vec<Piece>) {
    let end_of_body = item.rfind('}').unwrap_or(item.len());
    let mut starts = Vec::new();
    let mut open = true; // the header line never starts a statement
    for (at, line) in lines(item) {
        if at >= end_of_body {
            break;
        }
        let code = line.split('#').next().unwrap_or("");
        if code.trim().is_empty() {
            continue;
        }
        let (word, rest) = first_word(line);
        // `inptu x: [...]`, `ouput y`: a misspelt keyword still starts a statement, so that
        // the next one is parsed alone too.
        let spaced = rest.starts_with([' ', '\t']);
        let misspelt = || {
            spaced && crate::diag::suggest::closest(word, ["input", "output"].into_iter()).is_some()
        };
        let rest = rest.trim_start();
        let begins = matches!(word, "input" | "output")
            || misspelt()
            || (!word.is_empty()
                && !matches!(word, "else" | "and" | "or" | "not")
                && rest.starts_with('=')
                && !rest.starts_with("=="));
        if begins && !open && at > 0 {
            starts.push(at + (line.len() - line.trim_start().len()));
        }
        open = continues(code) || (at == 0 && !code.contains('{'));
    }
    let mut pieces = Vec::new();
    for (i, &s) in starts.iter().enumerate() {
        let next = starts.get(i + 1).copied().unwrap_or(end_of_body);
        // A statement ends at the end of its last line, before the item's closing brace.
        let e = item[..next].trim_end().len().max(s);
        pieces.push(s..e);
    }
    let mut frame = item.as_bytes().to_vec();
    for p in &pieces {
        for b in &mut frame[p.clone()] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    }
    // Blanking replaces whole UTF-8 sequences only where they are inside a piece.
    let frame = String::from_utf8(frame).unwrap_or_default();
    (frame, pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_start_at_block_and_network_lines() {
        let text = "# c\nblock a {\n}\nnetwork n {\n  block = 1\n}\n";
        let got: Vec<&str> = items(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(
            got,
            ["# c\n", "block a {\n}\n", "network n {\n  block = 1\n}\n"]
        );
    }

    #[test]
    fn statements_split_at_lines_that_start_one() {
        let item = "network n {\n    input x: [1]\n    y = x\n        -> relu\n    output y\n}\n";
        let (frame, pieces) = statements(item);
        let got: Vec<&str> = pieces.into_iter().map(|r| &item[r]).collect();
        assert_eq!(got, ["input x: [1]", "y = x\n        -> relu", "output y"]);
        assert_eq!(frame.len(), item.len());
        assert!(frame.starts_with("network n {\n") && frame.trim_end().ends_with('}'));
    }
}
