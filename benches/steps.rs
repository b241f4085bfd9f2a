//! Where a run's time goes: the median time of every step of one network's program (a conv
//! with its fused batchnorm, add and ReLU; a pool; an add), with each conv's GFLOP/s (a
//! multiply-add counts 2; a Winograd conv is credited with the direct conv's operations) and
//! the totals per kind of step. Seeded weights, 2 threads (`RESNETC_THREADS` sets another
//! count), the CPU's best instruction set (`RESNETC_CPU=avx2` forces AVX2 + FMA;
//! `RESNETC_WINOGRAD=0` plans every conv as a packed GEMM, `RESNETC_WINOGRAD=2` keeps
//! Winograd's output tiles at 2x2). The kernel column names the conv's kernel: `gemm`,
//! `winograd4` or `winograd2` (by output tile), `depthwise`; `gemm+maxpool` for a conv fused
//! with the max pool after it (ResNet's stem), whose output is the pool's (no GFLOP/s shown).
//! Last, the totals per part of the network (a step's path up to its first `.`: ResNet's
//! stages `layer1` to `layer4`, its stem `maxpool#0`, its head), to set beside the sum of
//! the same stage's nodes from `benches/ort_layers.py`.
//!
//! A batch runs as `run` would cut it (`interp::run_program`: ResNet-50 at batch 8 in passes
//! of 2 images up to `layer3`'s first block, then the whole batch), each step's time summed
//! over its passes; `RESNETC_WHOLE=1` runs every step on the whole batch instead.
//! `RESNETC_RUNS` sets the number of timed runs (30).
//!
//! `RESNETC_ALTERNATE=avx2` (or another instruction set the CPU has) times a second program,
//! planned for that instruction set, in the same process: the runs alternate between the two,
//! and each step's median is shown for both with their ratio (alternate / first). Two sittings
//! a minute apart can differ by more than the two instruction sets do on a shared host; runs
//! taken in turn see the same host. (The max pools, the linear layer and the elementwise
//! activations outside convs take the instruction set `RESNETC_CPU` picks in both programs.)
//! `RESNETC_ALTERNATE_THREADS=1` (or another count) runs the alternate on that many threads
//! (the same program, unless `RESNETC_ALTERNATE` names an instruction set too): each step's
//! ratio is then how it scales, measured in turn on the same host.
//!
//! `RESNETC_BALANCE=1` adds a column `uneven` (with one program; with an alternate, only
//! the totals): per step, the median over the runs of how unevenly its parallel passes
//! shared their work out (each pass's busiest thread's time in its tasks less the mean
//! thread's, summed over the step's passes), and each program's total over the steps: the time a two-thread run loses to one thread waiting for the other, which the
//! host's noise moves far less than the steps' own times.
//!
//! `cargo bench --bench steps -- resnet18` (names of `examples/*.res`; `resnet50_b8` for batch 8;
//! or the path of any `.res` file, such as a network of the one step to be timed). The input is
//! the network's first declared input, its symbolic batch bound, every value 0.1.

use resnetc::interp::RunOptions;
use resnetc::interp::plan::Program;
use std::time::Instant;

/// Timed runs, unless `RESNETC_RUNS` says otherwise.
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
    let balance = std::env::var_os("RESNETC_BALANCE").is_some_and(|v| v != "0");
    resnetc::interp::kernels::time_threads(balance);
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
    let runs = std::env::var("RESNETC_RUNS")
        .ok()
        .map(|r| r.parse().expect("RESNETC_RUNS is a number"))
        .unwrap_or(RUNS)
        .max(1);
    let alternate = std::env::var("RESNETC_ALTERNATE")
        .ok()
        .filter(|name| !name.is_empty())
        .map(|name| {
            resnetc::machine::simd::Isa::named(&name)
                .expect("RESNETC_ALTERNATE names an instruction set of this CPU")
        });
    let alternate_threads: Option<usize> = std::env::var("RESNETC_ALTERNATE_THREADS")
        .ok()
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().expect("RESNETC_ALTERNATE_THREADS is a number"));
    // What the alternate arm is called in the output.
    let label = |o: &RunOptions| match alternate_threads {
        Some(t) => format!("{}/{t}t", o.isa.name()),
        None => o.isa.name().to_string(),
    };
    for name in picked {
        // `<example>` or `<example>_b<batch>` (an example's own name may end in `_b0`).
        let example =
            |arch: &str| std::path::Path::new(&format!("{root}/examples/{arch}.res")).exists();
        let (arch, batch) = match name.rsplit_once("_b") {
            Some((a, b)) if !example(&name) && !name.ends_with(".res") => {
                (a.to_string(), b.parse().expect("_b<batch>"))
            }
            _ => (name.clone(), 1usize),
        };
        let path = if arch.ends_with(".res") {
            arch.clone()
        } else {
            format!("{root}/examples/{arch}.res")
        };
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let source = resnetc::span::Source::new(&arch, text);
        let checked = resnetc::check(&source, None);
        let net = checked.network().unwrap();
        let g = net.graph();
        let weights = resnetc::interp::weights::seeded(g, net.shapes(), 0);
        let program = net.plan_for(weights, winograd, opts.isa);
        // The programs taken in turn: this one, and the alternate's (same seeded weights).
        let mut arms: Vec<(&Program, RunOptions)> = vec![(&program, opts)];
        let other = alternate
            .or(alternate_threads.map(|_| opts.isa))
            .map(|isa| {
                let weights = resnetc::interp::weights::seeded(g, net.shapes(), 0);
                (
                    net.plan_for(weights, winograd, isa),
                    RunOptions {
                        isa,
                        threads: alternate_threads.unwrap_or(threads),
                    },
                )
            });
        if let Some((p, o)) = &other {
            assert!(
                p.steps
                    .iter()
                    .map(|s| s.node)
                    .eq(program.steps.iter().map(|s| s.node)),
                "both programs have the same steps"
            );
            arms.push((p, *o));
        }
        let dims: Vec<usize> = g.inputs[0]
            .dims
            .iter()
            .map(|d| match d {
                resnetc::ir::DimSpec::Known(v) => *v as usize,
                resnetc::ir::DimSpec::Sym(_) => batch,
            })
            .collect();
        let input = ndarray::ArrayD::<f32>::from_elem(ndarray::IxDyn(&dims), 0.1);
        let whole = std::env::var_os("RESNETC_WHOLE").is_some_and(|v| v == "1");
        let split = resnetc::interp::batch_split_of(&program, batch);
        let steps = program.steps.len();
        // Each step's index, by the node whose value it computes.
        let step_of: std::collections::HashMap<_, usize> = program
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.node, i))
            .collect();
        let mut times = vec![vec![Vec::with_capacity(runs); steps]; arms.len()];
        let mut totals = vec![Vec::with_capacity(runs); arms.len()];
        // Each step's unevenness per run (`RESNETC_BALANCE`), per program.
        let mut unevens = vec![vec![Vec::with_capacity(runs); steps]; arms.len()];
        // Each step's output for the whole batch, and the images it ran on at once.
        let mut dims: Vec<Option<(Vec<usize>, usize)>> = vec![None; steps];
        // Three untimed runs of each program first.
        let warm = 3 * arms.len();
        for run in 0..(runs + 3) * arms.len() {
            let arm = run % arms.len();
            let (program, opts) = arms[arm];
            let mut step_ms = vec![0.0; steps];
            let mut step_uneven = vec![0.0; steps];
            resnetc::interp::kernels::take_uneven();
            let start = Instant::now();
            let mut last = Instant::now();
            let mut observe = |node, value: &ndarray::ArrayD<f32>| {
                let now = Instant::now();
                let i = step_of[&node];
                if dims[i].is_none() {
                    // The shape of the whole batch's value: in passes, every value keeps the
                    // batch axis first.
                    let mut dim = value.shape().to_vec();
                    let images = dim.first().copied().unwrap_or(1);
                    if let Some(b) = dim.first_mut() {
                        *b = batch;
                    }
                    dims[i] = Some((dim, images));
                }
                step_ms[i] += (now - last).as_secs_f64() * 1e3;
                step_uneven[i] += resnetc::interp::kernels::take_uneven().as_secs_f64() * 1e3;
                last = now;
            };
            let out = if whole {
                resnetc::interp::run_observed(program, vec![input.clone()], opts, &mut observe)
            } else {
                resnetc::interp::run_program_observed(
                    program,
                    vec![input.clone()],
                    opts,
                    &mut observe,
                )
            };
            std::hint::black_box(out);
            if run >= warm {
                totals[arm].push(start.elapsed().as_secs_f64() * 1e3);
                for (t, ms) in times[arm].iter_mut().zip(step_ms) {
                    t.push(ms);
                }
                for (u, ms) in unevens[arm].iter_mut().zip(step_uneven) {
                    u.push(ms);
                }
            }
        }
        let cut = if whole || split.head == 0 {
            String::new()
        } else if split.head == steps {
            format!(", passes of {} images", split.per_pass)
        } else {
            format!(
                ", passes of {} images up to {}, then the whole batch",
                split.per_pass,
                g.node(program.steps[split.head].node).path
            )
        };
        let [first, rest @ ..] = &totals[..] else {
            unreachable!("one program at least")
        };
        let alt = rest
            .first()
            .map(|t| {
                format!(
                    "; alternated with {:.2} ms on {}",
                    median(t.clone()),
                    label(&arms[1].1)
                )
            })
            .unwrap_or_default();
        println!(
            "{name}: {} steps, median run {:.2} ms ({}, {threads} threads{cut}){alt}",
            steps,
            median(first.clone()),
            opts.isa.name()
        );
        let head = format!(
            "{:<34} {:<12} {:>20} {:>6} {:>8} {:>8}",
            "step", "kernel", "output", "K", "ms", "GFLOP/s"
        );
        if arms.len() > 1 {
            let alt = label(&arms[1].1);
            println!("{head}  {alt:<12} {:>8} {:>6}", "ms", "ratio");
        } else {
            println!("{head}{}", if balance { "   uneven" } else { "" });
        }
        let mut by_kind = vec![std::collections::BTreeMap::<&str, (f64, f64)>::new(); arms.len()];
        // The network's parts (a step's path up to its first `.`: `layer3` for
        // `layer3.1.relu#0`), each run of consecutive steps of one part with their summed
        // medians, per program.
        let mut by_part: Vec<(String, Vec<f64>)> = Vec::new();
        for (i, seen) in dims.iter().enumerate() {
            let (dim, images) = seen.as_ref().expect("every step ran");
            let step = &program.steps[i];
            let mut line = String::new();
            let path = &g.node(step.node).path;
            let part = path.split('.').next().unwrap_or(path);
            if by_part.last().is_none_or(|(p, _)| p != part) {
                by_part.push((part.to_string(), vec![0.0; arms.len()]));
            }
            let part_sums = &mut by_part.last_mut().expect("pushed above").1;
            for (arm, (prog, _)) in arms.iter().enumerate() {
                let ms = median(times[arm][i].clone());
                part_sums[arm] += ms;
                let (kind, taps, flop) = describe(&prog.steps[i].kernel, dim, *images);
                let e = by_kind[arm].entry(kind).or_default();
                e.0 += ms;
                e.1 += flop;
                let gflops = if flop > 0.0 {
                    format!("{:.1}", flop / ms / 1e6)
                } else {
                    String::new()
                };
                if arm == 0 {
                    let shape: Vec<String> = dim.iter().map(|d| d.to_string()).collect();
                    line = format!(
                        "{:<34} {:<12} {:>20} {:>6} {:>8.3} {:>8}",
                        path,
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
                    if balance && arms.len() == 1 {
                        line += &format!(" {:>8.3}", median(unevens[0][i].clone()));
                    }
                } else {
                    let first = median(times[0][i].clone());
                    line += &format!("  {kind:<12} {ms:>8.3} {:>6.2}", ms / first);
                }
            }
            println!("{line}");
        }
        // The first program by its instruction set, the alternate by its label.
        let arm_name = |arm: usize| {
            if arm == 0 {
                opts.isa.name().to_string()
            } else {
                label(&arms[arm].1)
            }
        };
        if balance {
            for (arm, per_step) in unevens.iter().enumerate() {
                let runs = per_step.first().map_or(0, Vec::len);
                let per_run: Vec<f64> = (0..runs)
                    .map(|r| per_step.iter().map(|u| u[r]).sum())
                    .collect();
                if !per_run.is_empty() {
                    println!(
                        "uneven ({}): {:.3} ms a run (median of the runs' totals)",
                        arm_name(arm),
                        median(per_run)
                    );
                }
            }
        }
        for (arm, kinds) in by_kind.into_iter().enumerate() {
            let isa = arm_name(arm);
            println!(
                "{:<34} {:>8} {:>8}",
                format!("kind ({isa})"),
                "ms",
                "GFLOP/s"
            );
            for (kind, (ms, flop)) in kinds {
                let gflops = if flop > 0.0 {
                    format!("{:.1}", flop / ms / 1e6)
                } else {
                    String::new()
                };
                println!("{kind:<34} {ms:>8.3} {gflops:>8}");
            }
        }
        if arms.len() > 1 {
            println!(
                "{:<34} {:>8}  {:>8} {:>6}",
                "part",
                "ms",
                label(&arms[1].1),
                "ratio"
            );
        } else {
            println!("{:<34} {:>8}", "part", "ms");
        }
        for (part, sums) in by_part {
            let mut line = format!("{part:<34} {:>8.3}", sums[0]);
            if let Some(&alt) = sums.get(1) {
                line += &format!("  {alt:>8.3} {:>6.2}", alt / sums[0]);
            }
            println!("{line}");
        }
    }
}

/// A step's kernel as the table names it, its reduction length (0 for no conv) and its
/// operations (a multiply-add counts 2; none for a conv fused with its max pool, whose
/// output `dim` is the pool's), run on `images` images at once.
fn describe(
    kernel: &resnetc::interp::plan::Kernel,
    dim: &[usize],
    images: usize,
) -> (&'static str, usize, f64) {
    use resnetc::interp::plan::Kernel;
    match kernel {
        Kernel::Conv {
            conv,
            pool: Some(_),
            ..
        } => (
            if conv.kind(images) == "gemm" {
                "gemm+maxpool"
            } else {
                conv.kind(images)
            },
            conv.taps(),
            0.0,
        ),
        Kernel::Conv { conv, .. } => {
            let outs: usize = dim.iter().product();
            (
                conv.kind(images),
                conv.taps(),
                2.0 * (outs * conv.taps()) as f64,
            )
        }
        Kernel::Affine { .. } => ("affine", 0, 0.0),
        Kernel::Add { .. } => ("add", 0, 0.0),
        Kernel::Op { op, .. } => (op.name(), 0, 0.0),
    }
}
