//! 2-D transposed convolution over NCHW `f32` tensors, PyTorch's `ConvTranspose2d`.
//!
//! Each input pixel scatters its value times the kernel into the output: input `(ih, iw)` and
//! tap `(ki, kj)` land on output `(ih s_h - p_h + ki d_h + ..., ...)`; `output_pad` adds rows
//! and columns at the bottom and right that only the bias reaches unless a tap does.
//! [`conv_transpose2d_ref`] is the specification, plain scatter loops; [`conv_transpose2d`]
//! is one GEMM per batch item and group (`W_gᵀ · X_g`, through matrixmultiply) followed by
//! the same scatter of its columns ("col2im"). This file must not use `unsafe`, nor check
//! shapes for the user, and references only `ndarray`, `std` and `crate::shape::formula`.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, Array4, ArrayView1, ArrayView4, s};

use crate::shape::formula::conv_transpose_out;

/// Hyper-parameters of a transposed convolution; index 0 is the H axis, index 1 the W axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvTranspose2dParams {
    pub stride: [usize; 2],
    /// Removed from each side of the full output (PyTorch's `padding`).
    pub pad: [usize; 2],
    /// Extra rows and columns at the end (PyTorch's `output_padding`).
    pub output_pad: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

const CHECKED: &str = "the shape checker guarantees a valid transposed convolution";

/// Output `(h_out, w_out)` for an `h x w` input and a `kh x kw` kernel.
fn out_hw(h: usize, w: usize, kh: usize, kw: usize, p: &ConvTranspose2dParams) -> (usize, usize) {
    let axis = |len: usize, k: usize, i: usize| {
        let o = conv_transpose_out(
            len as u64,
            k as u64,
            p.stride[i] as u64,
            p.pad[i] as u64,
            p.dilation[i] as u64,
            p.output_pad[i] as u64,
        )
        .expect(CHECKED);
        usize::try_from(o).expect(CHECKED)
    };
    (axis(h, kh, 0), axis(w, kw, 1))
}

/// Where input index `i` and tap `k` land along an axis, if inside the output.
fn target(
    i: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
    out: usize,
) -> Option<usize> {
    (i * stride + k * dilation)
        .checked_sub(pad)
        .filter(|&o| o < out)
}

/// Naive transposed convolution: the specification [`conv_transpose2d`] is tested against.
///
/// # Shapes
/// - `x`: `[N, C_in, H, W]`
/// - `w`: `[C_in, C_out / groups, K_h, K_w]` (PyTorch's layout)
/// - `bias`: `[C_out]`
/// - returns `[N, C_out, H_out, W_out]` with sizes from [`conv_transpose_out`]
pub fn conv_transpose2d_ref(
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    p: &ConvTranspose2dParams,
) -> Array4<f32> {
    let (n, c_in, h, wd) = x.dim();
    let (_, cout_g, kh, kw) = w.dim();
    let cin_g = c_in / p.groups;
    let c_out = cout_g * p.groups;
    let (ho, wo) = out_hw(h, wd, kh, kw, p);
    let mut out = Array4::<f32>::zeros((n, c_out, ho, wo));
    for b in 0..n {
        for ci in 0..c_in {
            let g = ci / cin_g;
            for oc in 0..cout_g {
                for ih in 0..h {
                    for iw in 0..wd {
                        for ki in 0..kh {
                            let Some(oh) = target(ih, ki, p.stride[0], p.dilation[0], p.pad[0], ho)
                            else {
                                continue;
                            };
                            for kj in 0..kw {
                                let Some(ow) =
                                    target(iw, kj, p.stride[1], p.dilation[1], p.pad[1], wo)
                                else {
                                    continue;
                                };
                                out[[b, g * cout_g + oc, oh, ow]] +=
                                    x[[b, ci, ih, iw]] * w[[ci, oc, ki, kj]];
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(bias) = bias {
        for (co, mut plane) in out.axis_iter_mut(ndarray::Axis(1)).enumerate() {
            plane += bias[co];
        }
    }
    out
}

/// Transposed convolution: per batch item and group, the columns `W_gᵀ · X_g` (one row per
/// output channel and tap, one column per input pixel), scattered into the output.
///
/// # Shapes
/// As [`conv_transpose2d_ref`].
pub fn conv_transpose2d(
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    p: &ConvTranspose2dParams,
) -> Array4<f32> {
    let (n, c_in, h, wd) = x.dim();
    let (_, cout_g, kh, kw) = w.dim();
    let cin_g = c_in / p.groups;
    let c_out = cout_g * p.groups;
    let (ho, wo) = out_hw(h, wd, kh, kw, p);
    let mut out = super::zeros((n, c_out, ho, wo));
    // Each tap's output row and column for every input row and column, once.
    let rows: Vec<Vec<Option<usize>>> = (0..kh)
        .map(|ki| {
            (0..h)
                .map(|i| target(i, ki, p.stride[0], p.dilation[0], p.pad[0], ho))
                .collect()
        })
        .collect();
    let cols_of: Vec<Vec<Option<usize>>> = (0..kw)
        .map(|kj| {
            (0..wd)
                .map(|i| target(i, kj, p.stride[1], p.dilation[1], p.pad[1], wo))
                .collect()
        })
        .collect();
    let mut cols = Array2::<f32>::zeros((cout_g * kh * kw, h * wd));
    for g in 0..p.groups {
        let w_g = w.slice(s![g * cin_g..(g + 1) * cin_g, .., .., ..]);
        let w_g = w_g.to_shape((cin_g, cout_g * kh * kw)).expect(CHECKED);
        for b in 0..n {
            let x_g = x.slice(s![b, g * cin_g..(g + 1) * cin_g, .., ..]);
            let x_g = x_g.to_shape((cin_g, h * wd)).expect(CHECKED);
            general_mat_mul(1.0, &w_g.t(), &x_g, 0.0, &mut cols);
            for oc in 0..cout_g {
                let mut plane = out.slice_mut(s![b, g * cout_g + oc, .., ..]);
                for (ki, tap_rows) in rows.iter().enumerate() {
                    for (kj, tap_cols) in cols_of.iter().enumerate() {
                        let row = cols.row((oc * kh + ki) * kw + kj);
                        for (ih, oh) in tap_rows.iter().enumerate() {
                            let Some(oh) = *oh else { continue };
                            let src = row.slice(s![ih * wd..(ih + 1) * wd]);
                            let mut dst = plane.row_mut(oh);
                            for (v, ow) in src.iter().zip(tap_cols) {
                                if let Some(ow) = *ow {
                                    dst[ow] += v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(bias) = bias {
        for (co, mut plane) in out.axis_iter_mut(ndarray::Axis(1)).enumerate() {
            plane += bias[co];
        }
    }
    out
}
