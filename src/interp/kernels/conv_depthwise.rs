//! The depthwise convolution: one filter per channel (`groups == C_in == C_out`, as in
//! MobileNet's and EfficientNet's inverted residuals), which the packed GEMM would run as one
//! channel per `MR`-channel panel with reductions of `K_h * K_w` (a few GFLOP/s).
//!
//! Each output plane is computed whole by one task, output row by output row: for each tap in
//! the reference's order (kernel rows outer, columns inner), the tap's weight times the input
//! values it reads is added to the row's sums over the run of output columns whose tap lands
//! inside the input (the columns of the padding add nothing), a loop the compiler vectorizes
//! (with stride 1, contiguous). Then bias, residual and ReLU as the other convs add and apply
//! them. Every value is summed in the same order whatever the thread count. The result equals
//! [`super::conv2d_ref`] up to `f32` rounding (property tests). No `unsafe` here.

use ndarray::{Array4, ArrayView1, ArrayView4};
use rayon::prelude::*;

use super::conv::{Conv2dParams, out_hw};
use crate::machine::simd::Isa;

/// A depthwise convolution's weights (`[C][K_h * K_w]`), bias and hyper-parameters.
#[derive(Debug, Clone)]
pub struct DepthwiseConv {
    w: Vec<f32>,
    bias: Vec<f32>,
    kh: usize,
    kw: usize,
    p: Conv2dParams,
}

impl DepthwiseConv {
    /// Whether a conv with weights of shape `[C_out, C_in/groups, K_h, K_w]` and `groups`
    /// groups is depthwise: one input and one output channel per group.
    pub fn applies(w_dim: (usize, usize, usize, usize), groups: usize) -> bool {
        let (c_out, cin_g, _, _) = w_dim;
        groups > 1 && cin_g == 1 && c_out == groups
    }

    /// # Panics
    /// If the conv is not depthwise ([`DepthwiseConv::applies`]).
    pub fn new(w: ArrayView4<f32>, bias: Option<ArrayView1<f32>>, p: Conv2dParams) -> Self {
        assert!(Self::applies(w.dim(), p.groups), "a depthwise conv");
        let (c, _, kh, kw) = w.dim();
        DepthwiseConv {
            w: w.iter().copied().collect(),
            bias: super::conv::bias_or_zeros(bias, c),
            kh,
            kw,
            p,
        }
    }

    /// Multiply-adds per output value.
    pub fn taps(&self) -> usize {
        self.kh * self.kw
    }
}

/// Bytes one thread holds while it computes a plane of a depthwise conv on `h x w` input
/// planes with column stride `stride` (the phase-split copy of the plane), for the memory
/// estimate.
pub fn scratch_bytes(h: u64, w: u64, stride: u64) -> u64 {
    if stride <= 1 {
        return 0;
    }
    h.saturating_mul(w.div_ceil(stride).saturating_mul(stride.min(w)))
        .saturating_mul(4)
}

/// For each kernel column `j`: the output columns `lo..hi` whose tap `j` lands inside a row of
/// `w` values, and the input column of the first (`lo * stride + j * dilation - pad`).
fn column_runs(wo: usize, w: usize, kw: usize, p: &Conv2dParams) -> Vec<(usize, usize, usize)> {
    let (s, d, pad) = (p.stride[1], p.dilation[1], p.pad[1]);
    (0..kw)
        .map(|j| {
            let off = j * d;
            // Output `o` reads column `o * s + off - pad`, inside when `pad <= o * s + off` and
            // `o * s + off < w + pad`.
            let lo = pad.saturating_sub(off).div_ceil(s).min(wo);
            let hi = if w + pad > off {
                (w + pad - off).div_ceil(s).min(wo)
            } else {
                0
            }
            .max(lo);
            (lo, hi, (lo * s + off).saturating_sub(pad))
        })
        .collect()
}

/// `relu?(depthwise_conv(x, w) + bias + residual)`. Planes are computed on the current rayon
/// pool when called on one (as `run` does).
///
/// # Shapes
/// - `x`: `[N, C, H, W]`; `residual`: the output's shape; returns `[N, C, H_out, W_out]`.
///
/// # Preconditions
/// The shape checker guarantees that the shapes fit; panics otherwise.
pub fn conv2d_depthwise(
    x: ArrayView4<f32>,
    dc: &DepthwiseConv,
    residual: Option<ArrayView4<f32>>,
    relu: bool,
    isa: Isa,
) -> Array4<f32> {
    let (n, c, h, w) = x.dim();
    let p = &dc.p;
    assert_eq!(c, dc.bias.len(), "the shape checker guarantees C channels");
    let (ho, wo) = out_hw(h, w, dc.kh, dc.kw, p);
    let mut out = Array4::<f32>::zeros((n, c, ho, wo));
    if let Some(r) = &residual {
        assert_eq!(r.dim(), out.dim(), "the residual has the output's shape");
    }
    if out.is_empty() {
        return out;
    }
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout is contiguous");
    let residual = residual.as_ref().map(|r| r.as_standard_layout());
    let rs = residual
        .as_ref()
        .map(|r| r.as_slice().expect("standard layout is contiguous"));
    let cols = column_runs(wo, w, dc.kw, p);
    let taps = dc.taps();
    let (plane_in, plane_out) = (h * w, ho * wo);
    // Each thread's phase-split input plane (see `plane_rows`), kept from plane to plane.
    let plane = |phases: &mut Vec<f32>, (i, y): (usize, &mut [f32])| {
        let ch = i % c;
        let xp = &xs[i * plane_in..][..plane_in];
        let wt = &dc.w[ch * taps..][..taps];
        let b = dc.bias[ch];
        let res = rs.map(|r| &r[i * plane_out..][..plane_out]);
        isa.vectorized(
            #[inline(always)]
            || plane_rows(y, xp, wt, b, res, relu, h, w, wo, &cols, dc, phases),
        );
    };
    let os = out.as_slice_mut().expect("a fresh array is contiguous");
    if super::on_worker_pool() {
        os.par_chunks_mut(plane_out)
            .enumerate()
            .for_each_init(Vec::new, plane);
    } else {
        let mut phases = Vec::new();
        os.chunks_mut(plane_out)
            .enumerate()
            .for_each(|pair| plane(&mut phases, pair));
    }
    out
}

/// One output plane `y` (`ho x wo`, zeros) of input plane `xp` (`h x w`), with `phases` as
/// scratch (grown as needed; every value read is written first).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn plane_rows(
    y: &mut [f32],
    xp: &[f32],
    wt: &[f32],
    bias: f32,
    res: Option<&[f32]>,
    relu: bool,
    h: usize,
    w: usize,
    wo: usize,
    cols: &[(usize, usize, usize)],
    dc: &DepthwiseConv,
    phases: &mut Vec<f32>,
) {
    let p = &dc.p;
    let (sh, sw) = (p.stride[0], p.stride[1]);
    // With a column stride, the input's rows split into their column phases (row `ih`'s
    // phase `r` at `phases[ih * row_len + r * wp..]`, its columns `r, r + sw, ...`), so that
    // every tap reads consecutive values. A row has at most `w` phases: a stride wider than
    // the row (which the shape checker allows) leaves the others empty, and none is stored.
    let wp = w.div_ceil(sw);
    let row_len = sw.min(w) * wp;
    if sw > 1 && phases.len() < h * row_len {
        phases.resize(h * row_len, 0.0);
    }
    if sw > 1 {
        for (xrow, prow) in xp.chunks_exact(w).zip(phases.chunks_exact_mut(row_len)) {
            for (r, phase) in prow.chunks_exact_mut(wp).enumerate() {
                for (d, &v) in phase.iter_mut().zip(xrow.iter().skip(r).step_by(sw)) {
                    *d = v;
                }
            }
        }
    }
    for (oh, row) in y.chunks_exact_mut(wo).enumerate() {
        for i in 0..dc.kh {
            let Some(ih) = (oh * sh + i * p.dilation[0]).checked_sub(p.pad[0]) else {
                continue;
            };
            if ih >= h {
                continue;
            }
            let xrow = &xp[ih * w..][..w];
            let prow = if sw > 1 {
                &phases[ih * row_len..][..row_len]
            } else {
                &[][..]
            };
            for (j, &(lo, hi, first)) in cols.iter().enumerate() {
                if lo == hi {
                    continue;
                }
                let wv = wt[i * dc.kw + j];
                let dst = &mut row[lo..hi];
                // Output `lo + t` reads column `first + t * sw`.
                let src = if sw == 1 {
                    &xrow[first..]
                } else {
                    &prow[(first % sw) * wp + first / sw..]
                };
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d += wv * v;
                }
            }
        }
        let act = |v: f32| if relu && v < 0.0 { 0.0 } else { v };
        match res {
            Some(r) => {
                let r = &r[oh * wo..][..wo];
                for (d, &rv) in row.iter_mut().zip(r) {
                    *d = act(*d + bias + rv);
                }
            }
            None => row.iter_mut().for_each(|d| *d = act(*d + bias)),
        }
    }
}
