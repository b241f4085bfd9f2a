//! Evaluating expressions during lowering: integer/boolean arithmetic, the residual add and
//! elementwise product of tensors, and pipelines (`x -> f -> g`), whose stages `call.rs`
//! applies.

use super::{Frame, Ints, Lowerer, MAX_LIST, Place, Site, Value};
use crate::diag::suggest::closest;
use crate::diag::{Code, Diagnostic};
use crate::ir::{Node, Op, join_path};
use crate::span::Span;
use crate::syntax::ast::{self, BinOp, ExprKind, StageFn, UnOp};

/// Evaluated call arguments.
pub(super) struct CallArgs {
    pub(super) positional: Vec<(Value, Span)>,
    pub(super) named: Vec<(ast::Ident, Value, Span)>,
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
            ExprKind::List(items) => self.list(frame, place, items, e.span),
            ExprKind::Bool(b) => Value::Bool(*b),
            ExprKind::Name(n) => self.name(frame, n, e.span),
            ExprKind::Call(c) => self.call(frame, place, c, None, Site::default()),
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

    /// A list of one to [`MAX_LIST`] integers.
    fn list(
        &mut self,
        frame: &mut Frame<'a>,
        place: &Place,
        items: &'a [ast::Expr],
        span: Span,
    ) -> Value {
        if items.is_empty() || items.len() > MAX_LIST {
            self.error(
                Diagnostic::error(
                    Code::WrongType,
                    format!("a list holds 1 to {MAX_LIST} integers"),
                )
                .with_primary(span, format!("{} items", items.len())),
            );
            return Value::Poison;
        }
        let mut ints = Ints {
            len: items.len(),
            v: [0; MAX_LIST],
        };
        for (slot, item) in ints.v.iter_mut().zip(items) {
            match self.eval(frame, place, item) {
                Value::Int(v) => *slot = v,
                Value::Poison => return Value::Poison,
                other => {
                    self.error(wrong_type(item.span, "a list holds integers", other));
                    return Value::Poison;
                }
            }
        }
        Value::Ints(ints)
    }

    fn name(&mut self, frame: &Frame<'a>, n: &str, span: Span) -> Value {
        if let Some(v) = self.read_var(frame, n) {
            return v;
        }
        let mut d = Diagnostic::error(Code::UnknownName, format!("unknown name `{n}`"))
            .with_primary(span, "not defined here");
        if crate::ops::lookup(n).is_some() || self.blocks.contains_key(n) {
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
            (BinOp::Mul, Tensor(x), Int(_) | Float(_)) => {
                let op = Op::Scale(crate::ir::op::Scale { factor: as_f64(b) });
                self.tensor_op(place, op, &[(x, a_span)], span)
            }
            (BinOp::Mul, Int(_) | Float(_), Tensor(y)) => {
                let op = Op::Scale(crate::ir::op::Scale { factor: as_f64(a) });
                self.tensor_op(place, op, &[(y, b_span)], span)
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
                    (_, Tensor(_), _) | (_, _, Tensor(_)) => Some(
                        "a tensor can only be multiplied by a number (`0.2 * y`); ops are applied with `->`",
                    ),
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
            func => self.apply(frame, place, func, piped, Site::labelled(label)),
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
    pub(super) fn apply(
        &mut self,
        frame: &mut Frame<'a>,
        place: &Place,
        func: &'a StageFn,
        piped: (Value, Span),
        site: Site<'a>,
    ) -> Value {
        let piped_some = Some(piped);
        match func {
            StageFn::Call(c) => self.call(frame, place, c, piped_some, site),
            StageFn::Name(n) => {
                let args = CallArgs {
                    positional: Vec::new(),
                    named: Vec::new(),
                };
                self.dispatch(frame, place, n, n.span, args, piped_some, site)
            }
            StageFn::Seq(items, span) => self.seq(frame, place, (items, *span), piped, site),
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
}

pub(super) fn as_f64(v: Value) -> f64 {
    match v {
        Value::Int(i) => i as f64,
        Value::Float(f) => f,
        _ => 0.0,
    }
}

pub(super) fn arith_error(span: Span, what: &str) -> Diagnostic {
    Diagnostic::error(Code::Arithmetic, what.to_string()).with_primary(span, "in this expression")
}

pub(super) fn wrong_type(span: Span, message: &str, found: Value) -> Diagnostic {
    Diagnostic::error(Code::WrongType, message.to_string())
        .with_primary(span, format!("this is {}", found.describe()))
}
