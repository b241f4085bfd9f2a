//! `maxpool`, `avgpool` (PyTorch's `MaxPool2d`/`AvgPool2d`, `ceil_mode` and
//! `count_include_pad` included) and `global_avgpool`.

use super::args::{Args, Fallback, Invalid, Param, alias};
use super::{Arity, OpDef, Ranks, Spec, spatial, v4};
use crate::interp::kernels::{Pool2dParams, avgpool2d, global_avgpool, maxpool2d};
use crate::ir::Op;
use crate::ir::op::{Pool, PoolMode};
use crate::shape::formula::pool_out;
use crate::shape::rules::{Mismatch, Rule};
use crate::shape::{Dim, Shape};
use ndarray::ArrayD;

const WINDOW: [Param; 4] = [
    Param::int("k", Fallback::Required).aliases(alias::K),
    Param::int("stride", Fallback::Absent).aliases(alias::STRIDE),
    Param::int("pad", Fallback::Int(0))
        .min(0)
        .aliases(alias::PAD),
    Param::bool("ceil", false).aliases(alias::CEIL),
];

pub static MAX_DEF: OpDef = OpDef {
    name: "maxpool",
    params: &WINDOW,
    arity: Arity::Exactly(1),
    ranks: Ranks::Nchw,
    has_params: false,
    build: |a| build(a, PoolMode::Max).map(Op::MaxPool),
};

pub static AVG_DEF: OpDef = OpDef {
    name: "avgpool",
    params: &[
        WINDOW[0],
        WINDOW[1],
        WINDOW[2],
        WINDOW[3],
        Param::bool("count_pad", true).aliases(alias::COUNT_PAD),
    ],
    arity: Arity::Exactly(1),
    ranks: Ranks::Nchw,
    has_params: false,
    build: |a| build(a, PoolMode::Avg).map(Op::AvgPool),
};

fn build(a: &Args, mode: PoolMode) -> Result<Pool, Invalid> {
    let kernel = a.int("k");
    let pool = Pool {
        mode,
        kernel,
        stride: a.opt_int("stride").unwrap_or(kernel),
        pad: a.int("pad"),
        ceil_mode: a.bool("ceil"),
        count_include_pad: mode == PoolMode::Avg && a.bool("count_pad"),
    };
    if pool.pad.saturating_mul(2) > pool.kernel {
        let name = if mode == PoolMode::Max {
            "maxpool"
        } else {
            "avgpool"
        };
        return Err(Invalid {
            message: format!("`pad` of `{name}` must be at most half its window"),
            label: format!("a {k}x{k} window with pad {}", pool.pad, k = pool.kernel),
            note: Some(
                "a window made only of padding would have no input to pool (PyTorch refuses it too)",
            ),
            help: Some(format!("use `pad: {}` or less", pool.kernel / 2)),
        });
    }
    Ok(pool)
}

impl Pool {
    /// The kernel's hyper-parameters.
    pub fn params(&self) -> Pool2dParams {
        Pool2dParams {
            kernel: [self.kernel as usize; 2],
            stride: [self.stride as usize; 2],
            pad: [self.pad as usize; 2],
            ceil_mode: self.ceil_mode,
            count_include_pad: self.count_include_pad,
        }
    }
}

impl Spec for Pool {
    fn def(&self) -> &'static OpDef {
        match self.mode {
            PoolMode::Max => &MAX_DEF,
            PoolMode::Avg => &AVG_DEF,
        }
    }

    /// # Shapes
    /// `[N, C, H, W]` → `[N, C, H', W']`, sizes from [`pool_out`].
    fn shape(&self, ins: &[&Shape]) -> Rule {
        let x = ins[0];
        let [h, w] = spatial(
            x,
            |len| pool_out(len, self.kernel, self.stride, self.pad, self.ceil_mode),
            |axis, len| Mismatch::Window {
                axis,
                len,
                kernel: self.kernel,
                pad: self.pad,
                dilation: 1,
            },
        )?;
        Ok(Shape(vec![x.dim(0).clone(), x.dim(1).clone(), h, w]))
    }

    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        let x = v4(args[0]);
        match self.mode {
            PoolMode::Max => maxpool2d(x, &self.params()).into_dyn(),
            PoolMode::Avg => avgpool2d(x, &self.params()).into_dyn(),
        }
    }

    fn label(&self, _: Option<u64>) -> String {
        let stride = if self.stride == 1 {
            String::new()
        } else {
            format!("/{}", self.stride)
        };
        format!("{} {k}x{k}{stride}", self.def().name, k = self.kernel)
    }
}

pub static GLOBAL_DEF: OpDef = OpDef {
    name: "global_avgpool",
    params: &[],
    arity: Arity::Exactly(1),
    ranks: Ranks::Nchw,
    has_params: false,
    build: |_| Ok(Op::GlobalAvgPool),
};

/// The mean of each channel plane.
pub struct GlobalAvgPool;

impl Spec for GlobalAvgPool {
    fn def(&self) -> &'static OpDef {
        &GLOBAL_DEF
    }
    /// # Shapes
    /// `[N, C, H, W]` → `[N, C, 1, 1]`.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        let x = ins[0];
        Ok(Shape(vec![
            x.dim(0).clone(),
            x.dim(1).clone(),
            Dim::Known(1),
            Dim::Known(1),
        ]))
    }
    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        global_avgpool(v4(args[0])).into_dyn()
    }
}
