//! Ops of several tensors: the residual `add`, the elementwise or gated `mul`, and `concat`.

use super::args::{Args, Param};
use super::{Arity, OpDef, Ranks, Spec, v4};
use crate::interp::kernels as k;
use crate::ir::Op;
use crate::ir::op::Scale;
use crate::shape::rules::{Mismatch, Rule};
use crate::shape::{Dim, Shape};
use ndarray::ArrayD;

pub static ADD_DEF: OpDef = OpDef {
    name: "add",
    params: &[],
    arity: Arity::Exactly(2),
    ranks: Ranks::Any,
    has_params: false,
    build: |_| Ok(Op::Add),
};

/// The residual add: operands of exactly the same shape, any rank.
pub struct Add;

impl Spec for Add {
    fn def(&self) -> &'static OpDef {
        &ADD_DEF
    }
    /// # Shapes
    /// Two equal shapes of any rank, unchanged.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        let (x, y) = (ins[0], ins[1]);
        if x.rank() != y.rank() {
            return Err(Mismatch::Operands {
                other: 1,
                axis: usize::MAX,
            });
        }
        match (0..x.rank()).find(|&a| !x.dim(a).fits(y.dim(a))) {
            Some(axis) => Err(Mismatch::Operands { other: 1, axis }),
            None => Ok(x.clone()),
        }
    }
    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        k::add(args[0].view(), args[1].view())
    }
}

pub static MUL_DEF: OpDef = OpDef {
    name: "mul",
    params: &[],
    arity: Arity::Exactly(2),
    ranks: Ranks::Any,
    has_params: false,
    build: |_| Ok(Op::Mul),
};

/// The elementwise product: `g` of `x`'s shape (any rank), a `[N, C, 1, 1]` channel gate or a
/// `[N, 1, H, W]` spatial gate.
pub struct Mul;

impl Spec for Mul {
    fn def(&self) -> &'static OpDef {
        &MUL_DEF
    }
    /// # Shapes
    /// `x` and `g` equal, or `x` `[N, C, H, W]` and `g` `[N, C, 1, 1]` or `[N, 1, H, W]`;
    /// returns `x`'s shape.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        let (x, g) = (ins[0], ins[1]);
        let one = Dim::Known(1);
        let nchw = g.rank() == 4 && x.rank() == 4 && g.dim(0).fits(x.dim(0));
        let channel = g.dim(1).fits(x.dim(1)) && g.dim(2).fits(&one) && g.dim(3).fits(&one);
        let spatial = g.dim(1).fits(&one) && g.dim(2).fits(x.dim(2)) && g.dim(3).fits(x.dim(3));
        let gate = nchw && (channel || spatial);
        if g.fits(x) || gate {
            Ok(x.clone())
        } else {
            Err(Mismatch::Gate)
        }
    }
    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        k::mul(args[0].view(), args[1].view())
    }
}

pub static SCALE_DEF: OpDef = OpDef {
    name: "scale",
    params: &[Param::float("factor", 1.0).positional()],
    arity: Arity::Exactly(1),
    ranks: Ranks::Any,
    has_params: false,
    build: |a: &Args| {
        Ok(Op::Scale(Scale {
            factor: a.float("factor"),
        }))
    },
};

impl Spec for Scale {
    fn def(&self) -> &'static OpDef {
        &SCALE_DEF
    }
    /// # Shapes
    /// Any shape, unchanged.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        Ok(ins[0].clone())
    }
    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        let f = self.factor as f32;
        args[0].mapv(|v| v * f)
    }
    fn label(&self, _: Option<u64>) -> String {
        format!("scale {}", self.factor)
    }
}

pub static CONCAT_DEF: OpDef = OpDef {
    name: "concat",
    params: &[],
    arity: Arity::AtLeast(2),
    ranks: Ranks::Nchw,
    has_params: false,
    build: |_| Ok(Op::Concat),
};

/// Concatenation along channels.
pub struct Concat;

impl Spec for Concat {
    fn def(&self) -> &'static OpDef {
        &CONCAT_DEF
    }
    /// # Shapes
    /// `[N, C_i, H, W]` each → `[N, sum C_i, H, W]`.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        let x = ins[0];
        let mut c = x.dim(1).known();
        for (i, y) in ins.iter().enumerate().skip(1) {
            if let Some(axis) = [0, 2, 3].into_iter().find(|&a| !x.dim(a).fits(y.dim(a))) {
                return Err(Mismatch::Operands { other: i, axis });
            }
            c = match (c, y.dim(1).known()) {
                (Some(a), Some(b)) => Some(
                    a.checked_add(b)
                        .ok_or(Mismatch::Overflow("the concatenated channel count"))?,
                ),
                _ => None,
            };
        }
        Ok(Shape(vec![
            x.dim(0).clone(),
            c.map_or(Dim::Unknown, Dim::Known),
            x.dim(2).clone(),
            x.dim(3).clone(),
        ]))
    }
    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        let views: Vec<_> = args.iter().map(|a| v4(a)).collect();
        k::concat_channels(&views).into_dyn()
    }
}
