//! The human table of a summary: one row per op, or per group (a block instance or labelled
//! sequence collapsed into its totals) below the depth asked for, nested as `graph --depth`
//! draws the network ([`crate::export::view::View::for_table`]); then the totals, the
//! conventions and the valid input sizes.

use super::{Counts, Megabytes, Summary, sizes};
use crate::export::view::{Item, Member, View};
use crate::ir::ScopeId;

const HEADER: [&str; 9] = [
    "layer",
    "op",
    "output shape",
    "params",
    "param MB",
    "act MB",
    "MACs",
    "RF",
    "stride",
];

type Row = [String; 9];

/// Where each row's parts are in the summary: by node index and by scope.
struct Index {
    layer_of: Vec<Option<usize>>,
    group_of: Vec<Option<usize>>,
}

impl Summary<'_> {
    /// The human table.
    pub fn to_table(&self) -> String {
        let g = self.graph;
        let mut index = Index {
            layer_of: vec![None; g.dag.node_count()],
            group_of: vec![None; g.scopes.len()],
        };
        let by_path: std::collections::HashMap<&str, usize> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| (l.path, i))
            .collect();
        for id in g.node_ids() {
            index.layer_of[id.index()] = by_path.get(g.node(id).path.as_str()).copied();
        }
        for (i, grp) in self.groups.iter().enumerate() {
            index.group_of[grp.scope] = Some(i);
        }
        let view = View::for_table(g, self.depth);
        let members = view.members();
        let mut rows = Vec::new();
        self.rows(&view, &members, &index, None, 0, &mut rows);
        let mut out = format!("network {}\n", self.name);
        for i in &self.inputs {
            out.push_str(&format!("  input  {}: {}\n", i.name, i.shape));
        }
        for o in &self.outputs {
            out.push_str(&format!("  output {}: {}\n", o.name, o.shape));
        }
        out.push('\n');
        out.push_str(&render(&rows));
        self.totals(&mut out);
        self.sizes_table(&mut out);
        out
    }

    /// The rows of what the view puts at `key` (the top level, or a drawn group), nested.
    fn rows(
        &self,
        view: &View,
        members: &std::collections::BTreeMap<Option<ScopeId>, Vec<Member>>,
        index: &Index,
        key: Option<ScopeId>,
        indent: usize,
        rows: &mut Vec<Row>,
    ) {
        for m in members.get(&key).into_iter().flatten() {
            match *m {
                Member::Item(Item::Node(id)) => {
                    if let Some(l) = index.layer_of[id.index()].map(|i| &self.layers[i]) {
                        rows.push(row(
                            indent,
                            l.path,
                            l.op.to_string(),
                            l.shape.to_string(),
                            &l.counts(),
                            l.receptive_field,
                            l.jump,
                        ));
                    }
                }
                Member::Item(Item::Collapsed(s)) | Member::Cluster(s) => {
                    if let Some(grp) = index.group_of[s].map(|i| &self.groups[i]) {
                        let what = match (grp.block, view.uniform_block(s)) {
                            (Some(block), _) => block.to_string(),
                            (None, Some((block, n))) => format!("{block} × {n}"),
                            (None, None) => view.items_summary(s),
                        };
                        rows.push(row(
                            indent,
                            grp.path,
                            what,
                            grp.shape.to_string(),
                            &grp.counts,
                            grp.receptive_field,
                            grp.jump,
                        ));
                    }
                    if matches!(m, Member::Cluster(_)) {
                        self.rows(view, members, index, Some(s), indent + 1, rows);
                    }
                }
            }
        }
    }

    /// The totals and the conventions.
    fn totals(&self, out: &mut String) {
        let unknown = self.unknown_reason();
        match (self.params, self.non_trainable_params) {
            (Some(p), Some(n)) => out.push_str(&format!(
                "total params: {} trainable, {} non-trainable\n",
                group(p),
                group(n)
            )),
            _ => out.push_str(&format!("total params: {unknown}\n")),
        }
        match self.macs {
            Some(m) => out.push_str(&format!(
                "total MACs:   {} ({:.3} G)\n",
                group(m),
                m as f64 / 1e9
            )),
            None => out.push_str(&format!("total MACs:   {unknown}\n")),
        }
        let mb = |m: Option<Megabytes>| m.map_or("?".to_string(), |m| format!("{:.2}", m.mb()));
        out.push_str(&format!(
            "memory:       {} MB of parameters, {} MB of activations per sample\n",
            mb(self.param_mb),
            mb(self.activation_mb)
        ));
        let ops: Vec<String> = self
            .ops
            .iter()
            .map(|(op, n)| format!("{op} x{n}"))
            .collect();
        out.push_str(&format!("ops: {}\n", ops.join(", ")));
        if !self.blocks.is_empty() {
            let b: Vec<String> = self
                .blocks
                .iter()
                .map(|(b, n)| format!("{b} x{n}"))
                .collect();
            out.push_str(&format!("blocks: {}\n", b.join(", ")));
        }
        out.push_str(&format!("({})\n", super::CONVENTION));
    }

    /// The valid input sizes, one line per input axis.
    fn sizes_table(&self, out: &mut String) {
        let Some(range) = self.sizes_range else {
            return;
        };
        if let Some(why) = &self.valid_sizes_skipped {
            out.push_str(&format!(
                "\nvalid input sizes in {range}: not analysed: {why}\n"
            ));
            return;
        }
        out.push_str(&format!(
            "\nvalid input sizes in {range} (one axis varied, every other dimension as declared):\n"
        ));
        for a in self.valid_sizes.iter().flatten() {
            out.push_str(&format!(
                "  {} {}: {}\n",
                a.input,
                a.axis,
                sizes::describe(&a.values)
            ));
            if let Some(f) = &a.first_failure {
                out.push_str(&format!(
                    "    first failure at {} = {}: {} at `{}`\n",
                    a.axis,
                    f.size,
                    f.code.as_str(),
                    f.path
                ));
            }
            if let Some(by) = &a.coupled_by {
                let other = if a.axis == "H" { "W" } else { "H" };
                out.push_str(&format!(
                    "    coupled with C and {other} by `{by}`, which flattens {} into features: these sizes hold for {other} as declared\n",
                    a.axis
                ));
            }
        }
    }
}

/// One row: a layer's or a group's cells.
fn row(
    indent: usize,
    path: &str,
    what: String,
    shape: String,
    c: &Counts,
    field: Option<[u64; 2]>,
    jump: Option<[u64; 2]>,
) -> Row {
    let mb = |m: Option<Megabytes>| match m {
        None => "?".to_string(),
        Some(Megabytes(0)) => "-".to_string(),
        Some(m) => format!("{:.2}", m.mb()),
    };
    let pair = |p: Option<[u64; 2]>| match p {
        None => "-".to_string(),
        Some([h, w]) if h == w => h.to_string(),
        Some([h, w]) => format!("{h}x{w}"),
    };
    [
        format!("{}{path}", "  ".repeat(indent)),
        what,
        shape,
        cell(c.params),
        mb(c.param_mb),
        mb(c.activation_mb),
        cell(c.macs),
        pair(field),
        pair(jump),
    ]
}

/// The rows under the header, columns padded, numbers right-aligned.
fn render(rows: &[Row]) -> String {
    let mut width = HEADER.map(|h| h.chars().count());
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 9]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = " ".repeat(width[i] - c.chars().count());
            if i > 0 {
                s.push_str("  ");
            }
            if i < 3 {
                s.push_str(c);
                if i < 8 {
                    s.push_str(&pad);
                }
            } else {
                s.push_str(&pad);
                s.push_str(c);
            }
        }
        s.push('\n');
        s
    };
    let rule = "-".repeat(width.iter().sum::<usize>() + 2 * (HEADER.len() - 1));
    let mut out = line(HEADER);
    out.push_str(&rule);
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.each_ref().map(String::as_str)));
    }
    out.push_str(&rule);
    out.push('\n');
    out
}

/// A count for the table: `-` for zero, `?` for unknown.
fn cell(v: Option<u64>) -> String {
    match v {
        Some(0) => "-".into(),
        Some(v) => group(v),
        None => "?".into(),
    }
}

/// 11689512 -> "11,689,512".
pub fn group(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
