//! Verified fixes: for every shape error, candidate source edits are generated from the
//! failing op's provenance (`candidates`), applied to the text and the whole file re-checked
//! ([`verify`]); only a fix after which the diagnostic is gone and no other appears is offered.
//!
//! The search is bounded: candidates are tried in order of preference (what the file already
//! has, then literals, then inserted structure; within a class, the first four edits of each
//! distance from the failing op before the next four of any, nearest first, smallest first), at most [`MAX_CHECKS_PER_CLASS`] re-checks per class and diagnostic and
//! [`MAX_CHECKS_PER_FILE`] per file; the search for one diagnostic stops at [`MAX_FIXES`]
//! verified fixes or [`MAX_CHECKS_AFTER_FIRST`] re-checks after the first. A re-check is a
//! whole parse, lower and infer (1-5 ms for ResNet-152), so a diagnostic costs at most 48 of
//! them. Verified fixes are ranked by class, then by the size of the edit.

mod candidates;
mod index;
mod rewrites;
pub mod verify;

use crate::diag::Fix;
use crate::span::Source;
use candidates::Candidate;

/// Verified fixes kept per diagnostic.
pub const MAX_FIXES: usize = 3;
/// Re-checks per diagnostic for each class of candidate (existing names, literals, structure).
pub const MAX_CHECKS_PER_CLASS: [usize; 3] = [24, 16, 8];
/// Once a fix verified, how many more re-checks look for alternatives.
pub const MAX_CHECKS_AFTER_FIRST: usize = 16;
/// Re-checks per file.
pub const MAX_CHECKS_PER_FILE: usize = 400;

/// Find, verify and attach fixes to the shape errors (and W0103) of a checked file. A diagnostic for which
/// nothing verifies gets a note saying so and no help.
pub fn attach(source: &Source, checked: &mut crate::CheckedFile) {
    let fixable =
        |d: &crate::diag::Diagnostic| d.is_error() || d.code == crate::diag::Code::FlattenSpatial;
    if !checked.diagnostics.iter().any(fixable) {
        return;
    }
    let Ok(file) = crate::syntax::parse(&source.text) else {
        return;
    };
    let ix = index::Index::new(&file);
    let crate::CheckedFile {
        networks,
        diagnostics,
    } = checked;
    let nets: Vec<_> = networks
        .iter()
        .filter_map(|c| Some((c.graph.as_ref()?, c.shapes.as_ref()?)))
        .collect();
    if nets.is_empty() {
        return;
    }
    // Verification re-checks every network: compare with every network's diagnostics.
    let before = if networks.len() == file.networks.len() {
        verify::keys(diagnostics)
    } else {
        verify::keys(&crate::check_file_plain(source, None).diagnostics)
    };
    let mut budget = MAX_CHECKS_PER_FILE;
    for d in diagnostics.iter_mut() {
        let Some(primary) = d.primary.as_ref().map(|p| p.span) else {
            continue;
        };
        let mut cands = if d.code == crate::diag::Code::FlattenSpatial {
            rewrites::pool_before_flatten(source, &ix, &nets, primary)
        } else if d.is_error() && d.code.as_str().starts_with("E02") {
            // Errors merged into this one by their cause: candidates from all of them.
            let mut fails = candidates::failing(&nets, primary);
            for &s in &d.merged {
                fails.extend(candidates::failing(&nets, s));
            }
            if fails.is_empty() {
                continue;
            }
            candidates::candidates(source, &ix, &nets, &fails)
        } else {
            continue;
        };
        // Within a class, the first edits of every site on the chains before the second edits
        // of any: an op further back (the network-level conv that kept a size) gets tried
        // before the budget goes to every literal of the nearest ones.
        cands.sort_by_key(|c| (c.class, c.distance, c.size()));
        let mut nth: std::collections::HashMap<(u8, usize), usize> = Default::default();
        let mut ranked: Vec<(usize, Candidate)> = cands
            .into_iter()
            .map(|c| {
                let n = nth.entry((c.class, c.distance)).or_insert(0);
                *n += 1;
                ((*n - 1) / 4, c)
            })
            .collect();
        ranked.sort_by_key(|(round, c)| (c.class, *round, c.distance, c.size()));
        let mut cands: Vec<Candidate> = ranked.into_iter().map(|(_, c)| c).collect();
        let mut seen = std::collections::HashSet::new();
        cands.retain(|c| {
            seen.insert(
                c.fix
                    .edits
                    .clone()
                    .into_iter()
                    .map(|e| (e.span, e.replacement))
                    .collect::<Vec<_>>(),
            )
        });
        // A fix must remove this error and every error merged into it.
        let targets: Vec<verify::Key> = std::iter::once(primary)
            .chain(d.merged.iter().copied())
            .map(|s| (d.code, s.start))
            .collect();
        let mut tried = [0usize; 3];
        let mut verified: Vec<Candidate> = Vec::new();
        let mut after_first = 0;
        for c in cands {
            let class = usize::from(c.class.min(2));
            if budget == 0 || verified.len() >= MAX_FIXES || after_first > MAX_CHECKS_AFTER_FIRST {
                break;
            }
            if !verified.is_empty() {
                after_first += 1;
            }
            if tried[class] >= MAX_CHECKS_PER_CLASS[class] {
                continue;
            }
            tried[class] += 1;
            budget -= 1;
            if verify::verify_all(source, &before, &targets, &c.fix.edits) {
                verified.push(c);
            }
        }
        verified.sort_by_key(|c| (c.class, c.size()));
        let n_tried: usize = tried.iter().sum();
        d.help = None;
        d.fixes = verified.into_iter().map(|c| c.fix).collect::<Vec<Fix>>();
        if d.fixes.is_empty() {
            let note = if n_tried == 0 {
                "no fix: resnetc has no edit to propose for this".to_string()
            } else {
                format!(
                    "no fix verified: none of the {n_tried} edits resnetc tried makes the file check without a new diagnostic"
                )
            };
            *d = d.clone().with_note(note);
        }
    }
}

/// The edits `check --fix` applies: the best fix of each error, in source order, each kept
/// only when the fixes kept so far and it still verify together (the whole file re-checked
/// once per error). Returns the edits and how many diagnostics they fix (the errors merged
/// into a diagnostic by their cause go with it).
pub fn best_edits(
    source: &Source,
    checked: &crate::CheckedFile,
) -> (Vec<crate::diag::Edit>, usize) {
    let before = verify::keys(&crate::check_file_plain(source, None).diagnostics);
    let mut edits: Vec<crate::diag::Edit> = Vec::new();
    let mut targets = Vec::new();
    let mut fixed = 0;
    for d in checked.diagnostics.iter().filter(|d| d.is_error()) {
        let (Some(best), Some(p)) = (d.fixes.first(), d.primary.as_ref()) else {
            continue;
        };
        // This error and every error merged into it by their cause.
        let keys: Vec<verify::Key> = std::iter::once(p.span)
            .chain(d.merged.iter().copied())
            .map(|s| (d.code, s.start))
            .collect();
        if best.edits.iter().all(|e| edits.contains(e)) {
            targets.extend(keys);
            fixed += 1;
            continue; // one cause, one edit: already applied for an earlier diagnostic
        }
        if verify::overlap(&edits, &best.edits) {
            continue;
        }
        let mut more = edits.clone();
        more.extend(best.edits.iter().cloned());
        let mut more_targets = targets.clone();
        more_targets.extend(keys);
        if verify::verify_all(source, &before, &more_targets, &more) {
            edits = more;
            targets = more_targets;
            fixed += 1;
        }
    }
    (edits, fixed)
}
