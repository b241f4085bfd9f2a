//! Applying functions during lowering: calls of built-in ops (which add graph nodes, after
//! their arguments are bound and checked against the op's signature), calls of blocks (which
//! expand them), and sequences (`[a, b * 3]`, items named by index or by label).

use super::eval::{CallArgs, as_f64, wrong_type};
use super::signature::{self, Arg, Kind, ParamSpec};
use super::suggest::closest;
use super::{Frame, Lowerer, MAX_REPEAT, Place, Value, plural};
use crate::diag::{Code, Diagnostic};
use crate::ir::{Node, Op, ScopeKind, join_path};
use crate::span::Span;
use crate::syntax::ast;
use rustc_hash::FxHashMap as HashMap;

impl<'a> Lowerer<'a> {
    pub(super) fn call(
        &mut self,
        frame: &mut Frame<'a>,
        place: &Place,
        c: &'a ast::Call,
        piped: Option<(Value, Span)>,
        label: Option<&'a ast::Ident>,
        index: Option<String>,
    ) -> Value {
        let mut args = CallArgs {
            positional: Vec::new(),
            named: Vec::new(),
        };
        let mut poisoned = false;
        for a in &c.args {
            let v = self.eval(frame, place, &a.value);
            poisoned |= v == Value::Poison;
            match &a.name {
                Some(n) => {
                    if let Some((first, _, _)) =
                        args.named.iter().find(|(m, _, _)| m.name == n.name)
                    {
                        let first = first.span;
                        self.error(
                            Diagnostic::error(
                                Code::DuplicateArgument,
                                format!("argument `{}` is given twice", n.name),
                            )
                            .with_primary(a.span, "given again here")
                            .with_secondary(first, "first given here"),
                        );
                        poisoned = true;
                    }
                    args.named.push((n.clone(), v, a.span));
                }
                None => args.positional.push((v, a.value.span)),
            }
        }
        if poisoned {
            return Value::Poison;
        }
        self.dispatch(frame, place, &c.name, c.span, args, piped, label, index)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn dispatch(
        &mut self,
        frame: &mut Frame<'a>,
        place: &Place,
        callee: &'a ast::Ident,
        call_span: Span,
        args: CallArgs,
        piped: Option<(Value, Span)>,
        label: Option<&'a ast::Ident>,
        index: Option<String>,
    ) -> Value {
        let name = callee.name.as_str();
        let mut tensors: Vec<(Value, Span)> = piped.into_iter().collect();
        let mut others = Vec::new();
        for (v, sp) in args.positional {
            match v {
                Value::Tensor(_) => tensors.push((v, sp)),
                _ => others.push((v, sp)),
            }
        }
        let span = match (piped, label) {
            (_, Some(l)) => l.span.to(call_span),
            _ => call_span,
        };
        if let Some(sig) = signature::signature(name) {
            return self.op(
                place, name, sig, call_span, tensors, others, args.named, label, index, span,
            );
        }
        if let Some(&block) = self.blocks.get(name) {
            let segment = match (label, index) {
                (Some(l), _) => {
                    self.claim_label(place, &l.name, span);
                    l.name.clone()
                }
                (None, Some(i)) => i,
                (None, None) => self.auto_segment(place, &callee.name),
            };
            let Some(params) = self.block_args(block, others, args.named) else {
                return Value::Poison;
            };
            return self.instantiate(block, place, segment, span, params, &tensors);
        }
        let mut d = Diagnostic::error(
            Code::UnknownFunction,
            format!("unknown op or block `{name}`"),
        )
        .with_primary(callee.span, "not a built-in op or a block of this file");
        if frame.vars.contains_key(name) {
            d = d.with_note(format!(
                "`{name}` is a value; only ops and blocks can be applied"
            ));
        } else {
            let candidates = signature::OP_NAMES
                .iter()
                .copied()
                .chain(self.blocks.keys().copied());
            if let Some(s) = closest(name, candidates) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
        }
        self.error(d);
        Value::Poison
    }

    /// Bind a block call's non-tensor arguments to parameter names.
    fn block_args(
        &mut self,
        block: &'a ast::BlockDef,
        positional: Vec<(Value, Span)>,
        named: Vec<(ast::Ident, Value, Span)>,
    ) -> Option<HashMap<&'a str, Value>> {
        let mut out: HashMap<&'a str, Value> = HashMap::default();
        let mut ok = true;
        if positional.len() > block.params.len() {
            let (_, sp) = positional[block.params.len()];
            self.error(
                Diagnostic::error(
                    Code::UnknownArgument,
                    format!(
                        "block `{}` takes {} parameter{}, found {} positional argument{}",
                        block.name.name,
                        block.params.len(),
                        plural(block.params.len()),
                        positional.len(),
                        plural(positional.len())
                    ),
                )
                .with_primary(sp, "extra argument")
                .with_secondary(block.name.span, "block defined here"),
            );
            ok = false;
        }
        for (p, (v, _)) in block.params.iter().zip(positional) {
            out.insert(p.name.name.as_str(), v);
        }
        for (n, v, sp) in named {
            match block.params.iter().find(|p| p.name.name == n.name) {
                Some(p) => {
                    if out.insert(p.name.name.as_str(), v).is_some() {
                        self.error(
                            Diagnostic::error(
                                Code::DuplicateArgument,
                                format!("argument `{}` is given twice", n.name),
                            )
                            .with_primary(sp, "also given by position"),
                        );
                        ok = false;
                    }
                }
                None => {
                    let names = block.params.iter().map(|p| p.name.name.as_str());
                    let mut d = Diagnostic::error(
                        Code::UnknownArgument,
                        format!("block `{}` has no parameter `{}`", block.name.name, n.name),
                    )
                    .with_primary(n.span, "unknown parameter")
                    .with_secondary(block.name.span, "block defined here");
                    if let Some(s) = closest(&n.name, names) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    self.error(d);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn op(
        &mut self,
        place: &Place,
        name: &str,
        sig: &'static [ParamSpec],
        call_span: Span,
        tensors: Vec<(Value, Span)>,
        others: Vec<(Value, Span)>,
        named: Vec<(ast::Ident, Value, Span)>,
        label: Option<&'a ast::Ident>,
        index: Option<String>,
        span: Span,
    ) -> Value {
        let mut bound: Vec<(&'static str, Value, Span)> = Vec::new();
        let mut ok = true;
        let n_positional = sig.iter().filter(|p| p.positional).count();
        for (i, (v, sp)) in others.into_iter().enumerate() {
            if i < n_positional {
                bound.push((sig[i].name, v, sp));
            } else {
                self.error(
                    Diagnostic::error(
                        Code::UnknownArgument,
                        format!(
                            "`{name}` takes {n_positional} positional argument{} besides its input",
                            plural(n_positional)
                        ),
                    )
                    .with_primary(sp, "extra argument")
                    .with_help(usage(name, sig)),
                );
                ok = false;
            }
        }
        for (n, v, sp) in named {
            match sig.iter().find(|p| p.name == n.name) {
                Some(p) => {
                    if bound.iter().any(|(b, _, _)| *b == p.name) {
                        self.error(
                            Diagnostic::error(
                                Code::DuplicateArgument,
                                format!("argument `{}` is given twice", n.name),
                            )
                            .with_primary(sp, "given again here"),
                        );
                        ok = false;
                    } else {
                        bound.push((p.name, v, sp));
                    }
                }
                None => {
                    let mut d = Diagnostic::error(
                        Code::UnknownArgument,
                        format!("`{name}` has no argument `{}`", n.name),
                    )
                    .with_primary(n.span, "unknown argument");
                    let suggestion = signature::alias(&n.name)
                        .filter(|a| sig.iter().any(|p| p.name == *a))
                        .or_else(|| closest(&n.name, sig.iter().map(|p| p.name)));
                    d = match suggestion {
                        Some(s) => d.with_help(format!("did you mean `{s}`? {}", usage(name, sig))),
                        None => d.with_help(usage(name, sig)),
                    };
                    self.error(d);
                    ok = false;
                }
            }
        }
        let mut args: Vec<(&'static str, Arg)> = Vec::with_capacity(sig.len());
        // An unknown argument is most likely the missing one misspelt: do not report both.
        let had_unknown = !ok;
        for spec in sig {
            let given = bound
                .iter()
                .find(|(b, _, _)| *b == spec.name)
                .map(|(_, v, sp)| (*v, *sp));
            match given {
                Some((v, sp)) => match self.check_arg(name, spec, v, sp) {
                    Some(a) => {
                        args.push((spec.name, a));
                    }
                    None => ok = false,
                },
                None => match spec.default {
                    signature::Fallback::Required if had_unknown => ok = false,
                    signature::Fallback::Required => {
                        self.error(
                            Diagnostic::error(
                                Code::MissingArgument,
                                format!("`{name}` needs argument `{}`", spec.name),
                            )
                            .with_primary(call_span, format!("`{}` is missing", spec.name))
                            .with_help(usage(name, sig)),
                        );
                        ok = false;
                    }
                    signature::Fallback::Absent => {}
                    signature::Fallback::Int(v) => {
                        args.push((spec.name, Arg::Int(v as u64)));
                    }
                    signature::Fallback::Bool(v) => {
                        args.push((spec.name, Arg::Bool(v)));
                    }
                    signature::Fallback::Float(v) => {
                        args.push((spec.name, Arg::Float(v)));
                    }
                },
            }
        }
        let op = signature::build(name, &args);
        if let Op::MaxPool(p) | Op::AvgPool(p) = &op
            && ok
            && p.pad * 2 > p.kernel
        {
            self.error(
                    Diagnostic::error(Code::BadValue, format!("`pad` of `{name}` must be at most half its window"))
                        .with_primary(call_span, format!("a {k}x{k} window with pad {}", p.pad, k = p.kernel))
                        .with_note("a window made only of padding would have no input to pool (PyTorch refuses it too)")
                        .with_help(format!("use `pad: {}` or less", p.kernel / 2)),
                );
            ok = false;
        }
        let n = tensors.len();
        let arity_ok = match op.arity() {
            crate::ir::op::Arity::Exactly(k) => n == k,
            crate::ir::op::Arity::AtLeast(k) => n >= k,
        };
        if !arity_ok {
            let want = match op.arity() {
                crate::ir::op::Arity::Exactly(k) => format!("{k} tensor input{}", plural(k)),
                crate::ir::op::Arity::AtLeast(k) => format!("at least {k} tensor inputs"),
            };
            let mut d = Diagnostic::error(
                Code::WrongInputCount,
                format!("`{name}` takes {want}, found {n}"),
            )
            .with_primary(call_span, format!("{n} tensor{} given", plural(n)));
            if n == 0 {
                d = d.with_help(format!(
                    "pipe a tensor into it: `x -> {name}`, or pass it: `{name}(x)`"
                ));
            }
            self.error(d);
            ok = false;
        }
        if !ok || tensors.iter().any(|(v, _)| *v == Value::Poison) {
            return Value::Poison;
        }
        let segment = match (label, index) {
            (Some(l), _) => l.name.clone(),
            (None, Some(i)) => i,
            (None, None) => self.auto_segment(place, op.name()),
        };
        if let (Some(l), true) = (label, op.has_params()) {
            self.claim_label(place, &l.name, span);
        }
        let path = join_path(&place.prefix, &segment);
        let ids: Vec<_> = tensors
            .iter()
            .filter_map(|(v, sp)| match v {
                Value::Tensor(id) => Some((*id, *sp)),
                _ => None,
            })
            .collect();
        let node = Node {
            op,
            path,
            span,
            scope: place.scope,
        };
        match self.add_node(node, &ids) {
            Some(id) => Value::Tensor(id),
            None => Value::Poison,
        }
    }

    /// Type- and range-check one op argument.
    fn check_arg(&mut self, op: &str, spec: &ParamSpec, v: Value, sp: Span) -> Option<Arg> {
        let positive = |x: i64| -> Option<u64> { u64::try_from(x).ok() };
        let min = signature::min_value(op, spec.name);
        let range_err = |this: &mut Self, x: i64| {
            this.error(
                Diagnostic::error(
                    Code::BadValue,
                    format!("`{}` of `{op}` must be at least {min}", spec.name),
                )
                .with_primary(sp, format!("this is {x}")),
            );
            None
        };
        match (spec.kind, v) {
            (Kind::Int | Kind::Channels, Value::Int(x)) => {
                match positive(x).filter(|u| *u >= min) {
                    Some(u) => Some(Arg::Int(u)),
                    None => range_err(self, x),
                }
            }
            (Kind::Channels, Value::Channels(i, o)) => match (
                positive(i).filter(|u| *u >= 1),
                positive(o).filter(|u| *u >= 1),
            ) {
                (Some(i), Some(o)) => Some(Arg::Channels(Some(i), o)),
                _ => range_err(self, i.min(o)),
            },
            (Kind::Bool, Value::Bool(b)) => Some(Arg::Bool(b)),
            (Kind::Float, Value::Float(_) | Value::Int(_)) => {
                let f = as_f64(v);
                let valid = match spec.name {
                    "p" => (0.0..1.0).contains(&f),
                    _ => f.is_finite(),
                };
                if valid {
                    Some(Arg::Float(f))
                } else {
                    self.error(
                        Diagnostic::error(
                            Code::BadValue,
                            format!("`{}` of `{op}` is out of range", spec.name),
                        )
                        .with_primary(sp, format!("this is {f}"))
                        .with_note(if spec.name == "p" {
                            "a dropout probability is in [0, 1)"
                        } else {
                            "it must be a finite number"
                        }),
                    );
                    None
                }
            }
            (_, Value::Poison) => None,
            (kind, other) => {
                self.error(
                    Diagnostic::error(
                        Code::WrongType,
                        format!(
                            "argument `{}` of `{op}` must be {}",
                            spec.name,
                            kind.describe()
                        ),
                    )
                    .with_primary(sp, format!("this is {}", other.describe())),
                );
                None
            }
        }
    }

    /// A sequence: items applied in order, named by index or label; `item * n` repeats one,
    /// and `{i}` in its label numbers the copies from 1 (`denselayer1`, `denselayer2`, ...).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn seq(
        &mut self,
        frame: &mut Frame<'a>,
        place: &Place,
        items: &'a [ast::SeqItem],
        span: Span,
        piped: (Value, Span),
        label: Option<&'a ast::Ident>,
        index: Option<String>,
    ) -> Value {
        // The grammar admits a sequence only after `->`, so something always flows in.
        let mut v = piped;
        let segment = match (label, index) {
            (Some(l), _) => {
                self.claim_label(place, &l.name, l.span.to(span));
                l.name.clone()
            }
            (None, Some(i)) => i,
            (None, None) => self.auto_segment(place, "seq"),
        };
        let inner = self.new_scope(place, &segment, ScopeKind::Seq, span);
        let mut idx = 0u64;
        for item in items {
            let count = match &item.repeat {
                None => 1,
                Some(e) => match self.eval(frame, place, e) {
                    Value::Int(n) if (1..=MAX_REPEAT as i64).contains(&n) => n as u64,
                    Value::Int(n) => {
                        self.error(
                            Diagnostic::error(
                                Code::RepeatCount,
                                format!("repetition count {n} is out of range"),
                            )
                            .with_primary(e.span, format!("this is {n}"))
                            .with_note(format!("a repetition count is between 1 and {MAX_REPEAT}")),
                        );
                        return Value::Poison;
                    }
                    Value::Poison => return Value::Poison,
                    other => {
                        self.error(wrong_type(
                            e.span,
                            "a repetition count must be an integer",
                            other,
                        ));
                        return Value::Poison;
                    }
                },
            };
            for copy in 1..=count {
                // Every copy evaluates alike, so errors in one would only repeat in the next.
                let n_diags = self.diags.len();
                let out = match &item.label {
                    // A plain label names the item as a pipeline label does.
                    Some(l) if !l.name.contains("{i}") => {
                        self.apply(frame, &inner, &item.func, v, Some(l), None)
                    }
                    Some(l) => {
                        let segment = l.name.replace("{i}", &copy.to_string());
                        self.claim_label(&inner, &segment, l.span.to(item.func.span()));
                        self.apply(frame, &inner, &item.func, v, None, Some(segment))
                    }
                    None => self.apply(frame, &inner, &item.func, v, None, Some(idx.to_string())),
                };
                idx += 1;
                if out == Value::Poison || self.diags.len() > n_diags {
                    return Value::Poison;
                }
                v = (out, item.span);
            }
        }
        v.0
    }
}

/// A one-line usage string for an op: `usage: conv(channels, k: INT, stride: 1, ...)`.
fn usage(name: &str, sig: &[ParamSpec]) -> String {
    let parts: Vec<String> = sig
        .iter()
        .map(|p| {
            let value = match p.default {
                signature::Fallback::Required => match p.kind {
                    Kind::Channels | Kind::Int => "INT".to_string(),
                    Kind::Bool => "BOOL".to_string(),
                    Kind::Float => "NUMBER".to_string(),
                },
                signature::Fallback::Absent => "...".to_string(),
                signature::Fallback::Int(v) => v.to_string(),
                signature::Fallback::Bool(v) => v.to_string(),
                signature::Fallback::Float(v) => v.to_string(),
            };
            if p.positional && p.default == signature::Fallback::Required {
                p.name.to_string()
            } else {
                format!("{}: {value}", p.name)
            }
        })
        .collect();
    format!("usage: `{name}({})`", parts.join(", "))
}
