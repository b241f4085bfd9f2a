//! The input and output transforms of the Winograd conv, on whole panels of `NR` tiles with
//! fixed-width loops (`NR`, [`LANES`]), so that the compiler emits whole vectors and no
//! remainder code whatever the image's width.
//!
//! Input: a unit of consecutive tile panels is transformed a channel at a time. The padded
//! input rows its tile rows read are split once into even and odd columns; each tile row is
//! then transformed whole (`Bᵀ d B`, [`LANES`] tiles per step) into a buffer in tile order,
//! where the next tile row overwrites what a row computed past its end; each panel is then a
//! fixed-length copy from that buffer. Output: the products of a tile panel are transformed
//! back for all its `NR` tiles at once (`Aᵀ M A`), interleaved into output row segments at
//! full width, and written with bias, residual and ReLU in vector-wide steps (16 or 8 values,
//! the last one overlapping the one before, which is harmless since each value is written
//! whole).

use super::{Geo, POS, pos_len};
use crate::machine::simd::{Isa, MR};

/// Values per step of the loops along a row: one AVX-512 vector, two AVX2 ones.
const LANES: usize = 16;

/// Scratch of one thread for the input transform, kept between calls.
#[derive(Default)]
pub(super) struct InputScratch {
    /// Two channels' padded input rows a unit reads, `[2][rows][2 row_len]`.
    raw: Vec<f32>,
    /// Their even and odd columns: `[2][rows][2][row_len]`.
    eo: Vec<f32>,
    /// Two channels' transformed tiles in tile order, `[2][16][lin_len]`.
    lin: Vec<f32>,
}

/// Columns kept of each even or odd row: tile columns rounded up to whole steps, and one
/// step more, since each tile also reads the next column.
fn row_len(tw: usize) -> usize {
    tw.next_multiple_of(LANES) + LANES
}

/// Values of scratch one thread holds for the transforms of a conv on `w`-wide images with
/// units of up to `panels` tile panels of `nr` (an upper bound, saturating: for the memory
/// estimate).
pub(super) fn scratch_len(w: u64, nr: u64, panels: u64) -> u64 {
    let tw = w.div_ceil(2).saturating_add(1);
    let lanes = LANES as u64;
    let len = tw.saturating_add(2 * lanes - 1) / lanes * lanes;
    let cols = panels.saturating_mul(nr);
    let rows = cols.div_ceil(tw) + 1;
    let eo = (2 * rows + 2).saturating_mul(2).saturating_mul(len);
    let lin = rows
        .saturating_mul(tw)
        .saturating_add(len)
        .saturating_add(cols)
        .saturating_mul(POS as u64);
    let m = (POS * MR) as u64 * nr;
    // Two channels' `raw`, `eo` and `lin` (the first two of `eo`'s size), and the output's.
    eo.saturating_mul(4)
        .saturating_add(lin.saturating_mul(2))
        .saturating_add(m + 4 * nr)
}

#[inline(always)]
fn lanes<const W: usize>(s: &[f32], at: usize) -> [f32; W] {
    s[at..at + W].try_into().expect("a slice of W values")
}

#[inline(always)]
fn add<const W: usize>(a: [f32; W], b: [f32; W]) -> [f32; W] {
    std::array::from_fn(|i| a[i] + b[i])
}

#[inline(always)]
fn sub<const W: usize>(a: [f32; W], b: [f32; W]) -> [f32; W] {
    std::array::from_fn(|i| a[i] - b[i])
}

/// Fills `v` (`[panels][16][c_in][NR]`) with `Bᵀ d B` of tiles `first..first + tiles`
/// (numbered row-major over the image's tiles), with
/// `Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]`. Columns past `tiles`
/// in the last panel hold values the products compute with but nothing reads back.
///
/// Each channel goes through four stages (copy its padded input rows, split them into even
/// and odd columns, transform its tile rows, copy its panels), each reading what the stage
/// before wrote at other offsets; reading such values back at once would wait for the stores
/// to complete, so the stages run a channel apart, on two buffers each.
#[inline(always)]
pub(super) fn transform_input<const NR: usize>(
    x_b: &[f32],
    geo: &Geo,
    first: usize,
    tiles: usize,
    v: &mut [f32],
    s: &mut InputScratch,
    isa: Isa,
) {
    let c_in = geo.c_in;
    let pos_len = pos_len(c_in, NR);
    let tw = geo.tw;
    let (ty_a, ty_b) = (first / tw, (first + tiles - 1) / tw);
    let rows = ty_b - ty_a + 1;
    let len = row_len(tw);
    let panels = v.len() / (POS * pos_len);
    let lin_len = rows * tw + len + panels * NR;
    let in_rows = 2 * rows + 2;
    let (raw_len, eo_len) = (in_rows * 2 * len, in_rows * 2 * len);
    if s.eo.len() < 2 * eo_len {
        s.eo.resize(2 * eo_len, 0.0);
    }
    if s.lin.len() < 2 * POS * lin_len {
        s.lin.resize(2 * POS * lin_len, 0.0);
    }
    // The padding of `raw` stays zero: only the image's rows and columns are written below.
    s.raw.clear();
    s.raw.resize(2 * raw_len, 0.0);
    let [ph, pw] = geo.pad;
    let plane = geo.h * geo.w;
    let offset = first - ty_a * tw;
    let inside = |k: usize| {
        let r = 2 * ty_a + k;
        (r >= ph && r - ph < geo.h).then(|| r - ph)
    };
    let (raw, eo, lin) = (
        &mut s.raw[..2 * raw_len],
        &mut s.eo[..2 * eo_len],
        &mut s.lin[..2 * POS * lin_len],
    );
    for j in 0..c_in + 3 {
        // Stage 1, channel `j`: padded input rows `2 ty_a..2 ty_b + 4`.
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
            for (k, raw) in raw.chunks_exact_mut(2 * len).enumerate() {
                if let Some(r) = inside(k) {
                    let n = geo.w.min(2 * len - pw);
                    copy(&mut raw[pw..pw + n], &x_c[r * geo.w..][..n]);
                }
            }
        }
        // Stage 2, channel `j - 1`: their even and odd columns.
        if (1..=c_in).contains(&j) {
            let c = j - 1;
            let raw = &raw[(c % 2) * raw_len..][..raw_len];
            let eo = &mut eo[(c % 2) * eo_len..][..eo_len];
            for (raw, eo) in raw.chunks_exact(2 * len).zip(eo.chunks_exact_mut(2 * len)) {
                let (e, o) = eo.split_at_mut(len);
                let pairs = raw.chunks_exact(2 * LANES);
                for ((src, e), o) in pairs
                    .zip(e.chunks_exact_mut(LANES))
                    .zip(o.chunks_exact_mut(LANES))
                {
                    let src: [f32; 2 * LANES] = src.try_into().expect("2 LANES values");
                    let even: [f32; LANES] = std::array::from_fn(|i| src[2 * i]);
                    let odd: [f32; LANES] = std::array::from_fn(|i| src[2 * i + 1]);
                    e.copy_from_slice(&even);
                    o.copy_from_slice(&odd);
                }
            }
        }
        // Stage 3, channel `j - 2`: each tile row whole, in order, into `lin`, row `ty` at
        // `(ty - ty_a) tw`.
        if (2..=c_in + 1).contains(&j) {
            let c = j - 2;
            let eo = &eo[(c % 2) * eo_len..][..eo_len];
            let lin = &mut lin[(c % 2) * POS * lin_len..][..POS * lin_len];
            transform_rows(eo, len, rows, tw, lin, lin_len);
        }
        // Stage 4, channel `j - 3`: each panel, `NR` consecutive tiles of `lin` per position.
        if j >= 3 {
            let c = j - 3;
            let lin = &lin[(c % 2) * POS * lin_len..][..POS * lin_len];
            for (p, vp) in v.chunks_exact_mut(POS * pos_len).enumerate() {
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

/// `Bᵀ d B` of `rows` whole tile rows of one channel, from the even and odd columns `eo`
/// (`[2 rows + 2][2][len]`) into `lin` (`[16][lin_len]`, tile order).
#[inline(always)]
fn transform_rows(eo: &[f32], len: usize, rows: usize, tw: usize, lin: &mut [f32], lin_len: usize) {
    let steps = tw.next_multiple_of(LANES);
    for t in 0..rows {
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
                    let at = (a * 4 + k) * lin_len + t * tw + q;
                    lin[at..at + LANES].copy_from_slice(&val);
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` in vector-wide steps (the last one overlapping), so that a
/// short row costs no library call.
#[inline(always)]
fn copy(dst: &mut [f32], src: &[f32]) {
    #[inline(always)]
    fn by<const W: usize>(dst: &mut [f32], src: &[f32]) {
        steps::<W>(
            dst.len(),
            #[inline(always)]
            |at| dst[at..at + W].copy_from_slice(&src[at..at + W]),
        );
    }
    match dst.len() {
        n if n >= LANES => by::<LANES>(dst, src),
        n if n >= 8 => by::<8>(dst, src),
        _ => by::<1>(dst, src),
    }
}

/// Calls `f(at)` for `at = 0, W, ...` and a last `n - W` (so every value of `0..n` is
/// covered, the last step overlapping the one before); nothing when `n < W`.
#[inline(always)]
fn steps<const W: usize>(n: usize, mut f: impl FnMut(usize)) {
    if n < W {
        return;
    }
    let mut at = 0;
    while at + W < n {
        f(at);
        at += W;
    }
    f(n - W);
}

/// `(Aᵀ M A)[k]` of channel `i` of the products `m` (`[16][MR][NR]`), for every tile, with
/// `Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]]`: `y[2 dy + dx][q]` is tile `q`'s value at row `dy`,
/// column `dx`.
#[inline(always)]
pub(super) fn transform_output<const NR: usize>(m: &[f32], i: usize) -> [[f32; NR]; 4] {
    let row = |pos: usize| -> &[f32; NR] {
        m[(pos * MR + i) * NR..][..NR]
            .try_into()
            .expect("NR values")
    };
    // Rows first: `p0 = m0 + m1 + m2`, `p1 = m1 - m2 - m3` (rows of 4 positions), per column.
    let mut p = [[[0.0f32; NR]; 4]; 2];
    let (p0, p1) = p.split_at_mut(1);
    for (c, (p0, p1)) in p0[0].iter_mut().zip(&mut p1[0]).enumerate() {
        let (m0, m1, m2, m3) = (row(c), row(4 + c), row(8 + c), row(12 + c));
        for q in 0..NR {
            p0[q] = m0[q] + m1[q] + m2[q];
            p1[q] = m1[q] - m2[q] - m3[q];
        }
    }
    // Then the columns: `y0 = p0 + p1 + p2`, `y1 = p1 - p2 - p3` of each row.
    let mut y = [[0.0f32; NR]; 4];
    for (k, pk) in p.iter().enumerate() {
        for q in 0..NR {
            y[2 * k][q] = pk[0][q] + pk[1][q] + pk[2][q];
            y[2 * k + 1][q] = pk[1][q] - pk[2][q] - pk[3][q];
        }
    }
    y
}

/// Output rows `dy = 0, 1` of a panel's tiles side by side, `pair[dy][2 q + dx]`, from
/// [`transform_output`]'s values.
#[inline(always)]
pub(super) fn interleave<const NR: usize>(y: &[[f32; NR]; 4], pair: &mut [f32]) {
    for (dy, row) in pair[..4 * NR].chunks_exact_mut(2 * NR).enumerate() {
        let (a, b) = (&y[2 * dy], &y[2 * dy + 1]);
        for q in 0..NR {
            row[2 * q] = a[q];
            row[2 * q + 1] = b[q];
        }
    }
}

/// `dst = relu?(y + bias + res)`, element by element, in vector-wide steps.
#[inline(always)]
pub(super) fn write_act(dst: &mut [f32], y: &[f32], res: Option<&[f32]>, bias: f32, relu: bool) {
    match dst.len() {
        n if n >= LANES => write_by::<LANES>(dst, y, res, bias, relu),
        n if n >= 8 => write_by::<8>(dst, y, res, bias, relu),
        _ => write_by::<1>(dst, y, res, bias, relu),
    }
}

/// [`write_act`] in steps of `W` values.
#[inline(always)]
fn write_by<const W: usize>(
    dst: &mut [f32],
    y: &[f32],
    res: Option<&[f32]>,
    bias: f32,
    relu: bool,
) {
    let n = dst.len();
    let y = &y[..n];
    let act = |v: f32| if relu && v < 0.0 { 0.0 } else { v };
    match res {
        None => steps::<W>(
            n,
            #[inline(always)]
            |at| {
                let v = lanes::<W>(y, at);
                let d: &mut [f32; W] = (&mut dst[at..at + W]).try_into().expect("W values");
                *d = v.map(|v| act(v + bias));
            },
        ),
        Some(r) => {
            let r = &r[..n];
            steps::<W>(
                n,
                #[inline(always)]
                |at| {
                    let (v, r) = (lanes::<W>(y, at), lanes::<W>(r, at));
                    let d: &mut [f32; W] = (&mut dst[at..at + W]).try_into().expect("W values");
                    *d = std::array::from_fn(|i| act(v[i] + bias + r[i]));
                },
            )
        }
    }
}
