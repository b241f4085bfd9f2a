//! Applying functions during lowering: calls of built-in ops (which add graph nodes, after
//! their arguments are bound and checked against the op's signature), calls of blocks (which
//! expand them), and sequences (`[a, b * 3]`, items named by index or by label).

use super::eval::{CallArgs, as_f64, wrong_type};
use super::{Frame, Lowerer, MAX_REPEAT, Place, Site, Value, plural};
use crate::diag::suggest::closest;
use crate::diag::{Code, Diagnostic};
use crate::ir::{Node, ScopeKind, join_path};
use crate::ops::args::{Arg, Args, Fallback, Kind, Param};
use crate::ops::{Arity, OpDef};
use crate::span::Span;
use crate::syntax::ast;
use rustc_hash::FxHashMap as HashMap;

/// An op or block call, its arguments evaluated: the call's span, the span of the whole site
/// (with its label), the tensors (the piped one first) and the other arguments.
pub(super) struct Applied {
    call_span: Span,
    span: Span,
    tensors: Vec<(Value, Span)>,
    others: Vec<(Value, Span)>,
    named: Vec<(ast::Ident, Value, Span)>,
}

impl<'a> Lowerer<'a> {
    pub(super) fn call(
        &mut self,
        frame: &mut Frame<'a>,
        place: &Place,
        c: &'a ast::Call,
        piped: Option<(Value, Span)>,
        site: Site<'a>,
    ) -> Value {
        let mut args = CallArgs {
            positional: Vec::new(),
            named: Vec::new(),
        };
        let mut poisoned = false;
        let def = crate::ops::lookup(&c.name.name);
        for a in &c.args {
            let v = match choice_word(def, a) {
                Some(Ok(word)) => Value::Word(word),
                // A word that is not a value either: say which words the argument takes.
                Some(Err((words, name))) if !frame.vars.contains_key(name) => {
                    self.error(wrong_choice(def, a, words));
                    Value::Poison
                }
                _ => self.eval(frame, place, &a.value),
            };
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
        self.dispatch(frame, place, &c.name, c.span, args, piped, site)
    }

    /// Apply the op or block `callee` to its evaluated arguments and the piped tensor.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dispatch(
        &mut self,
        frame: &mut Frame<'a>,
        place: &Place,
        callee: &'a ast::Ident,
        call_span: Span,
        args: CallArgs,
        piped: Option<(Value, Span)>,
        site: Site<'a>,
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
        let span = match site.label {
            Some(l) => l.span.to(call_span),
            None => call_span,
        };
        let applied = Applied {
            call_span,
            span,
            tensors,
            others,
            named: args.named,
        };
        if let Some(def) = crate::ops::lookup(name) {
            return self.op(place, def, applied, site);
        }
        if super::introspect::is_introspection(name) {
            let others: Vec<Span> = (applied.others.iter().map(|(_, sp)| *sp))
                .chain(applied.named.iter().map(|(_, _, sp)| *sp))
                .collect();
            return self.introspect(name, call_span, &applied.tensors, &others);
        }
        if let Some(&block) = self.blocks.get(name) {
            if let Some(l) = site.label {
                self.claim_label(place, &l.name, span);
            }
            let segment = self.naming.segment(place, &site, &callee.name);
            let Some(params) = self.block_args(block, applied.others, applied.named) else {
                return Value::Poison;
            };
            return self.instantiate(block, place, segment, span, params, &applied.tensors);
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
            let candidates = crate::ops::REGISTRY
                .iter()
                .map(|d| d.name)
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

    /// Add the node of a built-in op: bind the call's arguments to the entry's declared ones,
    /// check each, build the op and check its tensor count.
    fn op(&mut self, place: &Place, def: &'static OpDef, call: Applied, site: Site<'a>) -> Value {
        let name = def.name;
        let sig = def.params;
        let call_span = call.call_span;
        let mut bound: Vec<(&'static str, Value, Span)> = Vec::new();
        let mut ok = true;
        let n_positional = sig.iter().filter(|p| p.positional).count();
        for (i, (v, sp)) in call.others.into_iter().enumerate() {
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
        // Tensors given by name (`like: skip`) are operands after the piped and positional ones.
        let mut named_tensors: Vec<(Value, Span)> = Vec::new();
        for (n, v, sp) in call.named {
            match sig.iter().find(|p| p.name == n.name) {
                Some(p) => {
                    if p.kind == Kind::Tensor
                        && matches!(v, Value::Tensor(_))
                        && !bound.iter().any(|(b, _, _)| *b == p.name)
                    {
                        named_tensors.push((v, sp));
                    }
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
                    let suggestion = sig
                        .iter()
                        .find(|p| p.aliases.contains(&n.name.as_str()))
                        .map(|p| p.name)
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
            let arg = match (given, spec.default) {
                (Some((v, sp)), _) => self.check_arg(name, spec, v, sp),
                (None, Fallback::Required) => {
                    if !had_unknown {
                        self.error(
                            Diagnostic::error(
                                Code::MissingArgument,
                                format!("`{name}` needs argument `{}`", spec.name),
                            )
                            .with_primary(call_span, format!("`{}` is missing", spec.name))
                            .with_help(usage(name, sig)),
                        );
                    }
                    None
                }
                (None, Fallback::Absent) => continue,
                (None, Fallback::Int(v)) => Some(Arg::Int(v as u64)),
                (None, Fallback::Bool(v)) => Some(Arg::Bool(v)),
                (None, Fallback::Float(v)) => Some(Arg::Float(v)),
            };
            match arg {
                Some(a) => args.push((spec.name, a)),
                None => ok = false,
            }
        }
        // Built only from valid arguments; the tensor count is checked either way.
        let op = if ok {
            match (def.build)(&Args(args)) {
                Ok(op) => Some(op),
                Err(invalid) => {
                    let mut d = Diagnostic::error(Code::BadValue, invalid.message)
                        .with_primary(call_span, invalid.label);
                    if let Some(note) = invalid.note {
                        d = d.with_note(note);
                    }
                    if let Some(help) = invalid.help {
                        d = d.with_help(help);
                    }
                    self.error(d);
                    None
                }
            }
        } else {
            None
        };
        let n = call.tensors.len();
        if !def.arity.accepts(n) {
            let want = match def.arity {
                Arity::Exactly(k) => format!("{k} tensor input{}", plural(k)),
                Arity::AtLeast(k) => format!("at least {k} tensor inputs"),
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
            return Value::Poison;
        }
        let Some(op) = op else {
            return Value::Poison;
        };
        let mut tensors = call.tensors;
        tensors.extend(named_tensors);
        if tensors.iter().any(|(v, _)| *v == Value::Poison) {
            return Value::Poison;
        }
        if let (Some(l), true) = (site.label, def.has_params) {
            self.claim_label(place, &l.name, call.span);
        }
        let segment = self.naming.segment(place, &site, name);
        let ids: Vec<_> = tensors
            .iter()
            .filter_map(|(v, sp)| match v {
                Value::Tensor(id) => Some((*id, *sp)),
                _ => None,
            })
            .collect();
        let node = Node {
            op,
            path: join_path(&place.prefix, &segment),
            span: call.span,
            scope: place.scope,
        };
        match self.add_node(node, &ids) {
            Some(id) => Value::Tensor(id),
            None => Value::Poison,
        }
    }

    /// Type- and range-check one op argument.
    fn check_arg(&mut self, op: &str, spec: &Param, v: Value, sp: Span) -> Option<Arg> {
        let min = spec.min;
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
        let at_least = |x: i64, min: u64| u64::try_from(x).ok().filter(|u| *u >= min);
        match (spec.kind, v) {
            (Kind::Int | Kind::Channels, Value::Int(x)) => match at_least(x, min) {
                Some(u) => Some(Arg::Int(u)),
                None => range_err(self, x),
            },
            (Kind::Channels, Value::Channels(i, o)) => match (at_least(i, 1), at_least(o, 1)) {
                (Some(i), Some(o)) => Some(Arg::Channels(Some(i), o)),
                _ => range_err(self, i.min(o)),
            },
            (Kind::Ints(2), Value::Int(x)) => match at_least(x, min) {
                Some(u) => Some(Arg::Ints([u, u, 0, 0], 2)),
                None => range_err(self, x),
            },
            (Kind::Ints(n), Value::Ints(list)) if list.len == n => {
                let mut out = [0u64; 4];
                for (o, &x) in out.iter_mut().zip(list.as_slice()) {
                    match at_least(x, min) {
                        Some(u) => *o = u,
                        None => {
                            self.error(
                                Diagnostic::error(
                                    Code::BadValue,
                                    format!(
                                        "every size in `{}` of `{op}` must be at least {min}",
                                        spec.name
                                    ),
                                )
                                .with_primary(sp, format!("this holds {x}")),
                            );
                            return None;
                        }
                    }
                }
                Some(Arg::Ints(out, n))
            }
            (Kind::Ints(4), Value::Int(x)) => match at_least(x, min) {
                Some(u) => Some(Arg::Ints([u; 4], 4)),
                None => range_err(self, x),
            },
            (Kind::Tensor, Value::Tensor(_)) => Some(Arg::Tensor),
            (Kind::Choice(_), Value::Word(w)) => Some(Arg::Choice(w)),
            (Kind::Choice(words), other) => {
                let list: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
                self.error(
                    Diagnostic::error(
                        Code::WrongType,
                        format!(
                            "argument `{}` of `{op}` must be one of {}",
                            spec.name,
                            list.join(", ")
                        ),
                    )
                    .with_primary(sp, format!("this is {}", other.describe()))
                    .with_help(format!(
                        "write the word itself: `{}: {}`",
                        spec.name, words[0]
                    )),
                );
                None
            }
            (Kind::Ints(n), Value::Ints(list)) => {
                let mut d = Diagnostic::error(
                    Code::WrongType,
                    format!(
                        "argument `{}` of `{op}` takes {n} integers, not {}",
                        spec.name, list.len
                    ),
                )
                .with_primary(sp, format!("a list of {}", list.len));
                if n == 2 {
                    d = d.with_note("a size is one integer for both spatial axes, or `[h, w]`");
                    if list.len == 1 {
                        d = d.with_help(format!("write `{}: {}`", spec.name, list.v[0]));
                    }
                }
                if n == 4 {
                    d = d.with_note(
                        "a padding is one integer for all four sides, or `[left, right, top, bottom]` as `F.pad` orders them",
                    );
                }
                self.error(d);
                None
            }
            (Kind::Bool, Value::Bool(b)) => Some(Arg::Bool(b)),
            (Kind::Float | Kind::Prob, Value::Float(_) | Value::Int(_)) => {
                let f = as_f64(v);
                let prob = spec.kind == Kind::Prob;
                let valid = if prob {
                    (0.0..1.0).contains(&f)
                } else {
                    f.is_finite()
                };
                if valid {
                    return Some(Arg::Float(f));
                }
                self.error(
                    Diagnostic::error(
                        Code::BadValue,
                        format!("`{}` of `{op}` is out of range", spec.name),
                    )
                    .with_primary(sp, format!("this is {f}"))
                    .with_note(if prob {
                        "a dropout probability is in [0, 1)"
                    } else {
                        "it must be a finite number"
                    }),
                );
                None
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
    pub(super) fn seq(
        &mut self,
        frame: &mut Frame<'a>,
        place: &Place,
        (items, span): (&'a [ast::SeqItem], Span),
        piped: (Value, Span),
        site: Site<'a>,
    ) -> Value {
        // The grammar admits a sequence only after `->`, so something always flows in.
        let mut v = piped;
        if let Some(l) = site.label {
            self.claim_label(place, &l.name, l.span.to(span));
        }
        let segment = self.naming.segment(place, &site, "seq");
        let inner = self.new_scope(place, &segment, ScopeKind::Seq, span);
        let mut idx = 0u64;
        for item in items {
            match item.when.as_ref().map(|e| (e, self.eval(frame, place, e))) {
                None | Some((_, Value::Bool(true))) => {}
                Some((_, Value::Bool(false))) => continue,
                Some((_, Value::Poison)) => return Value::Poison,
                Some((e, other)) => {
                    self.error(wrong_type(
                        e.span,
                        "an `if` condition must be a boolean",
                        other,
                    ));
                    return Value::Poison;
                }
            }
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
                        self.apply(frame, &inner, &item.func, v, Site::labelled(Some(l)))
                    }
                    Some(l) => {
                        let segment = l.name.replace("{i}", &copy.to_string());
                        self.claim_label(&inner, &segment, l.span.to(item.func.span()));
                        let site = Site {
                            label: None,
                            index: Some(segment),
                        };
                        self.apply(frame, &inner, &item.func, v, site)
                    }
                    None => self.apply(frame, &inner, &item.func, v, Site::indexed(idx)),
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

/// The word a bare name chooses, when `a` is a named argument of `def` that takes one of
/// some words and its value is a name among them (`mode: bilinear`).
///
/// `Some(Err((words, name)))` when the name is none of the words.
#[allow(clippy::type_complexity)]
fn choice_word<'e>(
    def: Option<&'static OpDef>,
    a: &'e ast::Arg,
) -> Option<Result<&'static str, (&'static [&'static str], &'e str)>> {
    let name = a.name.as_ref()?;
    let param = def?.params.iter().find(|p| p.name == name.name)?;
    let (Kind::Choice(words), ast::ExprKind::Name(n)) = (param.kind, &a.value.kind) else {
        return None;
    };
    Some(words.iter().copied().find(|w| w == n).ok_or((words, n)))
}

/// A bare word that is none of an argument's words.
fn wrong_choice(def: Option<&'static OpDef>, a: &ast::Arg, words: &[&str]) -> Diagnostic {
    let op = def.map_or("", |d| d.name);
    let arg = a.name.as_ref().map_or("", |n| n.name.as_str());
    let list: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
    let mut d = Diagnostic::error(
        Code::WrongType,
        format!(
            "argument `{arg}` of `{op}` must be one of {}",
            list.join(", ")
        ),
    )
    .with_primary(a.value.span, "not one of them");
    if let ast::ExprKind::Name(n) = &a.value.kind
        && let Some(s) = closest(n, words.iter().copied())
    {
        d = d.with_help(format!("did you mean `{s}`?"));
    }
    d
}

/// A one-line usage string for an op: `usage: conv(channels, k: INT, stride: 1, ...)`.
fn usage(name: &str, params: &[Param]) -> String {
    let parts: Vec<String> = params
        .iter()
        .map(|p| {
            let value = match (p.default, p.kind) {
                (_, Kind::Choice(words)) => words.join(" | "),
                (Fallback::Required, _) => p.kind.placeholder().to_string(),
                (Fallback::Absent, _) => "...".to_string(),
                (Fallback::Int(v), _) => v.to_string(),
                (Fallback::Bool(v), _) => v.to_string(),
                (Fallback::Float(v), _) => v.to_string(),
            };
            if p.positional && p.default == Fallback::Required {
                p.name.to_string()
            } else {
                format!("{}: {value}", p.name)
            }
        })
        .collect();
    format!("usage: `{name}({})`", parts.join(", "))
}
