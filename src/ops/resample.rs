//! Ops that change H and W without weights: `upsample` (PyTorch's `F.interpolate`), the
//! center `crop` of U-Net's skips and zero `pad`.
//!
//! `upsample(like: v)` and `crop(like: v)` take the size of a second operand, `v`, which
//! lowering appends after the piped tensor.

use super::args::{Args, Fallback, Invalid, Kind, Param};
use super::{Arity, Footprint, OpDef, Ranks, Spec, v4};
use crate::interp::kernels::{self as k, Interpolation, ResizeParams};
use crate::ir::Op;
use crate::ir::op::{Pad, Upsample, UpsampleMode, UpsampleTarget};
use crate::shape::rules::{Mismatch, Rule};
use crate::shape::{Dim, Shape};
use ndarray::ArrayD;

const MODES: &[&str] = &["nearest", "bilinear"];

pub static UPSAMPLE_DEF: OpDef = OpDef {
    name: "upsample",
    params: &[
        Param::int("scale", Fallback::Absent)
            .kind(Kind::Ints(2))
            .aliases(&["scale_factor"]),
        Param::int("size", Fallback::Absent).kind(Kind::Ints(2)),
        Param::int("like", Fallback::Absent).kind(Kind::Tensor),
        Param::int("mode", Fallback::Absent).kind(Kind::Choice(MODES)),
        Param::bool("align_corners", false),
    ],
    arity: Arity::Exactly(1),
    ranks: Ranks::Nchw,
    has_params: false,
    build: build_upsample,
};

fn build_upsample(a: &Args) -> Result<Op, Invalid> {
    let targets = [
        a.get("scale")
            .map(|_| UpsampleTarget::Scale(a.pair("scale"))),
        a.get("size").map(|_| UpsampleTarget::Size(a.pair("size"))),
        a.get("like").map(|_| UpsampleTarget::Like),
    ];
    let given: Vec<UpsampleTarget> = targets.into_iter().flatten().collect();
    let [target] = given[..] else {
        return Err(Invalid {
            message: "`upsample` needs exactly one of `scale`, `size` and `like`".into(),
            label: format!("{} given", given.len()),
            note: Some("the output size comes from a factor, a size, or another value's H and W"),
            help: Some("for example `upsample(scale: 2)` or `upsample(like: skip)`".into()),
        });
    };
    let mode = match a.choice("mode") {
        "bilinear" => UpsampleMode::Bilinear,
        _ => UpsampleMode::Nearest,
    };
    let align_corners = a.bool("align_corners");
    if align_corners && mode == UpsampleMode::Nearest {
        return Err(Invalid {
            message: "`align_corners` applies to `mode: bilinear` only".into(),
            label: "nearest upsampling with aligned corners".into(),
            note: Some("PyTorch refuses `align_corners` for 'nearest' too"),
            help: Some("add `mode: bilinear`, or leave out `align_corners`".into()),
        });
    }
    Ok(Op::Upsample(Upsample {
        target,
        mode,
        align_corners,
    }))
}

impl Upsample {
    /// The kernel's hyper-parameters for an input of `h x w` and, with `like`, a target of
    /// `like_hw`.
    pub fn params(&self, hw: [usize; 2], like_hw: Option<[usize; 2]>) -> ResizeParams {
        let (out, factors) = match self.target {
            UpsampleTarget::Scale(f) => {
                let f = f.map(|v| v as usize);
                ([hw[0] * f[0], hw[1] * f[1]], Some(f))
            }
            UpsampleTarget::Size(s) => (s.map(|v| v as usize), None),
            UpsampleTarget::Like => (like_hw.expect("`like` gives a second operand"), None),
        };
        let mode = match self.mode {
            UpsampleMode::Nearest => Interpolation::Nearest,
            UpsampleMode::Bilinear => Interpolation::Bilinear {
                align_corners: self.align_corners,
            },
        };
        ResizeParams { out, factors, mode }
    }
}

impl Spec for Upsample {
    fn def(&self) -> &'static OpDef {
        &UPSAMPLE_DEF
    }

    /// # Shapes
    /// `[N, C, H, W]` → `[N, C, H * s_h, W * s_w]` (`scale`), `[N, C, h, w]` (`size`), or the
    /// H and W of the second operand (`like`).
    fn shape(&self, ins: &[&Shape]) -> Rule {
        let x = ins[0];
        let [h, w] = match self.target {
            UpsampleTarget::Scale(f) => [2, 3].map(|axis| match x.dim(axis) {
                Dim::Known(len) => len
                    .checked_mul(f[axis - 2])
                    .map_or(Err(Mismatch::Overflow("the upsampled size")), |v| {
                        Ok(Dim::Known(v))
                    }),
                _ => Ok(Dim::Unknown),
            }),
            UpsampleTarget::Size(s) => s.map(|v| Ok(Dim::Known(v))),
            UpsampleTarget::Like => [2, 3].map(|axis| Ok(ins[1].dim(axis).clone())),
        };
        Ok(Shape(vec![x.dim(0).clone(), x.dim(1).clone(), h?, w?]))
    }

    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        let x = v4(args[0]);
        let (_, _, h, w) = x.dim();
        let like = args.get(1).map(|l| [l.shape()[2], l.shape()[3]]);
        k::resize(x, &self.params([h, w], like)).into_dyn()
    }

    /// Neighbouring outputs are a fraction of an input row apart: no whole-number jump.
    fn footprint(&self, _: &Shape) -> Footprint {
        Footprint::Irregular
    }

    fn label(&self, _: Option<u64>) -> String {
        let mode = match (self.mode, self.align_corners) {
            (UpsampleMode::Nearest, _) => "nearest",
            (UpsampleMode::Bilinear, false) => "bilinear",
            (UpsampleMode::Bilinear, true) => "bilinear, aligned corners",
        };
        match self.target {
            UpsampleTarget::Scale([a, b]) if a == b => format!("upsample \u{d7}{a} {mode}"),
            UpsampleTarget::Scale([a, b]) => format!("upsample \u{d7}{a}x{b} {mode}"),
            UpsampleTarget::Size([a, b]) => format!("upsample to {a}x{b} {mode}"),
            UpsampleTarget::Like => format!("upsample {mode}"),
        }
    }
}

pub static CROP_DEF: OpDef = OpDef {
    name: "crop",
    params: &[Param::int("like", Fallback::Required).kind(Kind::Tensor)],
    arity: Arity::Exactly(1),
    ranks: Ranks::Nchw,
    has_params: false,
    build: |_| Ok(Op::Crop),
};

/// Center crop to the H and W of a second operand.
pub struct Crop;

impl Spec for Crop {
    fn def(&self) -> &'static OpDef {
        &CROP_DEF
    }

    fn footprint(&self, _: &Shape) -> Footprint {
        Footprint::FirstOnly
    }

    /// # Shapes
    /// `[N, C, H, W]` and `[_, _, h, w]` → `[N, C, h, w]`, with `h <= H` and `w <= W`.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        let (x, like) = (ins[0], ins[1]);
        for axis in [2, 3] {
            if let (Dim::Known(len), Dim::Known(target)) = (x.dim(axis), like.dim(axis))
                && target > len
            {
                return Err(Mismatch::Crop {
                    axis,
                    len: *len,
                    target: *target,
                });
            }
        }
        Ok(Shape(vec![
            x.dim(0).clone(),
            x.dim(1).clone(),
            like.dim(2).clone(),
            like.dim(3).clone(),
        ]))
    }

    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        let like = args[1].shape();
        k::crop(v4(args[0]), [like[2], like[3]]).into_dyn()
    }
}

pub static PAD_DEF: OpDef = OpDef {
    name: "pad",
    params: &[Param::int("sides", Fallback::Required)
        .kind(Kind::Ints(4))
        .positional()
        .min(0)
        .aliases(&["padding", "pad"])],
    arity: Arity::Exactly(1),
    ranks: Ranks::Nchw,
    has_params: false,
    build: |a: &Args| {
        let v = a.ints("sides");
        Ok(Op::Pad(Pad {
            sides: [v[0], v[1], v[2], v[3]],
        }))
    },
};

impl Spec for Pad {
    fn def(&self) -> &'static OpDef {
        &PAD_DEF
    }

    fn footprint(&self, _: &Shape) -> Footprint {
        Footprint::FirstOnly
    }

    /// # Shapes
    /// `[N, C, H, W]` → `[N, C, top + H + bottom, left + W + right]`.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        let x = ins[0];
        let [left, right, top, bottom] = self.sides;
        let grow = |axis: usize, a: u64, b: u64| match x.dim(axis) {
            Dim::Known(len) => len
                .checked_add(a)
                .and_then(|v| v.checked_add(b))
                .map(Dim::Known)
                .ok_or(Mismatch::Overflow("the padded size")),
            _ => Ok(Dim::Unknown),
        };
        Ok(Shape(vec![
            x.dim(0).clone(),
            x.dim(1).clone(),
            grow(2, top, bottom)?,
            grow(3, left, right)?,
        ]))
    }

    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        k::pad(v4(args[0]), self.sides.map(|v| v as usize)).into_dyn()
    }

    fn label(&self, _: Option<u64>) -> String {
        match self.sides {
            [a, b, c, d] if a == b && b == c && c == d => format!("pad {a}"),
            [l, r, t, b] => format!("pad [{l}, {r}, {t}, {b}]"),
        }
    }
}
