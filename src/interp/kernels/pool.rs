//! 2-D max and average pooling over NCHW `f32` tensors, with PyTorch's semantics exactly.
//!
//! Max pooling treats padding as `-inf` (and propagates NaN as PyTorch does); average pooling
//! uses PyTorch's divisor rule, `ceil_mode` and `count_include_pad` included. Output sizes come
//! from [`pool_out`]. Each `*_ref` is the naive specification;
//! the fast version computes the clipped window bounds once per call and sweeps whole rows of
//! outputs per kernel tap, visiting each window's elements in the reference's order, so its
//! results are bit-identical (max pooling folds each tap's run with
//! [`crate::machine::simd::Isa::fold_max`], PyTorch's max step in the CPU's vectors; with
//! AVX-512 or AVX2 and a column stride of 1 or 2 it folds whole window rows in registers with
//! [`crate::machine::simd::Isa::fold_max_windows`] instead, reading the input as it is). This file
//! must not validate shapes itself beyond `expect`ing what the shape checker guarantees, must
//! not use `unsafe`, and references only `ndarray`, `rayon`, `std`, `crate::machine::simd` and
//! `crate::shape::formula`.

use ndarray::{Array4, ArrayView4};
use rayon::prelude::*;

use crate::machine::simd::Isa;
use crate::shape::formula::pool_out;

/// Hyper-parameters of a 2-D pooling; index 0 is the H axis, index 1 the W axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool2dParams {
    /// Window size.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Implicit padding on each side (`-inf` for max, zero for average).
    pub pad: [usize; 2],
    /// Round the output size up (PyTorch's `ceil_mode`).
    pub ceil_mode: bool,
    /// Average pooling divides by the window size including padding (PyTorch's default `true`).
    pub count_include_pad: bool,
}

const CHECKED: &str = "the shape checker guarantees a valid pooling window";

/// Output spatial size `(h_out, w_out)` of a pooling on an `h x w` input.
fn out_hw(h: usize, w: usize, p: &Pool2dParams) -> (usize, usize) {
    let axis = |len: usize, i: usize| {
        let o = pool_out(
            len as u64,
            p.kernel[i] as u64,
            p.stride[i] as u64,
            p.pad[i] as u64,
            p.ceil_mode,
        )
        .expect(CHECKED);
        usize::try_from(o).expect(CHECKED)
    };
    (axis(h, 0), axis(w, 1))
}

/// One window along one axis, PyTorch's arithmetic: `start..end` clipped to the input, and
/// `span`, the window length clipped only to the right padding (`len + pad`), before clipping
/// to the input — the `count_include_pad` divisor factor.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    span: usize,
}

fn window(o: usize, kernel: usize, stride: usize, pad: usize, len: usize) -> Span {
    // In i128: strides, windows and padding up to 2^63 cannot overflow it.
    let lo = o as i128 * stride as i128 - pad as i128;
    let hi = (lo + kernel as i128).min(len as i128 + pad as i128);
    let span = usize::try_from((hi - lo).max(0)).unwrap_or(usize::MAX);
    // Both clipped into `0..=len`: a window lying wholly in the padding is empty, not inverted.
    let start = lo.clamp(0, len as i128) as usize;
    let end = (hi.clamp(0, len as i128) as usize).max(start);
    Span { start, end, span }
}

/// Whether the fast kernels apply: the window and the column stride are no wider than the
/// input, so the taps and the phase buffer stay input-sized. Otherwise (windows of 2^62, a
/// stride of 10^9) there are few outputs and the reference computes them directly.
fn fast_path_fits(w: usize, p: &Pool2dParams) -> bool {
    p.kernel[1] <= w.max(1) && p.stride[1] <= w.max(1)
}

fn windows(n_out: usize, kernel: usize, stride: usize, pad: usize, len: usize) -> Vec<Span> {
    (0..n_out)
        .map(|o| window(o, kernel, stride, pad, len))
        .collect()
}

/// For each kernel column `kj`: the output columns `lo..hi` whose tap `kj` lands inside the
/// input, and the input column `start` of the first (`ow * stride - pad + kj` for `ow = lo`).
fn col_taps(wo: usize, kernel: usize, stride: usize, pad: usize, len: usize) -> Vec<[usize; 3]> {
    (0..kernel)
        .map(|kj| {
            let lo = pad.saturating_sub(kj).div_ceil(stride).min(wo);
            let hi = if pad + len > kj {
                (pad + len - kj).div_ceil(stride).min(wo)
            } else {
                0
            }
            .max(lo);
            [lo, hi, (lo * stride + kj).saturating_sub(pad)]
        })
        .collect()
}

/// Splits each row of an `h x w` plane into its column phases, `min(stride, w)` of them:
/// `out[(ih * phases + r) * wp + j] = src[ih * w + r + j * stride]`, with
/// `wp = ceil(w / stride)` (the tail of short phases is never read). A stride past the row
/// leaves only `w` phases of one entry each, so the buffer never exceeds the plane.
fn split_phases(src: &[f32], h: usize, w: usize, stride: usize, out: &mut [f32]) {
    let wp = w.div_ceil(stride);
    if wp == 0 {
        return;
    }
    let phases = stride.min(w);
    if stride == 2 && w >= 2 {
        // The common case, as pairs: this loop vectorizes, a strided one does not.
        for (srow, orow) in src
            .chunks_exact(w)
            .zip(out.chunks_exact_mut(2 * wp))
            .take(h)
        {
            let (even, odd) = orow.split_at_mut(wp);
            for ((e, o), pair) in even
                .iter_mut()
                .zip(odd.iter_mut())
                .zip(srow.chunks_exact(2))
            {
                *e = pair[0];
                *o = pair[1];
            }
            if w % 2 == 1 {
                even[wp - 1] = srow[w - 1];
            }
        }
        return;
    }
    for (srow, orow) in src
        .chunks_exact(w)
        .zip(out.chunks_exact_mut(phases * wp))
        .take(h)
    {
        for (r, ophase) in orow.chunks_exact_mut(wp).enumerate() {
            for (o, &v) in ophase.iter_mut().zip(srow.iter().skip(r).step_by(stride)) {
                *o = v;
            }
        }
    }
}

/// Folds one input row into a row of window accumulators, one kernel column at a time. `row`
/// is the input row split into its column phases of `wp` entries each (for stride 1, the row
/// itself), so every tap reads a contiguous run; `fold` folds such a run into its run of
/// accumulators, value by value.
///
/// Each accumulator still sees its window's elements in row-major order (rows outside, kernel
/// columns inside), the order of the reference, so the result is bit-identical; but the loop
/// runs branch-free over contiguous output and input slices.
#[inline]
fn reduce_row(
    acc: &mut [f32],
    row: &[f32],
    wp: usize,
    taps: &[[usize; 3]],
    stride: usize,
    mut fold: impl FnMut(&mut [f32], &[f32]),
) {
    for &[lo, hi, start] in taps {
        if lo >= hi {
            continue;
        }
        let from = (start % stride) * wp + start / stride;
        fold(&mut acc[lo..hi], &row[from..from + (hi - lo)]);
    }
}

/// PyTorch's `max` step: a larger value or a NaN replaces the running maximum.
#[inline]
pub(super) fn max_step(acc: f32, v: f32) -> f32 {
    // Non-short-circuit `|` so that this compiles to a branch-free select.
    if (v > acc) | v.is_nan() { v } else { acc }
}

/// The average-pool divisor of one window.
#[inline]
fn divisor(r: Span, c: Span, count_include_pad: bool) -> f32 {
    // In f64: two window lengths of 2^62 multiply past u64.
    if count_include_pad {
        (r.span as f64 * c.span as f64) as f32
    } else {
        ((r.end - r.start) as f64 * (c.end - c.start) as f64) as f32
    }
}

/// Naive reference max pooling: the specification [`maxpool2d`] is tested against.
///
/// A window entirely in the padding (possible only when `pad > kernel / 2`, which PyTorch
/// rejects) yields `-inf`.
///
/// # Shapes
/// - `x`: `[N, C, H, W]`
/// - returns `[N, C, H_out, W_out]` with sizes from
///   [`pool_out`].
///
/// # Preconditions
/// `pool_out` is `Some` on both axes (the shape checker guarantees it; panics otherwise).
pub fn maxpool2d_ref(x: ArrayView4<f32>, p: &Pool2dParams) -> Array4<f32> {
    let (n, c, h, w) = x.dim();
    let (ho, wo) = out_hw(h, w, p);
    let mut out = Array4::<f32>::zeros((n, c, ho, wo));
    for b in 0..n {
        for ch in 0..c {
            for oh in 0..ho {
                let r = window(oh, p.kernel[0], p.stride[0], p.pad[0], h);
                for ow in 0..wo {
                    let cw = window(ow, p.kernel[1], p.stride[1], p.pad[1], w);
                    let mut m = f32::NEG_INFINITY;
                    for ih in r.start..r.end {
                        for iw in cw.start..cw.end {
                            m = max_step(m, x[[b, ch, ih, iw]]);
                        }
                    }
                    out[[b, ch, oh, ow]] = m;
                }
            }
        }
    }
    out
}

/// Fast max pooling, bit-identical to [`maxpool2d_ref`].
///
/// # Shapes
/// - `x`: `[N, C, H, W]`
/// - returns `[N, C, H_out, W_out]` with sizes from
///   [`pool_out`].
///
/// # Preconditions
/// As for [`maxpool2d_ref`].
pub fn maxpool2d(x: ArrayView4<f32>, p: &Pool2dParams) -> Array4<f32> {
    let (n, c, h, w) = x.dim();
    if !fast_path_fits(w, p) {
        return maxpool2d_ref(x, p);
    }
    let (ho, wo) = out_hw(h, w, p);
    let rows = windows(ho, p.kernel[0], p.stride[0], p.pad[0], h);
    let taps = col_taps(wo, p.kernel[1], p.stride[1], p.pad[1], w);
    let sw = p.stride[1];
    let wp = w.div_ceil(sw);
    // Entries per phase-split row: `min(stride, w)` phases of `wp` entries (`w` for stride 1).
    let row_len = sw.min(w) * wp;
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout is contiguous");
    let mut out = Array4::<f32>::from_elem((n, c, ho, wo), f32::NEG_INFINITY);
    let os = out.as_slice_mut().expect("a fresh array is contiguous");
    let (pin, pout) = (h * w, ho * wo);
    if pout == 0 || pin == 0 {
        return out;
    }
    let isa = Isa::configured();
    // Whole window rows at a time, read from the input as it is, where the CPU can.
    let in_registers = MaxPoolRows::new(h, w, p, isa);
    // Planes in chunks, each with its own phase buffer.
    let pool_plane = |(dst, src): (&mut [f32], &[f32]), phases: &mut Vec<f32>| {
        if let Some(mp) = &in_registers {
            mp.pool_rows(isa, 0, ho, src, 0, dst);
            return;
        }
        let plane_rows = if sw > 1 {
            phases.resize(h * row_len, 0.0);
            split_phases(src, h, w, sw, phases);
            &phases[..]
        } else {
            src
        };
        for (r, drow) in rows.iter().zip(dst.chunks_exact_mut(wo)) {
            for ih in r.start..r.end {
                let row = &plane_rows[ih * row_len..(ih + 1) * row_len];
                reduce_row(drow, row, wp, &taps, sw, |acc, v| isa.fold_max(acc, v));
            }
        }
    };
    let planes = os.chunks_mut(pout).zip(xs.chunks_exact(pin));
    // On a worker pool (as `run` calls it with several threads), the planes are shared out
    // over its threads; each plane is computed whole by one, so the result is the same.
    if super::on_worker_pool() {
        use rayon::prelude::*;
        os.par_chunks_mut(pout)
            .zip(xs.par_chunks_exact(pin))
            .for_each_init(Vec::new, |phases, pair| pool_plane(pair, phases));
    } else {
        let mut phases = Vec::new();
        planes.for_each(|pair| pool_plane(pair, &mut phases));
    }
    out
}

/// A max pool read row by row from the output of the conv it follows, for that conv's tasks
/// to pool each band of rows as soon as they have computed it (the conv's output is then
/// never written out whole, nor read back). Only where [`maxpool2d`] folds whole window rows
/// in registers ([`Isa::folds_max_taps`]), with the same kernel, so the same bits.
#[derive(Debug, Clone)]
pub struct MaxPoolRows {
    /// Output height and width.
    pub ho: usize,
    pub wo: usize,
    /// Input width.
    w: usize,
    /// Each output row's window rows, clipped to the input.
    rows: Vec<std::ops::Range<usize>>,
    p: Pool2dParams,
}

impl MaxPoolRows {
    /// The pool of an `h x w` input, where `isa` folds its windows in registers; `None`
    /// elsewhere (there the conv writes its output and [`maxpool2d`] pools it).
    pub fn new(h: usize, w: usize, p: &Pool2dParams, isa: Isa) -> Option<MaxPoolRows> {
        if !fast_path_fits(w, p) || !isa.folds_max_taps(p.stride[1], p.kernel[1]) {
            return None;
        }
        let (ho, wo) = out_hw(h, w, p);
        let rows = windows(ho, p.kernel[0], p.stride[0], p.pad[0], h)
            .into_iter()
            .map(|r| r.start..r.end)
            .collect();
        Some(MaxPoolRows {
            ho,
            wo,
            w,
            rows,
            p: *p,
        })
    }

    /// The input rows output rows `a..b` read (`a < b <= ho`).
    pub fn input_rows(&self, a: usize, b: usize) -> std::ops::Range<usize> {
        let rows = &self.rows[a..b];
        let start = rows.iter().map(|r| r.start).min().unwrap_or(0);
        let end = rows.iter().map(|r| r.end).max().unwrap_or(start);
        start..end.max(start)
    }

    /// The input rows output row `oh` reads (clipped to the input; empty for a window in
    /// the padding).
    pub fn window_rows(&self, oh: usize) -> std::ops::Range<usize> {
        self.rows[oh].clone()
    }

    /// For each output column, the input columns its window reads (clipped to the input).
    pub fn col_windows(&self) -> Vec<std::ops::Range<usize>> {
        let (k, s, pad) = (self.p.kernel[1], self.p.stride[1], self.p.pad[1]);
        windows(self.wo, k, s, pad, self.w)
            .into_iter()
            .map(|c| c.start..c.end)
            .collect()
    }

    /// Output rows `a..b` of one plane into `dst` (`(b - a) * wo` values), from `src`, the
    /// plane's input rows `r0..` (`w` values each) holding at least `input_rows(a, b)`: one
    /// call of [`Isa::fold_max_windows`] for them all.
    pub fn pool_rows(&self, isa: Isa, a: usize, b: usize, src: &[f32], r0: usize, dst: &mut [f32]) {
        let (kw, sw, pw) = (self.p.kernel[1], self.p.stride[1], self.p.pad[1]);
        let rows = &self.rows[a..b];
        isa.fold_max_windows(dst, self.wo, src, self.w, r0, rows, kw, sw, pw);
    }
}

/// Naive reference average pooling: the specification [`avgpool2d`] is tested against.
///
/// PyTorch's rule: per axis the window `[o * stride - pad, o * stride - pad + kernel)` is first
/// clipped to `len + pad` (so a ceil-mode window hanging past the right padding does not count
/// the overhang), giving the `count_include_pad` divisor; it is then clipped to the input to
/// sum real elements, whose count is the divisor when `count_include_pad` is false. A window with
/// no real element yields `0`.
///
/// # Shapes
/// - `x`: `[N, C, H, W]`
/// - returns `[N, C, H_out, W_out]` with sizes from
///   [`pool_out`].
///
/// # Preconditions
/// `pool_out` is `Some` on both axes (the shape checker guarantees it; panics otherwise).
pub fn avgpool2d_ref(x: ArrayView4<f32>, p: &Pool2dParams) -> Array4<f32> {
    let (n, c, h, w) = x.dim();
    let (ho, wo) = out_hw(h, w, p);
    let mut out = Array4::<f32>::zeros((n, c, ho, wo));
    for b in 0..n {
        for ch in 0..c {
            for oh in 0..ho {
                let r = window(oh, p.kernel[0], p.stride[0], p.pad[0], h);
                for ow in 0..wo {
                    let cw = window(ow, p.kernel[1], p.stride[1], p.pad[1], w);
                    if r.start >= r.end || cw.start >= cw.end {
                        out[[b, ch, oh, ow]] = 0.0;
                        continue;
                    }
                    let mut sum = 0.0f32;
                    for ih in r.start..r.end {
                        for iw in cw.start..cw.end {
                            sum += x[[b, ch, ih, iw]];
                        }
                    }
                    out[[b, ch, oh, ow]] = sum / divisor(r, cw, p.count_include_pad);
                }
            }
        }
    }
    out
}

/// Fast average pooling, bit-identical to [`avgpool2d_ref`].
///
/// # Shapes
/// - `x`: `[N, C, H, W]`
/// - returns `[N, C, H_out, W_out]` with sizes from
///   [`pool_out`].
///
/// # Preconditions
/// As for [`avgpool2d_ref`].
pub fn avgpool2d(x: ArrayView4<f32>, p: &Pool2dParams) -> Array4<f32> {
    let (n, c, h, w) = x.dim();
    if !fast_path_fits(w, p) {
        return avgpool2d_ref(x, p);
    }
    let (ho, wo) = out_hw(h, w, p);
    let rows = windows(ho, p.kernel[0], p.stride[0], p.pad[0], h);
    let cols = windows(wo, p.kernel[1], p.stride[1], p.pad[1], w);
    // Divide (not multiply by a reciprocal) exactly as the reference does. A window with no
    // real element sums to 0 and must stay 0 (PyTorch writes 0), so it divides by 1.
    let divs: Vec<f32> = rows
        .iter()
        .flat_map(|&r| {
            cols.iter().map(move |&cw| {
                if r.start >= r.end || cw.start >= cw.end {
                    1.0
                } else {
                    divisor(r, cw, p.count_include_pad)
                }
            })
        })
        .collect();
    let taps = col_taps(wo, p.kernel[1], p.stride[1], p.pad[1], w);
    let sw = p.stride[1];
    let wp = w.div_ceil(sw);
    // Entries per phase-split row: `min(stride, w)` phases of `wp` entries (`w` for stride 1).
    let row_len = sw.min(w) * wp;
    let mut phases = if sw > 1 {
        vec![0.0f32; h * row_len]
    } else {
        Vec::new()
    };
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout is contiguous");
    let mut out = super::zeros((n, c, ho, wo));
    let os = out.as_slice_mut().expect("a fresh array is contiguous");
    let (pin, pout) = (h * w, ho * wo);
    for plane in 0..n * c {
        let src = &xs[plane * pin..(plane + 1) * pin];
        let dst = &mut os[plane * pout..(plane + 1) * pout];
        let plane_rows = if sw > 1 {
            split_phases(src, h, w, sw, &mut phases);
            &phases[..]
        } else {
            src
        };
        for (r, drow) in rows.iter().zip(dst.chunks_exact_mut(wo)) {
            for ih in r.start..r.end {
                let row = &plane_rows[ih * row_len..(ih + 1) * row_len];
                reduce_row(drow, row, wp, &taps, sw, |acc, v| {
                    acc.iter_mut().zip(v).for_each(|(a, &v)| *a += v)
                });
            }
        }
        for (d, &dv) in dst.iter_mut().zip(&divs) {
            *d /= dv;
        }
    }
    out
}

/// Global average pooling: the mean of each channel plane, summed in `f32` by `plane_sum`'s
/// order: row-major for planes of up to `SUM_LANES` values, in lanes for larger ones.
///
/// This is a single implementation: a plane sum has no faster formulation worth a second copy.
/// Small planes are summed `PLANES_AT_ONCE` side by side, each in its own order, so that the
/// additions of different planes overlap instead of each waiting for the one before (a plane
/// of 49 values is one chain of 49 dependent additions); larger ones one at a time, in lanes
/// whose additions overlap the same way; on a rayon pool (as `run` calls it) the groups are
/// shared by its threads, with the same bits.
///
/// # Shapes
/// - `x`: `[N, C, H, W]`
/// - returns `[N, C, 1, 1]`
///
/// # Preconditions
/// `H * W > 0` (otherwise the mean of nothing is NaN; it does not panic).
pub fn global_avgpool(x: ArrayView4<f32>) -> Array4<f32> {
    let (n, c, h, w) = x.dim();
    let (len, count) = (h * w, (h * w) as f32);
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout is contiguous");
    let mut out = Array4::<f32>::zeros((n, c, 1, 1));
    let os = out.as_slice_mut().expect("a fresh array is contiguous");
    if len == 0 {
        os.fill(f32::NAN);
        return out;
    }
    let isa = Isa::configured();
    let group = |(sums, planes): (&mut [f32], &[f32])| {
        if len > SUM_LANES {
            for (s, plane) in sums.iter_mut().zip(planes.chunks_exact(len)) {
                *s = isa.vectorized(
                    #[inline(always)]
                    || plane_sum(plane),
                ) / count;
            }
            return;
        }
        let mut acc = [0.0f32; PLANES_AT_ONCE];
        for i in 0..len {
            for (a, plane) in acc.iter_mut().zip(planes.chunks_exact(len)) {
                *a += plane[i];
            }
        }
        for (s, a) in sums.iter_mut().zip(acc) {
            *s = a / count;
        }
    };
    if super::on_worker_pool() {
        // Groups of planes over the pool's threads, at least `PARALLEL_VALUES` values to a
        // job; each plane's sum is the same whatever the split.
        let min = PARALLEL_VALUES.div_ceil(PLANES_AT_ONCE * len).max(1);
        os.par_chunks_mut(PLANES_AT_ONCE)
            .zip(xs.par_chunks(PLANES_AT_ONCE * len))
            .with_min_len(min)
            .for_each(group);
    } else {
        os.chunks_mut(PLANES_AT_ONCE)
            .zip(xs.chunks(PLANES_AT_ONCE * len))
            .for_each(group);
    }
    out
}

/// The sum of a plane's values, in `f32`: value `i` added to lane `i % SUM_LANES` (each lane
/// from `0.0`, in order), then the lanes added together in halves (lane `j` plus lane
/// `j + SUM_LANES / 2`, and so on down to one), for planes of more than [`SUM_LANES`] values:
/// the lanes' additions overlap, where a row-major sum waits on each addition in turn, and
/// the partial sums are no less accurate. Measured on the AMD EPYC (Zen 5),
/// EfficientNet-B0, 2 threads, against row-major sums 16 planes side by side (alternated
/// process by process, three rounds): its squeeze-excitation pools took 0.14-0.18 ms in all
/// against 0.51-0.65 with AVX-512, 0.14 against 0.51 with AVX2.
#[inline(always)]
fn plane_sum(plane: &[f32]) -> f32 {
    let mut lanes = [0.0f32; SUM_LANES];
    let mut chunks = plane.chunks_exact(SUM_LANES);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += v;
        }
    }
    for (l, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *l += v;
    }
    let mut half = SUM_LANES / 2;
    while half > 0 {
        let (lo, hi) = lanes.split_at_mut(half);
        for (l, &h) in lo.iter_mut().zip(hi.iter()) {
            *l += h;
        }
        half /= 2;
    }
    lanes[0]
}

/// Lanes of [`plane_sum`]: four AVX-512 vectors, eight AVX2 ones, each its own chain of
/// additions.
const SUM_LANES: usize = 64;

/// Fewest input values per job when [`global_avgpool`] runs on a pool: EfficientNet-B0's
/// squeeze-excitation pools (32 to 1,152 planes of 7x7 to 112x112) took 0.52 ms of its 5.9
/// on one thread.
const PARALLEL_VALUES: usize = 1 << 14;

/// Planes [`global_avgpool`] sums side by side.
const PLANES_AT_ONCE: usize = 16;

/// Adaptive average pooling, PyTorch's `adaptive_avg_pool2d`: output bin `i` of an axis of
/// length `len` averages input `floor(i * len / out) .. ceil((i + 1) * len / out)` (bins may
/// overlap, and repeat an input when `out > len`).
///
/// A single implementation, written as the reference loops: property tests check it against
/// [`avgpool2d_ref`] where the bins are a regular window and against [`global_avgpool`].
///
/// # Shapes
/// - `x`: `[N, C, H, W]` with `H, W >= 1`
/// - returns `[N, C, out[0], out[1]]`
pub fn adaptive_avgpool2d(x: ArrayView4<f32>, out: [usize; 2]) -> Array4<f32> {
    let (n, c, h, w) = x.dim();
    let bins = |len: usize, o: usize| -> Vec<(usize, usize)> {
        (0..o)
            .map(|i| (i * len / o, ((i + 1) * len).div_ceil(o)))
            .collect()
    };
    let (rows, cols) = (bins(h, out[0]), bins(w, out[1]));
    Array4::from_shape_fn((n, c, out[0], out[1]), |(b, ch, oh, ow)| {
        let ((h0, h1), (w0, w1)) = (rows[oh], cols[ow]);
        let mut sum = 0.0f32;
        for ih in h0..h1 {
            for iw in w0..w1 {
                sum += x[[b, ch, ih, iw]];
            }
        }
        sum / ((h1 - h0) * (w1 - w0)) as f32
    })
}

#[cfg(test)]
mod adaptive_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Where every bin is a regular `k x k` window, adaptive pooling is that average pool,
        /// and with one bin it is the global average.
        #[test]
        fn adaptive_pool_agrees_with_regular_and_global_pools(
            n in 1..3usize, c in 1..3usize, oh in 1..4usize, ow in 1..4usize,
            kh in 1..4usize, kw in 1..4usize, seed in any::<u32>(),
        ) {
            let (h, w) = (oh * kh, ow * kw);
            let x = Array4::from_shape_fn((n, c, h, w), |(a, b, i, j)| {
                ((a * 31 + b * 17 + i * 7 + j * 3 + seed as usize) % 23) as f32 - 11.0
            });
            let adaptive = adaptive_avgpool2d(x.view(), [oh, ow]);
            let p = Pool2dParams { kernel: [kh, kw], stride: [kh, kw], pad: [0, 0], ceil_mode: false, count_include_pad: true };
            let regular = avgpool2d_ref(x.view(), &p);
            prop_assert_eq!(adaptive.dim(), regular.dim());
            for (a, r) in adaptive.iter().zip(regular.iter()) {
                prop_assert!((a - r).abs() <= 1e-5 * (1.0 + r.abs()), "{a} vs {r}");
            }
            let one = adaptive_avgpool2d(x.view(), [1, 1]);
            for (a, g) in one.iter().zip(global_avgpool(x.view()).iter()) {
                prop_assert!((a - g).abs() <= 1e-5 * (1.0 + g.abs()), "{a} vs {g}");
            }
        }
    }
}
