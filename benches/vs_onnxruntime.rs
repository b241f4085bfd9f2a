//! resnetc's interpreter against ONNX Runtime on the same CPU, threads and architecture, in
//! one run: ResNet-18 and ResNet-50 at batch 1, 3x224x224, 2 threads. Both engines are
//! alternated over several rounds (absolute times drift on shared machines) and the ratio of
//! medians is printed. Weights are seeded random (the timing does not depend on the values).
//!
//! Setup once: `PY=$(../shared/bench/setup.sh)`; then
//! `RESNETC_BENCH_PY=$PY cargo bench --bench vs_onnxruntime` (the default interpreter is
//! `$HOME/.cache/resnetc-bench-venv/bin/python`).

use std::process::Command;
use std::time::Instant;

const ROUNDS: usize = 3;
const RUNS: usize = 20;
const THREADS: usize = 2;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median milliseconds of `RUNS` runs of the interpreter (after warm-up).
fn time_resnetc(program: &resnetc::interp::plan::Program, input: &ndarray::ArrayD<f32>) -> f64 {
    let opts = resnetc::interp::RunOptions { threads: THREADS };
    let samples = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let out = resnetc::interp::run_program(program, vec![input.clone()], opts);
            std::hint::black_box(out);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(samples)
}

/// Median milliseconds reported by ../shared/bench/ort_resnet.py.
fn time_ort(py: &str, script: &str, arch: &str) -> f64 {
    let out = Command::new(py)
        .args([
            script,
            "--arch",
            arch,
            "--threads",
            &THREADS.to_string(),
            "--runs",
            &RUNS.to_string(),
        ])
        .output()
        .expect("cannot start the ONNX Runtime benchmark");
    assert!(
        out.status.success(),
        "ort_resnet.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    json["median_ms"].as_f64().expect("median_ms")
}

fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let script = format!("{root}/../shared/bench/ort_resnet.py");
    let home = std::env::var("HOME").unwrap_or_default();
    let py = std::env::var("RESNETC_BENCH_PY")
        .unwrap_or(format!("{home}/.cache/resnetc-bench-venv/bin/python"));
    if !std::path::Path::new(&py).exists() || !std::path::Path::new(&script).exists() {
        eprintln!(
            "ONNX Runtime is not set up: run `PY=$(../shared/bench/setup.sh)` and set RESNETC_BENCH_PY=$PY"
        );
        std::process::exit(2);
    }
    println!("arch       round  resnetc_ms  onnxruntime_ms  ratio");
    for arch in ["resnet18", "resnet50"] {
        let text = std::fs::read_to_string(format!("{root}/examples/{arch}.res")).unwrap();
        let source = resnetc::span::Source::new(arch, text);
        let checked = resnetc::check(&source, None);
        let net = checked.network().unwrap();
        let weights = resnetc::interp::weights::seeded(net.graph(), net.shapes(), 0);
        let program = resnetc::interp::plan::plan(&net, weights);
        let input = ndarray::ArrayD::<f32>::from_elem(ndarray::IxDyn(&[1, 3, 224, 224]), 0.1);
        for _ in 0..3 {
            std::hint::black_box(resnetc::interp::run_program(
                &program,
                vec![input.clone()],
                resnetc::interp::RunOptions { threads: THREADS },
            ));
        }
        let mut ratios = Vec::new();
        for round in 0..ROUNDS {
            let ours = time_resnetc(&program, &input);
            let theirs = time_ort(&py, &script, arch);
            ratios.push(ours / theirs);
            println!(
                "{arch:<10} {round:>5}  {ours:>10.1}  {theirs:>14.1}  {:>5.2}",
                ours / theirs
            );
        }
        println!(
            "{arch:<10} median ratio resnetc / onnxruntime: {:.2}",
            median(ratios)
        );
    }
}
