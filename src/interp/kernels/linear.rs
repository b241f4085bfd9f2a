//! Fully connected layer `y = x · wᵀ + b` over `f32` matrices (PyTorch's `nn.Linear` layout).
//!
//! [`linear_ref`] is the naive specification (plain loops, `f32` accumulation); [`linear`] is the
//! fast version, one sgemm through `ndarray::linalg::general_mat_mul` on a transposed view of
//! the weight (no copy), then a bias pass. This file must not validate shapes beyond
//! `expect`ing what the shape checker guarantees, must not use `unsafe`, and references only
//! `ndarray` and `std`.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};

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
    let mut out = Array2::<f32>::zeros((x.len_of(Axis(0)), w.len_of(Axis(0))));
    general_mat_mul(1.0, &x, &w.t(), 0.0, &mut out);
    if let Some(b) = b {
        for mut row in out.rows_mut() {
            row += &b;
        }
    }
    out
}
