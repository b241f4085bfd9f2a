//! Resampling and cropping of the H and W of NCHW `f32` tensors: PyTorch's `F.interpolate`
//! (legacy `'nearest'` and `'bilinear'`), center crops and zero padding.
//!
//! Source coordinates follow PyTorch's CPU kernels to the letter, in `f32` as they compute
//! them (`UpSample.h`: `nearest_idx`, `area_pixel_compute_source_index`), so the same output
//! pixel reads the same inputs with the same weights. Each `*_ref` is the naive specification,
//! one output element at a time; the fast versions compute each axis's source indices and
//! weights once and sweep whole rows. This file must not validate shapes beyond `expect`ing
//! what the shape checker guarantees, must not use `unsafe`, and references only `ndarray`
//! and `std`.

use ndarray::{Array4, ArrayView4, s};

/// How `upsample` computes an output pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Interpolation {
    /// PyTorch's legacy `'nearest'`: source `min(floor(dst * scale), len - 1)`.
    Nearest,
    /// `'bilinear'`; with `align_corners` the corner pixels of input and output coincide.
    Bilinear { align_corners: bool },
}

/// Hyper-parameters of a resize; index 0 is the H axis, index 1 the W axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResizeParams {
    /// Output `[h, w]`.
    pub out: [usize; 2],
    /// The scale factors when the size came from them (`scale_factor=` in PyTorch, which then
    /// maps coordinates by `1 / factor` instead of `in / out`).
    pub factors: Option<[usize; 2]>,
    pub mode: Interpolation,
}

/// The `f32` scale PyTorch maps output coordinates by (`compute_scales_value`, and
/// `area_pixel_compute_scale` for aligned corners).
fn scale(len: usize, out: usize, factor: Option<usize>, mode: Interpolation) -> f32 {
    match (mode, factor) {
        (
            Interpolation::Bilinear {
                align_corners: true,
            },
            _,
        ) => {
            if out > 1 {
                (len as f32 - 1.0) / (out as f32 - 1.0)
            } else {
                0.0
            }
        }
        (_, Some(f)) => (1.0 / f as f64) as f32,
        (_, None) => len as f32 / out as f32,
    }
}

/// The nearest source index of output `dst` (PyTorch's `nearest_idx`).
fn nearest(dst: usize, len: usize, out: usize, scale: f32) -> usize {
    if out == len {
        dst
    } else if out == 2 * len {
        dst >> 1
    } else {
        ((dst as f32 * scale).floor() as usize).min(len - 1)
    }
}

/// The two source indices of output `dst` and the weight of the second
/// (PyTorch's `area_pixel_compute_source_index` and `compute_indices_weights_linear`).
fn linear(dst: usize, len: usize, scale: f32, align_corners: bool) -> (usize, usize, f32) {
    let src = if align_corners {
        scale * dst as f32
    } else {
        (scale * (dst as f32 + 0.5) - 0.5).max(0.0)
    };
    let i0 = (src as usize).min(len - 1);
    let i1 = if i0 < len - 1 { i0 + 1 } else { i0 };
    (i0, i1, src - i0 as f32)
}

/// One output pixel of `x`'s plane `(b, ch)`, computed from the formulas directly.
fn pixel_ref(
    x: &ArrayView4<f32>,
    (b, ch, oh, ow): (usize, usize, usize, usize),
    p: &ResizeParams,
) -> f32 {
    let (_, _, h, w) = x.dim();
    let factor = |i: usize| p.factors.map(|f| f[i]);
    let (sh, sw) = (
        scale(h, p.out[0], factor(0), p.mode),
        scale(w, p.out[1], factor(1), p.mode),
    );
    match p.mode {
        Interpolation::Nearest => {
            x[[
                b,
                ch,
                nearest(oh, h, p.out[0], sh),
                nearest(ow, w, p.out[1], sw),
            ]]
        }
        Interpolation::Bilinear { align_corners } => {
            let (h0, h1, lh) = linear(oh, h, sh, align_corners);
            let (w0, w1, lw) = linear(ow, w, sw, align_corners);
            let row = |i: usize| (1.0 - lw) * x[[b, ch, i, w0]] + lw * x[[b, ch, i, w1]];
            (1.0 - lh) * row(h0) + lh * row(h1)
        }
    }
}

/// Resize H and W, the naive specification: each output element from the formulas.
///
/// # Shapes
/// - `x`: `[N, C, H, W]` with `H, W >= 1`
/// - returns `[N, C, out[0], out[1]]`
pub fn resize_ref(x: ArrayView4<f32>, p: &ResizeParams) -> Array4<f32> {
    let (n, c, _, _) = x.dim();
    Array4::from_shape_fn((n, c, p.out[0], p.out[1]), |i| pixel_ref(&x, i, p))
}

/// Resize H and W (PyTorch's `F.interpolate`): source indices and weights of each axis once,
/// then plane by plane, row by row.
///
/// # Shapes
/// As [`resize_ref`].
pub fn resize(x: ArrayView4<f32>, p: &ResizeParams) -> Array4<f32> {
    let (n, c, h, w) = x.dim();
    let [oh, ow] = p.out;
    let factor = |i: usize| p.factors.map(|f| f[i]);
    let (sh, sw) = (
        scale(h, oh, factor(0), p.mode),
        scale(w, ow, factor(1), p.mode),
    );
    let mut y = super::zeros((n, c, oh, ow));
    match p.mode {
        Interpolation::Nearest => {
            let rows: Vec<usize> = (0..oh).map(|d| nearest(d, h, oh, sh)).collect();
            let cols: Vec<usize> = (0..ow).map(|d| nearest(d, w, ow, sw)).collect();
            for (b, ch) in (0..n).flat_map(|b| (0..c).map(move |ch| (b, ch))) {
                let src = x.slice(s![b, ch, .., ..]);
                let mut plane = y.slice_mut(s![b, ch, .., ..]);
                for (mut out_row, &r) in plane.outer_iter_mut().zip(&rows) {
                    let in_row = src.row(r);
                    for (o, &col) in out_row.iter_mut().zip(&cols) {
                        *o = in_row[col];
                    }
                }
            }
        }
        Interpolation::Bilinear { align_corners } => {
            let rows: Vec<_> = (0..oh).map(|d| linear(d, h, sh, align_corners)).collect();
            let cols: Vec<_> = (0..ow).map(|d| linear(d, w, sw, align_corners)).collect();
            for (b, ch) in (0..n).flat_map(|b| (0..c).map(move |ch| (b, ch))) {
                let src = x.slice(s![b, ch, .., ..]);
                let mut plane = y.slice_mut(s![b, ch, .., ..]);
                for (mut out_row, &(h0, h1, lh)) in plane.outer_iter_mut().zip(&rows) {
                    let (r0, r1) = (src.row(h0), src.row(h1));
                    for (o, &(w0, w1, lw)) in out_row.iter_mut().zip(&cols) {
                        let top = (1.0 - lw) * r0[w0] + lw * r0[w1];
                        let bottom = (1.0 - lw) * r1[w0] + lw * r1[w1];
                        *o = (1.0 - lh) * top + lh * bottom;
                    }
                }
            }
        }
    }
    y
}

/// Where a center crop of `len` to `out` starts: `floor((len - out) / 2)`, as the original
/// U-Net crops its skips.
pub fn crop_offset(len: usize, out: usize) -> usize {
    (len - out) / 2
}

/// Center crop of H and W to `out`, the naive specification.
///
/// # Shapes
/// - `x`: `[N, C, H, W]` with `out[0] <= H`, `out[1] <= W`
/// - returns `[N, C, out[0], out[1]]`
pub fn crop_ref(x: ArrayView4<f32>, out: [usize; 2]) -> Array4<f32> {
    let (n, c, h, w) = x.dim();
    let (top, left) = (crop_offset(h, out[0]), crop_offset(w, out[1]));
    Array4::from_shape_fn((n, c, out[0], out[1]), |(b, ch, i, j)| {
        x[[b, ch, top + i, left + j]]
    })
}

/// Center crop of H and W to `out`: one slice, copied.
///
/// # Shapes
/// As [`crop_ref`].
pub fn crop(x: ArrayView4<f32>, out: [usize; 2]) -> Array4<f32> {
    let (_, _, h, w) = x.dim();
    let (top, left) = (crop_offset(h, out[0]), crop_offset(w, out[1]));
    x.slice(s![.., .., top..top + out[0], left..left + out[1]])
        .to_owned()
}

/// Zero padding of H and W by `[left, right, top, bottom]` (PyTorch's `ZeroPad2d` order),
/// the naive specification.
///
/// # Shapes
/// - `x`: `[N, C, H, W]`
/// - returns `[N, C, top + H + bottom, left + W + right]`
pub fn pad_ref(x: ArrayView4<f32>, sides: [usize; 4]) -> Array4<f32> {
    let (n, c, h, w) = x.dim();
    let [left, right, top, bottom] = sides;
    Array4::from_shape_fn(
        (n, c, top + h + bottom, left + w + right),
        |(b, ch, i, j)| {
            if (top..top + h).contains(&i) && (left..left + w).contains(&j) {
                x[[b, ch, i - top, j - left]]
            } else {
                0.0
            }
        },
    )
}

/// Zero padding of H and W: zeros, then the input copied into the middle.
///
/// # Shapes
/// As [`pad_ref`].
pub fn pad(x: ArrayView4<f32>, sides: [usize; 4]) -> Array4<f32> {
    let (n, c, h, w) = x.dim();
    let [left, right, top, bottom] = sides;
    let mut y = super::zeros((n, c, top + h + bottom, left + w + right));
    y.slice_mut(s![.., .., top..top + h, left..left + w])
        .assign(&x);
    y
}
