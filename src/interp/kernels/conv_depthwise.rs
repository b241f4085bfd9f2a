//! The depthwise convolution: one filter per channel (`groups == C_in == C_out`, as in
//! MobileNet's and EfficientNet's inverted residuals), which the packed GEMM would run as one
//! channel per `MR`-channel panel with reductions of `K_h * K_w` (a few GFLOP/s).
//!
//! Each task computes a few whole output planes (about `TASK_VALUES` values). A plane's
//! input is first laid out in its thread's scratch with its zero padding, each row split into
//! its column phases for a column stride (phase `r` holds the padded columns `r, r + sw,
//! ...`), so that every tap of a run of output columns reads consecutive values; the padding
//! and the phases' slack are zeroed once per task and never written again, each plane only
//! writes its own values over the same places. Then each output row is computed in blocks of
//! [`DW_LANES`] columns by [`Isa::depthwise_rows`]: the block's sums stay in registers while
//! the taps are added in the reference's order (kernel rows outer, columns inner; a tap on the
//! padding adds a zero product), then bias, residual and ReLU, one store. Every value is summed
//! in the same order whatever the thread count. The result equals [`super::conv2d_ref`] up to
//! `f32` rounding (property tests). No `unsafe` here.
//!
//! Measured in MobileNetV2 and EfficientNet-B0 (AMD EPYC Zen 5, AVX-512, 2 threads, batch 1,
//! `benches/steps`, the two versions alternated): the depthwise convs took 0.96 and 1.34-1.38
//! ms in all, against 2.52-2.57 and 4.36-4.40 when each row added one tap at a time over the
//! whole row in memory (a loop the compiler vectorized only on rows of 16 values or more, so
//! that 7x7 and 14x14 planes ran value by value).

use ndarray::{Array4, ArrayView1, ArrayView4};
use rayon::prelude::*;

use super::conv::{Conv2dParams, out_hw};
use crate::machine::simd::{Act, DW_LANES, Isa};

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

/// Output values (about) per task: planes are grouped so that a task is not dominated by its
/// own start (MobileNetV2's 7x7 planes hold 49 values; its 960-channel depthwise convs on 7x7
/// maps took 0.082-0.083 ms with 83 planes to a task, 0.088 with one).
const TASK_VALUES: usize = 4096;

/// The padded, phase-split layout of one input plane (see [`plane_rows`]): the plane with its
/// zero padding, each padded row split into its column phases (phase `r` holds padded
/// columns `r, r + sw, ...`), each phase `wp + DW_LANES` values long (zeros after its columns,
/// which the last block of output columns may read).
#[derive(Clone, Debug)]
struct Padded {
    /// Padded rows.
    hp: usize,
    /// Phases kept per row (those that hold a column) and values per phase.
    phases: usize,
    wp: usize,
    /// Per phase, the values that hold image columns, `lo..hi`, and the image column of the
    /// first: the same in every row.
    cols: Vec<(usize, usize, usize)>,
}

impl Padded {
    fn new(h: usize, w: usize, p: &Conv2dParams) -> Padded {
        let (hp, wpad) = (h + 2 * p.pad[0], w + 2 * p.pad[1]);
        let (sw, pw) = (p.stride[1].max(1), p.pad[1]);
        let (phases, wp) = (sw.min(wpad), wpad.div_ceil(sw));
        let cols = (0..phases)
            .map(|f| {
                // Phase values `t` whose padded column `t * sw + f` lies in the image.
                let lo = pw.saturating_sub(f).div_ceil(sw).min(wp);
                let hi = (pw + w).saturating_sub(f).div_ceil(sw).clamp(lo, wp);
                (lo, hi, (lo * sw + f).saturating_sub(pw))
            })
            .collect();
        Padded {
            hp,
            phases,
            wp,
            cols,
        }
    }

    fn phase_len(&self) -> usize {
        self.wp + DW_LANES
    }

    fn row_len(&self) -> usize {
        self.phases * self.phase_len()
    }

    fn len(&self) -> usize {
        self.hp * self.row_len()
    }

    /// Writes plane `xp` (`h x w`) into `padded` (`self.len()` values) where the layout
    /// holds its values: rows `ph..ph + h`, in each of their phases the columns that lie in
    /// the image. The rest (padding, slack) is left as it is: zeros, written once for every
    /// plane of a conv.
    #[inline(always)]
    fn fill(
        &self,
        padded: &mut [f32],
        xp: &[f32],
        (h, w): (usize, usize),
        p: &Conv2dParams,
        isa: Isa,
    ) {
        if w == 0 {
            return;
        }
        let (ph, sw) = (p.pad[0], p.stride[1].max(1));
        let rows = padded.chunks_exact_mut(self.row_len()).skip(ph);
        // Stride 2 where one phase starts at the image column after the other's (the padding
        // of 3x3 and 5x5 convs): both phases of a row in one pass, each block of
        // the row loaded once. Measured on the AMD EPYC (Zen 5), AVX-512, 2 threads, against
        // a pass per phase alternated in one process (median of 30 runs, twice): MobileNetV2's
        // four stride-2 depthwise convs 0.246 against 0.341 ms, EfficientNet-B0's 0.307
        // against 0.414 (its first, 96 channels of 112x112, 0.120 against 0.182).
        // (the phase whose first column comes first, its columns, the other's, that column)
        let pairs = match self.cols[..] {
            [(lo0, hi0, f0), (lo1, hi1, f1)] if sw == 2 && f1 == f0 + 1 => {
                Some((0, (lo0, hi0), (lo1, hi1), f0))
            }
            [(lo0, hi0, f0), (lo1, hi1, f1)] if sw == 2 && f0 == f1 + 1 => {
                Some((1, (lo1, hi1), (lo0, hi0), f1))
            }
            _ => None,
        };
        if let Some((even_phase, (elo, ehi), (olo, ohi), first)) = pairs {
            let len = self.phase_len();
            for (prow, xrow) in rows.zip(xp.chunks_exact(w)).take(h) {
                let (p0, p1) = prow.split_at_mut(len);
                let (e, o) = if even_phase == 0 { (p0, p1) } else { (p1, p0) };
                isa.split_pairs(&mut e[elo..ehi], &mut o[olo..ohi], &xrow[first..]);
            }
            return;
        }
        for (prow, xrow) in rows.zip(xp.chunks_exact(w)).take(h) {
            for (phase, &(lo, hi, first)) in prow.chunks_exact_mut(self.phase_len()).zip(&self.cols)
            {
                if lo == hi {
                    continue;
                }
                let dst = &mut phase[lo..hi];
                if sw == 1 {
                    dst.copy_from_slice(&xrow[first..first + dst.len()]);
                } else if sw == 2 {
                    isa.even_values(dst, &xrow[first..]);
                } else {
                    let cols = xrow[first..].iter().step_by(sw);
                    dst.iter_mut().zip(cols).for_each(|(d, s)| *d = *s);
                }
            }
        }
    }

    /// Where tap `(i, j)` (in the weights' order, `i` outer) of the output at the start of a
    /// row reads, from that row's first padded row: padded row `i * dh` below, phase
    /// `(j * dw) % sw`, value `(j * dw) / sw`.
    fn offsets(&self, kh: usize, kw: usize, p: &Conv2dParams) -> Vec<usize> {
        let sw = p.stride[1].max(1);
        (0..kh)
            .flat_map(|i| (0..kw).map(move |j| (i, j)))
            .map(|(i, j)| {
                let col = j * p.dilation[1];
                i * p.dilation[0] * self.row_len() + (col % sw) * self.phase_len() + col / sw
            })
            .collect()
    }
}

/// Bytes one thread holds while it computes a depthwise conv on `h x w` input planes with
/// column stride `stride` and padding `pad` (the padded, phase-split copy of one plane), for
/// the memory estimate; saturating.
pub fn scratch_bytes(h: u64, w: u64, stride: u64, pad: [u64; 2]) -> u64 {
    let hp = h.saturating_add(pad[0].saturating_mul(2));
    let wpad = w.saturating_add(pad[1].saturating_mul(2));
    let sw = stride.max(1);
    let phase = wpad.div_ceil(sw).saturating_add(DW_LANES as u64);
    hp.saturating_mul(sw.min(wpad))
        .saturating_mul(phase)
        .saturating_mul(4)
}

/// `relu?(depthwise_conv(x, w) + bias + residual)`. Planes are computed on the current rayon
/// pool when called on one (as `run` does), several planes to a task.
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
    depthwise(x, dc, residual, relu.into(), isa, None)
}

/// [`conv2d_depthwise`] with the activation `act` (a ReLU, and ReLU6's cap), its output in
/// memory from `spare` where it has some: every value is written, so it is not zeroed first (a serial pass over the whole output before the tasks
/// start). Measured on the AMD EPYC (Zen 5), MobileNetV2 with AVX-512 on 2 threads, both
/// alternated in one process (median of 30 runs, twice, loaded): its depthwise convs took
/// 1.52-1.53 ms against 1.62-1.64 zeroed, the stride-2 one on 112x112 maps 0.29 against 0.33.
pub(super) fn depthwise(
    x: ArrayView4<f32>,
    dc: &DepthwiseConv,
    residual: Option<ArrayView4<f32>>,
    act: Act,
    isa: Isa,
    spare: Option<&mut super::Spare>,
) -> Array4<f32> {
    let (n, c, h, w) = x.dim();
    let p = &dc.p;
    assert_eq!(c, dc.bias.len(), "the shape checker guarantees C channels");
    let (ho, wo) = out_hw(h, w, dc.kh, dc.kw, p);
    let mut out = super::output(spare, (n, c, ho, wo));
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
    let layout = Padded::new(h, w, p);
    let offs = layout.offsets(dc.kh, dc.kw, p);
    let taps = dc.taps();
    let (plane_in, plane_out) = (h * w, ho * wo);
    // Each thread's padded, phase-split plane, kept from plane to plane: zeros where no
    // plane has values (the padding, the phases' slack), which each plane then leaves as
    // they are, and the plane's values (see `Padded::fill`).
    let plane = |padded: &mut Vec<f32>, i: usize, y: &mut [f32]| {
        let ch = i % c;
        let xp = &xs[i * plane_in..][..plane_in];
        let wt = &dc.w[ch * taps..][..taps];
        let b = dc.bias[ch];
        let res = rs.map(|r| &r[i * plane_out..][..plane_out]);
        isa.vectorized(
            #[inline(always)]
            || {
                plane_rows(
                    y,
                    xp,
                    (wt, &offs),
                    b,
                    res,
                    act,
                    (h, w),
                    wo,
                    dc,
                    &layout,
                    padded,
                    isa,
                )
            },
        );
    };
    let per_task = (TASK_VALUES / plane_out.max(1)).max(1);
    let task = |padded: &mut Vec<f32>, (t, ys): (usize, &mut [f32])| {
        for (k, y) in ys.chunks_mut(plane_out).enumerate() {
            plane(padded, t * per_task + k, y);
        }
    };
    let os = out.as_slice_mut().expect("a fresh array is contiguous");
    if super::on_worker_pool() {
        os.par_chunks_mut(plane_out * per_task)
            .enumerate()
            .for_each_init(|| vec![0.0; layout.len()], task);
    } else {
        let mut padded = vec![0.0; layout.len()];
        os.chunks_mut(plane_out * per_task)
            .enumerate()
            .for_each(|pair| task(&mut padded, pair));
    }
    out
}

/// One output plane `y` (`ho x wo`) of input plane `xp` (`h x w`), through `padded` (at
/// least `layout.len()` values, zeros where `layout` has no value of the plane). Each block of
/// [`DW_LANES`] output columns of a row sums its taps in the reference's order (kernel rows
/// outer, columns inner; a tap on the padding adds a zero product) in registers, then adds
/// the bias and the residual and applies the activation, and is stored once.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn plane_rows(
    y: &mut [f32],
    xp: &[f32],
    (wt, offs): (&[f32], &[usize]),
    bias: f32,
    res: Option<&[f32]>,
    act: Act,
    (h, w): (usize, usize),
    wo: usize,
    dc: &DepthwiseConv,
    layout: &Padded,
    padded: &mut [f32],
    isa: Isa,
) {
    let p = &dc.p;
    let (sh, row_len) = (p.stride[0], layout.row_len());
    layout.fill(&mut padded[..layout.len()], xp, (h, w), p, isa);
    isa.depthwise_rows(padded, sh * row_len, offs, wt, bias, res, act, y, wo);
}
