//! Tests of the kernels: property tests of each fast kernel against its naive reference on
//! random small shapes, and hand-computed unit tests. They must stay quick (modest case counts,
//! small shapes) since the test profile builds at `opt-level = 1`.

use ndarray::{Array, Array1, Array2, Array4, ArrayView4, Dimension, array};
use proptest::prelude::*;

use super::*;
use crate::shape::formula::{conv_out, pool_out};

/// A deterministic xorshift stream of values in `[-1, 1)`.
pub(super) fn rand_vec(seed: u64, len: usize) -> Vec<f32> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A [`super::Spare`] holding one dead value of at least `len` values, all NaN: a kernel
/// writing into it must overwrite every value it returns.
pub(super) fn nan_spare(len: usize) -> super::Spare {
    let mut spare = super::Spare::default();
    let len = len.max(1 << 14) + 7;
    spare.give(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[len]), f32::NAN));
    spare
}

/// A short row's copy and zero fill, in overlapping vector-wide steps: every length up to
/// past two steps writes exactly its row, and from the source only its values.
#[test]
fn copy_row_and_zero_row_write_their_row_only() {
    for len in 0..40 {
        let src: Vec<f32> = (0..len).map(|i| i as f32 + 0.5).collect();
        let mut dst = vec![f32::NAN; len + 6];
        super::copy_row(&mut dst[3..3 + len], &src);
        assert_eq!(&dst[3..3 + len], &src[..], "{len}: the row copied");
        assert!(dst[..3].iter().chain(&dst[3 + len..]).all(|v| v.is_nan()));
        super::zero_row(&mut dst[3..3 + len]);
        assert!(
            dst[3..3 + len].iter().all(|&v| v == 0.0),
            "{len}: the row zeroed"
        );
        assert!(dst[..3].iter().chain(&dst[3 + len..]).all(|v| v.is_nan()));
    }
}

/// A spare keeps the largest dead buffers: two by default, and within a run's known largest
/// value as many as fit in [`super::SPARE_SHARE`] (three) times its size, up to
/// [`super::SPARE_MOST`], never one larger than it.
#[test]
fn a_spare_keeps_the_largest_buffers_within_its_limits() {
    assert_eq!(
        super::SPARE_SHARE,
        3,
        "the sizes below are chosen for three"
    );
    let l = 1 << 16;
    let value = |len: usize| ndarray::ArrayD::from_elem(ndarray::IxDyn(&[len]), 1.0f32);
    let sizes = [l / 4, l, l / 2, l / 4, l, l / 2, l / 4, 1 << 10];
    let mut two = super::Spare::default();
    for &len in &sizes {
        two.give(value(len));
    }
    assert_eq!((two.len(), two.values()), (2, 2 * l));
    // Three times `l`, the largest first: l + l + l/2 + l/2 (the quarters dropped, and the
    // smallest, below the size worth keeping, never kept).
    let mut within = super::Spare::default().within(l);
    for &len in &sizes {
        within.give(value(len));
    }
    assert_eq!((within.len(), within.values()), (4, 3 * l));
    // A smaller largest value drops the larger buffers and keeps what fits.
    let smaller = within.within(l / 2);
    assert_eq!((smaller.len(), smaller.values()), (2, l));
    // Many small buffers: no more than SPARE_MOST.
    let mut many = super::Spare::default().within(l);
    for _ in 0..3 * super::SPARE_MOST {
        many.give(value(1 << 14));
    }
    assert_eq!(many.len(), super::SPARE_MOST);
}

pub(super) fn rand4(seed: u64, shape: (usize, usize, usize, usize)) -> Array4<f32> {
    let len = shape.0 * shape.1 * shape.2 * shape.3;
    Array4::from_shape_vec(shape, rand_vec(seed, len)).unwrap()
}

/// `|a - b| <= 1e-5 * max(1, max |reference|)` everywhere, and equal shapes.
pub(super) fn close<D: Dimension>(
    fast: &Array<f32, D>,
    reference: &Array<f32, D>,
) -> Result<(), String> {
    if fast.shape() != reference.shape() {
        return Err(format!(
            "shape {:?} != {:?}",
            fast.shape(),
            reference.shape()
        ));
    }
    let scale = reference.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in fast.iter().zip(reference).enumerate() {
        if (a - b).abs() > 1e-5 * scale {
            return Err(format!(
                "element {i}: fast {a} vs reference {b} (scale {scale})"
            ));
        }
    }
    Ok(())
}

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    }
}

#[derive(Debug, Clone)]
pub(super) struct ConvCase {
    pub(super) n: usize,
    pub(super) c_in: usize,
    pub(super) c_out: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) k: [usize; 2],
    pub(super) p: Conv2dParams,
    pub(super) bias: bool,
    pub(super) relu: bool,
    pub(super) threads: usize,
    pub(super) seed: u64,
}

pub(super) fn conv_case() -> impl Strategy<Value = ConvCase> {
    let channels = (1usize..=4).prop_flat_map(|groups| {
        let m = 8 / groups;
        (Just(groups), 1..=m, 1..=m)
    });
    let geom = (
        [1usize..=5, 1usize..=5],
        [1usize..=3, 1usize..=3],
        [0usize..=2, 0usize..=2],
        [1usize..=2, 1usize..=2],
    )
        .prop_flat_map(|(k, s, p, d)| {
            // Smallest input length the (dilated) kernel fits in once padded.
            let lo = |i: usize| (d[i] * (k[i] - 1) + 1).saturating_sub(2 * p[i]).max(1);
            (Just((k, s, p, d)), lo(0)..=12usize, lo(1)..=12usize)
        });
    (
        channels,
        geom,
        1usize..=2,
        any::<bool>(),
        any::<bool>(),
        (2usize..=3, any::<u64>()),
    )
        .prop_map(
            |((groups, mi, mo), ((k, s, p, d), h, w), n, bias, relu, (threads, seed))| ConvCase {
                n,
                c_in: groups * mi,
                c_out: groups * mo,
                h,
                w,
                k,
                p: Conv2dParams {
                    stride: s,
                    pad: p,
                    dilation: d,
                    groups,
                },
                bias,
                relu,
                threads,
                seed,
            },
        )
}

#[derive(Debug, Clone)]
struct PoolCase {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    p: Pool2dParams,
    seed: u64,
}

fn pool_case() -> impl Strategy<Value = PoolCase> {
    let geom = (
        [1usize..=5, 1usize..=5],
        [1usize..=3, 1usize..=3],
        [0usize..=2, 0usize..=2],
    )
        .prop_flat_map(|(k, s, p)| {
            let lo = |i: usize| k[i].saturating_sub(2 * p[i]).max(1);
            (Just((k, s, p)), lo(0)..=12usize, lo(1)..=12usize)
        });
    (
        geom,
        1usize..=2,
        1usize..=8,
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(((k, s, p), h, w), n, c, ceil_mode, count_include_pad, seed)| PoolCase {
                n,
                c,
                h,
                w,
                p: Pool2dParams {
                    kernel: k,
                    stride: s,
                    pad: p,
                    ceil_mode,
                    count_include_pad,
                },
                seed,
            },
        )
}

fn pool_valid(c: &PoolCase) -> bool {
    let ok = |len: usize, i: usize| {
        pool_out(
            len as u64,
            c.p.kernel[i] as u64,
            c.p.stride[i] as u64,
            c.p.pad[i] as u64,
            c.p.ceil_mode,
        )
        .is_some()
    };
    ok(c.h, 0) && ok(c.w, 1)
}

/// Bit-for-bit equality (the pools visit elements in the same order as their references).
pub(super) fn identical(a: &Array4<f32>, b: &Array4<f32>) -> Result<(), String> {
    if a.shape() != b.shape() {
        return Err(format!("shape {:?} != {:?}", a.shape(), b.shape()));
    }
    match a
        .iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
    {
        None => Ok(()),
        Some(i) => Err(format!(
            "element {i}: {} vs {}",
            a.iter().nth(i).unwrap(),
            b.iter().nth(i).unwrap()
        )),
    }
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn conv2d_matches_reference(c in conv_case()) {
        let valid = (0..2).all(|i| {
            let len = if i == 0 { c.h } else { c.w };
            conv_out(len as u64, c.k[i] as u64, c.p.stride[i] as u64, c.p.pad[i] as u64,
                c.p.dilation[i] as u64).is_some()
        });
        prop_assume!(valid);
        let x = rand4(c.seed, (c.n, c.c_in, c.h, c.w));
        let w = rand4(c.seed ^ 0x9e37, (c.c_out, c.c_in / c.p.groups, c.k[0], c.k[1]));
        let b = Array1::from(rand_vec(c.seed ^ 0x51ed, c.c_out));
        let bias = c.bias.then(|| b.view());
        let mut reference = conv2d_ref(x.view(), w.view(), bias, &c.p);
        if c.relu {
            relu_inplace(&mut reference);
        }
        let fast = conv2d(x.view(), w.view(), bias, &c.p, c.relu);
        close(&fast, &reference).map_err(TestCaseError::fail)?;
        let threaded = conv2d_threads(x.view(), w.view(), bias, &c.p, c.relu, c.threads);
        close(&threaded, &reference).map_err(TestCaseError::fail)?;
        // Limits low enough that small shapes take the split-by-pixels and by-channels paths.
        for (min_cols, min_rows) in [(1, 1), (usize::MAX / 8, 1)] {
            let limits = conv::SplitLimits { min_cols, min_rows };
            let split = conv::conv2d_split(
                x.view(), w.view(), bias, &c.p, c.relu, c.threads, limits,
            );
            close(&split, &reference).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn maxpool2d_matches_reference(c in pool_case()) {
        prop_assume!(pool_valid(&c));
        let x = rand4(c.seed, (c.n, c.c, c.h, c.w));
        let fast = maxpool2d(x.view(), &c.p);
        let reference = maxpool2d_ref(x.view(), &c.p);
        identical(&fast, &reference).map_err(TestCaseError::fail)?;
        // On a pool of two, as `run` calls it: the planes shared out, the same bits.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
        let shared = pool.install(|| maxpool2d(x.view(), &c.p));
        identical(&shared, &reference).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn avgpool2d_matches_reference(c in pool_case()) {
        prop_assume!(pool_valid(&c));
        let x = rand4(c.seed, (c.n, c.c, c.h, c.w));
        let fast = avgpool2d(x.view(), &c.p);
        let reference = avgpool2d_ref(x.view(), &c.p);
        close(&fast, &reference).map_err(TestCaseError::fail)?;
        identical(&fast, &reference).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn linear_matches_reference(
        n in prop_oneof![1usize..=4, 15usize..=18], k in 0usize..=40,
        m in prop_oneof![1usize..=20, 60usize..=100],
        bias in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let x = Array2::from_shape_vec((n, k), rand_vec(seed, n * k)).unwrap();
        let w = Array2::from_shape_vec((m, k), rand_vec(seed ^ 0x9e37, m * k)).unwrap();
        let b = Array1::from(rand_vec(seed ^ 0x51ed, m));
        let bias = bias.then(|| b.view());
        let fast = linear(x.view(), w.view(), bias);
        close(&fast, &linear_ref(x.view(), w.view(), bias)).map_err(TestCaseError::fail)?;
        // On a pool of two, as `run` calls it: the weight rows shared out, the same bits.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
        let shared = pool.install(|| linear(x.view(), w.view(), bias));
        prop_assert!(fast.iter().zip(&shared).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

#[test]
fn conv_1x1_is_a_matmul_by_hand() {
    // c_in 2, 2x2 image: channel 0 = 1..4, channel 1 = 5..8.
    let x = Array4::from_shape_vec((1, 2, 2, 2), (1..=8).map(|v| v as f32).collect()).unwrap();
    // Rows of the [3, 2] weight matrix: pick c0, pick c1, c0 - c1.
    let w = Array4::from_shape_vec((3, 2, 1, 1), vec![1.0, 0.0, 0.0, 1.0, 1.0, -1.0]).unwrap();
    let b = array![0.5f32, 0.0, -1.0];
    let p = Conv2dParams::default();
    let want = Array4::from_shape_vec(
        (1, 3, 2, 2),
        vec![
            1.5, 2.5, 3.5, 4.5, 5.0, 6.0, 7.0, 8.0, -5.0, -5.0, -5.0, -5.0,
        ],
    )
    .unwrap();
    assert_eq!(conv2d_ref(x.view(), w.view(), Some(b.view()), &p), want);
    assert_eq!(conv2d(x.view(), w.view(), Some(b.view()), &p, false), want);
    let mut want_relu = want.clone();
    relu_inplace(&mut want_relu);
    assert_eq!(
        conv2d(x.view(), w.view(), Some(b.view()), &p, true),
        want_relu
    );
    // Stride 2 keeps only pixel (0, 0): the strided 1x1 path.
    let p2 = Conv2dParams {
        stride: [2, 2],
        ..p
    };
    let want2 = Array4::from_shape_vec((1, 3, 1, 1), vec![1.5, 5.0, -5.0]).unwrap();
    assert_eq!(
        conv2d(x.view(), w.view(), Some(b.view()), &p2, false),
        want2
    );
    assert_eq!(conv2d_ref(x.view(), w.view(), Some(b.view()), &p2), want2);
    // The fused ReLU propagates NaN, as `relu_inplace` (and PyTorch) do.
    let mut xn = x.clone();
    xn[[0, 0, 0, 0]] = f32::NAN;
    let y = conv2d(xn.view(), w.view(), Some(b.view()), &p, true);
    assert!(y[[0, 0, 0, 0]].is_nan() && y[[0, 2, 0, 0]].is_nan());
    assert_eq!(y[[0, 2, 0, 1]], 0.0);
}

#[test]
fn conv_3x3_padded_by_hand() {
    // All-ones 3x3 image and kernel, pad 1: each output counts the real pixels under the window.
    let x = Array4::<f32>::ones((1, 1, 3, 3));
    let w = Array4::<f32>::ones((1, 1, 3, 3));
    let p = Conv2dParams {
        pad: [1, 1],
        ..Conv2dParams::default()
    };
    let want = array![[[[4.0f32, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]]]];
    assert_eq!(conv2d(x.view(), w.view(), None, &p, false), want);
    assert_eq!(conv2d_ref(x.view(), w.view(), None, &p), want);
}

#[test]
fn conv_accepts_non_standard_layouts() {
    // An NHWC buffer seen as NCHW, and a weight seen through a permutation.
    let nhwc = rand4(7, (2, 5, 6, 4));
    let x = nhwc.view().permuted_axes([0, 3, 1, 2]);
    let w_t = rand4(8, (3, 3, 4, 6));
    let w = w_t.view().permuted_axes([3, 2, 0, 1]);
    let p = Conv2dParams {
        pad: [1, 1],
        stride: [2, 1],
        ..Conv2dParams::default()
    };
    close(&conv2d(x, w, None, &p, false), &conv2d_ref(x, w, None, &p)).unwrap();
}

#[test]
fn conv_on_empty_input_axis_gives_bias() {
    // H = 0 is legal when padding makes room for the kernel: the output is the bias alone.
    let x = Array4::<f32>::zeros((1, 2, 0, 3));
    let w = rand4(3, (2, 2, 1, 1));
    let b = array![1.0f32, -2.0];
    let p = Conv2dParams {
        pad: [1, 0],
        ..Conv2dParams::default()
    };
    let fast = conv2d(x.view(), w.view(), Some(b.view()), &p, true);
    assert_eq!(fast.dim(), (1, 2, 2, 3));
    assert_eq!(
        fast,
        conv2d_ref(x.view(), w.view(), Some(b.view()), &p).mapv(|v| v.max(0.0))
    );
    assert!(
        fast.slice(ndarray::s![0, 0, .., ..])
            .iter()
            .all(|&v| v == 1.0)
    );
    // No input channels at all: the GEMM has an empty inner dimension.
    let x0 = Array4::<f32>::zeros((2, 0, 4, 4));
    let w0 = Array4::<f32>::zeros((2, 0, 3, 3));
    let out = conv2d(
        x0.view(),
        w0.view(),
        Some(b.view()),
        &Conv2dParams::default(),
        false,
    );
    assert_eq!(out.dim(), (2, 2, 2, 2));
    assert!(
        out.slice(ndarray::s![.., 1, .., ..])
            .iter()
            .all(|&v| v == -2.0)
    );
}

#[test]
fn fold_batchnorm_then_conv_equals_conv_then_batchnorm() {
    let x = rand4(11, (2, 4, 7, 7));
    let w = rand4(12, (6, 2, 3, 3));
    let b = Array1::from(rand_vec(13, 6));
    let gamma = Array1::from(rand_vec(14, 6));
    let beta = Array1::from(rand_vec(15, 6));
    let mean = Array1::from(rand_vec(16, 6));
    let var = Array1::from(rand_vec(17, 6)).mapv(|v| v.abs() + 0.1);
    let eps = 1e-5;
    let p = Conv2dParams {
        stride: [2, 2],
        pad: [1, 1],
        groups: 2,
        ..Conv2dParams::default()
    };
    for bias in [None, Some(b.view())] {
        let mut want = conv2d_ref(x.view(), w.view(), bias, &p);
        for (c, mut plane) in want.axis_iter_mut(ndarray::Axis(1)).enumerate() {
            plane.mapv_inplace(|v| (v - mean[c]) / (var[c] + eps).sqrt() * gamma[c] + beta[c]);
        }
        let (w2, b2) = fold_batchnorm(
            w.view(),
            bias,
            gamma.view(),
            beta.view(),
            mean.view(),
            var.view(),
            eps,
        );
        close(
            &conv2d(x.view(), w2.view(), Some(b2.view()), &p, false),
            &want,
        )
        .unwrap();
    }
}

#[test]
fn shortcut_a_subsamples_and_pads_channels() {
    let x = rand4(21, (1, 16, 4, 4));
    let y = shortcut_a(x.view(), 2, 8, 8);
    assert_eq!(y.dim(), (1, 32, 2, 2));
    for c in 0..32 {
        for i in 0..2 {
            for j in 0..2 {
                let want = if (8..24).contains(&c) {
                    x[[0, c - 8, 2 * i, 2 * j]]
                } else {
                    0.0
                };
                assert_eq!(y[[0, c, i, j]], want, "channel {c} pixel ({i}, {j})");
            }
        }
    }
    // Odd sizes round up, as `x[:, :, ::2, ::2]` does.
    assert_eq!(
        shortcut_a(rand4(22, (2, 3, 5, 3)).view(), 2, 1, 0).dim(),
        (2, 4, 3, 2)
    );
}

fn pool(k: usize, s: usize, pad: usize, ceil_mode: bool, count_include_pad: bool) -> Pool2dParams {
    Pool2dParams {
        kernel: [k, k],
        stride: [s, s],
        pad: [pad, pad],
        ceil_mode,
        count_include_pad,
    }
}

fn both_avg(x: ArrayView4<f32>, p: &Pool2dParams) -> Array4<f32> {
    let fast = avgpool2d(x, p);
    identical(&fast, &avgpool2d_ref(x, p)).unwrap();
    fast
}

fn both_max(x: ArrayView4<f32>, p: &Pool2dParams) -> Array4<f32> {
    let fast = maxpool2d(x, p);
    identical(&fast, &maxpool2d_ref(x, p)).unwrap();
    fast
}

#[test]
fn avgpool_padding_by_hand() {
    let x = array![[[[1.0f32, 2.0], [3.0, 4.0]]]];
    // 2x2 windows, stride 1, pad 1: a 3x3 output; without the padding in the count each
    // window averages only its real elements.
    let excl = both_avg(x.view(), &pool(2, 1, 1, false, false));
    assert_eq!(
        excl,
        array![[[[1.0f32, 1.5, 2.0], [2.0, 2.5, 3.0], [3.0, 3.5, 4.0]]]]
    );
    // Counting the padding, every window divides by 4.
    let incl = both_avg(x.view(), &pool(2, 1, 1, false, true));
    assert_eq!(
        incl,
        array![[[[0.25f32, 0.75, 0.5], [1.0, 2.5, 1.5], [0.75, 1.75, 1.0]]]]
    );
}

#[test]
fn avgpool_ceil_mode_divisor_follows_pytorch() {
    // avg_pool2d(ones(1,1,3,3), 2, 2, ceil_mode=True) is all ones: the overhanging last window
    // divides by its 1 real element, not by 4, even with count_include_pad.
    let ones3 = Array4::<f32>::ones((1, 1, 3, 3));
    assert_eq!(
        both_avg(ones3.view(), &pool(2, 2, 0, true, true)),
        Array4::<f32>::ones((1, 1, 2, 2))
    );
    // avg_pool2d(ones(1,1,4,4), 3, 2, padding=1, ceil_mode=True): the last window covers one
    // real row, one padding row and one overhang row; the overhang is not counted.
    let ones4 = Array4::<f32>::ones((1, 1, 4, 4));
    let got = both_avg(ones4.view(), &pool(3, 2, 1, true, true));
    let want = array![[[
        [4.0f32 / 9.0, 6.0 / 9.0, 2.0 / 6.0],
        [6.0 / 9.0, 1.0, 3.0 / 6.0],
        [2.0 / 6.0, 3.0 / 6.0, 1.0 / 4.0]
    ]]];
    close(&got, &want).unwrap();
    // Excluding the padding, a mean of ones is one everywhere.
    let got = both_avg(ones4.view(), &pool(3, 2, 1, true, false));
    assert_eq!(got, Array4::<f32>::ones((1, 1, 3, 3)));
}

#[test]
fn maxpool_pads_with_negative_infinity_and_propagates_nan() {
    let x = array![[[[-3.0f32, -2.0], [-4.0, -1.0]]]];
    // Padding never wins over real negatives.
    let y = both_max(x.view(), &pool(2, 1, 1, false, false));
    assert_eq!(
        y,
        array![[[
            [-3.0f32, -2.0, -2.0],
            [-3.0, -1.0, -1.0],
            [-4.0, -1.0, -1.0]
        ]]]
    );
    let mut xn = x.clone();
    xn[[0, 0, 0, 0]] = f32::NAN;
    let y = both_max(xn.view(), &pool(2, 1, 0, false, false));
    assert!(y[[0, 0, 0, 0]].is_nan());
    // ResNet stem pool: 3x3 stride 2 pad 1, 112 -> 56.
    let x = rand4(31, (1, 2, 112, 112));
    assert_eq!(
        both_max(x.view(), &pool(3, 2, 1, false, false)).dim(),
        (1, 2, 56, 56)
    );
}

/// Values whose place in a max pool's fold shows in the bits of its result: NaNs of two
/// payloads (the last NaN wins), both zeros (ties keep the first), `-inf`.
const MAX_STEP_SPECIALS: [f32; 5] = [
    f32::from_bits(0x7fc0_0001),
    f32::from_bits(0xffc0_0002),
    0.0,
    -0.0,
    f32::NEG_INFINITY,
];

/// The max pool's fold on every instruction set, for every length up to past two vectors
/// (whole vectors and a masked tail), against PyTorch's max step value by value, bit for bit:
/// NaNs of two payloads on either side, both zeros, `-inf`.
#[test]
fn fold_max_is_the_max_step_on_every_instruction_set() {
    use crate::machine::simd::Isa;
    let specials = MAX_STEP_SPECIALS;
    for isa in Isa::available() {
        for n in 0..40 {
            let mut acc = rand_vec(n as u64, n);
            let mut v = rand_vec(n as u64 + 100, n);
            for i in 0..n {
                match i % 7 {
                    1 => acc[i] = specials[i % 5],
                    2 => v[i] = specials[(i / 7) % 5],
                    3 => (acc[i], v[i]) = (specials[i % 5], specials[(i + 2) % 5]),
                    // Ties: the running value stays.
                    4 => (acc[i], v[i]) = (0.0, -0.0),
                    5 => (acc[i], v[i]) = (-0.0, 0.0),
                    _ => {}
                }
            }
            let mut got = acc.clone();
            isa.fold_max(&mut got, &v);
            for i in 0..n {
                let want = if (v[i] > acc[i]) | v[i].is_nan() {
                    v[i]
                } else {
                    acc[i]
                };
                assert_eq!(
                    got[i].to_bits(),
                    want.to_bits(),
                    "{} length {n}, value {i}: max step of {} and {}",
                    isa.name(),
                    acc[i],
                    v[i]
                );
            }
        }
    }
}

/// `Isa::fold_max_windows` on every instruction set (AVX-512 folds 16 outputs at a time, AVX2
/// 8, with masked loads where a tap reaches past the row and four blocks side by side), against
/// PyTorch's max step taken value by value in the window's order, bit for bit: row widths
/// 1-70 (blocks and groups of blocks cut at every place), kernel widths 1-9 (past the widest
/// folded in vectors), strides 1-3, every padding up to half the kernel, windows of one to
/// three rows (one starting on the row the window before it ends on, which AVX2 folds once
/// for both) and an empty one in one call, from a plane whose first row is row 0 or row 2
/// of the image, with NaNs of two payloads, both zeros as ties and `-inf` planted.
#[test]
fn fold_max_windows_is_the_max_step_on_every_instruction_set() {
    use crate::machine::simd::Isa;
    let specials = MAX_STEP_SPECIALS;
    for isa in Isa::available() {
        for w in 1..=70usize {
            let mut image = rand_vec(w as u64, 6 * w);
            for (i, v) in image.iter_mut().enumerate() {
                if i % 5 == 1 || i % 7 == 2 {
                    *v = specials[(i / 3) % 5];
                }
            }
            for kw in (1..=9).filter(|&k| k <= w) {
                for stride in (1..=3).filter(|&s| s <= w) {
                    for pad in 0..=kw / 2 {
                        let wo = (w + 2 * pad - kw) / stride + 1;
                        for r0 in [0, 2] {
                            let rows = [
                                r0..r0 + 1,
                                r0 + 1..r0 + 4,
                                r0 + 3..r0 + 4,
                                r0 + 2..r0 + 4,
                                r0 + 3..r0 + 3,
                            ];
                            let plane = &image[r0 * w..];
                            let mut all = vec![7.0f32; rows.len() * wo];
                            isa.fold_max_windows(
                                &mut all, wo, plane, w, r0, &rows, kw, stride, pad,
                            );
                            for (got, rows) in all.chunks_exact(wo).zip(&rows) {
                                for (o, &g) in got.iter().enumerate() {
                                    let mut m = f32::NEG_INFINITY;
                                    for ih in rows.clone() {
                                        for j in 0..kw {
                                            let Some(c) = (o * stride + j).checked_sub(pad) else {
                                                continue;
                                            };
                                            if c < w {
                                                let x = image[ih * w + c];
                                                if (x > m) | x.is_nan() {
                                                    m = x;
                                                }
                                            }
                                        }
                                    }
                                    assert_eq!(
                                        g.to_bits(),
                                        m.to_bits(),
                                        "{}: width {w}, kernel {kw}, stride {stride}, pad {pad}, \
                                     rows {rows:?}, output {o}: {g} against {m}",
                                        isa.name()
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Rows far wider than the property test's (at most 12), odd and even widths and paddings,
/// strides 1 to 3, ceil mode, with NaNs of two payloads, both zeros and `-inf` planted so that
/// the order each window is folded in shows in the bits (folding a window's columns in reverse
/// fails this test).
#[test]
fn maxpool_on_wide_rows_matches_reference_bit_for_bit() {
    let quiet = f32::from_bits(0x7fc0_0001);
    let other = f32::from_bits(0xffc0_0002);
    for (w, k, s, pad, ceil_mode) in [
        (112, 3, 2, 1, false),
        (113, 3, 2, 1, true),
        (57, 3, 1, 1, false),
        (40, 2, 2, 0, false),
        (41, 4, 2, 2, true),
        (50, 5, 3, 2, true),
        (33, 1, 1, 0, false),
    ] {
        let mut x = rand4(w as u64, (2, 3, 9, w));
        for (i, v) in x.iter_mut().enumerate() {
            match i % 29 {
                3 => *v = 0.0,
                4 => *v = -0.0,
                5 if i % 3 == 0 => *v = quiet,
                6 if i % 5 == 0 => *v = other,
                7 => *v = f32::NEG_INFINITY,
                _ => {}
            }
        }
        let p = Pool2dParams {
            kernel: [3, k],
            stride: [2, s],
            pad: [1, pad],
            ceil_mode,
            count_include_pad: true,
        };
        let fast = maxpool2d(x.view(), &p);
        identical(&fast, &maxpool2d_ref(x.view(), &p))
            .unwrap_or_else(|e| panic!("width {w}, kernel {k}, stride {s}, pad {pad}: {e}"));
        assert!(fast.iter().any(|v| v.is_nan()), "the NaNs reach the output");
    }
}

/// Planes of up to 64 values give each plane's sum in row-major order, larger ones in 64
/// lanes (value `i` in lane `i % 64`) added in halves, bit for bit, for channel counts that
/// leave a partial group, for batches, and for planes with a partial last chunk of lanes,
/// alone and on a pool.
#[test]
fn global_avgpool_sums_each_plane_in_order() {
    let in_lanes = |plane: &[f32]| {
        let mut lanes = vec![0.0f32; 64];
        for (i, &v) in plane.iter().enumerate() {
            lanes[i % 64] += v;
        }
        while lanes.len() > 1 {
            let half = lanes.len() / 2;
            lanes = (0..half).map(|j| lanes[j] + lanes[j + half]).collect();
        }
        lanes[0]
    };
    let cases = [
        (1, 37, 7, 7),
        (2, 16, 3, 5),
        (3, 5, 1, 1),
        (1, 2048, 7, 7),
        (1, 3, 8, 8),
        (2, 20, 9, 9),
        (1, 5, 11, 13),
        (1, 3, 56, 56),
    ];
    for (n, c, h, w) in cases {
        let x = rand4((c * h) as u64, (n, c, h, w));
        let got = global_avgpool(x.view());
        // On a pool the groups of planes are split over the threads: the same bits.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let shared = pool.install(|| global_avgpool(x.view()));
        assert!(
            shared
                .iter()
                .zip(&got)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{n}x{c}x{h}x{w}: the pool changed a value"
        );
        for b in 0..n {
            for ch in 0..c {
                let plane: Vec<f32> = x
                    .slice(ndarray::s![b, ch, .., ..])
                    .iter()
                    .copied()
                    .collect();
                let sum = if plane.len() <= 64 {
                    plane.iter().fold(0.0f32, |s, &v| s + v)
                } else {
                    in_lanes(&plane)
                };
                let want = sum / (h * w) as f32;
                assert_eq!(
                    got[[b, ch, 0, 0]].to_bits(),
                    want.to_bits(),
                    "{n}x{c}x{h}x{w}, image {b}, channel {ch}"
                );
            }
        }
    }
}

#[test]
fn global_avgpool_is_the_plane_mean() {
    let x = Array4::from_shape_vec((1, 2, 2, 2), (1..=8).map(|v| v as f32).collect()).unwrap();
    assert_eq!(global_avgpool(x.view()), array![[[[2.5f32]], [[6.5]]]]);
}

#[test]
fn elementwise_by_hand() {
    let a = array![[[[-1.0f32, 2.0], [0.5, -0.25]]]];
    let b = array![[[[0.5f32, -3.0], [1.0, 0.0]]]];
    assert_eq!(
        add(a.view(), b.view()),
        array![[[[-0.5f32, -1.0], [1.5, -0.25]]]]
    );
    assert_eq!(
        add_relu(a.view(), b.view()),
        array![[[[0.0f32, 0.0], [1.5, 0.0]]]]
    );
    assert_eq!(relu(&a), array![[[[0.0f32, 2.0], [0.5, 0.0]]]]);
    assert_eq!(
        leaky_relu(&a, 0.1),
        array![[[[-0.1f32, 2.0], [0.5, -0.025]]]]
    );
    let mut d = a.clone().into_dyn();
    leaky_relu_inplace(&mut d, 0.0);
    relu_inplace(&mut d);
    assert_eq!(d, relu(&a).into_dyn());
    let s = sigmoid(&array![-1000.0f32, 0.0, 1000.0]);
    assert_eq!(s, array![0.0f32, 0.5, 1.0]);
    let t = tanh(&array![0.0f32, 20.0]);
    assert_eq!(t, array![0.0f32, 1.0]);
    let mut r = array![f32::NAN, -1.0];
    relu_inplace(&mut r);
    assert!(r[0].is_nan() && r[1] == 0.0);
    let mut si = array![0.0f32];
    sigmoid_inplace(&mut si);
    tanh_inplace(&mut si);
    assert!((si[0] - 0.5f32.tanh()).abs() < 1e-7);
}

#[test]
fn mul_broadcast_scales_channel_planes() {
    let x = rand4(41, (2, 3, 4, 5));
    let g = rand4(42, (2, 3, 1, 1));
    let y = mul_broadcast(x.view(), g.view());
    for ((n, c, h, w), &v) in y.indexed_iter() {
        assert_eq!(v, x[[n, c, h, w]] * g[[n, c, 0, 0]]);
    }
    let full = rand4(43, (2, 3, 4, 5));
    assert_eq!(mul_broadcast(x.view(), full.view()), &x * &full);
    let shared = rand4(44, (1, 3, 1, 1));
    let y = mul_broadcast(x.view(), shared.view());
    assert_eq!(y[[1, 2, 3, 4]], x[[1, 2, 3, 4]] * shared[[0, 2, 0, 0]]);
}

#[test]
fn concat_and_flatten() {
    let a = rand4(51, (2, 1, 2, 2));
    let b = rand4(52, (2, 3, 2, 2));
    let y = concat_channels(&[a.view(), b.view()]);
    assert_eq!(y.dim(), (2, 4, 2, 2));
    assert_eq!(y[[1, 0, 1, 1]], a[[1, 0, 1, 1]]);
    assert_eq!(y[[1, 3, 0, 1]], b[[1, 2, 0, 1]]);
    assert_eq!(concat_channels(&[]).dim(), (0, 0, 0, 0));

    let x = Array4::from_shape_vec((2, 2, 1, 2), (0..8).map(|v| v as f32).collect()).unwrap();
    let f = flatten(x.clone());
    assert_eq!(f, array![[0.0f32, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]);
    // A non-standard layout is flattened in logical C order too.
    let t = x.clone().permuted_axes([0, 3, 2, 1]);
    let ft = flatten(t.clone());
    assert_eq!(ft[[0, 1]], t[[0, 0, 0, 1]]);
    assert_eq!(ft[[1, 2]], t[[1, 1, 0, 0]]);
}

#[test]
fn softmax_is_stable_and_normalised() {
    let x = array![[1.0f32, 2.0, 3.0], [1000.0, 1000.0, -1000.0]];
    let y = softmax(x.view());
    for row in y.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-6);
    }
    assert_eq!(y[[1, 0]], 0.5);
    assert_eq!(y[[1, 2]], 0.0);
    let e: Vec<f32> = [1.0f32, 2.0, 3.0].iter().map(|v| v.exp()).collect();
    let z: f32 = e.iter().sum();
    assert!((y[[0, 2]] - e[2] / z).abs() < 1e-6);
}

#[test]
fn linear_by_hand() {
    let x = array![[1.0f32, 2.0], [3.0, 4.0]];
    let w = array![[1.0f32, 0.0], [1.0, 1.0], [0.0, -1.0]];
    let b = array![0.0f32, 1.0, 2.0];
    let want = array![[1.0f32, 4.0, 0.0], [3.0, 8.0, -2.0]];
    assert_eq!(linear(x.view(), w.view(), Some(b.view())), want);
    assert_eq!(linear_ref(x.view(), w.view(), Some(b.view())), want);
}

#[test]
fn add_inplace_equals_add_and_add_relu() {
    let a = Array4::from_shape_fn((2, 3, 4, 5), |(n, c, h, w)| {
        (n * 60 + c * 20 + h * 5 + w) as f32 * 0.1 - 5.0
    });
    let b = Array4::from_shape_fn((2, 3, 4, 5), |(n, c, h, w)| {
        ((n + c + h + w) % 7) as f32 - 3.0
    });
    for relu in [false, true] {
        let mut acc = a.clone();
        add_inplace(&mut acc, &b, relu);
        let expected = if relu {
            add_relu(a.view(), b.view())
        } else {
            add(a.view(), b.view())
        };
        assert_eq!(acc, expected);
    }
}

/// Every task runs exactly once, whatever the number of threads and tasks (ranges of one
/// task or none, more threads than tasks), and without a pool, in order on this thread.
#[test]
fn banded_tasks_each_run_once() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a pool");
        for n in 0..=17 {
            let runs: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            super::for_each_banded(Some(&pool), (0..n).collect(), |i: usize| {
                runs[i].fetch_add(1, Ordering::Relaxed);
            });
            let counts: Vec<usize> = runs.iter().map(|r| r.load(Ordering::Relaxed)).collect();
            assert_eq!(counts, vec![1; n], "{threads} threads, {n} tasks");
            // A thread that takes from another's range only while some are left there still
            // leaves no task behind (the range's own thread, or whoever finds it not started,
            // takes the rest).
            for left in [2, 3] {
                let runs: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                super::for_each_banded_from(Some(&pool), (0..n).collect(), left, |i: usize| {
                    runs[i].fetch_add(1, Ordering::Relaxed);
                });
                let counts: Vec<usize> = runs.iter().map(|r| r.load(Ordering::Relaxed)).collect();
                assert_eq!(
                    counts,
                    vec![1; n],
                    "{threads} threads, {n} tasks, {left} left"
                );
            }
        }
    }
    let order = Mutex::new(Vec::new());
    super::for_each_banded(None, (0..5).collect(), |i: usize| {
        order.lock().expect("not poisoned").push(i)
    });
    assert_eq!(
        order.into_inner().expect("not poisoned"),
        vec![0, 1, 2, 3, 4]
    );
}

/// A range's last task, held back from (fewer than `left` untaken) while its thread is busy
/// with a long one, is taken by the other thread once that one has waited: it runs while the
/// long task still does, not after it on the same thread.
#[test]
fn banded_tasks_held_back_from_are_taken_after_a_wait() {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a pool");
    // Ranges {0, 1} and {2, 3}: task 0 is long, the others short.
    let spans = Mutex::new(vec![None; 4]);
    let origin = Instant::now();
    super::for_each_banded_from(Some(&pool), (0..4).collect(), 2, |i: usize| {
        let start = origin.elapsed();
        std::thread::sleep(Duration::from_millis(if i == 0 { 400 } else { 5 }));
        spans.lock().expect("not poisoned")[i] = Some((start, origin.elapsed()));
    });
    let spans: Vec<(Duration, Duration)> = spans
        .into_inner()
        .expect("not poisoned")
        .into_iter()
        .map(|s| s.expect("every task ran"))
        .collect();
    assert!(
        spans[1].0 < spans[0].1,
        "task 1 started at {:?}, after the long task 0 ended at {:?}",
        spans[1].0,
        spans[0].1
    );
}

/// While timed, a pass whose one thread works 60 ms and whose other thread idles counts as
/// about 30 ms uneven (the busiest thread's 60 less the mean 30); one with no pool, none.
#[test]
fn uneven_work_is_the_busiest_threads_time_less_the_mean() {
    use std::time::Duration;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a pool");
    super::time_threads(true);
    super::take_uneven();
    // Ranges {0, 1} and {2, 3}: task 0 sleeps, the others return at once (task 1, taken
    // from the back of range 0 by the other thread, too).
    super::for_each_banded(Some(&pool), (0..4).collect(), |i: usize| {
        if i == 0 {
            std::thread::sleep(Duration::from_millis(60));
        }
    });
    let uneven = super::take_uneven();
    super::time_threads(false);
    // Other tests' passes run at the same time may add a little to it, never take from it
    // (the busiest thread alone would be 60 ms).
    assert!(uneven >= Duration::from_millis(29), "{uneven:?}");
    assert!(uneven < Duration::from_millis(50), "{uneven:?}");
}
