//! Blocks that nothing instantiates. Lowering expands only what the chosen network reaches,
//! so the body of a block that no network or block of the file calls is never checked: say so.

use crate::diag::{Code, Diagnostic};
use crate::syntax::ast::{self, ExprKind, StageFn, Stmt};
use std::collections::HashSet;

/// A warning for every block whose name no call or pipeline stage of the file uses.
pub(super) fn unused_blocks(file: &ast::File) -> Vec<Diagnostic> {
    let mut used = HashSet::new();
    let bodies = file
        .blocks
        .iter()
        .map(|b| (&b.body, Some(&b.params)))
        .chain(file.networks.iter().map(|n| (&n.body, None)));
    for (body, params) in bodies {
        for p in params.into_iter().flatten() {
            if let Some(e) = &p.default {
                expr(e, &mut used);
            }
        }
        for stmt in body {
            match stmt {
                Stmt::Let(l) => expr(&l.value, &mut used),
                Stmt::Output(o) => expr(&o.value, &mut used),
                Stmt::Input(_) => {}
            }
        }
    }
    file.blocks
        .iter()
        .filter(|b| !used.contains(b.name.name.as_str()))
        .map(|b| {
            Diagnostic::warning(Code::UnusedBlock, format!("block `{}` is never used", b.name.name))
                .with_primary(b.name.span, "defined here")
                .with_note("a block's body is checked where it is instantiated, so this one is not checked at all")
                .with_help(format!("instantiate it (`x -> {}(...)`), or remove it", b.name.name))
        })
        .collect()
}

fn expr<'a>(e: &'a ast::Expr, used: &mut HashSet<&'a str>) {
    match &e.kind {
        ExprKind::Call(c) => call(c, used),
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            expr(cond, used);
            expr(then, used);
            expr(otherwise, used);
        }
        ExprKind::Unary { operand, .. } => expr(operand, used),
        ExprKind::Chain { first, rest } => {
            expr(first, used);
            for (_, _, e) in rest {
                expr(e, used);
            }
        }
        ExprKind::Pipe { head, stages } => {
            expr(head, used);
            for s in stages {
                stage_fn(&s.func, used);
            }
        }
        ExprKind::List(items) => {
            for e in items {
                expr(e, used);
            }
        }
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) | ExprKind::Name(_) => {}
    }
}

fn call<'a>(c: &'a ast::Call, used: &mut HashSet<&'a str>) {
    used.insert(c.name.name.as_str());
    for a in &c.args {
        expr(&a.value, used);
    }
}

fn stage_fn<'a>(f: &'a StageFn, used: &mut HashSet<&'a str>) {
    match f {
        StageFn::Call(c) => call(c, used),
        StageFn::Name(n) => {
            used.insert(n.name.as_str());
        }
        StageFn::Seq(items, _) => {
            for item in items {
                stage_fn(&item.func, used);
                for e in item.repeat.iter().chain(&item.when) {
                    expr(e, used);
                }
            }
        }
        StageFn::Paren(e) => expr(e, used),
        StageFn::Int(..) | StageFn::Float(..) => {}
    }
}
