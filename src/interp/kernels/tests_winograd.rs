//! Property tests of the Winograd F(2x2, 3x3) convolution ([`conv2d_winograd`]) against a
//! naive reference computed in `f64`, on every instruction set this CPU has, with odd and even
//! sizes (up to 70 wide), padding 0 and 1, batches, bias, a fused residual add and ReLU, and
//! against the packed GEMM conv's own error on the same cases.
//!
//! Tolerance. Direct convolution rounds each product and each running sum in `f32`, an error
//! of about `sqrt(9 C_in) * 2^-24` of max|y| for random data. Winograd also rounds the
//! transformed input (sums of up to 4 values), the transformed weights (up to 2.25x the
//! weights; computed in `f64` and rounded once) and the output transform (sums of up to 9
//! products, as large as partial sums, before cancellation brings them back to `y`'s size),
//! but each of its 16 sums has only `C_in` terms instead of `9 C_in`. So its error may be a
//! small multiple of direct convolution's, or smaller: on these cases it measured at most
//! 3.3e-7 of max|y_f64| against 8.1e-7 for the packed GEMM conv (99 runs, all instruction
//! sets). The bound asserted is direct conv's (`1e-5 * max|y_f64|`, as in `tests_gemm.rs`),
//! and the error is also held to at most 8x the GEMM conv's on the same case.

use ndarray::{Array1, Array4, ArrayView1, ArrayView4};
use proptest::prelude::*;

use super::conv_winograd::{MIN_CHANNELS, applies};
use super::tests::{rand_vec, rand4};
use super::*;
use crate::machine::simd::Isa;

/// Largest error allowed, relative to the largest |value| of the exact result.
const TOL: f64 = 1e-5;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
}

/// `relu?(conv(x, w) + bias + residual)` in `f64`, plain loops: the exact result to measure
/// both fast convs against.
fn reference_f64(
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    pad: usize,
    residual: Option<ArrayView4<f32>>,
    relu: bool,
) -> Array4<f64> {
    let (n, c_in, h, wd) = x.dim();
    let c_out = w.dim().0;
    let (ho, wo) = (h + 2 * pad - 2, wd + 2 * pad - 2);
    Array4::from_shape_fn((n, c_out, ho, wo), |(b, co, oh, ow)| {
        let mut acc = bias.map_or(0.0, |bv| f64::from(bv[co]));
        for ci in 0..c_in {
            for ki in 0..3 {
                for kj in 0..3 {
                    let (ih, iw) = ((oh + ki).wrapping_sub(pad), (ow + kj).wrapping_sub(pad));
                    if ih < h && iw < wd {
                        acc += f64::from(x[[b, ci, ih, iw]]) * f64::from(w[[co, ci, ki, kj]]);
                    }
                }
            }
        }
        acc += residual.map_or(0.0, |r| f64::from(r[[b, co, oh, ow]]));
        if relu { acc.max(0.0) } else { acc }
    })
}

/// Largest `|fast - exact|`, relative to max |exact| (at least 1).
fn rel_error(fast: &Array4<f32>, exact: &Array4<f64>) -> f64 {
    assert_eq!(fast.shape(), exact.shape());
    let scale = exact.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let worst = fast
        .iter()
        .zip(exact)
        .fold(0.0f64, |m, (a, b)| m.max((f64::from(*a) - b).abs()));
    worst / scale
}

#[derive(Debug, Clone)]
struct Case {
    n: usize,
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    pad: usize,
    bias: bool,
    residual: bool,
    relu: bool,
    threads: usize,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    cases(40, 27, 13, 0..=13)
}

/// Cases of up to `c_in` and `c_out` channels (at least [`MIN_CHANNELS`]), up to `h` rows and
/// `w` columns (and at least what a 3x3 window needs with the drawn padding), 1-2 images, 2-3
/// threads.
fn cases(
    c_in: usize,
    c_out: usize,
    h: usize,
    w: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Case> {
    (
        (1usize..=2, MIN_CHANNELS..=c_in, MIN_CHANNELS..=c_out),
        (0usize..=1).prop_flat_map(move |pad| {
            let least = 3 - 2 * pad;
            (Just(pad), least..=h, least.max(*w.start())..=*w.end())
        }),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        (2usize..=3, any::<u64>()),
    )
        .prop_map(
            |((n, c_in, c_out), (pad, h, w), (bias, residual, relu), (threads, seed))| Case {
                n,
                c_in,
                c_out,
                h,
                w,
                pad,
                bias,
                residual,
                relu,
                threads,
                seed,
            },
        )
}

/// The Winograd conv on every instruction set, against the exact result within [`TOL`] and
/// within 8x the packed GEMM conv's error; bitwise the same on one thread as on several.
fn check(c: &Case) -> Result<(), TestCaseError> {
    let x = rand4(c.seed, (c.n, c.c_in, c.h, c.w));
    let w = rand4(c.seed ^ 0x9e37, (c.c_out, c.c_in, 3, 3));
    let b = Array1::from(rand_vec(c.seed ^ 0x51ed, c.c_out));
    let bias = c.bias.then(|| b.view());
    let (ho, wo) = (c.h + 2 * c.pad - 2, c.w + 2 * c.pad - 2);
    let residual = c
        .residual
        .then(|| rand4(c.seed ^ 0x7f4a, (c.n, c.c_out, ho, wo)));
    let r = || residual.as_ref().map(|r| r.view());
    let exact = reference_f64(x.view(), w.view(), bias, c.pad, r(), c.relu);
    let p = Conv2dParams {
        pad: [c.pad; 2],
        ..Conv2dParams::default()
    };
    let wino = WinogradConv::new(w.view(), bias, p);
    let gemm = PackedConv::new(w.view(), bias, p);
    let (one, many) = (pool(1), pool(c.threads));
    for isa in Isa::available() {
        let fast = conv2d_winograd(x.view(), &wino, r(), c.relu, isa, Some(&many));
        let direct = conv2d_packed(x.view(), &gemm, r(), c.relu, isa, Some(&many));
        let (e_wino, e_direct) = (rel_error(&fast, &exact), rel_error(&direct, &exact));
        prop_assert!(
            e_wino <= TOL,
            "{}: Winograd error {e_wino:e} of max|y| (direct {e_direct:e})",
            isa.name()
        );
        prop_assert!(
            e_wino <= 8.0 * e_direct.max(1e-7),
            "{}: Winograd error {e_wino:e}, direct {e_direct:e}",
            isa.name()
        );
        let single = conv2d_winograd(x.view(), &wino, r(), c.relu, isa, Some(&one));
        prop_assert!(
            single
                .iter()
                .zip(&fast)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{}: {} threads differ from one",
            isa.name(),
            c.threads
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn winograd_conv_matches_exact_reference(c in case()) {
        check(&c)?;
    }
}

/// Images wider than the transforms' steps (16 tiles, 32 input columns), so that tile rows
/// take several steps, end mid-step, and cross tile panels and units of the input transform;
/// few channels and rows, to stay fast.
fn wide_case() -> impl Strategy<Value = Case> {
    cases(20, 20, 6, 17..=70)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn winograd_conv_matches_on_wide_images(c in wide_case()) {
        check(&c)?;
    }
}

/// A ResNet-sized layer (64 channels, 56x56 would be slow here; 64 channels at 15x15, odd, so
/// that tiles are clipped at the edge and several tasks split the channels) with the largest
/// channel counts of the property test's magnitude.
#[test]
fn winograd_conv_matches_on_a_resnet_layer() {
    let c = Case {
        n: 2,
        c_in: 64,
        c_out: 72,
        h: 15,
        w: 15,
        pad: 1,
        bias: true,
        residual: true,
        relu: true,
        threads: 2,
        seed: 7,
    };
    check(&c).unwrap();
}

#[test]
fn winograd_applies_to_3x3_stride_1_convs_with_enough_channels() {
    let p = Conv2dParams::default();
    assert!(applies(&p, [3, 3], MIN_CHANNELS, MIN_CHANNELS));
    assert!(!applies(&p, [3, 3], MIN_CHANNELS - 1, 64));
    assert!(!applies(&p, [3, 3], 64, MIN_CHANNELS - 1));
    assert!(!applies(&p, [1, 1], 64, 64));
    assert!(!applies(&p, [3, 5], 64, 64));
    let strided = Conv2dParams {
        stride: [2, 2],
        ..p
    };
    assert!(!applies(&strided, [3, 3], 64, 64));
    let dilated = Conv2dParams {
        dilation: [1, 2],
        ..p
    };
    assert!(!applies(&dilated, [3, 3], 64, 64));
    let grouped = Conv2dParams { groups: 2, ..p };
    assert!(!applies(&grouped, [3, 3], 64, 64));
    // The planner's choice follows it, and can be turned off.
    let w = Array4::<f32>::zeros((32, 32, 3, 3));
    let mut budget = super::conv_winograd::Budget::default();
    assert!(matches!(
        FastConv::new(w.view(), None, p, Some(&mut budget), Some((56, 56))),
        FastConv::Winograd(_)
    ));
    assert!(matches!(
        FastConv::new(w.view(), None, p, None, Some((56, 56))),
        FastConv::Gemm(_)
    ));
    // The budget of extra bytes runs out: 512 x 512 channels take 7 * 512 * 512 * 4 = 7 MiB
    // more than the packed GEMM weights, so two fit in 16 MiB and the third stays direct.
    let big = Array4::<f32>::zeros((512, 512, 3, 3));
    let kinds: Vec<bool> = (0..3)
        .map(|_| {
            matches!(
                FastConv::new(big.view(), None, p, Some(&mut budget), None),
                FastConv::Winograd(_)
            )
        })
        .collect();
    assert_eq!(kinds, [true, true, false]);
    // Maps under 28x28 stay with the GEMM conv, which is faster there; an unknown size does not
    // rule Winograd out.
    let mut budget = super::conv_winograd::Budget::default();
    let planned = |pixels, budget: &mut super::conv_winograd::Budget| {
        matches!(
            FastConv::new(w.view(), None, p, Some(budget), pixels),
            FastConv::Winograd(_)
        )
    };
    assert!(!planned(Some((14, 14)), &mut budget));
    assert!(!planned(Some((27, 28)), &mut budget));
    assert!(planned(Some((28, 28)), &mut budget));
    assert!(planned(None, &mut budget));
}
