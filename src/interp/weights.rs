//! Weights: the parameter tensors a checked network needs, loaded from a safetensors file
//! (keys are the layers' paths, as PyTorch's state_dict has them) and validated all at once,
//! or drawn from a seed.
//!
//! Validation reports every problem in one run: missing, unexpected, mis-shaped and
//! wrong-dtype tensors, each missing or mis-shaped one at the layer that declares it.

use crate::diag::{Code, Diagnostic};
use crate::ir::{Graph, NodeId, Op};
use crate::machine::mapped::Mapped;
use crate::shape::{Shapes, cost};
use crate::span::Span;
use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Uniform};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

/// A parameter tensor the network needs.
#[derive(Clone, Debug)]
pub struct Expected {
    pub key: String,
    pub shape: Vec<usize>,
    pub node: NodeId,
}

/// Every parameter tensor of a checked network, in graph order.
pub fn expected(g: &Graph, shapes: &Shapes) -> Vec<Expected> {
    let mut out = Vec::new();
    for id in g.node_ids() {
        let node = g.node(id);
        if !node.op.has_params() {
            continue;
        }
        let Some(input) = g.first_operand(id).and_then(|i| shapes.get(i)) else {
            continue;
        };
        for t in cost::param_tensors(&node.op, input) {
            out.push(Expected {
                key: format!("{}.{}", node.path, t.suffix),
                shape: t.shape,
                node: id,
            });
        }
    }
    out
}

/// The bytes of a weights file: memory-mapped, or read into memory (for files that cannot be
/// mapped).
#[derive(Debug)]
pub enum FileBytes {
    Mapped(Mapped),
    Read(Vec<u8>),
}

impl FileBytes {
    /// Map `file` (a regular file opened for reading).
    pub fn map(file: &std::fs::File) -> std::io::Result<FileBytes> {
        Mapped::open(file).map(FileBytes::Mapped)
    }

    fn bytes(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m.bytes(),
            FileBytes::Read(v) => v,
        }
    }

    /// Drop the pages of `range` from memory once its tensor has been copied out.
    fn release(&self, range: Range<usize>) {
        if let FileBytes::Mapped(m) = self {
            m.release(range);
        }
    }
}

/// A validated tensor: drawn (in memory), or still in the file (read when taken).
#[derive(Debug)]
enum Stored {
    Array(ArrayD<f32>),
    InFile {
        range: Range<usize>,
        shape: Vec<usize>,
    },
}

/// Validated weights by key; every expected key is present with its expected shape.
///
/// Tensors from a file stay in the file until [`Weights::take`] copies each one out (and hands
/// its pages back), so that loading never holds the file and all its tensors at once.
#[derive(Debug, Default)]
pub struct Weights {
    by_key: HashMap<String, Stored>,
    file: Option<FileBytes>,
}

impl Weights {
    /// A tensor, if it is in memory: drawn, or read by [`Weights::read_all`].
    pub fn get(&self, key: &str) -> Option<&ArrayD<f32>> {
        match self.by_key.get(key)? {
            Stored::Array(a) => Some(a),
            Stored::InFile { .. } => None,
        }
    }

    /// Read every tensor still in the file into memory (for consumers that borrow them all at
    /// once, like the ONNX export), and let the file go.
    pub fn read_all(mut self) -> Weights {
        let keys: Vec<String> = self.by_key.keys().cloned().collect();
        let mut by_key = HashMap::with_capacity(keys.len());
        for key in keys {
            if let Some(a) = self.take(&key) {
                by_key.insert(key, Stored::Array(a));
            }
        }
        Weights { by_key, file: None }
    }

    /// Take a tensor out (the interpreter folds and re-lays weights as it plans).
    pub fn take(&mut self, key: &str) -> Option<ArrayD<f32>> {
        match self.by_key.remove(key)? {
            Stored::Array(a) => Some(a),
            Stored::InFile { range, shape } => {
                let file = self.file.as_ref()?;
                let data: Vec<f32> = file.bytes()[range.clone()]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                file.release(range);
                ArrayD::from_shape_vec(IxDyn(&shape), data).ok()
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The first tensor (by key) holding NaN or infinite values, and how many it holds.
    /// Tensors still in the file are scanned in place (their pages handed back after).
    pub fn first_non_finite(&self) -> Option<(&str, usize)> {
        self.first_where(|_| true, |v| !v.is_finite())
    }

    /// The first batchnorm variance (`*.running_var`, by key) holding negative values, and
    /// how many it holds: `sqrt(var + eps)` of them is NaN.
    pub fn first_negative_variance(&self) -> Option<(&str, usize)> {
        self.first_where(|k| k.ends_with("running_var"), |v| v < 0.0)
    }

    /// The first tensor (by key) among those `key` accepts with values `bad` accepts, and
    /// how many it holds.
    fn first_where(
        &self,
        key: impl Fn(&str) -> bool,
        bad: impl Fn(f32) -> bool,
    ) -> Option<(&str, usize)> {
        let mut keys: Vec<&String> = self.by_key.keys().filter(|k| key(k)).collect();
        keys.sort_unstable();
        keys.into_iter().find_map(|k| {
            let n = match &self.by_key[k] {
                Stored::Array(a) => a.iter().filter(|&&v| bad(v)).count(),
                Stored::InFile { range, .. } => {
                    let file = self.file.as_ref()?;
                    let bytes = file.bytes().get(range.clone())?;
                    let n = bytes
                        .chunks_exact(4)
                        .filter(|b| bad(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                        .count();
                    file.release(range.clone());
                    n
                }
            };
            (n > 0).then_some((k.as_str(), n))
        })
    }
}

/// Why weights could not be used.
#[derive(Debug)]
pub enum WeightsError {
    /// Not a readable safetensors file.
    Format(String),
    /// The tensors do not fit the network.
    Mismatch(Vec<Diagnostic>),
}

/// Validate the tensors of a safetensors file against the network. Only the header is read
/// here; each tensor's bytes are read when the planner takes it.
pub fn from_safetensors(
    g: &Graph,
    shapes: &Shapes,
    file: FileBytes,
) -> Result<Weights, WeightsError> {
    let bytes = file.bytes();
    // The safetensors crate keeps the last of two entries with one key; refuse instead.
    if let Some(key) = duplicate_key(bytes) {
        return Err(WeightsError::Format(format!(
            "the header lists tensor `{key}` twice; a safetensors file holds each tensor once: re-save it"
        )));
    }
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| WeightsError::Format(format!("not a valid safetensors file: {e}")))?;
    let wanted = expected(g, shapes);
    let mut problems = Problems::default();
    let mut by_key = HashMap::with_capacity(wanted.len());
    let mut known: HashMap<&str, &Expected> = wanted.iter().map(|e| (e.key.as_str(), e)).collect();
    let mut unexpected = Vec::new();
    let mut names = st.names();
    names.sort_unstable();
    for name in names {
        let view = st
            .tensor(name)
            .map_err(|e| WeightsError::Format(format!("cannot read tensor `{name}`: {e}")))?;
        let Some(exp) = known.remove(name) else {
            if !is_batch_counter(name, &wanted) {
                unexpected.push(format!("`{name}` {:?}", view.shape()));
            }
            continue;
        };
        if view.dtype() != safetensors::Dtype::F32 {
            problems.add(
                exp.node,
                Kind::Dtype,
                format!("`{name}` is {:?}, not F32", view.dtype()),
            );
            continue;
        }
        if view.shape() != exp.shape.as_slice() {
            problems.add(
                exp.node,
                Kind::Shape,
                format!(
                    "`{name}` is {:?}, the layer needs {:?}",
                    view.shape(),
                    exp.shape
                ),
            );
            continue;
        }
        // Where the tensor lies in the file (safetensors has checked it is inside).
        let start = view.data().as_ptr() as usize - bytes.as_ptr() as usize;
        let range = start..start + view.data().len();
        if range.len() != exp.shape.iter().product::<usize>() * 4 {
            return Err(WeightsError::Format(format!(
                "tensor `{name}` has the wrong number of bytes"
            )));
        }
        by_key.insert(
            name.to_string(),
            Stored::InFile {
                range,
                shape: exp.shape.clone(),
            },
        );
    }
    for exp in wanted.iter().filter(|e| known.contains_key(e.key.as_str())) {
        problems.add(
            exp.node,
            Kind::Missing,
            format!("`{}` {:?}", exp.key, exp.shape),
        );
    }
    let mut diags = problems.into_diagnostics(g);
    if !unexpected.is_empty() {
        diags.push(unexpected_diag(&unexpected));
    }
    if diags.is_empty() {
        Ok(Weights {
            by_key,
            file: Some(file),
        })
    } else {
        Err(WeightsError::Mismatch(diags))
    }
}

/// Whether `name` is PyTorch's `num_batches_tracked` counter of a batchnorm layer the network
/// has (`<path>.num_batches_tracked` beside `<path>.running_mean`): a training-time count that
/// `model.state_dict()` saves with the weights and inference never reads, so it is skipped.
fn is_batch_counter(name: &str, wanted: &[Expected]) -> bool {
    name.strip_suffix(".num_batches_tracked")
        .is_some_and(|path| {
            wanted.iter().any(|e| {
                e.key
                    .strip_suffix(".running_mean")
                    .is_some_and(|p| p == path)
            })
        })
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Missing,
    Shape,
    Dtype,
}

/// Problems found while validating, by layer.
#[derive(Default)]
struct Problems {
    items: Vec<(Kind, NodeId, String)>,
}

impl Problems {
    fn add(&mut self, node: NodeId, kind: Kind, what: String) {
        self.items.push((kind, node, what));
    }

    /// One diagnostic per kind and layer span: all instances of a block share their spans,
    /// so one diagnostic lists the keys of every instance.
    fn into_diagnostics(self, g: &Graph) -> Vec<Diagnostic> {
        let mut merged: BTreeMap<(Kind, Span), (NodeId, Vec<String>)> = BTreeMap::new();
        for (kind, node, item) in self.items {
            let span = g.node(node).span;
            merged
                .entry((kind, span))
                .or_insert_with(|| (node, Vec::new()))
                .1
                .push(item);
        }
        merged
            .into_iter()
            .map(|((kind, span), (node, items))| {
                let (code, message, label) = match kind {
                    Kind::Missing => (Code::MissingWeights, "weights missing for this layer", "declared here"),
                    Kind::Shape => (Code::WeightShape, "weights of the wrong shape", "this layer"),
                    Kind::Dtype => (Code::WeightDtype, "weights of the wrong dtype", "this layer"),
                };
                let mut d = Diagnostic::error(code, format!("{message} ({})", g.node(node).op.name())).with_primary(span, label);
                d = d.with_note(list(&items));
                if kind == Kind::Dtype {
                    d = d.with_help("resnetc runs in float32: convert before saving, e.g. `{k: v.float() for k, v in sd.items()}`");
                }
                d
            })
            .collect()
    }
}

fn unexpected_diag(items: &[String]) -> Diagnostic {
    Diagnostic::error(Code::UnexpectedWeights, format!("{} tensor{} in the weights file match no layer", items.len(), if items.len() == 1 { "" } else { "s" }))
        .with_note(list(items))
        .with_help("parameter keys are layer paths (`layer2.0.downsample.0.weight`): label the layers to match, or drop these tensors")
}

/// "a, b, c and 12 more".
fn list(items: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}

/// Weights drawn from `seed`: He (Kaiming) normal for conv weights (fan-out, as torchvision
/// initialises ResNets), PyTorch's defaults elsewhere (batchnorm 1/0 with unit running
/// variance; linear and biases uniform in ±1/sqrt(fan_in)).
pub fn seeded(g: &Graph, shapes: &Shapes, seed: u64) -> Weights {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut by_key = HashMap::new();
    for e in expected(g, shapes) {
        let n: usize = e.shape.iter().product();
        let op = &g.node(e.node).op;
        let suffix = e.key.rsplit('.').next().unwrap_or("");
        let data: Vec<f32> = match (op, suffix) {
            (Op::Conv(c), "weight") => {
                let fan_out = (c.c_out * c.kernel[0] * c.kernel[1]) as f32;
                let normal = Normal::new(0.0f32, (2.0 / fan_out).sqrt()).expect("positive std");
                (0..n).map(|_| normal.sample(&mut rng)).collect()
            }
            (Op::BatchNorm(_), "weight" | "running_var") => vec![1.0; n],
            (Op::BatchNorm(_), _) => vec![0.0; n],
            _ => {
                // Linear weight and any bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
                let fan_in = weight_fan_in(g, shapes, e.node).unwrap_or(1).max(1) as f32;
                let bound = 1.0 / fan_in.sqrt();
                let uniform = Uniform::new_inclusive(-bound, bound).expect("finite bounds");
                (0..n).map(|_| uniform.sample(&mut rng)).collect()
            }
        };
        let array = ArrayD::from_shape_vec(IxDyn(&e.shape), data)
            .expect("the length is the shape's product");
        by_key.insert(e.key, Stored::Array(array));
    }
    Weights { by_key, file: None }
}

/// in_channels/groups * k * k for a conv, in_features for a linear.
fn weight_fan_in(g: &Graph, shapes: &Shapes, id: NodeId) -> Option<usize> {
    let input = shapes.get(g.first_operand(id)?)?;
    let w = cost::param_tensors(&g.node(id).op, input)
        .into_iter()
        .find(|t| t.suffix == "weight")?;
    Some(w.shape[1..].iter().product())
}

/// The first key that the JSON header of a safetensors file lists twice.
fn duplicate_key(bytes: &[u8]) -> Option<String> {
    struct Keys(Option<String>);
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut seen = std::collections::HashSet::new();
            let mut dup = self.0;
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                if dup.is_none() && !seen.insert(key.clone()) {
                    dup = Some(key);
                }
            }
            Ok(dup)
        }
    }
    let len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let header = bytes.get(8..8usize.checked_add(usize::try_from(len).ok()?)?)?;
    let mut de = serde_json::Deserializer::from_slice(header);
    serde::Deserializer::deserialize_map(&mut de, Keys(None)).ok()?
}
