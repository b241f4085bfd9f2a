//! Where things are in the source: the op and block calls, sequence repetitions and input
//! declarations of the AST, found by the spans the graph's nodes and scopes carry, with the
//! block each one is written in (whose parameters a fix may use).

use crate::span::Span;
use crate::syntax::ast::{self, Expr, ExprKind, StageFn, Stmt};
use std::collections::HashMap;

/// A call as written: `conv1: conv(planes, k: 3)` (a stage with a label), `conv(...)`, or a
/// bare name such as `flatten`.
#[derive(Copy, Clone, Debug)]
pub struct Site<'a> {
    /// The call, when written with parentheses.
    pub call: Option<&'a ast::Call>,
    pub name: &'a str,
    /// The op or block name alone, where text may be inserted before it.
    pub name_span: Span,
    /// The whole call (without a label).
    pub span: Span,
    /// The block whose body holds it.
    pub block: Option<&'a ast::BlockDef>,
}

/// A repeated sequence item, `basic(64) * 3`.
#[derive(Copy, Clone, Debug)]
pub struct Repeat<'a> {
    pub item: &'a ast::SeqItem,
    pub count: &'a Expr,
}

#[derive(Default)]
pub struct Index<'a> {
    /// By the span of the call and of its stage (with the label).
    pub sites: HashMap<Span, Site<'a>>,
    pub repeats: Vec<Repeat<'a>>,
    pub inputs: Vec<&'a ast::InputStmt>,
    pub blocks: HashMap<&'a str, &'a ast::BlockDef>,
}

impl<'a> Index<'a> {
    pub fn new(file: &'a ast::File) -> Index<'a> {
        let mut ix = Index::default();
        for b in &file.blocks {
            ix.blocks.entry(b.name.name.as_str()).or_insert(b);
            ix.stmts(&b.body, Some(b));
        }
        for n in &file.networks {
            ix.stmts(&n.body, None);
        }
        ix
    }

    /// The call site a node or scope span names.
    pub fn site(&self, span: Span) -> Option<Site<'a>> {
        self.sites.get(&span).copied()
    }

    fn stmts(&mut self, body: &'a [Stmt], block: Option<&'a ast::BlockDef>) {
        for s in body {
            match s {
                Stmt::Input(i) => self.inputs.push(i),
                Stmt::Output(o) => self.expr(&o.value, block),
                Stmt::Let(l) => self.expr(&l.value, block),
            }
        }
    }

    fn expr(&mut self, e: &'a Expr, block: Option<&'a ast::BlockDef>) {
        match &e.kind {
            ExprKind::Call(c) => self.call(c, None, block),
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond, block);
                self.expr(then, block);
                self.expr(otherwise, block);
            }
            ExprKind::Unary { operand, .. } => self.expr(operand, block),
            ExprKind::Chain { first, rest } => {
                self.expr(first, block);
                for (_, _, x) in rest {
                    self.expr(x, block);
                }
            }
            ExprKind::Pipe { head, stages } => {
                self.expr(head, block);
                for st in stages {
                    self.stage(&st.func, Some(st.span), block);
                }
            }
            _ => {}
        }
    }

    fn stage(&mut self, f: &'a StageFn, stage: Option<Span>, block: Option<&'a ast::BlockDef>) {
        match f {
            StageFn::Call(c) => self.call(c, stage, block),
            StageFn::Name(n) => {
                let site = Site {
                    call: None,
                    name: &n.name,
                    name_span: n.span,
                    span: n.span,
                    block,
                };
                self.sites.insert(n.span, site);
                if let Some(s) = stage {
                    self.sites.insert(s, site);
                }
            }
            StageFn::Seq(items, _) => {
                for it in items {
                    self.stage(&it.func, Some(it.span), block);
                    if let Some(count) = &it.repeat {
                        self.repeats.push(Repeat { item: it, count });
                    }
                }
            }
            StageFn::Paren(e) => self.expr(e, block),
            StageFn::Int(..) | StageFn::Float(..) => {}
        }
    }

    fn call(&mut self, c: &'a ast::Call, stage: Option<Span>, block: Option<&'a ast::BlockDef>) {
        let site = Site {
            call: Some(c),
            name: &c.name.name,
            name_span: c.name.span,
            span: c.span,
            block,
        };
        self.sites.insert(c.span, site);
        if let Some(s) = stage {
            self.sites.entry(s).or_insert(site);
        }
        for a in &c.args {
            self.expr(&a.value, block);
        }
    }
}
