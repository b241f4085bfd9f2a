//! Fully connected layer `y = x · wᵀ + b` over `f32` matrices (PyTorch's `nn.Linear` layout).
//!
//! [`linear_ref`] is the naive specification (plain loops, `f32` accumulation); [`linear`] is the
//! fast version. For a batch of up to [`DOT_ROWS`] rows it reads each weight row once and takes
//! its dot product with every input row while the row is in L1 (a classifier head at batch 1
//! is a matrix-vector product, bound by reading the weights: an sgemm would first pack the
//! whole weight matrix, reading it twice and writing it once); larger batches go through one
//! sgemm (`ndarray::linalg::general_mat_mul`) on a transposed view of the weight, then a bias
//! pass. On a worker pool the weight rows of the first path are shared out over its threads
//! (each output is still one thread's dot product, so the result does not change), in the
//! CPU's widest vectors (the same sums in the same order, so the same bits). This file must
//! not validate shapes beyond `expect`ing what the shape checker guarantees, must not use
//! `unsafe`, and references only `ndarray`, `rayon`, `std` and `crate::machine::simd`.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};

use crate::machine::simd::Isa;

fn check(x: &ArrayView2<f32>, w: &ArrayView2<f32>, b: Option<&ArrayView1<f32>>) {
    assert_eq!(
        x.len_of(Axis(1)),
        w.len_of(Axis(1)),
        "the shape checker guarantees x and w share the input width"
    );
    if let Some(b) = b {
        assert_eq!(
            b.len(),
            w.len_of(Axis(0)),
            "the shape checker guarantees one bias per output"
        );
    }
}

/// Naive reference linear layer: the specification [`linear`] is tested against.
///
/// # Shapes
/// - `x`: `[N, in]`; `w`: `[out, in]`; `b`: `[out]`
/// - returns `[N, out]`
///
/// # Preconditions
/// The widths agree (the shape checker guarantees it; panics otherwise).
pub fn linear_ref(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    b: Option<ArrayView1<f32>>,
) -> Array2<f32> {
    check(&x, &w, b.as_ref());
    let (n, k) = x.dim();
    let m = w.len_of(Axis(0));
    Array2::from_shape_fn((n, m), |(i, o)| {
        let mut acc = b.as_ref().map_or(0.0, |bv| bv[o]);
        for j in 0..k {
            acc += x[[i, j]] * w[[o, j]];
        }
        acc
    })
}

/// Fast linear layer: `x · wᵀ` by sgemm on the transposed view of `w`, then `+ b`.
///
/// # Shapes
/// - `x`: `[N, in]`; `w`: `[out, in]`; `b`: `[out]`
/// - returns `[N, out]`
///
/// # Preconditions
/// The widths agree (the shape checker guarantees it; panics otherwise).
pub fn linear(x: ArrayView2<f32>, w: ArrayView2<f32>, b: Option<ArrayView1<f32>>) -> Array2<f32> {
    check(&x, &w, b.as_ref());
    let (n, k) = x.dim();
    if n <= DOT_ROWS {
        let (x, w) = (x.as_standard_layout(), w.as_standard_layout());
        let xs = x.as_slice().expect("standard layout is contiguous");
        let ws = w.as_slice().expect("standard layout is contiguous");
        let m = w.len_of(Axis(0));
        let mut out = Array2::<f32>::zeros((n, m));
        if k == 0 {
            // No products: every output is its bias.
            for mut row in out.rows_mut() {
                if let Some(b) = &b {
                    row.assign(b);
                }
            }
            return out;
        }
        // `[m][n]`: each block of weight rows fills its own outputs, every value whole.
        let mut t = vec![0.0f32; m * n];
        let isa = Isa::configured();
        let fill = |(c, block): (usize, &mut [f32])| {
            isa.vectorized(
                #[inline(always)]
                || {
                    let rows = ws[c * ROWS_PER_TASK * k..].chunks_exact(k);
                    for ((j, dst), w_row) in block.chunks_exact_mut(n).enumerate().zip(rows) {
                        let bias = b.as_ref().map_or(0.0, |b| b[c * ROWS_PER_TASK + j]);
                        for (d, x_row) in dst.iter_mut().zip(xs.chunks_exact(k)) {
                            *d = dot(x_row, w_row) + bias;
                        }
                    }
                },
            )
        };
        // On a worker pool (as `run` calls it with several threads), the weight rows are
        // shared out over its threads, whose reads of memory add up; the result is the same.
        if super::on_worker_pool() {
            use rayon::prelude::*;
            t.par_chunks_mut(ROWS_PER_TASK * n)
                .enumerate()
                .for_each(fill);
        } else {
            t.chunks_mut(ROWS_PER_TASK * n).enumerate().for_each(fill);
        }
        for ((i, o), v) in out.indexed_iter_mut() {
            *v = t[o * n + i];
        }
        return out;
    }
    let mut out = Array2::<f32>::zeros((x.len_of(Axis(0)), w.len_of(Axis(0))));
    general_mat_mul(1.0, &x, &w.t(), 0.0, &mut out);
    if let Some(b) = b {
        for mut row in out.rows_mut() {
            row += &b;
        }
    }
    out
}

/// Batches up to this many rows take [`linear`]'s dot-product path.
pub const DOT_ROWS: usize = 16;

/// Weight rows per task of the matrix-vector path (256 KiB of a 1000 x 2048 head's weights).
const ROWS_PER_TASK: usize = 32;

/// `sum a[i] * b[i]` over 16 partial sums (independent chains that vectorize), then the tail.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0.0f32; LANES];
    let (a_body, a_tail) = a.split_at(a.len() / LANES * LANES);
    let (b_body, b_tail) = b.split_at(a_body.len());
    for (x, y) in a_body.chunks_exact(LANES).zip(b_body.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in a_tail.iter().zip(b_tail) {
        s += x * y;
    }
    s
}
