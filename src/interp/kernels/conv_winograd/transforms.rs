//! The input and output transforms of the Winograd conv, on whole panels of `NR` tiles with
//! fixed-width loops (`NR`, [`LANES`]), so that the compiler emits whole vectors and no
//! remainder code whatever the image's width.
//!
//! Input: a unit of consecutive tile panels is transformed a channel at a time. The padded
//! input rows its tile rows read are split once by column phase (column modulo the tile's
//! `M` outputs: even and odd columns for 2x2 tiles); each tile row is
//! then transformed whole (`Bᵀ d B`, [`LANES`] tiles per step) into a buffer in tile order,
//! where the next tile row overwrites what a row computed past its end; each panel is then a
//! fixed-length copy from that buffer. Output: the products of a tile panel are transformed
//! back for all its `NR` tiles at once (`Aᵀ M A`), interleaved into output row segments at
//! full width, and written with bias, residual and ReLU in vector-wide steps (16 or 8 values,
//! the last one overlapping the one before, which is harmless since each value is written
//! whole).

use super::{Geo, pos_len, positions};
use crate::machine::simd::{Isa, MR};

/// Values per step of the loops along a row: one AVX-512 vector, two AVX2 ones.
const LANES: usize = 16;

/// Scratch of one thread for the input transform, kept between calls.
#[derive(Default)]
pub(super) struct InputScratch {
    /// Two channels' padded input rows a unit reads, `[2][rows][M row_len]`.
    raw: Vec<f32>,
    /// Their columns split by phase (column modulo `M`): `[2][rows][M][row_len]`.
    eo: Vec<f32>,
    /// Two channels' transformed tiles in tile order, `[2][positions][lin_len]`.
    lin: Vec<f32>,
}

/// Columns kept of each phase of a row: tile columns rounded up to whole steps, and one step
/// more, since each tile also reads the next tile's first columns.
fn row_len(tw: usize) -> usize {
    tw.next_multiple_of(LANES) + LANES
}

/// Values of scratch one thread holds for the transforms of a conv with `m x m` output tiles
/// on `w`-wide images with units of up to `panels` tile panels of `nr` (an upper bound,
/// saturating: for the memory estimate).
pub(super) fn scratch_len(w: u64, m: u64, nr: u64, panels: u64) -> u64 {
    let tw = w.div_ceil(m).saturating_add(1);
    let lanes = LANES as u64;
    let len = tw.saturating_add(2 * lanes - 1) / lanes * lanes;
    let cols = panels.saturating_mul(nr);
    let rows = cols.div_ceil(tw) + 1;
    let pos = (m + 2) * (m + 2);
    let eo = (m * rows + 2).saturating_mul(m).saturating_mul(len);
    let lin = rows
        .saturating_mul(tw)
        .saturating_add(len)
        .saturating_add(cols)
        .saturating_mul(pos);
    let products = pos * MR as u64 * nr;
    // Two channels' `raw`, `eo` and `lin` (the first two of `eo`'s size), and the output's.
    eo.saturating_mul(4)
        .saturating_add(lin.saturating_mul(2))
        .saturating_add(products + m * m * nr)
}

#[inline(always)]
fn lanes<const W: usize>(s: &[f32], at: usize) -> [f32; W] {
    s[at..at + W].try_into().expect("a slice of W values")
}

/// `f(a[i], b[i])` for each lane, by a plain loop: `std::array::from_fn` goes through a
/// function the compiler may leave out of line however much the callers are inlined (the
/// 4x4 transforms then ran 17% slower when the code around them grew).
#[inline(always)]
fn lanewise<const W: usize>(a: [f32; W], b: [f32; W], f: impl Fn(f32, f32) -> f32) -> [f32; W] {
    let mut out = a;
    for (o, &b) in out.iter_mut().zip(&b) {
        *o = f(*o, b);
    }
    out
}

#[inline(always)]
fn add<const W: usize>(a: [f32; W], b: [f32; W]) -> [f32; W] {
    lanewise(a, b, |a, b| a + b)
}

#[inline(always)]
fn sub<const W: usize>(a: [f32; W], b: [f32; W]) -> [f32; W] {
    lanewise(a, b, |a, b| a - b)
}

/// Fills `v` (`[panels][positions][c_in][NR]`) with `Bᵀ d B` of tiles `first..first + tiles`
/// (numbered row-major over the image's tiles), `Bᵀ` the `(M + 2) x (M + 2)` matrix of
/// [`transform_rows2`] or [`input_step4`]. With `rot_rows` > 0 (`first` then the first tile of
/// a row, `tiles` whole rows) the rows go in the order that starts at row `rot_rows` (counted
/// from 0) and wraps around to the first after the last (the first `rot_rows` rows last).
/// Columns past `tiles` in the last panel hold values the products compute with but nothing
/// reads back.
///
/// Each channel goes through four stages (copy its padded input rows, split them by column
/// phase, transform its tile rows, copy its panels), each reading what the stage before wrote
/// at other offsets; reading such values back at once would wait for the stores to complete,
/// so the stages run a channel apart, on two buffers each.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn transform_input<const NR: usize, const M: usize>(
    x_b: &[f32],
    geo: &Geo,
    first: usize,
    tiles: usize,
    rot_rows: usize,
    v: &mut [f32],
    s: &mut InputScratch,
    isa: Isa,
) {
    debug_assert!(
        rot_rows == 0
            || (first.is_multiple_of(geo.tw)
                && tiles.is_multiple_of(geo.tw)
                && rot_rows < tiles / geo.tw),
        "rows turned whole"
    );
    let c_in = geo.c_in;
    let pos = positions(M);
    let pos_len = pos_len(c_in, NR);
    let tw = geo.tw;
    let (ty_a, ty_b) = (first / tw, (first + tiles - 1) / tw);
    let rows = ty_b - ty_a + 1;
    let len = row_len(tw);
    let panels = v.len() / (pos * pos_len);
    let lin_len = rows * tw + len + panels * NR;
    let in_rows = M * rows + 2;
    let (raw_len, eo_len) = (in_rows * M * len, in_rows * M * len);
    if s.eo.len() < 2 * eo_len {
        s.eo.resize(2 * eo_len, 0.0);
    }
    if s.lin.len() < 2 * pos * lin_len {
        s.lin.resize(2 * pos * lin_len, 0.0);
    }
    // The padding of `raw` stays zero: only the image's rows and columns are written below.
    s.raw.clear();
    s.raw.resize(2 * raw_len, 0.0);
    let [ph, pw] = geo.pad;
    let plane = geo.h * geo.w;
    let offset = first - ty_a * tw;
    let inside = |k: usize| {
        let r = M * ty_a + k;
        (r >= ph && r - ph < geo.h).then(|| r - ph)
    };
    let (raw, eo, lin) = (
        &mut s.raw[..2 * raw_len],
        &mut s.eo[..2 * eo_len],
        &mut s.lin[..2 * pos * lin_len],
    );
    for j in 0..c_in + 3 {
        // Stage 1, channel `j`: padded input rows `M ty_a..M ty_b + M + 2`.
        if j < c_in {
            // The rows of the channel after next, which a batch's input (past L2) would
            // otherwise bring in one miss at a time.
            if j + 2 < c_in {
                let x_n = &x_b[(j + 2) * plane..][..plane];
                for k in 0..in_rows {
                    if let Some(r) = inside(k) {
                        isa.prefetch(&x_n[r * geo.w..][..geo.w]);
                    }
                }
            }
            let x_c = &x_b[j * plane..][..plane];
            let raw = &mut raw[(j % 2) * raw_len..][..raw_len];
            for (k, raw) in raw.chunks_exact_mut(M * len).enumerate() {
                if let Some(r) = inside(k) {
                    let n = geo.w.min(M * len - pw);
                    super::super::copy_row(&mut raw[pw..pw + n], &x_c[r * geo.w..][..n]);
                }
            }
        }
        // Stage 2, channel `j - 1`: their columns by phase.
        if (1..=c_in).contains(&j) {
            let c = j - 1;
            let raw = &raw[(c % 2) * raw_len..][..raw_len];
            let eo = &mut eo[(c % 2) * eo_len..][..eo_len];
            for (raw, eo) in raw.chunks_exact(M * len).zip(eo.chunks_exact_mut(M * len)) {
                for (k, src) in raw.chunks_exact(M * LANES).enumerate() {
                    if M == 2 {
                        let src: &[f32; 2 * LANES] = src.try_into().expect("2 LANES values");
                        split_phases::<2, { 2 * LANES }>(src, eo, len, k * LANES);
                    } else {
                        let src: &[f32; 4 * LANES] = src.try_into().expect("4 LANES values");
                        split_phases::<4, { 4 * LANES }>(src, eo, len, k * LANES);
                    }
                }
            }
        }
        // Stage 3, channel `j - 2`: each tile row whole, in order, into `lin`, row `ty` at
        // `(ty - ty_a) tw` (with `rot_rows`, at `((ty - ty_a + rows - rot_rows) % rows) tw`).
        if (2..=c_in + 1).contains(&j) {
            let c = j - 2;
            let eo = &eo[(c % 2) * eo_len..][..eo_len];
            let lin = &mut lin[(c % 2) * pos * lin_len..][..pos * lin_len];
            if M == 2 {
                transform_rows2(eo, len, rows, rot_rows, tw, lin, lin_len);
            } else {
                transform_rows4(eo, len, rows, rot_rows, tw, lin, lin_len);
            }
        }
        // Stage 4, channel `j - 3`: each panel, `NR` consecutive tiles of `lin` per position.
        if j >= 3 {
            let c = j - 3;
            let lin = &lin[(c % 2) * pos * lin_len..][..pos * lin_len];
            for (p, vp) in v.chunks_exact_mut(pos * pos_len).enumerate() {
                for (src, dst) in lin.chunks_exact(lin_len).zip(vp.chunks_exact_mut(pos_len)) {
                    let src: &[f32; NR] =
                        src[offset + p * NR..][..NR].try_into().expect("NR values");
                    let dst: &mut [f32; NR] =
                        (&mut dst[c * NR..][..NR]).try_into().expect("NR values");
                    *dst = *src;
                }
            }
        }
    }
}

/// Values a tile spans along each axis: `M + 2`.
const fn span(m: usize) -> usize {
    m + 2
}

/// Column `M i + phase` of `src` into `eo[phase len + at + i]`, for each of the [`LANES`]
/// columns `i` and each phase.
#[inline(always)]
fn split_phases<const M: usize, const W: usize>(
    src: &[f32; W],
    eo: &mut [f32],
    len: usize,
    at: usize,
) {
    for phase in 0..M {
        for (i, e) in eo[phase * len + at..][..LANES].iter_mut().enumerate() {
            *e = src[M * i + phase];
        }
    }
}

/// `Bᵀ d B` of `rows` whole tile rows of one channel for `M = 2`, with
/// `Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]`, from the even and odd
/// columns `eo` (`[2 rows + 2][2][len]`) into `lin` (`[16][lin_len]`, tile order, the rows
/// from the `rot`-th on and wrapped around). Each row is written in that order, over what the
/// row before computed past its end.
#[inline(always)]
fn transform_rows2(
    eo: &[f32],
    len: usize,
    rows: usize,
    rot: usize,
    tw: usize,
    lin: &mut [f32],
    lin_len: usize,
) {
    let steps = tw.next_multiple_of(LANES);
    for i in 0..rows {
        let t = (i + rot) % rows;
        let e = |k: usize| &eo[(2 * t + k) * 2 * len..][..len];
        let o = |k: usize| &eo[(2 * t + k) * 2 * len + len..][..len];
        let (e, o) = ([e(0), e(1), e(2), e(3)], [o(0), o(1), o(2), o(3)]);
        for q in (0..steps).step_by(LANES) {
            // `d[r][c]` of the tiles' 4x4 inputs, `c` even at `q`, odd at `q`, then the next
            // tile's (`q + 1`).
            let at = |rows: &[&[f32]; 4], d: usize| rows.map(|row| lanes::<LANES>(row, q + d));
            let (e0, o0, e1, o1) = (at(&e, 0), at(&o, 0), at(&e, 1), at(&o, 1));
            // Down the columns: row `a` of `Bᵀ d`.
            let down = |c: [[f32; LANES]; 4]| {
                [
                    sub(c[0], c[2]),
                    add(c[1], c[2]),
                    sub(c[2], c[1]),
                    sub(c[1], c[3]),
                ]
            };
            let (e0, o0, e1, o1) = (down(e0), down(o0), down(e1), down(o1));
            for a in 0..4 {
                // Along the rows: `d0 = e0, d1 = o0, d2 = e1, d3 = o1`.
                let out = [
                    sub(e0[a], e1[a]),
                    add(o0[a], e1[a]),
                    sub(e1[a], o0[a]),
                    sub(o0[a], o1[a]),
                ];
                for (k, val) in out.into_iter().enumerate() {
                    let at = (a * 4 + k) * lin_len + i * tw + q;
                    lin[at..at + LANES].copy_from_slice(&val);
                }
            }
        }
    }
}

/// `Bᵀ` of F(4x4, 3x3) (points 0, ±1, ±2) on 6 vectors:
/// `Bᵀ = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
/// [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]`.
#[inline(always)]
fn input_step4(d: &[[f32; LANES]; 6], out: &mut [[f32; LANES]; 6]) {
    for i in 0..LANES {
        // `t0 ± t1` and `t2 ± t3` share their terms.
        let (t0, t1) = (d[4][i] - 4.0 * d[2][i], d[3][i] - 4.0 * d[1][i]);
        let (t2, t3) = (d[4][i] - d[2][i], 2.0 * (d[3][i] - d[1][i]));
        out[0][i] = 4.0 * d[0][i] - 5.0 * d[2][i] + d[4][i];
        out[1][i] = t0 + t1;
        out[2][i] = t0 - t1;
        out[3][i] = t2 + t3;
        out[4][i] = t2 - t3;
        out[5][i] = 4.0 * d[1][i] - 5.0 * d[3][i] + d[5][i];
    }
}

/// `Bᵀ d B` of `rows` whole tile rows of one channel for `M = 4`, from the columns by phase
/// `eo` (`[4 rows + 2][4][len]`) into `lin` (`[36][lin_len]`, tile order, the rows from the
/// `rot`-th on and wrapped around, as in [`transform_rows2`]).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `cols` is read across, by row of `Bᵀ d`
fn transform_rows4(
    eo: &[f32],
    len: usize,
    rows: usize,
    rot: usize,
    tw: usize,
    lin: &mut [f32],
    lin_len: usize,
) {
    let steps = tw.next_multiple_of(LANES);
    let mut d = [[0.0f32; LANES]; 6];
    let mut cols = [[[0.0f32; LANES]; 6]; 6];
    let mut out = [[0.0f32; LANES]; 6];
    for i in 0..rows {
        let t = (i + rot) % rows;
        let rows: &[f32] = &eo[4 * t * 4 * len..][..6 * 4 * len];
        for q in (0..steps).step_by(LANES) {
            // Down each column `c` of the tiles' inputs: phase `c % 4`, from tile `q + c / 4`.
            for (c, col) in cols.iter_mut().enumerate() {
                let at = (c % 4) * len + q + c / 4;
                for (k, d) in d.iter_mut().enumerate() {
                    *d = lanes::<LANES>(rows, k * 4 * len + at);
                }
                input_step4(&d, col);
            }
            // Along each row `a` of `Bᵀ d`.
            for a in 0..6 {
                for (c, d) in d.iter_mut().enumerate() {
                    *d = cols[c][a];
                }
                input_step4(&d, &mut out);
                for (k, val) in out.iter().enumerate() {
                    let at = (a * 6 + k) * lin_len + i * tw + q;
                    lin[at..at + LANES].copy_from_slice(val);
                }
            }
        }
    }
}

/// `Aᵀ` of F(4x4, 3x3) on 6 values:
/// `Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]`
/// (for F(2x2, 3x3), `Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]]`, written out in
/// [`transform_output`]).
#[inline(always)]
fn output_step4(m: [f32; 6]) -> [f32; 4] {
    let (s12, d12) = (m[1] + m[2], m[1] - m[2]);
    let (s34, d34) = (m[3] + m[4], m[3] - m[4]);
    [
        m[0] + s12 + s34,
        d12 + 2.0 * d34,
        s12 + 4.0 * s34,
        d12 + 8.0 * d34 + m[5],
    ]
}

/// `(Aᵀ M A)` of channel `i` of the products `m` (`[(M + 2)²][MR][NR]`), for every tile:
/// `y[M dy + dx][q]` is tile `q`'s value at row `dy`, column `dx` (the first `M²` rows).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `p` is written across, by column of the products
pub(super) fn transform_output<const NR: usize, const M: usize>(
    m: &[f32],
    i: usize,
    y: &mut [[f32; NR]; 16],
) {
    let t_len = span(M);
    let row = |pos: usize| -> &[f32; NR] {
        m[(pos * MR + i) * NR..][..NR]
            .try_into()
            .expect("NR values")
    };
    // Down the columns first: `p[k][c]` is row `k` of `Aᵀ` on column `c`'s positions.
    let mut p = [[[0.0f32; NR]; 6]; 4];
    for c in 0..t_len {
        if M == 2 {
            let (m0, m1, m2, m3) = (row(c), row(4 + c), row(8 + c), row(12 + c));
            for q in 0..NR {
                p[0][c][q] = m0[q] + m1[q] + m2[q];
                p[1][c][q] = m1[q] - m2[q] - m3[q];
            }
        } else {
            let (m0, m1, m2) = (row(c), row(6 + c), row(12 + c));
            let (m3, m4, m5) = (row(18 + c), row(24 + c), row(30 + c));
            for q in 0..NR {
                let out = output_step4([m0[q], m1[q], m2[q], m3[q], m4[q], m5[q]]);
                for k in 0..4 {
                    p[k][c][q] = out[k];
                }
            }
        }
    }
    // Then along each row.
    for (k, pk) in p.iter().enumerate().take(M) {
        for q in 0..NR {
            if M == 2 {
                y[2 * k][q] = pk[0][q] + pk[1][q] + pk[2][q];
                y[2 * k + 1][q] = pk[1][q] - pk[2][q] - pk[3][q];
            } else {
                let out =
                    output_step4([pk[0][q], pk[1][q], pk[2][q], pk[3][q], pk[4][q], pk[5][q]]);
                for l in 0..4 {
                    y[4 * k + l][q] = out[l];
                }
            }
        }
    }
}

/// Output rows `dy < M` of a panel's tiles side by side, `rows[dy][M q + dx]`, from
/// [`transform_output`]'s values.
#[inline(always)]
pub(super) fn interleave<const NR: usize, const M: usize>(y: &[[f32; NR]; 16], rows: &mut [f32]) {
    for (dy, row) in rows[..M * M * NR].chunks_exact_mut(M * NR).enumerate() {
        for q in 0..NR {
            for dx in 0..M {
                row[M * q + dx] = y[M * dy + dx][q];
            }
        }
    }
}

/// What an output pass adds to its values besides the bias.
#[derive(Debug, Clone, Copy)]
pub(super) enum Residual<'a> {
    None,
    /// These values, one per output value.
    From(&'a [f32]),
    /// The values the output holds (a residual it is written over).
    InPlace,
}

/// `dst = relu?(y + bias + res)`, element by element, in vector-wide steps.
#[inline(always)]
pub(super) fn write_act(dst: &mut [f32], y: &[f32], res: Residual, bias: f32, relu: bool) {
    match dst.len() {
        n if n >= LANES => write_by::<LANES>(dst, y, res, bias, relu),
        n if n >= 8 => write_by::<8>(dst, y, res, bias, relu),
        _ => write_by::<1>(dst, y, res, bias, relu),
    }
}

/// [`write_act`] in steps of `W` values.
#[inline(always)]
fn write_by<const W: usize>(dst: &mut [f32], y: &[f32], res: Residual, bias: f32, relu: bool) {
    let n = dst.len();
    let y = &y[..n];
    let act = |v: f32| if relu && v < 0.0 { 0.0 } else { v };
    match res {
        Residual::None => super::super::steps::<W>(
            n,
            #[inline(always)]
            |at| {
                let v = lanes::<W>(y, at);
                let d: &mut [f32; W] = (&mut dst[at..at + W]).try_into().expect("W values");
                *d = v.map(|v| act(v + bias));
            },
        ),
        // Whole steps, then one value at a time: unlike `steps`, whose last step may go over
        // values already written, each value here is read once before it is written.
        Residual::InPlace => {
            let mut at = 0;
            while at + W <= n {
                let v = lanes::<W>(y, at);
                let d: &mut [f32; W] = (&mut dst[at..at + W]).try_into().expect("W values");
                *d = lanewise(v, *d, |v, d| act(v + bias + d));
                at += W;
            }
            for (d, &v) in dst[at..].iter_mut().zip(&y[at..]) {
                *d = act(v + bias + *d);
            }
        }
        Residual::From(r) => {
            let r = &r[..n];
            super::super::steps::<W>(
                n,
                #[inline(always)]
                |at| {
                    let (v, r) = (lanes::<W>(y, at), lanes::<W>(r, at));
                    let d: &mut [f32; W] = (&mut dst[at..at + W]).try_into().expect("W values");
                    *d = lanewise(v, r, |v, r| act(v + bias + r));
                },
            )
        }
    }
}
