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
mod introspect;
mod naming;
mod network;
mod unused;
mod usage;

use super::{Graph, Node, NodeId, Scope, ScopeId, ScopeKind};
use crate::diag::{Code, Diagnostic};
use crate::span::Span;
use crate::syntax::ast::{self, Stmt};
pub use introspect::{NoShapes, Probe, ShapeOracle, Size};
pub(crate) use naming::Site;
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
    /// A list of integers, `[7, 7]` (at most [`MAX_LIST`] of them).
    Ints(Ints),
    /// A bare word an op argument chooses among (`mode: bilinear`); only made for such an
    /// argument, from a name that is one of its words.
    Word(&'static str),
    /// The result of an error: silently propagates.
    Poison,
}

/// The longest list of integers: sizes have at most four dimensions.
pub(crate) const MAX_LIST: usize = 4;

/// A short list of integers, kept inline so that values stay `Copy`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) struct Ints {
    pub(crate) len: usize,
    pub(crate) v: [i64; MAX_LIST],
}

impl Ints {
    pub(crate) fn as_slice(&self) -> &[i64] {
        &self.v[..self.len]
    }
}

impl Value {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Tensor(_) => "a tensor",
            Value::Channels(..) => "stated channels",
            Value::Ints(_) => "a list of integers",
            Value::Word(_) => "a word",
            Value::Poison => "an invalid value",
        }
    }
}

/// Lower the network named `network` (or the file's only network).
///
/// Returns the graph when lowering found no errors, and every diagnostic (errors and
/// warnings) either way. `oracle` answers `channels(x)`, `height(x)` and `width(x)` from the
/// nodes built so far. When it finds a value whose shape does not check, the graph is
/// returned without what depends on the answer: shape inference then reports that error.
pub fn lower(
    file: &ast::File,
    network: Option<&str>,
    oracle: &mut dyn ShapeOracle,
) -> (Option<Graph>, Vec<Diagnostic>) {
    let mut l = Lowerer::new(file, oracle);
    l.check_definitions(file);
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

pub(crate) struct Lowerer<'a> {
    blocks: HashMap<&'a str, &'a ast::BlockDef>,
    oracle: &'a mut dyn ShapeOracle,
    /// A size was read from a value whose shape does not check: what depends on it was left
    /// out (poison), for shape inference to report the cause.
    deferred: bool,
    graph: Graph,
    diags: Vec<Diagnostic>,
    /// Blocks being expanded, outermost first, with the call that instantiated each.
    stack: Vec<(&'a str, Span)>,
    work: usize,
    aborted: bool,
    naming: naming::Naming<'a>,
    usage: usage::Usage,
}

impl<'a> Lowerer<'a> {
    fn new(file: &'a ast::File, oracle: &'a mut dyn ShapeOracle) -> Lowerer<'a> {
        let mut blocks = HashMap::default();
        for b in &file.blocks {
            blocks.entry(b.name.name.as_str()).or_insert(b);
        }
        Lowerer {
            blocks,
            oracle,
            deferred: false,
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
            naming: naming::Naming::default(),
            usage: usage::Usage::new(file),
        }
    }

    pub(crate) fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Sorted, de-duplicated diagnostics: an error inside a block instantiated many times is
    /// reported once.
    fn finish(mut self) -> Vec<Diagnostic> {
        // With errors (or left-out values), some reads were skipped: an unused-value warning
        // could be false.
        if !crate::diag::has_errors(&self.diags) && !self.deferred {
            self.diags.extend(self.usage.report());
        }
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
            let builtin = if crate::ops::lookup(&name.name).is_some() {
                Some("op")
            } else if introspect::is_introspection(&name.name) {
                Some("function")
            } else {
                None
            };
            if let Some(kind) = builtin {
                self.error(
                    Diagnostic::error(
                        Code::DuplicateDefinition,
                        format!("{what} `{}` has the name of a built-in {kind}", name.name),
                    )
                    .with_primary(name.span, format!("a built-in {kind} has this name"))
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
        self.naming.auto_segment(place, what)
    }

    /// Report a label used twice in one scope (so two layers with the same path).
    pub(crate) fn claim_label(&mut self, place: &Place, label: &str, span: Span) {
        if let Some(d) = self.naming.claim_label(place, label, span) {
            self.error(d);
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
        self.usage.bind(name, stmt, output, input);
        frame.vars.insert(
            name.name.as_str(),
            Binding {
                value,
                def: name.span,
            },
        );
    }

    pub(crate) fn read_var(&mut self, frame: &Frame<'a>, name: &str) -> Option<Value> {
        let b = frame.vars.get(name)?;
        self.usage.read(b.def);
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
