//! The network being compiled: its declared inputs, its statements and its outputs.

use super::{Frame, Lowerer, Place, Value, output_hint};
use crate::diag::{Code, Diagnostic};
use crate::ir::{DimSpec, Graph, GraphInput, GraphOutput, Node, Scope, ScopeKind};
use crate::syntax::ast::{self, Stmt};

impl<'a> Lowerer<'a> {
    pub(super) fn network(&mut self, net: &'a ast::NetworkDef) -> Graph {
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
                op: crate::ir::Op::Input,
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
}
