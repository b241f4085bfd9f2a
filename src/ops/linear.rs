//! `linear`: PyTorch's `Linear` on `[N, features]`.

use super::args::{Args, Fallback, Kind, Param, alias};
use super::{Arity, OpDef, Ranks, Spec, c_in, stated, tensor, v2, w1};
use crate::interp::kernels::linear;
use crate::ir::Op;
use crate::ir::op::Linear;
use crate::shape::cost::ParamTensor;
use crate::shape::rules::{Mismatch, Rule};
use crate::shape::{Dim, Shape};
use ndarray::{ArrayD, Ix2};

pub static DEF: OpDef = OpDef {
    name: "linear",
    params: &[
        Param::int("channels", Fallback::Required)
            .kind(Kind::Channels)
            .positional()
            .aliases(alias::CHANNELS),
        Param::bool("bias", true),
    ],
    arity: Arity::Exactly(1),
    ranks: Ranks::Features,
    has_params: true,
    build: |a: &Args| {
        let (c_in, c_out) = a.channels();
        Ok(Op::Linear(Linear {
            c_in,
            c_out,
            bias: a.bool("bias"),
        }))
    },
};

impl Spec for Linear {
    fn def(&self) -> &'static OpDef {
        &DEF
    }

    /// # Shapes
    /// `[N, F]` → `[N, OUT]`.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        let x = ins[0];
        stated(self.c_in, x.dim(1))?;
        if let Dim::Known(f) = x.dim(1) {
            f.checked_mul(self.c_out)
                .ok_or(Mismatch::Overflow("the weight tensor's element count"))?;
        }
        Ok(Shape(vec![x.dim(0).clone(), Dim::Known(self.c_out)]))
    }

    fn recover(&self, ins: &[&Shape], m: &Mismatch) -> Option<Shape> {
        matches!(m, Mismatch::Stated { .. })
            .then(|| Shape(vec![ins[0].dim(0).clone(), Dim::Known(self.c_out)]))
    }

    fn tensors(&self, input: &Shape) -> Vec<ParamTensor> {
        let c_out = self.c_out as usize;
        let mut v = vec![tensor("weight", vec![c_out, c_in(input)], true)];
        if self.bias {
            v.push(tensor("bias", vec![c_out], true));
        }
        v
    }

    fn macs(&self, input: &Shape, _output: &Shape) -> Option<u64> {
        input.dim(1).known()?.checked_mul(self.c_out)
    }

    fn run(&self, args: &[&ArrayD<f32>], weights: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        let w = weights[0]
            .view()
            .into_dimensionality::<Ix2>()
            .expect("validated weights have the declared shape");
        linear(v2(args[0]), w, weights.get(1).map(w1)).into_dyn()
    }

    fn label(&self, c_in: Option<u64>) -> String {
        let c_in = c_in
            .or(self.c_in)
            .map_or("?".to_string(), |c| c.to_string());
        format!("linear {c_in}→{}", self.c_out)
    }
}
