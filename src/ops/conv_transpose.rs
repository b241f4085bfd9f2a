//! `conv_transpose`: PyTorch's `ConvTranspose2d` (U-Net's up-convolutions), with stated
//! channels, groups, dilation and `output_pad`.

use super::args::{Args, Fallback, Invalid, Kind, Param, alias};
use super::{Arity, Footprint, OpDef, Ranks, Spec, c_in, stated, tensor, v4, w1};
use crate::interp::kernels::{ConvTranspose2dParams, conv_transpose2d};
use crate::ir::Op;
use crate::ir::op::ConvTranspose;
use crate::shape::cost::ParamTensor;
use crate::shape::formula::conv_transpose_out;
use crate::shape::rules::{Mismatch, Rule};
use crate::shape::{Dim, Shape};
use ndarray::{ArrayD, Ix4};

pub static DEF: OpDef = OpDef {
    name: "conv_transpose",
    params: &[
        Param::int("channels", Fallback::Required)
            .kind(Kind::Channels)
            .positional()
            .aliases(alias::CHANNELS),
        Param::int("k", Fallback::Required)
            .kind(Kind::Ints(2))
            .aliases(alias::K),
        Param::int("stride", Fallback::Int(1))
            .kind(Kind::Ints(2))
            .aliases(alias::STRIDE),
        Param::int("pad", Fallback::Int(0))
            .kind(Kind::Ints(2))
            .min(0)
            .aliases(alias::PAD),
        Param::int("output_pad", Fallback::Int(0))
            .kind(Kind::Ints(2))
            .min(0)
            .aliases(&["output_padding"]),
        Param::int("dilation", Fallback::Int(1)).kind(Kind::Ints(2)),
        Param::int("groups", Fallback::Int(1)).aliases(alias::GROUPS),
        Param::bool("bias", false),
    ],
    arity: Arity::Exactly(1),
    ranks: Ranks::Nchw,
    has_params: true,
    build,
};

fn build(a: &Args) -> Result<Op, Invalid> {
    let (c_in, c_out) = a.channels();
    let op = ConvTranspose {
        c_in,
        c_out,
        kernel: a.pair("k"),
        stride: a.pair("stride"),
        pad: a.pair("pad"),
        output_pad: a.pair("output_pad"),
        dilation: a.pair("dilation"),
        groups: a.int("groups"),
        bias: a.bool("bias"),
    };
    // PyTorch's rule: the extra rows must be fewer than the stride or the dilation, or they
    // would be rows no tap reaches twice over.
    for i in 0..2 {
        let limit = op.stride[i].max(op.dilation[i]);
        if op.output_pad[i] >= limit {
            return Err(Invalid {
                message:
                    "`output_pad` of `conv_transpose` must be smaller than its stride or dilation"
                        .into(),
                label: format!(
                    "output_pad {} with stride {} and dilation {}",
                    op.output_pad[i], op.stride[i], op.dilation[i]
                ),
                note: Some(
                    "PyTorch refuses it too: `output_padding` only picks among the sizes a stride makes possible",
                ),
                help: Some(format!("use `output_pad: {}` or less", limit - 1)),
            });
        }
    }
    Ok(Op::ConvTranspose(op))
}

impl ConvTranspose {
    /// The kernel's hyper-parameters.
    pub fn params(&self) -> ConvTranspose2dParams {
        let u = |v: [u64; 2]| v.map(|x| x as usize);
        ConvTranspose2dParams {
            stride: u(self.stride),
            pad: u(self.pad),
            output_pad: u(self.output_pad),
            dilation: u(self.dilation),
            groups: self.groups as usize,
        }
    }
}

impl Spec for ConvTranspose {
    fn def(&self) -> &'static OpDef {
        &DEF
    }

    /// # Shapes
    /// `[N, C, H, W]` → `[N, OUT, H', W']`, sizes from [`conv_transpose_out`].
    fn shape(&self, ins: &[&Shape]) -> Rule {
        let (x, c) = (ins[0], self);
        stated(c.c_in, x.dim(1))?;
        if let Dim::Known(c_in) = x.dim(1) {
            if c_in % c.groups != 0 || c.c_out % c.groups != 0 {
                return Err(Mismatch::Groups {
                    groups: c.groups,
                    c_in: *c_in,
                    c_out: c.c_out,
                });
            }
            // The weight tensor must be countable: [c_in, c_out / groups, k_h, k_w].
            (c.c_out / c.groups)
                .checked_mul(*c_in)
                .and_then(|v| v.checked_mul(c.kernel[0]))
                .and_then(|v| v.checked_mul(c.kernel[1]))
                .ok_or(Mismatch::Overflow("the weight tensor's element count"))?;
        }
        let mut hw = [Dim::Unknown, Dim::Unknown];
        for (i, axis) in [2, 3].into_iter().enumerate() {
            if let Dim::Known(len) = x.dim(axis) {
                let out = conv_transpose_out(
                    *len,
                    c.kernel[i],
                    c.stride[i],
                    c.pad[i],
                    c.dilation[i],
                    c.output_pad[i],
                );
                // Only a padding that removes the whole output fails here.
                hw[i] = Dim::Known(out.ok_or(Mismatch::Window {
                    axis,
                    len: *len,
                    kernel: c.kernel[i],
                    pad: c.pad[i],
                    dilation: c.dilation[i],
                })?);
            }
        }
        let [h, w] = hw;
        Ok(Shape(vec![x.dim(0).clone(), Dim::Known(c.c_out), h, w]))
    }

    fn recover(&self, ins: &[&Shape], m: &Mismatch) -> Option<Shape> {
        match m {
            Mismatch::Stated { .. } | Mismatch::Groups { .. } => ConvTranspose {
                c_in: None,
                groups: 1,
                ..self.clone()
            }
            .shape(ins)
            .ok(),
            _ => None,
        }
    }

    fn tensors(&self, input: &Shape) -> Vec<ParamTensor> {
        let [k_h, k_w] = self.kernel.map(|k| k as usize);
        let c_out = self.c_out as usize;
        let per_group = c_out / (self.groups as usize).max(1);
        let mut v = vec![tensor(
            "weight",
            vec![c_in(input), per_group, k_h, k_w],
            true,
        )];
        if self.bias {
            v.push(tensor("bias", vec![c_out], true));
        }
        v
    }

    /// Every input pixel times every tap of its group's output channels:
    /// `C_in * (OUT / groups) * k_h * k_w * H * W` (the output's extra pixels cost nothing).
    fn macs(&self, input: &Shape, _output: &Shape) -> Option<u64> {
        let c_in = input.dim(1).known()?;
        let (h, w) = (input.dim(2).known()?, input.dim(3).known()?);
        c_in.checked_mul(self.c_out / self.groups)?
            .checked_mul(self.kernel[0])?
            .checked_mul(self.kernel[1])?
            .checked_mul(h)?
            .checked_mul(w)
    }

    fn run(&self, args: &[&ArrayD<f32>], weights: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        let w = weights[0]
            .view()
            .into_dimensionality::<Ix4>()
            .expect("validated weights have the declared shape");
        let b = weights.get(1).map(w1);
        conv_transpose2d(v4(args[0]), w, b, &self.params()).into_dyn()
    }

    /// Neighbouring outputs are a fraction of an input row apart: no whole-number jump.
    fn footprint(&self, _: &Shape) -> Footprint {
        Footprint::Irregular
    }

    fn label(&self, c_in: Option<u64>) -> String {
        let [k_h, k_w] = self.kernel;
        let mut s = format!("conv_transpose {k_h}x{k_w}");
        if self.stride != [1, 1] {
            s.push_str(&format!("/{}", self.stride[0]));
        }
        if self.groups != 1 {
            s.push_str(&format!(" groups {}", self.groups));
        }
        let c_in = c_in
            .or(self.c_in)
            .map_or("?".to_string(), |c| c.to_string());
        s.push_str(&format!(", {c_in}→{}", self.c_out));
        s
    }
}
