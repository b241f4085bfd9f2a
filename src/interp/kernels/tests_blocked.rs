//! Property tests of the 1x1 conv on the channels-innermost layout ([`conv_blocked::conv1x1`])
//! against the naive reference, with its input and its output each in either layout, on
//! every instruction set this CPU has, with and without a residual, with each activation, on
//! shapes that cross its chunks of pixels, its bands of weight panels and a last panel of
//! fewer than `CR` channels; and of the layout's conversions.

use ndarray::{Array1, Array4};
use proptest::prelude::*;

use super::conv_blocked::{Layout, conv1x1, from_blocked, to_blocked};
use super::tests::{close, rand_vec, rand4};
use super::*;
use crate::machine::simd::{BLOCK, Isa};

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
}

/// A tensor's values in `layout`, as one slice.
fn laid_out(x: &Array4<f32>, layout: Layout) -> Vec<f32> {
    match layout {
        Layout::Planes => x.iter().copied().collect(),
        Layout::Blocked => to_blocked(x.view()).iter().copied().collect(),
    }
}

#[derive(Debug, Clone)]
struct Case {
    n: usize,
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    input: Layout,
    output: Layout,
    residual: bool,
    act: Act,
    threads: usize,
    seed: u64,
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![Just(Layout::Planes), Just(Layout::Blocked)]
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..=2,
        1usize..=6,
        1usize..=6,
        1usize..=20,
        1usize..=24,
        (layout(), layout()),
        any::<bool>(),
        0usize..3,
        1usize..=3,
        any::<u64>(),
    )
        .prop_map(
            |(n, ci, co, h, w, (input, output), residual, act, threads, seed)| {
                // Blocked tensors hold whole blocks; planes take any count.
                let channels = |blocks: usize, layout| match layout {
                    Layout::Blocked => blocks * BLOCK,
                    Layout::Planes => blocks * BLOCK - (seed % 7) as usize,
                };
                Case {
                    n,
                    c_in: channels(ci, input),
                    c_out: channels(co, output),
                    h,
                    w,
                    input,
                    output,
                    residual,
                    act: [
                        Act::default(),
                        Act {
                            relu: true,
                            cap: None,
                        },
                        Act::RELU6,
                    ][act],
                    threads,
                    seed,
                }
            },
        )
}

/// The conv on every available instruction set against `act(conv2d_ref + residual)`, and
/// bitwise the same on one thread as on `threads`.
fn check(c: &Case) -> Result<(), TestCaseError> {
    let x = rand4(c.seed, (c.n, c.c_in, c.h, c.w)).mapv(|v| 4.0 * v);
    let w = rand4(c.seed ^ 0x9e37, (c.c_out, c.c_in, 1, 1));
    let b = Array1::from(rand_vec(c.seed ^ 0x51ed, c.c_out));
    let p = Conv2dParams::default();
    let mut reference = conv2d_ref(x.view(), w.view(), Some(b.view()), &p);
    let residual = c.residual.then(|| rand4(c.seed ^ 0x7f4a, reference.dim()));
    if let Some(r) = &residual {
        reference += r;
    }
    reference.mapv_inplace(|v| c.act.apply(v));
    let packed = PackedConv::transposed(w.view(), Some(b.view()), p);
    let xs = laid_out(&x, c.input);
    let rs = residual.as_ref().map(|r| laid_out(r, c.output));
    let (one, many) = (pool(1), pool(c.threads));
    for isa in Isa::available() {
        let run = |pool: &rayon::ThreadPool| {
            let mut out = vec![f32::NAN; reference.len()];
            let dims = (c.n, c.c_in, c.h, c.w);
            let r = rs.as_deref();
            conv1x1(
                isa,
                Some(pool),
                &xs,
                c.input,
                dims,
                &packed,
                &mut out,
                c.output,
                r,
                c.act,
            );
            out
        };
        let fast = run(&many);
        let planes = match c.output {
            Layout::Planes => Array4::from_shape_vec(reference.dim(), fast.clone()).unwrap(),
            Layout::Blocked => {
                let (n, co, h, w) = reference.dim();
                let blocked =
                    ndarray::Array5::from_shape_vec((n, co / BLOCK, h, w, BLOCK), fast.clone());
                from_blocked(blocked.unwrap().view())
            }
        };
        close(&planes, &reference)
            .map_err(|e| TestCaseError::fail(format!("{}: {e}", isa.name())))?;
        let alone = run(&one);
        prop_assert!(
            alone
                .iter()
                .zip(&fast)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{}: one thread gives the same bits as {}",
            isa.name(),
            c.threads
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn blocked_1x1_conv_matches_reference_in_every_layout(c in case()) {
        check(&c)?;
    }
}

/// A map large enough for several chunks of pixels an image and several bands of weight
/// panels, with every pair of layouts.
#[test]
fn blocked_1x1_conv_matches_reference_across_chunks_and_bands() {
    for (input, output) in [
        (Layout::Planes, Layout::Planes),
        (Layout::Planes, Layout::Blocked),
        (Layout::Blocked, Layout::Planes),
        (Layout::Blocked, Layout::Blocked),
    ] {
        let c = Case {
            n: 2,
            c_in: 64,
            c_out: 272,
            h: 30,
            w: 31,
            input,
            output,
            residual: true,
            act: Act {
                relu: true,
                cap: None,
            },
            threads: 2,
            seed: 11,
        };
        check(&c).unwrap();
    }
}

#[test]
fn blocked_layout_round_trips_and_puts_channels_innermost() {
    let x = rand4(5, (2, 32, 3, 4));
    let b = to_blocked(x.view());
    assert_eq!(b.dim(), (2, 2, 3, 4, BLOCK));
    // Channel 17 of image 1 at pixel (2, 3): block 1, lane 1.
    assert_eq!(b[(1, 1, 2, 3, 1)], x[(1, 17, 2, 3)]);
    let flat: Vec<f32> = b.iter().copied().collect();
    assert_eq!(
        flat[((32 / BLOCK) * 12) * BLOCK + 12 * BLOCK + (2 * 4 + 3) * BLOCK + 1],
        x[(1, 17, 2, 3)]
    );
    assert_eq!(from_blocked(b.view()), x);
}

/// A conv with no input channels: every output value is its channel's bias (then the
/// activation), in either output layout.
#[test]
fn blocked_1x1_conv_without_input_channels_gives_its_biases() {
    for output in [Layout::Planes, Layout::Blocked] {
        let c = Case {
            n: 1,
            c_in: 0,
            c_out: 32,
            h: 3,
            w: 5,
            input: Layout::Planes,
            output,
            residual: false,
            act: Act::RELU6,
            threads: 2,
            seed: 3,
        };
        check(&c).unwrap();
    }
}
