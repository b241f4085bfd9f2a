//! Which bindings are read: every binding that no instance ever read is warned about (W0101),
//! and every block nothing instantiates (W0102), but only when the file has no errors (an
//! error can hide a read).

use crate::diag::{Code, Diagnostic};
use crate::span::Span;
use crate::syntax::ast;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// A binding that may turn out unused, and what the body returned instead.
struct BindingInfo {
    name: String,
    stmt: Span,
    output: Option<(Span, String)>,
    /// A block or network `input` rather than a `let`.
    input: bool,
}

#[derive(Default)]
pub(crate) struct Usage {
    bindings: HashMap<Span, BindingInfo>,
    used: HashSet<Span>,
    /// Warnings for blocks nothing instantiates.
    unused_blocks: Vec<Diagnostic>,
}

impl Usage {
    pub(crate) fn new(file: &ast::File) -> Usage {
        Usage {
            unused_blocks: if file.networks.is_empty() {
                Vec::new()
            } else {
                super::unused::unused_blocks(file)
            },
            ..Usage::default()
        }
    }

    /// Record a binding of `name` (identified by its span) made by the statement `stmt`.
    pub(crate) fn bind(
        &mut self,
        name: &ast::Ident,
        stmt: Span,
        output: Option<(Span, String)>,
        input: bool,
    ) {
        if name.name.starts_with('_') {
            return;
        }
        self.bindings
            .entry(name.span)
            .or_insert_with(|| BindingInfo {
                name: name.name.clone(),
                stmt,
                output,
                input,
            });
    }

    /// Record a read of the binding defined at `def`.
    pub(crate) fn read(&mut self, def: Span) {
        self.used.insert(def);
    }

    /// The warnings for bindings no instance read and blocks nothing instantiates.
    pub(crate) fn report(self) -> Vec<Diagnostic> {
        let mut warnings = self.unused_blocks;
        let mut unused: Vec<(&Span, &BindingInfo)> = self
            .bindings
            .iter()
            .filter(|(def, _)| !self.used.contains(def))
            .collect();
        unused.sort_by_key(|(def, _)| **def);
        for (_, info) in unused {
            warnings.push(warning(info));
        }
        warnings
    }
}

fn warning(info: &BindingInfo) -> Diagnostic {
    let name = &info.name;
    if info.input {
        return Diagnostic::warning(Code::UnusedValue, format!("input `{name}` is never used"))
            .with_primary(info.stmt, "declared here, never read")
            .with_help("remove the input, or use it");
    }
    let d = Diagnostic::warning(Code::UnusedValue, format!("value `{name}` is computed but never used"))
        .with_primary(info.stmt, "this value is never used")
        .with_note(format!(
            "the ops that compute `{name}` and feed nothing else are dead: they are checked and counted in the summary, but their results reach no output"
        ));
    match &info.output {
        Some((out_span, out_text)) if out_text == name => d
            .with_secondary(*out_span, format!("this `{name}` is a later binding"))
            .with_help(format!("`{name}` is bound again before this value is read: remove this binding or rename it")),
        Some((out_span, out_text)) => d
            .with_secondary(*out_span, format!("the result is `{out_text}`, not `{name}`"))
            .with_help(format!("if `{name}` is the result, write `output {name}`; otherwise remove it, or name it `_{name}` to keep it")),
        None => d.with_help(format!("remove it, or name it `_{name}` to keep it")),
    }
}
