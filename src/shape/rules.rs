//! Shape rules: given the operands' shapes, an op's output shape or what does not fit.
//!
//! Each op's rule is in its registry entry ([`crate::ops`]), after the entry's statement of
//! accepted ranks; this module is the door shape inference and the export use, and the
//! vocabulary of what can go wrong. The rules know nothing of spans or text;
//! [`super::report`] turns a [`Mismatch`] into a diagnostic. Window sizes come from
//! [`super::formula`], which the kernels use too.

use super::Shape;
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
    /// A center crop to a size larger than its input along `axis` (`target > len`).
    Crop { axis: usize, len: u64, target: u64 },
    /// A size that overflows 64 bits; says which (e.g. "the weight tensor's element count").
    Overflow(&'static str),
}

pub type Rule = Result<Shape, Mismatch>;

/// The output shape of `op` applied to operands of shapes `ins` (as many as its arity).
///
/// # Shapes
/// Each op's, as its registry entry and docs row state.
pub fn output_shape(op: &Op, ins: &[&Shape]) -> Rule {
    crate::ops::output_shape(op, ins)
}

/// The output shape to carry on after `m`, when the mistake is local to the op (stated
/// channels, groups): later ops are still checked against it, so independent errors
/// downstream are found in the same run without cascading from this one.
pub fn recover(op: &Op, ins: &[&Shape], m: &Mismatch) -> Option<Shape> {
    op.spec().recover(ins, m)
}
