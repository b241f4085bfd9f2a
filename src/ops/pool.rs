//! `maxpool`, `avgpool` (PyTorch's `MaxPool2d`/`AvgPool2d`, `ceil_mode` and
//! `count_include_pad` included, sizes per axis), `global_avgpool` and `adaptive_avgpool`.

use super::args::{Args, Fallback, Invalid, Kind, Param, alias};
use super::{Arity, OpDef, Ranks, Spec, axes, size, spatial, v4, window};
use crate::interp::kernels::{
    Pool2dParams, adaptive_avgpool2d, avgpool2d, global_avgpool, maxpool2d,
};
use crate::ir::Op;
use crate::ir::op::{AdaptivePool, Pool, PoolMode};
use crate::shape::formula::pool_out;
use crate::shape::rules::{Mismatch, Rule};
use crate::shape::{Dim, Shape};
use ndarray::ArrayD;

const WINDOW: [Param; 4] = [
    Param::int("k", Fallback::Required)
        .kind(Kind::Ints(2))
        .aliases(alias::K),
    Param::int("stride", Fallback::Absent)
        .kind(Kind::Ints(2))
        .aliases(alias::STRIDE),
    Param::int("pad", Fallback::Int(0))
        .kind(Kind::Ints(2))
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
    let kernel = a.pair("k");
    let pool = Pool {
        mode,
        kernel,
        stride: a.opt_pair("stride").unwrap_or(kernel),
        pad: a.pair("pad"),
        ceil_mode: a.bool("ceil"),
        count_include_pad: mode == PoolMode::Avg && a.bool("count_pad"),
    };
    if (0..2).any(|i| pool.pad[i].saturating_mul(2) > pool.kernel[i]) {
        let name = if mode == PoolMode::Max {
            "maxpool"
        } else {
            "avgpool"
        };
        let most = pool.kernel.map(|k| k / 2);
        let (message, help) = if pool.kernel[0] == pool.kernel[1] {
            (
                format!("`pad` of `{name}` must be at most half its window"),
                format!("use `pad: {}` or less", most[0]),
            )
        } else {
            // Name the axis that does not fit, and keep the other's padding where it fits.
            let axis = (0..2)
                .find(|&i| pool.pad[i].saturating_mul(2) > pool.kernel[i])
                .map_or("H", |i| ["H", "W"][i]);
            let fit = [0, 1].map(|i| pool.pad[i].min(most[i]));
            (
                format!("`pad` of `{name}` must be at most half its window along {axis}"),
                format!("use `pad: [{}, {}]` or less", fit[0], fit[1]),
            )
        };
        return Err(Invalid {
            message,
            label: format!(
                "a {} window with pad {}",
                window(pool.kernel),
                size(pool.pad)
            ),
            note: Some(
                "a window made only of padding would have no input to pool (PyTorch refuses it too)",
            ),
            help: Some(help),
        });
    }
    Ok(pool)
}

impl Pool {
    /// The kernel's hyper-parameters.
    pub fn params(&self) -> Pool2dParams {
        Pool2dParams {
            kernel: self.kernel.map(|v| v as usize),
            stride: self.stride.map(|v| v as usize),
            pad: self.pad.map(|v| v as usize),
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
            |i, len| {
                pool_out(
                    len,
                    self.kernel[i],
                    self.stride[i],
                    self.pad[i],
                    self.ceil_mode,
                )
            },
            |i, axis, len| Mismatch::Window {
                axis,
                len,
                kernel: self.kernel[i],
                pad: self.pad[i],
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
        let stride = if self.stride == [1, 1] {
            String::new()
        } else {
            format!("/{}", axes(self.stride))
        };
        format!("{} {}{stride}", self.def().name, window(self.kernel))
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

pub static ADAPTIVE_DEF: OpDef = OpDef {
    name: "adaptive_avgpool",
    params: &[Param::int("out", Fallback::Required)
        .kind(Kind::Ints(2))
        .positional()
        .aliases(&["output_size"])],
    arity: Arity::Exactly(1),
    ranks: Ranks::Nchw,
    has_params: false,
    build: |a: &Args| Ok(Op::AdaptiveAvgPool(AdaptivePool { out: a.pair("out") })),
};

impl Spec for AdaptivePool {
    fn def(&self) -> &'static OpDef {
        &ADAPTIVE_DEF
    }
    /// # Shapes
    /// `[N, C, H, W]` → `[N, C, out_h, out_w]`, any `H`, `W`.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        let x = ins[0];
        let [h, w] = self.out;
        Ok(Shape(vec![
            x.dim(0).clone(),
            x.dim(1).clone(),
            Dim::Known(h),
            Dim::Known(w),
        ]))
    }
    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        let [h, w] = self.out.map(|v| v as usize);
        adaptive_avgpool2d(v4(args[0]), [h, w]).into_dyn()
    }
    fn label(&self, _: Option<u64>) -> String {
        format!("adaptive_avgpool {}x{}", self.out[0], self.out[1])
    }
}
