//! 1x1 convs on activations whose channels are innermost, the first kernel of that layout.
//!
//! In the layout the rest of the interpreter uses (planes, `[N][C][H][W]`), a 1x1 conv's
//! tile reads one row per input channel, each in a plane of its own: a pixel panel of 256
//! channels is 256 streams, and on the Intel Xeons the in-place tile then runs at about half a
//! core's peak (docs/benchmarks.md). In the blocked layout, `[N][C / BLOCK][H * W][BLOCK]`
//! ([`BLOCK`] = 16 channels, one cache line of `f32`), a pixel's 16 channels of one block are
//! one line, and a tile of pixels reads consecutive lines, one stream per block of channels.
//!
//! [`conv1x1`] runs a 1x1 conv (stride 1, no padding, one group) on the transposed tile
//! ([`Isa::tile_pixels`]) with the input in either layout and the output in either, adding
//! a residual in the output's layout and the activation in the pass that writes the output.
//! [`to_blocked`] and [`from_blocked`] turn a tensor from one layout to the other. The
//! result equals [`super::conv2d_ref`] up to `f32` rounding (property tests check every
//! combination of layouts). No `unsafe` here.
//!
//! The planner does not use this layout yet: `cargo bench --bench conv -- conv1x1` measures
//! it beside the convs a run takes. On an Intel Xeon (model 167 as its VM reports it), AVX-512,
//! two threads, with both input and output blocked, ResNet-50's 1x1 convs ran 1.03-1.26x as
//! fast as the packed conv a run takes for them (the stride-1 ones; docs/benchmarks.md,
//! 2026-12-08); with AVX2, 0.83-1.22x. For a run to gain, the planner must keep the residual
//! stream blocked (the convs written over it, the stride-2 downsamples, the final pool) while
//! the 3x3 convs between read and write planes, or read blocked input themselves.

use ndarray::{Array4, Array5, ArrayView4, ArrayView5};

use super::conv_gemm::{LEAD, PackedConv};
use crate::machine::simd::{Act, BLOCK, CR, Isa, PR, Rows, Span, TileOut, with_act};

/// How a tensor of `[N, C, H, W]` lies in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `[N][C][H][W]`: a plane per channel (PyTorch's layout, and every other kernel's).
    Planes,
    /// `[N][C / BLOCK][H * W][BLOCK]`: channels innermost, in blocks of [`BLOCK`] (`C` a
    /// multiple of `BLOCK`).
    Blocked,
}

/// `x` (`[N, C, H, W]`, `C` a multiple of [`BLOCK`]) with its channels innermost, as
/// `[N, C / BLOCK, H, W, BLOCK]`.
///
/// # Panics
/// If `C` is not a multiple of `BLOCK`.
pub fn to_blocked(x: ArrayView4<f32>) -> Array5<f32> {
    let (n, c, h, w) = x.dim();
    assert!(c.is_multiple_of(BLOCK), "whole blocks of channels");
    let mut out = Array5::zeros((n, c / BLOCK, h, w, BLOCK));
    for ((i, ch, y, xx), &v) in x.indexed_iter() {
        out[(i, ch / BLOCK, y, xx, ch % BLOCK)] = v;
    }
    out
}

/// The planes of a blocked tensor (`[N, C / BLOCK, H, W, BLOCK]`): `[N, C, H, W]`.
pub fn from_blocked(x: ArrayView5<f32>) -> Array4<f32> {
    let (n, cb, h, w, b) = x.dim();
    assert_eq!(b, BLOCK, "blocks of BLOCK channels");
    let mut out = Array4::zeros((n, cb * BLOCK, h, w));
    for ((i, blk, y, xx, cc), &v) in x.indexed_iter() {
        out[(i, blk * BLOCK + cc, y, xx)] = v;
    }
    out
}

/// Tiles of pixels per task, at most: 16 tiles of [`PR`] pixels are 224 pixels.
pub const CHUNK_TILES: usize = 16;

/// Most bytes of input one task reads (its pixels in every input channel), which stay in L2
/// while each weight panel passes over them.
pub const CHUNK_INPUT_BYTES: usize = 512 << 10;

/// Tasks per thread wanted for load balance.
const TASKS_PER_THREAD: usize = 4;

/// One task: pixels `p0..p0 + len` of image `img`, against weight panels `panel0..panel1`,
/// with the parts of the output it writes (one slice per output plane or block it covers,
/// each over its pixels only).
struct Task<'o> {
    img: usize,
    p0: usize,
    len: usize,
    panel0: usize,
    panel1: usize,
    dst: Vec<&'o mut [f32]>,
}

/// A 1x1 conv, stride 1, no padding, one group, on `n` images of `c_in` channels of `h x w`
/// pixels: `x` in layout `input`, `out` (`n * C_out * h * w` values, whatever they hold) and
/// `residual` (added before the activation, when given) in layout `output`. `packed` holds
/// the weights in panels of [`CR`] channels ([`PackedConv::transposed`]).
///
/// Each task takes a chunk of pixels of one image (at most [`CHUNK_TILES`] tiles of [`PR`]
/// pixels, and [`CHUNK_INPUT_BYTES`] of input; cut finer for the threads only where an
/// image's input outweighs the weights, which every chunk reads) and a band of weight panels,
/// and runs each panel over all its tiles in turn: the chunk's input stays in L2 and each
/// panel's weights in L1 while the tiles pass. Each output value is computed whole by one task, in the same
/// order whatever the split, so the result does not depend on the thread count.
///
/// # Panics
/// If the conv is not a 1x1, stride-1, unpadded, one-group conv packed in `CR`-channel
/// panels, a blocked tensor's channels are not a multiple of `BLOCK`, or a slice is shorter
/// than its shape.
#[allow(clippy::too_many_arguments)]
pub fn conv1x1(
    isa: Isa,
    pool: Option<&rayon::ThreadPool>,
    x: &[f32],
    input: Layout,
    (n, c_in, h, w): (usize, usize, usize, usize),
    packed: &PackedConv,
    out: &mut [f32],
    output: Layout,
    residual: Option<&[f32]>,
    act: Act,
) {
    let p = packed.params();
    assert!(
        packed.width() == CR
            && packed.taps() == c_in
            && p.stride == [1, 1]
            && p.pad == [0, 0]
            && p.groups == 1,
        "a 1x1 conv, stride 1, unpadded, one group, packed for the transposed tile"
    );
    let c_out = packed.c_out();
    let plane = h * w;
    for (layout, c) in [(input, c_in), (output, c_out)] {
        assert!(
            layout == Layout::Planes || c.is_multiple_of(BLOCK),
            "a blocked tensor holds whole blocks of channels"
        );
    }
    assert!(
        x.len() >= n * c_in * plane && out.len() >= n * c_out * plane,
        "the input and the output hold their shapes"
    );
    if let Some(r) = residual {
        assert!(
            r.len() >= n * c_out * plane,
            "the residual holds the output's shape"
        );
    }
    if n == 0 || plane == 0 || c_out == 0 {
        return;
    }
    // Each input row's offset from a pixel's place in its image: its channel's plane, or its
    // block's plane and its lane.
    let offs: Vec<usize> = (0..c_in)
        .map(|c| match input {
            Layout::Planes => c * plane,
            Layout::Blocked => (c / BLOCK) * plane * BLOCK + c % BLOCK,
        })
        .collect();
    let rows = Rows::new(&offs);
    let threads = pool.map_or(1, |p| p.current_num_threads());
    let panels = c_out.div_ceil(CR);
    let tiles = plane.div_ceil(PR);
    // The chunks of each image, and the bands of panels: enough tasks for every thread. Each
    // chunk reads every weight, and each band the chunk's input: where the weights outweigh an
    // image (the last stages' maps), as few chunks as its cache bound allows, and the tasks
    // cut by bands instead.
    let most_tiles = CHUNK_TILES.min((CHUNK_INPUT_BYTES / (c_in * PR * 4).max(1)).max(1));
    let want = if threads > 1 {
        TASKS_PER_THREAD * threads
    } else {
        1
    };
    let mut chunks = tiles.div_ceil(most_tiles);
    if c_out <= plane {
        chunks = chunks.max(want.div_ceil(n).min(tiles));
    }
    let chunk_px = tiles.div_ceil(chunks) * PR;
    let chunks = plane.div_ceil(chunk_px);
    let bands = want.div_ceil(n * chunks).clamp(1, panels);
    let band = panels.div_ceil(bands);
    // The output's parts, `[image][plane or block][chunk]`, handed to the tasks that write them.
    let unit = match output {
        Layout::Planes => 1,
        Layout::Blocked => BLOCK,
    };
    let mut parts: Vec<Vec<Vec<Option<&mut [f32]>>>> = out[..n * c_out * plane]
        .chunks_mut(c_out * plane)
        .map(|image| {
            image
                .chunks_mut(plane * unit)
                .map(|part| part.chunks_mut(chunk_px * unit).map(Some).collect())
                .collect()
        })
        .collect();
    let mut tasks = Vec::new();
    for (img, image) in parts.iter_mut().enumerate() {
        for chunk in 0..chunks {
            let p0 = chunk * chunk_px;
            let len = chunk_px.min(plane - p0);
            for b in 0..bands {
                let (panel0, panel1) = (b * band, ((b + 1) * band).min(panels));
                if panel0 >= panel1 {
                    continue;
                }
                // The planes (or blocks) of the band's channels.
                let (first, last) = (panel0 * CR / unit, (panel1 * CR).min(c_out).div_ceil(unit));
                let dst = image[first..last]
                    .iter_mut()
                    .map(|part| part[chunk].take().expect("each part goes to one task"))
                    .collect();
                tasks.push(Task {
                    img,
                    p0,
                    len,
                    panel0,
                    panel1,
                    dst,
                });
            }
        }
    }
    let job = Job {
        isa,
        x,
        input,
        c_in,
        c_out,
        plane,
        rows: &rows,
        packed,
        output,
        residual,
        act,
    };
    super::for_each_banded(pool, tasks, |t| job.run(t));
}

/// What every task of one [`conv1x1`] call shares.
struct Job<'a> {
    isa: Isa,
    x: &'a [f32],
    input: Layout,
    c_in: usize,
    c_out: usize,
    plane: usize,
    rows: &'a Rows<'a>,
    packed: &'a PackedConv,
    output: Layout,
    residual: Option<&'a [f32]>,
    act: Act,
}

impl Job<'_> {
    fn run(&self, t: Task) {
        let Task {
            img,
            p0,
            len,
            panel0,
            panel1,
            mut dst,
        } = t;
        let (isa, plane, c_out) = (self.isa, self.plane, self.c_out);
        let k = self.c_in;
        let x = &self.x[img * k * plane..][..k * plane];
        let residual = self
            .residual
            .map(|r| &r[img * c_out * plane..][..c_out * plane]);
        let (a_all, bias_all) = (self.packed.panels_data(), self.packed.bias());
        let mut acc = [0.0f32; CR * PR];
        let unit = match self.output {
            Layout::Planes => 1,
            Layout::Blocked => BLOCK,
        };
        let first_part = panel0 * CR / unit;
        // Rows past `c_out` in the last panel (which a tile writes all `CR` of), and the
        // residual's rows for them: zeros, only where that panel is partial.
        let mut spare_rows: Vec<Vec<f32>> = Vec::new();
        let mut padded_residual: Vec<f32> = Vec::new();
        for panel in panel0..panel1 {
            let c0 = panel * CR;
            let a = &a_all[panel * k * CR..][..k * CR];
            // The output channels of this panel that exist (the last panel's may not all).
            let width = CR.min(c_out - c0);
            let mut bias = [0.0f32; CR];
            bias[..width].copy_from_slice(&bias_all[c0..c0 + width]);
            let bias = &bias;
            // The tiles of the chunk, each with its span and where its input starts.
            let tiles = (0..len).step_by(PR).map(|q| {
                let px = PR.min(len - q);
                let span = Span::run(px).expect("1..=PR pixels");
                match self.input {
                    Layout::Planes => (q, px, span, p0 + q),
                    Layout::Blocked => (q, px, span.blocked(), (p0 + q) * BLOCK),
                }
            });
            let tiles: Vec<_> = tiles.collect();
            // A tile's sums, zeros without a reduction (no input channels).
            let sums = |span, base, acc: &mut [f32]| {
                if k > 0 {
                    isa.tile_pixels(span, a, x, base, self.rows, acc);
                } else {
                    acc.fill(0.0);
                }
            };
            match self.output {
                Layout::Planes => {
                    let at = c0 - first_part;
                    spare_rows.resize(CR - width, vec![0.0f32; len]);
                    let mut out_rows: Vec<&mut [f32]> = dst[at..at + width]
                        .iter_mut()
                        .map(|r| &mut **r)
                        .chain(spare_rows.iter_mut().map(|r| &mut r[..len]))
                        .collect();
                    // The residual's rows of this panel from the chunk's first pixel, as the
                    // output rows run; where the panel is partial, `CR` rows of `len` values,
                    // those past `c_out` zero.
                    let residual = match residual.map(|r| &r[c0 * plane + p0..]) {
                        Some(r) if width < CR => {
                            padded_residual.clear();
                            padded_residual.resize(CR * len, 0.0);
                            for i in 0..width {
                                padded_residual[i * len..(i + 1) * len]
                                    .copy_from_slice(&r[i * plane..i * plane + len]);
                            }
                            Some((padded_residual.as_slice(), len))
                        }
                        r => r.map(|r| (r, plane)),
                    };
                    // As `conv_gemm`'s transposed tiles: each tile's `CR` runs of output
                    // (and residual) lines, too many streams for the hardware prefetcher,
                    // asked for `LEAD` tiles ahead.
                    let warm = |out_rows: &[&mut [f32]], ti: usize| {
                        let Some(&(q, px, ..)) = tiles.get(ti) else {
                            return;
                        };
                        for (c, row) in out_rows.iter().enumerate() {
                            isa.prefetch_write(&row[q..=q]);
                            isa.prefetch_write(&row[q + px - 1..=q + px - 1]);
                            if let Some((r, ld)) = residual {
                                isa.prefetch(&r[c * ld + q..=c * ld + q]);
                                isa.prefetch(&r[c * ld + q + px - 1..=c * ld + q + px - 1]);
                            }
                        }
                    };
                    (0..LEAD).for_each(|ti| warm(&out_rows, ti));
                    for (ti, &(q, px, span, base)) in tiles.iter().enumerate() {
                        warm(&out_rows, ti + LEAD);
                        let acc = &mut acc[..px * CR];
                        sums(span, base, acc);
                        isa.write_pixels(
                            acc,
                            px,
                            TileOut {
                                rows: &mut out_rows,
                                runs: &[(0, q, px)],
                                bias,
                                residual,
                                in_place: false,
                                act: self.act,
                            },
                        );
                    }
                }
                Layout::Blocked => {
                    // Bias and activation in the tile where there is no residual to add
                    // first (and a reduction to run: without one the sums are zeros).
                    let in_tile = residual.is_none() && k > 0;
                    for (q, px, span, base) in tiles {
                        let acc = &mut acc[..px * CR];
                        if in_tile {
                            isa.tile_pixels_act(span, a, x, base, self.rows, acc, bias, self.act);
                        } else {
                            sums(span, base, acc);
                        }
                        for blk in 0..width / BLOCK {
                            let part = &mut dst[c0 / BLOCK + blk - first_part];
                            let d = &mut part[q * BLOCK..][..px * BLOCK];
                            let lane0 = blk * BLOCK;
                            let r = residual.map(|r| {
                                &r[(c0 / BLOCK + blk) * plane * BLOCK + (p0 + q) * BLOCK..]
                                    [..px * BLOCK]
                            });
                            let b = (!in_tile).then_some(&bias[lane0..lane0 + BLOCK]);
                            write_block(isa, d, acc, lane0, b, r, self.act);
                        }
                    }
                }
            }
        }
    }
}

/// Writes lanes `lane0..lane0 + BLOCK` of each pixel's sums (`acc[j * CR + c]`) to `d` (a
/// block's pixels, `BLOCK` values each): `act(sum + bias (+ residual))`, or the sums as they
/// are without a bias (the tile applied it).
#[inline(always)]
fn write_block(
    isa: Isa,
    d: &mut [f32],
    acc: &[f32],
    lane0: usize,
    bias: Option<&[f32]>,
    residual: Option<&[f32]>,
    act: Act,
) {
    isa.vectorized(
        #[inline(always)]
        || match (bias, residual) {
            (Some(b), Some(r)) => with_act!(act, |act| for ((dp, sp), rp) in d
                .chunks_exact_mut(BLOCK)
                .zip(acc.chunks_exact(CR))
                .zip(r.chunks_exact(BLOCK))
            {
                for (((o, &v), &bb), &rr) in dp.iter_mut().zip(&sp[lane0..]).zip(b).zip(rp) {
                    *o = act(v + bb + rr);
                }
            }),
            (Some(b), None) => with_act!(act, |act| for (dp, sp) in
                d.chunks_exact_mut(BLOCK).zip(acc.chunks_exact(CR))
            {
                for ((o, &v), &bb) in dp.iter_mut().zip(&sp[lane0..]).zip(b) {
                    *o = act(v + bb);
                }
            }),
            _ => {
                for (dp, sp) in d.chunks_exact_mut(BLOCK).zip(acc.chunks_exact(CR)) {
                    dp.copy_from_slice(&sp[lane0..lane0 + BLOCK]);
                }
            }
        },
    )
}
