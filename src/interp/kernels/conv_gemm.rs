//! The fast convolution: weights packed once into the micro-kernel's layout, the input's
//! im2col matrix built straight into packed panels, a SIMD tile kernel, and bias, residual add
//! and ReLU fused into the pass that writes the output.
//!
//! [`PackedConv::new`] lays a conv's weights out at load time as `MR`-channel panels, k-major
//! (`[groups][c_out/groups / MR][K][MR]`, `K = c_in/groups * K_h * K_w`, rows past `c_out`
//! zero), which is the order the tile kernel ([`crate::machine::simd`]) reads them in.
//! [`conv2d_packed`] splits the output of each image and group into tasks (chunks of pixels,
//! and blocks of output channels when there are few pixels) run on the current rayon pool;
//! every task owns a disjoint part of the output and computes each of its values whole, in the
//! same order whatever the split, so the result does not depend on the thread count. Within a
//! task the reduction dimension is cut into blocks of at most [`KC`] so that one input panel
//! stays in L1 and the weights of one block in L2; each block's input panels are built by
//! im2col from the image directly (a 1x1 stride-1 conv only copies). When the output channels
//! are split (few pixels: the last stages' 14x14 and 7x7 maps), the channel blocks of one
//! pixel chunk share its input panels, packed once up front in parallel, instead of each block
//! packing them again. A column-strided conv first splits the input's columns into phases
//! (even and odd columns for stride 2), so that every tap copies consecutive values. The
//! result equals [`super::conv2d_ref`] up to `f32` rounding (property tests check it). No
//! `unsafe` here.

use ndarray::{Array4, ArrayView1, ArrayView4, ArrayViewMut2, Axis};
use rayon::prelude::*;
use std::cell::RefCell;

use super::conv::{Conv2dParams, out_hw};
use crate::machine::simd::{Isa, MR};

/// Largest reduction block. The whole reduction of a 3x3 conv on 128 channels is one block, so
/// most outputs are written once; one `KC x 32` input panel (144 KiB) stays in L2 while every
/// weight panel streams past it.
pub const KC: usize = 1152;

/// Pixels per task (rounded to whole panels): `KC` rows of them fill 576 KiB, within L2.
pub const NC: usize = 128;

/// Tasks per thread wanted for load balance, when there are several threads.
const TASKS_PER_THREAD: usize = 4;

/// A convolution's weights in the tile kernel's layout, with its bias and hyper-parameters.
#[derive(Debug, Clone)]
pub struct PackedConv {
    /// `[groups][panels][k][MR]`.
    a: Vec<f32>,
    /// One per output channel (zeros when the conv has none).
    bias: Vec<f32>,
    c_out: usize,
    cin_g: usize,
    kh: usize,
    kw: usize,
    p: Conv2dParams,
}

impl PackedConv {
    /// Pack `w` (`[C_out, C_in/groups, K_h, K_w]`, PyTorch layout) and its bias.
    ///
    /// # Preconditions
    /// `groups` divides `C_out`, and the bias has `C_out` values (the shape checker guarantees
    /// both; panics otherwise).
    pub fn new(w: ArrayView4<f32>, bias: Option<ArrayView1<f32>>, p: Conv2dParams) -> PackedConv {
        let (c_out, cin_g, kh, kw) = w.dim();
        assert!(
            p.groups >= 1 && c_out.is_multiple_of(p.groups),
            "the shape checker guarantees groups divides c_out"
        );
        let k = cin_g * kh * kw;
        let cout_g = c_out / p.groups;
        let panels = cout_g.div_ceil(MR);
        let w = w.as_standard_layout();
        let ws = w.as_slice().expect("standard layout is contiguous");
        let mut a = vec![0.0f32; p.groups * panels * k * MR];
        for g in 0..p.groups {
            for pi in 0..panels {
                let dst = &mut a[(g * panels + pi) * k * MR..][..k * MR];
                for i in 0..MR.min(cout_g - pi * MR) {
                    let row = &ws[(g * cout_g + pi * MR + i) * k..][..k];
                    for (kk, &v) in row.iter().enumerate() {
                        dst[kk * MR + i] = v;
                    }
                }
            }
        }
        let bias = super::conv::bias_or_zeros(bias, c_out);
        PackedConv {
            a,
            bias,
            c_out,
            cin_g,
            kh,
            kw,
            p,
        }
    }

    /// Output channels.
    pub fn c_out(&self) -> usize {
        self.c_out
    }

    /// Multiply-adds per output value: `C_in/groups * K_h * K_w`.
    pub fn taps(&self) -> usize {
        self.cin_g * self.kh * self.kw
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        (self.a.len() + self.bias.len()) * std::mem::size_of::<f32>()
    }
}

/// Bytes of scratch one thread may hold for [`conv2d_packed`]: its packed input block, and a
/// task's accumulator tile and im2col row.
pub fn scratch_bytes() -> usize {
    let nr = 32;
    (KC * NC.next_multiple_of(nr) + MR * nr + NC.next_multiple_of(nr)) * std::mem::size_of::<f32>()
}

thread_local! {
    /// Each thread's packed input block, kept between calls: allocating it per task would
    /// fault in fresh pages every time.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Input geometry of one conv. With a column stride `sw > 1` the input is read from its
/// phase-split copy (see [`split_columns`]): each channel plane as `min(sw, w)` planes of `h x wp`,
/// phase `f` holding columns `f, f + sw, ...`, so that every tap reads consecutive values.
#[derive(Clone, Copy)]
struct Geo {
    h: usize,
    w: usize,
    /// Columns of each phase plane: `ceil(w / sw)` (`w` when `sw` is 1).
    wp: usize,
    /// Phase planes per channel: `min(sw, w)` (phases past the last column hold nothing).
    phases: usize,
    kh: usize,
    kw: usize,
    wo: usize,
    stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
}

/// One task: output rows `rows` (channels within the group, from panel `panel0`) by output
/// pixels `q0..q0 + dst.ncols()` of image `b`, group `g`.
struct Task<'a> {
    b: usize,
    g: usize,
    panel0: usize,
    q0: usize,
    /// Its pixel chunk's index among all images, groups and chunks (see [`Split::unit_len`]).
    unit: usize,
    dst: ArrayViewMut2<'a, f32>,
}

/// How one conv's work is cut: pixel chunks of `nc` (a whole number of panels) per image and
/// group, output channels in `blocks` blocks. When the channels are split (few pixels), every
/// block of one chunk would pack the same input panels, so they are packed once per chunk, up
/// front, into a shared buffer of `units * unit_len` values.
#[derive(Clone, Copy, Debug)]
struct Split {
    nc: usize,
    chunks: usize,
    blocks: usize,
}

impl Split {
    fn new(
        n: usize,
        groups: usize,
        plane: usize,
        panels: usize,
        nr: usize,
        threads: usize,
    ) -> Split {
        // `min` first: `plane` may be any size (the memory estimate asks about absurd ones).
        let nc = plane.min(NC).next_multiple_of(nr);
        let chunks = plane.div_ceil(nc);
        let per_image = chunks.saturating_mul(n).saturating_mul(groups);
        let blocks = if threads > 1 {
            (threads * TASKS_PER_THREAD)
                .div_ceil(per_image)
                .clamp(1, panels)
        } else {
            1
        };
        Split { nc, chunks, blocks }
    }

    /// Whether the input is packed once per chunk, shared by the channel blocks.
    fn shared(&self) -> bool {
        self.blocks > 1
    }

    /// Values of one chunk's packed input: every reduction row for `nc` pixels.
    fn unit_len(&self, k: usize) -> usize {
        k * self.nc
    }
}

/// Values [`conv2d_packed`] allocates for one call beyond its output and its threads' scratch:
/// the phase-split copy of a column-strided input, and the packed input that the channel
/// blocks share when they are split. For the memory estimate (an upper bound whatever the
/// instruction set); saturating.
pub fn extra_len(conv: &ConvDims, n: u64, threads: usize) -> u64 {
    let sat = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    let [h, w] = conv.input;
    let sw = conv.stride_w.max(1);
    let phases = if sw > 1 {
        n.saturating_mul(conv.c_in)
            .saturating_mul(h)
            .saturating_mul(w.div_ceil(sw).saturating_mul(sw.min(w)))
    } else {
        0
    };
    let groups = conv.groups.max(1);
    let panels = sat((conv.c_out / groups).div_ceil(MR as u64));
    let plane = sat(conv.output[0].saturating_mul(conv.output[1]));
    let split = Split::new(sat(n), sat(groups), plane, panels, 32, threads);
    let shared = if split.shared() {
        let k = (conv.c_in / groups).saturating_mul(conv.kernel[0].saturating_mul(conv.kernel[1]));
        n.saturating_mul(groups)
            .saturating_mul(split.chunks as u64)
            .saturating_mul(k)
            .saturating_mul(split.nc as u64)
    } else {
        0
    };
    phases.saturating_add(shared)
}

/// The sizes of one conv that decide [`extra_len`].
#[derive(Clone, Copy, Debug)]
pub struct ConvDims {
    pub c_in: u64,
    pub c_out: u64,
    pub groups: u64,
    pub kernel: [u64; 2],
    /// Input height and width.
    pub input: [u64; 2],
    /// Output height and width.
    pub output: [u64; 2],
    pub stride_w: u64,
}

/// `relu?(conv(x, w) + bias + residual)` with the packed weights. The tasks run on `pool`, or
/// on the calling thread without one.
///
/// # Shapes
/// - `x`: `[N, C_in, H, W]`; `residual`: the output's shape `[N, C_out, H_out, W_out]`
/// - returns `[N, C_out, H_out, W_out]`, sizes from `shape::formula::conv_out`.
///
/// # Preconditions
/// The shape checker guarantees that the shapes fit; panics otherwise.
pub fn conv2d_packed(
    x: ArrayView4<f32>,
    pc: &PackedConv,
    residual: Option<ArrayView4<f32>>,
    relu: bool,
    isa: Isa,
    pool: Option<&rayon::ThreadPool>,
) -> Array4<f32> {
    let threads = pool.map_or(1, |p| p.current_num_threads());
    let (n, c_in, h, wd) = x.dim();
    let p = &pc.p;
    assert_eq!(
        c_in,
        pc.cin_g * p.groups,
        "the shape checker guarantees the input has c_in channels"
    );
    let (ho, wo) = out_hw(h, wd, pc.kh, pc.kw, p);
    let plane = ho * wo;
    if let Some(r) = &residual {
        assert_eq!(
            r.dim(),
            (n, pc.c_out, ho, wo),
            "the shape checker guarantees the residual has the output's shape"
        );
    }
    let geo = Geo {
        h,
        w: wd,
        wp: wd.div_ceil(p.stride[1]),
        phases: p.stride[1].min(wd),
        kh: pc.kh,
        kw: pc.kw,
        wo,
        stride: p.stride,
        pad: p.pad,
        dilation: p.dilation,
    };
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout is contiguous");
    let phased =
        (p.stride[1] > 1 && !x.is_empty()).then(|| split_columns(xs, h, wd, p.stride[1], pool));
    let xs = phased.as_deref().unwrap_or(xs);
    let residual = residual.as_ref().map(|r| r.as_standard_layout());
    let rs = residual
        .as_ref()
        .map(|r| r.as_slice().expect("standard layout is contiguous"));
    let mut out = Array4::<f32>::zeros((n, pc.c_out, ho, wo));
    if out.is_empty() {
        return out;
    }
    let nr = isa.nr();
    let cout_g = pc.c_out / p.groups;
    let panels = cout_g.div_ceil(MR);
    let split = Split::new(n, p.groups, plane, panels, nr, threads);
    let Split { nc, chunks, blocks } = split;
    let panels_per_block = panels.div_ceil(blocks);

    // Carve the output into the tasks' disjoint views.
    let mut tasks = Vec::new();
    let mut rest = out
        .view_mut()
        .into_shape_with_order((n * pc.c_out, plane))
        .expect("a fresh array is contiguous");
    for b in 0..n {
        for g in 0..p.groups {
            let mut panel0 = 0;
            while panel0 < panels {
                let rows = ((panel0 + panels_per_block) * MR).min(cout_g) - panel0 * MR;
                let (mut block, tail) = rest.split_at(Axis(0), rows);
                rest = tail;
                let mut q0 = 0;
                while q0 < plane {
                    let cols = nc.min(plane - q0);
                    let (part, more) = block.split_at(Axis(1), cols);
                    block = more;
                    tasks.push(Task {
                        b,
                        g,
                        panel0,
                        q0,
                        unit: (b * p.groups + g) * chunks + q0 / nc,
                        dst: part,
                    });
                    q0 += cols;
                }
                panel0 += panels_per_block;
            }
        }
    }
    let k = pc.cin_g * pc.kh * pc.kw;
    let in_group = pc.cin_g * h * geo.phases * geo.wp;
    let x_group = |b: usize, g: usize| &xs[(b * p.groups + g) * in_group..][..in_group];
    let blocks_k = k.div_ceil(KC);
    let kc_even = k.div_ceil(blocks_k);

    // The input panels shared by the channel blocks: each chunk's reduction blocks packed in
    // parallel, one piece per (chunk, reduction block).
    let shared = split.shared().then(|| {
        let unit_len = split.unit_len(k);
        let mut buf = vec![0.0f32; n * p.groups * chunks * unit_len];
        let mut pieces = Vec::new();
        let mut rest = &mut buf[..];
        for unit in 0..n * p.groups * chunks {
            let (b, g, chunk) = (
                unit / (p.groups * chunks),
                unit / chunks % p.groups,
                unit % chunks,
            );
            let q0 = chunk * nc;
            let cols = nc.min(plane - q0);
            let n_panels = cols.div_ceil(nr);
            let (mut unit_buf, tail) = rest.split_at_mut(unit_len);
            rest = tail;
            let mut pc0 = 0;
            while pc0 < k {
                let kc = kc_even.min(k - pc0);
                let (piece, more) = unit_buf.split_at_mut(kc * n_panels * nr);
                unit_buf = more;
                pieces.push((b, g, q0, cols, pc0, kc, piece));
                pc0 += kc;
            }
        }
        let pack = |(b, g, q0, cols, pc0, kc, piece): (
            usize,
            usize,
            usize,
            usize,
            usize,
            usize,
            &mut [f32],
        )| {
            let mut row = vec![0.0f32; cols];
            isa.vectorized(|| {
                pack_input(x_group(b, g), &geo, pc0, kc, q0, cols, nr, piece, &mut row)
            });
        };
        match pool {
            Some(pool) if pieces.len() > 1 => {
                pool.install(|| pieces.into_par_iter().for_each(pack))
            }
            _ => pieces.into_iter().for_each(pack),
        }
        buf
    });
    let shared = shared.as_deref();

    let run = |t: Task| {
        SCRATCH.with_borrow_mut(|scratch| {
            let need = if shared.is_some() { 0 } else { KC.min(k) * nc };
            if scratch.len() < need {
                scratch.resize(need, 0.0);
            }
            let x_g = x_group(t.b, t.g);
            let r_g = rs.map(|r| &r[(t.b * pc.c_out + t.g * cout_g + t.panel0 * MR) * plane..]);
            let bias = &pc.bias[t.g * cout_g + t.panel0 * MR..];
            let a_g = &pc.a[t.g * panels * k * MR..][..panels * k * MR];
            let input = match shared {
                Some(buf) => Input::Packed(&buf[t.unit * split.unit_len(k)..][..split.unit_len(k)]),
                None => Input::Pack { x_g, scratch },
            };
            isa.vectorized(|| run_task(t, input, r_g, bias, a_g, k, plane, &geo, relu, isa, nc));
        })
    };
    match pool {
        Some(pool) if tasks.len() > 1 => pool.install(|| tasks.into_par_iter().for_each(run)),
        _ => tasks.into_iter().for_each(run),
    }
    out
}

/// Where a task's input panels come from.
enum Input<'a> {
    /// Packed by the task itself, block by block, from its image and group's input.
    Pack {
        x_g: &'a [f32],
        scratch: &'a mut [f32],
    },
    /// Packed already: every reduction block of its chunk, one after the other.
    Packed(&'a [f32]),
}

/// `x` (`[N * C, H, W]` planes) with each plane's columns split into `min(sw, w)` phase planes of
/// `h x ceil(w / sw)` (phase `f` holds columns `f, f + sw, ...`; the tail past `w` is zero and
/// never read), so that a column-strided conv reads consecutive values.
fn split_columns(
    x: &[f32],
    h: usize,
    w: usize,
    sw: usize,
    pool: Option<&rayon::ThreadPool>,
) -> Vec<f32> {
    let (wp, phases) = (w.div_ceil(sw), sw.min(w));
    let mut out = vec![0.0f32; x.len() / (h * w) * phases * h * wp];
    let split = |(dst, src): (&mut [f32], &[f32])| {
        for (r, row) in src.chunks_exact(w).enumerate() {
            for f in 0..phases {
                let d = &mut dst[(f * h + r) * wp..][..wp];
                for (d, s) in d.iter_mut().zip(row[f..].iter().step_by(sw)) {
                    *d = *s;
                }
            }
        }
    };
    match pool {
        Some(pool) => pool.install(|| {
            out.par_chunks_mut(phases * h * wp)
                .zip(x.par_chunks_exact(h * w))
                .for_each(split)
        }),
        None => out
            .chunks_mut(phases * h * wp)
            .zip(x.chunks_exact(h * w))
            .for_each(split),
    }
    out
}

/// Runs one task: for each reduction block, pack its input panels, then multiply every weight
/// panel of the task by them, adding into the output; the last block adds bias and residual
/// and applies ReLU as it writes.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run_task(
    t: Task,
    mut input: Input,
    r_g: Option<&[f32]>,
    bias: &[f32],
    a_g: &[f32],
    k: usize,
    plane: usize,
    geo: &Geo,
    relu: bool,
    isa: Isa,
    nc: usize,
) {
    let Task {
        panel0,
        q0,
        mut dst,
        ..
    } = t;
    let nr = isa.nr();
    let (rows, cols) = dst.dim();
    let mut out_rows: Vec<&mut [f32]> = dst
        .rows_mut()
        .into_iter()
        .map(|r| r.into_slice().expect("output rows are contiguous"))
        .collect();
    let n_panels = cols.div_ceil(nr);
    let blocks = k.div_ceil(KC);
    let kc_even = k.div_ceil(blocks);
    let mut acc = vec![0.0f32; MR * nr];
    let mut row_buf = vec![0.0f32; nc];
    let mut pc = 0;
    while pc < k {
        let kc = kc_even.min(k - pc);
        let first = pc == 0;
        let last = pc + kc == k;
        let packed: &[f32] = match &mut input {
            Input::Pack { x_g, scratch } => {
                let packed = &mut scratch[..kc * n_panels * nr];
                pack_input(x_g, geo, pc, kc, q0, cols, nr, packed, &mut row_buf);
                packed
            }
            Input::Packed(all) => &all[pc * n_panels * nr..][..kc * n_panels * nr],
        };
        for jp in 0..n_panels {
            let b_panel = &packed[jp * kc * nr..][..kc * nr];
            let c0 = jp * nr;
            let width = nr.min(cols - c0);
            for ip in 0..rows.div_ceil(MR) {
                let a_panel = &a_g[(panel0 + ip) * k * MR + pc * MR..][..kc * MR];
                isa.tile(kc, a_panel, b_panel, &mut acc);
                let tile_rows = out_rows[ip * MR..].iter_mut().take(MR);
                for (i, out_row) in tile_rows.enumerate() {
                    let r = ip * MR + i;
                    let d = &mut out_row[c0..c0 + width];
                    let src = &acc[i * nr..i * nr + width];
                    match (first, last) {
                        (true, false) => d.copy_from_slice(src),
                        (false, false) => d.iter_mut().zip(src).for_each(|(d, s)| *d += s),
                        (_, true) => {
                            let bv = bias[r];
                            let res = r_g.map(|rg| &rg[r * plane + q0 + c0..][..width]);
                            epilogue(d, src, bv, first, res, relu);
                        }
                    }
                }
            }
        }
        pc += kc;
    }
}

/// The last block's write: `d = relu?(src + bias (+ d unless first) (+ residual))`.
#[inline(always)]
fn epilogue(d: &mut [f32], src: &[f32], bias: f32, first: bool, res: Option<&[f32]>, relu: bool) {
    let act = |v: f32| if relu && v < 0.0 { 0.0 } else { v };
    match (first, res) {
        (true, None) => d.iter_mut().zip(src).for_each(|(d, s)| *d = act(s + bias)),
        (false, None) => d
            .iter_mut()
            .zip(src)
            .for_each(|(d, s)| *d = act(*d + s + bias)),
        (true, Some(res)) => d
            .iter_mut()
            .zip(src)
            .zip(res)
            .for_each(|((d, s), r)| *d = act(s + bias + r)),
        (false, Some(res)) => d
            .iter_mut()
            .zip(src)
            .zip(res)
            .for_each(|((d, s), r)| *d = act(*d + s + bias + r)),
    }
}

/// Builds the packed input panels for reduction rows `pc..pc + kc` and output pixels
/// `q0..q0 + cols`: panel `j` holds, k-major, the im2col values of pixels
/// `q0 + j * nr ..` (`nr` of them; the last panel's tail is left as it was and never written
/// out). `row` is scratch of at least `cols` values.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pack_input(
    x: &[f32],
    geo: &Geo,
    pc: usize,
    kc: usize,
    q0: usize,
    cols: usize,
    nr: usize,
    packed: &mut [f32],
    row: &mut [f32],
) {
    let taps = geo.kh * geo.kw;
    let plane_in = geo.h * geo.phases * geo.wp;
    let direct = taps == 1 && geo.pad == [0, 0] && geo.stride == [1, 1];
    for kk in 0..kc {
        let kidx = pc + kk;
        let ci = kidx / taps;
        let (ki, kj) = ((kidx % taps) / geo.kw, kidx % geo.kw);
        let x_c = &x[ci * plane_in..][..plane_in];
        let src: &[f32] = if direct {
            &x_c[q0..q0 + cols]
        } else {
            fill_row(x_c, geo, ki, kj, q0, &mut row[..cols]);
            &row[..cols]
        };
        for (j, seg) in src.chunks(nr).enumerate() {
            let dst = &mut packed[(j * kc + kk) * nr..][..seg.len()];
            // An element loop rather than `copy_from_slice`: the runs are short (one panel
            // row), and a `memcpy` call per run costs more than the copy.
            for (d, s) in dst.iter_mut().zip(seg) {
                *d = *s;
            }
        }
    }
}

/// Fills `out` with the input values under tap `(ki, kj)` for output pixels
/// `q0..q0 + out.len()` of channel plane `x_c` (phase-split when the column stride is over 1:
/// see [`Geo`]; zero in the padding).
#[inline(always)]
fn fill_row(x_c: &[f32], geo: &Geo, ki: usize, kj: usize, q0: usize, out: &mut [f32]) {
    let [sh, sw] = geo.stride;
    let [ph, pw] = geo.pad;
    let off_h = ki * geo.dilation[0];
    // Input column `ow * sw + off` for output column `ow` is column `ow + base` of phase plane
    // `phase`, which holds `cols_in` real columns.
    let off = (kj * geo.dilation[1]) as isize - pw as isize;
    let (phase, base) = (
        off.rem_euclid(sw as isize) as usize,
        off.div_euclid(sw as isize),
    );
    let cols_in = geo.w.saturating_sub(phase).div_ceil(sw);
    // Output columns whose input column lies in `0..w`.
    let lo = ((-base).max(0) as usize).min(geo.wo);
    let hi = ((cols_in as isize - base).clamp(0, geo.wo as isize) as usize).max(lo);
    let mut q = q0;
    let end = q0 + out.len();
    while q < end {
        let (oh, ow0) = (q / geo.wo, q % geo.wo);
        let ow1 = geo.wo.min(ow0 + (end - q));
        let seg = &mut out[q - q0..q - q0 + (ow1 - ow0)];
        let ih = oh * sh + off_h;
        if ih < ph || ih - ph >= geo.h {
            seg.fill(0.0);
        } else {
            let (a, b) = (lo.clamp(ow0, ow1), hi.clamp(ow0, ow1));
            seg[..a - ow0].fill(0.0);
            seg[b - ow0..].fill(0.0);
            if a < b {
                // `a < b` means phase `phase` has real columns, so it is one of the planes.
                let x_row = &x_c[(phase * geo.h + ih - ph) * geo.wp..][..geo.wp];
                let i0 = (a as isize + base) as usize;
                seg[a - ow0..b - ow0].copy_from_slice(&x_row[i0..i0 + (b - a)]);
            }
        }
        q += ow1 - ow0;
    }
}
