//! Property tests of the Winograd convolution ([`conv2d_winograd`]), with 2x2 and 4x4 output
//! tiles, against a naive reference computed in `f64`, on every instruction set this CPU has,
//! with odd and even sizes (up to 70 wide), padding 0 and 1, batches, bias, a fused residual
//! add and ReLU, and against the packed GEMM conv's own error on the same cases.
//!
//! Tolerance. Direct convolution rounds each product and each running sum in `f32`, an error
//! of about `sqrt(9 C_in) * 2^-24` of max|y| for random data. Winograd also rounds the
//! transformed input (sums of up to 4 values for 2x2 tiles; for 4x4, of up to 16 scaled by
//! up to 25), the transformed weights (computed in `f64` and rounded once) and the output
//! transform (sums of up to 9 products for 2x2 tiles; for 4x4, of up to 25 scaled by up to
//! 64, before cancellation brings them back to `y`'s size), but each of its sums has only
//! `C_in` terms instead of `9 C_in`. With 2x2 tiles its error measured at most 4.0e-7 of
//! max|y_f64| on these cases, 1.5x the packed GEMM conv's; with 4x4 tiles at most 5.7e-6,
//! 15x (45 cases on each of three instruction sets), and later 1.12e-5, 18.7x, on one case
//! drawn by a CI run (40 input channels, residual added; now in the regression seeds). The
//! bound asserted is direct conv's (`1e-5 * max|y_f64|`, as in `tests_gemm.rs`) with 2x2
//! tiles and four times that with 4x4 ([`tol`]), and the error is also held to at most 8x
//! (2x2 tiles) or 32x (4x4) the GEMM conv's on the same case.

use ndarray::{Array1, Array4, ArrayView1, ArrayView4};
use proptest::prelude::*;

use super::conv_winograd::{MIN_CHANNELS, TILES, applies};
use super::tests::{rand_vec, rand4};
use super::*;
use crate::machine::simd::Isa;

/// Largest error allowed with `m x m` output tiles, relative to the largest |value| of the
/// exact result: direct conv's bound for 2x2 tiles, four times it for 4x4 (whose transforms
/// scale values by up to 25 and 64 before they cancel).
fn tol(m: usize) -> f64 {
    if m == 2 { 1e-5 } else { 4e-5 }
}

/// Largest error allowed with `m x m` output tiles, as a multiple of the packed GEMM conv's on
/// the same case.
fn ratio(m: usize) -> f64 {
    if m == 2 { 8.0 } else { 32.0 }
}

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

/// The Winograd conv on every instruction set, against the exact result within [`tol`] and
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
    let gemm = PackedConv::new(w.view(), bias, p);
    let (one, many) = (pool(1), pool(c.threads));
    for m in TILES {
        let wino = WinogradConv::new(w.view(), bias, p, m);
        for isa in Isa::available() {
            let fast = conv2d_winograd(x.view(), &wino, r(), c.relu, isa, Some(&many));
            let direct = conv2d_packed(x.view(), &gemm, r(), c.relu, isa, Some(&many));
            let (e_wino, e_direct) = (rel_error(&fast, &exact), rel_error(&direct, &exact));
            prop_assert!(
                e_wino <= tol(m),
                "F({m}x{m}) {}: Winograd error {e_wino:e} of max|y| (direct {e_direct:e})",
                isa.name()
            );
            prop_assert!(
                e_wino <= ratio(m) * e_direct.max(1e-7),
                "F({m}x{m}) {}: Winograd error {e_wino:e}, direct {e_direct:e}",
                isa.name()
            );
            // Into a dead value's memory (stale values, here NaN): every value is written,
            // the same bits.
            let mut spare = super::tests::nan_spare(fast.len());
            let reused = conv_winograd::conv(
                x.view(),
                &wino,
                r(),
                None,
                c.relu,
                isa,
                Some(&many),
                Some(&mut spare),
            );
            super::tests::identical(&reused, &fast).map_err(|e| {
                TestCaseError::fail(format!(
                    "F({m}x{m}) {}: into a spare buffer, {e}",
                    isa.name()
                ))
            })?;
            // Written over the residual it adds (each value read just before it is written,
            // the tails of rows too): the same bits.
            if let Some(res) = &residual {
                let over =
                    conv2d_winograd_into(x.view(), &wino, res.clone(), c.relu, isa, Some(&many));
                super::tests::identical(&over, &fast).map_err(|e| {
                    TestCaseError::fail(format!(
                        "F({m}x{m}) {}: over its residual, {e}",
                        isa.name()
                    ))
                })?;
            }
            let single = conv2d_winograd(x.view(), &wino, r(), c.relu, isa, Some(&one));
            prop_assert!(
                single
                    .iter()
                    .zip(&fast)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "F({m}x{m}) {}: {} threads differ from one",
                isa.name(),
                c.threads
            );
        }
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

/// Blocks of output channels per band: four tasks per thread in all where each band's tiles
/// are one chunk, no more blocks than `MR`-channel panels, and one block on one thread or
/// where a band takes several chunks. In tests a chunk holds 4096 transformed values: with 16
/// input channels and 2x2 tiles, a panel of 24 tiles holds 16 * (16 * 24 + 16) = 6400, so a
/// chunk is one panel of 24 tiles.
#[test]
fn winograd_bands_are_cut_into_blocks_of_output_channels_on_several_threads() {
    use super::conv_winograd::channel_blocks;
    // Two bands of 8 tiles on 2 threads: 8 tasks, 4 blocks a band.
    assert_eq!(channel_blocks(8, 16, 64, 24, 2, 2, 2), 4);
    // 16 output channels are two panels.
    assert_eq!(channel_blocks(8, 16, 16, 24, 2, 2, 2), 2);
    // Two images of one band each.
    assert_eq!(channel_blocks(24, 16, 64, 24, 2, 2, 2), 4);
    // Eight bands already.
    assert_eq!(channel_blocks(8, 16, 64, 24, 2, 8, 2), 1);
    // One thread; a band of 25 tiles, two chunks.
    assert_eq!(channel_blocks(8, 16, 64, 24, 2, 2, 1), 1);
    assert_eq!(channel_blocks(25, 16, 64, 24, 2, 2, 2), 1);
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
    let tile = |conv: FastConv| match conv {
        FastConv::Winograd(c) => Some(c.tile()),
        _ => None,
    };
    // Planned on a 56x56 map with the CPU's best instruction set, within `budget` if any.
    let plan = |w: &Array4<f32>, budget: Option<&mut super::conv_winograd::Budget>| {
        FastConv::new(w.view(), None, p, budget, Some((56, 56)), Isa::best())
    };
    let mut budget = super::conv_winograd::Budget::new(4, Isa::best());
    assert_eq!(tile(plan(&w, Some(&mut budget))), Some(4));
    assert!(matches!(plan(&w, None), FastConv::Gemm(_)));
    let mut small = super::conv_winograd::Budget::new(2, Isa::best());
    assert_eq!(tile(plan(&w, Some(&mut small))), Some(2));
    // The budget of extra bytes (16 MiB) runs out: with 512 x 512 channels, 4x4 tiles would
    // take (36 - 9) * 512 * 512 * 4 = 27 MiB more than the packed GEMM weights, 2x2 tiles
    // (16 - 9) * 512 * 512 * 4 = 7 MiB; so two convs get 2x2 tiles and the third stays
    // direct.
    let big = Array4::<f32>::zeros((512, 512, 3, 3));
    let tiles: Vec<Option<usize>> = (0..3)
        .map(|_| tile(plan(&big, Some(&mut budget))))
        .collect();
    assert_eq!(tiles, [Some(2), Some(2), None]);
    // With AVX-512 at full width, maps under 28x28 run as the GEMM conv on one image, which
    // is faster there, and as Winograd on two or more (keeping both weights); with AVX2 (and
    // in portable code, and AVX-512 run in 256-bit halves), as Winograd from 14x14 on. Maps
    // under 14x14 stay with the GEMM conv. An unknown size does not rule Winograd out.
    for isa in Isa::available() {
        let mut budget = super::conv_winograd::Budget::new(4, isa);
        let mut planned = |pixels| {
            kinds(&FastConv::new(
                w.view(),
                None,
                p,
                Some(&mut budget),
                pixels,
                isa,
            ))
        };
        // Which CPUs those are: `tests/it/run.rs`, `avx512_runs_at_full_width_except_on_zen4`.
        let wide = isa.wide_products();
        let under_28 = if wide {
            ("gemm", "winograd2")
        } else {
            ("winograd2", "winograd2")
        };
        assert_eq!(planned(Some((13, 14))), ("gemm", "gemm"));
        assert_eq!(planned(Some((14, 14))), under_28);
        assert_eq!(planned(Some((27, 28))), under_28);
        // 4x4 tiles from 56x56 on with AVX-512 at full width, from 28x28 on otherwise; 2x2
        // below, and when the size is not known.
        let from_28 = if wide { "winograd2" } else { "winograd4" };
        assert_eq!(planned(Some((28, 28))), (from_28, from_28));
        assert_eq!(planned(Some((55, 56))), (from_28, from_28));
        assert_eq!(planned(Some((56, 56))), ("winograd4", "winograd4"));
        assert_eq!(planned(None), ("winograd2", "winograd2"));
    }
    // The budget counts all of a conv's transformed weights when it keeps the packed GEMM
    // weights too: on a 14x14 map, 512 x 512 channels take 16 * 512 * 512 * 4 = 16 MiB, the
    // whole budget, so a first conv runs as Winograd on several images and a second not at
    // all; 7 MiB (2x2 tiles in place of the GEMM weights) would have let two in.
    for isa in Isa::available()
        .into_iter()
        .filter(|isa| isa.wide_products())
    {
        let mut budget = super::conv_winograd::Budget::new(4, isa);
        let kinds: Vec<(&str, &str)> = (0..2)
            .map(|_| {
                kinds(&FastConv::new(
                    big.view(),
                    None,
                    p,
                    Some(&mut budget),
                    Some((14, 14)),
                    isa,
                ))
            })
            .collect();
        assert_eq!(kinds, [("gemm", "winograd2"), ("gemm", "gemm")]);
    }
}

/// The kernels `conv` runs one image and two images with.
fn kinds(conv: &FastConv) -> (&'static str, &'static str) {
    (conv.kind(1), conv.kind(2))
}

/// A conv kept both ways ([`FastConv::ByImages`]) computes one image with its GEMM conv and
/// two or more with its Winograd conv: the same bits as each planned alone, on every
/// instruction set, with a residual and ReLU (written over the residual too); and both close
/// to the reference.
#[test]
fn a_conv_kept_both_ways_runs_gemm_on_one_image_and_winograd_on_more() {
    let p = Conv2dParams {
        stride: [1, 1],
        pad: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let (c_in, c_out, h, w) = (24, 40, 14, 14);
    let wt = rand4(11, (c_out, c_in, 3, 3));
    let bias = Array1::from(rand_vec(12, c_out));
    let act = Act::from(true);
    let threads = pool(2);
    for isa in Isa::available() {
        let gemm = || PackedConv::for_width(wt.view(), Some(bias.view()), p, Some(w as u64), isa);
        let winograd = || WinogradConv::new(wt.view(), Some(bias.view()), p, 2);
        let both = FastConv::ByImages(Box::new((gemm(), winograd())));
        for (n, alone) in [
            (1, FastConv::Gemm(gemm())),
            (2, FastConv::Winograd(winograd())),
        ] {
            let x = rand4(13 + n as u64, (n, c_in, h, w));
            let r = rand4(17 + n as u64, (n, c_out, h, w));
            let run = |conv: &FastConv| {
                conv.run(x.view(), Some(r.view()), act, isa, Some(&threads), None)
            };
            let y = run(&both);
            assert_eq!(y, run(&alone), "{isa:?}, {n} images: the same bits");
            let into = both.run_into(x.view(), r.clone(), act, isa, Some(&threads), None);
            assert_eq!(into, y, "{isa:?}, {n} images: written over the residual");
            let mut exact = conv2d_ref(x.view(), wt.view(), Some(bias.view()), &p) + &r;
            exact.mapv_inplace(|v| v.max(0.0));
            let exact = exact.mapv(f64::from);
            assert!(rel_error(&y, &exact) < tol(2), "{isa:?}, {n} images");
            assert_eq!(both.kind(n), alone.kind(n));
        }
    }
}

/// Tasks per image on 2 threads: the count of parts that leaves the busiest thread the fewest
/// tile columns (whole panels, then the last tiles in steps of a vector; the tasks cut into
/// one range per thread), then the fewest panels, then the most parts; counted by hand from
/// each part's tiles (rows cut as evenly as they go, `th * i / p`).
#[test]
fn winograd_cuts_images_into_parts_that_share_the_columns_evenly() {
    use super::conv_winograd::parts;
    // 28x28 with 4x4 tiles (or 14x14 with 2x2): 7 rows of 7 tiles. AVX2 (24-tile panels,
    // steps of 8): two parts (21, 28 tiles) take 24 and 24 + 8 columns, 32 at most, in three
    // panels; three (14, 14, 21) leave 16 + 24 to one thread; four (7, 14, 14, 14: 8 + 16,
    // 16 + 16), six and seven also 32 at most, in 4, 6 and 7 panels.
    assert_eq!(parts(7, 7, 24, 8, 1, 2), 2);
    // AVX-512 (32-tile panels, steps of 16): two parts take 32 columns each, in two panels.
    assert_eq!(parts(7, 7, 32, 16, 1, 2), 2);
    // 56x56 with 4x4 tiles: 14 rows of 14. AVX-512: two parts of 98 tiles (3 panels + 16
    // columns each), four (42, 56, 42, 56: 48 + 64 a thread), six (28, 28, 42 a thread) and
    // eight (14, 28, 28, 28 a thread: 16 + 3 x 32) all leave 112 columns to each thread in 8
    // panels; seven parts of 28 leave 4 x 32 to one. The most parts: eight.
    assert_eq!(parts(14, 14, 32, 16, 1, 2), 8);
    // AVX2: two parts of 98 (4 panels + 8 columns) and four (42, 56 a thread: 48 + 56) leave
    // 104 columns a thread in 10 panels; six and eight 112, three (56; 70, 70) 144.
    assert_eq!(parts(14, 14, 24, 8, 1, 2), 4);
    // A batch of 8 on 2 threads: whole images. One thread: one part.
    assert_eq!(parts(14, 14, 32, 16, 8, 2), 1);
    assert_eq!(parts(14, 14, 32, 16, 1, 1), 1);
    // Fewer tile rows than threads: a part per row.
    assert_eq!(parts(1, 3, 32, 16, 1, 2), 1);
    assert_eq!(parts(3, 3, 32, 16, 1, 4), 3);
}

/// Where an odd count of tile rows goes to two threads in two bands, the middle row is shared
/// out by blocks of output channels when that leaves the busiest thread fewer columns to
/// multiply; counted by hand (columns: whole panels of `nr` tiles, the rest in steps).
#[test]
fn winograd_shares_the_middle_tile_row_where_it_evens_out_the_columns() {
    use super::conv_winograd::shares_middle_row;
    // 7 rows of 7 tiles, AVX2 (panels of 24, steps of 8): bands of 3 and 4 rows take 24 and 32
    // columns; 3 rows for half the blocks and 4 for the other half, 28 on average each.
    assert!(shares_middle_row(7, 7, 24, 8, 2, 4));
    assert!(shares_middle_row(7, 7, 24, 8, 2, 2));
    // AVX-512 (panels of 32, steps of 16): 21 and 28 tiles both take 32 columns.
    assert!(!shares_middle_row(7, 7, 32, 16, 2, 4));
    // Not with one block, another count of parts, or an even count of rows.
    assert!(!shares_middle_row(7, 7, 24, 8, 2, 1));
    assert!(!shares_middle_row(7, 7, 24, 8, 3, 4));
    assert!(!shares_middle_row(14, 14, 24, 8, 2, 4));
    // 5 rows of 4 tiles: 8 and 12 tiles take 8 and 16 columns, shared 12 on average.
    assert!(shares_middle_row(5, 4, 24, 8, 2, 4));
    // 3 rows of 2 tiles: 2 and 4 tiles both take one step of 8.
    assert!(!shares_middle_row(3, 2, 24, 8, 2, 4));
}

/// The shared middle row, run: a 20x16 map with 4x4 tiles (5 rows of 4 tiles; `conv` shares
/// the middle row out with 4x4 tiles only) on 2 threads is cut into two bands (`parts`), four
/// blocks of 8 output channels each (a band of 12 tiles is one chunk of the tests' 24), and
/// with AVX2's panels the middle row is shared out (asserted first, with the functions `conv`
/// decides by); against the exact result, the GEMM conv, one thread bit for bit, a spare
/// buffer and the residual written over, as in the property test (which runs 2x2 tiles too).
#[test]
fn winograd_conv_with_a_shared_middle_row_matches() {
    use super::conv_winograd::{channel_blocks, parts, shares_middle_row};
    for (m, h, w) in [(4, 20, 16)] {
        let (th, tw) = (h / m, w / m);
        let p = parts(th, tw, 24, 8, 1, 2);
        assert_eq!(p, 2);
        let blocks = channel_blocks(th.div_ceil(p) * tw, 16, 32, 24, m, p, 2);
        assert_eq!(blocks, 4);
        assert!(shares_middle_row(th, tw, 24, 8, p, blocks));
        for seed in [3, 11] {
            let c = Case {
                n: 1,
                c_in: 16,
                c_out: 32,
                h,
                w,
                pad: 1,
                bias: true,
                residual: seed == 3,
                relu: true,
                threads: 2,
                seed,
            };
            check(&c).unwrap();
        }
    }
    assert!(
        Isa::available().iter().any(|isa| isa.nr() == 24),
        "the test machine runs AVX2's panels of 24 tiles"
    );
}
