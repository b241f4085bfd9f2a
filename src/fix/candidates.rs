//! Candidate fixes for a shape diagnostic, before verification: edits of every op and argument
//! on the provenance chains of the failing op's operands (in every block instance that fails,
//! and every error merged into it by its cause), of the block calls that made those instances
//! and the instances on the chains; and, through [`super::rewrites`], of repetition counts and
//! input declarations, of the failing op's own sizes (`unflatten`, a `crop` the wrong way
//! round), and structural insertions (`global_avgpool` before `flatten`, a projection
//! shortcut).
//!
//! Only arguments that can change the offending dimension are edited (channels for a channel
//! mismatch, window arguments for a spatial one). Each candidate has a class: 0 uses what the
//! file already has (a block parameter, a block's own argument at its call site), 1 is a
//! literal, 2 inserts structure. Verification decides; this module only proposes.

use super::index::{Index, Site};
use super::rewrites;
use crate::diag::{Edit, Fix};
use crate::ir::{Graph, NodeId, Op, ScopeKind};
use crate::shape::{Shapes, rules};
use crate::span::{Source, Span};
use crate::syntax::ast::{self, ExprKind, StageFn, Type};
use std::collections::BTreeSet;

/// How far back a provenance chain is followed, in nodes.
const MAX_CHAIN: usize = 256;
/// How many op sites per chain are edited (nearest the failing op first).
const MAX_SITES: usize = 12;
/// How many block calls per failing op whose instances hold ops on its chains (outside its
/// own instance) are edited.
const MAX_OUTER_CALLS: usize = 4;

#[derive(Clone, Debug)]
pub struct Candidate {
    pub class: u8,
    /// How far from the failing op the edit is (sites in chain order).
    pub distance: usize,
    pub fix: Fix,
}

impl Candidate {
    /// The size of the edit: bytes removed plus bytes inserted.
    pub fn size(&self) -> usize {
        self.fix
            .edits
            .iter()
            .map(|e| (e.span.end - e.span.start) as usize + e.replacement.len())
            .sum()
    }
}

/// Which dimensions a diagnostic is about.
#[derive(Copy, Clone, Debug, Default)]
pub(super) struct Axes {
    pub(super) channels: bool,
    pub(super) spatial: bool,
    pub(super) rank: bool,
}

/// The failing nodes of a diagnostic at `span`, in every network: (network, node).
pub fn failing<'g>(nets: &[(&'g Graph, &'g Shapes)], span: Span) -> Vec<(usize, NodeId)> {
    let mut out = Vec::new();
    for (n, (g, shapes)) in nets.iter().enumerate() {
        for id in g.node_ids() {
            if g.node(id).span == span && mismatch(g, shapes, id).is_some() {
                out.push((n, id));
            }
        }
    }
    out
}

/// Re-run a node's rule: what does not fit, if anything.
pub fn mismatch(g: &Graph, shapes: &Shapes, id: NodeId) -> Option<rules::Mismatch> {
    let ins: Option<Vec<_>> = g.operands(id).into_iter().map(|o| shapes.get(o)).collect();
    rules::output_shape(&g.node(id).op, &ins?).err()
}

fn push_site<'a>(sites: &mut Vec<(Site<'a>, usize)>, s: Site<'a>, d: usize) {
    if !sites.iter().any(|(x, _)| x.span == s.span) {
        sites.push((s, d));
    }
}

pub fn candidates(
    source: &Source,
    ix: &Index,
    nets: &[(&Graph, &Shapes)],
    fails: &[(usize, NodeId)],
) -> Vec<Candidate> {
    let mut axes = Axes::default();
    let mut channels = BTreeSet::new();
    // Group counts that would fit a failing grouped conv's channels.
    let mut group_fits = BTreeSet::new();
    let mut sites: Vec<(Site, usize)> = Vec::new();
    let mut roots = Vec::new();
    let mut chain_spans = Vec::new();
    let mut adds = Vec::new();
    // Edits of the failing op itself that only it can offer (its own sizes, its operands'
    // order).
    let mut local = Vec::new();
    for &(n, f) in fails {
        let (g, shapes) = nets[n];
        let ins: Vec<_> = g
            .operands(f)
            .into_iter()
            .filter_map(|o| shapes.get(o))
            .collect();
        for s in &ins {
            if let Some(c) = s.dim(1).known() {
                channels.insert(c);
            }
        }
        match mismatch(g, shapes, f) {
            Some(rules::Mismatch::Stated { stated, found }) => {
                axes.channels = true;
                channels.extend([stated, found]);
            }
            Some(rules::Mismatch::Groups {
                groups,
                c_in,
                c_out,
            }) => {
                axes.channels = true;
                group_fits.insert(rules::fitting_groups(groups, c_in, c_out));
            }
            Some(rules::Mismatch::Window { .. }) => axes.spatial = true,
            Some(rules::Mismatch::Rank { .. }) => axes.rank = true,
            Some(rules::Mismatch::Operands { .. }) | Some(rules::Mismatch::Gate) => {
                if let (Some(a), Some(b)) = (ins.first(), ins.get(1)) {
                    for s in ins.iter().skip(1) {
                        axes.channels |= !a.dim(1).fits(s.dim(1));
                        axes.spatial |= !a.dim(2).fits(s.dim(2)) || !a.dim(3).fits(s.dim(3));
                        axes.rank |= a.rank() != s.rank();
                    }
                    let _ = b;
                }
                if g.node(f).op == Op::Add {
                    adds.push((n, f));
                }
            }
            Some(rules::Mismatch::ShortcutChannels { .. }) => axes.channels = true,
            Some(rules::Mismatch::Crop { .. }) => {
                axes.spatial = true;
                local.extend(rewrites::crop_swap(source, g, shapes, f));
            }
            _ => {}
        }
        if let (Op::Unflatten(u), Some(rules::Mismatch::Stated { found, .. })) =
            (&g.node(f).op, mismatch(g, shapes, f))
        {
            local.extend(rewrites::unflatten_sizes(
                source,
                ix,
                g.node(f).span,
                u.dims,
                found,
            ));
        }
        if let Some(s) = ix.site(g.node(f).span) {
            push_site(&mut sites, s, 0);
        }
        let mut outer_calls = 0;
        for o in g.operands(f) {
            let mut cur = Some(o);
            let mut d = 1;
            for _ in 0..MAX_CHAIN {
                let Some(c) = cur else { break };
                let node = g.node(c);
                chain_spans.push(node.span);
                // The block calls (and so the repeated sequence items) that made it.
                if let Some(inst) = g.instance_chain(node.scope).first() {
                    chain_spans.push(inst.span);
                }
                if matches!(node.op, Op::Input) {
                    roots.push((n, c));
                    break;
                }
                if changes(&node.op, axes)
                    && let Some(s) = ix.site(node.span)
                {
                    push_site(&mut sites, s, d);
                    // The call that set its arguments, when it is in another block instance
                    // than the failing op (`stem(32)` for a width decided in the stem).
                    let home = g.instance_chain(g.node(f).scope).first().map(|i| i.span);
                    if let Some(inst) = g.instance_chain(node.scope).first()
                        && Some(inst.span) != home
                        && outer_calls < MAX_OUTER_CALLS
                        && let Some(call) = ix.site(inst.span)
                    {
                        outer_calls += 1;
                        push_site(&mut sites, call, d);
                    }
                    d += 1;
                }
                cur = g.first_operand(c);
            }
        }
        // The block calls that made the failing instance, innermost first.
        for scope in g.instance_chain(g.node(f).scope) {
            chain_spans.push(scope.span);
            if let (ScopeKind::Block { .. }, Some(s)) = (&scope.kind, ix.site(scope.span)) {
                push_site(&mut sites, s, 1);
            }
        }
    }
    let mut out = local;
    // An upsample by a factor or to a size that misses its skip: upsample to the skip instead.
    if axes.spatial {
        let names: Vec<&str> = fails
            .iter()
            .flat_map(|&(n, f)| operand_names(source, nets[n].0, f))
            .collect();
        for (site, d) in &sites {
            out.extend(upsample_like(source, *site, *d, &names));
        }
    }
    let mut seen_sites = 0;
    for (site, d) in &sites {
        if ix.blocks.contains_key(site.name) {
            out.extend(block_call(source, ix, *site, *d, &channels));
            continue;
        }
        if seen_sites >= MAX_SITES {
            continue;
        }
        seen_sites += 1;
        out.extend(op_call(source, *site, *d, axes, &channels, &group_fits));
    }
    // Repetitions on the chains, the nearest the failing op first.
    let mut repeats: Vec<(usize, &ast::Expr)> = ix
        .repeats
        .iter()
        .filter_map(|r| {
            let at = chain_spans.iter().position(|s| contains(r.item.span, *s))?;
            Some((at, r.count))
        })
        .collect();
    repeats.sort_by_key(|r| r.0);
    for (rank, (_, count)) in repeats.into_iter().enumerate() {
        out.extend(rewrites::repeat(source, count, 1 + rank));
    }
    // The declared H and W of every input the chains reach: one input may take another's.
    let sizes: Vec<(String, String)> = roots
        .iter()
        .filter_map(|&(n, id)| {
            let gi = nets[n].0.inputs.iter().find(|i| i.node == id)?;
            let text = |d: &crate::ir::DimSpec| match d {
                crate::ir::DimSpec::Known(v) => Some(v.to_string()),
                crate::ir::DimSpec::Sym(_) => None,
            };
            Some((text(gi.dims.get(2)?)?, text(gi.dims.get(3)?)?))
        })
        .collect();
    for &(n, id) in &roots {
        out.extend(rewrites::input_decl(
            source, ix, nets[n].0, id, axes, &channels, &sizes,
        ));
    }
    for &(n, f) in &adds {
        out.extend(rewrites::projection(source, ix, nets[n], f));
    }
    out
}

/// The names the failing op's source text mentions (`skip` and `up` in `concat(skip, up)`):
/// the values an upsample on the way could take its size from.
fn operand_names<'s>(source: &'s Source, g: &Graph, f: NodeId) -> Vec<&'s str> {
    let text = source.slice(g.node(f).span);
    let mut names: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
        .filter(|w| crate::ops::lookup(w).is_none())
        .collect();
    names.dedup();
    names
}

/// `upsample(scale: 2)` or `upsample(size: [h, w])` made to take its size from one of `names`:
/// `upsample(like: skip)`.
fn upsample_like(source: &Source, site: Site, d: usize, names: &[&str]) -> Vec<Candidate> {
    let Some(call) = site.call.filter(|_| site.name == "upsample") else {
        return Vec::new();
    };
    let Some(arg) = call.args.iter().find(|a| {
        a.name
            .as_ref()
            .is_some_and(|n| n.name == "scale" || n.name == "size")
    }) else {
        return Vec::new();
    };
    names
        .iter()
        .map(|name| {
            replace_arg(
                source,
                call,
                arg.span,
                arg.span,
                format!("like: {name}"),
                1,
                d,
            )
        })
        .collect()
}

/// Whether an op can change the dims a diagnostic is about.
fn changes(op: &Op, axes: Axes) -> bool {
    match op {
        Op::Conv(_) | Op::ConvTranspose(_) => true,
        Op::Linear(_) | Op::BatchNorm(_) | Op::Concat | Op::ShortcutA(_) => axes.channels,
        Op::MaxPool(_) | Op::AvgPool(_) | Op::Upsample(_) | Op::Crop | Op::Pad(_) => axes.spatial,
        Op::Flatten | Op::GlobalAvgPool => axes.rank || axes.channels || axes.spatial,
        _ => false,
    }
}

pub(super) fn contains(outer: Span, inner: Span) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

pub(super) fn line(source: &Source, span: Span) -> usize {
    source.line_col(span.start).0
}

/// A call's text for a message: whole when short, else its first and last arguments with the
/// middle elided (never part of an argument).
pub fn quote_call(source: &Source, call: &ast::Call) -> String {
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let whole = one_line(source.slice(call.span));
    if whole.chars().count() <= 60 || call.args.len() <= 2 {
        return whole;
    }
    let first = one_line(source.slice(call.args[0].span));
    let last = one_line(source.slice(call.args[call.args.len() - 1].span));
    format!("{}({first}, ..., {last})", call.name.name)
}

/// Replace the value at `span` inside argument `arg` of `call`.
pub(super) fn replace_arg(
    source: &Source,
    call: &ast::Call,
    arg: Span,
    span: Span,
    with: String,
    class: u8,
    d: usize,
) -> Candidate {
    let arg_text = source.slice(arg);
    let (a, b) = (
        (span.start - arg.start) as usize,
        (span.end - arg.start) as usize,
    );
    let new_arg = format!("{}{with}{}", &arg_text[..a], &arg_text[b..]);
    let mut c = replace(source, span, with, class, d);
    c.fix.message = format!(
        "change `{arg_text}` to `{new_arg}` in `{}` at line {}",
        quote_call(source, call),
        line(source, call.span)
    );
    c
}

pub(super) fn replace(source: &Source, span: Span, with: String, class: u8, d: usize) -> Candidate {
    let old = source.slice(span);
    Candidate {
        class,
        distance: d,
        fix: Fix {
            message: format!("write `{with}` for `{old}` at line {}", line(source, span)),
            edits: vec![Edit {
                span,
                replacement: with,
            }],
        },
    }
}

pub(super) fn insert(span: Span, text: String, message: String, class: u8, d: usize) -> Candidate {
    Candidate {
        class,
        distance: d,
        fix: Fix {
            message,
            edits: vec![Edit {
                span: Span::new(span.start as usize, span.start as usize),
                replacement: text,
            }],
        },
    }
}

/// Expressions in the enclosing block's integer parameters for an argument of `role`: a
/// parameter named for the role (`stride: stride`, `pad: dilation`), and for channels the
/// width parameters, their multiples and products (`planes * 4`, `planes * expansion`).
pub(super) fn param_exprs(block: Option<&ast::BlockDef>, role: &str) -> Vec<String> {
    let Some(b) = block else {
        return Vec::new();
    };
    let ints: Vec<&str> = b
        .params
        .iter()
        .filter(|p| p.ty == Type::Int)
        .map(|p| p.name.name.as_str())
        .collect();
    let window = |p: &str| {
        ["stride", "pad", "dilation", "k", "kernel", "groups"]
            .iter()
            .any(|w| p == *w || p.starts_with(&format!("{w}_")) || p.ends_with(&format!("_{w}")))
    };
    let named = |p: &str, w: &str| p == w || p.contains(w);
    let mut out = Vec::new();
    match role {
        "channels" => {
            let widths: Vec<&str> = ints.iter().copied().filter(|p| !window(p)).collect();
            for &p in &widths {
                out.push(p.to_string());
            }
            for &p in &widths {
                for f in ["* 2", "* 4", "/ 2", "/ 4"] {
                    out.push(format!("{p} {f}"));
                }
                for &q in &widths {
                    if q != p {
                        out.push(format!("{p} * {q}"));
                    }
                }
            }
        }
        "pad" => {
            for &p in &ints {
                if named(p, "pad") || named(p, "dilation") {
                    out.push(p.to_string());
                }
                if named(p, "kernel") || p == "k" {
                    out.push(format!("{p} / 2"));
                }
            }
        }
        "k" => out.extend(
            ints.iter()
                .filter(|p| **p == "k" || named(p, "kernel"))
                .map(|p| p.to_string()),
        ),
        _ => out.extend(
            ints.iter()
                .filter(|p| named(p, role))
                .map(|p| p.to_string()),
        ),
    }
    out
}

/// Values to try for an argument of `role`: the channel counts seen, common sizes, and for
/// `groups` the counts that fit (largest first, keeping the conv grouped), then 1.
fn literals(role: &str, channels: &BTreeSet<u64>, group_fits: &BTreeSet<u64>) -> Vec<String> {
    let v: Vec<u64> = match role {
        "channels" => channels.iter().copied().collect(),
        "k" => vec![1, 3],
        "stride" => vec![1, 2],
        "pad" => vec![0, 1, 2, 3],
        "dilation" => vec![1, 2],
        "groups" => group_fits
            .iter()
            .rev()
            .copied()
            .filter(|&g| g != 1)
            .chain([1])
            .collect(),
        _ => vec![],
    };
    v.iter().map(u64::to_string).collect()
}

/// Edits of an op's arguments, and missing window arguments inserted.
fn op_call(
    source: &Source,
    site: Site,
    d: usize,
    axes: Axes,
    ch: &BTreeSet<u64>,
    group_fits: &BTreeSet<u64>,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    if site.name == "flatten" && (axes.channels || axes.rank) {
        out.push(insert(
            site.name_span,
            "global_avgpool -> ".into(),
            format!(
                "pool before flattening: insert `global_avgpool ->` before `flatten` at line {}",
                line(source, site.span)
            ),
            2,
            d,
        ));
    }
    if site.name == "linear" && axes.rank {
        out.push(insert(
            site.name_span,
            "global_avgpool -> flatten -> ".into(),
            format!(
                "pool and flatten first: insert `global_avgpool -> flatten ->` before `linear` at line {}",
                line(source, site.span)
            ),
            2,
            d,
        ));
    }
    let Some(call) = site.call else {
        return out;
    };
    let spatial = matches!(site.name, "conv" | "maxpool" | "avgpool" | "conv_transpose");
    let mut given = Vec::new();
    for (i, a) in call.args.iter().enumerate() {
        let role = match &a.name {
            Some(n) => n.name.as_str(),
            None if i == 0 => "channels",
            None => continue,
        };
        given.push(role);
        let wanted = match role {
            "channels" | "groups" => axes.channels,
            "k" | "stride" | "pad" | "dilation" | "output_pad" => axes.spatial && spatial,
            _ => false,
        };
        if !wanted {
            continue;
        }
        // Stated channels `a -> b`: edit each side alone.
        let parts: Vec<Span> = match &a.value.kind {
            ExprKind::Pipe { head, stages } if role == "channels" => {
                let mut v = vec![head.span];
                v.extend(stages.iter().map(|s| match &s.func {
                    StageFn::Paren(e) => e.span,
                    f => f.span(),
                }));
                v
            }
            // A per-axis size `[h, w]`: edit each axis alone, keeping the other.
            ExprKind::List(items) if role != "channels" => items.iter().map(|e| e.span).collect(),
            _ => vec![a.value.span],
        };
        for span in parts {
            let old = source.slice(span).trim().to_string();
            for e in param_exprs(site.block, role) {
                if e != old {
                    out.push(replace_arg(source, call, a.span, span, e, 0, d));
                }
            }
            // Another kernel size is another architecture: the last resort.
            let class = if role == "k" { 2 } else { 1 };
            let mut values = literals(role, ch, group_fits);
            if site.name == "conv_transpose" && role == "stride" {
                values.reverse(); // an up-convolution upsamples: stride 2 before 1
            }
            for e in values {
                if e != old {
                    out.push(replace_arg(source, call, a.span, span, e, class, d));
                }
            }
        }
    }
    if axes.spatial && spatial {
        let close = Span::new(call.span.end as usize - 1, call.span.end as usize - 1);
        if site.name == "conv_transpose" && !given.contains(&"output_pad") {
            // One more row and column: the size a stride of 2 with `pad` 1 misses by one.
            out.push(insert(
                close,
                ", output_pad: 1".into(),
                format!(
                    "add `output_pad: 1` to `{}` at line {}",
                    quote_call(source, call),
                    line(source, call.span)
                ),
                1,
                d,
            ));
        }
        if matches!(site.name, "maxpool" | "avgpool") && !given.contains(&"ceil") {
            out.push(insert(
                close,
                ", ceil: true".into(),
                format!(
                    "round up: add `ceil: true` to `{}` at line {}",
                    quote_call(source, call),
                    line(source, call.span)
                ),
                1,
                d,
            ));
        }
        for role in ["stride", "pad", "dilation"] {
            if given.contains(&role) || (role == "dilation" && site.name != "conv") {
                continue;
            }
            let mut values: Vec<(String, u8)> = param_exprs(site.block, role)
                .into_iter()
                .filter(|e| role != "dilation" || e == "dilation")
                .map(|e| (e, 0))
                .collect();
            // A dilation nobody asked for is no fix: only the block's own `dilation`.
            if role != "dilation" {
                values.extend(literals(role, ch, group_fits).into_iter().map(|e| (e, 1)));
            }
            for (v, class) in values {
                let text = format!(", {role}: {v}");
                out.push(insert(
                    close,
                    text.clone(),
                    format!(
                        "add `{role}: {v}` to `{}` at line {}",
                        quote_call(source, call),
                        line(source, call.span)
                    ),
                    class,
                    d,
                ));
            }
        }
    }
    out
}

/// Edits of a block call's arguments: flip or pass a flag the block has (`down: true`),
/// another value for an integer argument.
fn block_call(
    source: &Source,
    ix: &Index,
    site: Site,
    d: usize,
    ch: &BTreeSet<u64>,
) -> Vec<Candidate> {
    let (Some(call), Some(def)) = (site.call, ix.blocks.get(site.name)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let close = Span::new(call.span.end as usize - 1, call.span.end as usize - 1);
    let sep = if call.args.is_empty() { "" } else { ", " };
    for (pi, p) in def.params.iter().enumerate() {
        let name = p.name.name.as_str();
        let given = call.args.iter().enumerate().find(|(i, a)| match &a.name {
            Some(n) => n.name == name,
            None => *i == pi,
        });
        let values: Vec<String> = match p.ty {
            Type::Bool => vec!["true".into(), "false".into()],
            Type::Int if name.contains("stride") => vec!["1".into(), "2".into()],
            Type::Int => ch.iter().map(u64::to_string).collect(),
            Type::Float => vec![],
        };
        for v in values {
            match given {
                Some((_, a)) if source.slice(a.value.span).trim() != v => {
                    let class = u8::from(p.ty != Type::Bool);
                    out.push(replace_arg(source, call, a.span, a.value.span, v, class, d));
                }
                Some(_) => {}
                // Passing the default changes nothing.
                None if p
                    .default
                    .as_ref()
                    .is_some_and(|e| source.slice(e.span).trim() != v) =>
                {
                    let class = u8::from(p.ty != Type::Bool);
                    out.push(insert(
                        close,
                        format!("{sep}{name}: {v}"),
                        format!(
                            "pass `{name}: {v}` to `{}` at line {}",
                            quote_call(source, call),
                            line(source, call.span)
                        ),
                        class,
                        d,
                    ));
                }
                None => {}
            }
        }
    }
    out
}
