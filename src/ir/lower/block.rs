//! Block instances: binding a call's arguments to the block's parameters and inputs, and
//! lowering the block's body in a scope of its own.

use super::{Binding, Frame, Lowerer, MAX_BLOCK_DEPTH, Place, Value, output_hint, plural};
use crate::diag::{Code, Diagnostic};
use crate::ir::ScopeKind;
use crate::span::Span;
use crate::syntax::ast::{self, Stmt};
use rustc_hash::FxHashMap as HashMap;

impl<'a> Lowerer<'a> {
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

    pub(super) fn block_body(
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
    pub(super) fn bind_params(
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
