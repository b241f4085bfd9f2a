//! The op registry: every built-in op as one entry, in one place.
//!
//! An entry has two halves. Its [`OpDef`] is what the language sees: the name, the declared
//! arguments, how many tensors it takes and which ranks each accepts, and how checked
//! arguments build the [`Op`]. Its [`Spec`] (implemented by the op's parameter struct) is what
//! the op means: its shape rule, its parameter tensors and cost, the kernel that runs it, its
//! label in drawings. Lowering, shape inference, cost, the interpreter and the DOT export all
//! consult the registry; none keeps a table of its own, and [`Op::spec`] is the one exhaustive
//! match from a variant to its entry, so a new variant without an entry does not compile.
//!
//! The accepted ranks are stated once, in [`OpDef::ranks`]: [`output_shape`] checks them
//! before the op's rule runs, and a kernel runs on every rank its entry accepts.
//!
//! This module depends only on the op data (`ir::op`), shape values and rules' result types
//! (`shape::{Shape, Dim, formula, rules::Mismatch, cost::ParamTensor}`) and the IR-free kernels
//! (`interp::kernels`); it knows nothing of graphs, spans or diagnostics.

mod activation;
pub mod args;
mod conv;
mod conv_transpose;
mod layout;
mod linear;
mod merge;
mod norm;
mod pool;
mod resample;

use crate::ir::Op;
use crate::shape::cost::ParamTensor;
use crate::shape::rules::{Mismatch, Rule};
use crate::shape::{Dim, Shape};
use args::{Args, Invalid, Param};
use ndarray::ArrayD;

pub use norm::EPS as BN_EPS;

/// How many tensor operands an op takes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Arity {
    Exactly(usize),
    AtLeast(usize),
}

impl Arity {
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
        }
    }
}

/// The ranks every operand of an op accepts. Tensors are NCHW (rank 4) or, after `flatten`,
/// `[N, features]` (rank 2).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ranks {
    /// `[N, C, H, W]` only.
    Nchw,
    /// `[N, features]` only.
    Features,
    /// Any rank: the op's kernel is written for any dimension.
    Any,
}

impl Ranks {
    pub fn accepts(self, rank: usize) -> bool {
        match self {
            Ranks::Nchw => rank == 4,
            Ranks::Features => rank == 2,
            Ranks::Any => true,
        }
    }

    /// The accepted shape, as messages show it.
    pub fn expected(self) -> &'static str {
        match self {
            Ranks::Nchw => "[N, C, H, W]",
            Ranks::Features => "[N, features]",
            Ranks::Any => "a tensor of any rank",
        }
    }

    /// The docs' words for the input column.
    pub fn words(self) -> &'static str {
        match self {
            Ranks::Nchw => "NCHW",
            Ranks::Features => "`[N, F]`",
            Ranks::Any => "any rank",
        }
    }
}

/// What the language sees of an op.
pub struct OpDef {
    pub name: &'static str,
    pub params: &'static [Param],
    pub arity: Arity,
    /// The ranks each operand accepts, checked before the shape rule runs.
    pub ranks: Ranks,
    /// Whether the op has learnable parameters (weights keyed by its path).
    pub has_params: bool,
    /// The op from its checked arguments, or why they do not fit together.
    pub build: fn(&Args) -> Result<Op, Invalid>,
}

/// What an op means. Implemented by each op's parameter struct (or a unit struct).
pub trait Spec: Sync {
    fn def(&self) -> &'static OpDef;

    /// The output shape from operands whose count and ranks the entry accepts.
    ///
    /// # Shapes
    /// Each implementation states its own in its docs row (`docs/language.md`).
    fn shape(&self, ins: &[&Shape]) -> Rule;

    /// The shape to carry on with after `m`, when the mistake is local to the op (stated
    /// channels, groups), so independent errors downstream are still found.
    fn recover(&self, _ins: &[&Shape], _m: &Mismatch) -> Option<Shape> {
        None
    }

    /// The parameter tensors for an input of shape `input`, in state_dict order.
    fn tensors(&self, _input: &Shape) -> Vec<ParamTensor> {
        Vec::new()
    }

    /// Multiply-accumulates for one sample (only conv and linear count, as torchvision).
    fn macs(&self, _input: &Shape, _output: &Shape) -> Option<u64> {
        Some(0)
    }

    /// Run the op: `args` are its operands (of shapes the checker accepted), `weights` its
    /// parameter tensors in [`Spec::tensors`] order. The interpreter's planner may replace this
    /// with a fused kernel (conv + batchnorm + ReLU); this is the op's meaning.
    fn run(&self, args: &[&ArrayD<f32>], weights: &[ArrayD<f32>], threads: usize) -> ArrayD<f32>;

    /// [`Spec::run`] of a one-operand op without weights, written over its operand `x`, which
    /// no later step reads: `Ok` with the result (in `x`'s buffer), or `Err(x)` back unchanged
    /// when the op has no such form (the default) or `x`'s layout does not allow it.
    fn run_owned(&self, x: ArrayD<f32>) -> Result<ArrayD<f32>, ArrayD<f32>> {
        Err(x)
    }

    /// [`Spec::run`] of an op without weights whose result has its first operand's shape,
    /// written over that operand `x`, which no later step reads; `rest` are the other
    /// operands. `Ok` with the result (in `x`'s buffer), or `Err(x)` back unchanged when the
    /// op has no such form (the default) or the layouts do not allow it. `threads` as for
    /// [`Spec::run`].
    fn run_over_first(
        &self,
        x: ArrayD<f32>,
        _rest: &[&ArrayD<f32>],
        _threads: usize,
    ) -> Result<ArrayD<f32>, ArrayD<f32>> {
        Err(x)
    }

    /// The text drawn for the op; `c_in` is the input channel count when known.
    fn label(&self, _c_in: Option<u64>) -> String {
        self.def().name.to_string()
    }

    /// How each output position sees the first operand along H and W, for receptive fields
    /// (`input` is that operand's shape). Pointwise unless the op slides a window, resamples
    /// or mixes positions: such an op must say so here.
    fn footprint(&self, _input: &Shape) -> Footprint {
        Footprint::Pointwise
    }
}

/// How an op's output positions see its input along H and W.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Footprint {
    /// Each output position sees the same position of each operand (activations, batchnorm,
    /// add, concat, mul).
    Pointwise,
    /// A sliding window of `kernel` taps `dilation` apart, moved by `stride`; `[h, w]`.
    Sliding {
        kernel: [u64; 2],
        stride: [u64; 2],
        dilation: [u64; 2],
    },
    /// Each output position sees one position of the first operand, maybe shifted; other
    /// operands give only a size (`crop(like: v)`, `pad`).
    FirstOnly,
    /// Each output sees the whole input (global pooling; flatten, linear, unflatten).
    Global,
    /// Not a fixed window of whole input steps: an adaptive pool whose bins differ in size,
    /// or an op that makes the grid finer (`upsample`, `conv_transpose`), whose jump is a
    /// fraction. The receptive field is then not stated.
    Irregular,
}

/// Every op the language can call, in the docs' order.
pub const REGISTRY: &[&OpDef] = &[
    &conv::DEF,
    &conv_transpose::DEF,
    &norm::DEF,
    &linear::DEF,
    &activation::RELU_DEF,
    &activation::SIGMOID_DEF,
    &activation::TANH_DEF,
    &activation::RELU6_DEF,
    &activation::SILU_DEF,
    &activation::SWISH_DEF,
    &activation::HARDSWISH_DEF,
    &activation::HARDSIGMOID_DEF,
    &activation::GELU_DEF,
    &activation::SOFTMAX_DEF,
    &activation::IDENTITY_DEF,
    &activation::LEAKY_DEF,
    &activation::DROPOUT_DEF,
    &pool::MAX_DEF,
    &pool::AVG_DEF,
    &pool::GLOBAL_DEF,
    &pool::ADAPTIVE_DEF,
    &layout::FLATTEN_DEF,
    &layout::UNFLATTEN_DEF,
    &merge::ADD_DEF,
    &merge::MUL_DEF,
    &merge::SCALE_DEF,
    &merge::CONCAT_DEF,
    &layout::SHORTCUT_A_DEF,
    &resample::UPSAMPLE_DEF,
    &resample::CROP_DEF,
    &resample::PAD_DEF,
];

/// The entry of the op called `name`, if it is a built-in op.
pub fn lookup(name: &str) -> Option<&'static OpDef> {
    REGISTRY.iter().copied().find(|d| d.name == name)
}

/// A network input: not callable, so not in [`REGISTRY`]; its shape is declared.
struct Input;

static INPUT_DEF: OpDef = OpDef {
    name: "input",
    params: &[],
    arity: Arity::Exactly(0),
    ranks: Ranks::Nchw,
    has_params: false,
    build: |_| Ok(Op::Input),
};

impl Spec for Input {
    fn def(&self) -> &'static OpDef {
        &INPUT_DEF
    }
    fn shape(&self, ins: &[&Shape]) -> Rule {
        // Shape inference takes an input's shape from its declaration; nothing flows in.
        ins.first()
            .map(|x| (*x).clone())
            .ok_or(Mismatch::Overflow("an input without its declared shape"))
    }
    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        args[0].clone()
    }
}

impl Op {
    /// The op's registry entry. The one match from variants to entries.
    pub fn spec(&self) -> &dyn Spec {
        match self {
            Op::Input => &Input,
            Op::Conv(c) => c,
            Op::ConvTranspose(c) => c,
            Op::BatchNorm(b) => b,
            Op::Linear(l) => l,
            Op::Relu => &activation::RELU,
            Op::Sigmoid => &activation::SIGMOID,
            Op::Tanh => &activation::TANH,
            Op::Relu6 => &activation::RELU6,
            Op::Silu => &activation::SILU,
            Op::HardSwish => &activation::HARDSWISH,
            Op::HardSigmoid => &activation::HARDSIGMOID,
            Op::Gelu => &activation::GELU,
            Op::LeakyRelu(l) => l,
            Op::Softmax => &activation::Softmax,
            Op::MaxPool(p) | Op::AvgPool(p) => p,
            Op::GlobalAvgPool => &pool::GlobalAvgPool,
            Op::AdaptiveAvgPool(p) => p,
            Op::Flatten => &layout::Flatten,
            Op::Add => &merge::Add,
            Op::Mul => &merge::Mul,
            Op::Scale(s) => s,
            Op::Unflatten(u) => u,
            Op::Concat => &merge::Concat,
            Op::Identity => &activation::IDENTITY,
            Op::Dropout(d) => d,
            Op::ShortcutA(s) => s,
            Op::Upsample(u) => u,
            Op::Crop => &resample::Crop,
            Op::Pad(p) => p,
        }
    }

    pub fn def(&self) -> &'static OpDef {
        self.spec().def()
    }
}

/// The output shape of `op` applied to operands of shapes `ins`: the entry's accepted ranks
/// first, then its rule.
pub fn output_shape(op: &Op, ins: &[&Shape]) -> Rule {
    let def = op.def();
    if let Some(operand) = ins.iter().position(|x| !def.ranks.accepts(x.rank())) {
        return Err(Mismatch::Rank {
            operand,
            expected: def.ranks.expected(),
        });
    }
    let out = op.spec().shape(ins)?;
    // Sizes are signed 64-bit integers in PyTorch and ONNX (and in the language): a size
    // past 2^63 - 1 could only be exported as a negative number.
    if out
        .0
        .iter()
        .any(|d| matches!(d, Dim::Known(v) if i64::try_from(*v).is_err()))
    {
        return Err(Mismatch::Overflow("an output size"));
    }
    Ok(out)
}

/// Check a stated size against an inferred dim.
fn stated(stated: Option<u64>, found: &Dim) -> Result<(), Mismatch> {
    match (stated, found) {
        (Some(s), Dim::Known(f)) if s != *f => Err(Mismatch::Stated {
            stated: s,
            found: *f,
        }),
        _ => Ok(()),
    }
}

/// Apply a window formula to both spatial axes of an NCHW shape: `f(i, len)` and
/// `err(i, axis, len)` get the index `i` into `[h, w]` sizes and the shape's `axis` (2 or 3).
fn spatial(
    x: &Shape,
    f: impl Fn(usize, u64) -> Option<u64>,
    err: impl Fn(usize, usize, u64) -> Mismatch,
) -> Result<[Dim; 2], Mismatch> {
    let mut out = [Dim::Unknown, Dim::Unknown];
    for (i, axis) in [2, 3].into_iter().enumerate() {
        if let Dim::Known(len) = x.dim(axis) {
            out[i] = Dim::Known(f(i, *len).ok_or_else(|| err(i, axis, *len))?);
        }
    }
    Ok(out)
}

/// A window as drawn and quoted: `3x3`, `1x7`.
pub fn window([h, w]: [u64; 2]) -> String {
    format!("{h}x{w}")
}

/// A per-axis size as drawn: `2` when both axes agree, else `2x1`.
pub fn axes(v: [u64; 2]) -> String {
    if v[0] == v[1] {
        v[0].to_string()
    } else {
        window(v)
    }
}

/// A per-axis size as the language writes it: `2` when both axes agree, else `[2, 1]`.
pub fn size([h, w]: [u64; 2]) -> String {
    if h == w {
        h.to_string()
    } else {
        format!("[{h}, {w}]")
    }
}

/// One parameter tensor.
fn tensor(suffix: &'static str, shape: Vec<usize>, learnable: bool) -> ParamTensor {
    ParamTensor {
        suffix,
        shape,
        learnable,
    }
}

/// The input channel count of an NCHW or `[N, F]` shape (0 when not known).
fn c_in(input: &Shape) -> usize {
    input.dim(1).known().unwrap_or(0) as usize
}

const CHECKED4: &str = "the shape checker guarantees a 4-D value";
const CHECKED2: &str = "the shape checker guarantees a 2-D value";

fn v4(x: &ArrayD<f32>) -> ndarray::ArrayView4<'_, f32> {
    x.view()
        .into_dimensionality::<ndarray::Ix4>()
        .expect(CHECKED4)
}

fn v2(x: &ArrayD<f32>) -> ndarray::ArrayView2<'_, f32> {
    x.view()
        .into_dimensionality::<ndarray::Ix2>()
        .expect(CHECKED2)
}

fn w1(x: &ArrayD<f32>) -> ndarray::ArrayView1<'_, f32> {
    x.view()
        .into_dimensionality::<ndarray::Ix1>()
        .expect("validated weights have the declared shape")
}
