//! Shape diagnostics: a [`Mismatch`] from a rule, turned into a diagnostic that points at the
//! failing op, labels where each operand's shape came from, says how the offending dim was
//! derived, names the block instance, and proposes a computed fix where one exists.

use super::rules::{self, AXIS_NAMES, Mismatch};
use super::{Dim, Shape};
use crate::diag::{Code, Diagnostic};
use crate::ir::op::UpsampleTarget;
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
        quote(self.source.slice(self.g.node(id).span))
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

    /// Notes on how `axis` of `id`'s value was decided, nearest first, each starting with
    /// `who` (the operand): every op that changed it, the ops of the failing instance that
    /// kept it although their arguments could have changed it, the op that set the channels
    /// (even when it kept them) with the block call that set its arguments, and the input
    /// declaration at the root.
    fn trace(&self, id: NodeId, axis: usize, home: Option<&str>, who: &str) -> Vec<String> {
        const MAX_STEPS: usize = 8;
        let mut notes = Vec::new();
        let mut skipped = 0usize;
        // Whether an op outside the failing instance changed the dim yet: until one does, the
        // network-level ops that kept it are noted too (one of them may be the one that
        // should have changed it, e.g. a stride-1 conv before a block expecting half the size).
        let mut changed_outside = false;
        let mut cur = id;
        let name = AXIS_NAMES.get(axis).copied().unwrap_or("?");
        for _ in 0..1_000_000 {
            // H and W of `crop(like: v)` and `upsample(like: v)` come from `v`.
            let from_like = axis >= 2
                && match &self.g.node(cur).op {
                    Op::Crop => true,
                    Op::Upsample(u) => u.target == UpsampleTarget::Like,
                    _ => false,
                };
            let prev = match from_like {
                true => self.g.operands(cur).get(1).copied(),
                false => self.g.first_operand(cur),
            };
            let Some(prev) = prev else {
                if let Some(d) = self.shape(cur).map(|s| s.dim(axis).clone()) {
                    let at = self.origin(cur);
                    if skipped > 0 {
                        notes.push(format!(
                            "{who}: ({skipped} more op{} on the way)",
                            if skipped == 1 { "" } else { "s" }
                        ));
                    }
                    notes.push(format!(
                        "{who}: {name} = {d} as declared in `{}` at line {}",
                        quote(self.source.slice(at)),
                        self.line(at)
                    ));
                }
                break;
            };
            let (Some(now), Some(before)) = (self.shape(cur), self.shape(prev)) else {
                break;
            };
            let node = self.g.node(cur);
            let at = format!("`{}` at line {}", self.text(cur), self.line(node.span));
            let call = self.call_note(cur, home);
            if now.rank() != before.rank() {
                let what = if axis == 1 && now.rank() == 2 {
                    "features"
                } else {
                    name
                };
                notes.push(format!(
                    "{who}: {what} = {} from {before} by {at}{call}",
                    now.dim(axis)
                ));
                // Flattened channels of a pooled map: follow the channels further back.
                let pooled = before.rank() == 4
                    && before.dim(2) == &Dim::Known(1)
                    && before.dim(3) == &Dim::Known(1);
                if !(axis == 1 && pooled && matches!(node.op, Op::Flatten)) {
                    break;
                }
                cur = prev;
                continue;
            }
            let changed = now.dim(axis) != before.dim(axis);
            let decides = match &node.op {
                Op::Conv(_) | Op::ConvTranspose(_) | Op::ShortcutA(_) | Op::Linear(_) => true,
                Op::MaxPool(_) | Op::AvgPool(_) => axis >= 2,
                Op::Upsample(_) | Op::Crop | Op::Pad(_) => axis >= 2,
                Op::Concat => axis == 1,
                _ => false,
            };
            let local = instance_path(self.g, cur).as_deref() == home;
            let name = if axis == 1 && now.rank() == 2 {
                "features"
            } else {
                name
            };
            let network_level = self.g.instance_chain(node.scope).is_empty();
            let kept_before = home.is_some() && network_level && !changed_outside;
            if decides && !local && changed {
                changed_outside = true;
            }
            if decides && (changed || local || axis == 1 || kept_before) {
                if notes.len() >= MAX_STEPS {
                    skipped += 1;
                } else if axis == 1 && matches!(node.op, Op::Concat) {
                    let parts = self.g.operands(cur).len();
                    notes.push(format!(
                        "{who}: C = {}, the channels of {parts} operands joined by {at}{call}",
                        now.dim(axis)
                    ));
                } else if changed {
                    notes.push(format!(
                        "{who}: {name} = {} \u{2190} {} by {at}{}{call}",
                        now.dim(axis),
                        before.dim(axis),
                        how(&node.op, axis)
                    ));
                } else {
                    notes.push(format!(
                        "{who}: {name} = {} kept by {at}{}{call}",
                        now.dim(axis),
                        how(&node.op, axis)
                    ));
                }
                if axis == 1 {
                    break; // the channels are decided here: nothing before matters
                }
            } else if decides && changed {
                skipped += 1;
            }
            cur = prev;
        }
        notes
    }

    /// ", in `layer2.0` = `basic(128, stride: 2)` at line 16": the block call that set the
    /// arguments of a node outside the failing op's own instance.
    fn call_note(&self, id: NodeId, home: Option<&str>) -> String {
        let chain = self.g.instance_chain(self.g.node(id).scope);
        let Some(inner) = chain.first() else {
            return String::new();
        };
        if Some(inner.path.as_str()) == home {
            return String::new();
        }
        format!(
            ", in `{}` = `{}` at line {}",
            inner.path,
            quote(self.source.slice(inner.span)),
            self.line(inner.span)
        )
    }

    /// "in `layer2.0` (an instance of block `basic`), instantiated as `basic(128, stride: 2)` at
    /// line 40".
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
        // The call quoted: its arguments decided the instance's ops.
        Some(format!(
            "in `{path}` (an instance of block `{name}`), instantiated as `{}` at line {}",
            quote(self.source.slice(inner.span)),
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

/// How an op changes a dim, for provenance notes: window, stride, padding, and dilation or
/// groups where they are not 1.
fn how(op: &Op, axis: usize) -> String {
    use crate::ops::{size, window};
    match op {
        Op::Conv(c) if axis >= 2 => format!(
            " ({} kernel, stride {}, pad {}{})",
            window(c.kernel),
            size(c.stride),
            size(c.pad),
            if c.dilation != [1, 1] {
                format!(", dilation {}", size(c.dilation))
            } else {
                String::new()
            },
        ),
        Op::Conv(c) if c.groups != 1 => format!(" ({} groups)", c.groups),
        Op::MaxPool(p) | Op::AvgPool(p) if axis >= 2 => {
            format!(
                " ({} window, stride {}, pad {}{})",
                window(p.kernel),
                size(p.stride),
                size(p.pad),
                if p.ceil_mode { ", ceil mode" } else { "" },
            )
        }
        Op::ShortcutA(s) if axis >= 2 => format!(" (stride {})", s.stride),
        Op::ConvTranspose(c) if axis >= 2 => {
            let i = axis - 2;
            format!(
                " ({}x{} transposed kernel, stride {}, pad {}, output_pad {})",
                c.kernel[0], c.kernel[1], c.stride[i], c.pad[i], c.output_pad[i]
            )
        }
        Op::Upsample(u) if axis >= 2 => match u.target {
            UpsampleTarget::Scale(f) => format!(" (scale {})", f[axis - 2]),
            UpsampleTarget::Size(s) => format!(" (size {})", s[axis - 2]),
            UpsampleTarget::Like => " (to the size of `like`)".to_string(),
        },
        Op::Crop if axis >= 2 => " (to the size of `like`)".to_string(),
        Op::Pad(p) if axis >= 2 => {
            let [l, r, t, b] = p.sides;
            let (a, z) = if axis == 2 { (t, b) } else { (l, r) };
            format!(" ({a} before, {z} after)")
        }
        _ => String::new(),
    }
}

/// The block instance a node was made in, by path.
fn instance_path(g: &Graph, id: NodeId) -> Option<String> {
    g.instance_chain(g.node(id).scope)
        .first()
        .map(|s| s.path.clone())
}

/// Source text for a message, on one line: whole when short; otherwise the middle of the
/// argument list is elided, never part of an argument (`conv(64, ..., pad: 1)`).
pub(crate) fn quote(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= 60 {
        return one_line;
    }
    // Split the outermost argument list at top-level commas.
    let Some(open) = one_line.find('(') else {
        return one_line;
    };
    let Some(close) = one_line.rfind(')') else {
        return one_line;
    };
    if close < open {
        return one_line;
    }
    let inner = &one_line[open + 1..close];
    let mut args = Vec::new();
    let (mut depth, mut from) = (0i32, 0usize);
    for (i, ch) in inner.char_indices() {
        match ch {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                args.push(inner[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    args.push(inner[from..].trim());
    if args.len() <= 2 {
        return one_line;
    }
    format!(
        "{}{}, ..., {}{}",
        &one_line[..=open],
        args[0],
        args[args.len() - 1],
        &one_line[close..]
    )
}

/// The code of the diagnostic a mismatch of `op` becomes: what [`mismatch`] reports, for
/// those that need the code alone (the valid input sizes).
pub(super) fn code(op: &Op, m: &Mismatch) -> Code {
    match m {
        Mismatch::Rank { .. } => Code::Rank,
        Mismatch::Stated { .. } => Code::StatedChannels,
        Mismatch::Groups { .. } => Code::Groups,
        Mismatch::Window { .. } => Code::WindowTooLarge,
        Mismatch::Operands { .. } if *op == Op::Add => Code::AddMismatch,
        Mismatch::Operands { .. } => Code::ConcatMismatch,
        Mismatch::Gate => Code::GateMismatch,
        Mismatch::ShortcutChannels { .. } => Code::ShortcutChannels,
        Mismatch::Crop { .. } => Code::CropTooLarge,
        Mismatch::Overflow(_) => Code::SizeOverflow,
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
    let expected_code = code(&node.op, &m);
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
            .with_primary(
                node.span,
                if operand == 0 {
                    format!("its input has shape {found}")
                } else {
                    format!("its `like` value has shape {found}")
                },
            );
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
            let fit = rules::fitting_groups(groups, c_in, c_out);
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
            let home = instance_path(cx.g, id);
            for n in cx.trace(operands[0], axis, home.as_deref(), "the input") {
                d = d.with_note(n);
            }
            d
        }
        Mismatch::Operands { other, axis } if node.op == Op::Add => {
            add_mismatch(&cx, id, ins, other, axis)
        }
        Mismatch::Operands { other, axis } => concat_mismatch(&cx, id, ins, other, axis),
        Mismatch::Gate => {
            let (x, gate) = (ins[0], ins[1]);
            let mut d = Diagnostic::error(Code::GateMismatch, "gate shape does not fit in mul")
                .with_primary(node.span, format!("cannot multiply {x} by {gate}"))
                .with_note("`x * g` needs g of the same shape as x, a [N, C, 1, 1] channel gate with x's channels, or a [N, 1, H, W] spatial gate with x's H and W");
            d = cx.operand_label(d, operands[0], "the input");
            d = cx.operand_label(d, operands[1], "the gate");
            // A spatial gate of another size: where each size came from.
            if gate.rank() == 4 && gate.dim(1) == &Dim::Known(1) {
                let home = instance_path(cx.g, id);
                for axis in [2, 3] {
                    if !x.dim(axis).fits(gate.dim(axis)) {
                        for n in cx.trace(operands[1], axis, home.as_deref(), "the gate") {
                            d = d.with_note(n);
                        }
                        for n in cx.trace(operands[0], axis, home.as_deref(), "the input") {
                            d = d.with_note(n);
                        }
                        break;
                    }
                }
            }
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
        Mismatch::Crop { axis, len, target } => crop_mismatch(&cx, id, axis, len, target),
        Mismatch::Overflow(what) => {
            Diagnostic::error(Code::SizeOverflow, format!("{what} overflows 64 bits"))
                .with_primary(node.span, "too large to count")
                .with_note("sizes are signed 64-bit integers, as in PyTorch and ONNX: at most 2^63 - 1 = 9223372036854775807")
        }
    };
    debug_assert_eq!(
        d.code, expected_code,
        "`report::code` disagrees with `mismatch`"
    );
    if let Some(n) = cx.instance_note(id) {
        d = d.with_note(n);
    }
    d
}

/// A center crop whose target (`like`) is larger than its input along `axis`.
fn crop_mismatch(cx: &Ctx, id: NodeId, axis: usize, len: u64, target: u64) -> Diagnostic {
    let node = cx.g.node(id);
    let (input, like) = (cx.g.operands(id)[0], cx.g.operands(id)[1]);
    let name = AXIS_NAMES[axis];
    let mut d = Diagnostic::error(Code::CropTooLarge, "crop larger than its input")
        .with_primary(
            node.span,
            format!("cannot crop {name} = {len} to {name} = {target}"),
        )
        .with_note("a center crop keeps the middle of its input: the `like` value must be at most as large in H and W");
    d = cx.operand_label(d, input, "the input");
    d = cx.operand_label(d, like, "the `like` value");
    let home = instance_path(cx.g, id);
    for n in cx.trace(input, axis, home.as_deref(), "the input") {
        d = d.with_note(n);
    }
    for n in cx.trace(like, axis, home.as_deref(), "the `like` value") {
        d = d.with_note(n);
    }
    d.with_help(format!(
        "crop the larger value to the smaller one: `{} -> crop(like: {})`",
        quote(cx.source.slice(cx.origin(like))),
        quote(cx.source.slice(cx.origin(input)))
    ))
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
    let home = instance_path(cx.g, id);
    for n in cx.trace(producer, 1, home.as_deref(), "the input") {
        d = d.with_note(n);
    }
    d.with_note(format!(
        "either {found} is right and the layer should state {fix}, or the layer before should produce {stated}"
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
    let mut names = Vec::new();
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
        names.push(if what.starts_with('`') {
            format!("{} {what}", if i == 0 { "left" } else { "right" })
        } else {
            what.clone()
        });
    }
    if swapped(a, b) {
        d = d.with_note(format!(
            "H and W are each other's ({} x {} and {} x {}): was an input declared with them swapped?",
            a.dim(2), a.dim(3), b.dim(2), b.dim(3)
        ));
    }
    let home = instance_path(cx.g, id);
    // Each operand's notes together, labelled with the operand.
    for (i, producer) in [ops[0].0, ops[other].0].into_iter().enumerate() {
        for &axis in &differing {
            if axis == 3 && differing.contains(&2) && a.dim(2) == a.dim(3) && b.dim(2) == b.dim(3) {
                continue; // H and W derived alike: one trace is enough
            }
            for n in cx.trace(producer, axis, home.as_deref(), &names[i]) {
                if !d.notes.contains(&n) {
                    d = d.with_note(n);
                }
            }
        }
    }
    d
}

/// Whether two shapes' H and W are each other's (and differ).
fn swapped(a: &Shape, b: &Shape) -> bool {
    a.rank() == 4
        && b.rank() == 4
        && a.dim(2) != a.dim(3)
        && a.dim(2) == b.dim(3)
        && a.dim(3) == b.dim(2)
}

/// A concat whose operands differ: the odd operand out is the one whose size differs from
/// what most operands have (the first operand when there are two).
fn concat_mismatch(cx: &Ctx, id: NodeId, ins: &[&Shape], other: usize, axis: usize) -> Diagnostic {
    let node = cx.g.node(id);
    let operands = cx.g.operands(id);
    let axis_name = AXIS_NAMES.get(axis).copied().unwrap_or("rank");
    let at = |s: &Shape| {
        if axis < 4 {
            s.dim(axis).clone()
        } else {
            Dim::Known(s.rank() as u64)
        }
    };
    let majority = ins
        .iter()
        .map(|s| at(s))
        .max_by_key(|v| ins.iter().filter(|s| at(s) == *v).count())
        .unwrap_or(Dim::Unknown);
    let agree = ins.iter().filter(|s| at(s) == majority).count();
    let odd = if agree * 2 > ins.len() {
        (0..ins.len())
            .find(|&i| at(ins[i]) != majority)
            .unwrap_or(other)
    } else {
        other
    };
    let usual = if odd == 0 { other } else { 0 };
    let (x, y) = (ins[usual], ins[odd]);
    let mut d = Diagnostic::error(
        Code::ConcatMismatch,
        format!("concat operands differ in {axis_name}"),
    )
    .with_primary(
        node.span,
        format!("cannot concatenate {y} with {x} along channels"),
    )
    .with_note("concat joins channels: N, H and W must be equal");
    if agree * 2 > ins.len() && ins.len() > 2 {
        d = d.with_note(format!(
            "{agree} of {} operands have {axis_name} = {majority}; operand {} is the odd one out",
            ins.len(),
            odd + 1
        ));
    }
    let odd_name = format!("operand {} (the odd one out)", odd + 1);
    let usual_name = format!("operand {}", usual + 1);
    d = cx.operand_label(d, operands[odd], &odd_name);
    d = cx.operand_label(d, operands[usual], &usual_name);
    if axis < 4 {
        let home = instance_path(cx.g, id);
        for (o, name) in [(odd, &odd_name), (usual, &usual_name)] {
            for n in cx.trace(operands[o], axis, home.as_deref(), name) {
                if !d.notes.contains(&n) {
                    d = d.with_note(n);
                }
            }
        }
    }
    d
}
