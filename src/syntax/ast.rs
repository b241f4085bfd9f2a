//! The abstract syntax tree of a `.res` file: owned structs named after the grammar rules, a
//! span on every node.
//!
//! Operator chains (`a + b - c`, pipelines, `not not x`) are kept flat rather than nested, so
//! that a long chain cannot make later recursive passes overflow the stack.

use crate::span::Span;

#[derive(Clone, Debug, Default)]
pub struct File {
    pub blocks: Vec<BlockDef>,
    pub networks: Vec<NetworkDef>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct BlockDef {
    pub name: Ident,
    pub params: Vec<Param>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct NetworkDef {
    pub name: Ident,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Type {
    Int,
    Bool,
    Float,
}

impl Type {
    pub fn as_str(self) -> &'static str {
        match self {
            Type::Int => "int",
            Type::Bool => "bool",
            Type::Float => "float",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Param {
    pub name: Ident,
    pub ty: Type,
    pub default: Option<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum Stmt {
    Input(InputStmt),
    Output(OutputStmt),
    Let(LetStmt),
}

#[derive(Clone, Debug)]
pub struct InputStmt {
    pub name: Ident,
    pub shape: Option<Vec<Dim>>,
    pub span: Span,
}

/// A dimension in an input shape: `224` or a symbol such as `N`.
#[derive(Clone, Debug)]
pub enum Dim {
    Int(u64, Span),
    Sym(Ident),
}

#[derive(Clone, Debug)]
pub struct OutputStmt {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct LetStmt {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "and",
            BinOp::Or => "or",
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Int(u64),
    Float(f64),
    Bool(bool),
    Name(String),
    Call(Call),
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    /// `op op operand`, applied right to left.
    Unary {
        ops: Vec<UnOp>,
        operand: Box<Expr>,
    },
    /// `first op e1 op e2 ...` of one precedence level, evaluated left to right.
    Chain {
        first: Box<Expr>,
        rest: Vec<(BinOp, Span, Expr)>,
    },
    /// `head -> stage -> stage ...`.
    Pipe {
        head: Box<Expr>,
        stages: Vec<Stage>,
    },
}

#[derive(Clone, Debug)]
pub struct Call {
    pub name: Ident,
    pub args: Vec<Arg>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

/// One step of a pipeline: `conv1: conv(64, k: 7)`.
#[derive(Clone, Debug)]
pub struct Stage {
    pub label: Option<Ident>,
    pub func: StageFn,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum StageFn {
    Call(Call),
    Name(Ident),
    Seq(Vec<SeqItem>, Span),
    /// An integer after `->`: only meaningful as stated channels, `conv(4 -> 3)`.
    Int(u64, Span),
    Float(f64, Span),
    /// A parenthesized expression after `->`: only meaningful as stated channels,
    /// `conv(c -> (c * 2))`.
    Paren(Box<Expr>),
}

impl StageFn {
    pub fn span(&self) -> Span {
        match self {
            StageFn::Call(c) => c.span,
            StageFn::Name(n) => n.span,
            StageFn::Seq(_, s) | StageFn::Int(_, s) | StageFn::Float(_, s) => *s,
            StageFn::Paren(e) => e.span,
        }
    }
}

/// An item of a sequence, `basic(64) * 2`, maybe labelled: `denselayer{i}: dense(32) * 6`.
#[derive(Clone, Debug)]
pub struct SeqItem {
    /// The label, with `{i}` (if any) still in it: lowering numbers the copies.
    pub label: Option<Ident>,
    pub func: StageFn,
    pub repeat: Option<Expr>,
    pub span: Span,
}
