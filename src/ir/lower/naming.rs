//! Naming the nodes lowering makes: automatic path segments (`relu#2`) counted per scope, the
//! segment a labelled or indexed site gives, and two layers claiming one path (E0112).

use super::Place;
use crate::diag::{Code, Diagnostic};
use crate::ir::{ScopeId, join_path};
use crate::span::Span;
use crate::syntax::ast;
use rustc_hash::FxHashMap as HashMap;

/// How the result of applying an op, block or sequence is named: by its label (`conv1: ...`),
/// by its index in a sequence, or (neither) automatically.
#[derive(Clone, Default)]
pub(crate) struct Site<'a> {
    pub(crate) label: Option<&'a ast::Ident>,
    pub(crate) index: Option<String>,
}

impl<'a> Site<'a> {
    pub(crate) fn labelled(label: Option<&'a ast::Ident>) -> Site<'a> {
        Site { label, index: None }
    }

    pub(crate) fn indexed(index: u64) -> Site<'a> {
        Site {
            label: None,
            index: Some(index.to_string()),
        }
    }
}

#[derive(Default)]
pub(crate) struct Naming<'a> {
    /// Per scope, how many unlabelled ops of each kind were named so far.
    auto_names: Vec<Vec<(&'a str, usize)>>,
    /// Labels by scope, to report two layers with the same path. Scope paths are unique and
    /// labels cannot look like index (`0`) or automatic (`relu#0`) segments, so equal
    /// paths mean an equal label in one scope.
    labelled_paths: HashMap<(ScopeId, String), Span>,
}

impl<'a> Naming<'a> {
    /// The path segment of an unlabelled op or scope: `relu#2`.
    pub(crate) fn auto_segment(&mut self, place: &Place, what: &'a str) -> String {
        // Counters per scope: a handful of op kinds each, so a short list beats a big map.
        if self.auto_names.len() <= place.scope {
            self.auto_names.resize_with(place.scope + 1, Vec::new);
        }
        let counts = &mut self.auto_names[place.scope];
        let n = match counts.iter_mut().find(|(w, _)| *w == what) {
            Some((_, n)) => n,
            None => {
                counts.push((what, 0));
                &mut counts.last_mut().expect("just pushed").1
            }
        };
        let mut seg = String::with_capacity(what.len() + 4);
        seg.push_str(what);
        seg.push('#');
        seg.push_str(&n.to_string());
        *n += 1;
        seg
    }

    /// The segment of a site: its label, its index, or an automatic `what#i`.
    pub(crate) fn segment(&mut self, place: &Place, site: &Site<'a>, what: &'a str) -> String {
        match (site.label, &site.index) {
            (Some(l), _) => l.name.clone(),
            (None, Some(i)) => i.clone(),
            (None, None) => self.auto_segment(place, what),
        }
    }

    /// A label used twice in one scope (so two layers with the same path) is E0112.
    pub(crate) fn claim_label(
        &mut self,
        place: &Place,
        label: &str,
        span: Span,
    ) -> Option<Diagnostic> {
        if let Some(&first) = self.labelled_paths.get(&(place.scope, label.to_string())) {
            let path = join_path(&place.prefix, label);
            if first == span {
                // The copies of one repeated sequence item, `[layer: conv(8, k: 3) * 2]`.
                return Some(
                    Diagnostic::error(
                        Code::DuplicateLayer,
                        format!("every copy of this item has the path `{path}`"),
                    )
                    .with_primary(span, "repeated with one label")
                    .with_note("parameter keys are made from layer paths, so each must be unique")
                    .with_help(format!(
                        "number the copies from 1 with `{{i}}` in the label: `{label}{{i}}`"
                    )),
                );
            }
            return Some(
                Diagnostic::error(
                    Code::DuplicateLayer,
                    format!("two layers have the path `{path}`"),
                )
                .with_primary(span, "this layer")
                .with_secondary(first, "has the same path as this one")
                .with_note("parameter keys are made from layer paths, so each must be unique")
                .with_help("give one of them another label"),
            );
        }
        self.labelled_paths
            .insert((place.scope, label.to_string()), span);
        None
    }
}
