//! Verifying a candidate fix: apply its edits to the source text, re-check the whole file
//! (every network, every block instance), and compare the diagnostics with those of the
//! original text, spans mapped back through the edits.

use crate::diag::{Code, Diagnostic, Edit};
use crate::span::{Source, Span};
use std::collections::HashSet;

/// A diagnostic's identity across an edit: its code and where it points in the original text.
pub type Key = (Code, u32);

/// The keys of a list of diagnostics of the original text.
pub fn keys(diags: &[Diagnostic]) -> HashSet<Key> {
    diags.iter().map(|d| key(d, |o| o)).collect()
}

fn key(d: &Diagnostic, map: impl Fn(u32) -> u32) -> Key {
    (
        d.code,
        d.primary.as_ref().map_or(u32::MAX, |p| map(p.span.start)),
    )
}

/// Apply non-overlapping edits to a text; `None` when they overlap or fall outside it.
pub fn apply(text: &str, edits: &[Edit]) -> Option<String> {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| (e.span.start, e.span.end));
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0usize;
    for e in sorted {
        let (s, t) = (e.span.start as usize, e.span.end as usize);
        if s < at || t < s {
            return None;
        }
        out.push_str(text.get(at..s)?);
        out.push_str(&e.replacement);
        at = t;
    }
    out.push_str(text.get(at..)?);
    Some(out)
}

/// An offset of the edited text, mapped back to the original: text after an edit shifts by
/// what the edit added, text inside a replacement maps to the edit's start.
fn map_back(edits: &[Edit], offset: u32) -> u32 {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| e.span.start);
    let mut delta: i64 = 0;
    for e in sorted {
        let new_start = e.span.start as i64 + delta;
        let new_end = new_start + e.replacement.len() as i64;
        if (offset as i64) < new_start {
            break;
        }
        if (offset as i64) < new_end {
            return e.span.start;
        }
        delta += e.replacement.len() as i64 - (e.span.end - e.span.start) as i64;
    }
    (offset as i64 - delta).max(0) as u32
}

/// Whether the edits together remove every diagnostic in `targets` and add none.
pub fn verify_all(source: &Source, before: &HashSet<Key>, targets: &[Key], edits: &[Edit]) -> bool {
    let Some(text) = apply(&source.text, edits) else {
        return false;
    };
    let edited = Source::new(source.name.clone(), text);
    crate::check_file_plain(&edited, None)
        .diagnostics
        .iter()
        .all(|d| {
            let k = key(d, |o| map_back(edits, o));
            !targets.contains(&k) && before.contains(&k)
        })
}

/// Whether two edit lists touch the same text.
pub fn overlap(a: &[Edit], b: &[Edit]) -> bool {
    let touches =
        |x: Span, y: Span| x.start < y.end.max(y.start + 1) && y.start < x.end.max(x.start + 1);
    a.iter().any(|x| b.iter().any(|y| touches(x.span, y.span)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(s: usize, e: usize, r: &str) -> Edit {
        Edit {
            span: Span::new(s, e),
            replacement: r.into(),
        }
    }

    #[test]
    fn edits_apply_in_order_and_offsets_map_back() {
        let edits = [edit(5, 6, "three"), edit(0, 0, "> ")];
        assert_eq!(
            apply("conv(1, k: 1)", &edits).unwrap(),
            "> conv(three, k: 1)"
        );
        // `k` is at 8 in the original, 14 after the edits.
        assert_eq!(map_back(&edits, 14), 8);
        assert_eq!(map_back(&edits, 9), 5);
        assert_eq!(apply("abc", &[edit(0, 2, "x"), edit(1, 3, "y")]), None);
    }
}
