//! Evaluating expressions during lowering: integer/boolean arithmetic, pipelines, calls of
//! built-in ops (which add graph nodes) and of blocks (which expand them), and sequences.

use super::signature::{self, Arg, Kind, ParamSpec};
use super::{Frame, Lowerer, MAX_REPEAT, Place, Value, plural};
use crate::diag::{Code, Diagnostic};
use crate::ir::{Node, Op, ScopeKind, join_path};
use crate::span::Span;
use crate::syntax::ast::{self, BinOp, ExprKind, StageFn, UnOp};
use rustc_hash::FxHashMap as HashMap;

/// Evaluated call arguments.
struct CallArgs {
    positional: Vec<(Value, Span)>,
    named: Vec<(ast::Ident, Value, Span)>,
}

impl<'a> Lowerer<'a> {
    pub(crate) fn eval(&mut self, frame: &mut Frame<'a>, place: &Place, e: &'a ast::Expr) -> Value {
        if self.aborted {
            return Value::Poison;
        }
        match &e.kind {
            ExprKind::Int(v) => match i64::try_from(*v) {
                Ok(v) => Value::Int(v),
                Err(_) => {
                    self.error(arith_error(e.span, "integer literal larger than 2^63 - 1"));
                    Value::Poison
                }
            },
            ExprKind::Float(v) => Value::Float(*v),
            ExprKind::Bool(b) => Value::Bool(*b),
            ExprKind::Name(n) => self.name(frame, n, e.span),
            ExprKind::Call(c) => self.call(frame, place, c, None, None, None),
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => match self.eval(frame, place, cond) {
                Value::Bool(true) => self.eval(frame, place, then),
                Value::Bool(false) => self.eval(frame, place, otherwise),
                Value::Poison => Value::Poison,
                other => {
                    self.error(wrong_type(
                        cond.span,
                        "an `if` condition must be a boolean",
                        other,
                    ));
                    Value::Poison
                }
            },
            ExprKind::Unary { ops, operand } => {
                let mut v = self.eval(frame, place, operand);
                for op in ops.iter().rev() {
                    v = match (op, v) {
                        (_, Value::Poison) => return Value::Poison,
                        (UnOp::Neg, Value::Int(i)) => match i.checked_neg() {
                            Some(n) => Value::Int(n),
                            None => {
                                self.error(arith_error(e.span, "integer overflow"));
                                return Value::Poison;
                            }
                        },
                        (UnOp::Neg, Value::Float(f)) => Value::Float(-f),
                        (UnOp::Not, Value::Bool(b)) => Value::Bool(!b),
                        (UnOp::Neg, other) => {
                            self.error(wrong_type(operand.span, "`-` needs a number", other));
                            return Value::Poison;
                        }
                        (UnOp::Not, other) => {
                            self.error(wrong_type(operand.span, "`not` needs a boolean", other));
                            return Value::Poison;
                        }
                    };
                }
                v
            }
            ExprKind::Chain { first, rest } => {
                let mut lhs = self.eval(frame, place, first);
                let mut lhs_span = first.span;
                for (op, op_span, rhs_e) in rest {
                    let rhs = self.eval(frame, place, rhs_e);
                    let span = first.span.to(rhs_e.span);
                    lhs = self.binary(
                        place,
                        *op,
                        (lhs, lhs_span),
                        (rhs, rhs_e.span),
                        *op_span,
                        span,
                    );
                    lhs_span = span;
                }
                lhs
            }
            ExprKind::Pipe { head, stages } => {
                let mut v = self.eval(frame, place, head);
                let mut v_span = head.span;
                for stage in stages {
                    v = self.stage(frame, place, stage, (v, v_span));
                    v_span = head.span.to(stage.span);
                    if v == Value::Poison {
                        return Value::Poison;
                    }
                }
                v
            }
        }
    }

    fn name(&mut self, frame: &Frame<'a>, n: &str, span: Span) -> Value {
        if let Some(v) = self.read_var(frame, n) {
            return v;
        }
        let mut d = Diagnostic::error(Code::UnknownName, format!("unknown name `{n}`"))
            .with_primary(span, "not defined here");
        if signature::signature(n).is_some() || self.blocks.contains_key(n) {
            d = d
                .with_note(format!("`{n}` is an op or block, not a value"))
                .with_help(format!("apply it to a tensor: `x -> {n}` or `{n}(x)`"));
        } else if let Some(s) = closest(n, frame.vars.keys().copied()) {
            d = d.with_help(format!("a value with a similar name exists: `{s}`"));
        }
        self.error(d);
        Value::Poison
    }

    fn binary(
        &mut self,
        place: &Place,
        op: BinOp,
        (a, a_span): (Value, Span),
        (b, b_span): (Value, Span),
        op_span: Span,
        span: Span,
    ) -> Value {
        use Value::*;
        let int = |r: Option<i64>, this: &mut Self, what: &str| match r {
            Some(v) => Int(v),
            None => {
                this.error(arith_error(span, what));
                Poison
            }
        };
        match (op, a, b) {
            (_, Poison, _) | (_, _, Poison) => Poison,
            (BinOp::Add, Tensor(x), Tensor(y)) => {
                self.tensor_op(place, Op::Add, &[(x, a_span), (y, b_span)], span)
            }
            (BinOp::Mul, Tensor(x), Tensor(y)) => {
                self.tensor_op(place, Op::Mul, &[(x, a_span), (y, b_span)], span)
            }
            (BinOp::Add, Int(x), Int(y)) => int(x.checked_add(y), self, "integer overflow"),
            (BinOp::Sub, Int(x), Int(y)) => int(x.checked_sub(y), self, "integer overflow"),
            (BinOp::Mul, Int(x), Int(y)) => int(x.checked_mul(y), self, "integer overflow"),
            (BinOp::Div | BinOp::Rem, Int(_), Int(0)) => int(None, self, "division by zero"),
            (BinOp::Div, Int(x), Int(y)) => int(x.checked_div(y), self, "integer overflow"),
            (BinOp::Rem, Int(x), Int(y)) => int(x.checked_rem(y), self, "integer overflow"),
            (BinOp::Eq, Int(x), Int(y)) => Bool(x == y),
            (BinOp::Ne, Int(x), Int(y)) => Bool(x != y),
            (BinOp::Lt, Int(x), Int(y)) => Bool(x < y),
            (BinOp::Le, Int(x), Int(y)) => Bool(x <= y),
            (BinOp::Gt, Int(x), Int(y)) => Bool(x > y),
            (BinOp::Ge, Int(x), Int(y)) => Bool(x >= y),
            (BinOp::And, Bool(x), Bool(y)) => Bool(x && y),
            (BinOp::Or, Bool(x), Bool(y)) => Bool(x || y),
            (BinOp::Eq, Bool(x), Bool(y)) => Bool(x == y),
            (BinOp::Ne, Bool(x), Bool(y)) => Bool(x != y),
            (_, Int(_) | Float(_), Int(_) | Float(_)) => {
                let x = as_f64(a);
                let y = as_f64(b);
                match op {
                    BinOp::Add => Float(x + y),
                    BinOp::Sub => Float(x - y),
                    BinOp::Mul => Float(x * y),
                    BinOp::Div => Float(x / y),
                    BinOp::Rem => Float(x % y),
                    BinOp::Eq => Bool(x == y),
                    BinOp::Ne => Bool(x != y),
                    BinOp::Lt => Bool(x < y),
                    BinOp::Le => Bool(x <= y),
                    BinOp::Gt => Bool(x > y),
                    BinOp::Ge => Bool(x >= y),
                    BinOp::And | BinOp::Or => {
                        self.error(wrong_type(
                            a_span,
                            &format!("`{}` needs booleans", op.as_str()),
                            a,
                        ));
                        Poison
                    }
                }
            }
            _ => {
                let help = match (op, a, b) {
                    (BinOp::Sub, Tensor(_), Tensor(_)) => Some(
                        "tensors support `+` (residual add) and `*` (elementwise product) only",
                    ),
                    (_, Tensor(_), _) | (_, _, Tensor(_)) => {
                        Some("a tensor cannot be combined with a number; ops are applied with `->`")
                    }
                    _ => None,
                };
                let mut d = Diagnostic::error(
                    Code::WrongType,
                    format!(
                        "`{}` cannot combine {} and {}",
                        op.as_str(),
                        a.describe(),
                        b.describe()
                    ),
                )
                .with_primary(op_span, "this operator")
                .with_secondary(a_span, format!("this is {}", a.describe()))
                .with_secondary(b_span, format!("this is {}", b.describe()));
                if let Some(h) = help {
                    d = d.with_help(h);
                }
                self.error(d);
                Poison
            }
        }
    }

    /// Add a node for a parameter-free op on tensors.
    fn tensor_op(
        &mut self,
        place: &Place,
        op: Op,
        operands: &[(crate::ir::NodeId, Span)],
        span: Span,
    ) -> Value {
        let seg = self.auto_segment(place, op.name());
        let node = Node {
            op,
            path: join_path(&place.prefix, &seg),
            span,
            scope: place.scope,
        };
        match self.add_node(node, operands) {
            Some(id) => Value::Tensor(id),
            None => Value::Poison,
        }
    }

    fn stage(
        &mut self,
        frame: &mut Frame<'a>,
        place: &Place,
        stage: &'a ast::Stage,
        piped: (Value, Span),
    ) -> Value {
        if piped.0 == Value::Poison {
            return Value::Poison;
        }
        let label = stage.label.as_ref();
        if let (Value::Int(c_in), None) = (piped.0, label)
            && let Some(c_out) = self.channels_rhs(frame, place, &stage.func)
        {
            return match c_out {
                Value::Int(c_out) => Value::Channels(c_in, c_out),
                Value::Poison => Value::Poison,
                other => {
                    self.error(wrong_type(
                        stage.func.span(),
                        "stated channels must be integers",
                        other,
                    ));
                    Value::Poison
                }
            };
        }
        match &stage.func {
            StageFn::Paren(e) => {
                self.error(
                    Diagnostic::error(Code::WrongType, "expected an op or block after `->`, found an expression")
                        .with_primary(e.span, "an expression")
                        .with_note("`A -> (B)` with two integers states channels, and only inside `conv(...)` or `linear(...)`"),
                );
                Value::Poison
            }
            StageFn::Int(c_out, sp) => match piped.0 {
                Value::Int(c_in) if label.is_none() => match i64::try_from(*c_out) {
                    Ok(c_out) => Value::Channels(c_in, c_out),
                    Err(_) => {
                        self.error(arith_error(*sp, "integer literal larger than 2^63 - 1"));
                        Value::Poison
                    }
                },
                other => {
                    self.error(
                        Diagnostic::error(Code::WrongType, "expected an op or block after `->`, found an integer")
                            .with_primary(*sp, "an integer")
                            .with_secondary(piped.1, format!("this is {}", other.describe()))
                            .with_note("`A -> B` with two integers states channels, and only inside `conv(...)` or `linear(...)`"),
                    );
                    Value::Poison
                }
            },
            StageFn::Float(_, sp) => {
                self.error(
                    Diagnostic::error(
                        Code::WrongType,
                        "expected an op or block after `->`, found a number",
                    )
                    .with_primary(*sp, "a number"),
                );
                Value::Poison
            }
            _ if !matches!(piped.0, Value::Tensor(_)) => {
                self.error(
                    Diagnostic::error(
                        Code::WrongType,
                        format!(
                            "only a tensor can be piped into an op, found {}",
                            piped.0.describe()
                        ),
                    )
                    .with_primary(stage.func.span(), "this op")
                    .with_secondary(piped.1, format!("this is {}", piped.0.describe())),
                );
                Value::Poison
            }
            func => self.apply(frame, place, func, piped, label, None),
        }
    }

    /// The right side of stated channels `c_in -> c_out`: an integer literal, a name bound to
    /// a value, or a parenthesized expression. `None` when the stage is an op or block.
    fn channels_rhs(
        &mut self,
        frame: &mut Frame<'a>,
        place: &Place,
        func: &'a StageFn,
    ) -> Option<Value> {
        match func {
            StageFn::Int(v, sp) => Some(match i64::try_from(*v) {
                Ok(v) => Value::Int(v),
                Err(_) => {
                    self.error(arith_error(*sp, "integer literal larger than 2^63 - 1"));
                    Value::Poison
                }
            }),
            StageFn::Name(n) => self.read_var(frame, &n.name),
            StageFn::Paren(e) => Some(self.eval(frame, place, e)),
            _ => None,
        }
    }

    /// Apply a function (op, block or sequence) to an optional piped tensor.
    fn apply(
        &mut self,
        frame: &mut Frame<'a>,
        place: &Place,
        func: &'a StageFn,
        piped: (Value, Span),
        label: Option<&'a ast::Ident>,
        index: Option<String>,
    ) -> Value {
        let piped_some = Some(piped);
        match func {
            StageFn::Call(c) => self.call(frame, place, c, piped_some, label, index),
            StageFn::Name(n) => {
                let args = CallArgs {
                    positional: Vec::new(),
                    named: Vec::new(),
                };
                self.dispatch(frame, place, n, n.span, args, piped_some, label, index)
            }
            StageFn::Seq(items, span) => self.seq(frame, place, items, *span, piped, label, index),
            StageFn::Paren(e) => {
                self.error(
                    Diagnostic::error(
                        Code::WrongType,
                        "expected an op or block, found an expression",
                    )
                    .with_primary(e.span, "an expression"),
                );
                Value::Poison
            }
            StageFn::Int(_, sp) | StageFn::Float(_, sp) => {
                self.error(
                    Diagnostic::error(Code::WrongType, "expected an op or block, found a number")
                        .with_primary(*sp, "a number"),
                );
                Value::Poison
            }
        }
    }

    fn call(
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
    fn dispatch(
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
            let Some(params) = self.block_args(block, others, args.named, call_span) else {
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
        call_span: Span,
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
        let _ = call_span;
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

    /// A sequence: items applied in order, named by index; `item * n` repeats one.
    #[allow(clippy::too_many_arguments)]
    fn seq(
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
            for _ in 0..count {
                let out = self.apply(frame, &inner, &item.func, v, None, Some(idx.to_string()));
                idx += 1;
                if out == Value::Poison {
                    return Value::Poison;
                }
                v = (out, item.span);
            }
        }
        v.0
    }
}

fn as_f64(v: Value) -> f64 {
    match v {
        Value::Int(i) => i as f64,
        Value::Float(f) => f,
        _ => 0.0,
    }
}

fn arith_error(span: Span, what: &str) -> Diagnostic {
    Diagnostic::error(Code::Arithmetic, what.to_string()).with_primary(span, "in this expression")
}

fn wrong_type(span: Span, message: &str, found: Value) -> Diagnostic {
    Diagnostic::error(Code::WrongType, message.to_string())
        .with_primary(span, format!("this is {}", found.describe()))
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

/// The candidate closest to `name` by edit distance, if close enough to be a likely typo.
pub(crate) fn closest<'b>(
    name: &str,
    candidates: impl Iterator<Item = &'b str>,
) -> Option<&'b str> {
    let limit = (name.len() / 3).max(1);
    candidates
        .filter(|c| *c != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit && *d < name.len())
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    // Optimal string alignment: edits plus transpositions of neighbours (`rleu` -> `relu`).
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}
