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
//! Each task (a band of one image's tile rows and a block of output channels, all of them but
//! where a band's tiles are one chunk: `channel_blocks`; an odd count of tile rows in two
//! bands may share its middle row out by blocks: `shares_middle_row`; run on the pool by
//! `for_each_banded_from` in `kernels`, so that each thread keeps the same rows from layer to
//! layer) transforms its own tiles a chunk of panels at a time, small enough to stay in the
//! core's L2 cache (or finds them transformed by the task before it on its thread, the same
//! band's previous block), and multiplies and writes them at once: no core reads tiles another
//! one transformed (with shared transformed tiles, split by output channels, two threads on an
//! Intel Xeon ran no faster than one). Tasks own disjoint parts of the output, and a product's
//! column depends on its own tile alone, so every value is computed in the same order whatever
//! the split: the result does not depend on the thread count.
//! The transforms add rounding (for 2x2 tiles the inputs of the products are sums of up to 4
//! values and the outputs sums of up to 9 products; 4x4 tiles sum more terms, with
//! coefficients up to 25 and 64), so the result equals [`super::conv2d_ref`] only within a
//! few times direct convolution's error for 2x2 tiles, up to about fifteen times for 4x4
//! (property tests bound both). No `unsafe` here.

use ndarray::{Array4, ArrayView1, ArrayView4, ArrayViewMut3, Axis};
use std::cell::RefCell;

use super::conv::{Conv2dParams, out_hw};
use crate::machine::simd::{Isa, MR};

mod transforms;

use transforms::Residual;

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
/// Also with AVX-512 on cores that run it at AVX2's rate ([`Isa::wide_products`]): on an AMD
/// EPYC (Zen 4), ResNet-18's 14x14 convs of 256 channels took 0.93–0.95 ms each as Winograd
/// against 1.18–1.23 on the GEMM conv (7x7 maps: 2.88–3.56 against 1.23–1.30, so not those).
pub const MIN_PIXELS_AVX2: u64 = 14 * 14;

/// Fewest output pixels per image for which a 3x3 conv runs as Winograd on passes of two
/// images or more where [`min_pixels`] is larger (AVX-512 at full width), and as the GEMM
/// conv on one image ([`Pick::several_only`]). Measured on an Intel Xeon (Emerald Rapids,
/// 2026-12-05, 2 threads, each setting in processes of its own): with Winograd on 14x14 maps,
/// ResNet-18 at batch 8 ran in 91.5, 89.9, 92.2 and 93.5 ms against 96.4, 92.4, 96.9 and 95.4,
/// ResNet-50 at batch 8 in 242, 249, 253 and 257 ms against 257, 252, 259 and 263 (passes of
/// two images, which read each transformed weight for 98 tiles instead of 49). At batch 1 the
/// conv alone took 0.55–0.57 ms against 0.75–0.76 on a quiet host, but ResNet-18's whole run
/// did not follow (11.4–12.9 ms either way), and on a busy one 12.86 and 12.90 ms against
/// 12.27: a 14x14 map's 49 tiles read each of its 4 MiB of transformed weights (ResNet-18's
/// and -50's 256-channel convs) a quarter as often as the GEMM conv's 196 pixels read the 2.25
/// MiB of its packed ones, so it waits on memory when the host's other work has the cache.
/// Measured again there on 2026-12-07 (processes in turn): Winograd on one image too ran
/// ResNet-18 at 0.95x and 1.00x of the GEMM conv's time, ResNet-50 at 1.00x and 1.04x (two
/// ways of switching it, medians of 8 to 12 pairs, each pair 0.7–1.3x): no steady gain.
pub const MIN_PIXELS_SEVERAL: u64 = 14 * 14;

/// The fewest output pixels per image for which Winograd runs on `isa`.
pub fn min_pixels(isa: Isa) -> u64 {
    if isa.wide_products() {
        MIN_PIXELS
    } else {
        MIN_PIXELS_AVX2
    }
}

/// Fewest output pixels per image for which the planner picks 4x4 output tiles rather than
/// 2x2: measured on 2 threads in ResNet-18 (AVX-512), 4x4 tiles won on 56x56 maps (0.42
/// against 0.44 ms per conv at batch 1; with AVX2, 0.53 against 0.65) and lost on 28x28
/// (0.46 against 0.40), where a tile row of 7 tiles fills less than half of the transforms'
/// 16-tile steps and a quarter of the last tile panel is empty. Measured again on an Intel
/// Xeon (Emerald Rapids, 2026-12-07), builds' processes in turn, 28x28 maps with 4x4 tiles
/// gained no steady time: ResNet-18's convs 0.90–0.92x and ResNet-50's 0.94–0.99x within the
/// networks, the conv alone 1.01x, whole runs within the host's spread; so this stays.
pub const MIN_PIXELS_4X4: u64 = 56 * 56;

/// [`MIN_PIXELS_4X4`] where the products run at AVX2's rate (AVX2, portable code, and
/// AVX-512 on cores without [`Isa::wide_products`]), so that saving them weighs more than the
/// transforms' partial steps: on an AMD EPYC (Zen 4), AVX-512, 2 threads, ResNet-18's three
/// 28x28 convs of 128 channels took 0.69–0.76 ms each with 4x4 tiles against 0.87–0.97 with
/// 2x2; its 14x14 convs of 256 channels took 2.29 ms with 4x4 tiles against 0.90–0.99, so
/// not those.
pub const MIN_PIXELS_4X4_AVX2: u64 = 28 * 28;

/// The fewest output pixels per image for which Winograd takes 4x4 tiles on `isa`.
pub fn min_pixels_4x4(isa: Isa) -> u64 {
    if isa.wide_products() {
        MIN_PIXELS_4X4
    } else {
        MIN_PIXELS_4X4_AVX2
    }
}

/// Most tasks per thread, when there are several threads: each image's tile rows are cut
/// into at most `threads * TASKS_PER_THREAD / N` parts, as many as [`parts`] finds share the
/// products out best (more tasks balance better when one core is slowed).
const TASKS_PER_THREAD: usize = 4;

/// Most tile panels a task transforms at once (the tile rows two chunks share are
/// transformed by both).
const MAX_CHUNK_PANELS: usize = 8;

/// Most transformed input values a task holds at once (1 MiB: a core's L2 cache holds them
/// beside the transformed weights while they are multiplied). Tests use a small chunk so
/// that their small images are cut too.
const CHUNK_VALUES: usize = if cfg!(test) { 1 << 12 } else { 1 << 18 };

/// Parts to cut each image's `th` tile rows (of `tw` tiles) into, one task each, for `n`
/// images on `threads` threads. From enough for every thread to have one up to
/// `threads * TASKS_PER_THREAD` tasks in all, the count that leaves the busiest thread the
/// fewest tile columns to multiply, the tasks cut into one range per thread as
/// [`super::for_each_banded`] cuts them; then the one with the fewest tile panels (each a
/// call of the tile kernel); then the most parts. A part's columns are its whole panels of
/// `nr` tiles and its last tiles rounded up to `step` ([`Isa::tile`] multiplies a partial
/// panel in steps of a vector). On a 28x28 map with 4x4 tiles (7 rows of 7) on 2 threads and
/// AVX2's 24-tile panels, two parts (21 and 28 tiles) leave 24 + 8 columns to the busiest
/// thread; three (14, 14, 21 tiles, three panels as two parts take), which counting panels
/// alone chose, leave one thread two panels, 16 + 24 columns (48 when each panel cost all 24).
/// Measured on the AMD EPYC (Zen 4, 2 threads, alternated run by run in one process, both
/// orders; with the weights' layout of [`WinogradConv`]) against whole panels and the fewest
/// panels: ResNet-18's Winograd convs 9.0 and 10.1 ms against 10.9 and 12.4 with AVX2, 7.6
/// and 10.8 against 8.7 and 10.7 with AVX-512; ResNet-50's 13.0 and 10.2 against 15.4 and
/// 13.2 with AVX2, 12.3 and 8.6 against 12.9 and 9.9 with AVX-512 (docs/benchmarks.md).
pub(super) fn parts(
    th: usize,
    tw: usize,
    nr: usize,
    step: usize,
    n: usize,
    threads: usize,
) -> usize {
    if threads <= 1 || th == 0 {
        return 1;
    }
    let fewest = threads.div_ceil(n).clamp(1, th);
    let most = (threads * TASKS_PER_THREAD).div_ceil(n).clamp(fewest, th);
    let cost = |p: usize| {
        let part = |i: usize| (th * (i + 1) / p - th * i / p) * tw;
        let columns = |tiles: usize| tiles / nr * nr + (tiles % nr).div_ceil(step) * step;
        let tasks = n * p;
        let busiest = (0..threads)
            .map(|t| {
                (tasks * t / threads..tasks * (t + 1) / threads)
                    .map(|j| columns(part(j % p)))
                    .sum::<usize>()
            })
            .max();
        let panels = (0..p).map(|i| part(i).div_ceil(nr)).sum::<usize>();
        (busiest, panels)
    };
    (fewest..=most)
        .rev()
        .min_by_key(|&p| cost(p))
        .unwrap_or(fewest)
}

/// Tasks per thread wanted, counting each band's blocks of output channels
/// ([`channel_blocks`]).
///
/// At batch 1 on 2 threads, [`parts`] cuts a 14x14 or 28x28 map into one band of tile rows
/// per thread, so a thread the host slowed down (on the shared AMD EPYC, one of the two cores
/// often ran its multiply-adds 20-40% slower than the other for a second or so) held up each
/// Winograd conv by all of its band: ResNet-50's convs of `layer3` ran 1.65x their quiet time
/// in such minutes, the GEMM convs around them 1.2-1.4x. Cut into blocks of output channels,
/// the slowed thread's last blocks go to the other. Measured on the AMD EPYC (Zen 4), AVX2, 2
/// threads, ResNet-50, the builds' processes in turn (`steps`, 20 rounds of 30 runs, each
/// round quiet or slowed as a whole): its eleven 3x3 Winograd convs took 7.56-8.02 ms a run
/// (quiet) and 10.72-11.77 (slowed) at four tasks a thread, against 7.99-8.97 and 11.90-12.98
/// with one band a thread; at eight tasks a thread 7.85-8.33 and 9.89-10.61; at four with a
/// band's last block taken too (`STEAL_LEFT` of 1) 8.08-8.38 and 9.02-11.73 (eight: 7.88-8.56
/// and 9.35-10.24). The whole run: median 41.2 ms against 42.2 (docs/benchmarks.md). With
/// AVX-512: ResNet-50 42.1 against 42.5 ms, ResNet-18 13.36 against 13.51 (medians of 12
/// rounds, a busy host).
const BLOCK_TASKS_PER_THREAD: usize = 4;

/// Fewest blocks of another thread's band that a thread takes from at once, its own done
/// (fewer it takes only after waiting for the band's thread: `STEAL_WAIT_DIVISOR` in
/// `kernels`): taking a band's last block at once too made quiet runs slower (the thread
/// transforms the band again, about a quarter of a block's time with 2x2 tiles and more with
/// 4x4, where the band's own thread was often about to take it) more than it made slowed runs
/// faster (see [`BLOCK_TASKS_PER_THREAD`]).
const STEAL_LEFT: usize = 2;

/// Blocks of output channels (of `c_out`) to cut each of `tasks` bands of tile rows (up to
/// `band` tiles each; `c_in` input channels, tile panels of `nr`, `m x m` output tiles) into,
/// one task each, on `threads` threads: up to [`BLOCK_TASKS_PER_THREAD`] tasks per thread
/// where every band's tiles are one chunk, else one block. The tasks of one band go to the
/// same thread, which transforms the band's tiles once for all of them (`Scratch::holds`); a
/// thread with its own tasks done takes the last blocks of another's band and transforms that
/// band again for them, so a thread the host slows down loses blocks to the other.
pub(super) fn channel_blocks(
    band: usize,
    c_in: usize,
    c_out: usize,
    nr: usize,
    m: usize,
    tasks: usize,
    threads: usize,
) -> usize {
    let chunk = chunk_panels(positions(m) * pos_len(c_in, nr)) * nr;
    if threads <= 1 || band > chunk {
        return 1;
    }
    (threads * BLOCK_TASKS_PER_THREAD)
        .div_ceil(tasks.max(1))
        .clamp(1, c_out.div_ceil(MR))
}

/// Tile panels per chunk, for panels of `panel_len` values.
fn chunk_panels(panel_len: usize) -> usize {
    (CHUNK_VALUES / panel_len).clamp(1, MAX_CHUNK_PANELS)
}

/// Most bytes the transformed weights of a network may hold beyond what the packed GEMM
/// weights would (36 or 16 taps instead of 9 per channel pair). Past it, further 3x3 convs
/// take 2x2 tiles or stay direct, so that a deep network's weights in memory stay close to
/// its file's size (`run` promises weights + 64 MB). With AVX-512 only maps of at least
/// [`MIN_PIXELS`] run as Winograd on one image, so in ResNet-50 stages 1 and 2 do: 4x4 tiles
/// for three 64-channel convs (27 * 64 * 64 * 4 bytes more each) and 2x2 for three
/// 128-channel ones (7 * 128 * 128 * 4), 2.7 MB in all (ResNet-152: 4.5 MB); of the rest,
/// stage 3's first three convs run as Winograd on several images, each keeping all of its
/// 16 * 256 * 256 * 4 bytes of transformed weights beside its packed ones, 15.3 MB in all
/// (ResNet-152: two of them, 12.9 MB; `/usr/bin/time -v` of `run`, batch 1: 131.5 MiB
/// against 118.6 for ResNet-50, 261.0 against 252.9 for ResNet-152). With AVX2 (and AVX-512
/// without [`Isa::wide_products`]), stage 2 takes 4x4 tiles (27 * 128 * 128 * 4 bytes more
/// per conv) and stage 3 runs as Winograd too (7 * 256 * 256 * 4 more per conv) until the
/// budget is spent: ResNet-50's first five convs of stage 3 fit, 15.8 MB in all;
/// ResNet-152's seven convs of stage 2 take 12.4 MB, and the first of stage 3's 35 fits.
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
    /// The fewest output pixels per image for 4x4 tiles ([`min_pixels_4x4`]).
    min_pixels_4x4: u64,
}

impl Default for Budget {
    /// [`Budget::for_isa`] on the instruction set `RESNETC_CPU` picks ([`Isa::configured`]).
    fn default() -> Budget {
        Budget::for_isa(Isa::configured())
    }
}

impl Budget {
    /// The whole budget, for tiles of up to 4x4 outputs (2x2 if `RESNETC_WINOGRAD` is `2`,
    /// so that both can be measured), on `isa`.
    pub fn for_isa(isa: Isa) -> Budget {
        static LARGEST: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let largest = *LARGEST.get_or_init(|| {
            if std::env::var_os("RESNETC_WINOGRAD").is_some_and(|v| v == "2") {
                2
            } else {
                4
            }
        });
        Budget::new(largest, isa)
    }

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
            min_pixels_4x4: min_pixels_4x4(isa),
        }
    }

    /// How the next conv (as for [`applies`]; `pixels`: its output's height times width,
    /// `None` when not known) runs as Winograd, `None` for not at all: with the largest tile
    /// wanted whose extra bytes still fit, taken from the budget. Only maps of at least
    /// [`min_pixels`] run as Winograd on one image, maps of at least [`MIN_PIXELS_SEVERAL`]
    /// on several, and only maps known to have at least [`min_pixels_4x4`] with 4x4 tiles. A
    /// conv that runs as Winograd on several images only keeps its packed GEMM weights too,
    /// so all of its transformed weights are extra.
    pub fn take(
        &mut self,
        p: &Conv2dParams,
        k: [usize; 2],
        c_in: usize,
        c_out: usize,
        pixels: Option<u64>,
    ) -> Option<Pick> {
        if !applies(p, k, c_in, c_out)
            || pixels.is_some_and(|px| px < self.min_pixels.min(MIN_PIXELS_SEVERAL))
        {
            return None;
        }
        let several_only = pixels.is_some_and(|px| px < self.min_pixels);
        let extra = |m: usize| {
            let kept = if several_only { 0 } else { 9 };
            ((positions(m) - kept) as u64)
                .saturating_mul(c_out.next_multiple_of(MR) as u64)
                .saturating_mul(c_in as u64)
                .saturating_mul(4)
        };
        let large = pixels.is_some_and(|px| px >= self.min_pixels_4x4);
        let m = TILES
            .into_iter()
            .rev()
            .filter(|&m| m <= self.largest && (m == 2 || large))
            .find(|&m| extra(m) <= self.left)?;
        self.left -= extra(m);
        Some(Pick {
            tile: m,
            several_only,
        })
    }
}

/// How a conv runs as Winograd, as [`Budget::take`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    /// Output tiles of `tile x tile` (one of [`TILES`]).
    pub tile: usize,
    /// Whether it runs as Winograd only on two images or more, and as the GEMM conv on one
    /// (a map under [`min_pixels`] but at least [`MIN_PIXELS_SEVERAL`]).
    pub several_only: bool,
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
    /// `[panels][positions][c_in][MR]`, rows past `c_out` zero: a panel's weights for every
    /// position in one run, read in order as a tile panel's products go position by position
    /// (so that the CPU's prefetch, and the AVX2 tile's own a little ahead, run on into the
    /// next position's weights rather than another panel's). Measured on
    /// the AMD EPYC (Zen 4, 2 threads, alternated run by run in one process) against
    /// `[positions][panels]`, one 3x3 conv of 128 channels on a 28x28 map (4x4 tiles), three
    /// processes: AVX2 1.135, 0.921 and 1.017 ms against 1.172, 0.969 and 1.064; AVX-512
    /// 0.747, 0.744 and 0.725 against 0.754, 0.785 and 0.768.
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
        let pos = positions(m);
        let mut u = vec![0.0f32; pos * panels * c_in * MR];
        for co in 0..c_out {
            for ci in 0..c_in {
                let g = |i: usize, j: usize| f64::from(w[[co, ci, i, j]]);
                let t = transform_weight(g, m);
                let (pi, i) = (co / MR, co % MR);
                for (k, v) in t.iter().enumerate() {
                    u[((pi * pos + k) * c_in + ci) * MR + i] = *v as f32;
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

/// Bytes of scratch one thread may hold for [`conv2d_winograd`] with `c_in` input channels
/// on `w`-wide images and `m x m` output tiles: one chunk of transformed tiles, the products
/// of one tile panel, and the input rows the transform works on (saturating: an estimate
/// before anything is allocated).
pub fn scratch_bytes(w: u64, c_in: u64, m: usize) -> u64 {
    // The widest panels (32 tiles); `c_in + 1` for the gap after each position's block.
    let panel = (positions(m) as u64).saturating_mul(c_in.saturating_add(1).saturating_mul(32));
    let chunk = panel
        .saturating_mul((CHUNK_VALUES as u64 / panel.max(1)).clamp(1, MAX_CHUNK_PANELS as u64));
    transforms::scratch_len(w, m as u64, 32, MAX_CHUNK_PANELS as u64)
        .saturating_add(chunk)
        .saturating_mul(4)
}

/// Each thread's scratch, kept between calls (allocating per task would fault in fresh
/// pages every time).
#[derive(Default)]
struct Scratch {
    /// Transformed input tiles of one chunk: `[panels][positions][c_in + gap][nr]`.
    v: Vec<f32>,
    /// Products: `[positions][MR][nr]`.
    m: Vec<f32>,
    /// The output row segments of one tile panel: `[m][m nr]`.
    pair: Vec<f32>,
    input: transforms::InputScratch,
    /// Which tiles `v` holds: `(call, image, tile, tiles, rows turned)`, the conv call's
    /// number (`CALLS`), the image, the first tile of the chunk, its count and the rows its
    /// order is turned by (see `Task`), so that a task whose tiles another task on this thread
    /// transformed last (the same tile rows, other output channels) multiplies them as they
    /// are. `None` while a transform is under way.
    holds: Option<(u64, usize, usize, usize, usize)>,
}

/// Conv calls so far in this process: each call's number tells its transformed tiles apart
/// from another call's in a thread's [`Scratch`].
static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
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

/// One task of image `b`, output channel panels `p0..p1` (of `MR` channels): its band's tiles
/// `first..first + tiles` (whole tile rows) are transformed in the order that starts at tile
/// row `rot_rows` of the band and wraps around to its first (see
/// `transforms::transform_input`), and the first `used` of them in that order are multiplied
/// and written; `dst` is the image's output rows those tiles cover in those channels
/// (`[channels][rows][W_out]`, channel `p0 MR` and output row `oh0` first).
struct Task<'a> {
    b: usize,
    first: usize,
    tiles: usize,
    rot_rows: usize,
    used: usize,
    oh0: usize,
    p0: usize,
    p1: usize,
    dst: ArrayViewMut3<'a, f32>,
}

/// Whether a map of `th` tile rows of `tw` tiles cut into two bands (of `th / 2` rows and the
/// rest) on two threads shares its middle tile row out instead ([`conv`]): each band takes
/// its own `th / 2` rows, and the middle row too for half of its blocks of output channels
/// (the first band for the first half, the second for the rest), so that each thread
/// multiplies `th / 2 + 1` rows for half the channels and `th / 2` for the other half, in the
/// same pass over each block's weights. Only for an odd `th` (an even one cuts evenly), two
/// blocks or more, and where it leaves the busiest thread fewer tile columns to multiply than
/// the bands of `th / 2` and `th / 2 + 1` rows (tile panels of `nr`, the last tiles rounded
/// up to `step`): on a 7x7 tile grid with AVX2 (24-tile panels, steps of 8) the bands take
/// 24 and 32 columns and the shared row 28 each; with AVX-512 (32, 16) both are 32. The first
/// band's thread transforms the middle row too (28 tiles each, where the bands transformed 21
/// and 28).
///
/// `conv` shares the row out with 4x4 tiles only (28x28 maps in ResNet). Measured on the AMD
/// EPYC (Zen 4), AVX2, 2 threads, both ways alternated run by run in one process (`steps`, 30
/// runs a process): ResNet-18's three 28x28 convs 0.92-0.97 of their time before in quiet
/// processes (0.81-0.88 in slowed ones), ResNet-50's three 0.91-1.07 (median 0.986 of 12
/// processes: level to slightly faster); with 2x2 tiles too, ResNet-18's 14x14 convs
/// 0.95-0.99 but ResNet-50's 0.985-1.092, slower in 7 of 9 processes (their input is the
/// output of a 1x1 conv split by channels, so presumably the extra row's input comes from the
/// other core's cache).
pub(super) fn shares_middle_row(
    th: usize,
    tw: usize,
    nr: usize,
    step: usize,
    parts: usize,
    blocks: usize,
) -> bool {
    let columns = |tiles: usize| tiles / nr * nr + (tiles % nr).div_ceil(step) * step;
    let (less, more) = (columns(th / 2 * tw), columns((th / 2 + 1) * tw));
    parts == 2 && th % 2 == 1 && blocks >= 2 && less + more < 2 * more
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
    conv(x, wc, residual, None, relu, isa, pool, None)
}

/// [`conv2d_winograd`] with a residual the caller no longer needs, whose memory the output
/// takes (each value of the residual is read, then written over, by the same task); the same
/// bits as [`conv2d_winograd`].
pub fn conv2d_winograd_into(
    x: ArrayView4<f32>,
    wc: &WinogradConv,
    residual: Array4<f32>,
    relu: bool,
    isa: Isa,
    pool: Option<&rayon::ThreadPool>,
) -> Array4<f32> {
    conv(x, wc, None, Some(residual), relu, isa, pool, None)
}

/// [`conv2d_winograd`], the residual given either as a view (`residual`) or owned (`into`),
/// whose memory the output then takes when it is in standard layout. Else the output's
/// memory comes from `spare` where it has some (every value is written).
#[allow(clippy::too_many_arguments)]
pub(super) fn conv(
    x: ArrayView4<f32>,
    wc: &WinogradConv,
    residual: Option<ArrayView4<f32>>,
    into: Option<Array4<f32>>,
    relu: bool,
    isa: Isa,
    pool: Option<&rayon::ThreadPool>,
    spare: Option<&mut super::Spare>,
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
    for r in residual
        .iter()
        .chain(into.as_ref().map(|r| r.view()).iter())
    {
        assert_eq!(
            r.dim(),
            (n, wc.c_out, ho, wo),
            "the shape checker guarantees the residual has the output's shape"
        );
    }
    // The output: the residual itself when it can be written over (a task reads each of its
    // values just before it writes the sum there), else a fresh buffer (and a residual given
    // to be written over is then read like any other). Written over, the residual's memory
    // is read and written once, where a fresh output is a second stream of the same size
    // (ResNet-18's 3x3 convs on 56x56 maps spent 0.12 ms each reading their residual).
    let (mut out, in_place, kept) = match into {
        Some(r) if r.is_standard_layout() => (r, true, None),
        kept => (super::output(spare, (n, wc.c_out, ho, wo)), false, kept),
    };
    let residual = residual.or(kept.as_ref().map(|r| r.view()));
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
    // Each image's tile rows cut into parts (a few per thread at batch 1, whole images when
    // there are enough of them), one task each: a task transforms its own tiles and multiplies
    // them, so the transformed tiles stay in the cache of the core that made them.
    let parts = parts(th, geo.tw, nr, isa.tile_step(), n, threads);
    let band = th.div_ceil(parts) * geo.tw;
    let blocks = channel_blocks(band, c_in, wc.c_out, nr, m, n * parts, threads);
    // The middle tile row shared out, with 4x4 tiles only (see `shares_middle_row`).
    let shared_row = m == 4 && shares_middle_row(th, geo.tw, nr, isa.tile_step(), parts, blocks);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let panels = wc.c_out.div_ceil(MR);
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout is contiguous");
    let residual = residual.as_ref().map(|r| r.as_standard_layout());
    let rs = residual
        .as_ref()
        .map(|r| r.as_slice().expect("standard layout is contiguous"));
    let plane_in = c_in * h * w;
    let mut tasks = Vec::with_capacity(n * parts * blocks);
    let tw = geo.tw;
    let block_panels = |block: usize| (panels * block / blocks, panels * (block + 1) / blocks);
    for (b, image) in out.axis_iter_mut(Axis(0)).enumerate() {
        if shared_row {
            // Two bands, `th / 2` rows each and the middle row `s` shared out by blocks.
            let s = th / 2;
            let (mut ours, mut theirs) = (Vec::with_capacity(blocks), Vec::new());
            let mut rest = image;
            for block in 0..blocks {
                let (p0, p1) = block_panels(block);
                let channels = (p1 * MR).min(wc.c_out) - p0 * MR;
                let (channels, others) = rest.split_at(Axis(0), channels);
                rest = others;
                let cut = if block < blocks / 2 { s + 1 } else { s };
                let (top, bottom) = channels.split_at(Axis(1), (m * cut).min(ho));
                ours.push(Task {
                    b,
                    first: 0,
                    tiles: (s + 1) * tw,
                    rot_rows: 0,
                    used: cut * tw,
                    oh0: 0,
                    p0,
                    p1,
                    dst: top,
                });
                theirs.push(Task {
                    b,
                    first: s * tw,
                    tiles: (th - s) * tw,
                    rot_rows: 1,
                    used: (th - cut) * tw,
                    oh0: m * cut,
                    p0,
                    p1,
                    dst: bottom,
                });
            }
            tasks.extend(ours.into_iter().chain(theirs));
            continue;
        }
        let mut rest = image;
        for part in 0..parts {
            let (r0, r1) = (th * part / parts, th * (part + 1) / parts);
            let rows = (m * r1).min(ho) - m * r0;
            let (mut band, tail) = rest.split_at(Axis(1), rows);
            rest = tail;
            for block in 0..blocks {
                let (p0, p1) = block_panels(block);
                let channels = (p1 * MR).min(wc.c_out) - p0 * MR;
                let (dst, others) = band.split_at(Axis(0), channels);
                band = others;
                tasks.push(Task {
                    b,
                    first: r0 * tw,
                    tiles: (r1 - r0) * tw,
                    rot_rows: 0,
                    used: (r1 - r0) * tw,
                    oh0: m * r0,
                    p0,
                    p1,
                    dst,
                });
            }
        }
    }
    let run = |t: Task| {
        SCRATCH.with_borrow_mut(|s| {
            let x_b = &xs[t.b * plane_in..][..plane_in];
            let r_b = rs.map(|r| &r[t.b * wc.c_out * ho * wo..][..wc.c_out * ho * wo]);
            isa.vectorized(
                #[inline(always)]
                || {
                    by_widths!(
                        nr,
                        m,
                        run_task(t, call, x_b, r_b, in_place, wc, &geo, relu, isa, s)
                    )
                },
            );
        })
    };
    // Each thread keeps the same band of rows from one layer to the next (see
    // `for_each_banded`).
    // A thread that has done its own tasks takes another band's blocks at once only while two
    // or more are left there (`STEAL_LEFT`), the last one after a wait for the band's thread
    // (`STEAL_WAIT_DIVISOR` in `kernels`).
    let left = if blocks > 1 { STEAL_LEFT } else { 1 };
    super::for_each_banded_from(pool, tasks, left, run);
    out
}

/// Runs one task: its tiles, a chunk of panels of `NR` at a time, are transformed, then for
/// each panel and each channel panel multiplied position by position and transformed into the
/// output, to which the residual `r_b` (the image's), or with `in_place` the values the output
/// holds (the residual, written over), is added. Inlined into [`Isa::vectorized`], so its loops
/// use the instruction set's vectors.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run_task<const NR: usize, const M: usize>(
    t: Task,
    call: u64,
    x_b: &[f32],
    r_b: Option<&[f32]>,
    in_place: bool,
    wc: &WinogradConv,
    geo: &Geo,
    relu: bool,
    isa: Isa,
    s: &mut Scratch,
) {
    let Task {
        b,
        first,
        tiles,
        rot_rows,
        used,
        oh0,
        p0,
        p1,
        mut dst,
    } = t;
    let c_in = geo.c_in;
    let pos = positions(M);
    let panel_len = pos * pos_len(c_in, NR);
    let chunk = chunk_panels(panel_len) * NR;
    let grow = |v: &mut Vec<f32>, len: usize| {
        if v.len() < len {
            v.resize(len, 0.0);
        }
    };
    grow(&mut s.m, pos * MR * NR);
    grow(&mut s.pair, M * M * NR);
    // Turned rows come in one chunk (`conv` turns them only where the band is one).
    debug_assert!(
        rot_rows == 0 || tiles <= chunk,
        "a band whose rows are turned is one chunk"
    );
    let rows_t = dst.dim().1;
    let mut y = [[0.0f32; NR]; 16];
    // Columns `c0..c0 + width` of the band's order (see `Task`), the tiles they hold: up to two
    // runs of consecutive tiles, `(first tile, tiles, first column)` as `write_tiles` takes them.
    let turn = rot_rows * geo.tw;
    let runs = |c0: usize, width: usize| {
        let split = tiles - turn;
        let a = split.saturating_sub(c0).min(width);
        [
            (first + turn + c0, a, 0),
            (first + (c0 + a).saturating_sub(split), width - a, a),
        ]
    };
    for c0 in (0..used).step_by(chunk) {
        // The chunk's transformed tiles, its products' columns.
        let (held, width) = (chunk.min(tiles - c0), chunk.min(used - c0));
        grow(&mut s.v, held.div_ceil(NR) * panel_len);
        let v = &mut s.v[..held.div_ceil(NR) * panel_len];
        let key = (call, b, first + c0, held, rot_rows);
        if s.holds != Some(key) {
            s.holds = None;
            transforms::transform_input::<NR, M>(
                x_b,
                geo,
                first + c0,
                held,
                rot_rows,
                v,
                &mut s.input,
                isa,
            );
            s.holds = Some(key);
        }
        for (jp, vp) in v
            .chunks_exact(panel_len)
            .take(width.div_ceil(NR))
            .enumerate()
        {
            let col = c0 + jp * NR;
            let width = NR.min(c0 + width - col);
            let runs = runs(col, width);
            for pi in p0..p1 {
                // The output lines this panel's channels write are asked for, to write, before
                // its products: fresh memory or the residual, both most likely last touched
                // by the other thread. ResNet-18, 2 threads, AVX-512, with and without
                // alternated run by run, both orders: its Winograd convs 1-6% faster each.
                for co in pi * MR..(pi * MR + MR).min(geo.c_out) {
                    let plane = dst.index_axis(Axis(0), co - p0 * MR);
                    let plane = plane
                        .to_slice()
                        .expect("whole rows of one channel of a standard-layout image");
                    for (first, n, at) in runs {
                        tile_rows::<NR, M>(geo, first, n, at, oh0, |_, out| {
                            isa.prefetch_write(&plane[out])
                        });
                    }
                }
                // A partial panel's products cost in proportion to its tiles (`Isa::tile`).
                let u = &wc.u[pi * pos * c_in * MR..][..pos * c_in * MR];
                for (k, a) in u.chunks_exact(c_in * MR).enumerate() {
                    let b = &vp[k * pos_len(c_in, NR)..][..c_in * NR];
                    isa.tile(c_in, a, b, &mut s.m[k * MR * NR..][..MR * NR], width);
                }
                for i in 0..MR.min(geo.c_out - pi * MR) {
                    transforms::transform_output::<NR, M>(&s.m, i, &mut y);
                    transforms::interleave::<NR, M>(&y, &mut s.pair);
                    let co = pi * MR + i;
                    let bias = wc.bias[co];
                    let res = r_b.map(|rb| &rb[(co * geo.ho + oh0) * geo.wo..][..rows_t * geo.wo]);
                    let mut plane = dst.index_axis_mut(Axis(0), co - p0 * MR);
                    let plane = plane
                        .as_slice_mut()
                        .expect("whole rows of one channel of a standard-layout image");
                    let pair = &s.pair[..M * M * NR];
                    let res = match res {
                        Some(r) => Residual::From(r),
                        None if in_place => Residual::InPlace,
                        None => Residual::None,
                    };
                    for run in runs {
                        write_tiles::<NR, M>(pair, geo, run, oh0, bias, res, relu, plane);
                    }
                }
            }
        }
    }
}

/// Writes the `M x M` values of tiles `first..first + width` of one channel, columns
/// `col..col + width` of their panel (`(first, width, col)`), into `plane`, the channel's
/// output rows from `oh0` on (as is a residual `Residual::From`):
/// `relu?(y + bias + residual)`, clipped at the output's edge; `rows` holds the panel's output
/// rows side by side (`[M][M NR]`, from [`transforms::interleave`]).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn write_tiles<const NR: usize, const M: usize>(
    rows: &[f32],
    geo: &Geo,
    (first, width, col): (usize, usize, usize),
    oh0: usize,
    bias: f32,
    res: Residual,
    relu: bool,
    plane: &mut [f32],
) {
    tile_rows::<NR, M>(geo, first, width, col, oh0, |y, out| {
        let res = match res {
            Residual::From(r) => Residual::From(&r[out.clone()]),
            other => other,
        };
        let y = &rows[y..][..out.len()];
        transforms::write_act(&mut plane[out], y, res, bias, relu);
    });
}

/// The output rows of tiles `first..first + width` of one channel, columns `col..col + width`
/// of their panel, clipped at the output's edge: for each, `f(at, out)` with `at` the row's
/// first value in [`write_tiles`]' `rows` and `out` its values in the channel's plane from
/// output row `oh0` on.
#[inline(always)]
fn tile_rows<const NR: usize, const M: usize>(
    geo: &Geo,
    first: usize,
    width: usize,
    col: usize,
    oh0: usize,
    mut f: impl FnMut(usize, std::ops::Range<usize>),
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
            f(
                dy * M * NR + M * (col + j),
                (oh - oh0) * geo.wo + c0..(oh - oh0) * geo.wo + c1,
            );
        }
        j += run;
    }
}
