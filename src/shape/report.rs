//! Shape diagnostics: a [`Mismatch`] from a rule, turned into a diagnostic that points at the
//! failing op, labels where each operand's shape came from, says how the offending dim was
//! derived, names the block instance, and proposes a computed fix where one exists.

use super::formula::{conv_out, pool_out};
use super::rules::{AXIS_NAMES, Mismatch};
use super::{Dim, Shape};
use crate::diag::{Code, Diagnostic};
use crate::ir::{Graph, NodeId, Op};
use crate::span::{Source, Span};

struct Ctx<'a> {
    g: &'a Graph,
    of: &'a [Option<Shape>],
    source: &'a Source,
}

impl Ctx<'_> {
    fn shape(&self, id: NodeId) -> Option<&Shape> {
        self.of.get(id.index()).and_then(Option::as_ref)
    }

    fn line(&self, span: Span) -> usize {
        self.source.line_col(span.start).0
    }

    /// The source text of a node, shortened for a message.
    fn text(&self, id: NodeId) -> String {
        short(self.source.slice(self.g.node(id).span))
    }

    /// Where a node's value was made: its own span, or its input declaration.
    fn origin(&self, id: NodeId) -> Span {
        let node = self.g.node(id);
        match node.op {
            Op::Input => self
                .g
                .inputs
                .iter()
                .find(|i| i.node == id)
                .map_or(node.span, |i| i.span),
            _ => node.span,
        }
    }

    /// Notes on how `axis` of `id`'s shape was derived: the ops that changed it, latest first.
    fn trace(&self, id: NodeId, axis: usize) -> Vec<String> {
        let mut notes = Vec::new();
        let mut cur = id;
        for _ in 0..10_000 {
            let ops = self.g.operands(cur);
            let Some(&prev) = ops.first() else {
                if let Some(d) = self.shape(cur).map(|s| s.dim(axis).clone()) {
                    let at = self.origin(cur);
                    notes.push(format!(
                        "{} = {d} as declared at line {}",
                        AXIS_NAMES[axis],
                        self.line(at)
                    ));
                }
                break;
            };
            let (Some(now), Some(before)) = (self.shape(cur), self.shape(prev)) else {
                break;
            };
            if now.rank() != before.rank() {
                notes.push(format!(
                    "{} = {} from {before} by `{}` at line {}",
                    if axis == 1 && now.rank() == 2 {
                        "features"
                    } else {
                        AXIS_NAMES[axis]
                    },
                    now.dim(axis),
                    self.text(cur),
                    self.line(self.g.node(cur).span)
                ));
                break;
            }
            if now.rank() == 4 && before.rank() == 4 && now.dim(axis) != before.dim(axis) {
                notes.push(format!(
                    "{} = {} \u{2190} {} by `{}`{} at line {}",
                    AXIS_NAMES[axis],
                    now.dim(axis),
                    before.dim(axis),
                    self.text(cur),
                    how(&self.g.node(cur).op, axis),
                    self.line(self.g.node(cur).span)
                ));
                if notes.len() == 2 {
                    break;
                }
            }
            cur = prev;
        }
        notes
    }

    /// "in `layer2.0` (block `basic`), instantiated at line 40".
    fn instance_note(&self, id: NodeId) -> Option<String> {
        let chain = self.g.instance_chain(self.g.node(id).scope);
        let inner = chain.first()?;
        let crate::ir::ScopeKind::Block { name } = &inner.kind else {
            return None;
        };
        let path = if inner.path.is_empty() {
            name.clone()
        } else {
            inner.path.clone()
        };
        Some(format!(
            "in `{path}` (an instance of block `{name}`), instantiated at line {}",
            self.line(inner.span)
        ))
    }

    fn operand_label(&self, d: Diagnostic, id: NodeId, what: &str) -> Diagnostic {
        match self.shape(id) {
            Some(s) => d.with_secondary(self.origin(id), format!("{what} has shape {s}")),
            None => d,
        }
    }
}

/// How an op changes a dim, for provenance notes.
fn how(op: &Op, axis: usize) -> String {
    match op {
        Op::Conv(c) if axis >= 2 => format!(
            " ({k}x{k} kernel, stride {}, pad {})",
            c.stride,
            c.pad,
            k = c.kernel
        ),
        Op::MaxPool(p) | Op::AvgPool(p) if axis >= 2 => {
            format!(
                " ({k}x{k} window, stride {}, pad {}{})",
                p.stride,
                p.pad,
                if p.ceil_mode { ", ceil mode" } else { "" },
                k = p.kernel
            )
        }
        Op::ShortcutA(s) if axis >= 2 => format!(" (stride {})", s.stride),
        _ => String::new(),
    }
}

fn short(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 60 {
        format!("{}...", one_line.chars().take(57).collect::<String>())
    } else {
        one_line
    }
}

/// Build the diagnostic for node `id`, whose rule failed with `m`.
pub(super) fn mismatch(
    g: &Graph,
    of: &[Option<Shape>],
    source: &Source,
    id: NodeId,
    ins: &[&Shape],
    m: Mismatch,
) -> Diagnostic {
    let cx = Ctx { g, of, source };
    let node = g.node(id);
    let operands = g.operands(id);
    let op_name = node.op.name();
    let mut d = match m {
        Mismatch::Rank { operand, expected } => {
            let found = ins[operand];
            let mut d = Diagnostic::error(
                Code::Rank,
                format!(
                    "`{op_name}` needs a {expected} tensor, found rank {}",
                    found.rank()
                ),
            )
            .with_primary(node.span, format!("its input has shape {found}"));
            d = cx.operand_label(d, operands[operand], "this");
            match (&node.op, found.rank()) {
                (Op::Linear(_), 4) => {
                    d.with_help("flatten it first: `-> global_avgpool -> flatten` or `-> flatten`")
                }
                (_, 2) => d.with_note("after `flatten` or `linear` a tensor is [N, features]"),
                _ => d,
            }
        }
        Mismatch::Stated { stated, found } => stated_channels(&cx, id, stated, found),
        Mismatch::Groups {
            groups,
            c_in,
            c_out,
        } => {
            let fit = (1..=groups)
                .rev()
                .find(|g| c_in % g == 0 && c_out % g == 0)
                .unwrap_or(1);
            let mut d = Diagnostic::error(
                Code::Groups,
                format!("groups {groups} do not divide the channels ({c_in} in, {c_out} out)"),
            )
            .with_primary(node.span, format!("{groups} groups"))
            .with_note("a grouped conv splits input and output channels into equal groups");
            d = cx.operand_label(d, operands[0], "the input");
            d.with_help(format!(
                "use a group count that divides both, e.g. `groups: {fit}`"
            ))
        }
        Mismatch::Window {
            axis,
            len,
            kernel,
            pad,
            dilation,
        } => {
            let span = dilation * (kernel - 1) + 1;
            let mut d = Diagnostic::error(
                Code::WindowTooLarge,
                format!("{op_name} window larger than its padded input"),
            )
            .with_primary(
                node.span,
                format!(
                    "a window of {span} does not fit {} = {len} padded by {pad} on each side",
                    AXIS_NAMES[axis]
                ),
            );
            d = cx.operand_label(d, operands[0], "the input");
            for n in cx.trace(operands[0], axis) {
                d = d.with_note(n);
            }
            let need = span.saturating_sub(len).div_ceil(2);
            d.with_help(format!("use a smaller kernel, or pad by at least {need}"))
        }
        Mismatch::Operands { other, axis } if node.op == Op::Add => {
            add_mismatch(&cx, id, ins, other, axis)
        }
        Mismatch::Operands { other, axis } => {
            let (x, y) = (ins[0], ins[other]);
            let axis_name = AXIS_NAMES.get(axis).copied().unwrap_or("rank");
            let mut d = Diagnostic::error(
                Code::ConcatMismatch,
                format!("concat operands differ in {axis_name}"),
            )
            .with_primary(
                node.span,
                format!("cannot concatenate {x} and {y} along channels"),
            )
            .with_note("concat joins channels: N, H and W must be equal");
            d = cx.operand_label(d, operands[0], "the first operand");
            d = cx.operand_label(d, operands[other], "this operand");
            if axis < 4 {
                for n in cx
                    .trace(operands[0], axis)
                    .into_iter()
                    .chain(cx.trace(operands[other], axis))
                {
                    if !d.notes.contains(&n) {
                        d = d.with_note(n);
                    }
                }
            }
            d
        }
        Mismatch::Gate => {
            let (x, gate) = (ins[0], ins[1]);
            let mut d = Diagnostic::error(Code::GateMismatch, "gate shape does not fit in mul")
                .with_primary(node.span, format!("cannot multiply {x} by {gate}"))
                .with_note("`x * g` needs g of the same shape as x, or a [N, C, 1, 1] gate with x's channels");
            d = cx.operand_label(d, operands[0], "the input");
            d = cx.operand_label(d, operands[1], "the gate");
            if let (Dim::Known(c), Dim::Known(cg)) = (x.dim(1), gate.dim(1))
                && c != cg
            {
                d = d.with_help(format!("the gate has {cg} channels, the input {c}: make the excitation's last conv produce {c}, e.g. `conv({c}, k: 1)`"));
            }
            d
        }
        Mismatch::ShortcutChannels { c_in, c_out } => {
            let d = Diagnostic::error(Code::ShortcutChannels, format!("option-A shortcut cannot pad {c_in} channels to {c_out}"))
                .with_primary(node.span, format!("{c_in} in, {c_out} out"))
                .with_note("the shortcut adds (out - in) / 2 zero channels on each side: out must be at least in, and out - in even");
            cx.operand_label(d, operands[0], "the input")
        }
        Mismatch::Overflow => {
            Diagnostic::error(Code::SizeOverflow, "tensor size overflows 64 bits")
                .with_primary(node.span, "this size is too large")
        }
    };
    if let Some(n) = cx.instance_note(id) {
        d = d.with_note(n);
    }
    d
}

fn stated_channels(cx: &Ctx, id: NodeId, stated: u64, found: u64) -> Diagnostic {
    let node = cx.g.node(id);
    let producer = cx.g.operands(id)[0];
    let (what, fix) = match &node.op {
        Op::Linear(l) => (
            "input features",
            format!("`linear({found} -> {})`", l.c_out),
        ),
        Op::Conv(c) => (
            "input channels",
            format!("`conv({found} -> {}, ...)`", c.c_out),
        ),
        Op::Unflatten(_) => (
            "input features",
            format!("sizes whose product is {found} in `unflatten([...])`"),
        ),
        _ => ("channels", format!("`batchnorm({found})`")),
    };
    let mut d = Diagnostic::error(
        Code::StatedChannels,
        format!(
            "`{}` expects {stated} {what}, but its input has {found}",
            node.op.name()
        ),
    )
    .with_primary(node.span, format!("expects {stated} {what}"));
    d = cx.operand_label(d, producer, "the input");
    for n in cx.trace(producer, 1) {
        d = d.with_note(n);
    }
    d.with_help(format!(
        "if {found} is right, state {fix}; otherwise make the layer before produce {stated}"
    ))
}

fn add_mismatch(cx: &Ctx, id: NodeId, ins: &[&Shape], other: usize, axis: usize) -> Diagnostic {
    let node = cx.g.node(id);
    let ops = cx.g.operand_edges(id);
    let (a, b) = (ins[0], ins[other]);
    let differing: Vec<usize> = (0..a.rank().min(b.rank()))
        .filter(|&i| !a.dim(i).fits(b.dim(i)))
        .collect();
    let message = if a.rank() != b.rank() || axis == usize::MAX {
        "rank mismatch in residual add"
    } else if differing.iter().all(|&i| i == 1) {
        "channel mismatch in residual add"
    } else if differing.iter().all(|&i| i >= 2) {
        "spatial size mismatch in residual add"
    } else {
        "shape mismatch in residual add"
    };
    let mut d = Diagnostic::error(Code::AddMismatch, message)
        .with_primary(node.span, format!("cannot add {a} and {b}"))
        .with_note("both operands of a residual add must have exactly the same shape");
    for (i, &(producer, use_span)) in [ops[0], ops[other]].iter().enumerate() {
        let text = cx.source.slice(use_span);
        let what = if text.len() <= 24 && !text.contains('\n') {
            format!("`{text}`")
        } else if i == 0 {
            "the left operand".to_string()
        } else {
            "the right operand".to_string()
        };
        d = cx.operand_label(d, producer, &what);
    }
    for &axis in &differing {
        if axis == 3 && differing.contains(&2) && a.dim(2) == a.dim(3) && b.dim(2) == b.dim(3) {
            continue; // H and W derived alike: one trace is enough
        }
        for n in cx
            .trace(ops[0].0, axis)
            .into_iter()
            .chain(cx.trace(ops[other].0, axis))
        {
            if !d.notes.contains(&n) {
                d = d.with_note(n);
            }
        }
    }
    if let Some(help) = add_fix(
        cx,
        id,
        (a, ops[0].0, ops[0].1),
        (b, ops[other].0, ops[other].1),
    ) {
        d = d.with_help(help);
    }
    d
}

/// An operand of an add: its shape, producer, and the span where it is used.
type Operand<'a> = (&'a Shape, NodeId, Span);

/// A computed fix for a residual add, when one exists. Candidates from both operands are
/// ranked as a person would fix a shortcut: a pool's ceil mode, then a 1x1 conv's stride,
/// then a projection of the larger operand, then a kxk conv's padding or stride.
fn add_fix(cx: &Ctx, add: NodeId, a: Operand, b: Operand) -> Option<String> {
    if a.0.rank() != 4 || b.0.rank() != 4 {
        return None;
    }
    if !a.0.dim(0).fits(b.0.dim(0)) {
        return None; // no layer can change the batch
    }
    let size = |s: &Shape| Some((s.dim(2).known()?, s.dim(3).known()?));
    let (sa, sb) = (size(a.0)?, size(b.0)?);
    let mut candidates: Vec<(u8, String)> = Vec::new();
    if sa != sb {
        candidates.extend(window_fixes(cx, add, a.1, sb));
        candidates.extend(window_fixes(cx, add, b.1, sa));
    }
    let (shortcut, branch) = if sa.0 >= sb.0 { (a, b) } else { (b, a) };
    let (sh, sw) = size(shortcut.0)?;
    let (bh, bw) = size(branch.0)?;
    if let Some(c) = branch.0.dim(1).known() {
        let stride = (1..=16).find(|&s| {
            conv_out(sh, 1, s, 0, 1) == Some(bh) && conv_out(sw, 1, s, 0, 1) == Some(bw)
        });
        if let Some(stride) = stride {
            let operand = cx.source.slice(shortcut.2);
            let operand = if operand.len() <= 24 && !operand.contains('\n') {
                operand.to_string()
            } else {
                "shortcut".to_string()
            };
            let stride_arg = if stride == 1 {
                String::new()
            } else {
                format!(", stride: {stride}")
            };
            candidates.push((2, format!("project the shortcut with a 1x1 conv: `{operand} -> downsample: [conv({c}, k: 1{stride_arg}), batchnorm]`")));
        }
    }
    candidates
        .into_iter()
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, fix)| fix)
}

/// The block instance (scope path) a node was made in.
fn instance_of(cx: &Ctx, id: NodeId) -> Option<String> {
    cx.g.instance_chain(cx.g.node(id).scope)
        .first()
        .map(|s| s.path.clone())
}

/// Ranked fixes on the latest conv or pool of `id`'s spatial path (inside the add's block
/// instance) that would give `target`.
fn window_fixes(cx: &Ctx, add: NodeId, id: NodeId, target: (u64, u64)) -> Vec<(u8, String)> {
    let home = instance_of(cx, add);
    let mut cur = id;
    let mut out = Vec::new();
    for _ in 0..10_000 {
        if matches!(cx.g.node(cur).op, Op::Input) || instance_of(cx, cur) != home {
            break;
        }
        let Some(&prev) = cx.g.operands(cur).first() else {
            break;
        };
        let (Some(now), Some(before)) = (cx.shape(cur), cx.shape(prev)) else {
            break;
        };
        if now.rank() != 4 || before.rank() != 4 {
            break;
        }
        let changes_size = now.dim(2) != before.dim(2) || now.dim(3) != before.dim(3);
        if changes_size || matches!(cx.g.node(cur).op, Op::Conv(_)) {
            let (Some(h), Some(w)) = (before.dim(2).known(), before.dim(3).known()) else {
                break;
            };
            let text = cx.text(cur);
            let line = cx.line(cx.g.node(cur).span);
            let gives = |arg: String, rank: u8| {
                (
                    rank,
                    format!(
                        "`{text}` at line {line} gives {}; with `{arg}` it would give {}",
                        now.dim(2),
                        target.0
                    ),
                )
            };
            match &cx.g.node(cur).op {
                Op::Conv(c) => {
                    let fits = |st: u64, p: u64| {
                        conv_out(h, c.kernel, st, p, c.dilation) == Some(target.0)
                            && conv_out(w, c.kernel, st, p, c.dilation) == Some(target.1)
                    };
                    let base = if c.kernel == 1 { 1 } else { 3 };
                    if let Some(st) = (1..=4).find(|&st| st != c.stride && fits(st, c.pad)) {
                        out.push(gives(
                            format!("stride: {st}"),
                            base + u8::from(c.kernel != 1),
                        ));
                    }
                    if let Some(p) =
                        (0..=c.kernel * c.dilation).find(|&p| p != c.pad && fits(c.stride, p))
                    {
                        out.push(gives(format!("pad: {p}"), 3));
                    } else if c.stride == 1 && c.kernel % 2 == 0 {
                        out.push((
                            3,
                            format!(
                                "the {k}x{k} kernel of `{text}` at line {line} cannot keep the size {h} with equal padding on both sides; use an odd kernel such as `k: {}, pad: {}`",
                                c.kernel - 1,
                                (c.kernel - 2) / 2,
                                k = c.kernel
                            ),
                        ));
                    }
                }
                Op::MaxPool(p) | Op::AvgPool(p) => {
                    let alt = !p.ceil_mode;
                    if pool_out(h, p.kernel, p.stride, p.pad, alt) == Some(target.0)
                        && pool_out(w, p.kernel, p.stride, p.pad, alt) == Some(target.1)
                    {
                        out.push(gives(format!("ceil: {alt}"), 0));
                    }
                }
                _ => {}
            }
            if changes_size {
                break;
            }
        }
        cur = prev;
    }
    out
}
