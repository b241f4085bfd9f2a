//! The fast convolution: weights packed once into the micro-kernel's layout, the input read
//! in place by the tile kernel (no im2col copy), and bias, residual add and ReLU fused into the
//! pass that writes the output ([`conv2d_packed_into`] writes it over a residual the caller
//! gives up, when the reduction is one block).
//!
//! [`PackedConv::new`] lays a conv's weights out at load time as `MR`-channel panels, k-major
//! (`[groups][c_out/groups / MR][K][MR]`, `K = c_in/groups * K_h * K_w`, rows past `c_out`
//! zero), which is the order the tile kernel ([`crate::machine::simd`]) reads them in.
//! [`conv2d_packed`] computes the output on a grid whose rows are as wide as the padded input
//! (divided by the column stride): on that grid, reduction row `k` (one channel and tap) of every
//! output pixel is the input value at a fixed offset from the pixel's position, so the tile kernel
//! reads each panel row straight from the input ([`crate::machine::simd::Isa::tile_rows`]) and the
//! few grid columns past the output's width are computed and dropped. A conv with padding or a
//! stride first copies its input once into that layout (zero borders; for a stride, the phase
//! planes its taps read, so that each tap reads consecutive values); any other conv reads its input
//! as it is. The output of each image and group is split into tasks (chunks of grid positions, and
//! blocks of output channels when there are few pixels) run on the pool by `for_each_banded` (in
//! `kernels`), position-major where the activations weigh at least as much as the weights (each
//! thread then keeps the same rows from layer to layer) and channel-major elsewhere (with several
//! images, each block of output channels through every image in turn, so that its weights are read
//! once: `SHARED_BLOCK_BYTES`); every task owns a disjoint part of the output and computes each of
//! its values whole, in the same order whatever the split, so the result does not depend on the
//! thread count. Within a task the reduction is cut into blocks of at most [`KC`] so that the
//! weights of one block stay in L2. A reduction of one block (most convs) on AVX-512 writes each
//! tile from the kernel's registers ([`crate::machine::simd::Isa::tile_rows_out`],
//! [`crate::machine::simd::Isa::tile_pixels_out`]); where each of a pixel panel's tiles is one
//! run of all its columns (a 1x1 conv's, but for the map's last panel), one call runs all the
//! task's weight panels against it ([`crate::machine::simd::Isa::tile_rows_out_panels`]), so
//! that a short reduction does not pay a call and its checks per tile (with AVX2, whose tile
//! reads each row of its pixel panel twice, from a copy of the panel's rows side by side
//! where many weight panels read it: `PACK_PANELS`). The others store each
//! tile and write it out from there (`Out::write`), with the same sums.
//!
//! On narrow outputs ([`NARROW`] pixels wide or less: ResNet's last two stages) the grid's
//! panels would be a quarter padding columns and slots past the last pixel, so there
//! [`PackedConv::for_width`] packs the weights in `CR`-channel panels for the transposed tile
//! ([`crate::machine::simd::Isa::tile_pixels`]) where the CPU has AVX-512 or AVX2 (with AVX2,
//! on maps wider than 7 only for reductions of at least [`NARROW_TAPS_AVX2`]): each task's
//! output rows are cut into tiles of at most `PR` pixels (two short rows to a tile), and only
//! real pixels are computed; with AVX2, whose tile goes through memory in passes of
//! reduction rows, a task's tiles go in groups of up to [`PIXEL_GROUP`] pixels
//! ([`crate::machine::simd::Isa::tile_pixels_group`]), each pass's weights read once for the
//! group. With AVX-512 it does the same on outputs up to [`WIDE`] pixels
//! wide whose reduction has at least [`WIDE_TAPS`] rows (the stride-2 3x3 convs on 28x28
//! maps). In portable code the in-place tile reads those panels in
//! `MR`-channel parts, so either layout runs anywhere. The result equals
//! [`super::conv2d_ref`] up to `f32` rounding (property tests check both layouts). No `unsafe`
//! here.

use ndarray::{Array4, ArrayView1, ArrayView4, ArrayViewMut2, Axis};
use rayon::prelude::*;
use std::cell::RefCell;

use super::conv::{Conv2dParams, out_hw};
use crate::machine::simd::{Act, CR, Isa, MR, PIXEL_GROUP, PR, Rows, Span, TR, TileOut, with_act};

/// Largest reduction block. The whole reduction of a 3x3 conv on 128 channels is one block, so
/// most outputs are written once; a task's weight panels for one block stay in L2 while its
/// pixel panels pass.
pub const KC: usize = 1152;

/// Largest reduction block of the transposed tile, whose tiles are written out transposed (a
/// costlier write than the in-place tile's): the whole reduction of a 3x3 conv on 512
/// channels, a `CR`-channel panel of 576 KiB that stays in L2 while a task's tiles pass.
pub const KC_PIXELS: usize = 4608;

/// Grid positions per task (rounded to whole panels).
pub const NC: usize = 128;

/// Largest input (values per image and group) for which a task multiplies each weight panel
/// by all its pixel panels in turn rather than each pixel panel by all its weight panels:
/// 192 KiB, which stays in L2 beside the weights streaming past (the last stages' 7x7 maps,
/// whose many weights would otherwise be read from memory once per pixel panel). In tests, 1K
/// values, so that the property tests' small shapes take both orders.
pub(super) const SMALL_INPUT: usize = if cfg!(test) { 1 << 10 } else { 48 << 10 };

/// How many tiles ahead the transposed tile's output lines are asked for (see
/// `run_task_pixels`): each tile writes runs of up to 14 pixels in 32 planes, too many
/// streams for the hardware prefetcher. Measured on the AMD EPYC (Zen 5), ResNet-50 with
/// AVX-512 on 2 threads, alternated in one process: at batch 8 the 1x1 convs 256 -> 1024 on
/// 14x14 maps over their residual took 2.06-2.09 ms four tiles ahead (2.05-2.11 two,
/// 2.05-2.06 eight) against 2.12-2.17 with each tile's own lines asked for as it starts, 3.0
/// with none; at batch 1, quiet, 0.259-0.263 ms 2 to 8 tiles ahead against 0.268 with each
/// tile's own lines; the whole runs 155.0-155.9 against 156.8 ms at batch 8, 19.0-19.1
/// against 19.3 at batch 1. Under load on the memory system at batch 1 (the same convs
/// 0.44-0.47 ms) none of these differed.
pub(super) const LEAD: usize = 4;

/// Fewest bytes of input (all images) from which a 1x1 conv's input is taken to come from
/// memory rather than from a cache: each pixel panel's rows (one per input channel, as many
/// streams) are then asked for while the panel before is multiplied, a share of them before
/// each of its weight panels, far enough ahead for memory (the kernel's own prefetch, 16 rows
/// ahead within a tile, suits a cache). Measured on the AMD EPYC (Zen 5), ResNet-50 with AVX-512
/// on 2 threads, alternated in one process: at batch 8 (inputs of 12.8 and 25.7 MB) the 1x1
/// convs 256 -> 64 on 56x56 maps took 1.99-2.10 ms against 2.15-2.23, those 512 -> 128 on 28x28
/// 1.89-1.97 against 1.97-2.05, the run 153.7-159.2 against 156.8-160.2 ms (loaded); at
/// batch 1 (inputs of 3.2 MB at most) the same prefetch made those convs 5% slower, and with
/// every conv the stem and the stride-2 3x3 convs slower too. In tests, 32 KiB, so that the
/// property tests' 1x1 convs take each of the three ways: a small input (up to `SMALL_INPUT`
/// values an image) each weight panel against every pixel panel, a larger one each pixel
/// panel against every weight panel (in one call, `Isa::tile_rows_out_panels`, where the
/// tiles are written from registers), and from 32 KiB on asking for the next pixel panel's
/// rows so.
pub(super) const FAR_INPUT: usize = if cfg!(test) { 32 << 10 } else { 8 << 20 };

/// Most bytes of weights in one block of output channels when a conv whose weights outweigh
/// its activations runs on several images (512 KiB, a quarter of a core's L2; a few KiB in
/// tests, so that their small convs are cut too). Its tasks then go block by block, each
/// block through every image in turn, and each thread takes a band of blocks: the block's
/// weights come from memory once and stay in L2 for the other images. Before, tasks went image
/// by image, and each thread, taking a band of images, streamed every weight of the conv once
/// per image. Measured at batch 8 (passes of two images, 2 threads, Intel Xeon, 2026-12-01,
/// both orders alternated in one process): ResNet-18 with AVX-512 176 against 187 ms (median),
/// its 7x7 convs 1.94–2.01 against 2.02–2.19 ms per pass; with AVX2 223 against 235 ms.
const SHARED_BLOCK_BYTES: usize = if cfg!(test) { 4 << 10 } else { 512 << 10 };

/// Fewest weight panels against one pixel panel for which a task copies the pixel panel's rows
/// side by side before the tiles read them, where the in-place tile reads each row more than
/// once per weight panel ([`Isa::panel_reads`]: AVX2, whose halves read it twice), and the
/// tiles are written from registers (`Isa::tile_rows_out_panels`: the 1x1 convs on larger
/// maps). In place, a pixel panel's rows lie a channel plane apart and each row of 24 values
/// (96 bytes) spans two or three cache lines, so a panel of 256 rows takes 32 KiB of cache or
/// more (a core's L1 data cache holds 32 KiB on that machine), read twice per weight panel;
/// copied, it is 24 KiB of consecutive lines. Measured on the AMD EPYC (Zen 4), ResNet-50 with
/// AVX2 on 2 threads, alternated run by run in one process (median of 30 runs, both orders):
/// its GEMM convs 34.68 against 35.42 ms and 38.00 against 39.12; the stride-2 1x1 conv 256 ->
/// 512 1.25 against 1.48 ms and 1.29 against 1.61, the 1x1 conv 512 -> 256 on 28x28 1.22
/// against 1.44 and 1.28 against 1.53. From 8 panels on, the copy lost as much on 56x56 maps as
/// it gained on 28x28 ones (the 1x1 convs 256 -> 64 at 56x56 0.67 against 0.60 ms and 0.77
/// against 0.70; 512 -> 128 at 28x28, whose tasks hold 8 panels on two threads, 0.67 against
/// 0.76 and 0.76 against 0.83; the GEMM convs level). With AVX-512 (one read per weight panel)
/// the same copy lost 1-2% (29.25 against 28.94 ms, 30.64 against 30.10). In tests, 3, so that
/// the property tests' 1x1 convs take both ways.
pub(super) const PACK_PANELS: usize = if cfg!(test) { 3 } else { 16 };

/// Tasks per thread wanted for load balance, when there are several threads.
const TASKS_PER_THREAD: usize = 4;

/// Tasks per thread wanted for the transposed tile's convs ([`Split::rows`]), whose maps are
/// small (at most [`WIDE`] pixels wide) and whose tasks mostly split the output channels: one
/// weight panel to a task where there are enough. A thread that the host slows down then
/// loses more of its range to the other (`super::for_each_banded`). Measured on the AMD EPYC
/// (Zen 5, AVX-512, 2 threads), alternated run by run in one process against
/// [`TASKS_PER_THREAD`]: under load, ResNet-18 10.20 and 9.84 ms against 10.45 and 10.39, and
/// 10.44 and 10.38 against 10.88 and 10.60; ResNet-50 26.06 and 25.93 against 26.94 and 26.48;
/// quiet, level (ResNet-18 9.65 and 9.33 against 9.76 and 9.36, ResNet-50 22.37 and 21.96
/// against 22.37 and 21.87, at batch 8 185.8 and 187.2 against 184.9 and 190.3).
const TASKS_PER_THREAD_PIXELS: usize = 16;

/// Widest output (in pixels) for which [`panel_width`] picks the transposed tile
/// ([`Isa::tile_pixels`]): on a narrow map, the panels of [`Isa::tile_rows`] run over the
/// padding columns and past the last pixel (a 7x7 map fills 49 of 64 slots), where the
/// transposed tile computes exactly the output's pixels.
pub const NARROW: u64 = 14;

/// Widest output on which AVX2 takes the transposed tile whatever the reduction's length: a
/// 7x7 map fills 49 of the in-place tile's 72 slots (three panels of 24 pixels).
pub const NARROWEST: u64 = 7;

/// With AVX2, the shortest reduction for which outputs wider than [`NARROWEST`] (up to
/// [`NARROW`]) take the transposed tile. There a 1x1 conv's 196 pixels fill 196 of the in-place
/// tile's 216 slots, and with a short reduction the transposed tile's output pass weighs
/// more than the slots it saves. Measured in ResNet-50 with AVX2 on 2 threads (2026-12-01,
/// Intel Xeon, `RESNETC_CPU=avx2`, the two plans alternated in one process, when the tile
/// went through a buffer and was turned channel-major value by value): its six 1x1 convs
/// 256 -> 1024 on 14x14 maps took 0.88–0.93 ms on the in-place tile against 1.04–1.11 on the
/// transposed one; the stride-2 downsample 512 -> 1024 (a reduction of 512) was level (1.76
/// against 1.82), and the 1x1 convs 1024 -> 256 ran faster transposed (0.79 against 0.85 ms
/// alone). With the tile written from registers (`Isa::tile_pixels_out`), on the AMD EPYC
/// (Zen 4), 2 threads, builds' processes in turn (eight each, `steps`, four 1x1 convs 1024
/// -> 256 -> 1024 on 14x14 maps): a limit of 256 ran the 256 -> 1024 ones level (0.95–1.02
/// of the in-place tile's medians), so the limit stays.
pub const NARROW_TAPS_AVX2: usize = 512;

/// Widest output for which [`panel_width`] picks the transposed tile for a long reduction
/// (at least [`WIDE_TAPS`]) where the instruction set runs it fast: on a 28x28 map the
/// in-place tile reads each of its 1,152 input rows (a stride-2 3x3 conv on 128 channels)
/// from L2 once per 8 output channels, where the transposed tile reads each weight row for 14
/// pixels at a time. Measured on an Intel Xeon with AVX-512: ResNet-50's stride-2 3x3 conv at
/// 28x28 1.44 -> 1.15 ms, ResNet-18's 0.76 -> 0.66 ms; the 1x1 convs there (reductions of 64
/// to 512) gained nothing or lost. With AVX2 (`32 x 3` parts of the tile) the gain was not
/// consistent there while its passes were 64 reduction rows long; with passes of 128 rows,
/// measured on the AMD EPYC (Zen 4), 2 threads, both plans alternated in one process in both
/// orders: ResNet-50's stride-2 3x3 conv at 28x28 1.73 against 1.88 ms and 1.88 against 2.17,
/// ResNet-18's 0.75 against 0.84, 1.04 against 1.06 and 1.22 against 1.29, and without
/// Winograd ResNet-18's 3x3 convs of 128 channels at 28x28 1.90–1.95 against 2.16–2.18 and
/// 1.97–2.03 against 2.16–2.24 (a busy host).
pub const WIDE: u64 = 28;

/// Shortest reduction (`C_in/groups * K_h * K_w`) for which outputs up to [`WIDE`] pixels
/// wide take the transposed tile.
pub const WIDE_TAPS: usize = 576;

/// Output channels per weight panel for a conv whose output is `out_w` pixels wide (when
/// known) with a reduction of `taps`, to run with `isa`: [`CR`] for the transposed tile where
/// it is faster (maps up to [`NARROW`] wide where the instruction set runs it fast, with AVX2
/// only for reductions of at least [`NARROW_TAPS_AVX2`] on maps wider than [`NARROWEST`]; up
/// to [`WIDE`] for reductions of at least [`WIDE_TAPS`]), else [`MR`].
pub fn panel_width(out_w: Option<u64>, taps: usize, isa: Isa) -> usize {
    match out_w {
        Some(w)
            if w <= NARROW
                && isa.fast_pixels()
                && (isa.whole_pixel_tile() || w <= NARROWEST || taps >= NARROW_TAPS_AVX2) =>
        {
            CR
        }
        Some(w) if w <= WIDE && taps >= WIDE_TAPS && isa.fast_pixels() => CR,
        _ => MR,
    }
}

/// A convolution's weights in the tile kernel's layout, with its bias and hyper-parameters.
#[derive(Debug, Clone)]
pub struct PackedConv {
    /// `[groups][panels][k][width]`.
    a: Vec<f32>,
    /// Output channels per panel: [`MR`] for [`Isa::tile_rows`], [`CR`] for
    /// [`Isa::tile_pixels`].
    width: usize,
    /// One per output channel (zeros when the conv has none).
    bias: Vec<f32>,
    c_out: usize,
    cin_g: usize,
    kh: usize,
    kw: usize,
    p: Conv2dParams,
}

impl PackedConv {
    /// Pack `w` (`[C_out, C_in/groups, K_h, K_w]`, PyTorch layout) and its bias for
    /// [`Isa::tile_rows`].
    ///
    /// # Preconditions
    /// `groups` divides `C_out`, and the bias has `C_out` values (the shape checker guarantees
    /// both; panics otherwise).
    pub fn new(w: ArrayView4<f32>, bias: Option<ArrayView1<f32>>, p: Conv2dParams) -> PackedConv {
        Self::with_width(w, bias, p, MR)
    }

    /// Pack for the tile that suits an output `out_w` pixels wide (when known) on `isa` (see
    /// [`panel_width`]). Either layout computes any shape on any instruction set.
    pub fn for_width(
        w: ArrayView4<f32>,
        bias: Option<ArrayView1<f32>>,
        p: Conv2dParams,
        out_w: Option<u64>,
        isa: Isa,
    ) -> PackedConv {
        let taps = w.dim().1 * w.dim().2 * w.dim().3;
        Self::with_width(w, bias, p, panel_width(out_w, taps, isa))
    }

    /// Pack for the transposed tile ([`Isa::tile_pixels`]), whatever the output's size.
    pub fn transposed(
        w: ArrayView4<f32>,
        bias: Option<ArrayView1<f32>>,
        p: Conv2dParams,
    ) -> PackedConv {
        Self::with_width(w, bias, p, CR)
    }

    /// Pack in panels of `width` output channels ([`MR`] or [`CR`]).
    pub(super) fn with_panels(
        w: ArrayView4<f32>,
        bias: Option<ArrayView1<f32>>,
        p: Conv2dParams,
        width: usize,
    ) -> PackedConv {
        assert!(width == MR || width == CR, "panels of MR or CR channels");
        Self::with_width(w, bias, p, width)
    }

    /// Output channels per panel.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// The conv's hyper-parameters.
    pub(super) fn params(&self) -> Conv2dParams {
        self.p
    }

    /// The packed weights, `[groups][panels][k][width]`.
    pub(super) fn panels_data(&self) -> &[f32] {
        &self.a
    }

    /// One bias per output channel.
    pub(super) fn bias(&self) -> &[f32] {
        &self.bias
    }

    fn with_width(
        w: ArrayView4<f32>,
        bias: Option<ArrayView1<f32>>,
        p: Conv2dParams,
        width: usize,
    ) -> PackedConv {
        let (c_out, cin_g, kh, kw) = w.dim();
        assert!(
            p.groups >= 1 && c_out.is_multiple_of(p.groups),
            "the shape checker guarantees groups divides c_out"
        );
        let k = cin_g * kh * kw;
        let cout_g = c_out / p.groups;
        let panels = cout_g.div_ceil(width);
        let w = w.as_standard_layout();
        let ws = w.as_slice().expect("standard layout is contiguous");
        let mut a = vec![0.0f32; p.groups * panels * k * width];
        for g in 0..p.groups {
            for pi in 0..panels {
                let dst = &mut a[(g * panels + pi) * k * width..][..k * width];
                for i in 0..width.min(cout_g - pi * width) {
                    let row = &ws[(g * cout_g + pi * width + i) * k..][..k];
                    for (kk, &v) in row.iter().enumerate() {
                        dst[kk * width + i] = v;
                    }
                }
            }
        }
        let bias = super::conv::bias_or_zeros(bias, c_out);
        PackedConv {
            a,
            width,
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

/// Bytes of scratch one thread may hold for [`conv2d_packed`]: a task's accumulator tile, its
/// pixel panels' runs of output pixels (at most one run per position, 3 values each), its
/// edge panel and its copied pixel panel (each a reduction block of `nr` values per row, and
/// the rows' offsets); or the transposed tile's accumulators.
pub fn scratch_bytes() -> usize {
    let nr = 32;
    let rows = MR * nr * std::mem::size_of::<f32>()
        + (NC / nr + 1) * nr * 3 * std::mem::size_of::<usize>()
        + 2 * KC * (nr * std::mem::size_of::<f32>() + std::mem::size_of::<usize>());
    rows.max(CR * PIXEL_GROUP * std::mem::size_of::<f32>())
}

thread_local! {
    /// The calling thread's prepared input (padded, phase-split), kept between calls: a fresh
    /// buffer per conv would fault in fresh pages every time.
    static PREPARED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Where a conv reads its input, so that every tap of every output pixel is one value at a
/// fixed distance from the pixel's position: the output is computed on a grid of rows `wg`
/// wide (output pixel `(oh, ow)` at grid position `oh * wg + ow`; positions with `ow >= wo` are
/// computed and dropped), and each input channel is laid out as phase planes of `hp x wg`.
/// Phase `(fr, fc)` holds the zero-padded input's rows `fr, fr + sh, ...` and columns
/// `fc, fc + sw, ...`; only the phases some tap reads are kept. Without padding or stride this
/// is the input itself (one phase, `wg = W`), read in place.
#[derive(Clone, Debug)]
struct Grid {
    h: usize,
    w: usize,
    hp: usize,
    wg: usize,
    ho: usize,
    wo: usize,
    /// The phases kept, `(fr, fc)`, in order.
    phases: Vec<(usize, usize)>,
    /// Whether the input has to be copied into this layout (padding or stride).
    copy: bool,
    stride: [usize; 2],
    pad: [usize; 2],
}

impl Grid {
    fn new(h: usize, w: usize, kh: usize, kw: usize, p: &Conv2dParams) -> Grid {
        let (ho, wo) = out_hw(h, w, kh, kw, p);
        let [sh, sw] = p.stride;
        let copy = p.pad != [0, 0] || p.stride != [1, 1];
        let (hp, wg) = (
            (h + 2 * p.pad[0]).div_ceil(sh),
            (w + 2 * p.pad[1]).div_ceil(sw),
        );
        let mut phases = Vec::new();
        for ki in 0..kh {
            for kj in 0..kw {
                let f = ((ki * p.dilation[0]) % sh, (kj * p.dilation[1]) % sw);
                if !phases.contains(&f) {
                    phases.push(f);
                }
            }
        }
        phases.sort_unstable();
        Grid {
            h,
            w,
            hp,
            wg,
            ho,
            wo,
            phases,
            copy,
            stride: p.stride,
            pad: p.pad,
        }
    }

    /// Values per channel in the layout.
    fn chan_len(&self) -> usize {
        self.phases.len() * self.hp * self.wg
    }

    /// Grid positions that hold output pixels, up to the last one.
    fn len(&self) -> usize {
        if self.ho == 0 || self.wo == 0 {
            0
        } else {
            (self.ho - 1) * self.wg + self.wo
        }
    }

    /// Output pixels before grid position `q` (which lies in `0..=len()`).
    fn pixels_before(&self, q: usize) -> usize {
        (q / self.wg) * self.wo + (q % self.wg).min(self.wo)
    }

    /// Offset of reduction row `k` (channel, then tap, as the weights are packed) from a
    /// pixel's grid position, within one group's channels.
    fn offsets(&self, cin_g: usize, kh: usize, kw: usize, dilation: [usize; 2]) -> Vec<usize> {
        let [sh, sw] = self.stride;
        let plane = self.hp * self.wg;
        // Each tap's offset within a channel, found once: the same in every channel.
        let taps: Vec<usize> = (0..kh * kw)
            .map(|t| {
                let (tr, tc) = ((t / kw) * dilation[0], (t % kw) * dilation[1]);
                let f = self
                    .phases
                    .iter()
                    .position(|&f| f == (tr % sh, tc % sw))
                    .expect("every tap's phase is kept");
                f * plane + (tr / sh) * self.wg + tc / sw
            })
            .collect();
        let chan = self.chan_len();
        let mut offs = Vec::with_capacity(cin_g * taps.len());
        for ci in 0..cin_g {
            offs.extend(taps.iter().map(|&t| ci * chan + t));
        }
        offs
    }

    /// Lays out `x` (`[N * C, H, W]` planes) as the grid reads it, into `out`
    /// (`N * C * chan_len()` values, every one written).
    /// One channel plane of [`Grid::prepare`]: `src` (`H x W`) into `dst` (`chan_len()`).
    #[inline(always)]
    fn fill_plane(&self, dst: &mut [f32], src: &[f32]) {
        let (h, w) = (self.h, self.w);
        let [sh, sw] = self.stride;
        let [ph, pw] = self.pad;
        for (plane, &(fr, fc)) in dst.chunks_exact_mut(self.hp * self.wg).zip(&self.phases) {
            // Grid columns `c` whose padded column `c * sw + fc` lies in the image.
            let lo = pw.saturating_sub(fc).div_ceil(sw).min(self.wg);
            let hi = (pw + w).saturating_sub(fc).div_ceil(sw).clamp(lo, self.wg);
            for (r, row) in plane.chunks_exact_mut(self.wg).enumerate() {
                let pr = r * sh + fr;
                if pr < ph || pr - ph >= h {
                    super::zero_row(row);
                    continue;
                }
                let x_row = &src[(pr - ph) * w..][..w];
                // In steps of a vector rather than calls of `memset` and `memcpy`, whose cost
                // the short rows of the last stages' maps (16 values with their padding, on a
                // 14x14 map) do not repay: the copy of a 3x3 conv's 256 channels of 14x14
                // took a median of 17-20 µs on 2 threads against 23-25 (Intel Xeon, ResNet-50's
                // stage 3 alone, 5,000 calls each).
                super::zero_row(&mut row[..lo]);
                super::zero_row(&mut row[hi..]);
                if lo < hi {
                    let first = lo * sw + fc - pw;
                    if sw == 1 {
                        super::copy_row(&mut row[lo..hi], &x_row[first..first + (hi - lo)]);
                    } else if sw == 2 {
                        // The common stride, as pairs: this loop vectorizes, a strided one
                        // does not. The last column may have no pair partner in the row.
                        let (dst, src) = (&mut row[lo..hi], &x_row[first..]);
                        let pairs = dst.len().min(src.len() / 2);
                        for (d, pair) in dst.iter_mut().zip(src.chunks_exact(2)) {
                            *d = pair[0];
                        }
                        if let Some(d) = dst.get_mut(pairs) {
                            *d = src[2 * pairs];
                        }
                    } else {
                        let cols = x_row[first..].iter().step_by(sw);
                        row[lo..hi].iter_mut().zip(cols).for_each(|(d, s)| *d = *s);
                    }
                }
            }
        }
    }

    /// The input as the grid reads it: `x` (`planes` planes of `H x W`) itself, or where the
    /// grid needs a copy (padding, a stride) that copy, laid out in `prepared` (grown to
    /// hold it, and kept by the caller for the next conv).
    fn input<'a>(
        &self,
        x: &'a [f32],
        planes: usize,
        prepared: &'a mut Vec<f32>,
        pool: Option<&rayon::ThreadPool>,
        isa: Isa,
    ) -> &'a [f32] {
        if !self.copy {
            return x;
        }
        let len = planes * self.chan_len();
        if prepared.len() < len {
            prepared.resize(len, 0.0);
        }
        self.prepare(x, &mut prepared[..len], pool, isa);
        &prepared[..len]
    }

    fn prepare(&self, x: &[f32], out: &mut [f32], pool: Option<&rayon::ThreadPool>, isa: Isa) {
        let (h, w) = (self.h, self.w);
        let fill = |(dst, src): (&mut [f32], &[f32])| {
            isa.vectorized(
                #[inline(always)]
                || self.fill_plane(dst, src),
            )
        };
        let chan = self.chan_len();
        match pool {
            Some(pool) => pool.install(|| {
                out.par_chunks_mut(chan)
                    .zip(x.par_chunks_exact(h * w))
                    .for_each(fill)
            }),
            None => out
                .chunks_mut(chan)
                .zip(x.chunks_exact(h * w))
                .for_each(fill),
        }
    }
}

/// One task: output rows `rows` (channels within the group, from panel `panel0`) by grid
/// positions `q0..q0 + len` of image `b`, group `g`; `dst` is the output pixels among them.
struct Task<'a> {
    b: usize,
    g: usize,
    panel0: usize,
    q0: usize,
    len: usize,
    dst: ArrayViewMut2<'a, f32>,
}

/// Blocks of output channels (of `panels` weight panels) to cut each of `chunks` chunks of
/// positions (every image's and group's counted) into, for `per_thread` tasks a thread on
/// `threads` threads: one on one thread.
fn blocks(chunks: usize, panels: usize, threads: usize, per_thread: usize) -> usize {
    if threads > 1 {
        (threads * per_thread)
            .div_ceil(chunks.max(1))
            .clamp(1, panels.max(1))
    } else {
        1
    }
}

/// How one conv's work is cut: each image's and group's grid positions into `chunks` chunks
/// of whole `unit`s (panels of the in-place tile, grid rows for the transposed tile), and its
/// output channels into `blocks` blocks (several when there are few pixels, so that every
/// thread has work).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Split {
    pub unit: usize,
    pub chunks: usize,
    pub blocks: usize,
    /// Whether the chunks' sizes mirror each other about the middle of the positions
    /// ([`Split::chunk`]).
    pub mirrored: bool,
}

impl Split {
    /// Chunks of about [`NC`] positions in whole `nr`-position panels, and enough blocks of
    /// channels for [`TASKS_PER_THREAD`] tasks a thread. Where the tasks go position by
    /// position (`by_position`: image, chunk, then block of channels), the cut that leaves the
    /// busiest thread's range of tasks (as `super::for_each_banded` cuts them) the fewest
    /// panels to compute ([`Split::busiest`]), of up to two more chunks than that, their
    /// sizes even ([`Split::chunk`]) or mirrored; the first of these where they tie. Cut
    /// evenly, the 25 panels of a 28x28 map with AVX-512 (seven chunks of 3, 4, 3, 4, 3, 4
    /// and 4 panels, in two blocks of channels each) left the second thread 13 panels of every
    /// channel to the first's 12; mirrored (4, 4, 3, 3, 3, 4, 4), 12.5 each, the middle chunk
    /// split by its blocks.
    pub(super) fn new(
        n: usize,
        groups: usize,
        positions: usize,
        panels: usize,
        nr: usize,
        threads: usize,
        by_position: bool,
    ) -> Split {
        // `min` first: `positions` may be any size.
        let nc = positions.min(NC).next_multiple_of(nr).max(nr);
        let first = positions.div_ceil(nc).max(1);
        let split = |chunks: usize, mirrored: bool| {
            let all = chunks.saturating_mul(n).saturating_mul(groups);
            Split {
                unit: nr,
                chunks,
                blocks: blocks(all, panels, threads, TASKS_PER_THREAD),
                mirrored,
            }
        };
        let even = split(first, false);
        if threads <= 1 || !by_position {
            return even;
        }
        let most = first
            .saturating_add(2)
            .min(positions.div_ceil(nr).max(first));
        (first..=most)
            .flat_map(|chunks| [split(chunks, false), split(chunks, true)])
            .min_by_key(|s| s.busiest(n.saturating_mul(groups), positions, panels, threads))
            .unwrap_or(even)
    }

    /// The most panel-by-panel products one thread's range of tasks holds when the tasks go
    /// as they do position by position (`by_position` in [`Split::new`]): each of `images`
    /// (images times groups) cut into these chunks, each chunk (its whole `unit`s, a
    /// part-filled last one counted whole, as the tile computes it) into these blocks of
    /// `panels` weight panels, the tasks in image, chunk, block order, cut into `threads`
    /// ranges of as many tasks (as `super::for_each_banded` cuts them).
    pub(super) fn busiest(
        self,
        images: usize,
        positions: usize,
        panels: usize,
        threads: usize,
    ) -> usize {
        let per_block = panels.div_ceil(self.blocks.max(1)).max(1);
        let blocks: Vec<usize> = (0..panels.div_ceil(per_block).max(1))
            .map(|k| per_block.min(panels.saturating_sub(k * per_block)).max(1))
            .collect();
        let costs: Vec<usize> = (0..self.chunks)
            .map(|i| self.chunk(positions, i).len().div_ceil(self.unit))
            .filter(|&c| c > 0)
            .flat_map(|c| blocks.iter().map(move |&b| c * b))
            .collect();
        let tasks = costs.len().saturating_mul(images);
        let cost = |j: usize| costs[j % costs.len()];
        (0..threads.max(1))
            .map(|t| {
                (tasks * t / threads..tasks * (t + 1) / threads)
                    .map(cost)
                    .sum::<usize>()
            })
            .max()
            .unwrap_or(0)
    }

    /// The split for [`Isa::tile_pixels`]: chunks of whole output rows (about [`NC`] pixels
    /// each, as even as the rows allow).
    fn rows(n: usize, groups: usize, grid: &Grid, panels: usize, threads: usize) -> Split {
        let wanted = (grid.ho * grid.wo).div_ceil(NC).clamp(1, grid.ho.max(1));
        let rows = grid.ho.div_ceil(wanted).max(1);
        let chunks = grid.ho.div_ceil(rows).max(1);
        let per_image = chunks * n * groups;
        Split {
            unit: grid.wg,
            chunks,
            blocks: blocks(per_image, panels, threads, TASKS_PER_THREAD_PIXELS),
            mirrored: false,
        }
    }

    /// The positions of chunk `i` (of `0..chunks`) of `positions`: the chunks take the whole
    /// units as evenly as they go (the last also the positions past its last whole unit), so
    /// that each thread's range of tasks (`super::for_each_banded` cuts the tasks into
    /// ranges of as many tasks) holds about as many columns as the other's. Cut into chunks of
    /// one size and a short last one, the 784 positions of a 28x28 map (five chunks of 144
    /// and one of 64 with AVX2's 24-position panels, each in two blocks of channels) left one
    /// thread three chunks, 432 columns of every channel, and the other 352; cut evenly (5, 6,
    /// 5, 6, 5, and 5 panels and 16 positions), 384 and 400. Measured on the AMD EPYC (Zen 4),
    /// ResNet-50 with AVX2 on 2 threads, both cuts alternated run by run in one process (three
    /// processes, 30 runs each): its nine 1x1 convs of `layer2` and the first of `layer3` took
    /// 7.17–7.19 ms against 7.53–7.58 (the time a thread waited for the other, summed over
    /// them, about 0.43 thread-ms against 1.0), the runs 0.5–1.3% less; with AVX-512, level
    /// (6.67–6.75 ms against 6.66–6.81). Mirrored, the chunks before the middle end after
    /// `units * i / chunks` units rounded up, and those after it are their mirror image from
    /// the end, so that the tasks' two halves hold as many units (for two threads and an even
    /// count of tasks, or a middle chunk in an even count of blocks).
    pub(super) fn chunk(self, positions: usize, i: usize) -> std::ops::Range<usize> {
        let units = positions.div_ceil(self.unit);
        let c = self.chunks;
        let at = |i: usize| {
            let u = if !self.mirrored {
                units * i / c
            } else if 2 * i <= c {
                (units * i).div_ceil(c)
            } else {
                units - (units * (c - i)).div_ceil(c)
            };
            (u * self.unit).min(positions)
        };
        at(i)..at(i + 1)
    }
}

/// Values [`conv2d_packed`] allocates for one call beyond its output and its threads' scratch:
/// the padded, phase-split copy of its input when it has padding or a stride (none
/// otherwise: the input is read as it is). For the memory estimate; saturating.
pub fn extra_len(conv: &ConvDims, n: u64) -> u64 {
    if conv.pad == [0, 0] && conv.stride == [1, 1] {
        return 0;
    }
    let [sh, sw] = conv.stride.map(|s| s.max(1));
    let [h, w] = conv.input;
    let hp = h.saturating_add(conv.pad[0].saturating_mul(2)).div_ceil(sh);
    let wg = w.saturating_add(conv.pad[1].saturating_mul(2)).div_ceil(sw);
    // At most every phase is read.
    let phases = sh.min(conv.kernel[0].max(1)) * sw.min(conv.kernel[1].max(1));
    let plane = hp.saturating_mul(wg);
    n.saturating_mul(conv.c_in)
        .saturating_mul(phases)
        .saturating_mul(plane)
}

/// The sizes of one conv that decide [`extra_len`].
#[derive(Clone, Copy, Debug)]
pub struct ConvDims {
    pub c_in: u64,
    pub kernel: [u64; 2],
    /// Input height and width.
    pub input: [u64; 2],
    pub stride: [u64; 2],
    pub pad: [u64; 2],
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
    conv(x, pc, residual, None, relu.into(), isa, pool, None)
}

/// [`conv2d_packed`] with a residual the caller no longer needs: where the whole reduction is
/// one block (`C_in/groups * K_h * K_w` up to [`KC`], or [`KC_PIXELS`] for the transposed tile:
/// every residual add of ResNet's bottlenecks), the output is written over the residual, each
/// value read and written back in the same pass, instead of into a fresh zeroed buffer; the
/// bits are those of [`conv2d_packed`] either way.
///
/// # Shapes
/// As for [`conv2d_packed`].
pub fn conv2d_packed_into(
    x: ArrayView4<f32>,
    pc: &PackedConv,
    residual: Array4<f32>,
    relu: bool,
    isa: Isa,
    pool: Option<&rayon::ThreadPool>,
) -> Array4<f32> {
    conv(x, pc, None, Some(residual), relu.into(), isa, pool, None)
}

/// [`conv2d_packed`] and [`conv2d_packed_into`]: the residual is `residual` (read) or `into`
/// (written over when the reduction is one block, else read as `residual`); a fresh output
/// takes its memory from `spare` where it has some (every value is written); the output pass
/// applies `act` (a ReLU, and ReLU6's cap).
#[allow(clippy::too_many_arguments)]
pub(super) fn conv(
    x: ArrayView4<f32>,
    pc: &PackedConv,
    residual: Option<ArrayView4<f32>>,
    into: Option<Array4<f32>>,
    act: Act,
    isa: Isa,
    pool: Option<&rayon::ThreadPool>,
    spare: Option<&mut super::Spare>,
) -> Array4<f32> {
    let threads = pool.map_or(1, |p| p.current_num_threads());
    let (n, c_in, h, wd) = x.dim();
    let p = &pc.p;
    assert_eq!(
        c_in,
        pc.cin_g * p.groups,
        "the shape checker guarantees the input has c_in channels"
    );
    let grid = Grid::new(h, wd, pc.kh, pc.kw, p);
    let (ho, wo) = (grid.ho, grid.wo);
    let plane = ho * wo;
    for r in residual
        .iter()
        .chain(into.as_ref().map(|r| r.view()).iter())
    {
        assert_eq!(
            r.dim(),
            (n, pc.c_out, ho, wo),
            "the shape checker guarantees the residual has the output's shape"
        );
    }
    // Weights packed for the transposed tile run on it where it is fast; elsewhere (portable
    // code) the in-place tile reads each `MR`-channel part of their panels.
    let pixels = pc.width == CR && isa.fast_pixels();
    // The longest reduction block of the tile that runs.
    let most = if pixels { KC_PIXELS } else { KC };
    let one_block = pc.taps() <= most;
    // The output: the residual itself when it can be written over, else a fresh buffer
    // (and a residual given to be written over is then read like any other).
    let (mut out, in_place, kept) = match into {
        Some(r) if one_block && r.is_standard_layout() => (r, true, None),
        kept => (super::output(spare, (n, pc.c_out, ho, wo)), false, kept),
    };
    let residual = residual.or(kept.as_ref().map(|r| r.view()));
    if out.is_empty() {
        return out;
    }
    // Where the activations (input and output) weigh at least as much as the weights, each
    // thread takes a band of positions with all their channels, the same part of every layer
    // (see `super::for_each_banded`), so that its input was mostly written by its own core;
    // where the weights weigh more (the last stages at batch 1), a band of channels, so that
    // each core reads half of them. Split by channels, each core reads the half of the input
    // the other core wrote, and the next layer the half of this output (about half the
    // activations cross between cores); split by positions, each core reads the half of the
    // weights it would otherwise not (half the weights). Measured on an Intel Xeon (ResNet-50
    // with AVX-512, 2 threads, the two rules alternated in one process, median of 30 runs):
    // the 1x1 convs 1024 -> 256 on 14x14 maps, whose activations weigh 0.96 of their
    // weights, took 0.42–0.43 ms split by channels against 0.45–0.46 split by positions (as
    // the rule before, activations at least half the weights, had them), and `layer4.0`'s
    // 1024 -> 512 (0.57) 0.86 against 0.92.
    let by_position = n * (c_in * h * wd + pc.c_out * plane) >= pc.a.len();
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout is contiguous");
    let mut prepared = PREPARED.with_borrow_mut(std::mem::take);
    let group_len = pc.cin_g * grid.chan_len();
    let input = grid.input(xs, n * c_in, &mut prepared, pool, isa);
    let residual = residual.as_ref().map(|r| r.as_standard_layout());
    let rs = residual
        .as_ref()
        .map(|r| r.as_slice().expect("standard layout is contiguous"));
    let width = pc.width;
    let rows_per_panel = if pixels { CR } else { MR };
    let cout_g = pc.c_out / p.groups;
    let panels = cout_g.div_ceil(rows_per_panel);
    let group_a = cout_g.div_ceil(width) * pc.taps() * width;
    let positions = grid.len();
    let split = if pixels {
        Split::rows(n, p.groups, &grid, panels, threads)
    } else {
        Split::new(
            n,
            p.groups,
            positions,
            panels,
            isa.nr(),
            threads,
            by_position,
        )
    };
    // Several images of a conv whose weights outweigh its activations: each block of output
    // channels goes through every image in turn (see `SHARED_BLOCK_BYTES`).
    let shared = !by_position && n > 1;
    let blocks = if shared {
        let panel_bytes = pc.taps() * rows_per_panel * std::mem::size_of::<f32>();
        split
            .blocks
            .max(panels.div_ceil((SHARED_BLOCK_BYTES / panel_bytes.max(1)).max(1)))
    } else {
        split.blocks
    };
    let panels_per_block = panels.div_ceil(blocks);

    // Carve the output into the tasks' disjoint views.
    let mut tasks = Vec::new();
    let mut rest = out
        .view_mut()
        .into_shape_with_order((n * pc.c_out, plane))
        .expect("the output is contiguous (fresh, or a residual in standard layout)");
    for b in 0..n {
        for g in 0..p.groups {
            let mut panel0 = 0;
            while panel0 < panels {
                let rows = ((panel0 + panels_per_block) * rows_per_panel).min(cout_g)
                    - panel0 * rows_per_panel;
                let (mut block, tail) = rest.split_at(Axis(0), rows);
                rest = tail;
                for chunk in (0..split.chunks).map(|i| split.chunk(positions, i)) {
                    let (q0, len) = (chunk.start, chunk.len());
                    if len == 0 {
                        continue;
                    }
                    let pixels = grid.pixels_before(q0 + len) - grid.pixels_before(q0);
                    let (part, more) = block.split_at(Axis(1), pixels);
                    block = more;
                    tasks.push(Task {
                        b,
                        g,
                        panel0,
                        q0,
                        len,
                        dst: part,
                    });
                }
                panel0 += panels_per_block;
            }
        }
    }
    let offs = grid.offsets(pc.cin_g, pc.kh, pc.kw, p.dilation);
    let blocks_k = Blocks::new(&offs, most);
    let chan_len = grid.chan_len();

    let run = |t: Task| {
        let unit = t.b * p.groups + t.g;
        let (x, base) = (input, unit * group_len);
        let first = t.g * cout_g + t.panel0 * rows_per_panel;
        let r_g = rs.map(|r| &r[(t.b * pc.c_out + first) * plane..]);
        let bias = &pc.bias[first..];
        let a_g = &pc.a[t.g * group_a..][..group_a];
        let src = Source {
            x,
            base,
            offs: &offs,
            blocks: &blocks_k,
            small: pc.cin_g * chan_len <= SMALL_INPUT,
            far: pc.kh * pc.kw == 1 && n * c_in * h * wd * std::mem::size_of::<f32>() >= FAR_INPUT,
        };
        if pixels {
            isa.vectorized(
                #[inline(always)]
                || run_task_pixels(t, &src, r_g, in_place, bias, a_g, plane, &grid, act, isa),
            );
        } else {
            let a = Weights { a: a_g, width };
            isa.vectorized(
                #[inline(always)]
                || run_task(t, &src, r_g, in_place, bias, a, plane, &grid, act, isa),
            );
        }
    };
    if by_position {
        tasks.sort_by_key(|t| (t.b, t.g, t.q0, t.panel0));
    } else if shared {
        tasks.sort_by_key(|t| (t.g, t.panel0, t.b, t.q0));
    }
    super::for_each_banded(pool, tasks, run);
    PREPARED.with_borrow_mut(|keep| *keep = prepared);
    out
}

/// Output channels per weight panel for a GEMM conv that `conv2d_packed_maxpool` fuses
/// with its max pool, on `isa`: [`CR`] where the transposed tile keeps its whole tile in
/// registers (AVX-512), whose bands are pooled pixel-major (`band_pixels`); else [`MR`],
/// the in-place tile's. Measured on an Intel Xeon (Emerald Rapids), ResNet's stem with its
/// max pool alone (`benches/nets/stem.res`), the two packings alternated process by process:
/// with AVX-512 1.96-2.00 ms against 2.10-2.14 on one thread and 1.11-1.15 against 1.22-1.28
/// on two; with AVX2 (its tile in `32 x 3` parts) 2.58-2.63 against 2.12-2.14 on two, so it
/// keeps the in-place tile.
pub fn pooled_width(isa: Isa) -> usize {
    if isa.whole_pixel_tile() { CR } else { MR }
}

/// Output rows of the max pool per task of `conv2d_packed_maxpool`: a task computes the conv
/// rows their windows read (for a 3x3, stride-2 pool, 15 rows for 7 pooled rows), then pools
/// them. The row two bands share is computed once where one thread takes both (its bands come
/// in order), and by both where two threads do. On ResNet's stem at batch 1 (56 pooled rows,
/// 8 bands, 4 per thread), bands of 2, 4, 7 and 14 rows ran within 5% of each other.
pub const POOL_BAND: usize = 7;

/// Bytes of scratch one thread holds for `conv2d_packed_maxpool`: a band's conv rows, every
/// channel, for a conv of `c_out` channels whose output is `h_out x w_out`, followed by the
/// pool `p` (at most `(POOL_BAND - 1) * stride + kernel` rows, and never more than `h_out`),
/// and the rows it takes over from the last band (fewer than `kernel`, as many again at most).
pub fn pool_band_bytes(c_out: u64, h_out: u64, w_out: u64, p: &super::Pool2dParams) -> u64 {
    let (stride, kernel) = (p.stride[0] as u64, p.kernel[0] as u64);
    let band = ((POOL_BAND - 1) as u64)
        .saturating_mul(stride)
        .saturating_add(kernel)
        .min(h_out);
    let rows = band.saturating_add(kernel.min(h_out));
    let f32_bytes = std::mem::size_of::<f32>() as u64;
    let in_place = c_out
        .saturating_mul(rows)
        .saturating_mul(w_out)
        .saturating_mul(f32_bytes);
    // With weights packed for the transposed tile ([`band_pixels`]): channels in whole
    // panels of `CR`; a conv row and its biases (`w_out` wide), and the band's rows pooled
    // across and one pooled row (each at most `w_out + 2 * pad` wide).
    let channels = c_out.div_ceil(CR as u64).saturating_mul(CR as u64);
    let pooled_w = w_out.saturating_add((p.pad[1] as u64).saturating_mul(2));
    let pixels = w_out
        .saturating_mul(2)
        .saturating_add(band.saturating_add(1).saturating_mul(pooled_w));
    in_place.max(channels.saturating_mul(pixels).saturating_mul(f32_bytes))
}

/// A thread's band of conv rows for [`conv2d_packed_maxpool`] (every channel's rows, channel
/// after channel), and which they are: `(call, image, rows)`.
#[derive(Default)]
struct BandRows {
    values: Vec<f32>,
    held: Option<(u64, usize, std::ops::Range<usize>)>,
    /// The rows a band takes over from the thread's last one, while it is laid out.
    carry: Vec<f32>,
}

thread_local! {
    static BAND: RefCell<BandRows> = RefCell::new(BandRows::default());
}

/// Calls of [`conv2d_packed_maxpool`] so far: each call's number tells its bands apart from
/// another call's (another input, another conv) left in a thread's [`BandRows`].
static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `maxpool(relu?(conv(x, w) + bias))`: [`conv2d_packed`] followed by
/// [`super::maxpool2d`] with `pool_p`, the same bits, without the conv's output in memory
/// where the pool folds its windows in registers ([`super::pool::MaxPoolRows`]) and the conv
/// has one group: each task takes [`POOL_BAND`] rows of the pool's output of one image,
/// computes the conv rows they read into its thread's scratch (every channel, by the same
/// tiles as the unfused conv, each value whole) and pools them into the output. The fused
/// conv writes its pooled output only, a quarter of its own for ResNet's stem (3x3, stride-2
/// pool), which it no longer zeroes, writes out and reads back; elsewhere it runs the conv,
/// then the pool. Weights packed for the transposed tile ([`pooled_width`]) take their bands
/// through [`band_pixels`], which pools the tile's sums before turning them channel-major.
///
/// # Shapes
/// As for [`conv2d_packed`], the output then pooled as [`super::maxpool2d`] pools.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv2d_packed_maxpool(
    x: ArrayView4<f32>,
    pc: &PackedConv,
    pool_p: &super::Pool2dParams,
    relu: bool,
    isa: Isa,
    pool: Option<&rayon::ThreadPool>,
    spare: Option<&mut super::Spare>,
) -> Array4<f32> {
    let (n, c_in, h, wd) = x.dim();
    let p = &pc.p;
    let grid = Grid::new(h, wd, pc.kh, pc.kw, p);
    let (ho, wo) = (grid.ho, grid.wo);
    let fused = (p.groups == 1 && ho > 0 && wo > 0)
        .then(|| super::pool::MaxPoolRows::new(ho, wo, pool_p, isa))
        .flatten();
    let Some(mp) = fused else {
        let y = conv(x, pc, None, None, relu.into(), isa, pool, spare);
        return super::maxpool2d(y.view(), pool_p);
    };
    assert_eq!(
        c_in, pc.cin_g,
        "the shape checker guarantees the input has c_in channels"
    );
    let mut out = super::output(spare, (n, pc.c_out, mp.ho, mp.wo));
    if out.is_empty() {
        return out;
    }
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout is contiguous");
    let mut prepared = PREPARED.with_borrow_mut(std::mem::take);
    let image_len = pc.cin_g * grid.chan_len();
    let input = grid.input(xs, n * c_in, &mut prepared, pool, isa);
    // Each task's output rows, one slice per channel: image by image, band by band.
    struct Band<'a> {
        b: usize,
        rows: std::ops::Range<usize>,
        dst: Vec<&'a mut [f32]>,
    }
    let bands = mp.ho.div_ceil(POOL_BAND);
    let plane_out = mp.ho * mp.wo;
    let mut tasks: Vec<Band> = (0..n * bands)
        .map(|i| {
            let a = (i % bands) * POOL_BAND;
            Band {
                b: i / bands,
                rows: a..(a + POOL_BAND).min(mp.ho),
                dst: Vec::with_capacity(pc.c_out),
            }
        })
        .collect();
    let os = out.as_slice_mut().expect("a fresh array is contiguous");
    for (i, plane) in os.chunks_mut(plane_out).enumerate() {
        let mut rest = plane;
        for t in &mut tasks[(i / pc.c_out) * bands..][..bands] {
            let (mine, more) = rest.split_at_mut(t.rows.len() * mp.wo);
            t.dst.push(mine);
            rest = more;
        }
    }
    let offs = grid.offsets(pc.cin_g, pc.kh, pc.kw, p.dilation);
    // The in-place tile's blocks (`run_task`); the transposed tile's bands read `offs` whole.
    let blocks_k = Blocks::new(&offs, KC);
    // For weights packed for the transposed tile, each panel's biases (zeros past the last
    // channel), which its tiles add as they leave (`band_pixels`).
    let panel_bias = (pc.width == CR).then(|| {
        (0..pc.c_out.div_ceil(CR))
            .map(|ip| std::array::from_fn(|c| pc.bias.get(ip * CR + c).copied().unwrap_or(0.0)))
            .collect::<Vec<[f32; CR]>>()
    });
    // This call, so that a thread takes over rows from its last band only in the same call.
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let run = |t: Band| {
        if let Some(bias) = &panel_bias {
            let mut band = PIXEL_BAND.with_borrow_mut(std::mem::take);
            let at = (call, t.b * image_len);
            isa.vectorized(
                #[inline(always)]
                || {
                    band_pixels(
                        &mut band,
                        at,
                        t.rows,
                        t.dst,
                        input,
                        &offs,
                        pc,
                        bias,
                        &grid,
                        &mp,
                        relu.into(),
                        isa,
                    )
                },
            );
            PIXEL_BAND.with_borrow_mut(|keep| *keep = band);
            return;
        }
        let conv_rows = mp.input_rows(t.rows.start, t.rows.end);
        let pixels = conv_rows.len() * wo;
        let mut band = BAND.with_borrow_mut(std::mem::take);
        // The rows this thread's last band shares with this one (a thread takes its bands in
        // order), moved to the front of this band's channels rather than computed again.
        let carried = match band.held.take() {
            Some((c, b, held))
                if c == call
                    && b == t.b
                    && held.start <= conv_rows.start
                    && conv_rows.start < held.end
                    && held.end <= conv_rows.end =>
            {
                let (n, from) = (held.end - conv_rows.start, conv_rows.start - held.start);
                let (old, values) = (held.len() * wo, &band.values);
                band.carry.clear();
                for ch in 0..pc.c_out {
                    let rows = &values[ch * old + from * wo..][..n * wo];
                    band.carry.extend_from_slice(rows);
                }
                n
            }
            _ => 0,
        };
        // One value per channel at least: a band whose windows all lie in the padding reads
        // none, and its rows are pooled from nothing (to `-inf`, as `maxpool2d` does).
        let BandRows { values, carry, .. } = &mut band;
        values.resize(pc.c_out * pixels.max(1), 0.0);
        if carried > 0 {
            for (dst, src) in values
                .chunks_mut(pixels)
                .zip(carry.chunks_exact(carried * wo))
            {
                dst[..src.len()].copy_from_slice(src);
            }
        }
        let first = conv_rows.start + carried;
        if first < conv_rows.end {
            let q0 = first * grid.wg;
            let mut all = ndarray::ArrayViewMut2::from_shape(
                (pc.c_out, pixels),
                &mut values[..pc.c_out * pixels],
            )
            .expect("the band holds every channel's rows");
            let task = Task {
                b: t.b,
                g: 0,
                panel0: 0,
                q0,
                len: (conv_rows.end - 1) * grid.wg + wo - q0,
                dst: all.slice_mut(ndarray::s![.., carried * wo..]),
            };
            let src = Source {
                x: input,
                base: t.b * image_len,
                offs: &offs,
                blocks: &blocks_k,
                small: image_len <= SMALL_INPUT,
                far: false,
            };
            let a = Weights {
                a: &pc.a,
                width: pc.width,
            };
            isa.vectorized(
                #[inline(always)]
                || {
                    run_task(
                        task,
                        &src,
                        None,
                        false,
                        &pc.bias,
                        a,
                        ho * wo,
                        &grid,
                        relu.into(),
                        isa,
                    )
                },
            );
        }
        let mut dsts = t.dst;
        for (dst, conv) in dsts.iter_mut().zip(values.chunks_exact(pixels.max(1))) {
            mp.pool_rows(isa, t.rows.start, t.rows.end, conv, conv_rows.start, dst);
        }
        band.held = Some((call, t.b, conv_rows));
        BAND.with_borrow_mut(|keep| *keep = band);
    };
    super::for_each_banded(pool, tasks, run);
    PREPARED.with_borrow_mut(|keep| *keep = prepared);
    out
}

/// A thread's rows for [`band_pixels`]: the conv row it computes (`[panel][column][CR]`),
/// the band's rows pooled across (`[row][panel][pooled column][CR]`) and which rows they are,
/// `(call, image offset, rows)`, and a pooled output row (`[pooled column][CR]`).
#[derive(Default)]
struct PixelBand {
    row: Vec<f32>,
    across: Vec<f32>,
    held: Option<((u64, usize), std::ops::Range<usize>)>,
    pooled: Vec<f32>,
}

thread_local! {
    static PIXEL_BAND: RefCell<PixelBand> = RefCell::new(PixelBand::default());
}

/// One band of [`conv2d_packed_maxpool`] for weights packed for the transposed tile: output
/// rows `rows` of the pool, every channel, into `dst` (one slice per channel). Each conv row
/// the band's windows read is computed tile by tile (up to [`PR`] pixels, every `CR`-channel
/// panel) into `band.row`, pixel-major as the tile leaves its sums, each value with its bias
/// and activation (`bias`, a panel's `CR` biases; [`Isa::tile_pixels_act`]), and the row is
/// pooled across its columns at once (one vector per
/// pixel: no transpose); the pooled rows are then folded down the windows' rows and only the
/// pool's output is turned channel-major, a quarter of the conv's values for ResNet's stem.
/// Each window is folded as `maxpool2d_ref` folds it, columns first then rows, which gives the
/// same bits: either way the result is the last NaN met, else the first of the largest values.
/// The rows the band shares with the thread's last band of the same call and image (`at`) are
/// taken over, not computed again.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn band_pixels(
    band: &mut PixelBand,
    at: (u64, usize),
    rows: std::ops::Range<usize>,
    mut dst: Vec<&mut [f32]>,
    input: &[f32],
    offs: &[usize],
    pc: &PackedConv,
    bias: &[[f32; CR]],
    grid: &Grid,
    mp: &super::pool::MaxPoolRows,
    act: Act,
    isa: Isa,
) {
    let (wo, wg, wp) = (grid.wo, grid.wg, mp.wo);
    let k = offs.len();
    let panels = pc.c_out.div_ceil(CR);
    let conv_rows = mp.input_rows(rows.start, rows.end);
    let row_len = panels * wp * CR;
    // Rows taken over from the thread's last band: they end this band's first rows.
    let carried = match band.held.take() {
        Some((held_at, held))
            if held_at == at
                && held.start <= conv_rows.start
                && conv_rows.start < held.end
                && held.end <= conv_rows.end =>
        {
            let from = (conv_rows.start - held.start) * row_len;
            band.across
                .copy_within(from..(held.end - held.start) * row_len, 0);
            held.end - conv_rows.start
        }
        _ => 0,
    };
    band.across.resize(conv_rows.len() * row_len, 0.0);
    band.row.resize(panels * wo * CR, 0.0);
    let tile_rows = Rows::new(offs);
    let segments = wo.div_ceil(PR);
    let cols = mp.col_windows();
    for r in conv_rows.start + carried..conv_rows.end {
        for (ip, bias) in bias.iter().enumerate().take(panels) {
            let a = &pc.a[ip * k * CR..][..k * CR];
            for s in 0..segments {
                let (c0, c1) = (s * wo / segments, (s + 1) * wo / segments);
                let span = Span::run(c1 - c0).expect("runs of at most PR pixels");
                let acc = &mut band.row[(ip * wo + c0) * CR..][..(c1 - c0) * CR];
                let x = at.1 + r * wg + c0;
                isa.tile_pixels_act(span, a, input, x, &tile_rows, acc, bias, act);
            }
        }
        let across = &mut band.across[(r - conv_rows.start) * row_len..][..row_len];
        for ip in 0..panels {
            let conv = &band.row[ip * wo * CR..][..wo * CR];
            let out = &mut across[ip * wp * CR..][..wp * CR];
            for (o, w) in out.chunks_exact_mut(CR).zip(&cols) {
                let mut m = [f32::NEG_INFINITY; CR];
                for c in w.clone() {
                    let v: &[f32; CR] = conv[c * CR..][..CR].try_into().expect("CR values");
                    for (a, &x) in m.iter_mut().zip(v) {
                        *a = super::pool::max_step(*a, x);
                    }
                }
                o.copy_from_slice(&m);
            }
        }
    }
    band.held = Some((at, conv_rows.clone()));
    band.pooled.resize(wp * CR, 0.0);
    let mut t = [0.0f32; CR * TR];
    for (i, oh) in rows.clone().enumerate() {
        let window = mp.window_rows(oh);
        for ip in 0..panels {
            band.pooled.fill(f32::NEG_INFINITY);
            for ih in window.clone() {
                let row = &band.across[(ih - conv_rows.start) * row_len + ip * wp * CR..];
                isa.fold_max(&mut band.pooled, &row[..wp * CR]);
            }
            let channels = CR.min(pc.c_out - ip * CR);
            let mut o0 = 0;
            while o0 < wp {
                let p = PR.min(wp - o0);
                isa.channels_major(&band.pooled[o0 * CR..], p, &mut t);
                for (c, d) in dst[ip * CR..][..channels].iter_mut().enumerate() {
                    let (d, t) = (&mut d[i * wp + o0..][..p], &t[c * TR..][..p]);
                    // A whole tile's run in moves of a known length, not a call to `memcpy`.
                    if let (Ok(d), Ok(t)) = (
                        <&mut [f32; PR]>::try_from(&mut *d),
                        <&[f32; PR]>::try_from(t),
                    ) {
                        *d = *t;
                    } else {
                        d.copy_from_slice(t);
                    }
                }
                o0 += p;
            }
        }
    }
}

/// A task's input: its image and group's channels start at `x[base]`, reduction row `k` of
/// the pixel at grid position `q` is `x[base + offs[k] + q]`.
struct Source<'a> {
    x: &'a [f32],
    base: usize,
    offs: &'a [usize],
    /// `offs` cut into reduction blocks.
    blocks: &'a Blocks<'a>,
    /// Whether the group's input is small enough to stay in cache (see [`SMALL_INPUT`]).
    small: bool,
    /// Whether the input is a 1x1 conv's of at least [`FAR_INPUT`] bytes.
    far: bool,
}

/// Rows per reduction block of a conv with `k` reduction rows: blocks of at most `most` rows,
/// as even as they go (the last one the rest).
pub(super) fn block_len(k: usize, most: usize) -> usize {
    k.div_ceil(k.div_ceil(most).max(1)).max(1)
}

/// A conv's reduction rows cut into blocks of `len` rows ([`block_len`]; the last the rest),
/// with each block's [`Rows`], found once per conv for all of its tasks: each task found them
/// for itself, a pass over the offsets per task and block (2,304 rows for a 3x3 conv of 256
/// channels). The tasks take both the blocks' length and their rows from here, so that a
/// block's rows are always those of its offsets (whose largest bounds what the tiles read).
struct Blocks<'a> {
    len: usize,
    rows: Vec<Rows<'a>>,
}

impl<'a> Blocks<'a> {
    /// `offs` in blocks of at most `most` rows.
    fn new(offs: &'a [usize], most: usize) -> Blocks<'a> {
        let len = block_len(offs.len(), most);
        Blocks {
            len,
            rows: offs.chunks(len).map(Rows::new).collect(),
        }
    }
}

/// One group's packed weights, in panels of `width` output channels.
struct Weights<'a> {
    a: &'a [f32],
    width: usize,
}

impl Weights<'_> {
    /// The `MR`-channel panel `m` of the group, reduction rows `pc..pc + kc` of `k`, and the
    /// distance between its rows.
    #[inline(always)]
    fn panel(&self, m: usize, k: usize, pc: usize, kc: usize) -> (&[f32], usize) {
        let w = self.width;
        let per = w / MR;
        let at = (m / per) * k * w + pc * w + (m % per) * MR;
        (&self.a[at..][..(kc - 1) * w + MR], w)
    }

    /// Panels `m..m + count` of the group as [`Weights::panel`] gives each, in one slice:
    /// panel `m + p` at `p * len`, with `len` and the distance between rows; `None` unless
    /// they are `MR`-channel panels (which lie `k * MR` values apart).
    #[inline(always)]
    fn panels(
        &self,
        m: usize,
        count: usize,
        k: usize,
        pc: usize,
        kc: usize,
    ) -> Option<(&[f32], usize, usize)> {
        if self.width != MR || count == 0 {
            return None;
        }
        let len = k * MR;
        let at = m * len + pc * MR;
        Some((
            &self.a[at..][..(count - 1) * len + (kc - 1) * MR + MR],
            len,
            MR,
        ))
    }
}

/// Runs one task: for each reduction block, multiply every weight panel of the task by each
/// panel of `nr` grid positions, read in place, adding into the output; the last block adds
/// bias and residual and applies ReLU as it writes.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run_task(
    t: Task,
    src: &Source,
    r_g: Option<&[f32]>,
    in_place: bool,
    bias: &[f32],
    a_g: Weights,
    plane: usize,
    grid: &Grid,
    act: Act,
    isa: Isa,
) {
    let Task {
        panel0,
        q0,
        len,
        mut dst,
        ..
    } = t;
    let nr = isa.nr();
    let k = src.offs.len();
    let rows = dst.dim().0;
    let mut out_rows: Vec<&mut [f32]> = dst
        .rows_mut()
        .into_iter()
        .map(|r| r.into_slice().expect("output rows are contiguous"))
        .collect();
    let pix0 = grid.pixels_before(q0);
    // Each panel's runs of output pixels: (first position in the panel, first pixel of the
    // task, length).
    let runs: Vec<Vec<(usize, usize, usize)>> = (0..len)
        .step_by(nr)
        .map(|c0| {
            let end = q0 + c0 + nr.min(len - c0);
            let mut runs = Vec::new();
            let mut q = q0 + c0;
            while q < end {
                let (oh, ow) = (q / grid.wg, q % grid.wg);
                if ow < grid.wo {
                    let n = (grid.wo - ow).min(end - q);
                    let (s, d) = (q - q0 - c0, oh * grid.wo + ow - pix0);
                    // A run that goes on where the last ended (rows without padding
                    // columns, `wg == wo`) extends it.
                    match runs.last_mut() {
                        Some((s0, d0, n0)) if *s0 + *n0 == s && *d0 + *n0 == d => *n0 += n,
                        _ => runs.push((s, d, n)),
                    }
                    q += n;
                } else {
                    q = (oh + 1) * grid.wg;
                }
            }
            runs
        })
        .collect();
    let kc_even = src.blocks.len;
    let mut acc = vec![0.0f32; MR * nr];
    // The task's last pixel panel, when its rows run past the end of the input (only the
    // input's last panel can: see `Copied`), is copied out with zeros after the end.
    let last_base = src.base + q0 + (runs.len() - 1) * nr;
    let mut edge = Copied::default();
    // A pixel panel that many weight panels read in turn, from a copy (see `PACK_PANELS`).
    let packed = isa.panel_reads() > 1 && rows.div_ceil(MR) >= PACK_PANELS;
    let mut copy = Copied::default();
    let mut pc = 0;
    while pc < k {
        let kc = kc_even.min(k - pc);
        let offs = &src.offs[pc..pc + kc];
        let block_rows = src.blocks.rows[pc / kc_even];
        let edge_rows = edge.fill(src.x, last_base, offs, nr);
        // Pixel panel `jp`'s input rows: in place, or the edge panel's copy.
        let panel_rows = |jp: usize| match &edge_rows {
            Some((panel, rows)) if jp + 1 == runs.len() => (&panel[..], 0, rows),
            _ => (src.x, src.base + q0 + jp * nr, &block_rows),
        };
        let out = Out {
            first: pc == 0,
            last: pc + kc == k,
            nr,
            r_g,
            in_place,
            bias,
            plane,
            pix0,
            act,
        };
        let a_panel = |ip: usize| a_g.panel(panel0 + ip, k, pc, kc);
        // A whole reduction writes each tile from the kernel's registers where the CPU has
        // AVX-512 (full panels of `MR` channels); otherwise the tile goes through `acc`.
        let whole = out.first && out.last && isa.fast_pixels();
        let mut tile =
            |ip: usize, jp: usize, runs: &[(usize, usize, usize)], out_rows: &mut [&mut [f32]]| {
                let (a, stride) = a_panel(ip);
                let (x, base, rows) = panel_rows(jp);
                let first = ip * MR;
                if whole && out_rows.len() >= first + MR {
                    let residual = out.r_g.map(|rg| (&rg[first * plane + pix0..], plane));
                    let dst = TileOut {
                        rows: &mut out_rows[first..first + MR],
                        runs,
                        bias: &bias[first..first + MR],
                        residual,
                        in_place,
                        act,
                    };
                    isa.tile_rows_out(a, stride, x, base, rows, dst);
                } else {
                    isa.tile_rows(a, stride, x, base, rows, &mut acc);
                    out.write(out_rows, ip, &acc, runs);
                }
            };
        if src.small {
            // Every weight panel once, against all of the task's pixel panels: a small input
            // stays in cache, where the weights would have to come from memory again.
            for ip in 0..rows.div_ceil(MR) {
                for (jp, runs) in runs.iter().enumerate() {
                    tile(ip, jp, runs, &mut out_rows);
                }
            }
        } else {
            // Every pixel panel once, against all of the task's weight panels (which stay in
            // L2, where a large input's panels would not).
            let panels = rows.div_ceil(MR);
            // Tiles written from registers whose panel is one run of all its columns, against
            // every weight panel of the task (all of `MR` channels): one call for them all.
            let together = whole && !src.far && rows == panels * MR;
            let all = a_g.panels(panel0, panels, k, pc, kc).filter(|_| together);
            for (jp, runs_j) in runs.iter().enumerate() {
                if let (Some((a, len, stride)), &[(0, _, n)]) = (all, &runs_j[..])
                    && n == nr
                {
                    let dst = TileOut {
                        rows: &mut out_rows,
                        runs: runs_j,
                        bias: &bias[..rows],
                        residual: out.r_g.map(|rg| (&rg[pix0..], plane)),
                        in_place,
                        act,
                    };
                    let edge_panel = edge_rows.is_some() && jp + 1 == runs.len();
                    let copied;
                    let (x, base, block) = if packed && !edge_panel {
                        copied = copy.copy(src.x, src.base + q0 + jp * nr, offs, nr);
                        (copied.0, 0, &copied.1)
                    } else {
                        panel_rows(jp)
                    };
                    isa.tile_rows_out_panels(a, len, stride, x, base, block, dst);
                    continue;
                }
                for ip in 0..panels {
                    // A far input's next pixel panel, a share of its rows before each tile
                    // (see `FAR_INPUT`); never the edge panel's copy, which is in cache.
                    let next_in_place =
                        jp + 2 < runs.len() || (jp + 1 < runs.len() && edge_rows.is_none());
                    if src.far && next_in_place {
                        let base = src.base + q0 + (jp + 1) * nr;
                        for &o in &offs[ip * kc / panels..(ip + 1) * kc / panels] {
                            let row = &src.x[base + o..][..nr];
                            for at in [0, nr / 2, nr - 1] {
                                isa.prefetch(&row[at..=at]);
                            }
                        }
                    }
                    tile(ip, jp, runs_j, &mut out_rows);
                }
            }
        }
        pc += kc;
    }
}

/// A pixel panel's rows copied out, side by side (row `k` at `k * nr`, offsets to match).
/// The input is read in place, rows of `nr` values from each pixel panel's position; the
/// panel that holds the input's last output pixel reads up to `nr - 1` values past the end of
/// the input (the farthest tap of that pixel is its last value), so its rows are copied out
/// once per reduction block ([`Copied::fill`]), with zeros past the end (they only feed grid
/// positions that are dropped). A panel that the tile reads many times over is copied too
/// ([`Copied::copy`], see [`PACK_PANELS`]).
#[derive(Default)]
struct Copied {
    panel: Vec<f32>,
    offs: Vec<usize>,
}

/// `dst = src`, both `N` values: a copy the compiler lays out inline.
#[inline(always)]
fn copy_row<const N: usize>(dst: &mut [f32], src: &[f32]) {
    let dst: &mut [f32; N] = dst.try_into().expect("a row of N values");
    let src: &[f32; N] = src.try_into().expect("a row of N values");
    *dst = *src;
}

impl Copied {
    /// The copied rows and their offsets when the panel at `base` (rows `offs`, `nr` wide)
    /// runs past the end of `x`; `None` when it lies inside.
    #[inline(always)]
    fn fill(
        &mut self,
        x: &[f32],
        base: usize,
        offs: &[usize],
        nr: usize,
    ) -> Option<(&[f32], Rows<'_>)> {
        let max = offs.iter().copied().max()?;
        if base + max + nr <= x.len() {
            return None;
        }
        Some(self.copy(x, base, offs, nr))
    }

    /// The rows of the panel at `base` (rows `offs`, `nr` wide) copied side by side, zeros
    /// for the values past the end of `x`, and their offsets.
    #[inline(always)]
    fn copy(&mut self, x: &[f32], base: usize, offs: &[usize], nr: usize) -> (&[f32], Rows<'_>) {
        self.panel.resize(offs.len() * nr, 0.0);
        for (dst, &o) in self.panel.chunks_exact_mut(nr).zip(offs) {
            let src = x.get(base + o..).unwrap_or(&[]);
            // The tiles' widths as fixed-size copies, inlined: a `copy_from_slice` of a
            // length known only at run time is a call to `memmove` per row.
            match (nr, src.get(..nr)) {
                (24, Some(src)) => copy_row::<24>(dst, src),
                (32, Some(src)) => copy_row::<32>(dst, src),
                _ => {
                    let n = src.len().min(nr);
                    dst[..n].copy_from_slice(&src[..n]);
                    dst[n..].fill(0.0);
                }
            }
        }
        // Row `k` at `k * nr`: the same offsets as the last copy's, unless the reduction
        // block or the width changed.
        if self.offs.len() != offs.len() || self.offs.get(1).is_some_and(|&o| o != nr) {
            self.offs.clear();
            self.offs.extend((0..offs.len()).map(|k| k * nr));
        }
        (&self.panel, Rows::new(&self.offs))
    }
}

/// [`run_task`] for weights packed for the transposed tile: the task's output rows are cut
/// into runs of at most [`PR`] pixels, and each run is one [`Isa::tile_pixels`] call per panel
/// of [`CR`] output channels, so no slot is spent on padding columns or past the last pixel.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run_task_pixels(
    t: Task,
    src: &Source,
    r_g: Option<&[f32]>,
    in_place: bool,
    bias: &[f32],
    a_g: &[f32],
    plane: usize,
    grid: &Grid,
    act: Act,
    isa: Isa,
) {
    let Task {
        panel0,
        q0,
        len,
        mut dst,
        ..
    } = t;
    let k = src.offs.len();
    let rows = dst.dim().0;
    let mut out_rows: Vec<&mut [f32]> = dst
        .rows_mut()
        .into_iter()
        .map(|r| r.into_slice().expect("output rows are contiguous"))
        .collect();
    let pix0 = grid.pixels_before(q0);
    // The tiles: (grid position, first pixel of the task, pixels). The task starts at a row.
    // Rows of at most `PR / 2` pixels go two to a tile, longer ones are cut into even runs.
    let (wg, wo) = (grid.wg, grid.wo);
    let mut tiles = Vec::new();
    let mut q = q0;
    let end = q0 + len;
    while q < end {
        let pix = grid.pixels_before(q) - pix0;
        if wo <= PR / 2 && q + wg < end {
            let span = Span::rows(wo, wg - wo).expect("a short row");
            tiles.push((q, pix, span));
            q += 2 * wg;
            continue;
        }
        let segments = wo.div_ceil(PR);
        for s in 0..segments {
            let (c0, c1) = (s * wo / segments, (s + 1) * wo / segments);
            let span = Span::run(c1 - c0).expect("runs of at most PR pixels");
            tiles.push((q + c0, pix + c0, span));
        }
        q += wg;
    }
    // The tiles as `Isa::tile_pixels_group` takes them, where it is used.
    let spans: Vec<(usize, Span)> = if isa.groups_pixels() {
        tiles.iter().map(|&(q, _, span)| (q, span)).collect()
    } else {
        Vec::new()
    };
    let kc_even = src.blocks.len;
    let mut acc = vec![0.0f32; CR * PIXEL_GROUP];
    let mut pc = 0;
    while pc < k {
        let kc = kc_even.min(k - pc);
        let block_rows = src.blocks.rows[pc / kc_even];
        let out = Out {
            first: pc == 0,
            last: pc + kc == k,
            nr: CR,
            r_g,
            in_place,
            bias,
            plane,
            pix0,
            act,
        };
        let a_panel = |ip: usize| &a_g[(panel0 + ip) * k * CR + pc * CR..][..kc * CR];
        // Every weight panel once, against all of the task's tiles, whatever the input's
        // size (unlike `run_task`): a panel's 32 output planes are then written front to back,
        // where tile by tile each tile wrote 32 runs of up to 14 pixels in as many planes, its
        // output lines in no cache and too many streams for the hardware prefetcher. Measured
        // on the AMD EPYC (Zen 5), ResNet-50 with AVX-512, 2 threads, both orders alternated in
        // one process: at batch 8 the 1x1 convs 256 -> 1024 on 14x14 maps over their residual
        // took 3.0 ms against 3.35 (about 2.1 with the output's lines asked for ahead too, see
        // `LEAD`), the run 169 against 171 ms; at batch 1 the run 19.63 against 20.05 ms.
        let panels = rows.div_ceil(CR);
        // A whole reduction writes each tile from the kernel's registers (below): the output
        // lines of the tile `LEAD` tiles on (and its residual's, when apart) are asked for
        // as each tile starts, those of a panel's first `LEAD` tiles before it; a prefetch
        // never changes a value.
        let whole = out.first && out.last;
        let warm = |out_rows: &[&mut [f32]], ip: usize, ti: usize| {
            let Some(&(_, pix, span)) = tiles.get(ti) else {
                return;
            };
            let (first, last) = (pix, pix + span.pixels() - 1);
            for (c, row) in out_rows.iter().enumerate().skip(ip * CR).take(CR) {
                isa.prefetch_write(&row[first..=first]);
                isa.prefetch_write(&row[last..=last]);
                if let Some(r) = r_g {
                    let r = &r[c * plane + pix0..];
                    isa.prefetch(&r[first..=first]);
                    isa.prefetch(&r[last..=last]);
                }
            }
        };
        for ip in 0..panels {
            let full = whole && rows >= (ip + 1) * CR;
            if full && isa.groups_pixels() {
                // The tiles in groups of up to `PIXEL_GROUP` pixels, each group's sums
                // computed together (each pass of weights read once for all its pixels),
                // then written tile by tile; each group's output lines are asked for as it
                // starts.
                let mut t0 = 0;
                while t0 < tiles.len() {
                    let mut t1 = t0;
                    let mut n = 0;
                    while t1 < tiles.len() && n + tiles[t1].2.pixels() <= PIXEL_GROUP {
                        n += tiles[t1].2.pixels();
                        t1 += 1;
                    }
                    (t0..t1).for_each(|ti| warm(&out_rows, ip, ti));
                    let first = ip * CR;
                    isa.tile_pixels_group(
                        &spans[t0..t1],
                        a_panel(ip),
                        src.x,
                        src.base,
                        &block_rows,
                        &mut acc,
                    );
                    let mut at = 0;
                    for &(_, pix, span) in &tiles[t0..t1] {
                        let p = span.pixels();
                        let dst = TileOut {
                            rows: &mut out_rows[first..first + CR],
                            runs: &[(0, pix, p)],
                            bias: &bias[first..first + CR],
                            residual: r_g.map(|rg| (&rg[first * plane + pix0..], plane)),
                            in_place,
                            act,
                        };
                        isa.write_pixels(&acc[at * CR..], p, dst);
                        at += p;
                    }
                    t0 = t1;
                }
                continue;
            }
            if full {
                (0..LEAD).for_each(|ti| warm(&out_rows, ip, ti));
            }
            for (ti, &(q, pix, span)) in tiles.iter().enumerate() {
                if full {
                    warm(&out_rows, ip, ti + LEAD);
                }
                let first = ip * CR;
                isa.tile_pixels(
                    span,
                    a_panel(ip),
                    src.x,
                    src.base + q,
                    &block_rows,
                    &mut acc,
                );
                if full {
                    // A whole reduction: the tile's output pass writes the output itself (as
                    // `Isa::tile_pixels_out`).
                    let dst = TileOut {
                        rows: &mut out_rows[first..first + CR],
                        runs: &[(0, pix, span.pixels())],
                        bias: &bias[first..first + CR],
                        residual: r_g.map(|rg| (&rg[first * plane + pix0..], plane)),
                        in_place,
                        act,
                    };
                    isa.write_pixels(&acc, span.pixels(), dst);
                } else {
                    out.write_transposed(&mut out_rows, ip, &acc, pix, span.pixels(), isa);
                }
            }
        }
        pc += kc;
    }
}

/// How one reduction block's tiles are written into a task's output.
struct Out<'a> {
    first: bool,
    last: bool,
    nr: usize,
    r_g: Option<&'a [f32]>,
    /// Whether the output holds the residual, to add and write over (one reduction block).
    in_place: bool,
    bias: &'a [f32],
    plane: usize,
    /// The task's first output pixel.
    pix0: usize,
    act: Act,
}

impl Out<'_> {
    /// Writes tile `acc` of weight panel `ip` to the output pixels `runs` of its pixel panel:
    /// stores the first block, adds the others, and the last adds bias and residual and
    /// applies the activation.
    #[inline(always)]
    fn write(
        &self,
        out_rows: &mut [&mut [f32]],
        ip: usize,
        acc: &[f32],
        runs: &[(usize, usize, usize)],
    ) {
        let tile_rows = out_rows[ip * MR..].iter_mut().take(MR);
        for (i, out_row) in tile_rows.enumerate() {
            for &(s, d0, n) in runs {
                self.put(out_row, ip * MR + i, d0, &acc[i * self.nr + s..][..n]);
            }
        }
    }

    /// Writes transposed tile `acc` (`p` pixels by `CR` channels, from [`Isa::tile_pixels`])
    /// of weight panel `ip` to the task's output pixels `pix..pix + p`, as [`Out::write`].
    #[inline(always)]
    fn write_transposed(
        &self,
        out_rows: &mut [&mut [f32]],
        ip: usize,
        acc: &[f32],
        pix: usize,
        p: usize,
        isa: Isa,
    ) {
        let mut t = [0.0f32; CR * TR];
        isa.channels_major(acc, p, &mut t);
        let tile_rows = out_rows[ip * CR..].iter_mut().take(CR);
        for ((i, out_row), col) in tile_rows.enumerate().zip(t.chunks_exact(TR)) {
            self.put(out_row, ip * CR + i, pix, &col[..p]);
        }
    }

    /// Writes `v` to output channel `r` (of the task) at its pixels `d0..`.
    #[inline(always)]
    fn put(&self, out_row: &mut [f32], r: usize, d0: usize, v: &[f32]) {
        let n = v.len();
        let d = &mut out_row[d0..d0 + n];
        match (self.first, self.last) {
            (true, false) => d.copy_from_slice(v),
            (false, false) => d.iter_mut().zip(v).for_each(|(d, s)| *d += s),
            // The residual is the output itself: `act(src + bias + residual)`, the sum
            // `epilogue` makes with a residual beside the output.
            (true, true) if self.in_place => {
                let b = self.bias[r];
                with_act!(self.act, |act| d
                    .iter_mut()
                    .zip(v)
                    .for_each(|(d, s)| *d = act(s + b + *d)));
            }
            (_, true) => {
                let res = self
                    .r_g
                    .map(|rg| &rg[r * self.plane + self.pix0 + d0..][..n]);
                epilogue(d, v, self.bias[r], self.first, res, self.act);
            }
        }
    }
}

/// The last block's write: `d = act(src + bias (+ d unless first) (+ residual))`.
#[inline(always)]
fn epilogue(d: &mut [f32], src: &[f32], bias: f32, first: bool, res: Option<&[f32]>, act: Act) {
    with_act!(act, |act| match (first, res) {
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
    })
}
