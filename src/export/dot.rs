//! Graphviz DOT for a lowered network: [`to_dot`].
//!
//! Ops are boxes labelled with their parameters and path, edges carry the producer's inferred
//! shape, block instances and labelled sequences are nested clusters, residual adds and their
//! shortcuts stand out, and nodes with diagnostics are drawn red with the message. The text is
//! written by hand (not petgraph's `Dot`) so that it is deterministic byte for byte: everything
//! is visited in node or scope index order. This module does no IO; the CLI runs Graphviz.

use super::label::{diagnostic_text, node_diagnostics, op_text, shape_text};
use super::shortcut::{self, Kind, Shortcuts};
use super::view::{Item, Member, View};
use crate::diag::Diagnostic;
use crate::ir::{Graph, NodeId, Op, ScopeId};
use crate::shape::Shapes;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// How to draw a network.
#[derive(Clone, Debug, Default)]
pub struct DotOptions {
    /// Draw clusters nested at most this deep; deeper block instances and sequences collapse
    /// into one node each. `None` draws every op.
    pub depth: Option<usize>,
}

const LEGEND: &str = "\
// Legend:
//   box, white            an op: its name and key parameters, then its path
//   box, pale blue        conv or linear (an op with weights)
//   ellipse, amber        a residual add
//   box3d, lavender       a collapsed block instance or sequence (--depth)
//   red, filled           an op with an error (yellow: a warning); the message is in its label
//   edge label            the tensor shape (NCHW) the edge carries
//   blue dashed edge      identity shortcut: the add's operand is the block input itself
//   orange edge           projection shortcut: it passes through a conv (e.g. `downsample`)
//   purple edge           parameter-free shortcut: it reshapes without weights (`shortcut_a`, pooling)
//   cluster               a block instance (`layer2.0: basic`, solid) or a labelled sequence (dashed)
";

const COLOR_IDENTITY: &str = "#1f77b4";
const COLOR_PROJECTION: &str = "#e6550d";
const COLOR_PARAM_FREE: &str = "#8e44ad";
const COLOR_ERROR: &str = "#cc0000";

/// Draw `g` as a Graphviz digraph. `shapes` labels edges and input channels; a node whose span
/// is the primary span of one of `diags` is highlighted with the message.
pub fn to_dot(
    g: &Graph,
    shapes: Option<&Shapes>,
    diags: &[Diagnostic],
    opts: &DotOptions,
) -> String {
    let view = View::new(g, opts.depth);
    let apart = split_causes(diags);
    let diags = item_diagnostics(&view, node_diagnostics(g, shapes, &apart));
    let mut w = Writer {
        g,
        shapes,
        view,
        shortcuts: shortcut::find(g),
        diags,
        out: String::new(),
    };
    w.header();
    let members = w.view.members();
    w.members(&members, None, 1);
    w.edges();
    w.outputs();
    w.out.push_str("}\n");
    w.out
}

struct Writer<'a> {
    g: &'a Graph,
    shapes: Option<&'a Shapes>,
    view: View<'a>,
    shortcuts: Shortcuts,
    /// The diagnostics drawn on each item, errors first.
    diags: BTreeMap<Item, Vec<&'a Diagnostic>>,
    out: String,
}

impl Writer<'_> {
    fn header(&mut self) {
        let name = &self.g.name;
        let _ = writeln!(
            self.out,
            "// network `{}`, drawn by resnetc",
            name.replace('\n', " ")
        );
        self.out.push_str("//\n");
        self.out.push_str(LEGEND);
        let _ = writeln!(self.out, "digraph {} {{", quote(name));
        let _ = writeln!(
            self.out,
            "    graph [rankdir=TB, newrank=true, nodesep=0.3, ranksep=0.35, fontname=\"Helvetica\", fontsize=12, labelloc=t, label={}];",
            quote(&format!("network {name}"))
        );
        self.out.push_str("    node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", color=\"#444444\", fontname=\"Helvetica\", fontsize=10];\n");
        self.out.push_str("    edge [color=\"#555555\", arrowsize=0.6, fontname=\"Helvetica\", fontsize=8, fontcolor=\"#555555\"];\n");
    }

    /// Write what `home` holds: its items, then its nested clusters, recursively.
    fn members(
        &mut self,
        members: &BTreeMap<Option<ScopeId>, Vec<Member>>,
        home: Option<ScopeId>,
        indent: usize,
    ) {
        let Some(list) = members.get(&home) else {
            return;
        };
        for &m in list {
            match m {
                Member::Item(item) => self.item(item, indent),
                Member::Cluster(s) => {
                    let pad = "    ".repeat(indent);
                    let style = if self.view.is_block(s) {
                        "rounded"
                    } else {
                        "rounded,dashed"
                    };
                    let _ = writeln!(self.out, "{pad}subgraph cluster_{s} {{");
                    let _ = writeln!(
                        self.out,
                        "{pad}    graph [label={}, style=\"{style}\", color=\"#999999\", fontcolor=\"#333333\", fontsize=10, labeljust=l];",
                        quote(&self.view.cluster_label(s))
                    );
                    self.members(members, Some(s), indent + 1);
                    let _ = writeln!(self.out, "{pad}}}");
                }
            }
        }
    }

    /// One DOT node: an op or a collapsed scope.
    fn item(&mut self, item: Item, indent: usize) {
        let (mut label, mut look) = match item {
            Item::Node(id) => self.node_look(id),
            Item::Collapsed(s) => (
                self.view.collapsed_label(s),
                Look {
                    shape: Some("box3d"),
                    style: Some("filled"),
                    fill: Some("#e8e0f4"),
                    ..Look::default()
                },
            ),
        };
        if let Some(diags) = self.diags.get(&item) {
            for d in diags {
                label.push('\n');
                label.push_str(&diagnostic_text(d));
            }
            // Errors sort first, so the first diagnostic decides the color.
            let (fill, color) = if diags[0].is_error() {
                ("#ffcccc", COLOR_ERROR)
            } else {
                ("#fff0c0", "#b8860b")
            };
            look.fill = Some(fill);
            look.color = Some(color);
            look.penwidth = Some("2");
        }
        let _ = writeln!(
            self.out,
            "{}{} [label={}{}];",
            "    ".repeat(indent),
            item_id(item),
            quote(&label),
            look.attrs()
        );
    }

    /// The label and look of an op node.
    fn node_look(&self, id: NodeId) -> (String, Look) {
        let node = self.g.node(id);
        let text = op_text(self.g, self.shapes, id);
        match node.op {
            Op::Input => (
                text,
                Look {
                    shape: Some("oval"),
                    fill: Some("#eeeeee"),
                    ..Look::default()
                },
            ),
            Op::Add => (
                format!("{text}\n{}", node.path),
                Look {
                    shape: Some("ellipse"),
                    fill: Some("#ffd970"),
                    penwidth: Some("1.5"),
                    ..Look::default()
                },
            ),
            Op::Conv(_) | Op::ConvTranspose(_) | Op::Linear(_) => (
                format!("{text}\n{}", node.path),
                Look {
                    fill: Some("#dbe9f6"),
                    ..Look::default()
                },
            ),
            _ => (format!("{text}\n{}", node.path), Look::default()),
        }
    }

    /// Every edge between two drawn items, in consumer order then operand order; edges inside
    /// a collapsed scope vanish and parallel edges into a collapsed scope merge.
    fn edges(&mut self) {
        let mut seen = BTreeSet::new();
        for id in self.g.node_ids() {
            let to = self.view.item_of(id);
            for (slot, from_node) in self.g.operands(id).into_iter().enumerate() {
                let from = self.view.item_of(from_node);
                if from == to || !seen.insert((from, to, from_node)) {
                    continue;
                }
                let mark = self.shortcuts.mark(id, slot as u32);
                let attrs = self.edge_attrs(from_node, mark);
                let _ = writeln!(self.out, "    {} -> {}{attrs};", item_id(from), item_id(to));
            }
        }
    }

    /// `[label=..., style...]` for an edge from `producer`, styled when it is on a shortcut.
    fn edge_attrs(&self, producer: NodeId, mark: Option<(Kind, bool)>) -> String {
        let mut attrs = Vec::new();
        if let Some(shape) = shape_text(self.shapes, producer) {
            attrs.push(format!("label={}", quote(&shape)));
        }
        if let Some((kind, into_add)) = mark {
            let color = match kind {
                Kind::Identity => COLOR_IDENTITY,
                Kind::Projection => COLOR_PROJECTION,
                Kind::ParamFree => COLOR_PARAM_FREE,
            };
            attrs.push(format!(
                "color=\"{color}\", fontcolor=\"{color}\", penwidth=1.6"
            ));
            if kind == Kind::Identity {
                attrs.push("style=dashed".to_string());
            }
            if into_add {
                // Let the skip arc around the main branch instead of pulling it sideways.
                attrs.push("weight=0".to_string());
            }
        }
        if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        }
    }

    /// A node for each network output, fed by the op that makes it.
    fn outputs(&mut self) {
        for (i, o) in self.g.outputs.iter().enumerate() {
            let label = format!("output {}", o.name);
            let _ = writeln!(
                self.out,
                "    out{i} [label={}, shape=\"oval\", fillcolor=\"#eeeeee\"];",
                quote(&label)
            );
            let from = item_id(self.view.item_of(o.node));
            let attrs = self.edge_attrs(o.node, None);
            let _ = writeln!(self.out, "    {from} -> out{i}{attrs};");
        }
    }
}

/// The diagnostics of each drawn item, errors first: a collapsed scope shows those of its ops.
/// Errors merged into one diagnostic by their cause, drawn apart again: each failing op red
/// with its own label (the secondary label at its span).
fn split_causes(diags: &[Diagnostic]) -> Vec<Diagnostic> {
    let mut out = Vec::with_capacity(diags.len());
    for d in diags {
        for &span in &d.merged {
            let mut member = d.clone();
            member.merged.clear();
            member.primary = d.secondary.iter().find(|l| l.span == span).cloned();
            out.push(member);
        }
        out.push(d.clone());
    }
    out
}

fn item_diagnostics<'d>(
    view: &View,
    by_node: BTreeMap<usize, Vec<&'d Diagnostic>>,
) -> BTreeMap<Item, Vec<&'d Diagnostic>> {
    let mut out: BTreeMap<Item, Vec<&Diagnostic>> = BTreeMap::new();
    for (idx, ds) in by_node {
        let found = out.entry(view.item_of(NodeId::new(idx))).or_default();
        for d in ds {
            if !found.contains(&d) {
                found.push(d);
            }
        }
    }
    for found in out.values_mut() {
        found.sort_by_key(|d| !d.is_error());
    }
    out
}

/// How a DOT node differs from the defaults of the `node [...]` line.
#[derive(Default)]
struct Look {
    shape: Option<&'static str>,
    style: Option<&'static str>,
    fill: Option<&'static str>,
    color: Option<&'static str>,
    penwidth: Option<&'static str>,
}

impl Look {
    /// `, shape="oval", fillcolor="#eeeeee"`: each attribute once.
    fn attrs(&self) -> String {
        let mut s = String::new();
        let all = [
            ("shape", self.shape),
            ("style", self.style),
            ("fillcolor", self.fill),
            ("color", self.color),
            ("penwidth", self.penwidth),
        ];
        for (key, value) in all {
            if let Some(v) = value {
                let _ = write!(s, ", {key}=\"{v}\"");
            }
        }
        s
    }
}

fn item_id(item: Item) -> String {
    match item {
        Item::Node(id) => format!("n{}", id.index()),
        Item::Collapsed(s) => format!("s{s}"),
    }
}

/// A DOT double-quoted string that Graphviz shows as `text`, line breaks included.
///
/// Quotes and backslashes are escaped; so are `{ } < > |`, which record shapes would read as
/// structure (Graphviz drops the backslash elsewhere). A newline becomes `\n` (a centered line
/// break); other control characters become spaces. Non-ASCII text passes through as UTF-8.
pub fn quote(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' | '{' | '}' | '<' | '>' | '|' => {
                s.push('\\');
                s.push(c);
            }
            '\n' => s.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => s.push(' '),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_graphviz_label_syntax() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(quote(r"a\b"), r#""a\\b""#);
        assert_eq!(quote(r"\N"), r#""\\N""#);
        assert_eq!(quote("{x} <y> |z"), r#""\{x\} \<y\> \|z""#);
        assert_eq!(quote("two\nlines"), r#""two\nlines""#);
        assert_eq!(quote("crlf\r\nend\tok"), r#""crlf\nend ok""#);
        assert_eq!(
            quote("conv 3x3/2, 64→128 · größe"),
            "\"conv 3x3/2, 64→128 · größe\""
        );
        assert_eq!(quote(""), "\"\"");
    }
}
