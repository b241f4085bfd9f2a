//! Property tests of the packed-GEMM convolution ([`conv2d_packed`]) against the naive
//! reference, in both weight layouts (the in-place tile's panels and the transposed tile's),
//! on every instruction set this CPU has (AVX-512, AVX2 + FMA, portable), with and
//! without a fused residual add (also written over the residual), and on shapes large enough to cross its reduction blocks,
//! pixel chunks and channel-block splits.

use ndarray::{Array1, Array4};
use proptest::prelude::*;

use super::conv_gemm::{KC, KC_PIXELS, NC, block_len};
use super::tests::{ConvCase, close, conv_case, rand_vec, rand4};
use super::*;
use crate::machine::simd::Isa;
use crate::shape::formula::conv_out;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
}

fn valid(c: &ConvCase) -> bool {
    (0..2).all(|i| {
        let len = if i == 0 { c.h } else { c.w };
        conv_out(
            len as u64,
            c.k[i] as u64,
            c.p.stride[i] as u64,
            c.p.pad[i] as u64,
            c.p.dilation[i] as u64,
        )
        .is_some()
    })
}

/// The packed conv on every available instruction set, with `threads` threads, against
/// `relu?(conv2d_ref + residual)`; also checks that the result is bitwise the same on one
/// thread (the split must not change any value).
fn check(c: &ConvCase, with_residual: bool) -> Result<(), TestCaseError> {
    let x = rand4(c.seed, (c.n, c.c_in, c.h, c.w));
    let w = rand4(
        c.seed ^ 0x9e37,
        (c.c_out, c.c_in / c.p.groups, c.k[0], c.k[1]),
    );
    let b = Array1::from(rand_vec(c.seed ^ 0x51ed, c.c_out));
    let bias = c.bias.then(|| b.view());
    let mut reference = conv2d_ref(x.view(), w.view(), bias, &c.p);
    let residual = with_residual.then(|| rand4(c.seed ^ 0x7f4a, reference.dim()));
    if let Some(r) = &residual {
        reference += r;
    }
    if c.relu {
        relu_inplace(&mut reference);
    }
    let layouts = [
        ("rows", PackedConv::new(w.view(), bias, c.p)),
        ("transposed", PackedConv::transposed(w.view(), bias, c.p)),
    ];
    let (one, many) = (pool(1), pool(c.threads));
    for (layout, packed) in &layouts {
        for isa in Isa::available() {
            let run = |p: &rayon::ThreadPool| {
                let r = residual.as_ref().map(|r| r.view());
                conv2d_packed(x.view(), packed, r, c.relu, isa, Some(p))
            };
            let fast: Array4<f32> = run(&many);
            close(&fast, &reference)
                .map_err(|e| TestCaseError::fail(format!("{layout}, {}: {e}", isa.name())))?;
            // Written over a residual the caller gives up: the same bits, whether the
            // reduction is one block (written in place) or more (a fresh output).
            if let Some(r) = &residual {
                let into = conv_gemm::conv2d_packed_into(
                    x.view(),
                    packed,
                    r.clone(),
                    c.relu,
                    isa,
                    Some(&many),
                );
                prop_assert!(
                    into.iter()
                        .zip(&fast)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{layout}, {}: written over the residual, the output differs",
                    isa.name()
                );
            }
            // With a cap after the ReLU (ReLU6's, here a smaller one that the values
            // cross): the values `clamp(v, 0, cap)` makes of the output, bit for bit.
            let r = residual.as_ref().map(|r| r.view());
            let capped = conv_gemm::conv(x.view(), packed, r, None, CAPPED, isa, Some(&many), None);
            super::tests::identical(&capped, &fast.mapv(|v| v.clamp(0.0, CAP))).map_err(|e| {
                TestCaseError::fail(format!("{layout}, {}: capped, {e}", isa.name()))
            })?;
            // Into a dead value's memory (stale values, here NaN): every value is written,
            // the same bits.
            let mut spare = super::tests::nan_spare(fast.len());
            let reused = conv_gemm::conv(
                x.view(),
                packed,
                r,
                None,
                c.relu.into(),
                isa,
                Some(&many),
                Some(&mut spare),
            );
            super::tests::identical(&reused, &fast).map_err(|e| {
                TestCaseError::fail(format!(
                    "{layout}, {}: into a spare buffer, {e}",
                    isa.name()
                ))
            })?;
            let single = run(&one);
            prop_assert!(
                single
                    .iter()
                    .zip(&fast)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{layout}, {}: {} threads differ from one",
                isa.name(),
                c.threads
            );
        }
    }
    Ok(())
}

/// Shapes that cross the blocking boundaries: reduction length past [`KC`], more pixels than
/// [`NC`], several 8-channel panels and a ragged last one, rows longer than a transposed
/// tile.
fn large_case() -> impl Strategy<Value = ConvCase> {
    (
        129usize..=136,
        9usize..=20,
        12usize..=14,
        12usize..=30,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(c_in, c_out, h, w, relu, seed)| ConvCase {
            n: 1,
            c_in,
            c_out,
            h,
            w,
            k: [3, 3],
            p: Conv2dParams {
                pad: [1, 1],
                ..Conv2dParams::default()
            },
            bias: true,
            relu,
            threads: 2,
            seed,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn packed_conv_matches_reference(c in conv_case(), residual in any::<bool>()) {
        prop_assume!(valid(&c));
        check(&c, residual)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn packed_conv_matches_reference_across_blocks(c in large_case()) {
        prop_assert!(c.c_in * 9 > KC && c.h * c.w > NC);
        check(&c, true)?;
    }
}

/// Inception's factorized kernels, 1x7 and 7x1, with per-axis stride, padding and dilation
/// (random cases draw unequal axes too; these are the shapes the examples use).
fn rectangular_case() -> impl Strategy<Value = ConvCase> {
    (
        any::<bool>(),
        [1usize..=2, 1usize..=2],
        [1usize..=2, 1usize..=2],
        8usize..=20,
        any::<u64>(),
    )
        .prop_map(|(wide, stride, dilation, c_out, seed)| {
            let (k, pad) = if wide {
                ([1, 7], [0, 3 * dilation[1]])
            } else {
                ([7, 1], [3 * dilation[0], 0])
            };
            ConvCase {
                n: 2,
                c_in: 12,
                c_out,
                h: 9,
                w: 11,
                k,
                p: Conv2dParams {
                    stride,
                    pad,
                    dilation,
                    groups: 1,
                },
                bias: true,
                relu: true,
                threads: 2,
                seed,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn packed_conv_matches_reference_on_1x7_and_7x1_kernels(c in rectangular_case(), residual in any::<bool>()) {
        prop_assert!(valid(&c) && c.k[0] != c.k[1]);
        check(&c, residual)?;
    }
}

/// The three ways a 1x1 conv runs its tasks (`way`): a small input (at most
/// [`conv_gemm::SMALL_INPUT`] values an image) takes each weight panel against every pixel
/// panel; a larger one each pixel panel against every weight panel, in one call for all of them
/// where the tiles are written from registers (with AVX2, from a copy of the pixel panel where
/// a task has [`conv_gemm::PACK_PANELS`] weight panels or more); and an input of at least
/// [`conv_gemm::FAR_INPUT`] bytes (the batch) asks for the next pixel panel's rows while it
/// goes. Output channels: in half the cases up to five panels, whole or with a ragged last one;
/// in the others three to six whole panels (one thread's task has them all); no padding or
/// stride, so that the grid is the map and every pixel panel but the last is one run of all its
/// columns; in the second way at least 169 pixels, so that a task's chunk of positions (128
/// with AVX-512, 144 with AVX2) is followed by another that holds whole pixel panels.
fn one_by_one_case() -> impl Strategy<Value = (usize, ConvCase)> {
    (
        0usize..3,
        (0usize..=8, 0usize..=4, 0usize..=4),
        prop_oneof![8usize..=40, (3usize..=6).prop_map(|p| p * 8)],
        (any::<bool>(), any::<u64>()),
    )
        .prop_map(|(way, (dc, dh, dw), c_out, (relu, seed))| {
            // (images, input channels, height, width) of each way: 4-8 channels of at most
            // 10x10 (800 values); 8-16 of 13x13 to 17x17 (1,352 to 4,624 values, 18 KiB);
            // two images of 16-24 channels of 16x16 to 20x20 (32 KiB and more).
            let (n, c_in, h, w) = match way {
                0 => (1 + dc % 2, 4 + dc / 2, 6 + dh, 6 + dw),
                1 => (1, 8 + dc, 13 + dh, 13 + dw),
                _ => (2, 16 + dc, 16 + dh, 16 + dw),
            };
            let c = ConvCase {
                n,
                c_in,
                c_out,
                h,
                w,
                k: [1, 1],
                p: Conv2dParams::default(),
                bias: true,
                relu,
                threads: 2,
                seed,
            };
            (way, c)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn packed_1x1_conv_matches_reference_in_each_way_through_its_tasks(
        (way, c) in one_by_one_case(),
        residual in any::<bool>(),
    ) {
        let image = c.c_in * c.h * c.w;
        let bytes = c.n * image * std::mem::size_of::<f32>();
        let small = image <= conv_gemm::SMALL_INPUT;
        let far = bytes >= conv_gemm::FAR_INPUT;
        prop_assert_eq!((small, far), [(true, false), (false, false), (false, true)][way]);
        check(&c, residual)?;
    }
}

/// Few pixels and several 8-channel panels, so that the output channels are split into blocks;
/// with column and row strides (the phase-split input), padding, dilation, groups, strides past
/// the width, batches and groups (an input read as it is has the rows of its last pixel panel
/// copied out with zeros past it) and a reduction past [`KC`] in some cases.
fn split_case() -> impl Strategy<Value = ConvCase> {
    (
        (1usize..=2, any::<bool>()),
        9usize..=12,
        [1usize..=3, 1usize..=3],
        [1usize..=5, 1usize..=5],
        [0usize..=1, 0usize..=1],
        [1usize..=2, 1usize..=2],
        (1usize..=9, 1usize..=9),
        (1usize..=2, 2usize..=3, any::<u64>()),
    )
        .prop_map(
            |((groups, deep), per_group, k, stride, pad, dilation, (h, w), (n, threads, seed))| {
                let cin_g = if deep { 129 } else { 5 };
                ConvCase {
                    n,
                    c_in: groups * cin_g,
                    c_out: groups * per_group,
                    h: h.max(dilation[0] * (k[0] - 1) + 1),
                    w: w.max(dilation[1] * (k[1] - 1) + 1),
                    k,
                    p: Conv2dParams {
                        stride,
                        pad,
                        dilation,
                        groups,
                    },
                    bias: true,
                    relu: true,
                    threads,
                    seed,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn packed_conv_matches_reference_with_split_channels_and_strides(c in split_case(), residual in any::<bool>()) {
        prop_assert!(valid(&c));
        check(&c, residual)?;
    }
}

/// Convs whose weights outweigh their activations, on several images: at most 3 images of at
/// most 40 + 64 channels of 3x3 pixels (twice that is 5,616 values) against at least 33 x 32 x 9
/// weights (9,504), so their tasks go block by block of output channels, each block through
/// every image (one panel per block: tests cut blocks at a few KiB).
fn shared_weights_case() -> impl Strategy<Value = ConvCase> {
    (
        (2usize..=3, 2usize..=3),
        32usize..=40,
        33usize..=64,
        (2usize..=3, 2usize..=3),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|((n, threads), c_in, c_out, (h, w), relu, seed)| ConvCase {
            n,
            c_in,
            c_out,
            h,
            w,
            k: [3, 3],
            p: Conv2dParams {
                pad: [1, 1],
                ..Conv2dParams::default()
            },
            bias: true,
            relu,
            threads,
            seed,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn packed_conv_matches_reference_when_images_share_weight_blocks(c in shared_weights_case(), residual in any::<bool>()) {
        check(&c, residual)?;
    }
}

#[test]
fn every_available_instruction_set_is_named() {
    let names: Vec<&str> = Isa::available().iter().map(|i| i.name()).collect();
    assert_eq!(names.last(), Some(&"portable"));
    for n in names {
        assert_eq!(Isa::named(n).map(|i| i.name()), Ok(n));
    }
    assert!(Isa::named("sse9").is_err());
}

/// An input read as it is (no padding, stride 1) whose groups are shorter than a panel: the
/// rows of the last panels of several groups run past the end of the input, not only the
/// last group's.
#[test]
fn tiny_groups_read_in_place_match_reference() {
    for (k, h, w) in [([1, 1], 1, 1), ([1, 1], 2, 3), ([2, 2], 3, 2)] {
        let c = ConvCase {
            n: 3,
            c_in: 4,
            c_out: 8,
            h,
            w,
            k,
            p: Conv2dParams {
                groups: 4,
                ..Conv2dParams::default()
            },
            bias: true,
            relu: false,
            threads: 2,
            seed: 7,
        };
        check(&c, true).unwrap();
    }
}

/// The transposed tile on every instruction set against the sum it stands for, for every span
/// it has (one run of 1 to `PR` pixels, two rows of 1 to `PR / 2`, each also with channels
/// innermost: pixels `BLOCK` values apart), with a reduction shorter
/// than the AVX2 tile's pass and one of several passes, the last partial, for rows dense (a
/// 3x3 conv's taps: three passes of 128 rows with AVX2) and spread (a 1x1 conv's planes: five
/// passes of 64).
#[test]
fn transposed_tile_matches_its_sum_for_every_span() {
    use crate::machine::simd::{BLOCK, CR, PR, Rows, Span};
    for (kc, step, dense) in [
        (37, 41, false),
        (300, 41, false),
        (37, 7, true),
        (300, 7, true),
    ] {
        let gap = 5;
        let offs: Vec<usize> = (0..kc).map(|k| k * step % 97).collect();
        assert_eq!(Rows::new(&offs).dense(), dense, "rows {step} apart");
        // Room for every span's last pixel, in planes and with channels innermost.
        let x = rand_vec(7, 97 + (2 * PR + gap) * BLOCK);
        let a = rand_vec(8, kc * CR);
        let mut spans: Vec<Span> = (1..=PR).filter_map(Span::run).collect();
        spans.extend((1..=PR / 2).filter_map(|h| Span::rows(h, gap)));
        assert_eq!(spans.len(), PR + PR / 2);
        spans.extend(spans.clone().into_iter().map(Span::blocked));
        for isa in Isa::available() {
            for &span in &spans {
                let base = 3;
                let mut acc = vec![f32::NAN; span.pixels() * CR];
                isa.tile_pixels(span, &a, &x, base, &Rows::new(&offs), &mut acc);
                for j in 0..span.pixels() {
                    for c in 0..CR {
                        let want: f32 = (0..kc)
                            .map(|k| a[k * CR + c] * x[base + offs[k] + span.offset(j)])
                            .sum();
                        let got = acc[j * CR + c];
                        assert!(
                            (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                            "{} kc {kc} step {step} {span:?} pixel {j} channel {c}: {got} vs {want}",
                            isa.name()
                        );
                    }
                }
            }
        }
    }
}

/// [`Isa::tile_pixels_act`] against [`Isa::tile_pixels`] followed by `act(sum + bias)` per
/// value, bit for bit, on every instruction set (AVX-512 adds them in its registers), for
/// every span, with ReLU, ReLU6 and none, biases that turn some sums negative and past 6,
/// and NaN inputs, which must come out as the pass after the tile gives them.
#[test]
fn transposed_tile_with_its_bias_and_activation_is_the_tile_then_the_pass() {
    use crate::machine::simd::{Act, CR, PR, Rows, Span};
    let (kc, gap) = (45, 5);
    let offs: Vec<usize> = (0..kc).map(|k| k * 7 % 97).collect();
    let mut x = rand_vec(17, 97 + 2 * PR + gap);
    x[3 + offs[2] + 4] = f32::NAN;
    let a = rand_vec(18, kc * CR);
    let bias: [f32; CR] = std::array::from_fn(|c| (c as f32 - 16.0) * 0.7);
    let mut spans: Vec<Span> = (1..=PR).filter_map(Span::run).collect();
    spans.extend((1..=PR / 2).filter_map(|h| Span::rows(h, gap)));
    let acts = [
        Act::default(),
        Act {
            relu: true,
            cap: None,
        },
        Act::RELU6,
    ];
    for isa in Isa::available() {
        for &span in &spans {
            for act in acts {
                let rows = Rows::new(&offs);
                let mut want = vec![0.0; span.pixels() * CR];
                isa.tile_pixels(span, &a, &x, 3, &rows, &mut want);
                for pixel in want.chunks_exact_mut(CR) {
                    for (v, &b) in pixel.iter_mut().zip(&bias) {
                        *v = act.apply(*v + b);
                    }
                }
                let mut got = vec![f32::NAN; span.pixels() * CR];
                isa.tile_pixels_act(span, &a, &x, 3, &rows, &mut got, &bias, act);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g.to_bits(),
                        w.to_bits(),
                        "{} {span:?} {act:?} value {i}: {g} against {w}",
                        isa.name()
                    );
                }
            }
        }
    }
}

/// Tiles computed as a group ([`Isa::tile_pixels_group`]) against each tile alone
/// ([`Isa::tile_pixels`]), bit for bit, on every instruction set: groups of one tile to
/// [`PIXEL_GROUP`] pixels mixing runs and pairs of short rows, each at its own position, over
/// reductions of one pass and of several with the last partial, dense and spread. Each sum
/// adds its rows in reduction order whatever the pixels beside it.
#[test]
fn tiles_in_a_group_sum_as_each_tile_alone() {
    use crate::machine::simd::{CR, PIXEL_GROUP, PR, Rows, Span};
    let gap = 5;
    let groups: Vec<Vec<(usize, Span)>> = vec![
        vec![(0, Span::run(1).unwrap())],
        vec![(2, Span::run(PR).unwrap()), (40, Span::run(PR).unwrap())],
        // A 7x7 map's 49 pixels: three pairs of rows and a last row.
        (0..4)
            .map(|t| match t {
                3 => (36, Span::run(7).unwrap()),
                _ => (12 * t, Span::rows(7, gap).unwrap()),
            })
            .collect(),
        // Four 14-pixel rows, the group's most pixels.
        (0..4)
            .map(|t| (19 * t + 1, Span::run(PR).unwrap()))
            .collect(),
        vec![
            (3, Span::run(5).unwrap()),
            (9, Span::rows(2, gap).unwrap()),
            (30, Span::run(11).unwrap()),
        ],
    ];
    for (kc, step) in [(37, 41), (300, 41), (37, 7), (300, 7)] {
        let offs: Vec<usize> = (0..kc).map(|k| k * step % 97).collect();
        let rows = Rows::new(&offs);
        let x = rand_vec(17, 97 + 80 + 2 * PR + gap);
        let a = rand_vec(18, kc * CR);
        for isa in Isa::available() {
            for tiles in &groups {
                let pixels: usize = tiles.iter().map(|(_, s)| s.pixels()).sum();
                assert!(pixels <= PIXEL_GROUP);
                let base = 2;
                let mut group = vec![f32::NAN; pixels * CR];
                isa.tile_pixels_group(tiles, &a, &x, base, &rows, &mut group);
                let mut at = 0;
                for &(q, span) in tiles {
                    let p = span.pixels();
                    let mut alone = vec![f32::NAN; p * CR];
                    isa.tile_pixels(span, &a, &x, base + q, &rows, &mut alone);
                    let got = &group[at * CR..][..p * CR];
                    assert!(
                        got.iter()
                            .zip(&alone)
                            .all(|(g, w)| g.to_bits() == w.to_bits()),
                        "{} kc {kc} step {step}: the tile at {q} ({span:?}) in a group of \
                         {pixels} pixels",
                        isa.name()
                    );
                    at += p;
                }
            }
        }
    }
}

/// The packed tile (Winograd's products) on every instruction set against the sum it stands
/// for, for every column count of a panel (none to all): the columns up to the next step of
/// [`Isa::tile_step`] hold their sums, and the columns past them are left as they were.
#[test]
fn packed_tile_sums_the_columns_asked_for_and_leaves_the_others() {
    use crate::machine::simd::MR;
    for kc in [1, 37, 130] {
        let a = rand_vec(12, kc * MR);
        for isa in Isa::available() {
            let nr = isa.nr();
            let b = rand_vec(13, kc * nr);
            for cols in 0..=nr {
                let mut acc = vec![f32::NAN; MR * nr];
                isa.tile(kc, &a, &b, &mut acc, cols);
                let computed = cols.next_multiple_of(isa.tile_step());
                for i in 0..MR {
                    for j in 0..nr {
                        let got = acc[i * nr + j];
                        if j < computed.min(nr) {
                            let want: f32 = (0..kc).map(|k| a[k * MR + i] * b[k * nr + j]).sum();
                            assert!(
                                (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                                "{} kc {kc} cols {cols}: row {i} column {j}: {got} vs {want}",
                                isa.name()
                            );
                        } else {
                            assert!(
                                got.is_nan(),
                                "{} kc {kc} cols {cols}: column {j} was written",
                                isa.name()
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The transposed tile's accumulators turned channel-major, on every instruction set, for
/// every pixel count a tile has (0 to `PR`): each value lands in its channel's row at its
/// pixel, bit for bit.
#[test]
fn channels_major_moves_every_value_to_its_channel_row() {
    use crate::machine::simd::{CR, PR, TR};
    let acc = rand_vec(11, PR * CR);
    for isa in Isa::available() {
        for p in 0..=PR {
            let mut out = [f32::NAN; CR * TR];
            isa.channels_major(&acc, p, &mut out);
            for j in 0..p {
                for c in 0..CR {
                    assert_eq!(
                        out[c * TR + j].to_bits(),
                        acc[j * CR + c].to_bits(),
                        "{} with {p} pixels: pixel {j} channel {c}",
                        isa.name()
                    );
                }
            }
        }
    }
}

/// A reduction longer than the transposed tile's block ([`KC_PIXELS`]), so that its tiles are
/// added up over blocks, on a map with two rows to a tile and a ragged channel panel.
#[test]
fn transposed_tile_adds_up_reduction_blocks() {
    let c = ConvCase {
        n: 2,
        c_in: 521,
        c_out: 40,
        h: 5,
        w: 5,
        k: [3, 3],
        p: Conv2dParams {
            pad: [1, 1],
            ..Conv2dParams::default()
        },
        bias: true,
        relu: true,
        threads: 2,
        seed: 11,
    };
    assert!(c.c_in * 9 > KC_PIXELS);
    check(&c, true).unwrap();
}

/// A residual to be written over that is not in standard layout (a transposed view made
/// owned) is read as a residual instead, into a fresh output: the same values.
#[test]
fn residual_in_another_layout_is_read_not_written_over() {
    let x = rand4(5, (1, 6, 4, 4));
    let w = rand4(6, (8, 6, 1, 1));
    let p = Conv2dParams::default();
    let packed = PackedConv::new(w.view(), None, p);
    let r = rand4(7, (4, 4, 8, 1));
    let r = r.permuted_axes([3, 2, 1, 0]);
    assert!(!r.is_standard_layout());
    for isa in Isa::available() {
        let want = conv2d_packed(x.view(), &packed, Some(r.view()), true, isa, None);
        let got = conv_gemm::conv2d_packed_into(x.view(), &packed, r.clone(), true, isa, None);
        assert_eq!(got, want, "{}", isa.name());
    }
}

/// The cap of the capped output-pass modes and convs: small enough that many sums cross it.
pub(super) const CAP: f32 = 0.25;

/// ReLU with a cap of [`CAP`] (as ReLU6 has a cap of 6).
pub(super) const CAPPED: Act = Act {
    relu: true,
    cap: Some(CAP),
};

/// What the output pass makes of sum `v` under `act`: ReLU `v < 0 ? 0 : v` (NaN and -0.0
/// stay), and with a cap `f32::clamp(v, 0, cap)`, as PyTorch's `relu6` (`hardtanh(v, 0, 6)`).
fn activated(act: Act, v: f32) -> f32 {
    match (act.relu, act.cap) {
        (true, Some(cap)) => v.clamp(0.0, cap),
        (true, None) if v < 0.0 => 0.0,
        (_, None) => v,
        (false, Some(_)) => unreachable!("a cap comes with a ReLU"),
    }
}

/// Values the output pass's sums and ReLU show in the bits: NaNs of two payloads (where two
/// meet in a sum, the result may carry either), both zeros, a negative value.
const OUTPUT_SPECIALS: [f32; 5] = [
    f32::from_bits(0x7fc0_0001),
    f32::from_bits(0xffc0_0002),
    0.0,
    -0.0,
    -3.5,
];

/// One case of the fused output pass: `write` (a tile kernel writing straight into the rows
/// it is given) against the pass written value by value from the tile's values `tile(i, j)`
/// (channel `i`, column `j`), on `channels` rows of `ld` values with a special value planted
/// in each, bit for bit (a NaN as any NaN); values outside the runs must stay as they were.
#[allow(clippy::too_many_arguments)]
fn check_output_pass(
    channels: usize,
    ld: usize,
    runs: &[(usize, usize, usize)],
    bias: &[f32],
    residual: Option<(&[f32], usize)>,
    in_place: bool,
    act: Act,
    tile: impl Fn(usize, usize) -> f32,
    write: impl FnOnce(crate::machine::simd::TileOut),
    context: &str,
) {
    let before: Vec<Vec<f32>> = (0..channels)
        .map(|i| {
            let mut row = rand_vec(10 + i as u64, ld);
            row[(i + 4) % ld] = OUTPUT_SPECIALS[i % 5];
            row
        })
        .collect();
    let mut want = before.clone();
    for (i, row) in want.iter_mut().enumerate() {
        for &(s, d, n) in runs {
            for j in 0..n {
                let mut v = tile(i, s + j) + bias[i];
                if let Some((r, ld)) = residual {
                    v += r[i * ld + d + j];
                }
                if in_place {
                    v += row[d + j];
                }
                row[d + j] = activated(act, v);
            }
        }
    }
    let mut got = before;
    let mut rows: Vec<&mut [f32]> = got.iter_mut().map(|r| &mut r[..]).collect();
    write(crate::machine::simd::TileOut {
        rows: &mut rows,
        runs,
        bias,
        residual,
        in_place,
        act,
    });
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        for (q, (g, w)) in g.iter().zip(w).enumerate() {
            // A sum of two NaNs is a NaN of either payload (Rust leaves it open, and the
            // optimizer may swap an addition's operands, here or in the kernel): a NaN
            // must stay a NaN; every other value, -0.0 included, must match bit for bit.
            let same = if w.is_nan() {
                g.is_nan()
            } else {
                g.to_bits() == w.to_bits()
            };
            assert!(
                same,
                "{context}: runs {runs:?}, residual {}, in place {in_place}, {act:?}, \
                 channel {i}, pixel {q}: {g} ({:#010x}) against {w} ({:#010x})",
                residual.is_some(),
                g.to_bits(),
                w.to_bits()
            );
        }
    }
}

/// The residual, in-place and activation combinations of the output-pass tests.
const PASS_MODES: [(bool, bool, Act); 9] = {
    const NONE: Act = Act {
        relu: false,
        cap: None,
    };
    const RELU: Act = Act {
        relu: true,
        cap: None,
    };
    [
        (false, false, NONE),
        (false, false, RELU),
        (true, false, RELU),
        (false, true, RELU),
        (true, false, NONE),
        (false, true, NONE),
        (false, false, CAPPED),
        (true, false, CAPPED),
        (false, true, CAPPED),
    ]
};

/// Biases of both signs and zeros, and a residual with special values planted, for `channels`
/// channels of `ld` values.
fn pass_operands(channels: usize, ld: usize) -> (Vec<f32>, Vec<f32>) {
    let bias = (0..channels)
        .map(|i| [0.5, -0.25, 0.0, -0.0][i % 4])
        .collect();
    let mut residual = rand_vec(3, channels * ld);
    for (i, v) in residual.iter_mut().enumerate() {
        if i % 7 == 3 {
            *v = OUTPUT_SPECIALS[i % 5];
        }
    }
    (bias, residual)
}

/// [`Isa::tile_rows_out`] against [`Isa::tile_rows`] followed by the output pass it replaces
/// (`relu?(acc + bias (+ residual) (+ the value there))`, in that order), bit for bit, on every
/// instruction set: runs that fill the tile (one run of every column, which AVX-512 writes
/// without masks), cross an output row's end (two runs), start and end inside either vector,
/// hold one column, or end within the first 8 or 16 columns (a part-filled last panel).
#[test]
fn tile_rows_out_is_the_tile_and_its_output_pass_on_every_instruction_set() {
    use crate::machine::simd::{MR, Rows};
    let (kc, ld, stride) = (13, 80, 11);
    let offs: Vec<usize> = (0..kc).map(|k| k * 37 % 50).collect();
    let rows = Rows::new(&offs);
    let a = rand_vec(1, kc * stride);
    let mut x = rand_vec(2, 50 + 40);
    x[3] = OUTPUT_SPECIALS[0];
    let (bias, residual) = pass_operands(MR, ld);
    for isa in Isa::available() {
        let nr = isa.nr();
        let mut acc = vec![0.0f32; MR * nr];
        isa.tile_rows(&a, stride, &x, 1, &rows, &mut acc);
        let cut = nr / 2 + 1;
        let run_sets: Vec<Vec<(usize, usize, usize)>> = vec![
            vec![(0, 0, nr)],
            vec![(0, 5, nr)],
            vec![(0, 3, cut), (cut + 3, 40, nr - cut - 3)],
            vec![(1, 9, nr - 2)],
            vec![(nr - 1, 70, 1)],
            vec![(2, 0, 1), (nr / 2, 20, nr / 2)],
            // A part-filled panel: runs that end within the first 8 or 16 columns (AVX2
            // computes only those).
            vec![(0, 0, 4)],
            vec![(1, 9, 7)],
            vec![(0, 3, 9)],
            vec![(2, 30, 14)],
            vec![(0, 0, 3), (5, 20, 11)],
        ];
        // (Portable code's tiles are 8 columns wide.)
        for runs in run_sets
            .iter()
            .filter(|runs| runs.iter().all(|&(s, _, n)| s + n <= nr))
        {
            for (with_res, in_place, act) in PASS_MODES {
                check_output_pass(
                    MR,
                    ld,
                    runs,
                    &bias,
                    with_res.then_some((&residual[..], ld)),
                    in_place,
                    act,
                    |i, j| acc[i * nr + j],
                    |out| isa.tile_rows_out(&a, stride, &x, 1, &rows, out),
                    isa.name(),
                );
            }
        }
    }
}

/// [`Isa::tile_rows_out_panels`] against a call of [`Isa::tile_rows_out`] per panel, bit for
/// bit, on every instruction set: three panels (their weights apart by more than a panel, as
/// a conv's are), each tile one run of all its columns at a pixel inside the rows, with and
/// without a residual, in place, and every activation.
#[test]
fn tile_rows_out_panels_is_a_tile_rows_out_per_panel_on_every_instruction_set() {
    use crate::machine::simd::{MR, Rows, TileOut};
    let (kc, stride, panels, ld) = (13, MR, 3, 90);
    let len = kc * stride + 5;
    let offs: Vec<usize> = (0..kc).map(|k| k * 37 % 50).collect();
    let rows = Rows::new(&offs);
    let a = rand_vec(6, (panels - 1) * len + (kc - 1) * stride + MR);
    let mut x = rand_vec(7, 50 + 40);
    x[4] = OUTPUT_SPECIALS[2];
    let channels = panels * MR;
    // Biases of their own per channel (`pass_operands`' repeat every 4 channels, so a panel
    // taking another's would not show).
    let (_, residual) = pass_operands(channels, ld);
    let bias = rand_vec(9, channels);
    let before = rand_vec(8, channels * ld);
    for isa in Isa::available() {
        let nr = isa.nr();
        for d in [0, 7, ld - nr] {
            let runs = [(0, d, nr)];
            for (with_res, in_place, act) in PASS_MODES {
                let residual = with_res.then_some((&residual[..], ld));
                let mut want = before.clone();
                for (p, out) in want.chunks_exact_mut(MR * ld).enumerate() {
                    let mut out_rows: Vec<&mut [f32]> = out.chunks_exact_mut(ld).collect();
                    isa.tile_rows_out(
                        &a[p * len..],
                        stride,
                        &x,
                        1,
                        &rows,
                        TileOut {
                            rows: &mut out_rows,
                            runs: &runs,
                            bias: &bias[p * MR..][..MR],
                            residual: residual.map(|(r, ld)| (&r[p * MR * ld..], ld)),
                            in_place,
                            act,
                        },
                    );
                }
                let mut got = before.clone();
                let mut out_rows: Vec<&mut [f32]> = got.chunks_exact_mut(ld).collect();
                isa.tile_rows_out_panels(
                    &a,
                    len,
                    stride,
                    &x,
                    1,
                    &rows,
                    TileOut {
                        rows: &mut out_rows,
                        runs: &runs,
                        bias: &bias,
                        residual,
                        in_place,
                        act,
                    },
                );
                for (q, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g.to_bits(),
                        w.to_bits(),
                        "{}: run at {d}, residual {with_res}, in place {in_place}, {act:?}, \
                         channel {}, pixel {}: {g} against {w}",
                        isa.name(),
                        q / ld,
                        q % ld
                    );
                }
            }
        }
    }
}

/// [`Isa::tile_pixels_out`] against [`Isa::tile_pixels`] followed by the output pass it
/// replaces, bit for bit, on every instruction set, as for the in-place tile: every span of
/// one run (1-14 pixels) and of two short rows (1-7 pixels each), runs of all the span's
/// pixels, of some of them and of one.
#[test]
fn tile_pixels_out_is_the_tile_and_its_output_pass_on_every_instruction_set() {
    use crate::machine::simd::{CR, PR, Rows, Span};
    let (kc, ld) = (9, 40);
    let offs: Vec<usize> = (0..kc).map(|k| k * 29 % 40).collect();
    let rows = Rows::new(&offs);
    let a = rand_vec(4, kc * CR);
    let mut x = rand_vec(5, 40 + 2 * PR + 8);
    x[7] = OUTPUT_SPECIALS[1];
    let (bias, residual) = pass_operands(CR, ld);
    let spans = (1..=PR)
        .filter_map(Span::run)
        .chain((1..=PR / 2).filter_map(|h| Span::rows(h, 3)));
    for isa in Isa::available() {
        for span in spans.clone() {
            let p = span.pixels();
            let mut acc = vec![0.0f32; CR * PR];
            isa.tile_pixels(span, &a, &x, 2, &rows, &mut acc);
            let run_sets = [
                vec![(0, 0, p)],
                vec![(0, 11, p)],
                vec![(p / 2, 3, p - p / 2)],
                vec![(p - 1, 25, 1)],
            ];
            for runs in &run_sets {
                for (with_res, in_place, act) in PASS_MODES {
                    check_output_pass(
                        CR,
                        ld,
                        runs,
                        &bias,
                        with_res.then_some((&residual[..], ld)),
                        in_place,
                        act,
                        |c, j| acc[j * CR + c],
                        |out| {
                            // Scratch holding other values than zeros: the tile overwrites it.
                            let mut scratch = vec![f32::NAN; CR * PR];
                            isa.tile_pixels_out(span, &a, &x, 2, &rows, &mut scratch, out)
                        },
                        &format!("{}, {span:?}", isa.name()),
                    );
                }
            }
        }
    }
}

/// The planner's choice of tile by output width and reduction length: the transposed tile on
/// maps up to 14 wide where the instruction set runs it fast (with AVX2, on maps 8 to 14 wide
/// only for reductions of 512 and more), up to 28 wide for reductions of 576 and more, the
/// in-place tile elsewhere and when the width is unknown.
#[test]
fn panel_width_takes_the_transposed_tile_where_it_was_measured_faster() {
    use crate::machine::simd::{CR, MR};
    for isa in Isa::available() {
        let (fast, whole) = (isa.fast_pixels(), isa.whole_pixel_tile());
        let pick = |w: Option<u64>, taps: usize| conv_gemm::panel_width(w, taps, isa);
        let (narrow, wide) = (if fast { CR } else { MR }, if whole { CR } else { MR });
        assert_eq!(pick(Some(7), 64), narrow, "{}", isa.name());
        assert_eq!(pick(Some(14), 4608), narrow, "{}", isa.name());
        assert_eq!(pick(Some(14), 512), narrow, "{}", isa.name());
        assert_eq!(pick(Some(7), 256), narrow, "{}", isa.name());
        // A 1x1 conv on 256 channels of a 14x14 map: transposed only where the whole tile
        // stays in registers (AVX-512).
        assert_eq!(pick(Some(14), 256), wide, "{}", isa.name());
        assert_eq!(pick(Some(8), 511), wide, "{}", isa.name());
        assert_eq!(pick(Some(28), 576), narrow, "{}", isa.name());
        assert_eq!(pick(Some(15), 1152), narrow, "{}", isa.name());
        assert_eq!(pick(Some(28), 575), MR, "{}", isa.name());
        assert_eq!(pick(Some(29), 1152), MR, "{}", isa.name());
        assert_eq!(pick(Some(56), 4608), MR, "{}", isa.name());
        assert_eq!(pick(None, 4608), MR, "{}", isa.name());
    }
}

/// A max pool's hyper-parameters as PyTorch allows them (padding at most half the window).
fn max_pool_case() -> impl Strategy<Value = Pool2dParams> {
    (
        [1usize..=3, 1usize..=3],
        [1usize..=2, 1usize..=2],
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(kernel, stride, ceil_mode, r)| Pool2dParams {
            kernel,
            stride,
            pad: [0, 1].map(|i| (r >> (8 * i)) as usize % (kernel[i] / 2 + 1)),
            ceil_mode,
            count_include_pad: true,
        })
}

/// [`conv_gemm::conv2d_packed_maxpool`] against [`conv2d_packed`] followed by [`maxpool2d`],
/// bit for bit, on every instruction set (with AVX-512 the pool is fused into the conv's
/// tasks; elsewhere, and for grouped convs, it runs after), on `threads` threads and on one;
/// with a NaN in the input now and then, which the conv spreads and the pool must keep.
fn check_conv_maxpool(c: &ConvCase, pp: &Pool2dParams) -> Result<(), TestCaseError> {
    let mut x = rand4(c.seed, (c.n, c.c_in, c.h, c.w));
    if c.seed.is_multiple_of(4) {
        let at = (c.seed / 4) as usize % x.len();
        x.as_slice_mut().expect("a fresh array")[at] = f32::NAN;
    }
    let w = rand4(
        c.seed ^ 0x9e37,
        (c.c_out, c.c_in / c.p.groups, c.k[0], c.k[1]),
    );
    let b = Array1::from(rand_vec(c.seed ^ 0x51ed, c.c_out));
    let bias = c.bias.then(|| b.view());
    let packings = [
        ("in place", PackedConv::new(w.view(), bias, c.p)),
        ("transposed", PackedConv::transposed(w.view(), bias, c.p)),
    ];
    let cases = Isa::available()
        .into_iter()
        .flat_map(|isa| packings.iter().map(move |p| (isa, p)));
    for (isa, (packing, packed)) in cases {
        for threads in [1, c.threads] {
            let pool = pool(threads);
            let want = pool.install(|| {
                let y = conv2d_packed(x.view(), packed, None, c.relu, isa, Some(&pool));
                maxpool2d(y.view(), pp)
            });
            let got = pool.install(|| {
                conv_gemm::conv2d_packed_maxpool(
                    x.view(),
                    packed,
                    pp,
                    c.relu,
                    isa,
                    Some(&pool),
                    None,
                )
            });
            prop_assert_eq!(got.dim(), want.dim());
            for (g, v) in got.iter().zip(want.iter()) {
                prop_assert_eq!(
                    g.to_bits(),
                    v.to_bits(),
                    "{} ({}) on {} threads, {:?}: {} against {}",
                    isa.name(),
                    packing,
                    threads,
                    pp,
                    g,
                    v
                );
            }
        }
    }
    Ok(())
}

/// Whether a pool `pp` has an output on the conv `c`'s output.
fn pool_fits(c: &ConvCase, pp: &Pool2dParams) -> bool {
    let out = |len: usize, i: usize| {
        conv_out(
            len as u64,
            c.k[i] as u64,
            c.p.stride[i] as u64,
            c.p.pad[i] as u64,
            c.p.dilation[i] as u64,
        )
    };
    [(c.h, 0), (c.w, 1)].iter().all(|&(len, i)| {
        out(len, i).is_some_and(|o| {
            crate::shape::formula::pool_out(
                o,
                pp.kernel[i] as u64,
                pp.stride[i] as u64,
                pp.pad[i] as u64,
                pp.ceil_mode,
            )
            .is_some()
        })
    })
}

/// ResNet's stem and its max pool at sizes with several bands of pooled rows per image.
fn stem_case() -> impl Strategy<Value = ConvCase> {
    (
        20usize..=64,
        20usize..=64,
        1usize..=2,
        1usize..=20,
        any::<u64>(),
    )
        .prop_map(|(h, w, n, c_out, seed)| ConvCase {
            n,
            c_in: 3,
            c_out,
            h,
            w,
            k: [7, 7],
            p: Conv2dParams {
                stride: [2, 2],
                pad: [3, 3],
                dilation: [1, 1],
                groups: 1,
            },
            bias: true,
            relu: true,
            threads: 2,
            seed,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn conv_fused_with_max_pool_is_the_conv_then_the_pool(c in conv_case(), pp in max_pool_case()) {
        prop_assume!(valid(&c) && pool_fits(&c, &pp));
        check_conv_maxpool(&c, &pp)?;
    }

    #[test]
    fn stem_fused_with_max_pool_is_the_conv_then_the_pool(c in stem_case()) {
        let pp = Pool2dParams {
            kernel: [3, 3],
            stride: [2, 2],
            pad: [1, 1],
            ceil_mode: false,
            count_include_pad: true,
        };
        check_conv_maxpool(&c, &pp)?;
    }
}

/// A conv's grid positions are cut into chunks of whole panels as even as they go, so that
/// the two threads' ranges of tasks hold about as many columns; counted by hand.
#[test]
fn a_conv_is_cut_into_chunks_as_even_as_whole_panels_go() {
    use super::conv_gemm::Split;
    let bounds = |s: Split, positions: usize| -> Vec<usize> {
        let mut v = vec![0];
        v.extend((0..s.chunks).map(|i| s.chunk(positions, i).end));
        v
    };
    // A 28x28 map (784 positions, 32 panels of 24 and 16 positions: 33 panels) with AVX2 on
    // 2 threads, tasks chunk by chunk in two blocks of channels each. 784 / 144 -> six
    // chunks, cut evenly (chunk i ends after 33 i / 6 panels: 5, 11, 16, 22, 27, then the
    // rest), left the threads 16 and 17 panels of every channel (ranges of six tasks: chunks
    // 0-2 and 3-5); seven chunks mirrored about the middle (5, 10, 15 panels, then 33 less
    // 15, 10 and 5) leave each 15 and half the middle chunk's 3: 16.5 each.
    let even = Split {
        unit: 24,
        chunks: 6,
        blocks: 2,
        mirrored: false,
    };
    assert_eq!(bounds(even, 784), [0, 120, 264, 384, 528, 648, 784]);
    assert_eq!(even.busiest(1, 784, 64, 2), 17 * 64);
    let s = Split::new(1, 1, 784, 64, 24, 2, true);
    assert_eq!(
        s,
        Split {
            unit: 24,
            chunks: 7,
            blocks: 2,
            mirrored: true
        }
    );
    assert_eq!(bounds(s, 784), [0, 120, 240, 360, 432, 552, 672, 784]);
    assert_eq!(s.busiest(1, 784, 64, 2), 33 * 32);
    // AVX-512 (panels of 32): 784 / 128 -> seven chunks, 25 panels (the last of 16
    // positions). Cut evenly (chunk i ends after 25 i / 7 panels), the first thread's tasks
    // (chunks 0-2 and the first block of chunk 3) held 12 panels of every channel, the
    // second's 13; mirrored (4, 8, 11 panels, then 25 less 11, 8 and 4), 12.5 each.
    let even = Split {
        unit: 32,
        chunks: 7,
        blocks: 2,
        mirrored: false,
    };
    assert_eq!(bounds(even, 784), [0, 96, 224, 320, 448, 544, 672, 784]);
    assert_eq!(even.busiest(1, 784, 16, 2), 13 * 16);
    let s = Split::new(1, 1, 784, 16, 32, 2, true);
    assert_eq!((s.unit, s.chunks, s.blocks, s.mirrored), (32, 7, 2, true));
    assert_eq!(bounds(s, 784), [0, 128, 256, 352, 448, 544, 672, 784]);
    assert_eq!(s.busiest(1, 784, 16, 2), 25 * 8);
    // A 56x56 map (3136 positions, 98 panels of 32): 25 chunks of one block, ranges of 12
    // and 13 tasks, cut evenly 47 and 51 panels; 26 chunks evenly, 49 each.
    let s = Split::new(1, 1, 3136, 8, 32, 2, true);
    assert_eq!((s.chunks, s.blocks, s.mirrored), (26, 1, false));
    assert_eq!(bounds(s, 3136)[13], 49 * 32);
    assert_eq!(s.busiest(1, 3136, 8, 2), 49 * 8);
    // Tasks that go channel block by channel block keep the even cut.
    let s = Split::new(1, 1, 784, 16, 32, 2, false);
    assert_eq!((s.chunks, s.blocks, s.mirrored), (7, 2, false));
    // Whole grid rows for the transposed tile: 14 rows 16 positions apart, the last 14 long.
    let s = Split {
        unit: 16,
        chunks: 2,
        blocks: 1,
        mirrored: false,
    };
    assert_eq!(bounds(s, 13 * 16 + 14), [0, 112, 222]);
    // Every cut: chunks that follow each other from 0 to the last position, each starting on
    // a panel and no longer than the chunk of `NC` positions rounded up to whole panels
    // (a mirrored cut may leave a chunk empty, which has no task); and no busier a thread
    // than the even cut of as many chunks as `NC` gives.
    for nr in [8, 24, 32] {
        for positions in 1..2000 {
            for (n, panels, threads) in [(1, 8, 2), (1, 16, 2), (3, 64, 2), (2, 8, 3)] {
                let s = Split::new(n, 1, positions, panels, nr, threads, true);
                let b = bounds(s, positions);
                let most = positions.min(NC).next_multiple_of(nr);
                let case = format!("{nr}, {positions}, {n}, {panels}, {threads}: {b:?}");
                assert_eq!(b.last(), Some(&positions), "{case}");
                for w in b.windows(2) {
                    assert!(w[0] <= w[1] && w[1] - w[0] <= most, "{case}");
                    assert_eq!(w[0] % nr, 0, "{case}");
                }
                let even = Split::new(n, 1, positions, panels, nr, threads, false);
                assert!(
                    s.busiest(n, positions, panels, threads)
                        <= even.busiest(n, positions, panels, threads),
                    "{case}"
                );
            }
        }
    }
}

/// A conv's reduction blocks (found once per conv, with each block's rows, for all of its
/// tasks): blocks of at most `most` rows, as few as fit, as even as they go; by hand for
/// ResNet's reductions.
#[test]
fn reduction_blocks_are_as_few_and_even_as_fit() {
    assert_eq!(block_len(2304, KC), 1152);
    assert_eq!(block_len(1153, KC), 577);
    assert_eq!(block_len(4608, KC_PIXELS), 4608);
    assert_eq!(block_len(4609, KC_PIXELS), 2305);
    assert_eq!(block_len(147, KC), 147);
    for most in [1, 3, 64, KC, KC_PIXELS] {
        for k in 1..3 * most.max(100) {
            let kc = block_len(k, most);
            let blocks = k.div_ceil(kc);
            assert!(kc <= most, "{k} rows, at most {most}: blocks of {kc}");
            assert_eq!(
                blocks,
                k.div_ceil(most),
                "{k} rows, at most {most}: as few blocks"
            );
            assert!(
                k - (blocks - 1) * kc >= 1,
                "{k} rows, at most {most}: no empty last block"
            );
        }
    }
}
