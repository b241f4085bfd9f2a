//! The Python side of the PyTorch exporter: scalar expressions over a block's parameters
//! ([`Sym`], folded and substituted symbolically so that channel counts read `planes * 4`),
//! and call expressions ([`Py`]) laid out as `black --line-length 100` lays them out.
//!
//! Nothing here knows the `.res` AST or the graph: the exporter builds these values.

use crate::syntax::ast::BinOp;

/// The widest line the exporter writes (black's `--line-length 100`).
pub const LINE: usize = 100;

/// The static type of a scalar.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    Int,
    Float,
    Bool,
}

/// A scalar expression of a class's `__init__`: literals, the constructor's arguments and
/// locals, and operations on them. `.res` semantics (integer `/` truncates toward zero).
#[derive(Clone, Debug, PartialEq)]
pub enum Sym {
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A constructor argument (a block parameter or an input's channel count).
    Arg(String, Ty),
    /// A local of `__init__` with its definition (over arguments), which replaces it where the
    /// local is out of scope (in the caller of a block).
    Local(String, Box<Sym>),
    Bin(Box<Sym>, BinOp, Box<Sym>),
    Neg(Box<Sym>),
    Not(Box<Sym>),
    If(Box<Sym>, Box<Sym>, Box<Sym>),
}

impl Sym {
    pub fn ty(&self) -> Ty {
        match self {
            Sym::Int(_) => Ty::Int,
            Sym::Float(_) => Ty::Float,
            Sym::Bool(_) | Sym::Not(_) => Ty::Bool,
            Sym::Arg(_, t) => *t,
            Sym::Local(_, d) | Sym::Neg(d) => d.ty(),
            Sym::If(_, a, _) => a.ty(),
            Sym::Bin(a, op, b) => match op {
                BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                    if a.ty() == Ty::Float || b.ty() == Ty::Float {
                        Ty::Float
                    } else {
                        Ty::Int
                    }
                }
                _ => Ty::Bool,
            },
        }
    }

    pub fn bin(a: Sym, op: BinOp, b: Sym) -> Sym {
        Sym::Bin(Box::new(a), op, Box::new(b)).folded()
    }

    /// The integer value, when the expression is constant.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Sym::Int(v) => Some(*v),
            Sym::Local(_, d) => d.as_int(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Sym::Bool(v) => Some(*v),
            Sym::Local(_, d) => d.as_bool(),
            _ => None,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Sym::Int(v) => Some(*v as f64),
            Sym::Float(v) => Some(*v),
            Sym::Local(_, d) => d.as_f64(),
            _ => None,
        }
    }

    /// Fold constant operations (as the lowering evaluates them); keep the rest symbolic.
    pub fn folded(self) -> Sym {
        match self {
            Sym::Bin(a, op, b) => {
                let (a, b) = (a.folded(), b.folded());
                fold_bin(&a, op, &b).unwrap_or_else(|| Sym::Bin(Box::new(a), op, Box::new(b)))
            }
            Sym::Neg(a) => match a.folded() {
                Sym::Int(v) => v
                    .checked_neg()
                    .map_or(Sym::Neg(Box::new(Sym::Int(v))), Sym::Int),
                Sym::Float(v) => Sym::Float(-v),
                a => Sym::Neg(Box::new(a)),
            },
            Sym::Not(a) => match a.folded() {
                Sym::Bool(v) => Sym::Bool(!v),
                a => Sym::Not(Box::new(a)),
            },
            Sym::If(c, a, b) => {
                let (c, a, b) = (c.folded(), a.folded(), b.folded());
                match c.as_bool() {
                    Some(true) => a,
                    Some(false) => b,
                    None if a == b => a,
                    None => Sym::If(Box::new(c), Box::new(a), Box::new(b)),
                }
            }
            Sym::Local(n, d) => match d.folded() {
                d @ (Sym::Int(_) | Sym::Float(_) | Sym::Bool(_)) => d,
                d => Sym::Local(n, Box::new(d)),
            },
            s => s,
        }
    }

    /// Replace arguments by the caller's values and locals by their definitions: the
    /// expression as the caller of a block sees it.
    pub fn subst(&self, args: &[(String, Sym)]) -> Sym {
        let s = match self {
            Sym::Arg(n, _) => match args.iter().find(|(m, _)| m == n) {
                Some((_, v)) => v.clone(),
                None => self.clone(),
            },
            Sym::Local(_, d) => d.subst(args),
            Sym::Bin(a, op, b) => Sym::Bin(Box::new(a.subst(args)), *op, Box::new(b.subst(args))),
            Sym::Neg(a) => Sym::Neg(Box::new(a.subst(args))),
            Sym::Not(a) => Sym::Not(Box::new(a.subst(args))),
            Sym::If(c, a, b) => Sym::If(
                Box::new(c.subst(args)),
                Box::new(a.subst(args)),
                Box::new(b.subst(args)),
            ),
            s => s.clone(),
        };
        s.folded()
    }

    /// The arguments and locals the expression reads.
    pub fn names(&self, out: &mut Vec<String>) {
        match self {
            Sym::Arg(n, _) | Sym::Local(n, _) => {
                if !out.contains(n) {
                    out.push(n.clone());
                }
            }
            Sym::Bin(a, _, b) => {
                a.names(out);
                b.names(out);
            }
            Sym::Neg(a) | Sym::Not(a) => a.names(out),
            Sym::If(c, a, b) => {
                c.names(out);
                a.names(out);
                b.names(out);
            }
            Sym::Int(_) | Sym::Float(_) | Sym::Bool(_) => {}
        }
    }

    /// Python source; `name` spells each argument or local (`planes`, or `self.planes` in
    /// `forward`).
    pub fn to_py(&self, name: &dyn Fn(&str) -> String) -> String {
        self.py(name).0
    }

    /// The text and its precedence (higher binds tighter).
    fn py(&self, name: &dyn Fn(&str) -> String) -> (String, u8) {
        const ATOM: u8 = 10;
        match self {
            Sym::Int(v) if *v < 0 => (v.to_string(), 7),
            Sym::Int(v) => (v.to_string(), ATOM),
            Sym::Float(v) => (float(*v), if *v < 0.0 { 7 } else { ATOM }),
            Sym::Bool(true) => ("True".into(), ATOM),
            Sym::Bool(false) => ("False".into(), ATOM),
            Sym::Arg(n, _) | Sym::Local(n, _) => (name(n), ATOM),
            Sym::Neg(a) => (format!("-{}", paren(a.py(name), 7)), 7),
            Sym::Not(a) => (format!("not {}", paren(a.py(name), 3)), 3),
            Sym::If(c, a, b) => (
                format!(
                    "{} if {} else {}",
                    paren(a.py(name), 1),
                    paren(c.py(name), 1),
                    paren(b.py(name), 0)
                ),
                0,
            ),
            Sym::Bin(a, op, b) => {
                let int_div = *op == BinOp::Div && self.ty() == Ty::Int;
                let (text, prec) = match op {
                    BinOp::Or => ("or", 1),
                    BinOp::And => ("and", 2),
                    BinOp::Eq => ("==", 4),
                    BinOp::Ne => ("!=", 4),
                    BinOp::Lt => ("<", 4),
                    BinOp::Le => ("<=", 4),
                    BinOp::Gt => (">", 4),
                    BinOp::Ge => (">=", 4),
                    BinOp::Add => ("+", 5),
                    BinOp::Sub => ("-", 5),
                    BinOp::Mul => ("*", 6),
                    BinOp::Div if int_div => ("//", 6),
                    BinOp::Div => ("/", 6),
                    BinOp::Rem => ("%", 6),
                };
                // Comparisons do not chain as in Python: parenthesize a nested one.
                let left = if prec == 4 { prec + 1 } else { prec };
                let right = prec + 1;
                (
                    format!(
                        "{} {text} {}",
                        paren(a.py(name), left),
                        paren(b.py(name), right)
                    ),
                    prec,
                )
            }
        }
    }
}

fn paren((text, prec): (String, u8), min: u8) -> String {
    if prec < min {
        format!("({text})")
    } else {
        text
    }
}

/// A float as Python writes it (`0.1`, `1e-05`, `2.0`).
pub fn float(v: f64) -> String {
    if v.is_finite() && v == v.trunc() && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v:?}")
    }
}

fn fold_bin(a: &Sym, op: BinOp, b: &Sym) -> Option<Sym> {
    if let (Some(x), Some(y)) = (a.as_int(), b.as_int()) {
        return Some(match op {
            BinOp::Add => Sym::Int(x.checked_add(y)?),
            BinOp::Sub => Sym::Int(x.checked_sub(y)?),
            BinOp::Mul => Sym::Int(x.checked_mul(y)?),
            // Rust's `/` and `%` truncate toward zero, as the language does.
            BinOp::Div => Sym::Int(x.checked_div(y)?),
            BinOp::Rem => Sym::Int(x.checked_rem(y)?),
            BinOp::Eq => Sym::Bool(x == y),
            BinOp::Ne => Sym::Bool(x != y),
            BinOp::Lt => Sym::Bool(x < y),
            BinOp::Le => Sym::Bool(x <= y),
            BinOp::Gt => Sym::Bool(x > y),
            BinOp::Ge => Sym::Bool(x >= y),
            BinOp::And | BinOp::Or => return None,
        });
    }
    if let (Some(x), Some(y)) = (a.as_bool(), b.as_bool()) {
        return match op {
            BinOp::And => Some(Sym::Bool(x && y)),
            BinOp::Or => Some(Sym::Bool(x || y)),
            BinOp::Eq => Some(Sym::Bool(x == y)),
            BinOp::Ne => Some(Sym::Bool(x != y)),
            _ => None,
        };
    }
    let (x, y) = (a.as_f64()?, b.as_f64()?);
    let v = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        BinOp::Rem => x % y,
        BinOp::Eq => return Some(Sym::Bool(x == y)),
        BinOp::Ne => return Some(Sym::Bool(x != y)),
        BinOp::Lt => return Some(Sym::Bool(x < y)),
        BinOp::Le => return Some(Sym::Bool(x <= y)),
        BinOp::Gt => return Some(Sym::Bool(x > y)),
        BinOp::Ge => return Some(Sym::Bool(x >= y)),
        BinOp::And | BinOp::Or => return None,
    };
    v.is_finite().then_some(Sym::Float(v))
}

/// A Python expression as far as layout needs it: calls are split the way black splits them.
#[derive(Clone, Debug, PartialEq)]
pub enum Py {
    Atom(String),
    /// `func(args)`.
    Call(String, Vec<Py>),
    /// `name=value`.
    Kw(String, Box<Py>),
    /// `*[elt for var in range(count)]`.
    Repeat(Box<Py>, String, String),
}

impl Py {
    pub fn atom(s: impl Into<String>) -> Py {
        Py::Atom(s.into())
    }

    pub fn kw(name: &str, value: impl Into<String>) -> Py {
        Py::Kw(name.to_string(), Box::new(Py::Atom(value.into())))
    }

    /// The expression on one line.
    pub fn flat(&self) -> String {
        match self {
            Py::Atom(s) => s.clone(),
            Py::Call(f, args) => format!(
                "{f}({})",
                args.iter().map(Py::flat).collect::<Vec<_>>().join(", ")
            ),
            Py::Kw(n, v) => format!("{n}={}", v.flat()),
            Py::Repeat(e, var, n) => format!("*[{} for {var} in range({n})]", e.flat()),
        }
    }

    /// Lines of `prefix + self + suffix` at `indent` spaces, split as black would when the
    /// line is too long: the arguments on one indented line if they fit, else one per line
    /// with a trailing comma (none after a `*` unpacking, which black leaves bare).
    pub fn layout(&self, indent: usize, prefix: &str, suffix: &str, out: &mut Vec<String>) {
        let pad = " ".repeat(indent);
        let flat = format!("{pad}{prefix}{}{suffix}", self.flat());
        if flat.chars().count() <= LINE {
            out.push(flat);
            return;
        }
        match self {
            Py::Call(f, args) if !args.is_empty() => {
                out.push(format!("{pad}{prefix}{f}("));
                let inner = " ".repeat(indent + 4);
                let joined = args.iter().map(Py::flat).collect::<Vec<_>>().join(", ");
                if inner.len() + joined.chars().count() <= LINE {
                    out.push(format!("{inner}{joined}"));
                } else {
                    let star_last = matches!(args.last(), Some(Py::Repeat(..)));
                    for (i, a) in args.iter().enumerate() {
                        let comma = if i + 1 == args.len() && star_last {
                            ""
                        } else {
                            ","
                        };
                        a.layout(indent + 4, "", comma, out);
                    }
                }
                out.push(format!("{pad}){suffix}"));
            }
            Py::Kw(n, v) => v.layout(indent, &format!("{prefix}{n}="), suffix, out),
            Py::Repeat(e, var, n) => {
                out.push(format!("{pad}{prefix}*["));
                e.layout(indent + 4, "", "", out);
                out.push(format!("{pad}    for {var} in range({n})"));
                out.push(format!("{pad}]{suffix}"));
            }
            _ => out.push(flat),
        }
    }
}

/// A line of `forward` as black lays it out: too long, an assignment or `return` of one call
/// (`y = F.avg_pool2d(y, kernel_size=(3, 1), ...)`) is split at the call's top-level commas;
/// any other line stays as it is.
pub fn wrap_line(line: &str) -> Vec<String> {
    if line.chars().count() <= LINE {
        return vec![line.to_string()];
    }
    let indent = line.len() - line.trim_start().len();
    let rest = line.trim_start();
    let (prefix, call) = match rest.strip_prefix("return ") {
        Some(call) => ("return ".to_string(), call),
        None => match rest.split_once(" = ") {
            Some((lhs, call)) if lhs.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                (format!("{lhs} = "), call)
            }
            _ => return vec![line.to_string()],
        },
    };
    let Some(open) = call.find('(') else {
        return vec![line.to_string()];
    };
    let callee = &call[..open];
    let dotted = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    if callee.is_empty() || !callee.chars().all(dotted) || !call.ends_with(')') {
        return vec![line.to_string()];
    }
    let inner = &call[open + 1..call.len() - 1];
    let (mut args, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                args.push(Py::atom(inner[start..i].trim()));
                start = i + 1;
            }
            _ => {}
        }
        // The opening parenthesis closes before the end: not one call (`f(a) + g(b)`).
        if depth < 0 {
            return vec![line.to_string()];
        }
    }
    args.push(Py::atom(inner[start..].trim()));
    let mut out = Vec::new();
    Py::Call(callee.to_string(), args).layout(indent, &prefix, "", &mut out);
    out
}
