//! PyTorch export ([`to_pytorch`]): a checked network as one self-contained Python file that
//! imports only `torch`, with an `nn.Module` class per `.res` block it uses and one for the
//! network, whose `state_dict()` keys are the `.res` layer paths.
//!
//! The code follows the source, not the unrolled graph: a block's parameters become its
//! constructor's arguments (channel counts derived symbolically, `planes * 4`), conditionals
//! become Python conditionals on them, sequences become `nn.Sequential` (a repeated item a
//! list comprehension). The graph and its shapes give the facts the source leaves open (the
//! features a `linear` receives after a `flatten`). This module walks statements and
//! expressions; `pytorch_ops` emits ops, blocks and sequences; `pytorch_py` holds the Python
//! expressions and their black-style layout. No IO.

use super::pytorch_py::{Py, Sym, Ty};
use crate::ir::Graph;
use crate::shape::{Dim, Shapes};
use crate::span::{Source, Span};
use crate::syntax::ast::{self, BinOp, ExprKind, Stmt, UnOp};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// Why a network cannot be written as PyTorch code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportError(pub String);

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub(super) type Res<T> = Result<T, ExportError>;

/// Python source of network `g` (checked, without errors) of `source`, whose AST is `file`.
pub fn to_pytorch(
    source: &Source,
    file: &ast::File,
    g: &Graph,
    shapes: &Shapes,
) -> Result<String, ExportError> {
    let Some(net) = file.networks.iter().find(|n| n.name.name == g.name) else {
        return Err(ExportError(format!(
            "no network `{}` in the source",
            g.name
        )));
    };
    let mut ctx = Gen {
        source,
        g,
        shapes,
        blocks: file
            .blocks
            .iter()
            .map(|b| (b.name.name.as_str(), b))
            .collect(),
        classes: HashMap::new(),
        in_progress: Vec::new(),
        texts: Vec::new(),
        class_names: [
            "BatchNorm2d",
            "ShortcutA",
            "sequential",
            "Scale",
            "center_crop",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        helpers: Vec::new(),
    };
    let net_class = ctx.network(net)?;
    let mut out = header(source, g, shapes);
    let mut helpers = ctx.helpers.clone();
    helpers.sort();
    for h in helpers {
        out.push_str("\n\n");
        out.push_str(h.text());
    }
    for text in ctx.texts.iter().chain(std::iter::once(&net_class)) {
        out.push_str("\n\n");
        out.push_str(text);
    }
    Ok(out)
}

/// The module docstring and the imports.
fn header(source: &Source, g: &Graph, shapes: &Shapes) -> String {
    let mut doc = format!(
        "\"\"\"PyTorch module of network `{}` in `{}`, written by `resnetc export`.\n\n",
        g.name, source.name
    );
    for i in &g.inputs {
        let dims: Vec<String> = i
            .dims
            .iter()
            .map(|d| match d {
                crate::ir::DimSpec::Known(v) => v.to_string(),
                crate::ir::DimSpec::Sym(s) => s.clone(),
            })
            .collect();
        doc.push_str(&format!("Input `{}`: [{}]", i.name, dims.join(", ")));
        let syms: Vec<&str> = i
            .dims
            .iter()
            .filter_map(|d| match d {
                crate::ir::DimSpec::Sym(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        if !syms.is_empty() {
            doc.push_str(&format!(" (`{}` free)", syms.join("`, `")));
        }
        doc.push_str(", float32 NCHW.\n");
    }
    for o in &g.outputs {
        if let Some(s) = shapes.get(o.node) {
            doc.push_str(&format!("Output `{}`: {s}.\n", o.name));
        }
    }
    doc.push_str(
        "The state_dict keys are the .res layer paths: resnetc's weights load with\n\
         `load_state_dict(safetensors.torch.load_file(...), strict=True)`.\n\"\"\"\n\n",
    );
    doc.push_str("import torch\nimport torch.nn.functional as F\nfrom torch import nn\n");
    doc
}

/// Small classes the generated code may need besides the blocks.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Helper {
    BatchNorm,
    ShortcutA,
    Sequential,
    Scale,
    Crop,
}

impl Helper {
    fn text(self) -> &'static str {
        match self {
            Helper::BatchNorm => super::pytorch_ops::BATCHNORM_PY,
            Helper::ShortcutA => super::pytorch_ops::SHORTCUT_A_PY,
            Helper::Sequential => super::pytorch_ops::SEQUENTIAL_PY,
            Helper::Scale => super::pytorch_ops::SCALE_PY,
            Helper::Crop => super::pytorch_ops::CROP_PY,
        }
    }
}

/// What a block's class looks like from a caller.
pub(super) struct ClassInfo {
    pub py: String,
    /// The constructor's channel arguments, one per tensor input.
    pub in_args: Vec<String>,
    pub params: Vec<ParamInfo>,
    /// The output's channels (features when `flat`) over the constructor's arguments.
    pub out: Option<Sym>,
    pub out_flat: bool,
    pub out_hw1: bool,
}

pub(super) struct ParamInfo {
    pub name: String,
    pub py: String,
    /// The default over the earlier parameters.
    pub default: Option<Sym>,
}

/// The file being generated.
pub(super) struct Gen<'a> {
    pub source: &'a Source,
    pub g: &'a Graph,
    pub shapes: &'a Shapes,
    pub blocks: HashMap<&'a str, &'a ast::BlockDef>,
    classes: HashMap<String, Rc<ClassInfo>>,
    in_progress: Vec<String>,
    /// Block classes in the order they were finished (a block after the blocks it uses).
    texts: Vec<String>,
    class_names: HashSet<String>,
    pub helpers: Vec<Helper>,
}

impl<'a> Gen<'a> {
    pub fn line(&self, span: Span) -> usize {
        self.source.line_col(span.start).0
    }

    pub fn need(&mut self, h: Helper) {
        if !self.helpers.contains(&h) {
            self.helpers.push(h);
        }
    }

    fn class_name(&mut self, name: &str) -> String {
        let mut camel: String = name
            .split('_')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let mut c = p.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        if camel.is_empty() || is_reserved(&camel) {
            camel.push_str("Block");
        }
        let mut unique = camel.clone();
        let mut i = 2;
        while self.class_names.contains(&unique) {
            unique = format!("{camel}{i}");
            i += 1;
        }
        self.class_names.insert(unique.clone());
        unique
    }

    /// The class of a block, generated on first use.
    pub fn class(&mut self, block: &'a ast::BlockDef) -> Res<Rc<ClassInfo>> {
        let name = block.name.name.clone();
        if let Some(c) = self.classes.get(&name) {
            return Ok(c.clone());
        }
        if self.in_progress.contains(&name) {
            return Err(ExportError(format!(
                "block `{name}` instantiates itself (at line {})",
                self.line(block.span)
            )));
        }
        self.in_progress.push(name.clone());
        let py = self.class_name(&name);
        let (text, info) = Body::block(self, block, py)?;
        self.in_progress.pop();
        self.texts.push(text);
        let info = Rc::new(info);
        self.classes.insert(name, info.clone());
        Ok(info)
    }

    fn network(&mut self, net: &'a ast::NetworkDef) -> Res<String> {
        let py = self.class_name(&net.name.name);
        Body::network(self, net, py)
    }
}

/// A tensor in `forward`: its Python expression and what `__init__` knows of its shape.
#[derive(Clone, Debug)]
pub(super) struct T {
    pub py: String,
    /// Binds as tightly as a call (`self.bn1(y)`, `y`), or looser (`y + x`).
    pub atom: bool,
    /// Channels (features when `flat`) over the constructor's arguments, when derivable.
    pub ch: Option<Sym>,
    pub flat: bool,
    /// H = W = 1 (after `global_avgpool`), so `flatten` keeps the channel count.
    pub hw1: bool,
}

impl T {
    pub fn var(py: &str, ch: Option<Sym>) -> T {
        T {
            py: py.to_string(),
            atom: true,
            ch,
            flat: false,
            hw1: false,
        }
    }

    /// The expression as an operand that must bind tightly.
    pub fn operand(&self) -> String {
        if self.atom {
            self.py.clone()
        } else {
            format!("({})", self.py)
        }
    }

    fn is_name(&self) -> bool {
        self.py
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    }
}

#[derive(Clone, Debug)]
pub(super) enum Val {
    Scalar(Sym),
    Tensor(T),
}

/// One class being generated: the lines of `__init__` and `forward`, and the names in scope.
pub(super) struct Body<'g, 'a> {
    pub ctx: &'g mut Gen<'a>,
    pub env: HashMap<String, Val>,
    pub init: Vec<String>,
    pub fwd: Vec<String>,
    /// Indentation of the next line of `__init__` / `forward` (8, plus 4 per open `if`).
    pub init_indent: usize,
    pub fwd_indent: usize,
    /// Automatic path numbers (`conv#0`) per op or block name, as lowering gives them.
    pub counters: HashMap<String, usize>,
    /// Names whose automatic numbers depend on a branch taken.
    pub diverged: HashSet<String>,
    /// Scalars `forward` reads (stored as attributes at the end of `__init__`).
    pub stored: Vec<String>,
    /// Attribute names of the submodules.
    pub modules: Vec<String>,
    /// Every name the body uses, so that temporaries never shadow one.
    pub taken: HashSet<String>,
    pub what: String,
}

/// The placeholder for a scalar attribute in `forward`, resolved once every submodule name is
/// known (a scalar attribute must not take a submodule's name).
const MARK: char = '\u{1}';

impl<'g, 'a> Body<'g, 'a> {
    fn new(ctx: &'g mut Gen<'a>, what: String, stmts: &[Stmt]) -> Self {
        let mut taken = HashSet::new();
        for s in stmts {
            collect_stmt_names(s, &mut taken);
        }
        Body {
            ctx,
            env: HashMap::new(),
            init: Vec::new(),
            fwd: Vec::new(),
            init_indent: 8,
            fwd_indent: 8,
            counters: HashMap::new(),
            diverged: HashSet::new(),
            stored: Vec::new(),
            modules: Vec::new(),
            taken,
            what,
        }
    }

    pub fn err<X>(&self, span: Span, msg: impl std::fmt::Display) -> Res<X> {
        Err(ExportError(format!(
            "{msg} (line {}, in {})",
            self.ctx.line(span),
            self.what
        )))
    }

    fn block(ctx: &'g mut Gen<'a>, b: &'a ast::BlockDef, py: String) -> Res<(String, ClassInfo)> {
        let mut body = Body::new(ctx, format!("block `{}`", b.name.name), &b.body);
        let inputs: Vec<&ast::Ident> = b
            .body
            .iter()
            .filter_map(|s| match s {
                Stmt::Input(i) => Some(&i.name),
                _ => None,
            })
            .collect();
        let mut sig = vec![Py::atom("self")];
        let mut in_args = Vec::new();
        for i in &inputs {
            let base = if inputs.len() == 1 {
                "in_channels".to_string()
            } else {
                format!("{}_channels", i.name)
            };
            let name = body.fresh(&base);
            sig.push(Py::atom(format!("{name}: int")));
            in_args.push(name);
        }
        let mut params = Vec::new();
        let mut fill = Vec::new();
        for p in &b.params {
            let py = body.local_name(&p.name.name);
            let ty = match p.ty {
                ast::Type::Int => Ty::Int,
                ast::Type::Float => Ty::Float,
                ast::Type::Bool => Ty::Bool,
            };
            let default = match &p.default {
                Some(e) => Some(body.scalar(e)?),
                None => None,
            };
            let hint = p.ty.as_str();
            match default.as_ref().map(|d| d.clone().folded()) {
                None => sig.push(Py::atom(format!("{py}: {hint}"))),
                Some(d @ (Sym::Int(_) | Sym::Float(_) | Sym::Bool(_))) => {
                    let value = d.to_py(&|n| n.to_string());
                    sig.push(Py::atom(format!("{py}: {hint} = {value}")));
                }
                Some(d) => {
                    sig.push(Py::atom(format!("{py}: {hint} | None = None")));
                    fill.push(format!("        if {py} is None:"));
                    fill.push(format!(
                        "            {py} = {}",
                        d.to_py(&|n| n.to_string())
                    ));
                }
            }
            body.env
                .insert(p.name.name.clone(), Val::Scalar(Sym::Arg(py.clone(), ty)));
            params.push(ParamInfo {
                name: p.name.name.clone(),
                py,
                default,
            });
        }
        for (i, arg) in inputs.iter().zip(&in_args) {
            let var = body.local_name(&i.name);
            let ch = Sym::Arg(arg.clone(), Ty::Int);
            body.env
                .insert(i.name.clone(), Val::Tensor(T::var(&var, Some(ch))));
        }
        let mut fwd_sig = vec![Py::atom("self")];
        fwd_sig.extend(inputs.iter().map(|i| Py::atom(body.local_name(&i.name))));
        body.init.extend(fill);
        let mut out = None;
        for s in &b.body {
            match s {
                Stmt::Input(_) => {}
                Stmt::Let(l) => body.bind(l)?,
                Stmt::Output(o) => {
                    let hint = body.fresh(o.name.as_ref().map_or("out", |n| n.name.as_str()));
                    let t = body.tensor(&o.value, Some(&hint))?;
                    body.fwd.push(format!("        return {}", t.py));
                    out = Some(t);
                }
            }
        }
        let Some(out) = out else {
            return body.err(b.span, "a block without an output");
        };
        let doc = format!("Block `{}`.", b.name.name);
        let text = body.finish(&py, &doc, sig, fwd_sig);
        Ok((
            text,
            ClassInfo {
                py,
                in_args,
                params,
                out: out.ch,
                out_flat: out.flat,
                out_hw1: out.hw1,
            },
        ))
    }

    fn network(ctx: &'g mut Gen<'a>, n: &'a ast::NetworkDef, py: String) -> Res<String> {
        let mut body = Body::new(ctx, format!("network `{}`", n.name.name), &n.body);
        let mut fwd_sig = vec![Py::atom("self")];
        let mut outputs = Vec::new();
        for s in &n.body {
            match s {
                Stmt::Input(i) => {
                    let var = body.local_name(&i.name.name);
                    let ch = match i.shape.as_ref().and_then(|d| d.get(1)) {
                        Some(ast::Dim::Int(c, _)) => Some(Sym::Int(*c as i64)),
                        _ => None,
                    };
                    fwd_sig.push(Py::atom(var.clone()));
                    body.env
                        .insert(i.name.name.clone(), Val::Tensor(T::var(&var, ch)));
                }
                Stmt::Let(l) => body.bind(l)?,
                Stmt::Output(o) => {
                    // Its own variable: a later output may read any binding.
                    let hint = body.fresh(o.name.as_ref().map_or("out", |n| n.name.as_str()));
                    let t = body.tensor(&o.value, Some(&hint))?;
                    let t = if t.is_name() {
                        t
                    } else {
                        body.assign(&hint, &t.py);
                        T::var(&hint, None)
                    };
                    outputs.push(t.py);
                }
            }
        }
        body.fwd
            .push(format!("        return {}", outputs.join(", ")));
        let doc = format!("Network `{}`.", n.name.name);
        Ok(body.finish(&py, &doc, vec![Py::atom("self")], fwd_sig))
    }

    /// The class text: signature, `__init__` lines, stored scalars, `forward`.
    fn finish(mut self, py: &str, doc: &str, sig: Vec<Py>, fwd_sig: Vec<Py>) -> String {
        let mut lines = vec![
            format!("class {py}(nn.Module):"),
            format!("    \"\"\"{doc}\"\"\""),
            String::new(),
        ];
        Py::Call("def __init__".into(), sig).layout(4, "", ":", &mut lines);
        lines.push("        super().__init__()".into());
        lines.append(&mut self.init);
        let attrs: Vec<(String, String)> = self
            .stored
            .iter()
            .map(|s| {
                let mut attr = s.clone();
                while self.modules.contains(&attr) {
                    attr.insert(0, '_');
                }
                (s.clone(), attr)
            })
            .collect();
        for (s, attr) in &attrs {
            lines.push(format!("        self.{attr} = {s}"));
        }
        lines.push(String::new());
        Py::Call("def forward".into(), fwd_sig).layout(4, "", ":", &mut lines);
        for l in &self.fwd {
            let mut l = l.clone();
            for (s, attr) in &attrs {
                l = l.replace(&format!("{MARK}{s}{MARK}"), &format!("self.{attr}"));
            }
            lines.extend(super::pytorch_py::wrap_line(&l));
        }
        lines.join("\n") + "\n"
    }

    /// A Python local name for a `.res` name (keywords and the module's own names get `_`).
    pub fn local_name(&self, name: &str) -> String {
        if is_reserved(name) || ["self", "torch", "nn", "F", "super"].contains(&name) {
            format!("{name}_")
        } else {
            name.to_string()
        }
    }

    /// A name that no binding of the body uses.
    pub fn fresh(&mut self, base: &str) -> String {
        let base = self.local_name(base);
        let mut name = base.clone();
        let mut i = 1;
        while self.taken.contains(&name) {
            name = format!("{base}{i}");
            i += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    pub fn assign(&mut self, var: &str, py: &str) {
        if var != py {
            self.fwd
                .push(format!("{}{var} = {py}", " ".repeat(self.fwd_indent)));
        }
    }

    /// How `forward` spells a scalar of `__init__` (an attribute stored at its end).
    pub fn fwd_scalar(&mut self, s: &Sym) -> String {
        let mut names = Vec::new();
        s.names(&mut names);
        for n in names {
            if !self.stored.contains(&n) {
                self.stored.push(n);
            }
        }
        s.to_py(&|n| format!("{MARK}{n}{MARK}"))
    }

    fn bind(&mut self, l: &'a ast::LetStmt) -> Res<()> {
        if self.is_tensor(&l.value) {
            let var = self.local_name(&l.name.name);
            // Pipelines and conditionals work in `var` unless they read its old value.
            let t = self.tensor(&l.value, Some(&var))?;
            self.assign(&var, &t.py);
            let t = T {
                py: var,
                atom: true,
                ..t
            };
            self.env.insert(l.name.name.clone(), Val::Tensor(t));
        } else {
            let s = self.scalar(&l.value)?;
            let s = match s {
                s @ (Sym::Int(_) | Sym::Float(_) | Sym::Bool(_) | Sym::Arg(..)) => s,
                s => {
                    let var = self.fresh(&l.name.name);
                    self.init.push(format!(
                        "{}{var} = {}",
                        " ".repeat(self.init_indent),
                        s.to_py(&|n| n.to_string())
                    ));
                    Sym::Local(var, Box::new(s))
                }
            };
            self.env.insert(l.name.name.clone(), Val::Scalar(s));
        }
        Ok(())
    }

    /// Whether an expression is a tensor (as lowering would find when it evaluates it).
    pub fn is_tensor(&self, e: &ast::Expr) -> bool {
        match &e.kind {
            ExprKind::Name(n) => matches!(self.env.get(n), Some(Val::Tensor(_))),
            ExprKind::Call(c) => !is_size_query(&c.name.name),
            ExprKind::Pipe { head, .. } => self.is_tensor(head),
            ExprKind::Chain { first, rest } => {
                self.is_tensor(first) || rest.iter().any(|(_, _, e)| self.is_tensor(e))
            }
            ExprKind::If { then, .. } => self.is_tensor(then),
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Bool(_)
            | ExprKind::Unary { .. }
            | ExprKind::List(_) => false,
        }
    }

    /// A scalar expression of `__init__`.
    pub fn scalar(&self, e: &ast::Expr) -> Res<Sym> {
        Ok(match &e.kind {
            ExprKind::Int(v) => match i64::try_from(*v) {
                Ok(v) => Sym::Int(v),
                Err(_) => return self.err(e.span, "an integer too large for a PyTorch export"),
            },
            ExprKind::Float(v) => Sym::Float(*v),
            ExprKind::Bool(v) => Sym::Bool(*v),
            ExprKind::Name(n) => match self.env.get(n) {
                Some(Val::Scalar(s)) => s.clone(),
                Some(Val::Tensor(_)) => {
                    return self.err(e.span, format!("`{n}` is a tensor, not a number"));
                }
                None => return self.err(e.span, format!("`{n}` is not bound")),
            },
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => Sym::If(
                Box::new(self.scalar(cond)?),
                Box::new(self.scalar(then)?),
                Box::new(self.scalar(otherwise)?),
            )
            .folded(),
            ExprKind::Unary { ops, operand } => {
                let mut s = self.scalar(operand)?;
                for op in ops.iter().rev() {
                    s = match op {
                        UnOp::Neg => Sym::Neg(Box::new(s)),
                        UnOp::Not => Sym::Not(Box::new(s)),
                    }
                    .folded();
                }
                s
            }
            ExprKind::Chain { first, rest } => {
                let mut s = self.scalar(first)?;
                for (op, _, e) in rest {
                    s = Sym::bin(s, *op, self.scalar(e)?);
                }
                s
            }
            ExprKind::Call(c) if is_size_query(&c.name.name) => self.size_query(c)?,
            ExprKind::Call(_) | ExprKind::Pipe { .. } => {
                return self.err(e.span, "a tensor where a number is expected");
            }
            // Lists are op arguments (`[h, w]`), read element by element where one is taken.
            ExprKind::List(_) => {
                return self.err(e.span, "a list where a number is expected");
            }
        })
    }

    /// `channels(x)`: the channel count `__init__` knows for `x` (a constructor argument such
    /// as `in_channels`, or an expression over them). `height(x)` and `width(x)` have no
    /// constructor-time value in a module, which takes any image size.
    fn size_query(&self, c: &ast::Call) -> Res<Sym> {
        let name = c.name.name.as_str();
        let [arg] = &c.args[..] else {
            return self.err(c.span, format!("`{name}` takes one tensor"));
        };
        if name != "channels" {
            return self.err(
                c.span,
                format!("`{name}(...)` has no PyTorch form: a module's layers cannot depend on the image size"),
            );
        }
        let t = match &arg.value.kind {
            ExprKind::Name(n) => match self.env.get(n) {
                Some(Val::Tensor(t)) => t.clone(),
                _ => return self.err(arg.span, format!("`{n}` is not a tensor")),
            },
            _ => {
                return self.err(
                    arg.span,
                    "`channels` of an expression; bind it to a name first",
                );
            }
        };
        match t.ch {
            Some(ch) if !t.flat => Ok(ch),
            _ => self.err(
                c.span,
                "the channel count of this tensor is not known to `__init__`",
            ),
        }
    }

    /// A tensor expression: lines of `forward` (and modules of `__init__`) that compute it.
    /// `hint` names the variable that pipelines and conditionals work in.
    pub fn tensor(&mut self, e: &'a ast::Expr, hint: Option<&str>) -> Res<T> {
        match &e.kind {
            ExprKind::Name(n) => match self.env.get(n) {
                Some(Val::Tensor(t)) => Ok(t.clone()),
                _ => self.err(e.span, format!("`{n}` is not a tensor")),
            },
            ExprKind::Call(c) => self.call(c, None, None, None),
            ExprKind::Pipe { head, stages } => {
                let mut cur = self.tensor(head, None)?;
                let work = match hint {
                    Some(h) if !stages.iter().any(|s| stage_mentions(s, h)) => h.to_string(),
                    _ => self.fresh(hint.unwrap_or("x")),
                };
                for st in stages {
                    if !cur.atom || !cur.is_name() && cur.py.contains('(') {
                        self.assign(&work, &cur.py);
                        cur = T {
                            py: work.clone(),
                            atom: true,
                            ..cur
                        };
                    }
                    cur = self.stage(st, cur)?;
                }
                Ok(cur)
            }
            ExprKind::Chain { first, rest } => {
                // A tensor times a number is `scale` (`0.2 * y`); numbers combine as numbers.
                let mut acc = self.operand(first)?;
                for (op, sp, e) in rest {
                    let b = self.operand(e)?;
                    acc = match (acc, b) {
                        (Ok(a), Ok(b)) => Ok(self.binary(*op, *sp, a, b)?),
                        (Ok(t), Err(f)) if *op == BinOp::Mul => {
                            let f = self.fwd_scalar(&f.folded());
                            Ok(T {
                                py: format!("{} * {f}", t.operand()),
                                atom: false,
                                ..t
                            })
                        }
                        (Err(f), Ok(t)) if *op == BinOp::Mul => {
                            let f = self.fwd_scalar(&f.folded());
                            Ok(T {
                                py: format!("{f} * {}", t.operand()),
                                atom: false,
                                ..t
                            })
                        }
                        (Err(a), Err(b)) => Err(Sym::bin(a, *op, b)),
                        _ => {
                            return self
                                .err(*sp, format!("`{}` of a tensor and a number", op.as_str()));
                        }
                    };
                }
                match acc {
                    Ok(t) => Ok(t),
                    Err(_) => self.err(e.span, "a number where a tensor is expected"),
                }
            }
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => self.conditional(cond, then, otherwise, hint),
            _ => self.err(e.span, "a number where a tensor is expected"),
        }
    }

    pub fn binary(&mut self, op: BinOp, sp: Span, a: T, b: T) -> Res<T> {
        let (sym, paren_right) = match op {
            BinOp::Add => ("+", !b.atom),
            BinOp::Mul => ("*", true),
            _ => return self.err(sp, format!("`{}` on tensors", op.as_str())),
        };
        let left = if op == BinOp::Mul {
            a.operand()
        } else {
            a.py.clone()
        };
        let right = if paren_right {
            b.operand()
        } else {
            b.py.clone()
        };
        Ok(T {
            py: format!("{left} {sym} {right}"),
            atom: false,
            ..a
        })
    }

    /// An operand of a chain: a tensor, or a number (`Err`).
    fn operand(&mut self, e: &'a ast::Expr) -> Res<Result<T, Sym>> {
        if self.is_tensor(e) {
            Ok(Ok(self.tensor(e, None)?))
        } else {
            Ok(Err(self.scalar(e)?))
        }
    }

    /// `if c { a } else { b }` on tensors: a Python `if` in `__init__` (for the modules of
    /// each branch) and in `forward`, or only the branch taken when `c` is constant.
    fn conditional(
        &mut self,
        cond: &'a ast::Expr,
        then: &'a ast::Expr,
        otherwise: &'a ast::Expr,
        hint: Option<&str>,
    ) -> Res<T> {
        let c = self.scalar(cond)?.folded();
        match c.as_bool() {
            Some(true) => return self.tensor(then, hint),
            Some(false) => return self.tensor(otherwise, hint),
            None => {}
        }
        let var = match hint {
            Some(h) if !mentions(then, h) && !mentions(otherwise, h) => h.to_string(),
            _ => self.fresh(hint.unwrap_or("x")),
        };
        let init_cond = c.to_py(&|n| n.to_string());
        let fwd_cond = self.fwd_scalar(&c);
        let counters = self.counters.clone();
        let (init_a, fwd_a, ta, counters_a) = self.branch(then, &var)?;
        self.counters = counters;
        let (init_b, fwd_b, tb, counters_b) = self.branch(otherwise, &var)?;
        for (k, v) in &counters_a {
            if counters_b.get(k) != Some(v) {
                self.diverged.insert(k.clone());
            }
        }
        for (k, v) in &counters_b {
            let merged = self.counters.entry(k.clone()).or_insert(0);
            *merged = (*merged)
                .max(*v)
                .max(counters_a.get(k).copied().unwrap_or(0));
        }
        let pad = " ".repeat(self.init_indent);
        match (init_a.is_empty(), init_b.is_empty()) {
            (true, true) => {}
            (false, true) => {
                self.init.push(format!("{pad}if {init_cond}:"));
                self.init.extend(init_a);
            }
            (true, false) => {
                let not = Sym::Not(Box::new(c.clone())).to_py(&|n| n.to_string());
                self.init.push(format!("{pad}if {not}:"));
                self.init.extend(init_b);
            }
            (false, false) => {
                self.init.push(format!("{pad}if {init_cond}:"));
                self.init.extend(init_a);
                self.init.push(format!("{pad}else:"));
                self.init.extend(init_b);
            }
        }
        let pad = " ".repeat(self.fwd_indent);
        self.fwd.push(format!("{pad}if {fwd_cond}:"));
        self.fwd.extend(fwd_a);
        self.fwd.push(format!("{pad}else:"));
        self.fwd.extend(fwd_b);
        let ch = match (ta.ch, tb.ch) {
            (Some(a), Some(b)) => Some(Sym::If(Box::new(c), Box::new(a), Box::new(b)).folded()),
            _ => None,
        };
        Ok(T {
            py: var,
            atom: true,
            ch,
            flat: ta.flat,
            hw1: ta.hw1 && tb.hw1,
        })
    }

    /// One branch of a conditional, indented one level, assigning its value to `var`.
    #[allow(clippy::type_complexity)]
    fn branch(
        &mut self,
        e: &'a ast::Expr,
        var: &str,
    ) -> Res<(Vec<String>, Vec<String>, T, HashMap<String, usize>)> {
        let (init, fwd) = (
            std::mem::take(&mut self.init),
            std::mem::take(&mut self.fwd),
        );
        self.init_indent += 4;
        self.fwd_indent += 4;
        let t = self.tensor(e, Some(var));
        if let Ok(t) = &t {
            self.assign(var, &t.py);
        }
        self.init_indent -= 4;
        self.fwd_indent -= 4;
        let branch_init = std::mem::replace(&mut self.init, init);
        let branch_fwd = std::mem::replace(&mut self.fwd, fwd);
        let t = t?;
        let branch_fwd = if branch_fwd.is_empty() {
            vec![format!("{}    pass", " ".repeat(self.fwd_indent))]
        } else {
            branch_fwd
        };
        Ok((branch_init, branch_fwd, t, self.counters.clone()))
    }

    /// The next automatic path segment for an unlabelled op or block (`conv#0`).
    pub fn auto_segment(&mut self, name: &str, span: Span) -> Res<String> {
        if self.diverged.contains(name) {
            return self.err(
                span,
                format!(
                    "the automatic name of this unlabelled `{name}` depends on a branch taken; label it"
                ),
            );
        }
        let n = self.counters.entry(name.to_string()).or_insert(0);
        let seg = format!("{name}#{n}");
        *n += 1;
        Ok(seg)
    }
}

/// Python keywords and the attributes of `nn.Module` that a submodule must not take.
pub(super) fn is_reserved(name: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
        "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
        "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return",
        "try", "while", "with", "yield", "match", "case", "type",
    ];
    KEYWORDS.contains(&name)
}

/// Whether `name` is read anywhere in `e`.
pub(super) fn mentions(e: &ast::Expr, name: &str) -> bool {
    match &e.kind {
        ExprKind::Name(n) => n == name,
        ExprKind::Call(c) => c.args.iter().any(|a| mentions(&a.value, name)),
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => mentions(cond, name) || mentions(then, name) || mentions(otherwise, name),
        ExprKind::Unary { operand, .. } => mentions(operand, name),
        ExprKind::Chain { first, rest } => {
            mentions(first, name) || rest.iter().any(|(_, _, e)| mentions(e, name))
        }
        ExprKind::Pipe { head, stages } => {
            mentions(head, name) || stages.iter().any(|s| stage_mentions(s, name))
        }
        ExprKind::List(items) => items.iter().any(|e| mentions(e, name)),
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) => false,
    }
}

fn stage_mentions(s: &ast::Stage, name: &str) -> bool {
    fn func(f: &ast::StageFn, name: &str) -> bool {
        match f {
            ast::StageFn::Call(c) => c.args.iter().any(|a| mentions(&a.value, name)),
            ast::StageFn::Seq(items, _) => items.iter().any(|i| {
                func(&i.func, name) || i.repeat.iter().chain(&i.when).any(|r| mentions(r, name))
            }),
            ast::StageFn::Paren(e) => mentions(e, name),
            ast::StageFn::Name(_) | ast::StageFn::Int(..) | ast::StageFn::Float(..) => false,
        }
    }
    func(&s.func, name)
}

fn collect_stmt_names(s: &Stmt, out: &mut HashSet<String>) {
    let mut labels = |e: &ast::Expr| collect_labels(e, out);
    match s {
        Stmt::Let(l) => labels(&l.value),
        Stmt::Output(o) => labels(&o.value),
        Stmt::Input(_) => {}
    }
    match s {
        Stmt::Input(i) => {
            out.insert(i.name.name.clone());
        }
        Stmt::Let(l) => {
            out.insert(l.name.name.clone());
        }
        // An output's name is not a binding: it names the output's own variable.
        Stmt::Output(_) => {}
    }
}

/// Stage labels, which name submodules.
fn collect_labels(e: &ast::Expr, out: &mut HashSet<String>) {
    match &e.kind {
        ExprKind::Call(c) => c.args.iter().for_each(|a| collect_labels(&a.value, out)),
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            collect_labels(cond, out);
            collect_labels(then, out);
            collect_labels(otherwise, out);
        }
        ExprKind::Unary { operand, .. } => collect_labels(operand, out),
        ExprKind::Chain { first, rest } => {
            collect_labels(first, out);
            rest.iter().for_each(|(_, _, e)| collect_labels(e, out));
        }
        ExprKind::Pipe { head, stages } => {
            collect_labels(head, out);
            for s in stages {
                if let Some(l) = &s.label {
                    out.insert(l.name.clone());
                }
                if let ast::StageFn::Call(c) = &s.func {
                    c.args.iter().for_each(|a| collect_labels(&a.value, out));
                }
            }
        }
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Name(_)
        | ExprKind::List(_) => {}
    }
}

/// The channels of the input of the layers made by the call at `span`, when every instance
/// agrees (the facts the source leaves open, e.g. after a `flatten`).
/// `channels`, `height`, `width`: calls that read a size, not ops.
fn is_size_query(name: &str) -> bool {
    matches!(name, "channels" | "height" | "width")
}

pub(super) fn instance_channels(g: &Graph, shapes: &Shapes, span: Span) -> Option<i64> {
    let mut found = None;
    for id in g.node_ids() {
        let node = g.node(id);
        if node.span.end != span.end || !node.op.has_params() {
            continue;
        }
        let input = shapes.get(g.first_operand(id)?)?;
        // Channels of an NCHW input, features of an [N, F] one: axis 1 either way.
        let Dim::Known(c) = input.dim(1) else {
            return None;
        };
        let c = i64::try_from(*c).ok()?;
        match found {
            None => found = Some(c),
            Some(f) if f != c => return None,
            Some(_) => {}
        }
    }
    found
}
