//! Lowering: the AST of one network to a [`Graph`]. Blocks are expanded, sequences and
//! repetitions unrolled, names resolved, and every node gets its hierarchical path.
//!
//! All errors of the phase are collected. A value that could not be computed is
//! [`Value::Poison`]: anything built from it is poison too and reports nothing more, so one
//! mistake gives one diagnostic. Work is bounded ([`MAX_WORK`], [`MAX_REPEAT`],
//! [`MAX_BLOCK_DEPTH`]) before anything is allocated, so no input can make lowering hang or
//! exhaust memory.

mod eval;
mod signature;
mod unused;

use super::{DimSpec, Graph, GraphInput, GraphOutput, Node, NodeId, Scope, ScopeId, ScopeKind};
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
    labelled_paths: HashMap<(ScopeId, &'a str), Span>,
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
    pub(crate) fn claim_label(&mut self, place: &Place, label: &'a str, span: Span) {
        if let Some(&first) = self.labelled_paths.get(&(place.scope, label)) {
            let path = super::join_path(&place.prefix, label);
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
            self.labelled_paths.insert((place.scope, label), span);
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

    fn network(&mut self, net: &'a ast::NetworkDef) -> Graph {
        self.graph.name = net.name.name.clone();
        self.graph.scopes.push(Scope {
            path: String::new(),
            kind: ScopeKind::Network,
            span: net.span,
            parent: None,
        });
        let place = Place {
            scope: 0,
            prefix: String::new(),
        };
        let mut frame = Frame::default();
        let output_hint = output_hint(&net.body);
        let mut n_outputs = 0;
        for stmt in &net.body {
            if self.aborted {
                break;
            }
            match stmt {
                Stmt::Input(i) => self.network_input(&mut frame, &place, i),
                Stmt::Let(l) => self.let_stmt(&mut frame, &place, l, &output_hint),
                Stmt::Output(o) => {
                    n_outputs += 1;
                    let v = self.eval(&mut frame, &place, &o.value);
                    let name = match (&o.name, &o.value.kind) {
                        (Some(n), _) => n.name.clone(),
                        (None, ast::ExprKind::Name(n)) => n.clone(),
                        (None, _) => format!("output{}", self.graph.outputs.len()),
                    };
                    if let Some(first) = self.graph.outputs.iter().find(|out| out.name == name) {
                        let first = first.span;
                        self.error(
                            Diagnostic::error(
                                Code::DuplicateDefinition,
                                format!("two outputs are named `{name}`"),
                            )
                            .with_primary(o.span, "this output")
                            .with_secondary(first, "has the same name as this one")
                            .with_help("name outputs explicitly: `output logits = ...`"),
                        );
                    }
                    match v {
                        Value::Tensor(node) => self.graph.outputs.push(GraphOutput {
                            name,
                            node,
                            span: o.value.span,
                        }),
                        Value::Poison => {}
                        other => self.error(
                            Diagnostic::error(Code::WrongType, "a network output must be a tensor")
                                .with_primary(
                                    o.value.span,
                                    format!("this is {}", other.describe()),
                                ),
                        ),
                    }
                }
            }
        }
        if self.graph.inputs.is_empty() && !net.body.iter().any(|s| matches!(s, Stmt::Input(_))) {
            self.error(
                Diagnostic::error(
                    Code::Structure,
                    format!("network `{}` has no input", net.name.name),
                )
                .with_primary(net.name.span, "declared here")
                .with_help("declare one: `input x: [N, 3, 224, 224]`"),
            );
        }
        if n_outputs == 0 && !self.aborted {
            self.error(
                Diagnostic::error(
                    Code::Structure,
                    format!("network `{}` has no output", net.name.name),
                )
                .with_primary(net.name.span, "declared here")
                .with_help("end the network with `output NAME`"),
            );
        }
        std::mem::replace(
            &mut self.graph,
            Graph {
                name: String::new(),
                dag: petgraph::Graph::new(),
                inputs: Vec::new(),
                outputs: Vec::new(),
                scopes: Vec::new(),
            },
        )
    }

    fn network_input(&mut self, frame: &mut Frame<'a>, place: &Place, i: &'a ast::InputStmt) {
        let Some(shape) = &i.shape else {
            self.error(
                Diagnostic::error(
                    Code::Structure,
                    format!("network input `{}` has no shape", i.name.name),
                )
                .with_primary(i.span, "declared without a shape")
                .with_help(format!(
                    "state it: `input {}: [N, 3, 224, 224]`",
                    i.name.name
                )),
            );
            self.bind(frame, &i.name, Value::Poison, i.span, None, true);
            return;
        };
        let dims: Vec<DimSpec> = shape
            .iter()
            .map(|d| match d {
                ast::Dim::Int(v, _) => DimSpec::Known(*v),
                ast::Dim::Sym(s) => DimSpec::Sym(s.name.clone()),
            })
            .collect();
        let mut ok = true;
        if dims.len() != 4 {
            ok = false;
            self.error(
                Diagnostic::error(
                    Code::BadValue,
                    format!(
                        "input `{}` must have 4 dimensions (N, C, H, W)",
                        i.name.name
                    ),
                )
                .with_primary(i.span, format!("this shape has {} dimensions", dims.len()))
                .with_note("tensors are NCHW"),
            );
        }
        for d in shape {
            if let ast::Dim::Int(0, sp) = d {
                ok = false;
                self.error(
                    Diagnostic::error(Code::BadValue, "an input dimension cannot be 0")
                        .with_primary(*sp, "zero-sized dimension"),
                );
            }
        }
        let value = if ok {
            let node = Node {
                op: super::Op::Input,
                path: i.name.name.clone(),
                span: i.name.span,
                scope: place.scope,
            };
            match self.add_node(node, &[]) {
                Some(node) => {
                    self.graph.inputs.push(GraphInput {
                        name: i.name.name.clone(),
                        node,
                        dims,
                        span: i.span,
                    });
                    Value::Tensor(node)
                }
                None => Value::Poison,
            }
        } else {
            Value::Poison
        };
        if frame.vars.contains_key(i.name.name.as_str()) {
            self.error(
                Diagnostic::error(
                    Code::DuplicateDefinition,
                    format!("input `{}` is declared twice", i.name.name),
                )
                .with_primary(i.name.span, "declared again here"),
            );
        }
        self.bind(frame, &i.name, value, i.span, None, true);
    }

    fn let_stmt(
        &mut self,
        frame: &mut Frame<'a>,
        place: &Place,
        l: &'a ast::LetStmt,
        output: &Option<(Span, String)>,
    ) {
        let v = self.eval(frame, place, &l.value);
        self.bind(frame, &l.name, v, l.span, output.clone(), false);
    }

    fn bind(
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
    fn report_unused(&mut self) {
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

    /// Expand one instance of a block. `tensors` are its inputs, in order.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn instantiate(
        &mut self,
        block: &'a ast::BlockDef,
        place: &Place,
        segment: String,
        call_span: Span,
        params: HashMap<&'a str, Value>,
        tensors: &[(Value, Span)],
    ) -> Value {
        let name = block.name.name.as_str();
        if let Some(pos) = self.stack.iter().position(|(b, _)| *b == name) {
            let mut chain: Vec<&str> = self.stack[pos..].iter().map(|(b, _)| *b).collect();
            chain.push(name);
            self.error(
                Diagnostic::error(Code::RecursiveBlock, format!("block `{name}` instantiates itself"))
                    .with_primary(call_span, "this instantiation recurses")
                    .with_secondary(block.name.span, "the block is defined here")
                    .with_note(format!("the chain is {}", chain.iter().map(|b| format!("`{b}`")).collect::<Vec<_>>().join(" -> ")))
                    .with_help("a block cannot contain itself; repeat it in a sequence instead: `[blk(64) * 3]`"),
            );
            return Value::Poison;
        }
        if self.stack.len() >= MAX_BLOCK_DEPTH {
            self.error(
                Diagnostic::error(Code::BlockDepth, "blocks nested too deep")
                    .with_primary(
                        call_span,
                        format!("block nesting level {}", self.stack.len() + 1),
                    )
                    .with_note(format!(
                        "blocks may instantiate blocks at most {MAX_BLOCK_DEPTH} levels deep"
                    )),
            );
            return Value::Poison;
        }
        if !self.spend(call_span) {
            return Value::Poison;
        }
        let n_inputs = block
            .body
            .iter()
            .filter(|s| matches!(s, Stmt::Input(_)))
            .count();
        if n_inputs != tensors.len() {
            self.error(
                Diagnostic::error(
                    Code::WrongInputCount,
                    format!(
                        "block `{name}` takes {n_inputs} tensor input{}, found {}",
                        plural(n_inputs),
                        tensors.len()
                    ),
                )
                .with_primary(
                    call_span,
                    format!(
                        "{} tensor{} given here",
                        tensors.len(),
                        plural(tensors.len())
                    ),
                )
                .with_secondary(
                    block.name.span,
                    format!("`{name}` declares {n_inputs} `input`{}", plural(n_inputs)),
                ),
            );
            return Value::Poison;
        }
        if tensors.iter().any(|(v, _)| *v == Value::Poison) {
            return Value::Poison;
        }
        let inner = self.new_scope(
            place,
            &segment,
            ScopeKind::Block {
                name: name.to_string(),
            },
            call_span,
        );
        self.stack.push((name, call_span));
        let mut frame = Frame::default();
        let ok = self.bind_params(block, &mut frame, &inner, params, call_span);
        let result = if ok {
            self.block_body(block, &mut frame, &inner, tensors)
        } else {
            Value::Poison
        };
        self.stack.pop();
        result
    }

    fn block_body(
        &mut self,
        block: &'a ast::BlockDef,
        frame: &mut Frame<'a>,
        place: &Place,
        tensors: &[(Value, Span)],
    ) -> Value {
        let mut next_input = 0;
        let mut result = None;
        let output_hint = output_hint(&block.body);
        for stmt in &block.body {
            if self.aborted {
                return Value::Poison;
            }
            match stmt {
                Stmt::Input(i) => {
                    if i.shape.is_some() {
                        self.error(
                            Diagnostic::error(
                                Code::Structure,
                                "a block input cannot declare a shape",
                            )
                            .with_primary(i.span, "shape stated here")
                            .with_note(
                                "a block input takes the shape of whatever the caller passes",
                            )
                            .with_help(format!("write `input {}`", i.name.name)),
                        );
                    }
                    let v = tensors.get(next_input).map_or(Value::Poison, |t| t.0);
                    next_input += 1;
                    self.bind(frame, &i.name, v, i.span, None, true);
                }
                Stmt::Let(l) => self.let_stmt(frame, place, l, &output_hint),
                Stmt::Output(o) => {
                    if result.is_some() {
                        self.error(
                            Diagnostic::error(
                                Code::Structure,
                                format!("block `{}` has more than one output", block.name.name),
                            )
                            .with_primary(o.span, "second output")
                            .with_note("a block returns exactly one tensor"),
                        );
                        continue;
                    }
                    let v = self.eval(frame, place, &o.value);
                    result = Some(match v {
                        Value::Tensor(_) | Value::Poison => v,
                        other => {
                            self.error(
                                Diagnostic::error(
                                    Code::WrongType,
                                    "a block output must be a tensor",
                                )
                                .with_primary(
                                    o.value.span,
                                    format!("this is {}", other.describe()),
                                ),
                            );
                            Value::Poison
                        }
                    });
                }
            }
        }
        match result {
            Some(v) => v,
            None => {
                self.error(
                    Diagnostic::error(
                        Code::Structure,
                        format!("block `{}` has no output", block.name.name),
                    )
                    .with_primary(block.name.span, "defined here")
                    .with_help("end the block with `output NAME`"),
                );
                Value::Poison
            }
        }
    }

    /// Bind a block's parameters: given values, then defaults (which may use earlier ones).
    fn bind_params(
        &mut self,
        block: &'a ast::BlockDef,
        frame: &mut Frame<'a>,
        place: &Place,
        mut given: HashMap<&'a str, Value>,
        call_span: Span,
    ) -> bool {
        let mut ok = true;
        for p in &block.params {
            if frame.vars.contains_key(p.name.name.as_str()) {
                continue; // a duplicate parameter, reported with the definitions
            }
            let v = match given.remove(p.name.name.as_str()) {
                Some(v) => v,
                None => match &p.default {
                    Some(e) => self.eval(frame, place, e),
                    None => {
                        self.error(
                            Diagnostic::error(
                                Code::MissingArgument,
                                format!(
                                    "missing argument `{}` of block `{}`",
                                    p.name.name, block.name.name
                                ),
                            )
                            .with_primary(call_span, format!("`{}` is not given here", p.name.name))
                            .with_secondary(p.span, "the parameter has no default")
                            .with_help(format!(
                                "pass it: `{}({}: ...)`",
                                block.name.name, p.name.name
                            )),
                        );
                        ok = false;
                        Value::Poison
                    }
                },
            };
            let v = match (p.ty, v) {
                (ast::Type::Int, Value::Int(_))
                | (ast::Type::Bool, Value::Bool(_))
                | (ast::Type::Float, Value::Float(_))
                | (_, Value::Poison) => v,
                (ast::Type::Float, Value::Int(i)) => Value::Float(i as f64),
                (ty, other) => {
                    self.error(
                        Diagnostic::error(
                            Code::WrongType,
                            format!(
                                "argument `{}` of block `{}` must be {}",
                                p.name.name,
                                block.name.name,
                                type_words(ty)
                            ),
                        )
                        .with_primary(
                            call_span,
                            format!("`{}` is {} here", p.name.name, other.describe()),
                        )
                        .with_secondary(p.span, format!("declared as `{}`", ty.as_str())),
                    );
                    ok = false;
                    Value::Poison
                }
            };
            // Parameters are bound by the caller: never warn that one is unused.
            frame.vars.insert(
                p.name.name.as_str(),
                Binding {
                    value: v,
                    def: p.name.span,
                },
            );
        }
        ok
    }
}

fn type_words(ty: ast::Type) -> &'static str {
    match ty {
        ast::Type::Int => "an integer",
        ast::Type::Bool => "a boolean",
        ast::Type::Float => "a number",
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
