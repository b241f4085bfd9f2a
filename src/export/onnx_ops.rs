//! Each resnetc op as ONNX nodes: one `match` over [`Op`] with an arm per op and no fallback,
//! so a new op does not compile until it has a mapping (or says why it has none). The
//! [`Emitter`] also names values (network names for inputs and outputs, layer paths for the
//! rest), turns weights into initializers and records every intermediate value's inferred shape.

use super::onnx::{OnnxError, Options, proto, value_info_of, value_info_typed};
use crate::interp::kernels::fold_batchnorm;
use crate::interp::weights::Weights;
use crate::ir::op::{Conv, Pool, Upsample, UpsampleMode, UpsampleTarget};
use crate::ir::{Graph, NodeId, Op};
use crate::shape::{Dim, Shape, Shapes};
use ndarray::{ArrayD, ArrayView1, Ix1, Ix4};
use proto::attribute_proto::AttributeType;
use proto::tensor_proto::DataType;
use proto::{AttributeProto, NodeProto, TensorProto, ValueInfoProto};
use std::borrow::Cow;
use std::collections::HashSet;

/// Builds the nodes, initializers and `value_info` of one graph, node by node.
pub(super) struct Emitter<'a> {
    g: &'a Graph,
    shapes: &'a Shapes,
    weights: &'a Weights,
    opts: Options,
    /// The value each node produces, unique in the graph.
    names: Vec<String>,
    used: HashSet<String>,
    /// Batchnorms folded into the conv before them: they emit nothing.
    folded: Vec<bool>,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    value_info: Vec<ValueInfoProto>,
}

impl<'a> Emitter<'a> {
    pub fn new(g: &'a Graph, shapes: &'a Shapes, weights: &'a Weights, opts: Options) -> Self {
        let n = g.dag.node_count();
        let mut e = Emitter {
            g,
            shapes,
            weights,
            opts,
            names: vec![String::new(); n],
            used: HashSet::new(),
            folded: vec![false; n],
            nodes: Vec::new(),
            initializers: Vec::new(),
            value_info: Vec::new(),
        };
        // The network's own names first: they must come out exactly.
        for i in &g.inputs {
            e.names[i.node.index()] = e.fresh(&i.name);
        }
        for o in &g.outputs {
            if e.names[o.node.index()].is_empty() {
                e.names[o.node.index()] = e.fresh(&o.name);
            }
        }
        for id in g.node_ids() {
            if e.names[id.index()].is_empty() {
                e.names[id.index()] = e.fresh(&g.node(id).path);
            }
        }
        e
    }

    /// The name of the value node `id` produces.
    pub fn name(&self, id: NodeId) -> &str {
        &self.names[id.index()]
    }

    /// The nodes, initializers and value_info built so far.
    pub fn finish(self) -> (Vec<NodeProto>, Vec<TensorProto>, Vec<ValueInfoProto>) {
        (self.nodes, self.initializers, self.value_info)
    }

    /// A name not used yet: `base`, or `base#2`, `base#3`, ...
    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 2;
        while self.used.contains(&name) {
            name = format!("{base}#{k}");
            k += 1;
        }
        self.used.insert(name.clone());
        name
    }

    /// Emit the ONNX nodes of graph node `id`.
    pub fn emit(&mut self, id: NodeId) -> Result<(), OnnxError> {
        let node = self.g.node(id);
        if self.folded[id.index()] {
            return Ok(());
        }
        let path = node.path.clone();
        let x: Vec<String> = self
            .g
            .operands(id)
            .iter()
            .map(|o| self.names[o.index()].clone())
            .collect();
        let mut out = id;
        match &node.op {
            Op::Input => return Ok(()),
            Op::Conv(c) => {
                let fold = self.foldable_batchnorm(id);
                let (w, b) = self.conv_weights(&path, c, fold);
                let mut inputs = vec![x[0].clone(), self.init_f32(format!("{path}.weight"), &w)];
                if let Some(b) = b {
                    inputs.push(self.init_f32(format!("{path}.bias"), &b));
                }
                if let Some(bn) = fold {
                    self.folded[bn.index()] = true;
                    out = bn;
                }
                let attrs = vec![
                    ints("kernel_shape", &c.kernel),
                    ints("strides", &c.stride),
                    ints("pads", &pads(c.pad)),
                    ints("dilations", &c.dilation),
                    int("group", c.groups as i64),
                ];
                self.node("Conv", &path, inputs, out, attrs);
            }
            Op::ConvTranspose(c) => {
                let mut inputs = vec![x[0].clone()];
                for suffix in ["weight", "bias"].iter().take(1 + usize::from(c.bias)) {
                    let t = self.weight(&format!("{path}.{suffix}"));
                    inputs.push(self.init_f32(format!("{path}.{suffix}"), t));
                }
                let [p_h, p_w] = c.pad;
                let attrs = vec![
                    ints("kernel_shape", &c.kernel),
                    ints("strides", &c.stride),
                    ints("pads", &[p_h, p_w, p_h, p_w]),
                    ints("output_padding", &c.output_pad),
                    ints("dilations", &c.dilation),
                    int("group", c.groups as i64),
                ];
                self.node("ConvTranspose", &path, inputs, out, attrs);
            }
            Op::BatchNorm(bn) => {
                let mut inputs = vec![x[0].clone()];
                for suffix in ["weight", "bias", "running_mean", "running_var"] {
                    let t = self.weight(&format!("{path}.{suffix}"));
                    inputs.push(self.init_f32(format!("{path}.{suffix}"), t));
                }
                let attrs = vec![float("epsilon", bn.eps_f32())];
                self.node("BatchNormalization", &path, inputs, out, attrs);
            }
            Op::Linear(l) => {
                // Gemm computes x · Wᵀ + b with W as PyTorch stores it, [out, in].
                let w = self.weight(&format!("{path}.weight"));
                let mut inputs = vec![x[0].clone(), self.init_f32(format!("{path}.weight"), w)];
                if l.bias {
                    let b = self.weight(&format!("{path}.bias"));
                    inputs.push(self.init_f32(format!("{path}.bias"), b));
                }
                self.node("Gemm", &path, inputs, out, vec![int("transB", 1)]);
            }
            Op::Relu => self.node("Relu", &path, x, out, vec![]),
            Op::Sigmoid => self.node("Sigmoid", &path, x, out, vec![]),
            Op::Tanh => self.node("Tanh", &path, x, out, vec![]),
            Op::LeakyRelu(l) => {
                let attrs = vec![float("alpha", l.slope as f32)];
                self.node("LeakyRelu", &path, x, out, attrs);
            }
            Op::Relu6 => {
                let min = self.scalar(format!("{path}.min"), 0.0);
                let max = self.scalar(format!("{path}.max"), 6.0);
                self.node("Clip", &path, vec![x[0].clone(), min, max], out, vec![]);
            }
            Op::Silu => {
                let sig = self.internal("Sigmoid", &path, "sigmoid", x.clone(), id);
                self.node("Mul", &path, vec![x[0].clone(), sig], out, vec![]);
            }
            Op::HardSwish => self.node("HardSwish", &path, x, out, vec![]),
            Op::Scale(sc) => {
                let factor = ArrayD::from_elem(ndarray::IxDyn(&[]), sc.factor as f32);
                let f = self.init_f32(format!("{path}.factor"), &factor);
                self.node("Mul", &path, vec![x[0].clone(), f], out, vec![]);
            }
            Op::Unflatten(u) => {
                // 0 keeps the batch as it is.
                let dims = u.dims.map(|d| d as i64);
                let shape = self.init_i64(format!("{path}.shape"), &[0, dims[0], dims[1], dims[2]]);
                self.node("Reshape", &path, vec![x[0].clone(), shape], out, vec![]);
            }
            Op::HardSigmoid => {
                let attrs = vec![float("alpha", 1.0 / 6.0), float("beta", 0.5)];
                self.node("HardSigmoid", &path, x, out, attrs);
            }
            Op::Gelu => {
                // ONNX's own Gelu arrives in opset 20: x * (1 + erf(x / sqrt 2)) / 2 instead.
                let sqrt2 = self.scalar(format!("{path}.sqrt2"), std::f32::consts::SQRT_2);
                let one = self.scalar(format!("{path}.one"), 1.0);
                let half = self.scalar(format!("{path}.half"), 0.5);
                let scaled = self.internal("Div", &path, "scaled", vec![x[0].clone(), sqrt2], id);
                let erf = self.internal("Erf", &path, "erf", vec![scaled], id);
                let plus1 = self.internal("Add", &path, "erf_plus_1", vec![erf, one], id);
                let prod = self.internal("Mul", &path, "x_times", vec![x[0].clone(), plus1], id);
                self.node("Mul", &path, vec![prod, half], out, vec![]);
            }
            Op::Softmax => self.node("Softmax", &path, x, out, vec![int("axis", 1)]),
            Op::MaxPool(p) => self.node("MaxPool", &path, x, out, pool_attrs(p, false)),
            Op::AvgPool(p) => self.node("AveragePool", &path, x, out, pool_attrs(p, true)),
            Op::GlobalAvgPool => self.node("GlobalAveragePool", &path, x, out, vec![]),
            Op::AdaptiveAvgPool(a) => {
                // Bins of one size at a fixed step are an AveragePool; ONNX has no adaptive
                // pool for the rest.
                let input = self.input_shape(id);
                let bins = |axis: usize| uniform_bins(input.dim(axis).known()?, a.out[axis - 2]);
                match (bins(2), bins(3)) {
                    // Whatever the input size: one bin is the whole map.
                    _ if a.out == [1, 1] => self.node("GlobalAveragePool", &path, x, out, vec![]),
                    (Some((k_h, s_h)), Some((k_w, s_w))) => {
                        let attrs = vec![
                            ints("kernel_shape", &[k_h, k_w]),
                            ints("strides", &[s_h, s_w]),
                        ];
                        self.node("AveragePool", &path, x, out, attrs);
                    }
                    _ => {
                        let op = "adaptive_avgpool";
                        return Err(OnnxError::Unsupported { op, path });
                    }
                }
            }
            Op::Flatten => self.node("Flatten", &path, x, out, vec![int("axis", 1)]),
            Op::Add => self.node("Add", &path, x, out, vec![]),
            Op::Mul => self.node("Mul", &path, x, out, vec![]),
            Op::Concat => self.node("Concat", &path, x, out, vec![int("axis", 1)]),
            // Dropout is the identity at inference.
            Op::Identity | Op::Dropout { .. } => self.node("Identity", &path, x, out, vec![]),
            Op::ShortcutA(s) => {
                // x[:, :, ::stride, ::stride], then zero channels before and after.
                let c_in = self.input_shape(id).dim(1).known().unwrap_or(s.c_out);
                let side = (s.c_out - c_in) as i64 / 2;
                let stride = s.stride as i64;
                let sliced = self.fresh(&format!("{path}.subsample"));
                let slice_inputs = vec![
                    x[0].clone(),
                    self.init_i64(format!("{path}.starts"), &[0, 0]),
                    self.init_i64(format!("{path}.ends"), &[i64::MAX, i64::MAX]),
                    self.init_i64(format!("{path}.axes"), &[2, 3]),
                    self.init_i64(format!("{path}.steps"), &[stride, stride]),
                ];
                let mut shape = self.shapes.get(id).cloned();
                if let Some(s) = &mut shape {
                    s.0[1] = Dim::Known(c_in);
                }
                self.raw_node(
                    "Slice",
                    &format!("{path}.subsample"),
                    slice_inputs,
                    &sliced,
                    vec![],
                );
                self.value_info.push(value_info_of(&sliced, shape.as_ref()));
                let pads = [0, side, 0, 0, 0, side, 0, 0];
                let pad_inputs = vec![sliced, self.init_i64(format!("{path}.pads"), &pads)];
                self.node("Pad", &path, pad_inputs, out, vec![]);
            }
            Op::Upsample(u) => self.resize(id, u, &x)?,
            Op::Crop => {
                // A Slice of the H and W the checker inferred.
                let (input, output) = (self.input_shape(id), self.shapes.get(id).cloned());
                let known = |s: &Shape, axis: usize| s.dim(axis).known().map(|v| v as i64);
                let sizes = output
                    .as_ref()
                    .map(|o| [2, 3].map(|axis| Some((known(&input, axis)?, known(o, axis)?))));
                let Some([Some((h, oh)), Some((w, ow))]) = sizes else {
                    return Err(OnnxError::Unsupported { op: "crop", path });
                };
                let (top, left) = ((h - oh) / 2, (w - ow) / 2);
                let inputs = vec![
                    x[0].clone(),
                    self.init_i64(format!("{path}.starts"), &[top, left]),
                    self.init_i64(format!("{path}.ends"), &[top + oh, left + ow]),
                    self.init_i64(format!("{path}.axes"), &[2, 3]),
                ];
                self.node("Slice", &path, inputs, out, vec![]);
            }
            Op::Pad(p) => {
                // ONNX lists every axis's start, then every axis's end.
                let [left, right, top, bottom] = p.sides.map(|v| v as i64);
                let pads = [0, 0, top, left, 0, 0, bottom, right];
                let inputs = vec![x[0].clone(), self.init_i64(format!("{path}.pads"), &pads)];
                self.node("Pad", &path, inputs, out, vec![]);
            }
        }
        Ok(())
    }

    /// `upsample` as a Resize: PyTorch's legacy nearest is `asymmetric` coordinates rounded
    /// down, bilinear is `half_pixel` (`align_corners` when aligned); a scale is given as
    /// scales, a size or `like` as sizes made from the input's N and C at run time, so the
    /// batch stays free.
    fn resize(&mut self, id: NodeId, u: &Upsample, x: &[String]) -> Result<(), OnnxError> {
        let path = self.g.node(id).path.clone();
        let mut attrs = match u.mode {
            UpsampleMode::Nearest => vec![
                string("mode", "nearest"),
                string("coordinate_transformation_mode", "asymmetric"),
                string("nearest_mode", "floor"),
            ],
            UpsampleMode::Bilinear => vec![string("mode", "linear")],
        };
        if u.mode == UpsampleMode::Bilinear {
            let coords = if u.align_corners {
                "align_corners"
            } else {
                "half_pixel"
            };
            attrs.push(string("coordinate_transformation_mode", coords));
        }
        let inputs = match u.target {
            UpsampleTarget::Scale([s_h, s_w]) => {
                let scales = ArrayD::from_shape_vec(
                    ndarray::IxDyn(&[4]),
                    vec![1.0, 1.0, s_h as f32, s_w as f32],
                )
                .expect("four scales");
                let scales = self.init_f32(format!("{path}.scales"), &scales);
                vec![x[0].clone(), String::new(), scales]
            }
            UpsampleTarget::Size(_) | UpsampleTarget::Like => {
                let nc = self.fresh(&format!("{path}.nc"));
                let shape = |start: i64, end: i64| vec![int("start", start), int("end", end)];
                self.raw_node("Shape", &nc.clone(), vec![x[0].clone()], &nc, shape(0, 2));
                let hw = match u.target {
                    UpsampleTarget::Size([h, w]) => {
                        self.init_i64(format!("{path}.hw"), &[h as i64, w as i64])
                    }
                    _ => {
                        let hw = self.fresh(&format!("{path}.hw"));
                        self.raw_node("Shape", &hw.clone(), vec![x[1].clone()], &hw, shape(2, 4));
                        hw
                    }
                };
                let sizes = self.fresh(&format!("{path}.sizes"));
                let concat = vec![nc.clone(), hw.clone()];
                self.raw_node(
                    "Concat",
                    &sizes.clone(),
                    concat,
                    &sizes,
                    vec![int("axis", 0)],
                );
                for (name, len) in [(nc, 2), (hw, 2), (sizes.clone(), 4)] {
                    // An initializer (a fixed size) needs none.
                    if !self.initializers.iter().any(|t| t.name() == name) {
                        let shape = Shape(vec![Dim::Known(len)]);
                        let info = value_info_typed(&name, Some(&shape), DataType::Int64);
                        self.value_info.push(info);
                    }
                }
                vec![x[0].clone(), String::new(), String::new(), sizes]
            }
        };
        self.node("Resize", &path, inputs, id, attrs);
        Ok(())
    }

    /// The batchnorm to fold into conv `id`, under `--fold-batchnorm`: its only consumer, when
    /// the conv's value is not a network output (the same rule as `interp::plan`).
    fn foldable_batchnorm(&self, id: NodeId) -> Option<NodeId> {
        if !self.opts.fold_batchnorm || self.g.outputs.iter().any(|o| o.node == id) {
            return None;
        }
        let mut consumers = self.g.consumers(id);
        let only = consumers.next()?;
        let is_bn = matches!(self.g.node(only).op, Op::BatchNorm(_));
        (consumers.next().is_none() && is_bn).then_some(only)
    }

    /// The conv's weight and bias, with batchnorm `fold` folded in by the interpreter's formula.
    fn conv_weights(&self, path: &str, c: &Conv, fold: Option<NodeId>) -> ConvWeights<'a> {
        let w = self.weight(&format!("{path}.weight"));
        let b = c.bias.then(|| self.weight(&format!("{path}.bias")));
        let Some(bn) = fold else {
            return (Cow::Borrowed(w), b.map(Cow::Borrowed));
        };
        let bn_path = &self.g.node(bn).path;
        let [gamma, beta, mean, var] = ["weight", "bias", "running_mean", "running_var"]
            .map(|s| vec1(self.weight(&format!("{bn_path}.{s}"))));
        let w4 = w
            .view()
            .into_dimensionality::<Ix4>()
            .expect("validated shape");
        let (w2, b2) = fold_batchnorm(
            w4,
            b.map(vec1),
            gamma,
            beta,
            mean,
            var,
            crate::interp::plan::bn_eps(&self.g.node(bn).op),
        );
        (Cow::Owned(w2.into_dyn()), Some(Cow::Owned(b2.into_dyn())))
    }

    fn input_shape(&self, id: NodeId) -> Shape {
        self.g
            .first_operand(id)
            .and_then(|i| self.shapes.get(i))
            .cloned()
            .unwrap_or(Shape(Vec::new()))
    }

    fn weight(&self, key: &str) -> &'a ArrayD<f32> {
        let weights: &'a Weights = self.weights;
        weights
            .get(key)
            .unwrap_or_else(|| panic!("validated weights lack `{key}`"))
    }

    /// A node named `path` whose output is the value of graph node `out`, recorded in
    /// `value_info` unless it is a network output.
    fn node(
        &mut self,
        op: &str,
        path: &str,
        inputs: Vec<String>,
        out: NodeId,
        attrs: Vec<AttributeProto>,
    ) {
        let name = self.names[out.index()].clone();
        if !self.g.outputs.iter().any(|o| o.node == out) {
            self.value_info
                .push(value_info_of(&name, self.shapes.get(out)));
        }
        self.raw_node(op, path, inputs, &name, attrs);
    }

    /// A node inside the mapping of graph node `id` (the sigmoid of a silu): its value is named
    /// `PATH.PART` and has `id`'s shape. Returns the value's name.
    fn internal(
        &mut self,
        op: &str,
        path: &str,
        part: &str,
        inputs: Vec<String>,
        id: NodeId,
    ) -> String {
        let name = self.fresh(&format!("{path}.{part}"));
        self.raw_node(op, &name.clone(), inputs, &name, vec![]);
        self.value_info
            .push(value_info_of(&name, self.shapes.get(id)));
        name
    }

    fn raw_node(
        &mut self,
        op: &str,
        name: &str,
        input: Vec<String>,
        output: &str,
        attribute: Vec<AttributeProto>,
    ) {
        self.nodes.push(NodeProto {
            name: Some(name.to_string()),
            op_type: Some(op.to_string()),
            input,
            output: vec![output.to_string()],
            attribute,
            ..Default::default()
        });
    }

    /// A float32 initializer; returns its name.
    fn init_f32(&mut self, name: String, t: &ArrayD<f32>) -> String {
        // Little-endian float32, as ONNX's raw_data holds it; a fixed-size loop the compiler
        // turns into a plain copy (this is most of the exported bytes).
        let mut raw = vec![0u8; t.len() * 4];
        let standard = t.as_standard_layout();
        let values = standard.as_slice().expect("standard layout is contiguous");
        for (dst, v) in raw.chunks_exact_mut(4).zip(values) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
        self.initializer(name, t.shape(), DataType::Float, raw)
    }

    /// A float32 scalar initializer (a constant operand of Clip, Div, Add, Mul).
    fn scalar(&mut self, name: String, v: f32) -> String {
        self.init_f32(name, &ArrayD::from_elem(ndarray::IxDyn(&[]), v))
    }

    /// A 1-D int64 initializer (Slice and Pad take their arguments as tensors).
    fn init_i64(&mut self, name: String, values: &[i64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, &[values.len()], DataType::Int64, raw)
    }

    fn initializer(&mut self, name: String, dims: &[usize], ty: DataType, raw: Vec<u8>) -> String {
        let name = self.fresh(&name);
        self.initializers.push(TensorProto {
            name: Some(name.clone()),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(ty as i32),
            raw_data: Some(raw),
            ..Default::default()
        });
        name
    }
}

/// A conv's weight and bias: the validated tensors, or new ones with a batchnorm folded in.
type ConvWeights<'a> = (Cow<'a, ArrayD<f32>>, Option<Cow<'a, ArrayD<f32>>>);

fn vec1(t: &ArrayD<f32>) -> ArrayView1<'_, f32> {
    t.view()
        .into_dimensionality::<Ix1>()
        .expect("validated shape")
}

/// PyTorch's adaptive bins of an axis of length `len` into `out`, bin `i` covering
/// `floor(i len / out) .. ceil((i + 1) len / out)`, as a (kernel, stride) when every bin has
/// the same length and they start at a fixed step.
fn uniform_bins(len: u64, out: u64) -> Option<(u64, u64)> {
    let bin = |i: u64| (i * len / out, ((i + 1) * len).div_ceil(out));
    let (start0, end0) = bin(0);
    let kernel = end0 - start0;
    let stride = if out > 1 { bin(1).0 - start0 } else { kernel };
    (0..out)
        .all(|i| bin(i) == (i * stride, i * stride + kernel))
        .then_some((kernel, stride))
}

/// ONNX's `pads` for `[h, w]` padding on both sides: `[h_begin, w_begin, h_end, w_end]`.
fn pads([h, w]: [u64; 2]) -> [u64; 4] {
    [h, w, h, w]
}

fn pool_attrs(p: &Pool, average: bool) -> Vec<AttributeProto> {
    let mut attrs = vec![
        ints("kernel_shape", &p.kernel),
        ints("strides", &p.stride),
        ints("pads", &pads(p.pad)),
        int("ceil_mode", i64::from(p.ceil_mode)),
    ];
    if average {
        attrs.push(int("count_include_pad", i64::from(p.count_include_pad)));
    }
    attrs
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(i),
        ..Default::default()
    }
}

fn ints(name: &str, values: &[u64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.iter().map(|&v| v as i64).collect(),
        ..Default::default()
    }
}

fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(value.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(f),
        ..Default::default()
    }
}
