//! Benchmarks of the naive and fast convolutions on ResNet-50-like layers.
//!
//! Throughput is reported in elements per second where one element is one floating-point
//! operation (a multiply-add counts 2), so criterion's `Gelem/s` reads as GFLOP/s. The GEMMs
//! are single-threaded (ndarray is built without matrixmultiply's threading); `fast_2_workers`
//! splits the work over two scoped threads, as `resnetc run --threads 2` does. `packed_*` is
//! the packed conv with the in-place tile, `transposed_*` (outputs at most
//! `conv_gemm::NARROW` wide, or `conv_gemm::WIDE` with a reduction of at least
//! `conv_gemm::WIDE_TAPS`) the same conv packed for the transposed tile. The Winograd conv
//! (`winograd2_*` with 2x2 output tiles, `winograd4_*` with 4x4, on the 3x3 stride-1 layers)
//! is credited with the direct conv's operations, so its figure is an effective GFLOP/s,
//! comparable with the others and with the FMA peak it can exceed. The packed and Winograd
//! convs take their output's memory from a `Spare` that each call's output is given back to,
//! as a run takes it from the values it no longer reads. A fresh output each call (as before
//! 2026-12-08) was zeroed on one thread before the conv's threads started: measured on an
//! Intel Xeon (model 167 as its VM reports it), two threads, AVX-512, the 1x1 conv 64 -> 256
//! on 56x56 (3.2 MB out) then read 150 GFLOP/s against 186 now, the stride-2 1x1 conv 512 ->
//! 1024 on the transposed tile 141 against 217, the stem 171 against 197.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{Array1, Array4};
use resnetc::interp::kernels::conv_blocked::{self, Layout};
use resnetc::interp::kernels::{
    Act, Conv2dParams, FastConv, PackedConv, Spare, WinogradConv, conv_gemm, conv_winograd, conv2d,
    conv2d_ref, conv2d_threads,
};
use resnetc::machine::simd::Isa;
use std::hint::black_box;
use std::time::Duration;

struct Layer {
    name: &'static str,
    x: (usize, usize, usize, usize),
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    with_ref: bool,
}

fn filled(shape: (usize, usize, usize, usize)) -> Array4<f32> {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    Array4::from_shape_simple_fn(shape, || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    })
}

fn bench_layers(c: &mut Criterion) {
    // As the `resnetc` binary does: outputs reuse freed memory instead of fresh pages, whose
    // first touch would be timed with the conv.
    resnetc::machine::memory::keep_freed_memory();
    let layers = [
        Layer {
            name: "3x3_64x56x56_to_64",
            x: (1, 64, 56, 56),
            c_out: 64,
            k: 3,
            stride: 1,
            pad: 1,
            with_ref: true,
        },
        Layer {
            name: "1x1_256x56x56_to_64",
            x: (1, 256, 56, 56),
            c_out: 64,
            k: 1,
            stride: 1,
            pad: 0,
            with_ref: true,
        },
        Layer {
            name: "1x1_64x56x56_to_256",
            x: (1, 64, 56, 56),
            c_out: 256,
            k: 1,
            stride: 1,
            pad: 0,
            with_ref: false,
        },
        Layer {
            name: "7x7s2_3x224x224_to_64",
            x: (1, 3, 224, 224),
            c_out: 64,
            k: 7,
            stride: 2,
            pad: 3,
            with_ref: false,
        },
        Layer {
            name: "3x3_256x14x14_to_256",
            x: (1, 256, 14, 14),
            c_out: 256,
            k: 3,
            stride: 1,
            pad: 1,
            with_ref: false,
        },
        Layer {
            name: "3x3_128x28x28_to_128",
            x: (1, 128, 28, 28),
            c_out: 128,
            k: 3,
            stride: 1,
            pad: 1,
            with_ref: false,
        },
        Layer {
            name: "3x3_512x7x7_to_512",
            x: (1, 512, 7, 7),
            c_out: 512,
            k: 3,
            stride: 1,
            pad: 1,
            with_ref: false,
        },
        Layer {
            name: "3x3s2_64x56x56_to_128",
            x: (1, 64, 56, 56),
            c_out: 128,
            k: 3,
            stride: 2,
            pad: 1,
            with_ref: false,
        },
        Layer {
            name: "1x1s2_512x28x28_to_1024",
            x: (1, 512, 28, 28),
            c_out: 1024,
            k: 1,
            stride: 2,
            pad: 0,
            with_ref: false,
        },
    ];
    let mut group = c.benchmark_group("conv");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for l in &layers {
        let x = filled(l.x);
        let w = filled((l.c_out, l.x.1, l.k, l.k));
        let b = Array1::from_elem(l.c_out, 0.1f32);
        let p = Conv2dParams {
            stride: [l.stride, l.stride],
            pad: [l.pad, l.pad],
            ..Conv2dParams::default()
        };
        let out = conv2d(x.view(), w.view(), Some(b.view()), &p, true);
        let (_, _, ho, wo) = out.dim();
        let flops = 2 * l.x.0 * l.c_out * ho * wo * l.x.1 * l.k * l.k;
        let mut spare = Spare::default();
        group.throughput(Throughput::Elements(flops as u64));
        group.bench_function(BenchmarkId::new("fast", l.name), |bch| {
            bch.iter(|| conv2d(black_box(x.view()), w.view(), Some(b.view()), &p, true))
        });
        group.bench_function(BenchmarkId::new("fast_2_workers", l.name), |bch| {
            bch.iter(|| conv2d_threads(black_box(x.view()), w.view(), Some(b.view()), &p, true, 2))
        });
        // The in-place tile's layout; where the planner may pick the transposed tile (narrow
        // outputs, or long reductions on outputs up to `WIDE`), also the transposed tile's.
        let mut layouts = vec![(
            "packed",
            FastConv::Gemm(PackedConv::new(w.view(), Some(b.view()), p)),
        )];
        let taps = w.dim().1 * w.dim().2 * w.dim().3;
        let wide = wo as u64 <= conv_gemm::WIDE && taps >= conv_gemm::WIDE_TAPS;
        if wo as u64 <= conv_gemm::NARROW || wide {
            layouts.push((
                "transposed",
                FastConv::Gemm(PackedConv::transposed(w.view(), Some(b.view()), p)),
            ));
        }
        for (layout, packed) in &layouts {
            for isa in Isa::available()
                .into_iter()
                .filter(|i| i.name() != "portable")
            {
                for threads in [1, 2] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .expect("a thread pool");
                    let id = format!("{layout}_{}_{threads}t", isa.name());
                    group.bench_function(BenchmarkId::new(id, l.name), |bch| {
                        bch.iter(|| run(packed, &x, isa, &pool, &mut spare))
                    });
                }
            }
        }
        let tiles = if conv_winograd::applies(&p, [l.k, l.k], l.x.1, l.c_out) {
            &conv_winograd::TILES[..]
        } else {
            &[]
        };
        for &m in tiles {
            let wino = FastConv::Winograd(WinogradConv::new(w.view(), Some(b.view()), p, m));
            for isa in Isa::available()
                .into_iter()
                .filter(|i| i.name() != "portable")
            {
                for threads in [1, 2] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .expect("a thread pool");
                    let id = format!("winograd{m}_{}_{threads}t", isa.name());
                    group.bench_function(BenchmarkId::new(id, l.name), |bch| {
                        bch.iter(|| run(&wino, &x, isa, &pool, &mut spare))
                    });
                }
            }
        }
        if l.with_ref {
            group.bench_function(BenchmarkId::new("ref", l.name), |bch| {
                bch.iter(|| conv2d_ref(black_box(x.view()), w.view(), Some(b.view()), &p))
            });
        }
    }
    group.finish();
}

/// `conv` with a ReLU on `x`, its output taken from `spare` and given back to it (its values
/// are overwritten by the next call, never read), as a run recycles the values it no longer
/// reads.
fn run(conv: &FastConv, x: &Array4<f32>, isa: Isa, pool: &rayon::ThreadPool, spare: &mut Spare) {
    let y = conv.run(
        black_box(x.view()),
        None,
        Act::from(true),
        isa,
        Some(pool),
        Some(&mut *spare),
    );
    spare.give(black_box(y).into_dyn());
}

/// ResNet-50's 1x1 convs (stride 1) as a run takes them (`packed`: the packed conv, in the
/// tile `PackedConv::for_width` picks for the map) and on the transposed tile with the input
/// and the output each in planes or with channels innermost (`conv_blocked::conv1x1`:
/// `blocked_<input>_<output>`), each output written over the last call's, as a run writes
/// over dead values. The planner does not take the blocked layout yet: this measures what it
/// would gain.
fn bench_blocked(c: &mut Criterion) {
    resnetc::machine::memory::keep_freed_memory();
    let shapes = [
        (256, 64, 56),
        (64, 256, 56),
        (512, 128, 28),
        (128, 512, 28),
        (1024, 256, 14),
        (256, 1024, 14),
        (2048, 512, 7),
        (512, 2048, 7),
    ];
    let mut group = c.benchmark_group("conv1x1");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (c_in, c_out, hw) in shapes {
        let name = format!("{c_in}x{hw}x{hw}_to_{c_out}");
        let x = filled((1, c_in, hw, hw));
        let w = filled((c_out, c_in, 1, 1));
        let b = Array1::from_elem(c_out, 0.1f32);
        let p = Conv2dParams::default();
        group.throughput(Throughput::Elements((2 * c_out * hw * hw * c_in) as u64));
        let transposed = PackedConv::transposed(w.view(), Some(b.view()), p);
        let xs = x.iter().copied().collect::<Vec<f32>>();
        let xb = conv_blocked::to_blocked(x.view())
            .iter()
            .copied()
            .collect::<Vec<f32>>();
        let mut out = vec![0.0f32; c_out * hw * hw];
        let mut spare = Spare::default();
        for isa in Isa::available()
            .into_iter()
            .filter(|i| i.name() != "portable")
        {
            let packed = FastConv::Gemm(PackedConv::for_width(
                w.view(),
                Some(b.view()),
                p,
                Some(hw as u64),
                isa,
            ));
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("a thread pool");
                let id = format!("packed_{}_{threads}t", isa.name());
                group.bench_function(BenchmarkId::new(id, &name), |bch| {
                    bch.iter(|| run(&packed, &x, isa, &pool, &mut spare))
                });
                for (input, output) in [
                    (Layout::Blocked, Layout::Blocked),
                    (Layout::Blocked, Layout::Planes),
                    (Layout::Planes, Layout::Blocked),
                    (Layout::Planes, Layout::Planes),
                ] {
                    let xin = if input == Layout::Blocked { &xb } else { &xs };
                    let tag = |l: Layout| if l == Layout::Blocked { "b" } else { "p" };
                    let id = format!(
                        "blocked_{}{}_{}_{threads}t",
                        tag(input),
                        tag(output),
                        isa.name()
                    );
                    group.bench_function(BenchmarkId::new(id, &name), |bch| {
                        bch.iter(|| {
                            conv_blocked::conv1x1(
                                isa,
                                Some(&pool),
                                black_box(xin),
                                input,
                                (1, c_in, hw, hw),
                                &transposed,
                                &mut out,
                                output,
                                None,
                                Act::from(true),
                            );
                            black_box(&mut out);
                        })
                    });
                }
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench_layers, bench_blocked);
criterion_main!(benches);
