//! Valid input sizes: for each network input and spatial axis, the exact set of sizes in a
//! range at which the network checks, written as ranges and arithmetic progressions, with the
//! smallest size that fails and the op that fails it.
//!
//! The rule (stated in docs/language.md): one axis of one input is varied alone; every other
//! dimension of every input keeps its declaration (a symbol stays a symbol). A size is valid
//! when the network with that one dimension of its input declaration replaced checks without
//! errors, which is what the tests verify by editing the text. The network is lowered once;
//! each size re-runs only inference, through the same rules, stopping at the first op that
//! fails. Lowering decides from sizes only where `channels(x)`, `height(x)` or `width(x)` asked
//! for one: when a value lowering asked about has another shape at some size (or cannot be
//! told, inference having stopped before it), that size is checked in full instead, the
//! declaration edited in the text. Work is bounded ([`MAX_WORK`]).

use super::{Dim, Partial, Shape, propagate, report};
use crate::diag::Code;
use crate::ir::{DimSpec, Graph, NodeId, Probe, ShapeOracle};
use crate::span::{Source, Span};
use crate::syntax::ast;
use serde::Serialize;
use std::fmt;

/// The range analysed when an input's H or W is symbolic and none is asked for.
pub const DEFAULT_RANGE: SizeRange = SizeRange { lo: 1, hi: 1024 };
/// The most node evaluations one analysis may cost (nodes × sizes × axes), about seconds.
pub const MAX_WORK: u64 = 1 << 26;

/// An inclusive range of sizes, `LO..HI` with `1 <= LO <= HI`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SizeRange {
    pub lo: u64,
    pub hi: u64,
}

impl SizeRange {
    fn len(self) -> u64 {
        self.hi - self.lo + 1
    }
}

impl std::str::FromStr for SizeRange {
    type Err = String;

    fn from_str(s: &str) -> Result<SizeRange, String> {
        let bad = || format!("`{s}` is not a range of sizes: write `LO..HI`, e.g. `1..1024`");
        let (lo, hi) = s.split_once("..").ok_or_else(bad)?;
        let lo: u64 = lo.trim().parse().map_err(|_| bad())?;
        let hi: u64 = hi.trim().parse().map_err(|_| bad())?;
        if lo == 0 || lo > hi {
            return Err(format!(
                "`{s}`: sizes start at 1 and the range must not be empty (LO <= HI)"
            ));
        }
        Ok(SizeRange { lo, hi })
    }
}

impl fmt::Display for SizeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.lo, self.hi)
    }
}

/// The valid sizes of one spatial axis of one input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AxisSizes {
    pub input: String,
    /// `"H"` or `"W"`.
    pub axis: &'static str,
    /// `[start, end, step]` progressions whose union is exactly the valid sizes in the range,
    /// in order of `start`; `[s, s, 1]` for a lone size; empty for none.
    pub values: Vec<[u64; 3]>,
    /// The smallest size in the range that fails, and the first op (in graph order) that fails
    /// at it.
    pub first_failure: Option<Failure>,
    /// The op that turns this axis into features (a `flatten` of a spatial map): from there the
    /// size is mixed with the channels and the other axis, so this axis's valid sizes depend on
    /// the other's value.
    pub coupled_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub size: u64,
    pub code: Code,
    pub path: String,
}

/// Why the sizes were not analysed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooMuchWork {
    pub nodes: u64,
    pub sizes: u64,
    pub axes: u64,
}

impl fmt::Display for TooMuchWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} sizes x {} axes x {} ops is more than {} op checks: pass a narrower `--sizes`",
            self.sizes, self.axes, self.nodes, MAX_WORK
        )
    }
}

/// Whether some input's H or W is a symbol: then `check` analyses [`DEFAULT_RANGE`] unasked.
pub fn has_symbolic_size(g: &Graph) -> bool {
    g.inputs
        .iter()
        .any(|i| i.dims.iter().skip(2).any(|d| matches!(d, DimSpec::Sym(_))))
}

/// The valid sizes of every spatial axis of every input in `range`; `g` is the network of
/// `source` that checked.
pub fn valid_sizes(source: &Source, g: &Graph, range: SizeRange) -> Result<Vec<AxisSizes>, String> {
    let axes: Vec<(usize, usize)> = (0..g.inputs.len())
        .flat_map(|i| (2..g.inputs[i].dims.len()).map(move |a| (i, a)))
        .collect();
    let work = TooMuchWork {
        nodes: g.dag.node_count() as u64,
        sizes: range.len(),
        axes: axes.len() as u64,
    };
    if work
        .nodes
        .saturating_mul(work.sizes)
        .saturating_mul(work.axes)
        > MAX_WORK
    {
        return Err(work.to_string());
    }
    let operands: Vec<Vec<NodeId>> = g.node_ids().map(|id| g.operands(id)).collect();
    let declared: Vec<(NodeId, Shape)> = g
        .inputs
        .iter()
        .map(|i| (i.node, super::declared(&i.dims)))
        .collect();
    // The ops that lower the rank (a flatten): where a spatial size may become features.
    let baseline = propagate(g, &operands, &declared, |_, _, _, _| true);
    let reducers: Vec<(NodeId, NodeId)> = g
        .node_ids()
        .filter_map(|id| {
            let from = *operands[id.index()].first()?;
            let (out, inp) = (
                baseline.get(id.index())?.as_ref()?,
                baseline[from.index()].as_ref()?,
            );
            (out.rank() < inp.rank()).then_some((id, from))
        })
        .collect();
    let file = crate::syntax::parse(&source.text).ok();
    let probed = match file.as_ref().map(|f| probed_nodes(f, g)) {
        Some(Some(probed)) => probed,
        _ => {
            return Err(
                "the network is not the one its source describes (`--plain` removed its shortcuts)"
                    .to_string(),
            );
        }
    };
    let scan = Scan {
        g,
        operands: &operands,
        declared: &declared,
        reducers: &reducers,
        probed: probed
            .into_iter()
            .map(|(id, axis)| (id, axis, baseline.get(id.index()).cloned().flatten()))
            .collect(),
        source,
        file: file.as_ref(),
    };
    Ok(axes
        .into_iter()
        .map(|(input, axis)| scan.axis(input, axis, range))
        .collect())
}

struct Scan<'a> {
    g: &'a Graph,
    operands: &'a [Vec<NodeId>],
    declared: &'a [(NodeId, Shape)],
    reducers: &'a [(NodeId, NodeId)],
    /// The sizes lowering read (node, axis), with their shapes as declared.
    probed: Vec<(NodeId, usize, Option<Shape>)>,
    source: &'a Source,
    file: Option<&'a ast::File>,
}

/// An oracle that answers as `check`'s does and notes which sizes lowering read.
#[derive(Default)]
struct Recording {
    shapes: Partial,
    read: Vec<(NodeId, usize)>,
}

impl ShapeOracle for Recording {
    fn shape(&mut self, g: &Graph, id: NodeId) -> Probe {
        self.shapes.shape(g, id)
    }

    fn read(&mut self, id: NodeId, axis: usize) {
        self.read.push((id, axis));
    }
}

/// The sizes (node, axis) that lowering `g` from `file` reads (`channels(x)` and the like);
/// `None` when `file` does not lower to `g` (a network changed after lowering).
fn probed_nodes(file: &ast::File, g: &Graph) -> Option<Vec<(NodeId, usize)>> {
    let mut oracle = Recording::default();
    let (again, _) = crate::ir::lower(file, Some(&g.name), &mut oracle);
    let again = again?;
    let same = again.dag.node_count() == g.dag.node_count()
        && g.node_ids()
            .all(|id| again.node(id).path == g.node(id).path);
    if !same {
        return None;
    }
    oracle.read.sort_unstable();
    oracle.read.dedup();
    Some(oracle.read)
}

impl Scan<'_> {
    fn axis(&self, input: usize, axis: usize, range: SizeRange) -> AxisSizes {
        let mut inputs = self.declared.to_vec();
        let mut ok = Vec::with_capacity(range.len() as usize);
        let mut first_failure = None;
        // The size each reducer's input had at this axis when first seen, and whether it
        // ever differed.
        let mut seen: Vec<Option<u64>> = vec![None; self.reducers.len()];
        let mut coupled_by = None;
        for size in range.lo..=range.hi {
            inputs[input].1.0[axis] = Dim::Known(size);
            let mut failed = None;
            let of = propagate(self.g, self.operands, &inputs, |id, _, _, m| {
                failed = Some((id, report::code(&self.g.node(id).op, &m)));
                false
            });
            // Lowering at this size decides as it did if every size it read is the same.
            let same_graph = self.probed.iter().all(|(id, axis, declared)| {
                let now = of.get(id.index()).and_then(Option::as_ref);
                match (now, declared) {
                    (Some(a), Some(b)) => a.rank() == b.rank() && a.dim(*axis) == b.dim(*axis),
                    _ => false,
                }
            });
            let failed = if same_graph {
                failed.map(|(id, code)| (self.g.node(id).path.clone(), code))
            } else {
                self.check_edited(input, axis, size)
            };
            for (k, &(node, from)) in self.reducers.iter().enumerate() {
                let Some(Dim::Known(v)) = of
                    .get(from.index())
                    .and_then(Option::as_ref)
                    .map(|s| s.dim(axis))
                else {
                    continue;
                };
                match seen[k] {
                    None => seen[k] = Some(*v),
                    Some(first) if first != *v && coupled_by.is_none() => {
                        coupled_by = Some(self.g.node(node).path.clone());
                    }
                    _ => {}
                }
            }
            let valid = failed.is_none();
            if let (Some((path, code)), None) = (failed, &first_failure) {
                first_failure = Some(Failure { size, code, path });
            }
            ok.push(valid);
        }
        AxisSizes {
            input: self.g.inputs[input].name.clone(),
            axis: crate::shape::rules::AXIS_NAMES[axis],
            values: compress(range.lo, &ok),
            first_failure,
            coupled_by,
        }
    }

    /// The whole check at one size, the declaration edited in the text: `None` when the
    /// network checks, else the path of the first op that fails (the network's name for a
    /// lowering error) and its code.
    fn check_edited(&self, input: usize, axis: usize, size: u64) -> Option<(String, Code)> {
        let name = &self.g.name;
        let Some(span) = self
            .file
            .and_then(|f| dim_span(f, name, &self.g.inputs[input].name, axis))
        else {
            // Not found (cannot happen for a graph lowered from this source): call it failing.
            return Some((name.clone(), Code::BadValue));
        };
        let mut text = self.source.text.clone();
        text.replace_range(span.start as usize..span.end as usize, &size.to_string());
        let edited = Source::new(self.source.name.clone(), text);
        let checked = crate::check(&edited, Some(name));
        let Some(g) = checked.graph.as_ref() else {
            let first = checked.diagnostics.iter().find(|d| d.is_error())?;
            return Some((name.clone(), first.code));
        };
        let operands: Vec<Vec<NodeId>> = g.node_ids().map(|id| g.operands(id)).collect();
        let declared: Vec<(NodeId, Shape)> = g
            .inputs
            .iter()
            .map(|i| (i.node, super::declared(&i.dims)))
            .collect();
        let mut failed = None;
        propagate(g, &operands, &declared, |id, _, _, m| {
            failed = Some((g.node(id).path.clone(), report::code(&g.node(id).op, &m)));
            false
        });
        failed
    }
}

/// The span of dimension `axis` of input `input`'s declaration in network `network`.
fn dim_span(file: &ast::File, network: &str, input: &str, axis: usize) -> Option<Span> {
    let net = file.networks.iter().find(|n| n.name.name == network)?;
    net.body.iter().find_map(|s| match s {
        ast::Stmt::Input(i) if i.name.name == input => match i.shape.as_ref()?.get(axis)? {
            ast::Dim::Int(_, span) => Some(*span),
            ast::Dim::Sym(id) => Some(id.span),
        },
        _ => None,
    })
}

/// The sizes `lo + i` with `ok[i]`, as few `[start, end, step]` progressions as found: runs
/// and lone sizes, or, when the pattern repeats with a period from some size on, one
/// progression per member of a period (ResNet-D's `29..1021 step 32, 30..1022 step 32, ...`).
pub fn compress(lo: u64, ok: &[bool]) -> Vec<[u64; 3]> {
    // Bounds the search for a period: a few times 2^20 steps at most.
    const MAX_PERIOD: usize = 1024;
    const MAX_STEPS: usize = 1 << 22;
    let mut best = runs(lo, ok);
    let n = ok.len();
    let mut steps = 0;
    for p in 2..=(n / 2).min(MAX_PERIOD) {
        if best.len() <= 2 || steps > MAX_STEPS {
            break;
        }
        // The first index from which the pattern repeats with period p.
        let mut t = n - p;
        while t > 0 && ok[t - 1] == ok[t - 1 + p] {
            t -= 1;
        }
        steps += n - t;
        if n - t < 2 * p {
            continue;
        }
        let mut found = runs(lo, &ok[..t]);
        for r in (t..t + p).filter(|&r| ok[r]) {
            let last = r + (n - 1 - r) / p * p;
            found.push(if last == r {
                [lo + r as u64, lo + r as u64, 1]
            } else {
                [lo + r as u64, lo + last as u64, p as u64]
            });
        }
        if found.len() < best.len() {
            found.sort_unstable();
            best = found;
        }
    }
    best
}

/// Maximal runs of consecutive valid sizes, as `[start, end, 1]`.
fn runs(lo: u64, ok: &[bool]) -> Vec<[u64; 3]> {
    let mut out: Vec<[u64; 3]> = Vec::new();
    for (i, _) in ok.iter().enumerate().filter(|(_, v)| **v) {
        let s = lo + i as u64;
        match out.last_mut() {
            Some(last) if last[1] + 1 == s => last[1] = s,
            _ => out.push([s, s, 1]),
        }
    }
    out
}

/// `1..1024`, `29..1021 step 32`, `7`; `none` for no sizes.
pub fn describe(values: &[[u64; 3]]) -> String {
    if values.is_empty() {
        return "none".to_string();
    }
    values
        .iter()
        .map(|&[a, b, step]| match (a == b, step) {
            (true, _) => a.to_string(),
            (false, 1) => format!("{a}..{b}"),
            (false, s) => format!("{a}..{b} step {s}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(lo: u64, n: usize, values: &[[u64; 3]]) -> Vec<bool> {
        let mut ok = vec![false; n];
        for &[a, b, s] in values {
            let mut v = a;
            while v <= b {
                ok[(v - lo) as usize] = true;
                v += s;
            }
        }
        ok
    }

    #[test]
    fn compress_is_exact_and_short() {
        let all = vec![true; 1024];
        assert_eq!(compress(1, &all), vec![[1, 1024, 1]]);
        let none = vec![false; 10];
        assert!(compress(1, &none).is_empty());
        // Multiples of 32 in 1..1024.
        let m32: Vec<bool> = (1..=1024u64).map(|v| v % 32 == 0).collect();
        assert_eq!(compress(1, &m32), vec![[32, 1024, 32]]);
        // Four sizes of every 32, from 29: four progressions.
        let d: Vec<bool> = (1..=1024u64).map(|v| (v + 3) % 32 < 4).collect();
        assert_eq!(
            compress(1, &d),
            vec![
                [29, 1021, 32],
                [30, 1022, 32],
                [31, 1023, 32],
                [32, 1024, 32]
            ]
        );
        // A run, then every other size, then a lone size at the end of a prefix.
        let mixed: Vec<bool> = (1..=100u64)
            .map(|v| v <= 5 || (v >= 20 && v % 2 == 0) || v == 11)
            .collect();
        let c = compress(1, &mixed);
        assert_eq!(expand(1, 100, &c), mixed);
        assert!(c.len() <= 4, "{c:?}");
    }

    #[test]
    fn ranges_parse_and_refuse() {
        assert_eq!("1..1024".parse(), Ok(SizeRange { lo: 1, hi: 1024 }));
        assert!("0..4".parse::<SizeRange>().is_err());
        assert!("9..4".parse::<SizeRange>().is_err());
        assert!("4".parse::<SizeRange>().is_err());
        assert_eq!(
            describe(&[[1, 4, 1], [6, 6, 1], [8, 64, 8]]),
            "1..4, 6, 8..64 step 8"
        );
    }
}
