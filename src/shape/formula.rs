//! The output-size formulas of windowed ops (conv, pools), written once.
//!
//! Both shape inference and the interpreter's kernels call these, so the checker and the
//! kernels that allocate outputs cannot disagree. They never panic: a window that does not fit,
//! a zero stride or an overflow gives `None`.

/// Length of a conv output axis, PyTorch's formula
/// `floor((len + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1`.
///
/// Returns `None` when the (dilated) kernel is larger than the padded input, when `stride`,
/// `kernel` or `dilation` is zero, or on overflow.
pub fn conv_out(len: u64, kernel: u64, stride: u64, pad: u64, dilation: u64) -> Option<u64> {
    if stride == 0 || kernel == 0 || dilation == 0 {
        return None;
    }
    let padded = len.checked_add(pad.checked_mul(2)?)?;
    let span = dilation.checked_mul(kernel - 1)?.checked_add(1)?;
    if span > padded {
        return None;
    }
    Some((padded - span) / stride + 1)
}

/// Length of a transposed-conv output axis, PyTorch's formula
/// `(len - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_pad + 1`.
///
/// Returns `None` when the result is not positive (the padding removes everything), when
/// `len`, `stride`, `kernel` or `dilation` is zero, or on overflow.
pub fn conv_transpose_out(
    len: u64,
    kernel: u64,
    stride: u64,
    pad: u64,
    dilation: u64,
    output_pad: u64,
) -> Option<u64> {
    if len == 0 || stride == 0 || kernel == 0 || dilation == 0 {
        return None;
    }
    let full = (len - 1)
        .checked_mul(stride)?
        .checked_add(dilation.checked_mul(kernel - 1)?)?
        .checked_add(output_pad)?
        .checked_add(1)?;
    full.checked_sub(pad.checked_mul(2)?).filter(|&o| o > 0)
}

/// Length of a pooling output axis, PyTorch's rule for `MaxPool2d`/`AvgPool2d`.
///
/// With `ceil_mode` the division rounds up, but the last window must start inside the input or
/// the left padding (`(out - 1) * stride < len + pad`), as PyTorch enforces.
pub fn pool_out(len: u64, kernel: u64, stride: u64, pad: u64, ceil_mode: bool) -> Option<u64> {
    if !ceil_mode {
        return conv_out(len, kernel, stride, pad, 1);
    }
    if stride == 0 || kernel == 0 {
        return None;
    }
    let padded = len.checked_add(pad.checked_mul(2)?)?;
    if kernel > padded {
        return None;
    }
    let mut out = (padded - kernel).div_ceil(stride) + 1;
    if (out - 1) * stride >= len + pad {
        out -= 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_out_matches_hand_arithmetic() {
        // ResNet stem: 224 -> 112 with 7x7/2 pad 3; 225 -> 113.
        assert_eq!(conv_out(224, 7, 2, 3, 1), Some(112));
        assert_eq!(conv_out(225, 7, 2, 3, 1), Some(113));
        // The tutorial's 4x4 kernel with padding 1 shrinks 32 to 31.
        assert_eq!(conv_out(32, 4, 1, 1, 1), Some(31));
        // Dilation 2 makes a 3x3 kernel span 5.
        assert_eq!(conv_out(7, 3, 1, 0, 2), Some(3));
        assert_eq!(conv_out(2, 3, 1, 0, 1), None);
        assert_eq!(conv_out(8, 3, 0, 0, 1), None);
        assert_eq!(conv_out(u64::MAX, 3, 1, u64::MAX, 1), None);
    }

    #[test]
    fn conv_transpose_out_matches_hand_arithmetic() {
        // U-Net's 2x2 up-convolution with stride 2 doubles: 28 -> 56.
        assert_eq!(conv_transpose_out(28, 2, 2, 0, 1, 0), Some(56));
        // 3x3, stride 2, pad 1, output_pad 1 doubles too: (7 - 1) * 2 - 2 + 2 + 1 + 1 = 14.
        assert_eq!(conv_transpose_out(7, 3, 2, 1, 1, 1), Some(14));
        // Padding larger than the full output leaves nothing.
        assert_eq!(conv_transpose_out(1, 1, 1, 1, 1, 0), None);
        assert_eq!(conv_transpose_out(0, 2, 2, 0, 1, 0), None);
    }

    #[test]
    fn pool_out_ceil_mode_follows_pytorch() {
        // maxpool 3/2/1 on 112: floor((112 + 2 - 3) / 2) + 1 = 56; ceil gives 57, and its last
        // window starts at 112 < 112 + 1, inside the left-padded input, so PyTorch keeps it.
        assert_eq!(pool_out(112, 3, 2, 1, false), Some(56));
        assert_eq!(pool_out(112, 3, 2, 1, true), Some(57));
        // 2x2/2 on 7: floor 3, ceil 4.
        assert_eq!(pool_out(7, 2, 2, 0, false), Some(3));
        assert_eq!(pool_out(7, 2, 2, 0, true), Some(4));
        // ceil would start the last window in the right padding: PyTorch drops it.
        // len 5, k 2, s 2, p 1: padded 7, ceil((7-2)/2)+1 = 4, but (4-1)*2 = 6 >= 5+1.
        assert_eq!(pool_out(5, 2, 2, 1, true), Some(3));
    }
}
