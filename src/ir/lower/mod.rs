//! Lowering: the AST of one network to a [`Graph`]. Blocks are expanded, sequences and
//! repetitions unrolled, names resolved, and every node gets its hierarchical path.
//!
//! All errors of the phase are collected. A value that could not be computed is
//! [`Value::Poison`]: anything built from it is poison too and reports nothing more, so one
//! mistake gives one diagnostic. Work is bounded ([`MAX_WORK`], [`MAX_REPEAT`],
//! [`MAX_BLOCK_DEPTH`]) before anything is allocated, so no input can make lowering hang or
//! exhaust memory.

mod block;
mod call;
mod eval;
mod network;
mod signature;
mod suggest;
mod unused;

use super::{Graph, Node, NodeId, Scope, ScopeId, ScopeKind};
use crate::diag::{Code, Diagnostic};
use crate::span::Span;
use crate::syntax::ast::{self, Stmt};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// The largest repetition count (`block(...) * n`).
pub const MAX_REPEAT: u64 = 1_000_000;
/// The most graph nodes plus block instances one network may lower to.
pub const MAX_WORK: usize = 2_000_000;
/// The deepest chain of blocks instantiating blocks.
pub const MAX_BLOCK_DEPTH: usize = 64;

/// A value during lowering.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Tensor(NodeId),
    /// Stated channels, `c_in -> c_out`.
    Channels(i64, i64),
    /// The result of an error: silently propagates.
    Poison,
}

impl Value {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Tensor(_) => "a tensor",
            Value::Channels(..) => "stated channels",
            Value::Poison => "an invalid value",
        }
    }
}

/// Lower the network named `network` (or the file's only network).
///
/// Returns the graph when lowering found no errors, and every diagnostic (errors and
/// warnings) either way.
pub fn lower(file: &ast::File, network: Option<&str>) -> (Option<Graph>, Vec<Diagnostic>) {
    let mut l = Lowerer::new(file);
    l.check_definitions(file);
    if !file.networks.is_empty() {
        l.unused_blocks = unused::unused_blocks(file);
    }
    let net = match l.pick_network(file, network) {
        Some(n) => n,
        None => return (None, l.finish()),
    };
    let graph = l.network(net);
    let diags = l.finish();
    if crate::diag::has_errors(&diags) {
        (None, diags)
    } else {
        (Some(graph), diags)
    }
}

/// A variable binding in a block or network body.
#[derive(Copy, Clone, Debug)]
struct Binding {
    value: Value,
    /// The span of the name where it was bound; identifies the binding.
    def: Span,
}

/// The names visible in one block instance or network body.
#[derive(Default)]
pub(crate) struct Frame<'a> {
    vars: HashMap<&'a str, Binding>,
}

/// Where new nodes go: their scope and path prefix.
#[derive(Clone)]
pub(crate) struct Place {
    scope: ScopeId,
    prefix: String,
}

/// A binding that may turn out unused, and what the body returned instead.
struct BindingInfo {
    name: String,
    stmt: Span,
    output: Option<(Span, String)>,
    /// A block or network `input` rather than a `let`.
    input: bool,
}

pub(crate) struct Lowerer<'a> {
    blocks: HashMap<&'a str, &'a ast::BlockDef>,
    graph: Graph,
    diags: Vec<Diagnostic>,
    /// Blocks being expanded, outermost first, with the call that instantiated each.
    stack: Vec<(&'a str, Span)>,
    work: usize,
    aborted: bool,
    /// Per scope, how many unlabelled ops of each kind were named so far.
    auto_names: Vec<Vec<(&'a str, usize)>>,
    /// Labels by scope, to report two layers with the same path. Scope paths are unique and
    /// labels cannot look like index (`0`) or automatic (`relu#0`) segments, so equal
    /// paths mean an equal label in one scope.
    labelled_paths: HashMap<(ScopeId, String), Span>,
    bindings: HashMap<Span, BindingInfo>,
    /// Warnings for blocks nothing instantiates, given only when there are no errors.
    unused_blocks: Vec<Diagnostic>,
    used: HashSet<Span>,
}

impl<'a> Lowerer<'a> {
    fn new(file: &'a ast::File) -> Lowerer<'a> {
        let mut blocks = HashMap::default();
        for b in &file.blocks {
            blocks.entry(b.name.name.as_str()).or_insert(b);
        }
        Lowerer {
            blocks,
            graph: Graph {
                name: String::new(),
                dag: petgraph::Graph::new(),
                inputs: Vec::new(),
                outputs: Vec::new(),
                scopes: Vec::new(),
            },
            diags: Vec::new(),
            stack: Vec::new(),
            work: 0,
            aborted: false,
            auto_names: Vec::new(),
            labelled_paths: HashMap::default(),
            bindings: HashMap::default(),
            unused_blocks: Vec::new(),
            used: HashSet::default(),
        }
    }

    pub(crate) fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Sorted, de-duplicated diagnostics: an error inside a block instantiated many times is
    /// reported once.
    fn finish(mut self) -> Vec<Diagnostic> {
        self.report_unused();
        let mut seen = HashSet::default();
        let mut out: Vec<Diagnostic> = self
            .diags
            .into_iter()
            .filter(|d| {
                seen.insert((
                    d.code,
                    d.message.clone(),
                    d.primary.as_ref().map(|p| p.span),
                ))
            })
            .collect();
        out.sort_by_key(|d| d.primary.as_ref().map(|p| p.span.start).unwrap_or(0));
        out
    }

    /// Duplicate blocks, networks and parameters; blocks that shadow built-in ops.
    fn check_definitions(&mut self, file: &ast::File) {
        let mut seen: HashMap<&str, Span> = HashMap::default();
        let names = file
            .blocks
            .iter()
            .map(|b| (&b.name, "block"))
            .chain(file.networks.iter().map(|n| (&n.name, "network")));
        for (name, what) in names {
            if signature::signature(&name.name).is_some() {
                self.error(
                    Diagnostic::error(
                        Code::DuplicateDefinition,
                        format!("{what} `{}` has the name of a built-in op", name.name),
                    )
                    .with_primary(name.span, "a built-in op has this name")
                    .with_help("rename the block"),
                );
            } else if let Some(first) = seen.insert(name.name.as_str(), name.span) {
                self.error(
                    Diagnostic::error(
                        Code::DuplicateDefinition,
                        format!("`{}` is defined twice", name.name),
                    )
                    .with_primary(name.span, "defined again here")
                    .with_secondary(first, "first defined here")
                    .with_help("rename one of them"),
                );
                seen.insert(name.name.as_str(), first);
            }
        }
        for b in &file.blocks {
            let mut params: HashMap<&str, Span> = HashMap::default();
            for p in &b.params {
                if let Some(first) = params.insert(p.name.name.as_str(), p.name.span) {
                    self.error(
                        Diagnostic::error(
                            Code::DuplicateDefinition,
                            format!("parameter `{}` is declared twice", p.name.name),
                        )
                        .with_primary(p.name.span, "declared again here")
                        .with_secondary(first, "first declared here"),
                    );
                }
            }
        }
    }

    fn pick_network(
        &mut self,
        file: &'a ast::File,
        wanted: Option<&str>,
    ) -> Option<&'a ast::NetworkDef> {
        let names: Vec<&str> = file.networks.iter().map(|n| n.name.name.as_str()).collect();
        let list = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        match wanted {
            Some(w) => match file.networks.iter().find(|n| n.name.name == w) {
                Some(n) => Some(n),
                None => {
                    let mut d =
                        Diagnostic::error(Code::NoNetwork, format!("no network named `{w}`"));
                    d = if names.is_empty() {
                        d.with_note("the file defines no network")
                    } else {
                        d.with_note(format!("the file defines {list}"))
                    };
                    self.error(d);
                    None
                }
            },
            None => match file.networks.len() {
                1 => Some(&file.networks[0]),
                0 => {
                    self.error(
                        Diagnostic::error(Code::NoNetwork, "the file defines no network")
                            .with_note("`check`, `run` and `graph` compile a `network { ... }`; blocks alone are only definitions")
                            .with_help("add `network NAME { input x: [N, 3, 224, 224] ... output y }`"),
                    );
                    None
                }
                _ => {
                    self.error(
                        Diagnostic::error(Code::NoNetwork, "the file defines several networks")
                            .with_primary(file.networks[1].name.span, "a second network")
                            .with_note(format!("the file defines {list}"))
                            .with_help(format!("pick one with `--network {}`", names[0])),
                    );
                    None
                }
            },
        }
    }

    /// Count one unit of work (a node or a block instance); false once the budget is spent.
    pub(crate) fn spend(&mut self, span: Span) -> bool {
        if self.aborted {
            return false;
        }
        self.work += 1;
        if self.work > MAX_WORK {
            self.aborted = true;
            self.error(
                Diagnostic::error(Code::TooLarge, "network too large")
                    .with_primary(span, "lowering stopped here")
                    .with_note(format!(
                        "a network may have at most {MAX_WORK} ops and block instances"
                    )),
            );
            return false;
        }
        true
    }

    pub(crate) fn new_scope(
        &mut self,
        place: &Place,
        segment: &str,
        kind: ScopeKind,
        span: Span,
    ) -> Place {
        let path = super::join_path(&place.prefix, segment);
        self.graph.scopes.push(Scope {
            path: path.clone(),
            kind,
            span,
            parent: Some(place.scope),
        });
        Place {
            scope: self.graph.scopes.len() - 1,
            prefix: path,
        }
    }

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

    /// Report a label used twice in one scope (so two layers with the same path).
    pub(crate) fn claim_label(&mut self, place: &Place, label: &str, span: Span) {
        if let Some(&first) = self.labelled_paths.get(&(place.scope, label.to_string())) {
            let path = super::join_path(&place.prefix, label);
            if first == span {
                // The copies of one repeated sequence item, `[layer: conv(8, k: 3) * 2]`.
                self.error(
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
                return;
            }
            self.error(
                Diagnostic::error(
                    Code::DuplicateLayer,
                    format!("two layers have the path `{path}`"),
                )
                .with_primary(span, "this layer")
                .with_secondary(first, "has the same path as this one")
                .with_note("parameter keys are made from layer paths, so each must be unique")
                .with_help("give one of them another label"),
            );
        } else {
            self.labelled_paths
                .insert((place.scope, label.to_string()), span);
        }
    }

    pub(crate) fn add_node(&mut self, node: Node, operands: &[(NodeId, Span)]) -> Option<NodeId> {
        if !self.spend(node.span) {
            return None;
        }
        let id = self.graph.dag.add_node(node);
        for (slot, &(src, span)) in operands.iter().enumerate() {
            self.graph.dag.add_edge(
                src,
                id,
                super::Edge {
                    slot: slot as u32,
                    span,
                },
            );
        }
        Some(id)
    }

    pub(super) fn let_stmt(
        &mut self,
        frame: &mut Frame<'a>,
        place: &Place,
        l: &'a ast::LetStmt,
        output: &Option<(Span, String)>,
    ) {
        let v = self.eval(frame, place, &l.value);
        self.bind(frame, &l.name, v, l.span, output.clone(), false);
    }

    pub(super) fn bind(
        &mut self,
        frame: &mut Frame<'a>,
        name: &'a ast::Ident,
        value: Value,
        stmt: Span,
        output: Option<(Span, String)>,
        input: bool,
    ) {
        if !name.name.starts_with('_') {
            self.bindings
                .entry(name.span)
                .or_insert_with(|| BindingInfo {
                    name: name.name.clone(),
                    stmt,
                    output,
                    input,
                });
        }
        frame.vars.insert(
            name.name.as_str(),
            Binding {
                value,
                def: name.span,
            },
        );
    }

    /// Warn about bindings that no instance ever read.
    pub(super) fn report_unused(&mut self) {
        if crate::diag::has_errors(&self.diags) {
            // With errors, some reads were skipped: a warning now could be false.
            return;
        }
        let blocks = std::mem::take(&mut self.unused_blocks);
        self.diags.extend(blocks);
        let mut unused: Vec<(&Span, &BindingInfo)> = self
            .bindings
            .iter()
            .filter(|(def, _)| !self.used.contains(def))
            .collect();
        unused.sort_by_key(|(def, _)| **def);
        let mut warnings = Vec::new();
        for (_, info) in unused {
            let name = &info.name;
            let d = if info.input {
                Diagnostic::warning(Code::UnusedValue, format!("input `{name}` is never used"))
                    .with_primary(info.stmt, "declared here, never read")
                    .with_help("remove the input, or use it")
            } else {
                let d = Diagnostic::warning(Code::UnusedValue, format!("value `{name}` is computed but never used"))
                    .with_primary(info.stmt, "this value is never used")
                    .with_note(format!(
                        "everything that only `{name}` depends on is dead: it is checked, but it does not reach any output"
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
            };
            warnings.push(d);
        }
        self.diags.extend(warnings);
    }

    pub(crate) fn read_var(&mut self, frame: &Frame<'a>, name: &str) -> Option<Value> {
        let b = frame.vars.get(name)?;
        self.used.insert(b.def);
        Some(b.value)
    }
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The span and text of a body's (first) output expression, for the unused-value note.
fn output_hint(body: &[Stmt]) -> Option<(Span, String)> {
    body.iter().find_map(|s| match s {
        Stmt::Output(o) => Some((
            o.value.span,
            match &o.value.kind {
                ast::ExprKind::Name(n) => n.clone(),
                _ => "the output expression".to_string(),
            },
        )),
        _ => None,
    })
}
