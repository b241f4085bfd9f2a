//! The machine's measured FMA peak, the yardstick for the conv kernels' GFLOP/s: 12
//! independent chains of vector fused multiply-adds per thread, on 1 and 2 threads, for every
//! instruction set the CPU has. Prints the best of five runs of each (other processes on a
//! shared machine only ever lower it).
//!
//! `cargo bench --bench fma_peak`

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
}
