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
    /// Scales `x` in place: a squeeze-excitation gate's product writes over the activations
    /// it gates rather than copying them first, each channel plane on whichever of the pool's
    /// threads takes it. The same products as [`Spec::run`].
    fn run_over_first(
        &self,
        mut x: ArrayD<f32>,
        rest: &[&ArrayD<f32>],
        _: usize,
    ) -> Result<ArrayD<f32>, ArrayD<f32>> {
        let g = rest[0];
        let shape = x.shape().to_vec();
        let plane = match shape[..] {
            [n, c, h, w] if g.shape() == [n, c, 1, 1] && g.is_standard_layout() => h * w,
            _ => return Err(x),
        };
        let (Some(values), Some(gates)) = (x.as_slice_mut(), g.as_slice()) else {
            return Err(x);
        };
        if plane == 0 {
            return Ok(x);
        }
        let scale = |(p, &gv): (&mut [f32], &f32)| p.iter_mut().for_each(|v| *v *= gv);
        if k::on_worker_pool() && values.len() > 1 << 14 {
            use rayon::prelude::*;
            values
                .par_chunks_mut(plane)
                .zip(gates.par_iter())
                .for_each(scale);
        } else {
            values.chunks_mut(plane).zip(gates).for_each(scale);
        }
        Ok(x)
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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    fn values(shape: &[usize], seed: f32) -> ArrayD<f32> {
        let len: usize = shape.iter().product();
        ArrayD::from_shape_vec(
            IxDyn(shape),
            (0..len)
                .map(|i| ((i as f32 + seed) * 0.731).sin() * 3.0)
                .collect(),
        )
        .expect("the values fill the shape")
    }

    /// Written over its first operand, the channel gate's product has the bits `run` gives,
    /// on one thread and shared by a pool's; other shapes are handed back unchanged.
    #[test]
    fn mul_over_its_first_operand_is_mul() {
        let (x, g) = (values(&[2, 40, 30, 30], 0.5), values(&[2, 40, 1, 1], 7.0));
        let expected = Mul.run(&[&x, &g], &[], 1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("a thread pool");
        for on_pool in [false, true] {
            let y = if on_pool {
                pool.install(|| Mul.run_over_first(x.clone(), &[&g], 3))
            } else {
                Mul.run_over_first(x.clone(), &[&g], 1)
            }
            .expect("a channel gate of a standard-layout operand");
            assert_eq!(y.shape(), expected.shape());
            assert!(
                y.iter()
                    .zip(&expected)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "on a pool: {on_pool}"
            );
        }
        // A spatial gate and an operand of the gate's own shape take `run`.
        for other in [values(&[2, 1, 30, 30], 1.0), values(&[2, 40, 30, 30], 2.0)] {
            let back = Mul
                .run_over_first(x.clone(), &[&other], 1)
                .expect_err("only channel gates are written over");
            assert!(back.iter().zip(&x).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}
