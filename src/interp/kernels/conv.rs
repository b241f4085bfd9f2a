//! 2-D convolution over NCHW `f32` tensors, and folding a batchnorm into a conv.
//!
//! [`conv2d_ref`] is the specification: plain loops in the natural order, accumulating in `f32`.
//! [`conv2d`] is the fast path used by the interpreter: im2col plus sgemm per batch item and
//! group (through `ndarray::linalg::general_mat_mul`, i.e. matrixmultiply), with bias and ReLU
//! fused into one pass over the output; [`conv2d_threads`] is the same work split over scoped
//! threads. [`fold_batchnorm`] folds an inference batchnorm into a conv's weights. This file
//! must not allocate inside its inner loops, nor check shapes for the user: the shape
//! checker has already done so, and the kernels only `expect` on what it guarantees. It must not
//! use `unsafe`, nor reference anything but `ndarray`, `std` and `crate::shape::formula`.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array4, ArrayView1, ArrayView2, ArrayView4, ArrayViewMut2, Axis, s};

use crate::shape::formula::conv_out;

/// Hyper-parameters of a 2-D convolution; index 0 is the H axis, index 1 the W axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    /// Step between windows.
    pub stride: [usize; 2],
    /// Zero padding on each side (the same before and after).
    pub pad: [usize; 2],
    /// Spacing between kernel taps.
    pub dilation: [usize; 2],
    /// Number of channel groups; divides both `c_in` and `c_out`.
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Self {
            stride: [1, 1],
            pad: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

const CHECKED: &str = "the shape checker guarantees a valid convolution";

/// Target size of one band of the im2col matrix: about half the L2 cache of this machine class.
const COLS_BAND_BYTES: usize = 512 * 1024;

/// Fewest GEMM columns per band: narrower GEMMs lose more to packing than the cache gains.
const MIN_BAND_COLS: usize = 256;

/// Fewest output pixels per worker for [`conv2d_threads`] to split a group by pixels.
const MIN_SPLIT_COLS: usize = 128;

/// Fewest output channels per worker for [`conv2d_threads`] to split a group by channels.
const MIN_SPLIT_ROWS: usize = 32;

/// Output spatial size `(h_out, w_out)` of a conv on an `h x w` input with a `kh x kw` kernel.
pub(super) fn out_hw(h: usize, w: usize, kh: usize, kw: usize, p: &Conv2dParams) -> (usize, usize) {
    let axis = |len: usize, k: usize, i: usize| {
        let o = conv_out(
            len as u64,
            k as u64,
            p.stride[i] as u64,
            p.pad[i] as u64,
            p.dilation[i] as u64,
        )
        .expect(CHECKED);
        usize::try_from(o).expect(CHECKED)
    };
    (axis(h, kh, 0), axis(w, kw, 1))
}

/// Checks the channel arithmetic the shape checker guarantees.
fn check_channels(c_in: usize, c_out: usize, cin_g: usize, bias_len: Option<usize>, groups: usize) {
    assert!(
        groups >= 1 && c_out.is_multiple_of(groups) && cin_g * groups == c_in,
        "{CHECKED}: c_in {c_in}, c_out {c_out}, weight c_in/groups {cin_g}, groups {groups}"
    );
    if let Some(len) = bias_len {
        assert_eq!(len, c_out, "{CHECKED}: bias length must equal c_out");
    }
}

/// Naive reference convolution: the specification [`conv2d`] is tested against.
///
/// Loops over `n, c_out, h_out, w_out, c_in/groups, k_h, k_w` and accumulates in `f32` in that
/// order from zero, then adds the bias. Padding is zero.
///
/// # Shapes
/// - `x`: `[N, C_in, H, W]`
/// - `w`: `[C_out, C_in / groups, K_h, K_w]` (PyTorch layout)
/// - `bias`: `[C_out]`
/// - returns `[N, C_out, H_out, W_out]` with `H_out`, `W_out` from
///   [`conv_out`].
///
/// # Preconditions
/// The shape checker guarantees `groups >= 1`, that `groups` divides `C_in` and `C_out`, that
/// `w` has `C_in / groups` input channels, that the bias has `C_out` entries and that `conv_out`
/// is `Some` on both axes; the function panics (with that message) otherwise.
pub fn conv2d_ref(
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    p: &Conv2dParams,
) -> Array4<f32> {
    let (n, c_in, h, wd) = x.dim();
    let (c_out, cin_g, kh, kw) = w.dim();
    check_channels(c_in, c_out, cin_g, bias.map(|b| b.len()), p.groups);
    let (ho, wo) = out_hw(h, wd, kh, kw, p);
    let cout_g = c_out / p.groups;
    let [sh, sw] = p.stride;
    let [ph, pw] = p.pad;
    let [dh, dw] = p.dilation;
    let mut out = Array4::<f32>::zeros((n, c_out, ho, wo));
    for b in 0..n {
        for co in 0..c_out {
            let g = co / cout_g;
            for oh in 0..ho {
                for ow in 0..wo {
                    let mut acc = 0.0f32;
                    for ci in 0..cin_g {
                        let cx = g * cin_g + ci;
                        for ki in 0..kh {
                            let ih = (oh * sh + ki * dh) as isize - ph as isize;
                            if ih < 0 || ih >= h as isize {
                                continue;
                            }
                            for kj in 0..kw {
                                let iw = (ow * sw + kj * dw) as isize - pw as isize;
                                if iw < 0 || iw >= wd as isize {
                                    continue;
                                }
                                acc += x[[b, cx, ih as usize, iw as usize]] * w[[co, ci, ki, kj]];
                            }
                        }
                    }
                    out[[b, co, oh, ow]] = acc + bias.map_or(0.0, |bv| bv[co]);
                }
            }
        }
    }
    out
}

/// Geometry of one convolution, shared by the im2col helpers.
struct Geometry {
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    ho: usize,
    wo: usize,
    stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
}

impl Geometry {
    /// For kernel column offset `off = kj * dilation_w`, the range `lo..hi` of output columns
    /// whose input column `ow * stride_w + off - pad_w` lies inside `0..w`.
    fn valid_cols(&self, off: usize) -> (usize, usize) {
        let (sw, pw) = (self.stride[1], self.pad[1]);
        let lo = pw.saturating_sub(off).div_ceil(sw).min(self.wo);
        let hi = if pw + self.w > off {
            (pw + self.w - off).div_ceil(sw).min(self.wo)
        } else {
            0
        };
        (lo, hi.max(lo))
    }
}

/// How many column phases [`split_phases`] makes: `stride_w`, but no more than `w` (a stride
/// past the row leaves one-entry phases only for the columns that exist).
fn n_phases(g: &Geometry) -> usize {
    g.stride[1].min(g.w).max(1)
}

/// Splits each input row of `x` (`[c, h, w]`) into its column phases, so that a strided tap
/// reads a contiguous run: `xp[ci][r][ih][j] = x[ci][ih][r + j * stride_w]` for `r` below
/// [`n_phases`], each phase row padded to `wp = ceil(w / stride_w)` entries (the tail of short
/// phases is never read). `xp` holds `c * n_phases * h * wp` values.
fn split_phases(x: &[f32], c: usize, g: &Geometry, xp: &mut [f32]) {
    let sw = g.stride[1];
    let wp = g.w.div_ceil(sw);
    let phase = g.h * wp;
    if phase == 0 {
        return;
    }
    for (ci, dst_c) in xp.chunks_exact_mut(n_phases(g) * phase).take(c).enumerate() {
        let src_c = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for (r, dst_r) in dst_c.chunks_exact_mut(phase).enumerate() {
            for (dst_row, src_row) in dst_r.chunks_exact_mut(wp).zip(src_c.chunks_exact(g.w)) {
                for (d, s) in dst_row.iter_mut().zip(src_row.iter().skip(r).step_by(sw)) {
                    *d = *s;
                }
            }
        }
    }
}

/// Fills `cols` (`[c * kh * kw, (oh1 - oh0) * wo]`, row-major) for the band of output rows
/// `oh0..oh1`, from `xp`: the input `[c, h, w]` split into column phases by [`split_phases`]
/// (for `stride_w == 1` that is the input itself).
///
/// Row `(ci * kh + ki) * kw + kj` holds, for each output pixel of the band, the input value
/// under tap `(ki, kj)` of channel `ci`, or zero where that tap falls in the padding. Every run
/// of real values is a contiguous copy.
fn im2col(xp: &[f32], c: usize, g: &Geometry, oh0: usize, oh1: usize, cols: &mut [f32]) {
    let [sh, sw] = g.stride;
    let [ph, pw] = g.pad;
    let [dh, dw] = g.dilation;
    let wp = g.w.div_ceil(sw);
    let phase = g.h * wp;
    let c_len = n_phases(g) * phase;
    let band = (oh1 - oh0) * g.wo;
    let mut rows = cols.chunks_exact_mut(band);
    for ci in 0..c {
        let src_c = &xp[ci * c_len..(ci + 1) * c_len];
        for ki in 0..g.kh {
            let row_off = ki * dh;
            for kj in 0..g.kw {
                let off = kj * dw;
                let (lo, hi) = g.valid_cols(off);
                let dst = rows.next().expect("cols holds c * kh * kw rows");
                if lo >= hi {
                    // No output column of this tap reads the input: all padding.
                    dst.fill(0.0);
                    continue;
                }
                // The first real input column of the run, its phase and its index in the phase.
                let iw_lo = (lo * sw + off).saturating_sub(pw);
                let src_p = &src_c[(iw_lo % sw) * phase..(iw_lo % sw + 1) * phase];
                let j0 = iw_lo / sw;
                for (oh, d) in (oh0..oh1).zip(dst.chunks_exact_mut(g.wo)) {
                    let ih = oh * sh + row_off;
                    if ih < ph || ih - ph >= g.h {
                        d.fill(0.0);
                        continue;
                    }
                    let src = &src_p[(ih - ph) * wp + j0..(ih - ph) * wp + j0 + (hi - lo)];
                    d[..lo].fill(0.0);
                    d[lo..hi].copy_from_slice(src);
                    d[hi..].fill(0.0);
                }
            }
        }
    }
}

/// Strided subsample of `x` (`[c, h, w]`) into `cols` (`[c, ho * wo]`) for 1x1 unpadded convs.
fn subsample(x: &[f32], c: usize, g: &Geometry, cols: &mut [f32]) {
    let plane = g.h * g.w;
    let [sh, sw] = g.stride;
    for (ci, dst) in cols.chunks_exact_mut(g.ho * g.wo).take(c).enumerate() {
        let src_plane = &x[ci * plane..(ci + 1) * plane];
        for (oh, d) in dst.chunks_exact_mut(g.wo).enumerate() {
            let src = &src_plane[oh * sh * g.w..];
            for (dv, sv) in d.iter_mut().zip(src.iter().step_by(sw)) {
                *dv = *sv;
            }
        }
    }
}

/// Adds the bias and applies ReLU in one pass over `out` (`[channels, pixels]`, any strides;
/// each row is one output channel).
fn epilogue(out: &mut ArrayViewMut2<f32>, bias: Option<&[f32]>, relu: bool) {
    match (bias, relu) {
        (None, false) => {}
        (None, true) => out.mapv_inplace(relu1),
        (Some(b), false) => {
            for (mut row, &bv) in out.rows_mut().into_iter().zip(b) {
                row.mapv_inplace(|v| v + bv);
            }
        }
        (Some(b), true) => {
            for (mut row, &bv) in out.rows_mut().into_iter().zip(b) {
                row.mapv_inplace(|v| relu1(v + bv));
            }
        }
    }
}

/// ReLU that propagates NaN, like PyTorch's (`f32::max` would turn NaN into 0).
#[inline]
fn relu1(v: f32) -> f32 {
    if v < 0.0 { 0.0 } else { v }
}

/// Where a worker's right-hand GEMM operand comes from.
#[derive(Clone, Copy)]
enum Rhs<'a> {
    /// A ready column matrix (the image itself, a subsample, or a full im2col).
    Ready(ArrayView2<'a, f32>),
    /// Build the im2col matrix of output rows `oh0..oh1` from this (phase-split) input, in
    /// cache-sized bands of `band_rows` output rows.
    Im2col {
        src: &'a [f32],
        oh0: usize,
        oh1: usize,
        band_rows: usize,
    },
}

/// One worker's share of a group: `dst = relu?(lhs · rhs + bias)` over a disjoint part of the
/// output.
struct Job<'a> {
    lhs: ArrayView2<'a, f32>,
    rhs: Rhs<'a>,
    dst: ArrayViewMut2<'a, f32>,
    bias: Option<&'a [f32]>,
}

/// Runs one [`Job`]; `cols` is the worker's im2col band buffer, allocated once per call, and
/// `c` the group's input channel count.
fn run_job(job: Job, relu: bool, geo: &Geometry, c: usize, cols: &mut [f32]) {
    let Job {
        lhs,
        rhs,
        mut dst,
        bias,
    } = job;
    match rhs {
        Rhs::Ready(r) => general_mat_mul(1.0, &lhs, &r, 0.0, &mut dst),
        Rhs::Im2col {
            src,
            oh0,
            oh1,
            band_rows,
        } => {
            let kdim = lhs.ncols();
            let mut b0 = oh0;
            while b0 < oh1 {
                let b1 = (b0 + band_rows).min(oh1);
                let band = &mut cols[..kdim * (b1 - b0) * geo.wo];
                im2col(src, c, geo, b0, b1, band);
                let r = ArrayView2::from_shape((kdim, (b1 - b0) * geo.wo), &band[..])
                    .expect("the band holds kdim * band columns");
                let mut d = dst.slice_mut(s![.., (b0 - oh0) * geo.wo..(b1 - oh0) * geo.wo]);
                general_mat_mul(1.0, &lhs, &r, 0.0, &mut d);
                b0 = b1;
            }
        }
    }
    epilogue(&mut dst, bias, relu);
}

/// Splits `0..len` into `parts` contiguous near-equal ranges.
fn ranges(len: usize, parts: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..parts).map(move |i| (len * i / parts, len * (i + 1) / parts))
}

/// Fast convolution, optionally followed by a fused ReLU; equal to [`conv2d_ref`] (then ReLU) up
/// to `f32` rounding.
///
/// Per batch item and group it lays the input out as an im2col matrix
/// `[C_in/groups * K_h * K_w, H_out * W_out]` and multiplies the weight matrix
/// `[C_out/groups, C_in/groups * K_h * K_w]` by it with sgemm, writing straight into the output.
/// The im2col matrix is built in bands of output rows sized to stay in L2, and for a strided
/// conv from a column-phase split of the input, so that every copy is contiguous. A 1x1 unpadded
/// stride-1 conv skips im2col (each image already is that matrix); a 1x1 unpadded strided conv
/// only subsamples. The output and the im2col buffers are allocated once per call. The GEMM is
/// ndarray's (matrixmultiply, single-threaded: the crate does not enable its threading
/// feature, so `MATMUL_NUM_THREADS` has no effect); this is [`conv2d_threads`] with one worker.
///
/// # Shapes
/// - `x`: `[N, C_in, H, W]`
/// - `w`: `[C_out, C_in / groups, K_h, K_w]` (PyTorch layout)
/// - `bias`: `[C_out]`
/// - returns `[N, C_out, H_out, W_out]` with `H_out`, `W_out` from
///   [`conv_out`].
///
/// # Preconditions
/// As for [`conv2d_ref`]: the shape checker guarantees the shapes fit; it panics otherwise.
pub fn conv2d(
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    p: &Conv2dParams,
    relu: bool,
) -> Array4<f32> {
    conv2d_threads(x, w, bias, p, relu, 1)
}

/// [`conv2d`] with the work of each batch item and group split over `threads` scoped worker
/// threads (by bands of output pixels, or by output channels when there are few pixels), each
/// running its own im2col and GEMM. `threads <= 1` runs on the calling thread.
///
/// These workers are the only parallelism (matrixmultiply is built without its threading, so
/// the machine is never oversubscribed). On two cores this scales better than matrixmultiply's
/// own threading would, which splits little of a 64-row GEMM and packs and builds im2col on one
/// thread.
///
/// # Shapes
/// As for [`conv2d`].
///
/// # Preconditions
/// As for [`conv2d_ref`].
pub fn conv2d_threads(
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    p: &Conv2dParams,
    relu: bool,
    threads: usize,
) -> Array4<f32> {
    conv2d_split(x, w, bias, p, relu, threads, SplitLimits::DEFAULT)
}

/// When [`conv2d_threads`] splits a group over workers (tests lower these to reach every path).
#[derive(Debug, Clone, Copy)]
pub(super) struct SplitLimits {
    /// Fewest output pixels per worker to split by pixels.
    pub min_cols: usize,
    /// Fewest output channels per worker to split by channels.
    pub min_rows: usize,
}

impl SplitLimits {
    const DEFAULT: Self = Self {
        min_cols: MIN_SPLIT_COLS,
        min_rows: MIN_SPLIT_ROWS,
    };
}

/// [`conv2d_threads`] with explicit split limits.
pub(super) fn conv2d_split(
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    p: &Conv2dParams,
    relu: bool,
    threads: usize,
    limits: SplitLimits,
) -> Array4<f32> {
    let (n, c_in, h, wd) = x.dim();
    let (c_out, cin_g, kh, kw) = w.dim();
    check_channels(c_in, c_out, cin_g, bias.map(|b| b.len()), p.groups);
    let (ho, wo) = out_hw(h, wd, kh, kw, p);
    let groups = p.groups;
    let cout_g = c_out / groups;
    let geo = Geometry {
        h,
        w: wd,
        kh,
        kw,
        ho,
        wo,
        stride: p.stride,
        pad: p.pad,
        dilation: p.dilation,
    };

    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout is contiguous");
    let w = w.as_standard_layout();
    let kdim = cin_g * kh * kw;
    let w_mat = ArrayView2::from_shape(
        (c_out, kdim),
        w.as_slice().expect("standard layout is contiguous"),
    )
    .expect("weight has c_out * kdim elements");
    let bias = bias.map(|b| b.to_vec());

    let plane_in = h * wd;
    let plane_out = ho * wo;
    let pointwise = kh == 1 && kw == 1 && p.pad == [0, 0];
    let direct = pointwise && p.stride == [1, 1];
    let general = !pointwise;

    // How the work of one group is shared: by output rows (each worker builds its own im2col
    // bands) when there are enough pixels, else by output channels over one shared matrix.
    let threads = threads.max(1);
    let by_rows =
        threads > 1 && plane_out >= threads.saturating_mul(limits.min_cols) && ho >= threads;
    let by_channels = threads > 1 && !by_rows && cout_g >= threads.saturating_mul(limits.min_rows);
    let workers = if by_rows || by_channels { threads } else { 1 };
    let rows_per_worker = ho.div_ceil(workers);
    // A shared full column matrix is needed for a subsample, or for an im2col split by channel.
    let shared_cols = !direct && (pointwise || by_channels);

    // The im2col matrix is built and consumed a band of output rows at a time, so that it stays
    // in the L2 cache between being written and being packed by the GEMM.
    let band_rows = {
        let fit = COLS_BAND_BYTES / (kdim * wo * std::mem::size_of::<f32>()).max(1);
        fit.max(MIN_BAND_COLS.div_ceil(wo))
            .clamp(1, rows_per_worker)
    };
    let mut out = super::zeros((n, c_out, ho, wo));
    let mut full = if shared_cols {
        vec![0.0f32; kdim * plane_out]
    } else {
        Vec::new()
    };
    let mut bands: Vec<Vec<f32>> = if general && !by_channels {
        (0..workers)
            .map(|_| vec![0.0f32; kdim * band_rows * wo])
            .collect()
    } else {
        vec![Vec::new(); workers]
    };
    let split = general && p.stride[1] > 1;
    let mut phases = if split {
        vec![0.0f32; cin_g * n_phases(&geo) * h * wd.div_ceil(p.stride[1])]
    } else {
        Vec::new()
    };
    let out_s = out
        .as_slice_mut()
        .expect("a fresh array is in standard layout");
    let in_group = cin_g * plane_in;
    let out_group = cout_g * plane_out;

    // Index arithmetic rather than `chunks_exact`, which panics on the zero-sized chunks of an
    // input with an empty axis (legal when padding makes the output non-empty).
    for b in 0..n {
        for gi in 0..groups {
            let xg0 = (b * groups + gi) * in_group;
            let og0 = (b * groups + gi) * out_group;
            let x_g = &xs[xg0..xg0 + in_group];
            let lhs = w_mat.slice(s![gi * cout_g..(gi + 1) * cout_g, ..]);
            let b_g = bias
                .as_deref()
                .map(|bv| &bv[gi * cout_g..(gi + 1) * cout_g]);
            let dst =
                ArrayViewMut2::from_shape((cout_g, plane_out), &mut out_s[og0..og0 + out_group])
                    .expect("output group has cout_g * plane elements");
            let src = if split {
                split_phases(x_g, cin_g, &geo, &mut phases);
                &phases[..]
            } else {
                x_g
            };
            let rhs_full = if direct {
                Some(
                    ArrayView2::from_shape((cin_g, plane_in), x_g)
                        .expect("the image is a [c_in, h * w] matrix"),
                )
            } else if shared_cols {
                if pointwise {
                    subsample(x_g, cin_g, &geo, &mut full);
                } else {
                    im2col(src, cin_g, &geo, 0, ho, &mut full);
                }
                Some(
                    ArrayView2::from_shape((kdim, plane_out), &full[..])
                        .expect("the column matrix has kdim * plane elements"),
                )
            } else {
                None
            };

            // Carve the group into per-worker jobs over disjoint parts of the output.
            let mut jobs = Vec::with_capacity(workers);
            if by_channels {
                let mut rest = dst;
                let rhs = rhs_full.expect("a split by channel has a shared matrix");
                for (r0, r1) in ranges(cout_g, workers) {
                    let (part, tail) = rest.split_at(Axis(0), r1 - r0);
                    rest = tail;
                    let bias_part = b_g.map(|bv| &bv[r0..r1]);
                    jobs.push(Job {
                        lhs: lhs.slice(s![r0..r1, ..]),
                        rhs: Rhs::Ready(rhs),
                        dst: part,
                        bias: bias_part,
                    });
                }
            } else {
                let mut rest = dst;
                for (r0, r1) in ranges(ho, workers) {
                    let (part, tail) = rest.split_at(Axis(1), (r1 - r0) * wo);
                    rest = tail;
                    let rhs = match rhs_full {
                        Some(r) => Rhs::Ready(r.slice_move(s![.., r0 * wo..r1 * wo])),
                        None => Rhs::Im2col {
                            src,
                            oh0: r0,
                            oh1: r1,
                            band_rows,
                        },
                    };
                    jobs.push(Job {
                        lhs,
                        rhs,
                        dst: part,
                        bias: b_g,
                    });
                }
            }

            let geo = &geo;
            let mut work = jobs.into_iter().zip(bands.iter_mut());
            // The calling thread runs the first job; scoped threads run the others.
            let first = work.next();
            std::thread::scope(|scope| {
                for (job, buf) in work {
                    scope.spawn(move || run_job(job, relu, geo, cin_g, buf));
                }
                if let Some((job, buf)) = first {
                    run_job(job, relu, geo, cin_g, buf);
                }
            });
        }
    }
    out
}

/// Folds an inference-mode batchnorm that follows a conv into the conv's weights and bias.
///
/// With batchnorm's `(scale, shift)` from [`super::batchnorm_scale_shift`]: `w' = w * scale`
/// and `b' = b * scale + shift` (a missing `b` is zero), so that
/// `conv(x, w', b') == batchnorm(conv(x, w, b))`.
///
/// # Shapes
/// - `w`: `[C_out, C_in / groups, K_h, K_w]`; `bias`, `gamma`, `beta`, `mean`, `var`: `[C_out]`
/// - returns `([C_out, C_in / groups, K_h, K_w], [C_out])`
///
/// # Preconditions
/// All the vectors have `C_out` entries (the shape checker guarantees it; panics otherwise).
pub fn fold_batchnorm(
    w: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    gamma: ArrayView1<f32>,
    beta: ArrayView1<f32>,
    mean: ArrayView1<f32>,
    var: ArrayView1<f32>,
    eps: f32,
) -> (Array4<f32>, Array1<f32>) {
    let c_out = w.len_of(Axis(0));
    for (name, len) in [
        ("gamma", gamma.len()),
        ("beta", beta.len()),
        ("mean", mean.len()),
        ("var", var.len()),
        ("bias", bias.map_or(c_out, |b| b.len())),
    ] {
        assert_eq!(
            len, c_out,
            "the shape checker guarantees {name} has c_out entries"
        );
    }
    // The one statement of batchnorm's affine form, shared with the unfolded kernel.
    let (scale, shift) = super::batchnorm_scale_shift(gamma, beta, mean, var, eps);
    let mut w2 = w.to_owned();
    for (mut plane, &sc) in w2.outer_iter_mut().zip(&scale) {
        plane.mapv_inplace(|v| v * sc);
    }
    let b2 = Array1::from_shape_fn(c_out, |c| {
        let b = bias.map_or(0.0, |bv| bv[c]);
        b * scale[c] + shift[c]
    });
    (w2, b2)
}

/// A conv's bias as one value per output channel, zeros when it has none.
///
/// # Preconditions
/// A bias has `c_out` values (the shape checker guarantees it; panics otherwise).
pub(super) fn bias_or_zeros(bias: Option<ndarray::ArrayView1<f32>>, c_out: usize) -> Vec<f32> {
    match bias {
        Some(b) => {
            assert_eq!(
                b.len(),
                c_out,
                "the shape checker guarantees one bias per channel"
            );
            b.to_vec()
        }
        None => vec![0.0; c_out],
    }
}
