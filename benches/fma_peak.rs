//! The machine's measured FMA peak, the yardstick for the conv kernels' GFLOP/s: 12
//! independent chains of vector fused multiply-adds per thread, on 1 and 2 threads, for every
//! instruction set the CPU has. Prints the best of five runs of each (other processes on a
//! shared machine only ever lower it). Then the tile micro-kernel alone, single thread, on
//! weight panels of `kc` reduction rows against one input panel: the ceiling of the convs'
//! GFLOP/s when packing and output passes cost nothing; the same reading its rows in place
//! (as 3x3 convs read them, and as ResNet's stem does from its phase planes); and the
//! transposed tile of the narrow maps. The last two also on 2 threads, each thread
//! with its own operands (GFLOP/s of both together): against twice the one-thread figure,
//! what two cores lose to each other with no output pass and no other step around them.
//! Last, the transposed tile as a 1x1 conv, alone, with its output pass, and the output pass
//! alone (what a tile's output costs against its products).
//!
//! `cargo bench --bench fma_peak` (`cargo bench --bench fma_peak -- pointwise`: the last table
//! alone)

use resnetc::machine::simd::Isa;
use std::time::Instant;

const ITERS: u64 = 50_000_000;

fn gflops(isa: Isa, threads: usize) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            let flops: u64 = std::thread::scope(|s| {
                let workers: Vec<_> = (0..threads)
                    .map(|_| s.spawn(move || std::hint::black_box(isa.fma_peak(ITERS)).0))
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap()).sum()
            });
            flops as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

fn main() {
    if std::env::args().any(|a| a == "pointwise") {
        return pointwise_table();
    }
    println!("isa       threads  GFLOP/s");
    for isa in Isa::available() {
        for threads in [1, 2] {
            println!(
                "{:<9} {threads:>7}  {:>7.1}",
                isa.name(),
                gflops(isa, threads)
            );
        }
    }
    println!("tile kernel, 1 thread: isa kc weight-panels GFLOP/s");
    for isa in Isa::available() {
        for (kc, panels) in [
            (64, 1),
            (256, 16),
            (1152, 16),
            (1152, 32),
            (1152, 64),
            (576, 64),
            (2304, 64),
        ] {
            println!(
                "{:<9} {kc:>5} {panels:>3} {:>7.1}",
                isa.name(),
                tile_gflops(isa, kc, panels)
            );
        }
    }
    println!(
        "tile kernel reading rows in place, as a 3x3 conv: isa channels width panels \
         GFLOP/s (1 thread, 2 threads)"
    );
    for isa in Isa::available() {
        for (c, w, panels) in [(64, 58, 8), (128, 30, 16), (256, 16, 32), (512, 9, 64)] {
            let [one, two] = [1, 2].map(|t| on_threads(t, || rows_gflops(isa, c, w, panels)));
            println!(
                "{:<9} {c:>5} {w:>3} {panels:>3} {one:>7.1} {two:>7.1}",
                isa.name()
            );
        }
    }
    println!(
        "tile kernel reading rows in place, as ResNet's stem (7x7, stride 2, 3 channels in \
         phase planes 115 wide, 8 panels): isa GFLOP/s (1 thread, 2 threads)"
    );
    for isa in Isa::available() {
        let [one, two] = [1, 2].map(|t| on_threads(t, || stem_gflops(isa)));
        println!("{:<9} {one:>7.1} {two:>7.1}", isa.name());
    }
    println!(
        "transposed tile, as a 3x3 conv on a narrow map: isa channels width GFLOP/s \
         (1 thread, 2 threads)"
    );
    for isa in Isa::available() {
        for (c, w) in [(256, 14), (512, 7)] {
            let [one, two] = [1, 2].map(|t| on_threads(t, || pixels_gflops(isa, c, w)));
            println!("{:<9} {c:>5} {w:>3} {one:>7.1} {two:>7.1}", isa.name());
        }
    }
    pointwise_table();
}

/// The transposed tile as a 1x1 conv ([`pointwise`]) on every instruction set.
fn pointwise_table() {
    println!(
        "transposed tile as a 1x1 conv, 1 thread: isa in out width GFLOP/s (the tile alone, \
         with its output pass, the output pass alone in GFLOP/s of the tiles it writes)"
    );
    for isa in Isa::available() {
        for (c_in, c_out, w) in [
            (64, 256, 14),
            (256, 1024, 14),
            (1024, 256, 14),
            (512, 512, 7),
        ] {
            let [alone, out, pass] =
                [Pass::None, Pass::After, Pass::Only].map(|m| pointwise(isa, c_in, c_out, w, m));
            println!(
                "{:<9} {c_in:>5} {c_out:>5} {w:>3} {alone:>7.1} {out:>7.1} {pass:>7.1}",
                isa.name()
            );
        }
    }
}

/// What [`pointwise`] times of each tile.
#[derive(Clone, Copy, PartialEq)]
enum Pass {
    /// The tile's sums alone ([`Isa::tile_pixels`]).
    None,
    /// The sums and their output pass ([`Isa::tile_pixels_out`], bias and ReLU).
    After,
    /// The output pass alone ([`Isa::write_pixels`], of the same sums every time).
    Only,
}

/// A 1x1 conv `c_in -> c_out` on a `w x w` map as the transposed tile runs it (a tile per
/// row of the map, every weight panel against every tile), 1 thread, GFLOP/s of the products.
fn pointwise(isa: Isa, c_in: usize, c_out: usize, w: usize, pass: Pass) -> f64 {
    use resnetc::machine::simd::{Act, CR, PR, Rows, Span, TileOut};
    let plane = w * w;
    let x = vec![0.25f32; c_in * plane];
    let offs: Vec<usize> = (0..c_in).map(|k| k * plane).collect();
    let rows = Rows::new(&offs);
    let panels = c_out / CR;
    let a = vec![0.5f32; c_in * CR * panels];
    let bias = vec![0.125f32; CR];
    let mut acc = vec![0.0f32; CR * PR];
    let mut out = vec![0.0f32; CR * plane];
    let tiles: Vec<(usize, Span)> = (0..w)
        .map(|r| (r * w, Span::run(w).expect("a row of at most PR")))
        .collect();
    let reps = (2_000_000_000 / (c_in * CR * panels * plane)).max(1);
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                let mut out_rows: Vec<&mut [f32]> = out.chunks_mut(plane).collect();
                for p in 0..panels {
                    let a = &a[p * c_in * CR..];
                    for &(q, span) in &tiles {
                        let dst = TileOut {
                            rows: &mut out_rows,
                            runs: &[(0, q, span.pixels())],
                            bias: &bias,
                            residual: None,
                            in_place: false,
                            act: Act::from(true),
                        };
                        match pass {
                            Pass::None => isa.tile_pixels(span, a, &x, q, &rows, &mut acc),
                            Pass::After => {
                                isa.tile_pixels_out(span, a, &x, q, &rows, &mut acc, dst)
                            }
                            Pass::Only => isa.write_pixels(&acc, span.pixels(), dst),
                        }
                        std::hint::black_box(&mut acc);
                    }
                }
            }
            (reps * plane * panels * c_in * CR * 2) as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

/// `measure` run on `threads` threads at once (each with its own operands), the sum of their
/// GFLOP/s.
fn on_threads(threads: usize, measure: impl Fn() -> f64 + Sync) -> f64 {
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads).map(|_| s.spawn(&measure)).collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

/// [`Isa::tile_pixels`] as a 3x3 conv on `c` channels of a `w x w` map uses it (padded grid
/// `w + 2` wide; tiles of one row, or two rows when a row has at most `PR / 2` pixels), with
/// `c` output channels: every tile against every `CR`-channel panel; 1 thread.
fn pixels_gflops(isa: Isa, c: usize, w: usize) -> f64 {
    use resnetc::machine::simd::{CR, PR, Rows, Span};
    let (kc, wg) = (c * 9, w + 2);
    let plane = wg * wg;
    let x = vec![0.25f32; c * plane];
    let offs: Vec<usize> = (0..kc)
        .map(|k| (k / 9) * plane + (k % 9 / 3) * wg + k % 3)
        .collect();
    let rows = Rows::new(&offs);
    let panels = c / CR;
    let a = vec![0.5f32; kc * CR * panels];
    let mut acc = vec![0.0f32; CR * PR];
    let tiles: Vec<(usize, Span)> = if w <= PR / 2 {
        (0..w)
            .step_by(2)
            .map(|r| match Span::rows(w, wg - w).filter(|_| r + 1 < w) {
                Some(span) => (r * wg, span),
                None => (r * wg, Span::run(w).expect("a short row")),
            })
            .collect()
    } else {
        (0..w)
            .map(|r| (r * wg, Span::run(w).expect("a row of at most PR")))
            .collect()
    };
    let pixels: usize = tiles.iter().map(|(_, s)| s.pixels()).sum();
    let reps = (4_000_000_000 / (kc * CR * panels * pixels)).max(1);
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                for p in 0..panels {
                    for &(q, span) in &tiles {
                        isa.tile_pixels(span, &a[p * kc * CR..], &x, q, &rows, &mut acc);
                        std::hint::black_box(&mut acc);
                    }
                }
            }
            (reps * pixels * panels * kc * CR * 2) as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

/// The tile kernel alone, on panels of `kc` reduction rows that it reads over and over
/// (in L1 for small `kc`, L2 for large), single thread, GFLOP/s.
fn tile_gflops(isa: Isa, kc: usize, panels: usize) -> f64 {
    use resnetc::machine::simd::MR;
    let nr = isa.nr();
    let a = vec![0.5f32; kc * MR * panels];
    let b = vec![0.25f32; kc * nr];
    let mut acc = vec![0.0f32; MR * nr];
    let reps = (2_000_000_000 / (kc * MR * nr * panels)).max(1);
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                for p in 0..panels {
                    isa.tile(kc, &a[p * kc * MR..], &b, &mut acc, isa.nr());
                    std::hint::black_box(&mut acc);
                }
            }
            (reps * panels * kc * MR * nr * 2) as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

/// [`Isa::tile_rows`] as a 3x3 conv on `c` channels of a `w`-wide padded map uses it: every
/// pixel panel of the map against `panels` weight panels, rows read in place; 1 thread.
fn rows_gflops(isa: Isa, c: usize, w: usize, panels: usize) -> f64 {
    let plane = w * w;
    let offs: Vec<usize> = (0..c * 9)
        .map(|k| (k / 9) * plane + (k % 9 / 3) * w + k % 3)
        .collect();
    let x = vec![0.25f32; c * plane + 4 * w];
    in_place_gflops(isa, &offs, &x, (w - 2) * w, panels)
}

/// [`Isa::tile_rows`] as ResNet's stem uses it (`conv_gemm`'s grid): a 7x7, stride-2 conv
/// on the 3 channels of a 224x224 image, padded by 3 and split into 4 phase planes of 115x115
/// each, so that the 147 rows (channel, tap) read consecutive values; 64 output channels
/// (8 weight panels); 1 thread.
fn stem_gflops(isa: Isa) -> f64 {
    let wg = 115;
    let plane = wg * wg;
    let offs: Vec<usize> = (0..3 * 49)
        .map(|k| {
            let (c, ky, kx) = (k / 49, k % 49 / 7, k % 7);
            (c * 4 + (ky % 2) * 2 + kx % 2) * plane + (ky / 2) * wg + kx / 2
        })
        .collect();
    let x = vec![0.25f32; 12 * plane + 4 * wg];
    in_place_gflops(isa, &offs, &x, 112 * wg, 8)
}

/// [`Isa::tile_rows`] on rows `offs` of `x`: the pixel panels of the first `positions` grid
/// positions against `panels` weight panels, each panel's tiles one after the other (as the
/// conv runs a pixel panel against its weight panels); 1 thread, best of five.
fn in_place_gflops(isa: Isa, offs: &[usize], x: &[f32], positions: usize, panels: usize) -> f64 {
    use resnetc::machine::simd::MR;
    let nr = isa.nr();
    let kc = offs.len();
    let rows = resnetc::machine::simd::Rows::new(offs);
    let a = vec![0.5f32; kc * MR * panels];
    let mut acc = vec![0.0f32; MR * nr];
    let px_panels = positions / nr;
    let reps = (4_000_000_000 / (kc * MR * nr * panels * px_panels)).max(1);
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                for jp in 0..px_panels {
                    for p in 0..panels {
                        isa.tile_rows(&a[p * kc * MR..], MR, x, jp * nr, &rows, &mut acc);
                        std::hint::black_box(&mut acc);
                    }
                }
            }
            (reps * px_panels * panels * kc * MR * nr * 2) as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}
