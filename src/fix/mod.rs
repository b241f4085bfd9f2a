//! Verified fixes: for every shape error, candidate source edits are generated from the
//! failing op's provenance ([`candidates`]), applied to the text and the whole file re-checked
//! ([`verify`]); only a fix after which the diagnostic is gone and no other appears is offered.
//!
//! The search is bounded: candidates are tried in order of preference (what the file already
//! has, then literals, then inserted structure; nearest the failing op first; smallest edit
//! first), at most [`MAX_CHECKS_PER_CLASS`] re-checks per class and diagnostic and
//! [`MAX_CHECKS_PER_FILE`] per file, and the search for one diagnostic stops at [`MAX_FIXES`]
//! verified fixes. A re-check is a whole parse, lower and infer (about 1 ms for ResNet-152),
//! so a diagnostic costs at most 48 of them. Verified fixes are ranked by class, then by the
//! size of the edit.

mod candidates;
mod index;
pub mod verify;

use crate::diag::Fix;
use crate::span::Source;
use candidates::Candidate;

/// Verified fixes kept per diagnostic.
pub const MAX_FIXES: usize = 3;
/// Re-checks per diagnostic for each class of candidate (existing names, literals, structure).
pub const MAX_CHECKS_PER_CLASS: [usize; 3] = [24, 16, 8];
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
            candidates::pool_before_flatten(source, &ix, &nets, primary)
        } else if d.is_error() && d.code.as_str().starts_with("E02") {
            let fails = candidates::failing(&nets, primary);
            if fails.is_empty() {
                continue;
            }
            candidates::candidates(source, &ix, &nets, &fails)
        } else {
            continue;
        };
        cands.sort_by_key(|c| (c.class, c.distance, c.size()));
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
        let target = (d.code, primary.start);
        let mut tried = [0usize; 3];
        let mut verified: Vec<Candidate> = Vec::new();
        for c in cands {
            let class = usize::from(c.class.min(2));
            if budget == 0 || verified.len() >= MAX_FIXES {
                break;
            }
            if tried[class] >= MAX_CHECKS_PER_CLASS[class] {
                continue;
            }
            tried[class] += 1;
            budget -= 1;
            if verify::verify(source, &before, target, &c.fix.edits).is_some() {
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
/// once per error). Returns the edits and how many errors they fix.
pub fn best_edits(
    source: &Source,
    checked: &crate::CheckedFile,
) -> (Vec<crate::diag::Edit>, usize) {
    let before = verify::keys(&crate::check_file_plain(source, None).diagnostics);
    let mut edits: Vec<crate::diag::Edit> = Vec::new();
    let mut targets = Vec::new();
    for d in checked.diagnostics.iter().filter(|d| d.is_error()) {
        let (Some(best), Some(p)) = (d.fixes.first(), d.primary.as_ref()) else {
            continue;
        };
        let key = (d.code, p.span.start);
        if best.edits.iter().all(|e| edits.contains(e)) {
            targets.push(key);
            continue; // one cause, one edit: already applied for an earlier diagnostic
        }
        if verify::overlap(&edits, &best.edits) {
            continue;
        }
        let mut more = edits.clone();
        more.extend(best.edits.iter().cloned());
        let mut more_targets = targets.clone();
        more_targets.push(key);
        if verify::verify_all(source, &before, &more_targets, &more) {
            edits = more;
            targets = more_targets;
        }
    }
    (edits, targets.len())
}
