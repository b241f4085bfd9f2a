//! Ops that move elements without arithmetic: `flatten` and the option-A shortcut.

use super::args::{Args, Fallback, Kind, Param, alias};
use super::{Arity, OpDef, Ranks, Spec, spatial, v4};
use crate::interp::kernels::{flatten, shortcut_a};
use crate::ir::Op;
use crate::ir::op::{ShortcutA, Unflatten};
use crate::shape::rules::{Mismatch, Rule};
use crate::shape::{Dim, Shape};
use ndarray::ArrayD;

pub static FLATTEN_DEF: OpDef = OpDef {
    name: "flatten",
    params: &[],
    arity: Arity::Exactly(1),
    ranks: Ranks::Nchw,
    has_params: false,
    build: |_| Ok(Op::Flatten),
};

/// `[N, C, H, W]` → `[N, C*H*W]` in C order.
pub struct Flatten;

impl Spec for Flatten {
    fn def(&self) -> &'static OpDef {
        &FLATTEN_DEF
    }
    /// # Shapes
    /// `[N, C, H, W]` → `[N, C*H*W]`.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        let x = ins[0];
        let f = match (x.dim(1), x.dim(2), x.dim(3)) {
            (Dim::Known(c), Dim::Known(h), Dim::Known(w)) => Dim::Known(
                c.checked_mul(*h)
                    .and_then(|v| v.checked_mul(*w))
                    .ok_or(Mismatch::Overflow("the flattened feature count C*H*W"))?,
            ),
            _ => Dim::Unknown,
        };
        Ok(Shape(vec![x.dim(0).clone(), f]))
    }
    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        flatten(v4(args[0]).to_owned()).into_dyn()
    }
}

pub static UNFLATTEN_DEF: OpDef = OpDef {
    name: "unflatten",
    params: &[Param::int("dims", Fallback::Required)
        .kind(Kind::Ints(3))
        .positional()],
    arity: Arity::Exactly(1),
    ranks: Ranks::Features,
    has_params: false,
    build: |a: &Args| {
        let d = a.ints("dims");
        Ok(Op::Unflatten(Unflatten {
            dims: [d[0], d[1], d[2]],
        }))
    },
};

impl Spec for Unflatten {
    fn def(&self) -> &'static OpDef {
        &UNFLATTEN_DEF
    }

    /// # Shapes
    /// `[N, F]` → `[N, C, H, W]` with `C * H * W = F`.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        let x = ins[0];
        let [c, h, w] = self.dims;
        let product = c
            .checked_mul(h)
            .and_then(|v| v.checked_mul(w))
            .ok_or(Mismatch::Overflow("the product of the unflattened sizes"))?;
        if let Dim::Known(f) = x.dim(1)
            && *f != product
        {
            return Err(Mismatch::Stated {
                stated: product,
                found: *f,
            });
        }
        Ok(Shape(vec![
            x.dim(0).clone(),
            Dim::Known(c),
            Dim::Known(h),
            Dim::Known(w),
        ]))
    }

    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        let x = args[0].as_standard_layout().into_owned();
        let n = x.shape()[0];
        let [c, h, w] = self.dims.map(|d| d as usize);
        x.into_shape_with_order(ndarray::IxDyn(&[n, c, h, w]))
            .expect("the shape checker guarantees C * H * W = F")
    }

    fn label(&self, _: Option<u64>) -> String {
        let [c, h, w] = self.dims;
        format!("unflatten [{c}, {h}, {w}]")
    }
}

pub static SHORTCUT_A_DEF: OpDef = OpDef {
    name: "shortcut_a",
    params: &[
        Param::int("channels", Fallback::Required)
            .positional()
            .aliases(alias::CHANNELS),
        Param::int("stride", Fallback::Int(2)).aliases(alias::STRIDE),
    ],
    arity: Arity::Exactly(1),
    ranks: Ranks::Nchw,
    has_params: false,
    build: |a: &Args| {
        Ok(Op::ShortcutA(ShortcutA {
            c_out: a.int("channels"),
            stride: a.int("stride"),
        }))
    },
};

impl Spec for ShortcutA {
    fn def(&self) -> &'static OpDef {
        &SHORTCUT_A_DEF
    }

    /// # Shapes
    /// `[N, C, H, W]` → `[N, channels, ceil(H / stride), ceil(W / stride)]`.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        let x = ins[0];
        if let Dim::Known(c_in) = x.dim(1)
            && (self.c_out < *c_in || !(self.c_out - c_in).is_multiple_of(2))
        {
            return Err(Mismatch::ShortcutChannels {
                c_in: *c_in,
                c_out: self.c_out,
            });
        }
        let [h, w] = spatial(
            x,
            |_, len| Some(len.div_ceil(self.stride)),
            |_, _, _| Mismatch::Overflow("the output size"),
        )?;
        Ok(Shape(vec![x.dim(0).clone(), Dim::Known(self.c_out), h, w]))
    }

    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        let x = v4(args[0]);
        let c_in = x.dim().1;
        let pad = (self.c_out as usize).saturating_sub(c_in) / 2;
        shortcut_a(x, self.stride as usize, pad, pad).into_dyn()
    }

    fn label(&self, c_in: Option<u64>) -> String {
        let c_in = c_in.map_or("?".to_string(), |c| c.to_string());
        format!("shortcut_a /{}, {c_in}→{}", self.stride, self.c_out)
    }
}
