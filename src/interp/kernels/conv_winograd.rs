//! Winograd F(2x2, 3x3): a 3x3, stride-1 convolution in 16 multiplies per 2x2 output tile and
//! channel pair instead of 36, for the convs with enough channels that the transforms are
//! cheap beside the products.
//!
//! The output is cut into 2x2 tiles, each read from a 4x4 input tile (zero in the padding).
//! [`WinogradConv::new`] transforms the weights once at load time (`U = G g Gᵀ`, 16 values per
//! channel pair) into the layout the tile kernel ([`crate::machine::simd`]) reads: for each
//! of the 16 positions, `MR`-channel panels, k-major (`[16][c_out / MR][C_in][MR]`). A run
//! transforms each input tile (`V = Bᵀ d B`), multiplies position by position (16 GEMMs of
//! `C_out x C_in` by `C_in x tiles`, on the packed micro-kernels) and transforms each product
//! back (`Y = Aᵀ M A`), adding bias and residual and applying ReLU as it writes the output.
//! Tasks (an image's band of tile rows, times a block of output channels) run on the current
//! rayon pool and own disjoint parts of the output; every value is computed whole by one task
//! in the same order whatever the split, so the result does not depend on the thread count.
//! The transforms add rounding (the inputs of the products are sums of up to 4 values and the
//! outputs sums of up to 9 products), so the result equals [`super::conv2d_ref`] only within a
//! few times direct convolution's error (property tests bound it). No `unsafe` here.

use ndarray::{Array4, ArrayView1, ArrayView4, ArrayViewMut3, Axis};
use rayon::prelude::*;
use std::cell::RefCell;

use super::conv::{Conv2dParams, out_hw};
use crate::machine::simd::{Isa, MR};

/// Transform positions: a 4x4 input tile.
const POS: usize = 16;

/// Fewest input and output channels for which Winograd pays: below, the transforms (per tile
/// and channel, whatever the other channel count) cost more than the products they save.
pub const MIN_CHANNELS: usize = 16;

/// Tasks per thread wanted for load balance, when there are several threads.
const TASKS_PER_THREAD: usize = 4;

/// Most tiles a task takes from one image, in panels of the tile kernel's width.
const MAX_PANELS_PER_TASK: usize = 8;

/// Most transformed input values held at once (4 MiB): a batch is transformed and multiplied
/// a group of images at a time, so that the products read the transformed tiles from cache.
/// Tests use a small group so that their small images are split into groups too.
const GROUP_VALUES: usize = if cfg!(test) { 1 << 12 } else { 1 << 20 };

/// Most bytes the transformed weights of a network may hold beyond what the packed GEMM
/// weights would (16 taps instead of 9 per channel pair). Past it, further 3x3 convs stay
/// direct, so that a deep network's weights in memory stay close to its file's size (`run`
/// promises weights + 64 MB): ResNet-50's stages 1-3 take about 13 MB, its stage 4 (7x7 maps,
/// where 2x2 tiles save least) stays direct; ResNet-152 uses Winograd up to part of stage 3.
pub const EXTRA_BYTES_BUDGET: u64 = 16 << 20;

/// What is left of [`EXTRA_BYTES_BUDGET`] while a network is planned, conv by conv in graph
/// order; the planner and the memory estimate take from it alike, so they agree on which
/// convs run as Winograd.
#[derive(Debug, Clone)]
pub struct Budget {
    left: u64,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            left: EXTRA_BYTES_BUDGET,
        }
    }
}

impl Budget {
    /// Whether the next conv (as for [`applies`]) runs as Winograd, taking its extra bytes
    /// from the budget when it does.
    pub fn take(&mut self, p: &Conv2dParams, k: [usize; 2], c_in: usize, c_out: usize) -> bool {
        if !applies(p, k, c_in, c_out) {
            return false;
        }
        let extra = ((POS - 9) as u64)
            .saturating_mul(c_out.next_multiple_of(MR) as u64)
            .saturating_mul(c_in as u64)
            .saturating_mul(4);
        if extra > self.left {
            return false;
        }
        self.left -= extra;
        true
    }
}

/// Whether a conv with these hyper-parameters, kernel size and channels runs as Winograd
/// F(2x2, 3x3): 3x3, stride 1, dilation 1, one group, at least [`MIN_CHANNELS`] channels in
/// and out.
pub fn applies(p: &Conv2dParams, k: [usize; 2], c_in: usize, c_out: usize) -> bool {
    k == [3, 3]
        && p.stride == [1, 1]
        && p.dilation == [1, 1]
        && p.groups == 1
        && c_in >= MIN_CHANNELS
        && c_out >= MIN_CHANNELS
}

/// A 3x3 conv's weights, transformed and packed, with its bias and padding.
#[derive(Debug, Clone)]
pub struct WinogradConv {
    /// `[16][panels][c_in][MR]`, rows past `c_out` zero.
    u: Vec<f32>,
    /// One per output channel (zeros when the conv has none).
    bias: Vec<f32>,
    c_in: usize,
    c_out: usize,
    pad: [usize; 2],
}

impl WinogradConv {
    /// Transform and pack `w` (`[C_out, C_in, 3, 3]`, PyTorch layout) and its bias.
    ///
    /// # Preconditions
    /// [`applies`] holds for `p` and `w`'s shape, and the bias has `C_out` values (the caller
    /// checks the first, the shape checker guarantees the second; panics otherwise).
    pub fn new(w: ArrayView4<f32>, bias: Option<ArrayView1<f32>>, p: Conv2dParams) -> Self {
        let (c_out, c_in, kh, kw) = w.dim();
        assert!(
            applies(&p, [kh, kw], c_in, c_out),
            "the planner only makes a Winograd conv where it applies"
        );
        let panels = c_out.div_ceil(MR);
        let mut u = vec![0.0f32; POS * panels * c_in * MR];
        for co in 0..c_out {
            for ci in 0..c_in {
                let g = |i: usize, j: usize| f64::from(w[[co, ci, i, j]]);
                let t = transform_weight(g);
                let (pi, i) = (co / MR, co % MR);
                for (pos, v) in t.iter().enumerate() {
                    u[((pos * panels + pi) * c_in + ci) * MR + i] = *v as f32;
                }
            }
        }
        let bias = super::conv::bias_or_zeros(bias, c_out);
        WinogradConv {
            u,
            bias,
            c_in,
            c_out,
            pad: p.pad,
        }
    }

    /// Output channels.
    pub fn c_out(&self) -> usize {
        self.c_out
    }

    /// Multiply-adds per output value of the direct conv it stands for: `9 C_in`.
    pub fn taps(&self) -> usize {
        9 * self.c_in
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        (self.u.len() + self.bias.len()) * std::mem::size_of::<f32>()
    }
}

/// `G g Gᵀ` in `f64` (so the stored values are the transform's, rounded once), row-major 4x4,
/// with `G = [[1, 0, 0], [½, ½, ½], [½, -½, ½], [0, 0, 1]]`.
fn transform_weight(g: impl Fn(usize, usize) -> f64) -> [f64; POS] {
    let gt = |j: usize| {
        let (a, b, c) = (g(0, j), g(1, j), g(2, j));
        [a, (a + b + c) / 2.0, (a - b + c) / 2.0, c]
    };
    let cols = [gt(0), gt(1), gt(2)];
    let mut out = [0.0; POS];
    for r in 0..4 {
        let (a, b, c) = (cols[0][r], cols[1][r], cols[2][r]);
        out[r * 4..r * 4 + 4].copy_from_slice(&[a, (a + b + c) / 2.0, (a - b + c) / 2.0, c]);
    }
    out
}

/// Bytes of scratch one thread may hold for [`conv2d_winograd`]: the products and partial
/// transforms of one tile panel.
pub fn scratch_bytes() -> usize {
    let nr = 32;
    (POS * MR * nr + 10 * (nr + 1) + 4 * nr + 2 * nr + 2) * std::mem::size_of::<f32>()
}

/// Values in the transformed input of a conv with `c_in` channels on `n` images of `h x w`
/// (padding `pad`), which [`conv2d_winograd`] holds while it runs: 16 per 2x2 tile and
/// channel, with each band's last panel of tiles rounded up to a whole panel (saturating: an
/// estimate before anything is allocated).
pub fn transformed_len(n: u64, c_in: u64, h: u64, w: u64, pad: [u64; 2]) -> u64 {
    let nr = 32;
    let tiles = |len: u64, pad: u64| len.saturating_add(2 * pad).saturating_sub(2).div_ceil(2);
    let (th, tw) = (tiles(h, pad[0]), tiles(w, pad[1]));
    let per_image = th.saturating_mul(tw).saturating_add(th.saturating_mul(nr));
    (POS as u64)
        .saturating_mul(c_in)
        .saturating_mul(n)
        .saturating_mul(per_image)
}

/// Each thread's scratch, kept between calls (allocating per task would fault in fresh
/// pages every time).
#[derive(Default)]
struct Scratch {
    /// Products: `[16][MR][nr]`.
    m: Vec<f32>,
    /// Even and odd columns of 4 input rows, then of one combined row: `[10][nr + 1]`.
    t: Vec<f32>,
    /// One zero-padded input row segment; then one output row segment.
    row: Vec<f32>,
    /// One output tile panel, `[4][nr]` (the 2x2 values of each tile).
    y: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    /// The calling thread's buffer of transformed input tiles, kept between calls.
    static TRANSFORMED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Sizes shared by every task of one call.
#[derive(Clone, Copy)]
struct Geo {
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
    /// Tiles per output row.
    tw: usize,
    c_in: usize,
    c_out: usize,
    pad: [usize; 2],
    nr: usize,
}

/// One task: tile rows `ty0..ty1` of image `b`, output channels from panel `panel0` on; `dst`
/// is that part of the output (`[channels][rows][W_out]`).
struct Task<'a> {
    b: usize,
    ty0: usize,
    ty1: usize,
    panel0: usize,
    /// Index of the first of its tile panels among the transformed ones.
    v0: usize,
    dst: ArrayViewMut3<'a, f32>,
}

/// `relu?(conv(x, w) + bias + residual)` for a 3x3, stride-1 conv, by Winograd F(2x2, 3x3).
/// The tasks run on `pool`, or on the calling thread without one.
///
/// # Shapes
/// - `x`: `[N, C_in, H, W]`; `residual`: the output's shape `[N, C_out, H_out, W_out]`
/// - returns `[N, C_out, H_out, W_out]`, sizes from `shape::formula::conv_out`.
///
/// # Preconditions
/// The shape checker guarantees that the shapes fit; panics otherwise.
pub fn conv2d_winograd(
    x: ArrayView4<f32>,
    wc: &WinogradConv,
    residual: Option<ArrayView4<f32>>,
    relu: bool,
    isa: Isa,
    pool: Option<&rayon::ThreadPool>,
) -> Array4<f32> {
    let threads = pool.map_or(1, |p| p.current_num_threads());
    let (n, c_in, h, w) = x.dim();
    assert_eq!(
        c_in, wc.c_in,
        "the shape checker guarantees the input has c_in channels"
    );
    let p = Conv2dParams {
        pad: wc.pad,
        ..Conv2dParams::default()
    };
    let (ho, wo) = out_hw(h, w, 3, 3, &p);
    if let Some(r) = &residual {
        assert_eq!(
            r.dim(),
            (n, wc.c_out, ho, wo),
            "the shape checker guarantees the residual has the output's shape"
        );
    }
    let mut out = Array4::<f32>::zeros((n, wc.c_out, ho, wo));
    if out.is_empty() {
        return out;
    }
    let nr = isa.nr();
    let geo = Geo {
        h,
        w,
        ho,
        wo,
        tw: wo.div_ceil(2),
        c_in,
        c_out: wc.c_out,
        pad: wc.pad,
        nr,
    };
    let th = ho.div_ceil(2);
    let band = band_rows(th, geo.tw, nr);
    let bands = th.div_ceil(band);
    let panels = wc.c_out.div_ceil(MR);
    let panels_per_band = |ty0: usize| (((ty0 + band).min(th) - ty0) * geo.tw).div_ceil(nr);
    let per_image: usize = (0..th).step_by(band).map(panels_per_band).sum();
    let panel_len = POS * c_in * nr;
    // Images per group: as many as keep the transformed input within `GROUP_VALUES`, so that
    // the second phase reads it from cache.
    let group = (GROUP_VALUES / (per_image * panel_len)).clamp(1, n);
    let blocks = if threads > 1 {
        (threads * TASKS_PER_THREAD)
            .div_ceil(group * bands)
            .clamp(1, panels)
    } else {
        1
    };
    let panels_per_block = panels.div_ceil(blocks);
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout is contiguous");
    let residual = residual.as_ref().map(|r| r.as_standard_layout());
    let rs = residual
        .as_ref()
        .map(|r| r.as_slice().expect("standard layout is contiguous"));
    let plane_in = c_in * h * w;

    let mut v = TRANSFORMED.with_borrow_mut(std::mem::take);
    for g0 in (0..n).step_by(group) {
        let g1 = (g0 + group).min(n);
        // Phase 1: every input tile transformed once, in panels of `nr` tiles per image and band
        // (`(image, first tile, tiles)` each), which every channel block then reads.
        let mut tile_panels = Vec::new();
        for b in g0..g1 {
            for ty0 in (0..th).step_by(band) {
                let tiles = ((ty0 + band).min(th) - ty0) * geo.tw;
                for j0 in (0..tiles).step_by(nr) {
                    tile_panels.push((b, ty0 * geo.tw + j0, nr.min(tiles - j0)));
                }
            }
        }
        v.resize(tile_panels.len() * panel_len, 0.0);
        let transform = |(chunk, &(b, first, width)): (&mut [f32], &(usize, usize, usize))| {
            SCRATCH.with_borrow_mut(|s| {
                let x_b = &xs[b * plane_in..][..plane_in];
                isa.vectorized(|| transform_input(x_b, &geo, first, width, chunk, s));
            })
        };
        match pool {
            Some(pool) if tile_panels.len() > 1 => pool.install(|| {
                v.par_chunks_mut(panel_len)
                    .zip(tile_panels.par_iter())
                    .for_each(transform)
            }),
            _ => v
                .chunks_mut(panel_len)
                .zip(&tile_panels)
                .for_each(transform),
        }

        // Phase 2: carve the output into the tasks' disjoint views.
        let mut tasks = Vec::new();
        let mut out_g = out.slice_mut(ndarray::s![g0..g1, .., .., ..]);
        for (b, image) in (g0..g1).zip(out_g.axis_iter_mut(Axis(0))) {
            let mut rest = image;
            let mut panel0 = 0;
            while panel0 < panels {
                let rows = ((panel0 + panels_per_block) * MR).min(wc.c_out) - panel0 * MR;
                let (mut block, tail) = rest.split_at(Axis(0), rows);
                rest = tail;
                let mut ty0 = 0;
                // Index of the band's first tile panel in `tile_panels`.
                let mut v0 = (b - g0) * per_image;
                while ty0 < th {
                    let ty1 = (ty0 + band).min(th);
                    let out_rows = (2 * ty1).min(ho) - 2 * ty0;
                    let (part, more) = block.split_at(Axis(1), out_rows);
                    block = more;
                    tasks.push(Task {
                        b,
                        ty0,
                        ty1,
                        panel0,
                        v0,
                        dst: part,
                    });
                    v0 += panels_per_band(ty0);
                    ty0 = ty1;
                }
                panel0 += panels_per_block;
            }
        }
        let vs = &v[..];
        let run = |t: Task| {
            SCRATCH.with_borrow_mut(|s| {
                let r_b = rs.map(|r| &r[t.b * wc.c_out * ho * wo..][..wc.c_out * ho * wo]);
                isa.vectorized(|| run_task(t, vs, r_b, wc, &geo, relu, isa, s));
            })
        };
        match pool {
            Some(pool) if tasks.len() > 1 => pool.install(|| tasks.into_par_iter().for_each(run)),
            _ => tasks.into_iter().for_each(run),
        }
    }
    TRANSFORMED.with_borrow_mut(|keep| *keep = v);
    out
}

/// Tile rows per task: at most [`MAX_PANELS_PER_TASK`] panels of tiles (at least one row),
/// chosen to leave the fewest unused columns in the last panel of each band.
fn band_rows(th: usize, tw: usize, nr: usize) -> usize {
    let most = (MAX_PANELS_PER_TASK * nr / tw).clamp(1, th);
    let padded = |rows: usize| {
        let full = th / rows;
        let rest = th % rows;
        full * (rows * tw).next_multiple_of(nr) + (rest * tw).next_multiple_of(nr)
    };
    (1..=most).rev().min_by_key(|&r| padded(r)).unwrap_or(1)
}

/// Runs one task: for each panel of `nr` transformed tiles and each channel panel, multiply
/// position by position and transform the products into the output. Inlined into
/// [`Isa::vectorized`], so its loops use the instruction set's vectors.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run_task(
    t: Task,
    v: &[f32],
    r_b: Option<&[f32]>,
    wc: &WinogradConv,
    geo: &Geo,
    relu: bool,
    isa: Isa,
    s: &mut Scratch,
) {
    let Task {
        ty0,
        ty1,
        panel0,
        v0,
        mut dst,
        ..
    } = t;
    let nr = geo.nr;
    let c_in = geo.c_in;
    let rows = dst.dim().0;
    let tiles = (ty1 - ty0) * geo.tw;
    let panels = geo.c_out.div_ceil(MR);
    let panel_len = POS * c_in * nr;
    let grow = |v: &mut Vec<f32>, len: usize| {
        if v.len() < len {
            v.resize(len, 0.0);
        }
    };
    grow(&mut s.m, POS * MR * nr);
    grow(&mut s.row, 2 * nr + 2);
    grow(&mut s.y, 4 * nr);
    for (jp, j0) in (0..tiles).step_by(nr).enumerate() {
        let width = nr.min(tiles - j0);
        let first = ty0 * geo.tw + j0;
        let vp = &v[(v0 + jp) * panel_len..][..panel_len];
        for ip in 0..rows.div_ceil(MR) {
            let pi = panel0 + ip;
            for pos in 0..POS {
                let a = &wc.u[(pos * panels + pi) * c_in * MR..][..c_in * MR];
                let b = &vp[pos * c_in * nr..][..c_in * nr];
                isa.tile(c_in, a, b, &mut s.m[pos * MR * nr..][..MR * nr]);
            }
            for i in 0..MR.min(rows - ip * MR) {
                let r = ip * MR + i;
                transform_output(&s.m, i, nr, &mut s.y);
                let co = pi * MR + i;
                let bias = wc.bias[co];
                let res = r_b.map(|rb| &rb[co * geo.ho * geo.wo..][..geo.ho * geo.wo]);
                let mut plane = dst.index_axis_mut(Axis(0), r);
                let (y, pair) = (&s.y, &mut s.row);
                write_tiles(y, geo, first, width, ty0, bias, res, relu, &mut plane, pair);
            }
        }
    }
}

/// Fills `v` (`[16][c_in][nr]`) with `Bᵀ d B` of tiles `first..first + width` (numbered
/// row-major over the image's tiles; columns past `width` zero), with
/// `Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]`. Each run of tiles
/// within one tile row is done on whole rows, first down the columns, then along the rows on
/// their even and odd columns, so that every loop runs over consecutive values (and
/// vectorizes).
#[inline(always)]
fn transform_input(
    x_b: &[f32],
    geo: &Geo,
    first: usize,
    width: usize,
    v: &mut [f32],
    s: &mut Scratch,
) {
    let nr = geo.nr;
    let plane = geo.h * geo.w;
    let stride = nr + 1;
    for (buf, len) in [(&mut s.t, 10 * stride), (&mut s.row, 2 * nr + 2)] {
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
    }
    let (t, row) = (&mut s.t[..10 * stride], &mut s.row);
    for ci in 0..geo.c_in {
        let x_c = &x_b[ci * plane..][..plane];
        let mut j = 0;
        while j < width {
            let (ty, tx0) = ((first + j) / geo.tw, (first + j) % geo.tw);
            let run = (geo.tw - tx0).min(width - j);
            let len = run + 1;
            // Even and odd columns of the 4 input rows: `t[2r]`, `t[2r + 1]`.
            for r in 0..4 {
                fill_row(x_c, geo, 2 * ty + r, 2 * tx0, 2 * len, row);
                let (e, o) = t[2 * r * stride..(2 * r + 2) * stride].split_at_mut(stride);
                let (e, o, src) = (&mut e[..len], &mut o[..len], &row[..2 * len]);
                for q in 0..len {
                    e[q] = src[2 * q];
                    o[q] = src[2 * q + 1];
                }
            }
            let (rows, comb) = t.split_at_mut(8 * stride);
            let (ce, co) = comb.split_at_mut(stride);
            let (ce, co) = (&mut ce[..len], &mut co[..len]);
            for a in 0..4 {
                // Down the columns: row `a` of `Bᵀ d`, on even and odd columns.
                let (p, m, sign) = match a {
                    0 => (0, 2, -1.0),
                    1 => (1, 2, 1.0),
                    2 => (2, 1, -1.0),
                    _ => (1, 3, -1.0),
                };
                for (half, dst) in [&mut *ce, &mut *co].into_iter().enumerate() {
                    let x = &rows[(2 * p + half) * stride..][..len];
                    let y = &rows[(2 * m + half) * stride..][..len];
                    for q in 0..len {
                        dst[q] = x[q] + sign * y[q];
                    }
                }
                // Along the rows: `d0 = e[q], d1 = o[q], d2 = e[q + 1], d3 = o[q + 1]`.
                let at = |k: usize| ((a * 4 + k) * geo.c_in + ci) * nr + j;
                let (e0, e1) = (&ce[..run], &ce[1..=run]);
                let (o0, o1) = (&co[..run], &co[1..=run]);
                v[at(0)..at(0) + run]
                    .iter_mut()
                    .zip(e0.iter().zip(e1))
                    .for_each(|(d, (a, b))| *d = a - b);
                v[at(1)..at(1) + run]
                    .iter_mut()
                    .zip(o0.iter().zip(e1))
                    .for_each(|(d, (a, b))| *d = a + b);
                v[at(2)..at(2) + run]
                    .iter_mut()
                    .zip(e1.iter().zip(o0))
                    .for_each(|(d, (a, b))| *d = a - b);
                v[at(3)..at(3) + run]
                    .iter_mut()
                    .zip(o0.iter().zip(o1))
                    .for_each(|(d, (a, b))| *d = a - b);
            }
            j += run;
        }
        if width < nr {
            for pos in 0..POS {
                let at = (pos * geo.c_in + ci) * nr;
                v[at + width..at + nr].fill(0.0);
            }
        }
    }
}

/// Fills `row[..len]` with input row `r - pad_h` of `x_c` from column `c - pad_w` on (in
/// padded coordinates `r`, `c`), zero outside the image.
#[inline(always)]
fn fill_row(x_c: &[f32], geo: &Geo, r: usize, c: usize, len: usize, row: &mut [f32]) {
    let row = &mut row[..len];
    let [ph, pw] = geo.pad;
    if r < ph || r - ph >= geo.h {
        row.fill(0.0);
        return;
    }
    let x_row = &x_c[(r - ph) * geo.w..][..geo.w];
    // Columns `c + k` with `pw <= c + k < pw + w` come from the image.
    let lo = pw.saturating_sub(c).min(len);
    let hi = (pw + geo.w).saturating_sub(c).clamp(lo, len);
    row[..lo].fill(0.0);
    row[hi..].fill(0.0);
    if lo < hi {
        let src = c + lo - pw;
        row[lo..hi].copy_from_slice(&x_row[src..src + (hi - lo)]);
    }
}

/// `y[k * nr + q] = (Aᵀ M A)[k]` of row `i` of the products, for every tile column `q`, with
/// `Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]]`.
#[inline(always)]
fn transform_output(m: &[f32], i: usize, nr: usize, y: &mut [f32]) {
    // Rows first: `p0 = m0 + m1 + m2`, `p1 = m1 - m2 - m3` (rows of 4 positions), per column.
    let mut p = [[0.0f32; 32]; 8];
    for c in 0..4 {
        let row = |r: usize| &m[((r * 4 + c) * MR + i) * nr..][..nr];
        let (m0, m1, m2, m3) = (row(0), row(1), row(2), row(3));
        let (lo, hi) = p.split_at_mut(4);
        let (p0, p1) = (&mut lo[c][..nr], &mut hi[c][..nr]);
        for q in 0..nr {
            p0[q] = m0[q] + m1[q] + m2[q];
            p1[q] = m1[q] - m2[q] - m3[q];
        }
    }
    for (k, dst) in y[..4 * nr].chunks_exact_mut(nr).enumerate() {
        // Then the columns: `y0 = p0 + p1 + p2`, `y1 = p1 - p2 - p3` of row `k / 2`.
        let base = &p[(k / 2) * 4..(k / 2) * 4 + 4];
        let (a, b, c, d) = (
            &base[0][..nr],
            &base[1][..nr],
            &base[2][..nr],
            &base[3][..nr],
        );
        if k % 2 == 0 {
            for q in 0..nr {
                dst[q] = a[q] + b[q] + c[q];
            }
        } else {
            for q in 0..nr {
                dst[q] = b[q] - c[q] - d[q];
            }
        }
    }
}

/// Writes the 2x2 values of tiles `first..first + width` of one channel into `plane` (the
/// task's rows, from tile row `ty0`): `relu?(y + bias + residual)`, clipped at the output's
/// edge. `pair` is scratch of `2 * nr` values.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn write_tiles(
    y: &[f32],
    geo: &Geo,
    first: usize,
    width: usize,
    ty0: usize,
    bias: f32,
    res: Option<&[f32]>,
    relu: bool,
    plane: &mut ndarray::ArrayViewMut2<f32>,
    pair: &mut [f32],
) {
    let nr = geo.nr;
    let act = |v: f32| if relu && v < 0.0 { 0.0 } else { v };
    let mut j = 0;
    while j < width {
        let (ty, tx0) = ((first + j) / geo.tw, (first + j) % geo.tw);
        let run = (geo.tw - tx0).min(width - j);
        for dy in 0..2 {
            let oh = 2 * ty + dy;
            if oh >= geo.ho {
                continue;
            }
            let mut out_row = plane.row_mut(oh - 2 * ty0);
            let out_row = out_row.as_slice_mut().expect("output rows are contiguous");
            let (c0, c1) = (2 * tx0, (2 * (tx0 + run)).min(geo.wo));
            // Interleave the tiles' left and right columns into one output row segment.
            let ya = &y[2 * dy * nr + j..][..run];
            let yb = &y[(2 * dy + 1) * nr + j..][..run];
            let both = &mut pair[..2 * run];
            for q in 0..run {
                both[2 * q] = ya[q];
                both[2 * q + 1] = yb[q];
            }
            let dst = &mut out_row[c0..c1];
            let both = &both[..c1 - c0];
            match res {
                None => dst
                    .iter_mut()
                    .zip(both)
                    .for_each(|(d, v)| *d = act(v + bias)),
                Some(r) => dst
                    .iter_mut()
                    .zip(both)
                    .zip(&r[oh * geo.wo + c0..oh * geo.wo + c1])
                    .for_each(|((d, v), r)| *d = act(v + bias + r)),
            }
        }
        j += run;
    }
}
