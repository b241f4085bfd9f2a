//! Where a run's time goes: the median time of every step of one network's program (a conv
//! with its fused batchnorm, add and ReLU; a pool; an add), with each conv's GFLOP/s (a
//! multiply-add counts 2; a Winograd conv is credited with the direct conv's operations) and
//! the totals per kind of step. Seeded weights, input 3x224x224, 2 threads (`RESNETC_THREADS`
//! sets another count), the CPU's best
//! instruction set (`RESNETC_CPU=avx2` forces AVX2 + FMA; `RESNETC_WINOGRAD=0` plans every
//! conv as a packed GEMM, `RESNETC_WINOGRAD=2` keeps Winograd's output tiles at 2x2). The
//! kernel column names the conv's kernel: `gemm`, `winograd4` or `winograd2` (by output tile),
//! `depthwise`; `gemm+maxpool` for a conv fused with the max pool after it (ResNet's stem),
//! whose output is the pool's (no GFLOP/s shown).
//!
//! A batch runs in the passes `run` would cut it into (`interp::run_program`: ResNet-50 at
//! batch 8 in passes of 2 images), each step's time summed over them; `RESNETC_WHOLE=1` runs
//! it whole instead.
//!
//! `cargo bench --bench steps -- resnet18` (names of `examples/*.res`; `resnet50_b8` for batch 8).

use std::time::Instant;

const RUNS: usize = 30;
/// Threads, unless `RESNETC_THREADS` says otherwise.
const THREADS: usize = 2;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// As the `resnetc` binary allocates: large blocks in huge pages.
#[global_allocator]
static ALLOCATOR: resnetc::machine::memory::HugePages = resnetc::machine::memory::HugePages;

fn main() {
    // As the `resnetc` binary does.
    resnetc::machine::memory::keep_freed_memory();
    let root = env!("CARGO_MANIFEST_DIR");
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let picked = if picked.is_empty() {
        vec!["resnet18".to_string()]
    } else {
        picked
    };
    let threads = std::env::var("RESNETC_THREADS")
        .ok()
        .map(|t| t.parse().expect("RESNETC_THREADS is a number"))
        .unwrap_or(THREADS);
    let mut opts = resnetc::interp::RunOptions::new(threads);
    if let Ok(name) = std::env::var("RESNETC_CPU") {
        opts.isa = resnetc::machine::simd::Isa::named(&name)
            .expect("RESNETC_CPU names an instruction set of this CPU");
    }
    let winograd = std::env::var_os("RESNETC_WINOGRAD").is_none_or(|v| v != "0");
    for name in picked {
        // `<example>` or `<example>_b<batch>` (an example's own name may end in `_b0`).
        let example =
            |arch: &str| std::path::Path::new(&format!("{root}/examples/{arch}.res")).exists();
        let (arch, batch) = match name.rsplit_once("_b") {
            Some((a, b)) if !example(&name) => (a.to_string(), b.parse().expect("_b<batch>")),
            _ => (name.clone(), 1usize),
        };
        let text = std::fs::read_to_string(format!("{root}/examples/{arch}.res")).unwrap();
        let source = resnetc::span::Source::new(&arch, text);
        let checked = resnetc::check(&source, None);
        let net = checked.network().unwrap();
        let g = net.graph();
        let weights = resnetc::interp::weights::seeded(g, net.shapes(), 0);
        let program = net.plan_with(weights, winograd);
        let input = ndarray::ArrayD::<f32>::from_elem(ndarray::IxDyn(&[batch, 3, 224, 224]), 0.1);
        let per_pass = if std::env::var_os("RESNETC_WHOLE").is_some_and(|v| v == "1") {
            batch
        } else {
            resnetc::interp::images_per_pass_of(&program).clamp(1, batch.max(1))
        };
        let passes: Vec<_> = (0..batch)
            .step_by(per_pass)
            .map(|b0| {
                input
                    .slice_axis(ndarray::Axis(0), (b0..(b0 + per_pass).min(batch)).into())
                    .to_owned()
            })
            .collect();
        let steps = program.steps.len();
        let mut times = vec![Vec::with_capacity(RUNS); steps];
        let mut totals = Vec::with_capacity(RUNS);
        let mut dims: Vec<Vec<usize>> = Vec::with_capacity(steps);
        for run in 0..RUNS + 3 {
            let mut step_ms = vec![0.0; steps];
            let start = Instant::now();
            for (p, part) in passes.iter().enumerate() {
                let mut i = 0;
                let mut last = Instant::now();
                let out = resnetc::interp::run_observed(
                    &program,
                    vec![part.clone()],
                    opts,
                    &mut |_, value| {
                        let now = Instant::now();
                        if run == 0 && p == 0 {
                            // The shape of the whole batch's value: in passes, every value
                            // keeps the batch axis first.
                            let mut dim = value.shape().to_vec();
                            if per_pass < batch {
                                dim[0] = batch;
                            }
                            dims.push(dim);
                        }
                        step_ms[i] += (now - last).as_secs_f64() * 1e3;
                        last = now;
                        i += 1;
                    },
                );
                std::hint::black_box(out);
            }
            if run >= 3 {
                totals.push(start.elapsed().as_secs_f64() * 1e3);
                for (t, ms) in times.iter_mut().zip(step_ms) {
                    t.push(ms);
                }
            }
        }
        let cut = if passes.len() > 1 {
            format!(", passes of {per_pass} images")
        } else {
            String::new()
        };
        println!(
            "{name}: {} steps, median run {:.2} ms ({}, {threads} threads{cut})",
            steps,
            median(totals),
            opts.isa.name()
        );
        println!(
            "{:<34} {:<9} {:>20} {:>6} {:>8} {:>8}",
            "step", "kernel", "output", "K", "ms", "GFLOP/s"
        );
        let mut by_kind: std::collections::BTreeMap<&str, (f64, f64)> = Default::default();
        for ((step, t), dim) in program.steps.iter().zip(times).zip(&dims) {
            let ms = median(t);
            let node = step.node;
            let shape: Vec<String> = dim.iter().map(|d| d.to_string()).collect();
            let (kind, taps, flop) = match &step.kernel {
                // A conv fused with the max pool after it: its output is the pool's, so no
                // operation count is shown.
                resnetc::interp::plan::Kernel::Conv {
                    conv,
                    pool: Some(_),
                    ..
                } => (
                    if conv.kind() == "gemm" {
                        "gemm+maxpool"
                    } else {
                        conv.kind()
                    },
                    conv.taps(),
                    0.0,
                ),
                resnetc::interp::plan::Kernel::Conv { conv, .. } => {
                    let outs: usize = dim.iter().product();
                    (conv.kind(), conv.taps(), 2.0 * (outs * conv.taps()) as f64)
                }
                resnetc::interp::plan::Kernel::Affine { .. } => ("affine", 0, 0.0),
                resnetc::interp::plan::Kernel::Add { .. } => ("add", 0, 0.0),
                resnetc::interp::plan::Kernel::Op { op, .. } => (op.name(), 0, 0.0),
            };
            let e = by_kind.entry(kind).or_default();
            e.0 += ms;
            e.1 += flop;
            let gflops = if flop > 0.0 {
                format!("{:.1}", flop / ms / 1e6)
            } else {
                String::new()
            };
            println!(
                "{:<34} {:<9} {:>20} {:>6} {:>8.3} {:>8}",
                g.node(node).path,
                kind,
                shape.join("x"),
                if taps > 0 {
                    taps.to_string()
                } else {
                    String::new()
                },
                ms,
                gflops
            );
        }
        println!("{:<34} {:>8} {:>8}", "kind", "ms", "GFLOP/s");
        for (kind, (ms, flop)) in by_kind {
            let gflops = if flop > 0.0 {
                format!("{:.1}", flop / ms / 1e6)
            } else {
                String::new()
            };
            println!("{kind:<34} {ms:>8.3} {gflops:>8}");
        }
    }
}
