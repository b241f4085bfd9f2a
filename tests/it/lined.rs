//! Under the binary's allocator (installed for this test binary in `main.rs`), the kernels'
//! outputs start on a cache line, so that each of their 64-byte vectors is one line.

use ndarray::{Array1, Array4};
use resnetc::interp::kernels::conv::Conv2dParams;
use resnetc::interp::kernels::conv_gemm::{PackedConv, conv2d_packed};
use resnetc::machine::memory::{LINE, LINED_BLOCK, zeros};
use resnetc::machine::simd::Isa;

fn on_line(p: *const f32) -> bool {
    (p as usize).is_multiple_of(LINE)
}

/// `zeros` of 64 KiB and more is zeros on a line, every time (not one block in four, as
/// `calloc`'s 16-byte alignment would give by chance).
#[test]
fn large_zeros_start_on_a_cache_line() {
    let blocks: Vec<Vec<f32>> = (0..16)
        .map(|i| zeros(LINED_BLOCK / 4 + 1000 * i + 3))
        .collect();
    for b in &blocks {
        assert!(
            on_line(b.as_ptr()),
            "{} values at {:p}",
            b.len(),
            b.as_ptr()
        );
        assert!(b.iter().all(|&v| v == 0.0));
    }
}

/// A packed conv's fresh outputs (64 channels of 56x56, 784 KiB each) start on a line.
#[test]
fn conv_outputs_start_on_a_cache_line() {
    let x = Array4::from_shape_fn((1, 16, 56, 56), |(_, c, h, w)| (c + h + w) as f32 * 0.01);
    let w = Array4::from_shape_fn((64, 16, 1, 1), |(o, i, _, _)| (o as f32 - i as f32) * 0.01);
    let b = Array1::from_elem(64, 0.5);
    let pc = PackedConv::new(w.view(), Some(b.view()), Conv2dParams::default());
    let outs: Vec<Array4<f32>> = (0..16)
        .map(|_| conv2d_packed(x.view(), &pc, None, true, Isa::best(), None))
        .collect();
    for y in &outs {
        assert_eq!(y.dim(), (1, 64, 56, 56));
        assert!(on_line(y.as_ptr()), "an output at {:p}", y.as_ptr());
    }
    // The values themselves: one by hand.
    let want: f32 = 0.5
        + (0..16)
            .map(|i| (3.0 - i as f32) * 0.01 * (i + 2 + 5) as f32 * 0.01)
            .sum::<f32>();
    assert!((outs[0][[0, 3, 2, 5]] - want.max(0.0)).abs() < 1e-5);
}
