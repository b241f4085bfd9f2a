//! What each layer costs: its parameter tensors (names and shapes, as PyTorch's state_dict
//! has them), its learnable parameter count, and its multiply-accumulates.
//!
//! Conventions, as torchvision's published figures: parameters are the learnable tensors
//! (conv and linear weights and biases, batchnorm weight and bias; not running statistics);
//! MACs are those of conv and linear layers, for one sample (batch 1).

use super::Shape;
use crate::ir::Op;

/// One parameter tensor of a layer: key suffix (`weight`), shape, and whether it is learnable
/// (running statistics are not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamTensor {
    pub suffix: &'static str,
    pub shape: Vec<usize>,
    pub learnable: bool,
}

/// The parameter tensors of `op` applied to an input of shape `input`, in state_dict order.
pub fn param_tensors(op: &Op, input: &Shape) -> Vec<ParamTensor> {
    op.spec().tensors(input)
}

/// Learnable parameters of a layer.
///
/// `None` when the layer has parameters but its input channels are not known statically.
pub fn params(op: &Op, input: &Shape) -> Option<u64> {
    counts(op, input).map(|c| c.0)
}

/// Elements of a layer's tensors that are not learned (batchnorm's running mean and variance;
/// PyTorch's `num_batches_tracked` counter is not a tensor here).
///
/// `None` when the layer has parameters but its input channels are not known statically.
pub fn non_trainable(op: &Op, input: &Shape) -> Option<u64> {
    counts(op, input).map(|c| c.1)
}

/// Learnable and non-learnable elements of a layer's tensors, from one listing of them (the
/// summary wants both for every layer). `None` as for [`params`].
pub fn counts(op: &Op, input: &Shape) -> Option<(u64, u64)> {
    if !op.has_params() {
        return Some((0, 0));
    }
    input.dim(1).known()?;
    let mut n = (0u64, 0u64);
    for p in param_tensors(op, input) {
        let size = p
            .shape
            .iter()
            .fold(1u64, |acc, &d| acc.saturating_mul(d as u64));
        let slot = if p.learnable { &mut n.0 } else { &mut n.1 };
        *slot = slot.saturating_add(size);
    }
    Some(n)
}

/// Multiply-accumulates of a layer for one sample; `None` when a size is unknown.
pub fn macs(op: &Op, input: &Shape, output: &Shape) -> Option<u64> {
    op.spec().macs(input, output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::op::Conv;
    use crate::shape::Dim;

    fn shape(d: &[u64]) -> Shape {
        Shape(d.iter().map(|&v| Dim::Known(v)).collect())
    }

    #[test]
    fn resnet_stem_conv_costs_match_hand_arithmetic() {
        // torchvision resnet18 conv1: 64 x 3 x 7 x 7 = 9,408 weights;
        // 112 * 112 outputs per channel, 64 channels, 3 * 49 MACs each = 118,013,952.
        let op = Op::Conv(Conv {
            c_in: None,
            c_out: 64,
            kernel: [7, 7],
            stride: [2, 2],
            pad: [3, 3],
            dilation: [1, 1],
            groups: 1,
            bias: false,
        });
        assert_eq!(params(&op, &shape(&[1, 3, 224, 224])), Some(9_408));
        assert_eq!(
            macs(&op, &shape(&[1, 3, 224, 224]), &shape(&[1, 64, 112, 112])),
            Some(118_013_952)
        );
    }
}
