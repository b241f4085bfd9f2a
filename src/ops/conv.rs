//! `conv`: PyTorch's `Conv2d`, with stated channels, groups and per-axis sizes (`k: [1, 7]`).

use super::args::{Args, Fallback, Kind, Param, alias};
use super::{Arity, OpDef, Ranks, Spec, axes, c_in, spatial, stated, tensor, v4, w1, window};
use crate::interp::kernels::{Conv2dParams, conv2d_threads};
use crate::ir::Op;
use crate::ir::op::Conv;
use crate::shape::cost::ParamTensor;
use crate::shape::formula::conv_out;
use crate::shape::rules::{Mismatch, Rule};
use crate::shape::{Dim, Shape};
use ndarray::{ArrayD, Ix4};

pub static DEF: OpDef = OpDef {
    name: "conv",
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
        Param::int("dilation", Fallback::Int(1)).kind(Kind::Ints(2)),
        Param::int("groups", Fallback::Int(1)).aliases(alias::GROUPS),
        Param::bool("bias", false),
    ],
    arity: Arity::Exactly(1),
    ranks: Ranks::Nchw,
    has_params: true,
    build: |a: &Args| {
        let (c_in, c_out) = a.channels();
        Ok(Op::Conv(Conv {
            c_in,
            c_out,
            kernel: a.pair("k"),
            stride: a.pair("stride"),
            pad: a.pair("pad"),
            dilation: a.pair("dilation"),
            groups: a.int("groups"),
            bias: a.bool("bias"),
        }))
    },
};

impl Conv {
    /// The kernel's hyper-parameters.
    pub fn params(&self) -> Conv2dParams {
        Conv2dParams {
            stride: self.stride.map(|v| v as usize),
            pad: self.pad.map(|v| v as usize),
            dilation: self.dilation.map(|v| v as usize),
            groups: self.groups as usize,
        }
    }
}

impl Spec for Conv {
    fn def(&self) -> &'static OpDef {
        &DEF
    }

    /// # Shapes
    /// `[N, C, H, W]` → `[N, OUT, H', W']`, sizes from [`conv_out`].
    fn shape(&self, ins: &[&Shape]) -> Rule {
        let (x, c) = (ins[0], self);
        stated(c.c_in, x.dim(1))?;
        if let Dim::Known(c_in) = x.dim(1)
            && (c_in % c.groups != 0 || c.c_out % c.groups != 0)
        {
            return Err(Mismatch::Groups {
                groups: c.groups,
                c_in: *c_in,
                c_out: c.c_out,
            });
        }
        let [h, w] = spatial(
            x,
            |i, len| conv_out(len, c.kernel[i], c.stride[i], c.pad[i], c.dilation[i]),
            |i, axis, len| Mismatch::Window {
                axis,
                len,
                kernel: c.kernel[i],
                pad: c.pad[i],
                dilation: c.dilation[i],
            },
        )?;
        // The weight tensor must be countable: [c_out, c_in / groups, k_h, k_w]. Checked after
        // the window, so that a kernel larger than its input is reported as that (E0206).
        if let Dim::Known(c_in) = x.dim(1) {
            (c_in / c.groups)
                .checked_mul(c.c_out)
                .and_then(|v| v.checked_mul(c.kernel[0]))
                .and_then(|v| v.checked_mul(c.kernel[1]))
                .ok_or(Mismatch::Overflow("the weight tensor's element count"))?;
        }
        Ok(Shape(vec![x.dim(0).clone(), Dim::Known(c.c_out), h, w]))
    }

    fn recover(&self, ins: &[&Shape], m: &Mismatch) -> Option<Shape> {
        match m {
            Mismatch::Stated { .. } | Mismatch::Groups { .. } => Conv {
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
        let [k_h, k_w] = self.kernel.map(|v| v as usize);
        let c_out = self.c_out as usize;
        let mut v = vec![tensor(
            "weight",
            vec![c_out, c_in(input) / (self.groups as usize).max(1), k_h, k_w],
            true,
        )];
        if self.bias {
            v.push(tensor("bias", vec![c_out], true));
        }
        v
    }

    fn macs(&self, input: &Shape, output: &Shape) -> Option<u64> {
        let c_in = input.dim(1).known()?;
        let out = output.concrete(1)?;
        let per_output = (c_in / self.groups)
            .checked_mul(self.kernel[0])?
            .checked_mul(self.kernel[1])?;
        out[1..]
            .iter()
            .try_fold(per_output, |acc, &d| acc.checked_mul(d))
    }

    fn run(&self, args: &[&ArrayD<f32>], weights: &[ArrayD<f32>], threads: usize) -> ArrayD<f32> {
        let w = weights[0]
            .view()
            .into_dimensionality::<Ix4>()
            .expect("validated weights have the declared shape");
        let b = weights.get(1).map(w1);
        conv2d_threads(v4(args[0]), w, b, &self.params(), false, threads).into_dyn()
    }

    fn label(&self, c_in: Option<u64>) -> String {
        let mut s = format!("conv {}", window(self.kernel));
        if self.stride != [1, 1] {
            s.push_str(&format!("/{}", axes(self.stride)));
        }
        if self.dilation != [1, 1] {
            s.push_str(&format!(" dilation {}", axes(self.dilation)));
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
