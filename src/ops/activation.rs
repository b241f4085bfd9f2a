//! Elementwise activations (`relu`, `sigmoid`, `tanh`, `leaky_relu`), `softmax`, and the ops
//! that pass a tensor through at inference (`identity`, `dropout`). All accept any rank.

use super::args::{Args, Invalid, Kind, Param, alias};
use super::{Arity, OpDef, Ranks, Spec};
use crate::interp::kernels as k;
use crate::ir::Op;
use crate::ir::op::{Dropout, LeakyRelu};
use crate::shape::Shape;
use crate::shape::rules::Rule;
use ndarray::ArrayD;

/// A parameter-free elementwise op: one scalar function applied to every element.
pub struct Activation {
    def: &'static OpDef,
    /// The function over a buffer, in place (from `over!`), so that it is inlined into the
    /// loop and the loop vectorized: one call per part of a tensor rather than an indirect call
    /// per element.
    map: fn(&mut [f32]),
}

/// `v = f(v)` for every value of a buffer, as a function pointer whose loop has `f` inlined
/// (a non-capturing closure per activation), compiled for the CPU's widest vectors
/// (`Isa::vectorized`).
macro_rules! over {
    ($f:expr) => {
        |values: &mut [f32]| {
            crate::machine::simd::Isa::configured().vectorized(
                #[inline(always)]
                || values.iter_mut().for_each(|v| *v = $f(*v)),
            )
        }
    };
    // Two forms of one function: `$fma` (with fused multiply-adds) where the loop is compiled
    // with FMA, `$plain` elsewhere.
    ($plain:expr, $fma:expr) => {
        |values: &mut [f32]| {
            let isa = crate::machine::simd::Isa::configured();
            if isa.has_fma() {
                isa.vectorized(
                    #[inline(always)]
                    || values.iter_mut().for_each(|v| *v = $fma(*v)),
                )
            } else {
                values.iter_mut().for_each(|v| *v = $plain(*v))
            }
        }
    };
}

/// Values per part of a tensor that one thread maps at a time.
const PART: usize = 1 << 14;

/// Whether a map over `len` values is shared out in parts: on a worker pool of several
/// threads, for more than one part.
fn in_parts(len: usize) -> bool {
    len > PART && k::on_worker_pool()
}

/// The entry of a one-operand op without arguments, of any rank.
const fn unary(name: &'static str, build: fn(&Args) -> Result<Op, Invalid>) -> OpDef {
    OpDef {
        name,
        params: &[],
        arity: Arity::Exactly(1),
        ranks: Ranks::Any,
        has_params: false,
        build,
    }
}

pub static RELU_DEF: OpDef = unary("relu", |_| Ok(Op::Relu));
pub static SIGMOID_DEF: OpDef = unary("sigmoid", |_| Ok(Op::Sigmoid));
pub static TANH_DEF: OpDef = unary("tanh", |_| Ok(Op::Tanh));
pub static SOFTMAX_DEF: OpDef = unary("softmax", |_| Ok(Op::Softmax));
pub static IDENTITY_DEF: OpDef = unary("identity", |_| Ok(Op::Identity));
pub static RELU6_DEF: OpDef = unary("relu6", |_| Ok(Op::Relu6));
pub static SILU_DEF: OpDef = unary("silu", |_| Ok(Op::Silu));
/// `swish` is another name of `silu`: it builds the same op.
pub static SWISH_DEF: OpDef = unary("swish", |_| Ok(Op::Silu));
pub static HARDSWISH_DEF: OpDef = unary("hardswish", |_| Ok(Op::HardSwish));
pub static HARDSIGMOID_DEF: OpDef = unary("hardsigmoid", |_| Ok(Op::HardSigmoid));
pub static GELU_DEF: OpDef = unary("gelu", |_| Ok(Op::Gelu));

pub static RELU: Activation = Activation {
    def: &RELU_DEF,
    map: over!(k::relu1),
};
pub static SIGMOID: Activation = Activation {
    def: &SIGMOID_DEF,
    map: over!(k::sigmoid1, k::sigmoid1_fma),
};
pub static TANH: Activation = Activation {
    def: &TANH_DEF,
    map: over!(f32::tanh),
};
pub static RELU6: Activation = Activation {
    def: &RELU6_DEF,
    map: over!(k::relu6_1),
};
pub static SILU: Activation = Activation {
    def: &SILU_DEF,
    map: over!(k::silu1, k::silu1_fma),
};
pub static HARDSWISH: Activation = Activation {
    def: &HARDSWISH_DEF,
    map: over!(k::hardswish1),
};
pub static HARDSIGMOID: Activation = Activation {
    def: &HARDSIGMOID_DEF,
    map: over!(k::hardsigmoid1),
};
pub static GELU: Activation = Activation {
    def: &GELU_DEF,
    map: over!(k::gelu1),
};
pub static IDENTITY: Activation = Activation {
    def: &IDENTITY_DEF,
    map: over!(|v| v),
};

impl Spec for Activation {
    fn def(&self) -> &'static OpDef {
        self.def
    }
    /// # Shapes
    /// Any shape, unchanged.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        Ok(ins[0].clone())
    }
    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        self.run_owned(args[0].as_standard_layout().into_owned())
            .expect("a standard layout array is mapped in place")
    }
    fn run_owned(&self, mut x: ArrayD<f32>) -> Result<ArrayD<f32>, ArrayD<f32>> {
        if !x.is_standard_layout() {
            return Err(x);
        }
        let values = x
            .as_slice_mut()
            .expect("a standard layout array is contiguous");
        if in_parts(values.len()) {
            use rayon::prelude::*;
            values
                .par_chunks_mut(PART)
                .for_each(|part| (self.map)(part));
        } else {
            (self.map)(values);
        }
        Ok(x)
    }
}

/// Softmax over axis 1: the classes of `[N, K]` logits, the channels of an NCHW tensor (as
/// PyTorch's `softmax(dim=1)`).
pub struct Softmax;

impl Spec for Softmax {
    fn def(&self) -> &'static OpDef {
        &SOFTMAX_DEF
    }
    /// # Shapes
    /// Any shape, unchanged.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        Ok(ins[0].clone())
    }
    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        k::softmax_axis1(args[0].view())
    }
}

pub static LEAKY_DEF: OpDef = OpDef {
    name: "leaky_relu",
    params: &[Param::float("slope", 0.01)
        .positional()
        .aliases(alias::SLOPE)],
    arity: Arity::Exactly(1),
    ranks: Ranks::Any,
    has_params: false,
    build: |a: &Args| {
        Ok(Op::LeakyRelu(LeakyRelu {
            slope: a.float("slope"),
        }))
    },
};

impl Spec for LeakyRelu {
    fn def(&self) -> &'static OpDef {
        &LEAKY_DEF
    }
    /// # Shapes
    /// Any shape, unchanged.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        Ok(ins[0].clone())
    }
    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        k::leaky_relu(args[0], self.slope as f32)
    }
    fn label(&self, _: Option<u64>) -> String {
        format!("leaky_relu {}", self.slope)
    }
}

pub static DROPOUT_DEF: OpDef = OpDef {
    name: "dropout",
    params: &[Param::float("p", 0.5).kind(Kind::Prob).positional()],
    arity: Arity::Exactly(1),
    ranks: Ranks::Any,
    has_params: false,
    build: |a: &Args| Ok(Op::Dropout(Dropout { p: a.float("p") })),
};

impl Spec for Dropout {
    fn def(&self) -> &'static OpDef {
        &DROPOUT_DEF
    }
    /// # Shapes
    /// Any shape, unchanged.
    fn shape(&self, ins: &[&Shape]) -> Rule {
        Ok(ins[0].clone())
    }
    fn run(&self, args: &[&ArrayD<f32>], _: &[ArrayD<f32>], _: usize) -> ArrayD<f32> {
        args[0].clone()
    }
    fn label(&self, _: Option<u64>) -> String {
        format!("dropout {}", self.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each activation's run equals its scalar function value by value, bit for bit, on a
    /// tensor that is not in standard layout (a transposed view), with NaNs of two payloads,
    /// both zeros, both infinities, a subnormal and values around each function's kinks.
    #[test]
    fn each_activation_runs_its_scalar_function_on_every_value() {
        let specials = [
            f32::from_bits(0x7fc0_0001),
            f32::from_bits(0xffc0_0002),
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-40,
            -1e-40,
            -3.0,
            3.0,
            6.0,
            6.5,
            -0.25,
            0.75,
            -90.0,
            90.0,
        ];
        let x = ndarray::Array2::from_shape_fn((4, 6), |(i, j)| {
            specials
                .get(i * 6 + j)
                .copied()
                .unwrap_or((i * 6 + j) as f32 * 0.37 - 4.0)
        })
        .reversed_axes()
        .into_dyn();
        type Scalar = fn(f32) -> f32;
        // Sigmoid and SiLU fuse their multiply-adds where the maps are compiled with FMA.
        let fma = crate::machine::simd::Isa::configured().has_fma();
        let (sigmoid, silu): (Scalar, Scalar) = if fma {
            (k::sigmoid1_fma, k::silu1_fma)
        } else {
            (k::sigmoid1, k::silu1)
        };
        let cases: [(&Activation, Scalar); 9] = [
            (&RELU, k::relu1),
            (&SIGMOID, sigmoid),
            (&TANH, f32::tanh),
            (&RELU6, k::relu6_1),
            (&SILU, silu),
            (&HARDSWISH, k::hardswish1),
            (&HARDSIGMOID, k::hardsigmoid1),
            (&GELU, k::gelu1),
            (&IDENTITY, |v| v),
        ];
        for (act, f) in cases {
            let y = act.run(&[&x], &[], 1);
            assert_eq!(y.shape(), x.shape());
            // An operand whose layout does not allow mapping in place comes back unchanged.
            let back = act
                .run_owned(x.clone())
                .expect_err("a transposed operand is not");
            assert!(
                back.iter()
                    .zip(x.iter())
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            );
            for (a, b) in y.iter().zip(x.iter()) {
                // A NaN's sign and payload are not specified (the loop and the scalar call may
                // differ there): a NaN only has to stay one.
                let same = a.to_bits() == f(*b).to_bits() || (a.is_nan() && f(*b).is_nan());
                assert!(same, "{} of {b}: {a} against {}", act.def.name, f(*b));
            }
        }
    }
}
