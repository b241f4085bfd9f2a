//! Winograd F(4x4, 3x3) and F(2x2, 3x3): a 3x3, stride-1 convolution in 36 multiplies per 4x4
//! output tile and channel pair instead of 144, or 16 per 2x2 tile instead of 36, for the
//! convs with enough channels that the transforms are cheap beside the products.
//!
//! The output is cut into `m x m` tiles (`m` = 4 or 2, [`TILES`]), each read from an
//! `(m + 2) x (m + 2)` input tile (zero in the padding). [`WinogradConv::new`] transforms the
//! weights once at load time (`U = G g Gᵀ`, `(m + 2)²` values, the positions, per channel
//! pair) into the layout the tile kernel ([`crate::machine::simd`]) reads: for each position,
//! `MR`-channel panels, k-major (`[positions][c_out / MR][C_in][MR]`). A run transforms each
//! input tile (`V = Bᵀ d B`), multiplies position by position (one GEMM of `C_out x C_in` by
//! `C_in x tiles` per position, on the packed micro-kernels) and transforms each product back
//! (`Y = Aᵀ M A`), adding bias and residual and applying ReLU as it writes the output.
//! The tiles are taken a group of panels at a time (a few images, or part of one), small
//! enough that the products read the transformed tiles from cache: the group is transformed
//! (one unit of panels per thread), then multiplied and written (tasks of one image's panels
//! in the group, times a block of output channels). Both run on the current rayon pool, and
//! tasks own disjoint output channels; every value is computed whole by one unit or task in
//! the same order whatever the split, so the result does not depend on the thread count.
//! The transforms add rounding (for 2x2 tiles the inputs of the products are sums of up to 4
//! values and the outputs sums of up to 9 products; 4x4 tiles sum more terms, with
//! coefficients up to 25 and 64), so the result equals [`super::conv2d_ref`] only within a
//! few times direct convolution's error for 2x2 tiles, up to about fifteen times for 4x4
//! (property tests bound both). No `unsafe` here.

use ndarray::{Array4, ArrayView1, ArrayView4, ArrayViewMut3, Axis};
use rayon::prelude::*;
use std::cell::RefCell;

use super::conv::{Conv2dParams, out_hw};
use crate::machine::simd::{Isa, MR};

mod transforms;

/// Output tile sizes: `m x m` outputs from an `(m + 2) x (m + 2)` input tile.
pub const TILES: [usize; 2] = [2, 4];

/// Transform positions of `m x m` output tiles: the `(m + 2)²` values of an input tile.
pub(super) const fn positions(m: usize) -> usize {
    (m + 2) * (m + 2)
}

/// Values left unused after each position's `C_in x nr` block of transformed tiles (one
/// cache line), so that the blocks, a power of two apart otherwise, do not all fall in the
/// same few sets of the L1 cache while the input transform writes to all of them in turn.
const POS_GAP: usize = 16;

/// Values of one position's block of a transformed tile panel, gap included.
fn pos_len(c_in: usize, nr: usize) -> usize {
    c_in * nr + POS_GAP
}

/// Fewest input and output channels for which Winograd pays: below, the transforms (per tile
/// and channel, whatever the other channel count) cost more than the products they save.
pub const MIN_CHANNELS: usize = 16;

/// Fewest output pixels per image for which the planner picks Winograd with AVX-512: measured
/// on 2 threads against the GEMM conv that reads its input in place (ResNet-18 and -50), the
/// 2x2 tiles won at 56x56 and 28x28 (0.39–0.47 against 0.51–0.56 ms) and lost at 14x14
/// (0.59–0.63 against 0.55–0.57; again on 2026-11-30, 0.62–0.70 against 0.52) and 7x7 (1.41
/// against 0.70), whose tile panels are mostly partial.
pub const MIN_PIXELS: u64 = 28 * 28;

/// [`MIN_PIXELS`] with AVX2 (and in portable code), where the products run at half the
/// AVX-512 speed, so saving them weighs more than the transforms: in ResNet-18 on 2 threads,
/// the three 14x14 convs of 256 channels took 2.47–2.51 ms as Winograd against 3.14 ms on the
/// transposed tile; 7x7 maps were level (1.00 against 1.04 ms, one conv of 512 channels).
pub const MIN_PIXELS_AVX2: u64 = 14 * 14;

/// The fewest output pixels per image for which Winograd runs on `isa`.
pub fn min_pixels(isa: Isa) -> u64 {
    if isa.name() == "avx512" {
        MIN_PIXELS
    } else {
        MIN_PIXELS_AVX2
    }
}

/// Fewest output pixels per image for which the planner picks 4x4 output tiles rather than
/// 2x2: measured on 2 threads in ResNet-18 (AVX-512), 4x4 tiles won on 56x56 maps (0.42
/// against 0.44 ms per conv at batch 1; with AVX2, 0.53 against 0.65) and lost on 28x28
/// (0.46 against 0.40), where a tile row of 7 tiles fills less than half of the transforms'
/// 16-tile steps and a quarter of the last tile panel is empty.
pub const MIN_PIXELS_4X4: u64 = 56 * 56;

/// Tasks per thread wanted for load balance in the products, when there are several threads.
/// (The input transform takes one unit per thread: a unit transforms whole tile rows, so
/// smaller units transform more rows twice; with 4x4 tiles on 56x56 maps, four units per
/// thread made the conv 5% slower in ResNet-18.)
const TASKS_PER_THREAD: usize = 4;

/// Most tile panels one unit of the input transform takes (the tile rows two units share are
/// transformed by both).
const MAX_UNIT_PANELS: usize = 8;

/// Most transformed input values held at once (512 KiB, half a core's L2 cache on current
/// x86 CPUs): a batch is transformed and multiplied a group of tile panels at a time (whole
/// images when they are small), so that the products read the transformed tiles from cache
/// rather than memory. Tests use a small group so that their small images are split too.
const GROUP_VALUES: usize = if cfg!(test) { 1 << 12 } else { 1 << 17 };

/// Most bytes the transformed weights of a network may hold beyond what the packed GEMM
/// weights would (36 or 16 taps instead of 9 per channel pair). Past it, further 3x3 convs
/// take 2x2 tiles or stay direct, so that a deep network's weights in memory stay close to
/// its file's size (`run` promises weights + 64 MB). With AVX-512 only maps of at least
/// [`MIN_PIXELS`] run as Winograd, so in ResNet-50 only stages 1 and 2 do: 4x4 tiles for
/// three 64-channel convs (27 * 64 * 64 * 4 bytes more each) and 2x2 for three 128-channel
/// ones (7 * 128 * 128 * 4), 2.7 MB in all; ResNet-152 takes 4.5 MB. With AVX2, stage 3 runs
/// as Winograd too (7 * 256 * 256 * 4 bytes more per conv) until the budget is spent:
/// ResNet-50's five convs fit, 11.9 MB in all; ResNet-152's first six of 35.
pub const EXTRA_BYTES_BUDGET: u64 = 16 << 20;

/// What is left of [`EXTRA_BYTES_BUDGET`] while a network is planned, conv by conv in graph
/// order; the planner and the memory estimate take from it alike, so they agree on which
/// convs run as Winograd.
#[derive(Debug, Clone)]
pub struct Budget {
    left: u64,
    /// The largest output tile wanted.
    largest: usize,
    /// The fewest output pixels per image for Winograd ([`min_pixels`]).
    min_pixels: u64,
}

impl Default for Budget {
    /// The whole budget, for tiles of up to 4x4 outputs (2x2 if `RESNETC_WINOGRAD` is `2`,
    /// so that both can be measured), on the instruction set `RESNETC_CPU` picks
    /// ([`Isa::configured`]).
    fn default() -> Budget {
        static LARGEST: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let largest = *LARGEST.get_or_init(|| {
            if std::env::var_os("RESNETC_WINOGRAD").is_some_and(|v| v == "2") {
                2
            } else {
                4
            }
        });
        Budget::new(largest, Isa::configured())
    }
}

impl Budget {
    /// The whole budget, for output tiles of up to `largest x largest` (one of [`TILES`]), on
    /// `isa`.
    ///
    /// # Panics
    /// If `largest` is not one of [`TILES`].
    pub fn new(largest: usize, isa: Isa) -> Budget {
        assert!(TILES.contains(&largest), "Winograd tiles are 2x2 or 4x4");
        Budget {
            left: EXTRA_BYTES_BUDGET,
            largest,
            min_pixels: min_pixels(isa),
        }
    }

    /// The output tile the next conv (as for [`applies`]; `pixels`: its output's height times
    /// width, `None` when not known) runs as Winograd with, `None` for none: the largest
    /// wanted whose extra bytes still fit, taken from the budget. Only maps of at least
    /// [`min_pixels`] run as Winograd, and only maps known to have at least
    /// [`MIN_PIXELS_4X4`] with 4x4 tiles.
    pub fn take(
        &mut self,
        p: &Conv2dParams,
        k: [usize; 2],
        c_in: usize,
        c_out: usize,
        pixels: Option<u64>,
    ) -> Option<usize> {
        if !applies(p, k, c_in, c_out) || pixels.is_some_and(|px| px < self.min_pixels) {
            return None;
        }
        let extra = |m: usize| {
            ((positions(m) - 9) as u64)
                .saturating_mul(c_out.next_multiple_of(MR) as u64)
                .saturating_mul(c_in as u64)
                .saturating_mul(4)
        };
        let large = pixels.is_some_and(|px| px >= MIN_PIXELS_4X4);
        let m = TILES
            .into_iter()
            .rev()
            .filter(|&m| m <= self.largest && (m == 2 || large))
            .find(|&m| extra(m) <= self.left)?;
        self.left -= extra(m);
        Some(m)
    }
}

/// Whether a conv with these hyper-parameters, kernel size and channels can run as Winograd
/// (with either of [`TILES`]): 3x3, stride 1, dilation 1, one group, at least
/// [`MIN_CHANNELS`] channels in and out.
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
    /// Output tile size: `m x m` outputs per input tile of `(m + 2) x (m + 2)`.
    m: usize,
    /// `[positions][panels][c_in][MR]`, rows past `c_out` zero.
    u: Vec<f32>,
    /// One per output channel (zeros when the conv has none).
    bias: Vec<f32>,
    c_in: usize,
    c_out: usize,
    pad: [usize; 2],
}

impl WinogradConv {
    /// Transform and pack `w` (`[C_out, C_in, 3, 3]`, PyTorch layout) and its bias, for
    /// output tiles of `m x m` (one of [`TILES`]).
    ///
    /// # Preconditions
    /// [`applies`] holds for `p` and `w`'s shape, and the bias has `C_out` values (the caller
    /// checks the first, the shape checker guarantees the second; panics otherwise).
    pub fn new(
        w: ArrayView4<f32>,
        bias: Option<ArrayView1<f32>>,
        p: Conv2dParams,
        m: usize,
    ) -> Self {
        let (c_out, c_in, kh, kw) = w.dim();
        assert!(
            applies(&p, [kh, kw], c_in, c_out),
            "the planner only makes a Winograd conv where it applies"
        );
        assert!(TILES.contains(&m), "Winograd tiles are 2x2 or 4x4");
        let panels = c_out.div_ceil(MR);
        let mut u = vec![0.0f32; positions(m) * panels * c_in * MR];
        for co in 0..c_out {
            for ci in 0..c_in {
                let g = |i: usize, j: usize| f64::from(w[[co, ci, i, j]]);
                let t = transform_weight(g, m);
                let (pi, i) = (co / MR, co % MR);
                for (pos, v) in t.iter().enumerate() {
                    u[((pos * panels + pi) * c_in + ci) * MR + i] = *v as f32;
                }
            }
        }
        let bias = super::conv::bias_or_zeros(bias, c_out);
        WinogradConv {
            m,
            u,
            bias,
            c_in,
            c_out,
            pad: p.pad,
        }
    }

    /// Output tile size: `m x m` outputs per input tile.
    pub fn tile(&self) -> usize {
        self.m
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

/// `G g Gᵀ` in `f64` (so the stored values are the transform's, rounded once), row-major
/// `(m + 2) x (m + 2)`, with `G = [[1, 0, 0], [½, ½, ½], [½, -½, ½], [0, 0, 1]]` for `m = 2`
/// and, for `m = 4` (points 0, ±1, ±2),
/// `G = [[¼, 0, 0], [-⅙, -⅙, -⅙], [-⅙, ⅙, -⅙], [1/24, 1/12, ⅙], [1/24, -1/12, ⅙],
/// [0, 0, 1]]`.
fn transform_weight(g: impl Fn(usize, usize) -> f64, m: usize) -> Vec<f64> {
    let gt: &[[f64; 3]] = if m == 2 {
        &[
            [1.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.5, -0.5, 0.5],
            [0.0, 0.0, 1.0],
        ]
    } else {
        &[
            [0.25, 0.0, 0.0],
            [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
            [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
            [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
            [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
            [0.0, 0.0, 1.0],
        ]
    };
    let t = m + 2;
    // `G g`, then `(G g) Gᵀ`.
    let gg: Vec<[f64; 3]> = gt
        .iter()
        .map(|row| std::array::from_fn(|j| (0..3).map(|k| row[k] * g(k, j)).sum()))
        .collect();
    let mut out = vec![0.0; t * t];
    for r in 0..t {
        for c in 0..t {
            out[r * t + c] = (0..3).map(|k| gg[r][k] * gt[c][k]).sum();
        }
    }
    out
}

/// Bytes of scratch one thread may hold for [`conv2d_winograd`] on `w`-wide images with
/// `m x m` output tiles: the products of one tile panel, and the input rows and transformed
/// tiles of a few panels.
pub fn scratch_bytes(w: u64, m: usize) -> u64 {
    transforms::scratch_len(w, m as u64, 32, MAX_UNIT_PANELS as u64).saturating_mul(4)
}

/// Values in the transformed input of a conv with `c_in` channels on `n` images of `h x w`
/// (padding `pad`) with `m x m` output tiles, at most what [`conv2d_winograd`] holds while it
/// runs (a group of panels at a time): `(m + 2)²` per tile and channel, with each image's last
/// panel of tiles rounded up to a whole panel and the gaps between positions (saturating: an
/// estimate before anything is allocated).
pub fn transformed_len(n: u64, c_in: u64, h: u64, w: u64, pad: [u64; 2], m: usize) -> u64 {
    let nr = 32;
    let m64 = m as u64;
    let tiles = |len: u64, pad: u64| len.saturating_add(2 * pad).saturating_sub(2).div_ceil(m64);
    let (th, tw) = (tiles(h, pad[0]), tiles(w, pad[1]));
    let per_image = th.saturating_mul(tw).saturating_add(nr);
    // `c_in + 2` for the gaps: `POS_GAP <= 2 nr` for either panel width.
    (positions(m) as u64)
        .saturating_mul(c_in.saturating_add(2))
        .saturating_mul(n)
        .saturating_mul(per_image)
}

/// Each thread's scratch, kept between calls (allocating per task would fault in fresh
/// pages every time).
#[derive(Default)]
struct Scratch {
    /// Products: `[positions][MR][nr]`.
    m: Vec<f32>,
    /// The output row segments of one tile panel: `[m][m nr]`.
    pair: Vec<f32>,
    input: transforms::InputScratch,
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
}

/// One task: tile panels `p0..p1` of image `b` (numbered row-major over the image's tiles),
/// output channels from panel `panel0` on; `dst` is those channels of the image's output
/// (`[channels][H_out][W_out]`), of which the task writes the values its tiles cover.
struct Task<'a> {
    b: usize,
    p0: usize,
    p1: usize,
    panel0: usize,
    /// Index of panel `p0` among the group's transformed ones.
    v0: usize,
    dst: ArrayViewMut3<'a, f32>,
}

/// A group's share of one image: its tile panels `p0..p1`.
#[derive(Clone, Copy)]
struct Segment {
    b: usize,
    p0: usize,
    p1: usize,
}

/// Calls `f::<NR, M>(args)` for the tile kernels' panel width `nr` (32, 24 or 8 tiles) and the
/// output tile size `m` (2 or 4), so that each pair gets loops of fixed lengths.
macro_rules! by_widths {
    ($nr:expr, $m:expr, $($f:ident)::+ ($($arg:expr),* $(,)?)) => {
        match ($nr, $m) {
            (32, 2) => $($f)::+::<32, 2>($($arg),*),
            (32, 4) => $($f)::+::<32, 4>($($arg),*),
            (24, 2) => $($f)::+::<24, 2>($($arg),*),
            (24, 4) => $($f)::+::<24, 4>($($arg),*),
            (8, 2) => $($f)::+::<8, 2>($($arg),*),
            (8, 4) => $($f)::+::<8, 4>($($arg),*),
            _ => unreachable!("tile panels of 32, 24 or 8 tiles; output tiles of 2 or 4"),
        }
    };
}

/// `relu?(conv(x, w) + bias + residual)` for a 3x3, stride-1 conv, by Winograd F(m x m, 3x3).
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
    let m = wc.m;
    let geo = Geo {
        h,
        w,
        ho,
        wo,
        tw: wo.div_ceil(m),
        c_in,
        c_out: wc.c_out,
        pad: wc.pad,
    };
    let th = ho.div_ceil(m);
    let tiles = th * geo.tw;
    let per_image = tiles.div_ceil(nr);
    let panels = wc.c_out.div_ceil(MR);
    let panel_len = positions(m) * pos_len(c_in, nr);
    // Tile panels per group: as many as keep the transformed input within `GROUP_VALUES`
    // (at least one per thread), in whole images when they fit.
    let most = (GROUP_VALUES * threads / panel_len).max(threads * TASKS_PER_THREAD);
    let whole = |b: usize| Segment {
        b,
        p0: 0,
        p1: per_image,
    };
    let groups: Vec<Vec<Segment>> = if per_image <= most {
        let images = most / per_image;
        (0..n)
            .step_by(images)
            .map(|b0| (b0..(b0 + images).min(n)).map(whole).collect())
            .collect()
    } else {
        (0..n)
            .flat_map(|b| {
                (0..per_image).step_by(most).map(move |p0| {
                    let p1 = (p0 + most).min(per_image);
                    vec![Segment { b, p0, p1 }]
                })
            })
            .collect()
    };
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout is contiguous");
    let residual = residual.as_ref().map(|r| r.as_standard_layout());
    let rs = residual
        .as_ref()
        .map(|r| r.as_slice().expect("standard layout is contiguous"));
    let plane_in = c_in * h * w;

    let mut v = TRANSFORMED.with_borrow_mut(std::mem::take);
    for group in &groups {
        let held: usize = group.iter().map(|g| g.p1 - g.p0).sum();
        // Phase 1: every input tile of the group transformed once, in panels of `nr` tiles,
        // which every channel block then reads; a unit of work is consecutive panels, one unit
        // per thread (at most `MAX_UNIT_PANELS` each).
        let unit_panels = if threads > 1 {
            held.div_ceil(threads)
        } else {
            MAX_UNIT_PANELS
        }
        .clamp(1, MAX_UNIT_PANELS);
        v.resize(held * panel_len, 0.0);
        let mut units = Vec::new();
        let mut rest = &mut v[..];
        for g in group {
            for p in (g.p0..g.p1).step_by(unit_panels) {
                let count = unit_panels.min(g.p1 - p);
                let (chunk, more) = rest.split_at_mut(count * panel_len);
                rest = more;
                let width = (count * nr).min(tiles - p * nr);
                units.push((chunk, (g.b, p * nr, width)));
            }
        }
        let transform = |(chunk, (b, first, width)): (&mut [f32], (usize, usize, usize))| {
            SCRATCH.with_borrow_mut(|s| {
                let x_b = &xs[b * plane_in..][..plane_in];
                let s = &mut s.input;
                isa.vectorized(
                    #[inline(always)]
                    || {
                        by_widths!(
                            nr,
                            m,
                            transforms::transform_input(x_b, &geo, first, width, chunk, s, isa)
                        )
                    },
                );
            })
        };
        match pool {
            Some(pool) if units.len() > 1 => {
                pool.install(|| units.into_par_iter().for_each(transform))
            }
            _ => units.into_iter().for_each(transform),
        }

        // Phase 2: each image's output channels carved into blocks, one task each.
        let blocks = if threads > 1 {
            (threads * TASKS_PER_THREAD)
                .div_ceil(group.len())
                .clamp(1, panels)
        } else {
            1
        };
        let panels_per_block = panels.div_ceil(blocks);
        let mut tasks = Vec::new();
        let mut v0 = 0;
        let b0 = group[0].b;
        let mut out_g = out.slice_mut(ndarray::s![b0..b0 + group.len(), .., .., ..]);
        for (g, image) in group.iter().zip(out_g.axis_iter_mut(Axis(0))) {
            let mut rest = image;
            let mut panel0 = 0;
            while panel0 < panels {
                let rows = ((panel0 + panels_per_block) * MR).min(wc.c_out) - panel0 * MR;
                let (block, tail) = rest.split_at(Axis(0), rows);
                rest = tail;
                tasks.push(Task {
                    b: g.b,
                    p0: g.p0,
                    p1: g.p1,
                    panel0,
                    v0,
                    dst: block,
                });
                panel0 += panels_per_block;
            }
            v0 += g.p1 - g.p0;
        }
        let vs = &v[..];
        let run = |t: Task| {
            SCRATCH.with_borrow_mut(|s| {
                let r_b = rs.map(|r| &r[t.b * wc.c_out * ho * wo..][..wc.c_out * ho * wo]);
                isa.vectorized(
                    #[inline(always)]
                    || by_widths!(nr, m, run_task(t, vs, r_b, wc, &geo, relu, isa, s)),
                );
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

/// Runs one task: for each panel of `nr` transformed tiles and each channel panel, multiply
/// position by position and transform the products into the output. Inlined into
/// [`Isa::vectorized`], so its loops use the instruction set's vectors.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run_task<const NR: usize, const M: usize>(
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
        p0,
        p1,
        panel0,
        v0,
        mut dst,
        ..
    } = t;
    let c_in = geo.c_in;
    let rows = dst.dim().0;
    let dst = dst
        .as_slice_mut()
        .expect("a block of whole channels of a standard-layout image is contiguous");
    let pos = positions(M);
    let tiles = geo.ho.div_ceil(M) * geo.tw;
    let panels = geo.c_out.div_ceil(MR);
    let panel_len = pos * pos_len(c_in, NR);
    let grow = |v: &mut Vec<f32>, len: usize| {
        if v.len() < len {
            v.resize(len, 0.0);
        }
    };
    grow(&mut s.m, pos * MR * NR);
    grow(&mut s.pair, M * M * NR);
    let mut y = [[0.0f32; NR]; 16];
    for jp in p0..p1 {
        let first = jp * NR;
        let width = NR.min(tiles - first);
        let vp = &v[(v0 + jp - p0) * panel_len..][..panel_len];
        for ip in 0..rows.div_ceil(MR) {
            let pi = panel0 + ip;
            for k in 0..pos {
                let a = &wc.u[(k * panels + pi) * c_in * MR..][..c_in * MR];
                let b = &vp[k * pos_len(c_in, NR)..][..c_in * NR];
                isa.tile(c_in, a, b, &mut s.m[k * MR * NR..][..MR * NR]);
            }
            for i in 0..MR.min(rows - ip * MR) {
                let r = ip * MR + i;
                transforms::transform_output::<NR, M>(&s.m, i, &mut y);
                transforms::interleave::<NR, M>(&y, &mut s.pair);
                let co = pi * MR + i;
                let bias = wc.bias[co];
                let res = r_b.map(|rb| &rb[co * geo.ho * geo.wo..][..geo.ho * geo.wo]);
                let plane = &mut dst[r * geo.ho * geo.wo..][..geo.ho * geo.wo];
                let pair = &s.pair[..M * M * NR];
                write_tiles::<NR, M>(pair, geo, first, width, bias, res, relu, plane);
            }
        }
    }
}

/// Writes the `M x M` values of tiles `first..first + width` of one channel into `plane`:
/// `relu?(y + bias + residual)`, clipped at the output's edge; `rows` holds the tiles' output
/// rows side by side (`[M][M NR]`, from [`transforms::interleave`]).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn write_tiles<const NR: usize, const M: usize>(
    rows: &[f32],
    geo: &Geo,
    first: usize,
    width: usize,
    bias: f32,
    res: Option<&[f32]>,
    relu: bool,
    plane: &mut [f32],
) {
    let mut j = 0;
    while j < width {
        let (ty, tx0) = ((first + j) / geo.tw, (first + j) % geo.tw);
        let run = (geo.tw - tx0).min(width - j);
        for dy in 0..M {
            let oh = M * ty + dy;
            if oh >= geo.ho {
                continue;
            }
            let (c0, c1) = (M * tx0, (M * (tx0 + run)).min(geo.wo));
            let y = &rows[dy * M * NR + M * j..][..c1 - c0];
            let (a, b) = (oh * geo.wo + c0, oh * geo.wo + c1);
            let res = res.map(|r| &r[a..b]);
            transforms::write_act(&mut plane[a..b], y, res, bias, relu);
        }
        j += run;
    }
}
