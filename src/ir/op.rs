//! The closed set of ops a network is made of, with one parameter struct per op that has
//! parameters. This is data only: what each op means (its arguments, shape rule, cost, kernel
//! and label) is its entry in the op registry, [`crate::ops`].

use serde::Serialize;

/// A 2-D convolution, PyTorch's `Conv2d`. Sizes are per spatial axis, `[h, w]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conv {
    /// Input channels as stated in the source (`conv(4 -> 3)`), checked by shape inference.
    pub c_in: Option<u64>,
    pub c_out: u64,
    pub kernel: [u64; 2],
    pub stride: [u64; 2],
    pub pad: [u64; 2],
    pub dilation: [u64; 2],
    pub groups: u64,
    pub bias: bool,
}

/// A 2-D transposed convolution, PyTorch's `ConvTranspose2d`; sizes per axis, `[h, w]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConvTranspose {
    /// Input channels as stated in the source (`conv_transpose(1024 -> 512)`).
    pub c_in: Option<u64>,
    pub c_out: u64,
    pub kernel: [u64; 2],
    pub stride: [u64; 2],
    pub pad: [u64; 2],
    pub output_pad: [u64; 2],
    pub dilation: [u64; 2],
    pub groups: u64,
    pub bias: bool,
}

/// Inference-mode batch normalisation, `(x - mean) / sqrt(var + eps) * weight + bias`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchNorm {
    /// Channels as stated in the source (`batchnorm(4)`), checked by shape inference.
    pub c: Option<u64>,
    /// Added to the variance; PyTorch's default is 1e-5.
    pub eps: f64,
}

impl BatchNorm {
    /// The epsilon the kernels use.
    pub fn eps_f32(&self) -> f32 {
        self.eps as f32
    }
}

/// A fully connected layer on a 2-D `[N, features]` tensor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Linear {
    pub c_in: Option<u64>,
    pub c_out: u64,
    pub bias: bool,
}

/// Which reduction a pool applies; always the one its `Op` variant names.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolMode {
    Max,
    Avg,
}

/// Max or average pooling. Sizes are per spatial axis, `[h, w]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pool {
    pub mode: PoolMode,
    pub kernel: [u64; 2],
    pub stride: [u64; 2],
    pub pad: [u64; 2],
    pub ceil_mode: bool,
    /// Average pooling only: whether padded zeros count in the divisor (PyTorch's default).
    pub count_include_pad: bool,
}

/// PyTorch's `AdaptiveAvgPool2d(out)`: output bin `i` of an axis of length `len` averages
/// `floor(i * len / out) .. ceil((i + 1) * len / out)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdaptivePool {
    /// Output `[h, w]`.
    pub out: [u64; 2],
}

/// `x * factor`: a tensor times a number (residual scaling, `0.2 * y`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scale {
    pub factor: f64,
}

/// `[N, F]` → `[N, C, H, W]` with `C * H * W = F`, PyTorch's `x.view(N, C, H, W)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unflatten {
    /// `[C, H, W]`.
    pub dims: [u64; 3],
}

/// The parameter-free option-A shortcut: `x[:, :, ::stride, ::stride]`, then
/// `(c_out - c_in) / 2` zero channels before and after.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShortcutA {
    pub c_out: u64,
    pub stride: u64,
}

/// How `upsample` computes each output pixel (PyTorch's `F.interpolate` modes).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpsampleMode {
    /// PyTorch's legacy `'nearest'`: source index `floor(dst * in / out)`.
    Nearest,
    /// Bilinear, corners aligned or not.
    Bilinear,
}

/// Where `upsample` takes its output size from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpsampleTarget {
    /// An integer factor per axis, `[h, w]`.
    Scale([u64; 2]),
    /// A fixed output size `[h, w]`.
    Size([u64; 2]),
    /// The H and W of the second operand (`like: skip`).
    Like,
}

/// PyTorch's `F.interpolate(x, ...)` on the H and W of an NCHW tensor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Upsample {
    pub target: UpsampleTarget,
    pub mode: UpsampleMode,
    /// Bilinear only: corner pixels of input and output coincide.
    pub align_corners: bool,
}

/// Zero padding of H and W, PyTorch's `nn.ZeroPad2d((left, right, top, bottom))`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pad {
    /// `[left, right, top, bottom]`, in PyTorch's order.
    pub sides: [u64; 4],
}

/// `x` where `x >= 0`, else `slope * x`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeakyRelu {
    pub slope: f64,
}

/// Dropout with probability `p`: a no-op at inference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dropout {
    pub p: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// A network input; its declared shape is in `Graph::inputs`.
    Input,
    Conv(Conv),
    ConvTranspose(ConvTranspose),
    BatchNorm(BatchNorm),
    Linear(Linear),
    Relu,
    Sigmoid,
    Tanh,
    /// `min(max(x, 0), 6)` (MobileNet).
    Relu6,
    /// `x * sigmoid(x)`, also called swish (EfficientNet).
    Silu,
    /// `x * relu6(x + 3) / 6` (MobileNetV3).
    HardSwish,
    /// `relu6(x + 3) / 6`.
    HardSigmoid,
    /// `x / 2 * (1 + erf(x / sqrt(2)))`, the exact form.
    Gelu,
    LeakyRelu(LeakyRelu),
    Softmax,
    MaxPool(Pool),
    AvgPool(Pool),
    GlobalAvgPool,
    AdaptiveAvgPool(AdaptivePool),
    Flatten,
    /// The residual add: both operands must have exactly the same shape.
    Add,
    /// Elementwise product; the second operand may be a `[N, C, 1, 1]` channel gate or a
    /// `[N, 1, H, W]` spatial gate.
    Mul,
    Scale(Scale),
    Unflatten(Unflatten),
    /// Concatenation along channels.
    Concat,
    Identity,
    /// A no-op at inference.
    Dropout(Dropout),
    ShortcutA(ShortcutA),
    Upsample(Upsample),
    /// Center crop to the H and W of the second operand (the original U-Net's skips).
    Crop,
    Pad(Pad),
}

impl Op {
    /// The name the op is called by in the language.
    pub fn name(&self) -> &'static str {
        self.def().name
    }

    /// Whether the op has learnable parameters (and so weights keyed by its path).
    pub fn has_params(&self) -> bool {
        self.def().has_params
    }
}
