//! Shape rules: given the operands' shapes, an op's output shape or what does not fit.
//!
//! Each op's rule is in its registry entry ([`crate::ops`]), after the entry's statement of
//! accepted ranks; this module is the door shape inference and the export use, and the
//! vocabulary of what can go wrong. The rules know nothing of spans or text;
//! `super::report` turns a [`Mismatch`] into a diagnostic. Window sizes come from
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

/// A group count for a help or a fix: the largest at most `groups` that divides both
/// channel counts, as far as a bounded search finds it. Their greatest common divisor when it
/// is at most `groups`; else the largest of its divisors at most `groups` among those found
/// by trial division up to `DIVISOR_STEPS` (each step finds a divisor and its cofactor), at
/// least 1. Bounded so that a user's `groups: 9223372036854775807` costs nothing (counting
/// down from it took forever).
pub fn fitting_groups(groups: u64, c_in: u64, c_out: u64) -> u64 {
    const DIVISOR_STEPS: u64 = 1 << 16;
    let gcd = {
        let (mut a, mut b) = (c_in, c_out);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    if gcd == 0 {
        return 1;
    }
    if gcd <= groups {
        return gcd;
    }
    let mut best = 1;
    for d in (1..=DIVISOR_STEPS).take_while(|d| d.saturating_mul(*d) <= gcd) {
        if gcd % d == 0 {
            for f in [d, gcd / d] {
                if f <= groups {
                    best = best.max(f);
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::fitting_groups;

    #[test]
    fn fitting_groups_divide_both_channel_counts_at_most_the_groups_given() {
        // gcd(6, 4) = 2, found at once however large the groups asked for.
        assert_eq!(fitting_groups(i64::MAX as u64, 6, 4), 2);
        assert_eq!(fitting_groups(u64::MAX, 6, 4), 2);
        // gcd(12, 18) = 6 > 4: its largest divisor at most 4 is 3; at most 2, 2.
        assert_eq!(fitting_groups(4, 12, 18), 3);
        assert_eq!(fitting_groups(2, 12, 18), 2);
        // gcd(64, 96) = 32 > 20: 16 (from the cofactor of 2).
        assert_eq!(fitting_groups(20, 64, 96), 16);
        // No channels, or no groups: 1.
        assert_eq!(fitting_groups(7, 0, 0), 1);
        assert_eq!(fitting_groups(0, 6, 4), 1);
        // gcd(0, 10) = 10 > 5: 5.
        assert_eq!(fitting_groups(5, 0, 10), 5);
        // A prime gcd (2^61 - 1) above the groups: 1, after the bounded search.
        let p = (1u64 << 61) - 1;
        assert_eq!(fitting_groups(1000, p, 2 * p), 1);
    }
}
