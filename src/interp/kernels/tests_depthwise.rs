//! Property tests of the depthwise conv ([`conv2d_depthwise`]) against the naive reference,
//! on every instruction set this CPU has, with and without bias, residual and ReLU, strides
//! 1-3, dilations 1-2 and paddings 0-2 on every side of kernels 1-5, on one thread and on a
//! pool (the same bits either way).

use ndarray::Array1;
use proptest::prelude::*;

use super::tests::{close, rand_vec, rand4};
use super::*;
use crate::machine::simd::Isa;
use crate::shape::formula::conv_out;

/// One case: the depthwise conv against the reference on every instruction set, alone and on
/// a pool (the same bits either way).
#[allow(clippy::too_many_arguments)]
fn check_case(
    c: usize,
    n: usize,
    k: [usize; 2],
    s: [usize; 2],
    pad: [usize; 2],
    d: [usize; 2],
    (h, w): (usize, usize),
    (bias, relu, with_residual): (bool, bool, bool),
    seed: u64,
) -> Result<(), TestCaseError> {
    let fits = |len: usize, i: usize| {
        conv_out(
            len as u64,
            k[i] as u64,
            s[i] as u64,
            pad[i] as u64,
            d[i] as u64,
        )
        .is_some()
    };
    prop_assume!(fits(h, 0) && fits(w, 1));
    let p = Conv2dParams {
        stride: s,
        pad,
        dilation: d,
        groups: c,
    };
    let x = rand4(seed, (n, c, h, w));
    let wt = rand4(seed ^ 0x9e37, (c, 1, k[0], k[1]));
    let b = Array1::from(rand_vec(seed ^ 0x51ed, c));
    let b = bias.then(|| b.view());
    let mut reference = conv2d_ref(x.view(), wt.view(), b, &p);
    let residual = with_residual.then(|| rand4(seed ^ 0x7f4a, reference.dim()));
    if let Some(r) = &residual {
        reference += r;
    }
    if relu {
        relu_inplace(&mut reference);
    }
    prop_assert!(DepthwiseConv::applies(wt.dim(), c));
    let dc = DepthwiseConv::new(wt.view(), b, p);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    for isa in Isa::available() {
        let r = residual.as_ref().map(|r| r.view());
        let alone = conv2d_depthwise(x.view(), &dc, r, relu, isa);
        close(&alone, &reference)
            .map_err(|e| TestCaseError::fail(format!("{}: {e}", isa.name())))?;
        let shared = pool.install(|| conv2d_depthwise(x.view(), &dc, r, relu, isa));
        prop_assert!(
            shared
                .iter()
                .zip(&alone)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{}: the pool changed a value",
            isa.name()
        );
        // Into a dead value's memory (stale values, here NaN): every value is written, the
        // same bits.
        let mut spare = super::tests::nan_spare(alone.len());
        let reused = pool.install(|| {
            conv_depthwise::depthwise(x.view(), &dc, r, relu.into(), isa, Some(&mut spare))
        });
        super::tests::identical(&reused, &alone).map_err(|e| {
            TestCaseError::fail(format!("{}: into a spare buffer, {e}", isa.name()))
        })?;
        // With a cap after the ReLU (ReLU6's, here a smaller one that the values cross): the
        // values `clamp(v, 0, cap)` makes of the output, bit for bit.
        use super::tests_gemm::{CAP, CAPPED};
        let capped =
            pool.install(|| conv_depthwise::depthwise(x.view(), &dc, r, CAPPED, isa, None));
        super::tests::identical(&capped, &alone.mapv(|v| v.clamp(0.0, CAP)))
            .map_err(|e| TestCaseError::fail(format!("{}: capped, {e}", isa.name())))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn depthwise_conv_matches_reference(
        c in 2usize..=9,
        n in 1usize..=2,
        k in [1usize..=5, 1usize..=5],
        s in [1usize..=3, 1usize..=3],
        pad in [0usize..=2, 0usize..=2],
        d in [1usize..=2, 1usize..=2],
        h in 1usize..=13,
        w in 1usize..=13,
        flags in (any::<bool>(), any::<bool>(), any::<bool>()),
        seed in any::<u64>(),
    ) {
        check_case(c, n, k, s, pad, d, (h, w), flags, seed)?;
    }

    /// Rows of several blocks of `DW_LANES` outputs (up to 40 wide), and the stride-2
    /// phases of rows as long (their even columns taken 16 at a time).
    #[test]
    fn wide_depthwise_conv_matches_reference(
        c in 2usize..=4,
        k in [1usize..=5, 1usize..=5],
        s in [1usize..=2, 1usize..=2],
        pad in [0usize..=2, 0usize..=2],
        h in 1usize..=5,
        w in 14usize..=80,
        flags in (any::<bool>(), any::<bool>(), any::<bool>()),
        seed in any::<u64>(),
    ) {
        check_case(c, 1, k, s, pad, [1, 1], (h, w), flags, seed)?;
    }
}

/// A conv with one input channel per group but several outputs (a channel multiplier) and a
/// conv of one group are not depthwise: the planner keeps them on the GEMM.
#[test]
fn only_one_channel_in_and_out_per_group_is_depthwise() {
    assert!(DepthwiseConv::applies((8, 1, 3, 3), 8));
    assert!(!DepthwiseConv::applies((16, 1, 3, 3), 8));
    assert!(!DepthwiseConv::applies((1, 1, 3, 3), 1));
    assert!(!DepthwiseConv::applies((8, 2, 3, 3), 4));
}

/// A column stride far wider than the row (the shape checker allows it: one output column)
/// keeps only the row's own phases: the run neither allocates for the empty ones (a stride of
/// 2^34 asked for 64 GB and aborted) nor differs from the reference.
#[test]
fn a_stride_wider_than_the_row_splits_no_empty_phases() {
    let (c, h, w) = (3, 4, 5);
    let p = Conv2dParams {
        stride: [2, 1 << 34],
        pad: [1, 1],
        dilation: [1, 1],
        groups: c,
    };
    let x = rand4(7, (1, c, h, w));
    let wt = rand4(8, (c, 1, 3, 3));
    let reference = conv2d_ref(x.view(), wt.view(), None, &p);
    assert_eq!(reference.dim(), (1, c, 2, 1));
    let dc = DepthwiseConv::new(wt.view(), None, p);
    for isa in Isa::available() {
        let y = conv2d_depthwise(x.view(), &dc, None, false, isa);
        close(&y, &reference).unwrap_or_else(|e| panic!("{}: {e}", isa.name()));
    }
    // 6 padded rows of 7 phases (one per padded column), each 1 + 16 values long.
    assert_eq!(
        conv_depthwise::scratch_bytes(4, 5, 1 << 34, [1, 1]),
        6 * 7 * 17 * 4
    );
}

/// A row's even and odd values in one pass, on every instruction set: whole blocks, blocks
/// cut short by the row, by either output, and empty outputs.
#[test]
fn split_pairs_takes_even_and_odd_values() {
    for isa in Isa::available() {
        for len in 0..80usize {
            let src: Vec<f32> = (0..len).map(|i| i as f32 * 1.5 - 7.0).collect();
            let (most_even, most_odd) = (len.div_ceil(2), len / 2);
            for (ne, no) in [
                (most_even, most_odd),
                (most_even.saturating_sub(3), most_odd),
                (most_even, most_odd.saturating_sub(5)),
                (0, most_odd),
            ] {
                let (mut even, mut odd) = (vec![f32::NAN; ne + 2], vec![f32::NAN; no + 2]);
                isa.split_pairs(&mut even[..ne], &mut odd[..no], &src);
                for t in 0..ne {
                    assert_eq!(even[t], src[2 * t], "{}: {len}, even {t}", isa.name());
                }
                for t in 0..no {
                    assert_eq!(odd[t], src[2 * t + 1], "{}: {len}, odd {t}", isa.name());
                }
                // Nothing past the outputs is written.
                assert!(even[ne..].iter().chain(&odd[no..]).all(|v| v.is_nan()));
            }
        }
    }
}
