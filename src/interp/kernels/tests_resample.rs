//! Tests of the resampling kernels and the transposed convolution: each fast kernel against its naive reference on random
//! small shapes, and hand-computed cases of PyTorch's coordinate rules.

use ndarray::{Array4, array};
use proptest::prelude::*;

use super::tests::{close, rand4};
use super::*;

fn mode(pick: u8) -> Interpolation {
    match pick % 3 {
        0 => Interpolation::Nearest,
        1 => Interpolation::Bilinear {
            align_corners: false,
        },
        _ => Interpolation::Bilinear {
            align_corners: true,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any output size, up or down, or an integer factor.
    #[test]
    fn resize_matches_reference(
        n in 1..3usize, c in 1..3usize, h in 1..7usize, w in 1..7usize,
        oh in 1..13usize, ow in 1..13usize, f in 1..4usize, by_factor: bool,
        pick: u8, seed: u64,
    ) {
        let x = rand4(seed, (n, c, h, w));
        let p = if by_factor {
            ResizeParams { out: [h * f, w * f], factors: Some([f, f]), mode: mode(pick) }
        } else {
            ResizeParams { out: [oh, ow], factors: None, mode: mode(pick) }
        };
        close(&resize(x.view(), &p), &resize_ref(x.view(), &p)).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn crop_and_pad_match_their_references(
        n in 1..3usize, c in 1..3usize, h in 1..9usize, w in 1..9usize,
        dh in 0..5usize, dw in 0..5usize, sides in [0..3usize, 0..3usize, 0..3usize, 0..3usize],
        seed: u64,
    ) {
        let x = rand4(seed, (n, c, h + dh, w + dw));
        prop_assert_eq!(crop(x.view(), [h, w]), crop_ref(x.view(), [h, w]));
        let padded = pad(x.view(), sides);
        prop_assert_eq!(&padded, &pad_ref(x.view(), sides));
        // Cropping a symmetric padding off again gives the input back.
        let [l, _, t, _] = sides;
        let even = pad(x.view(), [l, l, t, t]);
        prop_assert_eq!(crop(even.view(), [h + dh, w + dw]), x);
    }
}

fn plane(v: Vec<f32>, h: usize, w: usize) -> Array4<f32> {
    Array4::from_shape_vec((1, 1, h, w), v).unwrap()
}

#[test]
fn nearest_by_two_repeats_each_pixel() {
    let x = plane(vec![1.0, 2.0, 3.0, 4.0], 2, 2);
    let p = ResizeParams {
        out: [4, 4],
        factors: Some([2, 2]),
        mode: Interpolation::Nearest,
    };
    let want = array![[
        [1.0, 1.0, 2.0, 2.0],
        [1.0, 1.0, 2.0, 2.0],
        [3.0, 3.0, 4.0, 4.0],
        [3.0, 3.0, 4.0, 4.0]
    ]]
    .insert_axis(ndarray::Axis(0));
    assert_eq!(resize(x.view(), &p), want);
}

#[test]
fn bilinear_by_hand() {
    // One row [0, 4] to width 4. Aligned corners: source 0, 1/3, 2/3, 1 → 0, 4/3, 8/3, 4.
    // Half pixel: source (d + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (the
    // last pixel repeats past the edge) → 0, 1, 3, 4.
    let x = plane(vec![0.0, 4.0], 1, 2);
    let run = |align_corners| {
        let p = ResizeParams {
            out: [1, 4],
            factors: None,
            mode: Interpolation::Bilinear { align_corners },
        };
        resize(x.view(), &p).iter().copied().collect::<Vec<f32>>()
    };
    let aligned = run(true);
    for (a, b) in aligned.iter().zip([0.0, 4.0 / 3.0, 8.0 / 3.0, 4.0]) {
        assert!((a - b).abs() < 1e-6, "{aligned:?}");
    }
    assert_eq!(run(false), vec![0.0, 1.0, 3.0, 4.0]);
}

#[test]
fn crop_takes_the_middle_rounding_the_offset_down() {
    // 5 to 2: offset floor(3 / 2) = 1, as the original U-Net crops 64 to 56 from offset 4.
    let x = plane((0..25).map(|v| v as f32).collect(), 5, 5);
    assert_eq!(crop_offset(64, 56), 4);
    assert_eq!(
        crop(x.view(), [2, 2]).iter().copied().collect::<Vec<_>>(),
        vec![6.0, 7.0, 11.0, 12.0]
    );
}

#[test]
fn pad_puts_zeros_in_pytorch_order() {
    // [left, right, top, bottom] = [1, 0, 0, 2] on a 1x1 plane: 3 rows of 2.
    let x = plane(vec![5.0], 1, 1);
    assert_eq!(
        pad(x.view(), [1, 0, 0, 2])
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![0.0, 5.0, 0.0, 0.0, 0.0, 0.0]
    );
}

/// A transposed convolution with any geometry the checker accepts.
fn conv_transpose_case()
-> impl Strategy<Value = (Array4<f32>, Array4<f32>, Vec<f32>, ConvTranspose2dParams)> {
    (
        (1usize..=3, 1usize..=3, 1usize..=3),
        (
            [1usize..=3, 1usize..=3],
            [1usize..=3, 1usize..=3],
            [0usize..=2, 0usize..=2],
        ),
        ([1usize..=2, 1usize..=2], [0usize..=2, 0usize..=2]),
        (1usize..=2, 1usize..=5, 1usize..=5, any::<u64>()),
    )
        .prop_filter_map(
            "padding removes the whole output",
            |((groups, cig, cog), (k, s, p), (d, op), (n, h, w, seed))| {
                let op = [0, 1].map(|i| op[i] % s[i].max(d[i]));
                let p = ConvTranspose2dParams {
                    stride: s,
                    pad: p,
                    output_pad: op,
                    dilation: d,
                    groups,
                };
                let fits = |len: usize, i: usize| {
                    crate::shape::formula::conv_transpose_out(
                        len as u64,
                        k[i] as u64,
                        s[i] as u64,
                        p.pad[i] as u64,
                        d[i] as u64,
                        op[i] as u64,
                    )
                    .is_some()
                };
                (fits(h, 0) && fits(w, 1)).then(|| {
                    let x = rand4(seed, (n, groups * cig, h, w));
                    let wt = rand4(seed ^ 7, (groups * cig, cog, k[0], k[1]));
                    let bias = super::tests::rand_vec(seed ^ 11, groups * cog);
                    (x, wt, bias, p)
                })
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn conv_transpose_matches_reference((x, w, bias, p) in conv_transpose_case(), with_bias: bool) {
        let b = ndarray::Array1::from(bias);
        let b = with_bias.then(|| b.view());
        close(&conv_transpose2d(x.view(), w.view(), b, &p), &conv_transpose2d_ref(x.view(), w.view(), b, &p))
            .map_err(TestCaseError::fail)?;
    }
}

#[test]
fn conv_transpose_2x2_stride_2_places_each_pixel_times_the_kernel() {
    // U-Net's up-convolution: every input pixel becomes a 2x2 block, pixel times kernel.
    let x = plane(vec![1.0, 2.0, 3.0, 4.0], 2, 2);
    let w = plane(vec![1.0, 10.0, 100.0, 1000.0], 2, 2);
    let p = ConvTranspose2dParams {
        stride: [2, 2],
        pad: [0, 0],
        output_pad: [0, 0],
        dilation: [1, 1],
        groups: 1,
    };
    let y = conv_transpose2d(x.view(), w.view(), None, &p);
    let row = |r: usize| y.slice(ndarray::s![0, 0, r, ..]).to_vec();
    assert_eq!(row(0), vec![1.0, 10.0, 2.0, 20.0]);
    assert_eq!(row(1), vec![100.0, 1000.0, 200.0, 2000.0]);
    assert_eq!(row(3), vec![300.0, 3000.0, 400.0, 4000.0]);
}
