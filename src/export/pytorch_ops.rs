//! The PyTorch form of each op (one `match` over [`Op`], no fallback: a new op does not
//! compile until it has one), of block instances (a constructor call of the block's class)
//! and of sequences (`nn.Sequential`, a repeated item as a list comprehension).

use super::pytorch::{Body, Helper, Res, T, Val, instance_channels};
use super::pytorch_py::{Py, Sym};
use crate::ir::Op;
use crate::ops::args::{Arg, Args, Fallback, Kind, Param};
use crate::ops::{self, OpDef};
use crate::span::Span;
use crate::syntax::ast::{self, BinOp, ExprKind, StageFn};

/// The attributes of `nn.Module` that a submodule must not shadow.
const MODULE_ATTRS: &[&str] = &[
    "training",
    "forward",
    "eval",
    "train",
    "parameters",
    "buffers",
    "children",
    "modules",
    "state_dict",
    "load_state_dict",
    "to",
    "cuda",
    "cpu",
    "float",
    "double",
    "half",
    "apply",
    "zero_grad",
    "register_buffer",
    "register_parameter",
    "add_module",
    "named_modules",
    "named_parameters",
    "named_buffers",
    "named_children",
    "extra_repr",
    "type",
    "requires_grad_",
    "share_memory",
    "get_submodule",
];

pub(super) const BATCHNORM_PY: &str = r#"class BatchNorm2d(nn.Module):
    """nn.BatchNorm2d (momentum 0.1) whose state_dict has exactly the .res keys:
    weight, bias and the running statistics as buffers, no `num_batches_tracked`."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            0.1,
            self.eps,
        )
"#;

pub(super) const SEQUENTIAL_PY: &str = r#"def sequential(*named):
    """nn.Sequential of (name, module) pairs, as from an OrderedDict."""
    seq = nn.Sequential()
    for name, module in named:
        seq.add_module(name, module)
    return seq
"#;

pub(super) const SCALE_PY: &str = r#"class Scale(nn.Module):
    """Every element times `factor` (a scaled residual branch)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor
"#;

pub(super) const CROP_PY: &str = r#"def center_crop(x, like):
    """The middle of `x` at the H and W of `like`, as the original U-Net crops its skips."""
    h, w = like.shape[-2:]
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[:, :, top : top + h, left : left + w]
"#;

pub(super) const SHORTCUT_A_PY: &str = r#"class ShortcutA(nn.Module):
    """The option-A shortcut: every `stride`-th row and column, `pad` zero channels on each side."""

    def __init__(self, pad: int, stride: int):
        super().__init__()
        self.pad = pad
        self.stride = stride

    def forward(self, x):
        s = self.stride
        return F.pad(x[:, :, ::s, ::s], (0, 0, 0, 0, self.pad, self.pad))
"#;

/// An op in `forward` (an expression, tightly binding or not) or as a module.
enum Form {
    Fwd(String, bool),
    Module(Py),
}

/// An op's scalar arguments, bound to its signature's names.
struct OpArgs {
    vals: Vec<(&'static str, Sym)>,
    /// Stated input channels (`conv(4 -> 3)`).
    c_in: Option<Sym>,
    /// List arguments (`[h, w]`), element by element.
    lists: Vec<(&'static str, Vec<Sym>)>,
    /// Words chosen by name (`mode: bilinear`).
    words: Vec<(&'static str, String)>,
    sig: &'static [Param],
}

impl OpArgs {
    /// The argument, or the signature's default.
    fn get(&self, name: &str) -> Option<Sym> {
        if let Some((_, v)) = self.vals.iter().find(|(n, _)| *n == name) {
            return Some(v.clone());
        }
        match self.sig.iter().find(|p| p.name == name)?.default {
            Fallback::Int(v) => Some(Sym::Int(v)),
            Fallback::Bool(v) => Some(Sym::Bool(v)),
            Fallback::Float(v) => Some(Sym::Float(v)),
            Fallback::Required | Fallback::Absent => None,
        }
    }

    /// A list argument's elements (a single integer `s` of a pair means `[s, s]`).
    fn list(&self, name: &str) -> Option<Vec<Sym>> {
        self.lists
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    /// A per-axis size `[h, w]`: the list given, or the default for both axes.
    fn size(&self, name: &str) -> Option<Vec<Sym>> {
        self.list(name)
            .or_else(|| self.get(name).map(|s| vec![s.clone(), s]))
    }
}

/// A per-axis size as PyTorch takes it: one value when both axes are the same expression (so
/// square sizes read as they always did), else the tuple `(h, w)`.
fn size_py(v: &[Sym], mut f: impl FnMut(&Sym) -> String) -> String {
    match v {
        [h, w] if h != w => format!("({}, {})", f(h), f(w)),
        [one, ..] => f(one),
        [] => String::new(),
    }
}

/// The variant an op's call builds (its arguments do not matter: the exporter takes them
/// from the source, symbolically), from placeholder arguments every entry accepts.
fn variant(def: &OpDef) -> Option<Op> {
    // An optional argument without a default is left out, except a tensor (`like`), which
    // is enough for every entry that takes one.
    let given = def
        .params
        .iter()
        .filter(|p| p.default != Fallback::Absent || p.kind == Kind::Tensor);
    let args = given.map(|p| {
        let value = match (p.kind, p.default) {
            (Kind::Tensor, _) => Arg::Tensor,
            (Kind::Choice(words), _) => Arg::Choice(words[0]),
            (_, Fallback::Int(v)) => Arg::Int(v.max(0) as u64),
            (_, Fallback::Bool(v)) => Arg::Bool(v),
            (_, Fallback::Float(v)) => Arg::Float(v),
            (Kind::Bool, _) => Arg::Bool(false),
            (Kind::Float | Kind::Prob, _) => Arg::Float(0.5),
            (Kind::Channels, _) => Arg::Channels(None, p.min.max(1)),
            (Kind::Ints(n), _) => Arg::Ints([1; 4], n),
            (Kind::Int, _) => Arg::Int(p.min.max(1)),
        };
        (p.name, value)
    });
    (def.build)(&Args(args.collect())).ok()
}

impl<'a> Body<'_, 'a> {
    fn init_py(s: &Sym) -> String {
        s.to_py(&|n| n.to_string())
    }

    /// `name(args)` applied to `piped` (and the call's tensor arguments) in `forward`.
    pub fn call(
        &mut self,
        c: &'a ast::Call,
        piped: Option<T>,
        label: Option<&'a ast::Ident>,
        _index: Option<()>,
    ) -> Res<T> {
        self.apply(&c.name, &c.args, c.span, piped, label)
    }

    fn apply(
        &mut self,
        callee: &'a ast::Ident,
        args: &'a [ast::Arg],
        span: Span,
        piped: Option<T>,
        label: Option<&'a ast::Ident>,
    ) -> Res<T> {
        let name = callee.name.as_str();
        if ops::lookup(name).is_some() {
            let (tensors, a) = self.op_args(name, args, piped, span)?;
            // Lowering numbers every unlabelled op, with parameters or not.
            let mut segment = match label {
                Some(l) => l.name.clone(),
                None => self.auto_segment(name, span)?,
            };
            let (form, meta) = self.op(name, span, &tensors, &a, false)?;
            // A module without parameters has no state_dict keys: give it a readable name.
            if label.is_none() && !ops::lookup(name).is_some_and(|d| d.has_params) {
                segment = self.fresh(name);
            }
            return Ok(match form {
                Form::Fwd(py, atom) => T { py, atom, ..meta },
                Form::Module(m) => {
                    let attr = self.register(&segment, span, m)?;
                    T {
                        py: format!("{attr}({})", tensors[0].py),
                        atom: true,
                        ..meta
                    }
                }
            });
        }
        let Some(&block) = self.ctx.blocks.get(name) else {
            return self.err(span, format!("unknown op or block `{name}`"));
        };
        let mut tensors: Vec<T> = piped.into_iter().collect();
        let mut scalars = Vec::new();
        for a in args {
            if a.name.is_none() && self.is_tensor(&a.value) {
                tensors.push(self.tensor(&a.value, None)?);
            } else {
                scalars.push(a);
            }
        }
        let segment = match label {
            Some(l) => l.name.clone(),
            None => self.auto_segment(name, span)?,
        };
        let (ctor, meta) = self.block_ctor(block, &scalars, &tensors, span)?;
        let attr = self.register(&segment, span, ctor)?;
        let operands: Vec<&str> = tensors.iter().map(|t| t.py.as_str()).collect();
        Ok(T {
            py: format!("{attr}({})", operands.join(", ")),
            atom: true,
            ..meta
        })
    }

    /// One stage of a pipeline, applied to `input`.
    pub fn stage(&mut self, st: &'a ast::Stage, input: T) -> Res<T> {
        let label = st.label.as_ref();
        match &st.func {
            StageFn::Call(c) => self.apply(&c.name, &c.args, c.span, Some(input), label),
            StageFn::Name(n) => self.apply(n, &[], n.span, Some(input), label),
            StageFn::Seq(items, span) => {
                let segment = match label {
                    Some(l) => l.name.clone(),
                    None => self.auto_segment("seq", *span)?,
                };
                let (m, meta) = self.seq(items, input.clone())?;
                let attr = self.register(&segment, *span, m)?;
                Ok(T {
                    py: format!("{attr}({})", input.py),
                    atom: true,
                    ..meta
                })
            }
            StageFn::Int(_, span) | StageFn::Float(_, span) => {
                self.err(*span, "a number where an op is expected")
            }
            StageFn::Paren(e) => self.err(e.span, "a number where an op is expected"),
        }
    }

    /// Add a submodule in `__init__`; what `forward` calls it by.
    fn register(&mut self, segment: &str, span: Span, module: Py) -> Res<String> {
        if MODULE_ATTRS.contains(&segment) {
            return self.err(
                span,
                format!(
                    "`{segment}` is an attribute of every nn.Module; label the layer otherwise"
                ),
            );
        }
        if !self.modules.iter().any(|m| m == segment) {
            self.modules.push(segment.to_string());
        }
        let plain = segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !segment.starts_with(|c: char| c.is_ascii_digit())
            && !super::pytorch::is_reserved(segment);
        if plain {
            module.layout(
                self.init_indent,
                &format!("self.{segment} = "),
                "",
                &mut self.init,
            );
            Ok(format!("self.{segment}"))
        } else {
            let quoted = format!("\"{segment}\"");
            let call = Py::Call(
                "setattr".into(),
                vec![Py::atom("self"), Py::atom(quoted.clone()), module],
            );
            call.layout(self.init_indent, "", "", &mut self.init);
            Ok(format!("getattr(self, {quoted})"))
        }
    }

    fn op_args(
        &mut self,
        name: &str,
        args: &'a [ast::Arg],
        piped: Option<T>,
        span: Span,
    ) -> Res<(Vec<T>, OpArgs)> {
        let Some(sig) = ops::lookup(name).map(|d| d.params) else {
            return self.err(span, format!("unknown op `{name}`"));
        };
        let mut tensors: Vec<T> = piped.into_iter().collect();
        let mut out = OpArgs {
            vals: Vec::new(),
            c_in: None,
            lists: Vec::new(),
            words: Vec::new(),
            sig,
        };
        let mut positional = sig.iter().filter(|p| p.positional);
        for a in args {
            let spec = match &a.name {
                None if self.is_tensor(&a.value) => {
                    tensors.push(self.tensor(&a.value, None)?);
                    continue;
                }
                None => positional.next(),
                Some(n) => sig.iter().find(|p| p.name == n.name),
            };
            let Some(spec) = spec else {
                return self.err(a.span, format!("an argument `{name}` does not take"));
            };
            let value = match (&a.value.kind, spec.kind) {
                (_, Kind::Tensor) => {
                    tensors.push(self.tensor(&a.value, None)?);
                    continue;
                }
                (ExprKind::Name(word), Kind::Choice(_)) => {
                    out.words.push((spec.name, word.clone()));
                    continue;
                }
                (ExprKind::Pipe { head, stages }, Kind::Channels) if stages.len() == 1 => {
                    out.c_in = Some(self.scalar(head.as_ref())?);
                    match &stages[0].func {
                        StageFn::Int(v, _) => Sym::Int(*v as i64),
                        StageFn::Name(n) => match self.env.get(&n.name) {
                            Some(Val::Scalar(s)) => s.clone(),
                            _ => return self.err(n.span, format!("`{}` is not a number", n.name)),
                        },
                        StageFn::Paren(e) => self.scalar(e)?,
                        _ => return self.err(a.span, "stated channels must be numbers"),
                    }
                }
                (ExprKind::List(items), Kind::Ints(_)) => {
                    let items = items.iter().map(|e| Ok(self.scalar(e)?.folded()));
                    out.lists.push((spec.name, items.collect::<Res<_>>()?));
                    continue;
                }
                (_, Kind::Ints(n)) => {
                    let s = self.scalar(&a.value)?.folded();
                    out.lists.push((spec.name, vec![s; n]));
                    continue;
                }
                _ => self.scalar(&a.value)?,
            };
            out.vals.push((spec.name, value.folded()));
        }
        Ok((tensors, out))
    }

    /// The input channels of a layer: stated, derived, or agreed by every instance.
    fn in_channels(&self, stated: &Option<Sym>, input: &T, span: Span) -> Res<Sym> {
        if let Some(s) = stated.clone().or_else(|| input.ch.clone()) {
            return Ok(s);
        }
        match instance_channels(self.ctx.g, self.ctx.shapes, span) {
            Some(c) => Ok(Sym::Int(c)),
            None => self.err(
                span,
                "the input size of this layer differs between instances; state it (`conv(C -> OUT, ...)`, `linear(F -> OUT)`)",
            ),
        }
    }

    /// An op's form and what its result is known to be.
    fn op(
        &mut self,
        name: &str,
        span: Span,
        ins: &[T],
        a: &OpArgs,
        in_seq: bool,
    ) -> Res<(Form, T)> {
        let arity_ok = match name {
            "add" | "mul" | "crop" => ins.len() == 2,
            "upsample" => ins.len() <= 2,
            "concat" => ins.len() >= 2,
            _ => ins.len() == 1,
        };
        if !arity_ok {
            return self.err(span, format!("`{name}` with {} tensor operands", ins.len()));
        }
        if in_seq && ins.len() > 1 {
            return self.err(
                span,
                format!("`{name}` with a second operand inside a sequence cannot be a PyTorch module; bind the operand outside the sequence"),
            );
        }
        let x = ins[0].clone();
        let xs = x.py.clone();
        let get = |n: &str| a.get(n);
        let py = Self::init_py;
        let simple = |f: &str, fwd: String| -> Form {
            if in_seq {
                Form::Module(Py::atom(f))
            } else {
                Form::Fwd(fwd, true)
            }
        };
        // Only the variant matters: the arguments come from the source, symbolically.
        let Some(op) = ops::lookup(name).and_then(variant) else {
            return self.err(span, format!("unknown op `{name}`"));
        };
        let (form, meta) = match op {
            Op::Input => return self.err(span, "`input` is not an op"),
            Op::Conv(_) => {
                let c_in = self.in_channels(&a.c_in, &x, span)?;
                let (Some(c_out), Some(k)) = (get("channels"), a.size("k")) else {
                    return self.err(span, "`conv` needs its channels and `k`");
                };
                let mut args = vec![
                    Py::atom(py(&c_in)),
                    Py::atom(py(&c_out)),
                    Py::atom(size_py(&k, py)),
                ];
                for (arg, kw, default) in [
                    ("stride", "stride", 1),
                    ("pad", "padding", 0),
                    ("dilation", "dilation", 1),
                ] {
                    if let Some(v) = a
                        .size(arg)
                        .filter(|v| !v.iter().all(|s| s.as_int() == Some(default)))
                    {
                        args.push(Py::kw(kw, size_py(&v, py)));
                    }
                }
                if let Some(v) = get("groups").filter(|v| v.as_int() != Some(1)) {
                    args.push(Py::kw("groups", py(&v)));
                }
                match get("bias").map(|b| (b.as_bool(), b)) {
                    Some((Some(true), _)) => {}
                    Some((None, b)) => args.push(Py::kw("bias", py(&b))),
                    _ => args.push(Py::kw("bias", "False")),
                }
                let keeps_hw1 = x.hw1
                    && k.iter().all(|k| k.as_int() == Some(1))
                    && a.size("pad")
                        .is_some_and(|p| p.iter().all(|p| p.as_int() == Some(0)));
                let meta = T {
                    ch: Some(c_out),
                    hw1: keeps_hw1,
                    ..x
                };
                (Form::Module(Py::Call("nn.Conv2d".into(), args)), meta)
            }
            Op::ConvTranspose(_) => {
                let c_in = self.in_channels(&a.c_in, &x, span)?;
                let (Some(c_out), Some(k)) = (get("channels"), a.size("k")) else {
                    return self.err(span, "`conv_transpose` needs its channels and `k`");
                };
                let mut args = vec![
                    Py::atom(py(&c_in)),
                    Py::atom(py(&c_out)),
                    Py::atom(size_py(&k, py)),
                ];
                for (arg, kw, default) in [
                    ("stride", "stride", 1),
                    ("pad", "padding", 0),
                    ("output_pad", "output_padding", 0),
                ] {
                    if let Some(v) = a
                        .size(arg)
                        .filter(|v| !v.iter().all(|s| s.as_int() == Some(default)))
                    {
                        args.push(Py::kw(kw, size_py(&v, py)));
                    }
                }
                if let Some(v) = get("groups").filter(|v| v.as_int() != Some(1)) {
                    args.push(Py::kw("groups", py(&v)));
                }
                match get("bias").map(|b| (b.as_bool(), b)) {
                    Some((Some(true), _)) => {}
                    Some((None, b)) => args.push(Py::kw("bias", py(&b))),
                    _ => args.push(Py::kw("bias", "False")),
                }
                // PyTorch's order: dilation comes after bias.
                if let Some(v) = a
                    .size("dilation")
                    .filter(|v| !v.iter().all(|s| s.as_int() == Some(1)))
                {
                    args.push(Py::kw("dilation", size_py(&v, py)));
                }
                let meta = T {
                    ch: Some(c_out),
                    hw1: false,
                    ..x
                };
                (
                    Form::Module(Py::Call("nn.ConvTranspose2d".into(), args)),
                    meta,
                )
            }
            Op::BatchNorm(_) => {
                self.ctx.need(Helper::BatchNorm);
                let c = self.in_channels(&get("channels"), &x, span)?;
                let meta = T {
                    ch: Some(c.clone()),
                    ..x
                };
                let mut args = vec![Py::atom(py(&c))];
                // The source's own epsilon; without one, the helper's default is the language's.
                if let Some((_, eps)) = a.vals.iter().find(|(n, _)| *n == "eps") {
                    args.push(Py::kw("eps", py(eps)));
                }
                (Form::Module(Py::Call("BatchNorm2d".into(), args)), meta)
            }
            Op::Linear(_) => {
                let c_in = match (&a.c_in, x.flat) {
                    (Some(s), _) => s.clone(),
                    (None, true) => self.in_channels(&None, &x, span)?,
                    (None, false) => self.in_channels(
                        &None,
                        &T {
                            ch: None,
                            ..x.clone()
                        },
                        span,
                    )?,
                };
                let Some(c_out) = get("channels") else {
                    return self.err(span, "`linear` needs its channels");
                };
                let mut args = vec![Py::atom(py(&c_in)), Py::atom(py(&c_out))];
                match get("bias").map(|b| (b.as_bool(), b)) {
                    Some((Some(false), _)) => args.push(Py::kw("bias", "False")),
                    Some((None, b)) => args.push(Py::kw("bias", py(&b))),
                    _ => {}
                }
                let meta = T {
                    ch: Some(c_out),
                    flat: true,
                    hw1: false,
                    ..x
                };
                (Form::Module(Py::Call("nn.Linear".into(), args)), meta)
            }
            Op::Relu => (simple("nn.ReLU()", format!("F.relu({xs})")), x),
            Op::Sigmoid => (simple("nn.Sigmoid()", format!("torch.sigmoid({xs})")), x),
            Op::Tanh => (simple("nn.Tanh()", format!("torch.tanh({xs})")), x),
            Op::Relu6 => (simple("nn.ReLU6()", format!("F.relu6({xs})")), x),
            Op::Silu => (simple("nn.SiLU()", format!("F.silu({xs})")), x),
            Op::HardSwish => (simple("nn.Hardswish()", format!("F.hardswish({xs})")), x),
            Op::HardSigmoid => (
                simple("nn.Hardsigmoid()", format!("F.hardsigmoid({xs})")),
                x,
            ),
            // PyTorch's default is the exact (erf) form, as the interpreter computes it.
            Op::Gelu => (simple("nn.GELU()", format!("F.gelu({xs})")), x),
            Op::Scale(_) => {
                let factor = get("factor").unwrap_or(Sym::Float(1.0));
                let form = if in_seq {
                    self.ctx.need(Helper::Scale);
                    Form::Module(Py::Call("Scale".into(), vec![Py::atom(py(&factor))]))
                } else {
                    let f = self.fwd_scalar(&factor);
                    Form::Fwd(format!("{} * {f}", x.operand()), false)
                };
                (form, x)
            }
            Op::AdaptiveAvgPool(_) => {
                let Some(out) = a.list("out").filter(|o| o.len() == 2) else {
                    return self.err(span, "`adaptive_avgpool` needs its output size");
                };
                let ones = out.iter().all(|d| d.as_int() == Some(1));
                let form = if in_seq {
                    let size = format!("({}, {})", py(&out[0]), py(&out[1]));
                    Form::Module(Py::Call(
                        "nn.AdaptiveAvgPool2d".into(),
                        vec![Py::atom(size)],
                    ))
                } else {
                    let (h, w) = (self.fwd_scalar(&out[0]), self.fwd_scalar(&out[1]));
                    Form::Fwd(format!("F.adaptive_avg_pool2d({xs}, ({h}, {w}))"), true)
                };
                (form, T { hw1: ones, ..x })
            }
            Op::Unflatten(_) => {
                let Some(dims) = a.list("dims").filter(|d| d.len() == 3) else {
                    return self.err(span, "`unflatten` needs `[C, H, W]`");
                };
                let ones = dims[1..].iter().all(|d| d.as_int() == Some(1));
                let form = if in_seq {
                    let size = format!("({}, {}, {})", py(&dims[0]), py(&dims[1]), py(&dims[2]));
                    Form::Module(Py::Call(
                        "nn.Unflatten".into(),
                        vec![Py::atom("1"), Py::atom(size)],
                    ))
                } else {
                    let d: Vec<String> = dims.iter().map(|d| self.fwd_scalar(d)).collect();
                    Form::Fwd(
                        format!("{}.unflatten(1, ({}))", x.operand(), d.join(", ")),
                        true,
                    )
                };
                let meta = T {
                    ch: Some(dims[0].clone()),
                    flat: false,
                    hw1: ones,
                    ..x
                };
                (form, meta)
            }
            Op::Softmax => (
                simple("nn.Softmax(dim=1)", format!("F.softmax({xs}, dim=1)")),
                x,
            ),
            Op::LeakyRelu { .. } => {
                let slope = get("slope").unwrap_or(Sym::Float(0.01));
                let form = if in_seq {
                    Form::Module(Py::atom(format!("nn.LeakyReLU({})", py(&slope))))
                } else {
                    Form::Fwd(
                        format!("F.leaky_relu({xs}, {})", self.fwd_scalar(&slope)),
                        true,
                    )
                };
                (form, x)
            }
            Op::Dropout { .. } => {
                let p = get("p").unwrap_or(Sym::Float(0.5));
                let form = if in_seq {
                    Form::Module(Py::atom(format!("nn.Dropout({})", py(&p))))
                } else {
                    Form::Fwd(
                        format!("F.dropout({xs}, {}, self.training)", self.fwd_scalar(&p)),
                        true,
                    )
                };
                (form, x)
            }
            Op::Identity => {
                let form = if in_seq {
                    Form::Module(Py::atom("nn.Identity()"))
                } else {
                    Form::Fwd(xs, x.atom)
                };
                (form, x)
            }
            Op::MaxPool(_) | Op::AvgPool(_) => {
                let avg = matches!(op, Op::AvgPool(_));
                // Sizes are per axis (`[h, w]`, one symbol when both agree); flags are one.
                let mut kws: Vec<(&str, Vec<Sym>)> = Vec::new();
                let Some(k) = a.size("k") else {
                    return self.err(span, format!("`{name}` needs `k`"));
                };
                kws.push(("kernel_size", k));
                if let Some(s) = a.size("stride") {
                    kws.push(("stride", s));
                }
                if let Some(p) = a
                    .size("pad")
                    .filter(|p| !p.iter().all(|p| p.as_int() == Some(0)))
                {
                    kws.push(("padding", p));
                }
                if let Some(c) = get("ceil").filter(|c| c.as_bool() != Some(false)) {
                    kws.push(("ceil_mode", vec![c]));
                }
                if avg && let Some(c) = get("count_pad").filter(|c| c.as_bool() != Some(true)) {
                    kws.push(("count_include_pad", vec![c]));
                }
                let form = if in_seq {
                    let f = if avg { "nn.AvgPool2d" } else { "nn.MaxPool2d" };
                    Form::Module(Py::Call(
                        f.into(),
                        kws.iter().map(|(n, v)| Py::kw(n, size_py(v, py))).collect(),
                    ))
                } else {
                    let f = if avg { "F.avg_pool2d" } else { "F.max_pool2d" };
                    let mut parts = vec![xs];
                    for (n, v) in &kws {
                        let v = size_py(v, |s: &Sym| self.fwd_scalar(s));
                        parts.push(format!("{n}={v}"));
                    }
                    Form::Fwd(format!("{f}({})", parts.join(", ")), true)
                };
                (form, T { hw1: false, ..x })
            }
            Op::GlobalAvgPool => (
                simple(
                    "nn.AdaptiveAvgPool2d(1)",
                    format!("F.adaptive_avg_pool2d({xs}, 1)"),
                ),
                T { hw1: true, ..x },
            ),
            Op::Flatten => {
                let ch = if x.hw1 { x.ch.clone() } else { None };
                (
                    simple("nn.Flatten()", format!("torch.flatten({xs}, 1)")),
                    T {
                        ch,
                        flat: true,
                        ..x
                    },
                )
            }
            Op::Add => {
                let t = self.binary(BinOp::Add, span, x, ins[1].clone())?;
                (Form::Fwd(t.py.clone(), false), t)
            }
            Op::Mul => {
                let t = self.binary(BinOp::Mul, span, x, ins[1].clone())?;
                (Form::Fwd(t.py.clone(), false), t)
            }
            Op::Concat => {
                let parts: Vec<&str> = ins.iter().map(|t| t.py.as_str()).collect();
                let ch = ins
                    .iter()
                    .map(|t| t.ch.clone())
                    .try_fold(Sym::Int(0), |acc, c| {
                        c.map(|c| Sym::bin(acc, BinOp::Add, c))
                    });
                let form = Form::Fwd(format!("torch.cat([{}], 1)", parts.join(", ")), true);
                (form, T { ch, ..x })
            }
            Op::Upsample(_) => {
                let form = self.upsample(span, &x, ins.get(1), a, in_seq)?;
                (form, T { hw1: false, ..x })
            }
            Op::Crop => {
                self.ctx.need(Helper::Crop);
                let form = Form::Fwd(format!("center_crop({xs}, {})", ins[1].py), true);
                (form, T { hw1: false, ..x })
            }
            Op::Pad(_) => {
                let Some(sides) = a.list("sides").filter(|d| d.len() == 4) else {
                    return self.err(span, "`pad` needs its sides");
                };
                let form = if in_seq {
                    let arg = if sides.iter().all(|s| *s == sides[0]) {
                        py(&sides[0])
                    } else {
                        let v: Vec<String> = sides.iter().map(py).collect();
                        format!("({})", v.join(", "))
                    };
                    Form::Module(Py::Call("nn.ZeroPad2d".into(), vec![Py::atom(arg)]))
                } else {
                    let v: Vec<String> = sides.iter().map(|s| self.fwd_scalar(s)).collect();
                    Form::Fwd(format!("F.pad({xs}, ({}))", v.join(", ")), true)
                };
                (form, T { hw1: false, ..x })
            }
            Op::ShortcutA(_) => {
                let c_in = self.in_channels(&None, &x, span)?;
                let (Some(c_out), Some(stride)) = (get("channels"), get("stride")) else {
                    return self.err(span, "`shortcut_a` needs its channels");
                };
                let pad = Sym::bin(
                    Sym::bin(c_out.clone(), BinOp::Sub, c_in),
                    BinOp::Div,
                    Sym::Int(2),
                );
                // A module in `forward` too: the channel padding is a constructor fact.
                self.ctx.need(Helper::ShortcutA);
                let form = Form::Module(Py::Call(
                    "ShortcutA".into(),
                    vec![Py::atom(py(&pad)), Py::atom(py(&stride))],
                ));
                (
                    form,
                    T {
                        ch: Some(c_out),
                        hw1: false,
                        ..x
                    },
                )
            }
        };
        Ok((form, meta))
    }

    /// `upsample` as `nn.Upsample` in a sequence, `F.interpolate` in `forward`.
    fn upsample(
        &mut self,
        span: Span,
        x: &T,
        like: Option<&T>,
        a: &OpArgs,
        in_seq: bool,
    ) -> Res<Form> {
        let py = Self::init_py;
        let pair = |this: &mut Self, v: &[Sym]| -> String {
            let s: Vec<String> = v
                .iter()
                .map(|s| if in_seq { py(s) } else { this.fwd_scalar(s) })
                .collect();
            if s[0] == s[1] {
                s[0].clone()
            } else {
                format!("({}, {})", s[0], s[1])
            }
        };
        let mut kws: Vec<(&str, String)> = Vec::new();
        if let Some(l) = like {
            kws.push(("size", format!("{}.shape[-2:]", l.py)));
        } else if let Some(s) = a.list("size").filter(|s| s.len() == 2) {
            kws.push(("size", pair(self, &s)));
        } else if let Some(s) = a.list("scale").filter(|s| s.len() == 2) {
            kws.push(("scale_factor", pair(self, &s)));
        } else {
            return self.err(span, "`upsample` needs `scale`, `size` or `like`");
        }
        let mode = a.words.iter().find(|(n, _)| *n == "mode");
        if let Some((_, m)) = mode.filter(|(_, m)| m != "nearest") {
            kws.push(("mode", format!("\"{m}\"")));
            let aligned = a.get("align_corners").unwrap_or(Sym::Bool(false));
            let aligned = if in_seq {
                py(&aligned)
            } else {
                self.fwd_scalar(&aligned)
            };
            kws.push(("align_corners", aligned));
        }
        Ok(if in_seq {
            let args = kws.iter().map(|(n, v)| Py::kw(n, v.clone())).collect();
            Form::Module(Py::Call("nn.Upsample".into(), args))
        } else {
            let mut parts = vec![x.py.clone()];
            parts.extend(kws.iter().map(|(n, v)| format!("{n}={v}")));
            Form::Fwd(format!("F.interpolate({})", parts.join(", ")), true)
        })
    }

    /// The constructor call of a block's class for one instance, and its output.
    fn block_ctor(
        &mut self,
        block: &'a ast::BlockDef,
        scalars: &[&'a ast::Arg],
        tensors: &[T],
        span: Span,
    ) -> Res<(Py, T)> {
        let info = self.ctx.class(block)?;
        if tensors.len() != info.in_args.len() || tensors.is_empty() {
            return self.err(
                span,
                format!(
                    "`{}` with {} tensor operands",
                    block.name.name,
                    tensors.len()
                ),
            );
        }
        let mut map: Vec<(String, Sym)> = Vec::new();
        let mut args = Vec::new();
        for (arg, t) in info.in_args.iter().zip(tensors) {
            let Some(ch) = t.ch.clone() else {
                return self.err(
                    span,
                    format!(
                        "the input channels of this `{}` cannot be derived",
                        block.name.name
                    ),
                );
            };
            args.push(Py::atom(Self::init_py(&ch)));
            map.push((arg.clone(), ch));
        }
        let mut given: Vec<(usize, bool, Sym)> = Vec::new();
        let mut next = 0;
        for a in scalars {
            let idx = match &a.name {
                Some(n) => info.params.iter().position(|p| p.name == n.name),
                None => {
                    next += 1;
                    Some(next - 1).filter(|i| *i < info.params.len())
                }
            };
            let Some(idx) = idx else {
                return self.err(
                    a.span,
                    format!("an argument `{}` does not take", block.name.name),
                );
            };
            given.push((idx, a.name.is_some(), self.scalar(&a.value)?.folded()));
        }
        for (i, p) in info.params.iter().enumerate() {
            let value = match given.iter().find(|(j, _, _)| *j == i) {
                Some((_, _, v)) => v.clone(),
                None => match &p.default {
                    Some(d) => d.subst(&map),
                    None => {
                        return self.err(span, format!("`{}` needs `{}`", block.name.name, p.name));
                    }
                },
            };
            map.push((p.py.clone(), value));
        }
        for (i, named, v) in &given {
            let text = Self::init_py(v);
            if *named {
                args.push(Py::kw(&info.params[*i].py, text));
            } else {
                args.push(Py::atom(text));
            }
        }
        let meta = T {
            py: String::new(),
            atom: true,
            ch: info.out.as_ref().map(|o| o.subst(&map)),
            flat: info.out_flat,
            hw1: info.out_hw1,
        };
        Ok((Py::Call(info.py.clone(), args), meta))
    }

    /// A sequence as `nn.Sequential(...)` (or, when items are labelled, the `sequential`
    /// helper with each item's name), applied to `input`.
    fn seq(&mut self, items: &'a [ast::SeqItem], input: T) -> Res<(Py, T)> {
        let named = items.iter().any(|i| i.label.is_some());
        let mut args = Vec::new();
        let mut cur = input;
        let mut pos: i64 = 0;
        for item in items {
            // Lowering leaves out an item whose condition is false, numbering on without it.
            if let Some(cond) = &item.when {
                match self.scalar(cond)?.folded() {
                    Sym::Bool(true) => {}
                    Sym::Bool(false) => continue,
                    _ => {
                        return self.err(
                            cond.span,
                            "a sequence item under an `if` on the block's arguments (an `nn.Sequential` cannot leave it out); write the two sequences as `if c { [...] } else { [...] }`",
                        );
                    }
                }
            }
            let label = item.label.as_ref().map(|l| l.name.as_str());
            let count = match &item.repeat {
                Some(r) => Some(self.scalar(r)?.folded()),
                None => None,
            };
            let (m0, t1) = self.item_module(&item.func, cur.clone(), item.span)?;
            let Some(n) = count.filter(|n| n.as_int() != Some(1)) else {
                args.push(self.entry(named, label, pos, None, m0, item.span)?);
                pos += 1;
                cur = t1;
                continue;
            };
            if label.is_some_and(|l| !l.contains("{i}")) {
                return self.err(item.span, "a repeated item whose copies share one label");
            }
            let (m1, t2) = self.item_module(&item.func, t1.clone(), item.span)?;
            let var = if self.taken.contains("i") { "i_" } else { "i" };
            if t2.ch == t1.ch && m1 == m0 {
                let e = self.entry(named, label, pos, Some((var, 0)), m0, item.span)?;
                args.push(Py::Repeat(
                    Box::new(e),
                    Self::loop_var(named, var),
                    Self::init_py(&n),
                ));
                cur = t1;
            } else if t2.ch == t1.ch {
                args.push(self.entry(named, label, pos, None, m0, item.span)?);
                let e = self.entry(named, label, pos, Some((var, 1)), m1, item.span)?;
                let rest = Sym::bin(n.clone(), BinOp::Sub, Sym::Int(1));
                args.push(Py::Repeat(
                    Box::new(e),
                    Self::loop_var(named, var),
                    Self::init_py(&rest),
                ));
                cur = t1;
            } else {
                // Copies that each add the same number of channels (DenseNet's layers).
                let (m, out) = self.affine_copies(item, &cur, &n, var)?;
                let e = self.entry(named, label, pos, Some((var, 0)), m, item.span)?;
                args.push(Py::Repeat(Box::new(e), var.to_string(), Self::init_py(&n)));
                cur = out;
            }
            pos = match (n.as_int(), named) {
                (Some(n), _) => pos + n,
                // Only labelled sequences spell positions; a symbolic count ends them.
                (None, false) => pos,
                (None, true) => {
                    return self.err(item.span, "a labelled sequence with a symbolic count");
                }
            };
        }
        if named {
            self.ctx.need(Helper::Sequential);
            return Ok((Py::Call("sequential".into(), args), cur));
        }
        Ok((Py::Call("nn.Sequential".into(), args), cur))
    }

    fn loop_var(named: bool, var: &str) -> String {
        if named {
            var.to_string()
        } else {
            "_".to_string()
        }
    }

    /// The module of copy `i` of a repeated item whose copies each add `d` channels, checked
    /// for every copy; and the sequence's output after the last.
    fn affine_copies(
        &mut self,
        item: &'a ast::SeqItem,
        cur: &T,
        n: &Sym,
        var: &str,
    ) -> Res<(Py, T)> {
        let fail = |s: &Self| {
            s.err(
                item.span,
                "the copies of this repeated item differ in their channels, not by a constant step",
            )
        };
        let (Some(c0), Some(n)) = (cur.ch.as_ref().and_then(Sym::as_int), n.as_int()) else {
            return fail(self);
        };
        let step = |s: &mut Self, c: i64| -> Res<Option<i64>> {
            let t = T {
                ch: Some(Sym::Int(c)),
                ..cur.clone()
            };
            Ok(s.item_module(&item.func, t, item.span)?
                .1
                .ch
                .and_then(|c| c.as_int()))
        };
        let Some(c1) = step(self, c0)? else {
            return fail(self);
        };
        let d = c1 - c0;
        let mut c = c1;
        for _ in 1..n {
            match step(self, c)? {
                Some(next) if next - c == d => c = next,
                _ => return fail(self),
            }
        }
        let i = Sym::Arg(var.to_string(), super::pytorch_py::Ty::Int);
        let ch = Sym::bin(
            Sym::Int(c0),
            BinOp::Add,
            Sym::bin(i, BinOp::Mul, Sym::Int(d)),
        );
        let (m, t) = self.item_module(
            &item.func,
            T {
                ch: Some(ch),
                ..cur.clone()
            },
            item.span,
        )?;
        Ok((
            m,
            T {
                ch: Some(Sym::Int(c)),
                ..t
            },
        ))
    }

    /// A sequence argument: the module, or `(name, module)` in a labelled sequence. `copy` is
    /// the comprehension variable and the number of copies before its first.
    fn entry(
        &self,
        named: bool,
        label: Option<&str>,
        pos: i64,
        copy: Option<(&str, i64)>,
        m: Py,
        span: Span,
    ) -> Res<Py> {
        if !named {
            return Ok(m);
        }
        // `{i}` numbers copies from 1; an unlabelled item is named by its position.
        let (template, first) = match label {
            Some(l) => (l.to_string(), 1),
            None => ("{i}".to_string(), pos),
        };
        if template.contains('"') || template.contains('\\') {
            return self.err(span, "a label that cannot be a Python string");
        }
        let name = match copy {
            None => format!("\"{}\"", template.replace("{i}", &first.to_string())),
            Some((var, before)) => {
                let k = first + before;
                let number = if k == 0 {
                    var.to_string()
                } else {
                    format!("{var} + {k}")
                };
                let escaped = template.replace('{', "{{").replace('}', "}}");
                format!(
                    "f\"{}\"",
                    escaped.replace("{{i}}", &format!("{{{number}}}"))
                )
            }
        };
        Ok(Py::Call(String::new(), vec![Py::atom(name), m]))
    }

    /// One item of a sequence as a module.
    fn item_module(&mut self, f: &'a StageFn, input: T, span: Span) -> Res<(Py, T)> {
        let (callee, args, span): (&'a ast::Ident, &'a [ast::Arg], Span) = match f {
            StageFn::Call(c) => (&c.name, &c.args, c.span),
            StageFn::Name(n) => (n, &[], n.span),
            StageFn::Seq(items, _) => return self.seq(items, input),
            _ => return self.err(span, "a number where an op is expected"),
        };
        let name = callee.name.as_str();
        if ops::lookup(name).is_some() {
            let (tensors, a) = self.op_args(name, args, Some(input), span)?;
            let (form, meta) = self.op(name, span, &tensors, &a, true)?;
            return match form {
                Form::Module(m) => Ok((m, meta)),
                Form::Fwd(..) => {
                    self.err(span, format!("`{name}` cannot be a module of a sequence"))
                }
            };
        }
        let Some(&block) = self.ctx.blocks.get(name) else {
            return self.err(span, format!("unknown op or block `{name}`"));
        };
        let mut scalars = Vec::new();
        for a in args {
            if a.name.is_none() && self.is_tensor(&a.value) {
                return self.err(
                    a.span,
                    "a tensor argument inside a sequence; bind it outside",
                );
            }
            scalars.push(a);
        }
        self.block_ctor(block, &scalars, &[input], span)
    }
}
