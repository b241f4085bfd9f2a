//! One shape rule per op: given the operands' shapes, the output shape or what does not fit.
//!
//! The rules know nothing of spans or text; [`super::report`] turns a [`Mismatch`] into a
//! diagnostic. Window sizes come from [`super::formula`], which the kernels use too.

use super::formula::{conv_out, pool_out};
use super::{Dim, Shape};
use crate::ir::Op;

/// Which spatial axes, by name, for messages.
pub const AXIS_NAMES: [&str; 4] = ["N", "C", "H", "W"];

/// Why an op's operands do not fit. `operand` indices are positions in the op's operand list.
#[derive(Clone, Debug, PartialEq)]
pub enum Mismatch {
    /// The operand has the wrong rank (`expected` is like "[N, C, H, W]").
    Rank {
        operand: usize,
        expected: &'static str,
    },
    /// Stated channels (or features) differ from the inferred ones.
    Stated { stated: u64, found: u64 },
    /// `groups` does not divide the input or output channels.
    Groups { groups: u64, c_in: u64, c_out: u64 },
    /// The (dilated) window is larger than the padded input along `axis`.
    Window {
        axis: usize,
        len: u64,
        kernel: u64,
        pad: u64,
        dilation: u64,
    },
    /// Two operands of an exact-shape op (add, concat) differ at `axis`.
    Operands { other: usize, axis: usize },
    /// A mul whose second operand is neither the same shape nor a `[N, C, 1, 1]` gate.
    Gate,
    /// An option-A shortcut that would drop channels or pad them unevenly.
    ShortcutChannels { c_in: u64, c_out: u64 },
    /// A size that overflows 64 bits.
    Overflow,
}

pub type Rule = Result<Shape, Mismatch>;

fn rank4(x: &Shape, operand: usize) -> Result<(), Mismatch> {
    if x.rank() == 4 {
        Ok(())
    } else {
        Err(Mismatch::Rank {
            operand,
            expected: "[N, C, H, W]",
        })
    }
}

/// Check a stated size against an inferred dim.
fn stated(stated: Option<u64>, found: &Dim) -> Result<(), Mismatch> {
    match (stated, found) {
        (Some(s), Dim::Known(f)) if s != *f => Err(Mismatch::Stated {
            stated: s,
            found: *f,
        }),
        _ => Ok(()),
    }
}

/// Apply a window formula to both spatial axes.
fn spatial(
    x: &Shape,
    f: impl Fn(u64) -> Option<u64>,
    err: impl Fn(usize, u64) -> Mismatch,
) -> Result<[Dim; 2], Mismatch> {
    let mut out = [Dim::Unknown, Dim::Unknown];
    for (i, axis) in [2, 3].into_iter().enumerate() {
        if let Dim::Known(len) = x.dim(axis) {
            out[i] = Dim::Known(f(*len).ok_or_else(|| err(axis, *len))?);
        }
    }
    Ok(out)
}

/// The output shape of `op` applied to operands of shapes `ins`.
///
/// # Shapes
/// NCHW in and out, except `flatten` (`[N, C, H, W]` → `[N, C*H*W]`) and `linear`
/// (`[N, F]` → `[N, out]`).
pub fn output_shape(op: &Op, ins: &[&Shape]) -> Rule {
    let x = ins[0];
    match op {
        Op::Input => Ok(x.clone()),
        Op::Conv(c) => {
            rank4(x, 0)?;
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
            if let Dim::Known(c_in) = x.dim(1) {
                // The weight tensor must be countable: [c_out, c_in / groups, k, k].
                (c_in / c.groups)
                    .checked_mul(c.c_out)
                    .and_then(|v| v.checked_mul(c.kernel))
                    .and_then(|v| v.checked_mul(c.kernel))
                    .ok_or(Mismatch::Overflow)?;
            }
            let [h, w] = spatial(
                x,
                |len| conv_out(len, c.kernel, c.stride, c.pad, c.dilation),
                |axis, len| Mismatch::Window {
                    axis,
                    len,
                    kernel: c.kernel,
                    pad: c.pad,
                    dilation: c.dilation,
                },
            )?;
            Ok(Shape(vec![x.dim(0).clone(), Dim::Known(c.c_out), h, w]))
        }
        Op::BatchNorm(b) => {
            rank4(x, 0)?;
            stated(b.c, x.dim(1))?;
            Ok(x.clone())
        }
        Op::MaxPool(p) | Op::AvgPool(p) => {
            rank4(x, 0)?;
            let [h, w] = spatial(
                x,
                |len| pool_out(len, p.kernel, p.stride, p.pad, p.ceil_mode),
                |axis, len| Mismatch::Window {
                    axis,
                    len,
                    kernel: p.kernel,
                    pad: p.pad,
                    dilation: 1,
                },
            )?;
            Ok(Shape(vec![x.dim(0).clone(), x.dim(1).clone(), h, w]))
        }
        Op::GlobalAvgPool => {
            rank4(x, 0)?;
            Ok(Shape(vec![
                x.dim(0).clone(),
                x.dim(1).clone(),
                Dim::Known(1),
                Dim::Known(1),
            ]))
        }
        Op::Flatten => {
            rank4(x, 0)?;
            let f = match (x.dim(1), x.dim(2), x.dim(3)) {
                (Dim::Known(c), Dim::Known(h), Dim::Known(w)) => Dim::Known(
                    c.checked_mul(*h)
                        .and_then(|v| v.checked_mul(*w))
                        .ok_or(Mismatch::Overflow)?,
                ),
                _ => Dim::Unknown,
            };
            Ok(Shape(vec![x.dim(0).clone(), f]))
        }
        Op::Linear(l) => {
            if x.rank() != 2 {
                return Err(Mismatch::Rank {
                    operand: 0,
                    expected: "[N, features]",
                });
            }
            stated(l.c_in, x.dim(1))?;
            if let Dim::Known(f) = x.dim(1) {
                f.checked_mul(l.c_out).ok_or(Mismatch::Overflow)?;
            }
            Ok(Shape(vec![x.dim(0).clone(), Dim::Known(l.c_out)]))
        }
        Op::Relu
        | Op::Sigmoid
        | Op::Tanh
        | Op::LeakyRelu { .. }
        | Op::Identity
        | Op::Dropout { .. }
        | Op::Softmax => Ok(x.clone()),
        Op::Add => {
            let y = ins[1];
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
        Op::Mul => {
            let g = ins[1];
            let gate = g.rank() == 4
                && x.rank() == 4
                && g.dim(0).fits(x.dim(0))
                && g.dim(1).fits(x.dim(1))
                && g.dim(2).fits(&Dim::Known(1))
                && g.dim(3).fits(&Dim::Known(1));
            if g.fits(x) || gate {
                Ok(x.clone())
            } else {
                Err(Mismatch::Gate)
            }
        }
        Op::Concat => {
            rank4(x, 0)?;
            let mut c = x.dim(1).known();
            for (i, y) in ins.iter().enumerate().skip(1) {
                rank4(y, i)?;
                if let Some(axis) = [0, 2, 3].into_iter().find(|&a| !x.dim(a).fits(y.dim(a))) {
                    return Err(Mismatch::Operands { other: i, axis });
                }
                c = match (c, y.dim(1).known()) {
                    (Some(a), Some(b)) => Some(a.checked_add(b).ok_or(Mismatch::Overflow)?),
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
        Op::ShortcutA(s) => {
            rank4(x, 0)?;
            if let Dim::Known(c_in) = x.dim(1)
                && (s.c_out < *c_in || (s.c_out - c_in) % 2 != 0)
            {
                return Err(Mismatch::ShortcutChannels {
                    c_in: *c_in,
                    c_out: s.c_out,
                });
            }
            let [h, w] = spatial(
                x,
                |len| Some(len.div_ceil(s.stride)),
                |_, _| Mismatch::Overflow,
            )?;
            Ok(Shape(vec![x.dim(0).clone(), Dim::Known(s.c_out), h, w]))
        }
    }
}

/// The output shape to carry on after `m`, when the mistake is local to the op (stated
/// channels, groups): later ops are still checked against it, so independent errors
/// downstream are found in the same run without cascading from this one.
pub fn recover(op: &Op, ins: &[&Shape], m: &Mismatch) -> Option<Shape> {
    let relaxed = match (op, m) {
        (Op::Conv(c), Mismatch::Stated { .. } | Mismatch::Groups { .. }) => {
            Op::Conv(crate::ir::op::Conv {
                c_in: None,
                groups: 1,
                ..c.clone()
            })
        }
        (Op::BatchNorm(_), Mismatch::Stated { .. }) => {
            Op::BatchNorm(crate::ir::op::BatchNorm { c: None })
        }
        (Op::Linear(l), Mismatch::Stated { .. }) => Op::Linear(crate::ir::op::Linear {
            c_in: None,
            ..l.clone()
        }),
        _ => return None,
    };
    output_shape(&relaxed, ins).ok()
}
