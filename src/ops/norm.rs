//! `batchnorm`: inference-mode batch normalisation, PyTorch's `BatchNorm2d` in `eval()`.

use super::args::{Args, Fallback, Invalid, Param, alias};
use super::{Arity, OpDef, Ranks, Spec, c_in, stated, tensor, w1};
use crate::interp::kernels::{batchnorm_scale_shift, scale_shift_channels};
use crate::ir::Op;
use crate::ir::op::BatchNorm;
use crate::shape::Shape;
use crate::shape::cost::ParamTensor;
use crate::shape::rules::{Mismatch, Rule};
use ndarray::ArrayD;

/// PyTorch's default batchnorm epsilon.
pub const EPS: f32 = 1e-5;
const EPS_F64: f64 = 1e-5;

pub static DEF: OpDef = OpDef {
    name: "batchnorm",
    params: &[
        Param::int("channels", Fallback::Absent)
            .positional()
            .aliases(alias::CHANNELS),
        Param::float("eps", EPS_F64),
    ],
    arity: Arity::Exactly(1),
    ranks: Ranks::Nchw,
    has_params: true,
    build: |a: &Args| {
        let eps = a.float("eps");
        // In f32 (as the kernels use it) it must stay positive: `var + eps` divides.
        if eps.is_nan() || (eps as f32) <= 0.0 {
            return Err(Invalid {
                message: "`eps` of `batchnorm` must be positive".to_string(),
                label: format!("eps {eps}"),
                note: Some("it keeps `sqrt(var + eps)` away from zero"),
                help: Some(
                    "use PyTorch's default, 1e-5 (`eps: 1.0e-5`), or the model's own".into(),
                ),
            });
        }
        Ok(Op::BatchNorm(BatchNorm {
            c: a.opt_int("channels"),
            eps,
        }))
    },
};

impl Spec for BatchNorm {
    fn def(&self) -> &'static OpDef {
        &DEF
    }

    /// # Shapes
    /// `[N, C, H, W]` unchanged.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        stated(self.c, ins[0].dim(1))?;
        Ok(ins[0].clone())
    }

    fn recover(&self, ins: &[&Shape], m: &Mismatch) -> Option<Shape> {
        matches!(m, Mismatch::Stated { .. }).then(|| ins[0].clone())
    }

    fn tensors(&self, input: &Shape) -> Vec<ParamTensor> {
        let c = c_in(input);
        vec![
            tensor("weight", vec![c], true),
            tensor("bias", vec![c], true),
            tensor("running_mean", vec![c], false),
            tensor("running_var", vec![c], false),
        ]
    }

    fn run(&self, args: &[&ArrayD<f32>], weights: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        let [gamma, beta, mean, var] = [0, 1, 2, 3].map(|i| w1(&weights[i]));
        let (scale, shift) = batchnorm_scale_shift(gamma, beta, mean, var, self.eps_f32());
        let mut y = args[0].clone();
        scale_shift_channels(&mut y, scale.view(), shift.view(), false);
        y
    }

    fn label(&self, _: Option<u64>) -> String {
        if self.eps == EPS_F64 {
            "batchnorm".to_string()
        } else {
            format!("batchnorm eps {}", self.eps)
        }
    }
}
