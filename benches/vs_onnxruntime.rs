//! resnetc's interpreter against ONNX Runtime on the same CPU, threads and architecture, in
//! one run: ResNet-18 and ResNet-50 at batch 1, 3x224x224, 2 threads. Both engines are
//! alternated over several rounds (absolute times drift on shared machines) and the ratio of
//! medians is printed. Weights are seeded random (the timing does not depend on the values).
//! ONNX Runtime runs in a process of its own that stays up for the case
//! (`benches/ort_peer.py`: its session built and warmed up once, its runs timed on request),
//! so that within a round the engines take short turns (`TURNS`), a moment of load on the host
//! falling on both. resnetc runs two plans in its turns, one after the other: with Winograd
//! for the 3x3 convs (as `run` does) and with every conv as a packed GEMM (as
//! `RESNETC_WINOGRAD=0` makes it), so both ratios come from the same minutes. Each engine's
//! model takes its runs of a turn in a row, as a user's repeated runs do: two plans alternated
//! run by run each found the other's weights in the caches (ResNet-18 on an Intel Xeon, in
//! `steps`: 12.9 ms a run alternated, against 11.5-12.3 ms run after run).
//!
//! Setup once: `PY=$(../shared/bench/setup.sh)`; then
//! `RESNETC_BENCH_PY=$PY cargo bench --bench vs_onnxruntime` (the default interpreter is
//! `$HOME/.cache/resnetc-bench-venv/bin/python`).
//!
//! MobileNetV2, DenseNet-121 and EfficientNet-B0 run on their fixtures' weights and input in
//! both engines; ONNX Runtime gets torchvision's own model exported by `benches/ort_families.py`
//! (the first time), which needs PyTorch: the comparison venv (`RESNETC_PYTHON`, default
//! `$HOME/.cache/resnetc-venv/bin/python`, made by `./test.sh`). Names after `--` pick the
//! networks: `cargo bench --bench vs_onnxruntime -- mobilenet_v2 densenet121`.

use std::process::Command;
use std::time::Instant;

/// Rounds, each with `RUNS` timed runs of each engine: five, so that one round caught by a
/// burst of load on the host does not set the median.
const ROUNDS: usize = 5;
const RUNS: usize = 20;
/// Turns of each engine per round, each of `RUNS / TURNS` runs (resnetc's two plans one after
/// the other, then ONNX Runtime's), so that the engines' runs are at most a few hundred
/// milliseconds apart and a moment of load on the host falls on both.
const TURNS: usize = 4;
/// The wait before each engine's turn. ONNX Runtime's worker threads spin for a while after a
/// run (its default, which a user gets): measured on the AMD EPYC (Zen 5), resnetc's first run
/// after ONNX Runtime's turn took 20-59 ms of ResNet-18 instead of 9-12 when it followed at
/// once, 36-44 ms after 10 ms, 15-33 after 25, and as its other runs after 50.
const PAUSE: std::time::Duration = std::time::Duration::from_millis(100);
const THREADS: usize = 2;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `THREADS` threads; the instruction set `RESNETC_CPU` names (avx512, avx2), else the best.
fn options() -> resnetc::interp::RunOptions {
    let mut opts = resnetc::interp::RunOptions::new(THREADS);
    if let Ok(name) = std::env::var("RESNETC_CPU") {
        opts.isa = resnetc::machine::simd::Isa::named(&name)
            .expect("RESNETC_CPU names an instruction set of this CPU");
    }
    opts
}

/// Milliseconds of `n` runs of each program, each program's runs in a row (as the peer's
/// session takes its runs of a turn).
fn time_resnetc<const N: usize>(
    programs: [&resnetc::interp::plan::Program; N],
    input: &ndarray::ArrayD<f32>,
    n: usize,
    samples: &mut [Vec<f64>; N],
) {
    let opts = options();
    for (program, samples) in programs.iter().zip(samples.iter_mut()) {
        for _ in 0..n {
            // The run takes its input by value: the copy is made before the clock starts, as
            // ONNX Runtime's peer passes the same array to every run without copying it.
            let inputs = vec![input.clone()];
            let t = Instant::now();
            let out = resnetc::interp::run_program(program, inputs, opts);
            std::hint::black_box(out);
            samples.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
}

/// The library to preload into the peer's process so that it runs on the AVX2 path
/// (`RESNETC_PEER_CPU`, else `RESNETC_CPU`, is `avx2`), built from `benches/avx2_only.c`; `None`
/// for the CPU's own features.
fn peer_preload(root: &str) -> Option<String> {
    match std::env::var("RESNETC_PEER_CPU") {
        Ok(cpu) if cpu == "avx2" => {}
        Ok(cpu) if cpu == "best" => return None,
        Ok(other) => panic!("RESNETC_PEER_CPU is avx2 or best, not {other:?}"),
        // As resnetc: on AVX2 where it is forced onto AVX2.
        Err(_) if std::env::var("RESNETC_CPU").is_ok_and(|cpu| cpu == "avx2") => {}
        Err(_) => return None,
    }
    let lib = format!("{}/avx2_only.so", env!("CARGO_TARGET_TMPDIR"));
    let cc = std::env::var("CC").unwrap_or("cc".into());
    let status = Command::new(&cc)
        .args(["-O2", "-shared", "-fPIC", "-o", &lib])
        .arg(format!("{root}/benches/avx2_only.c"))
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?}: {e}"));
    assert!(status.success(), "{cc} could not build benches/avx2_only.c");
    Some(lib)
}

/// ONNX Runtime in a process of its own that stays up for a case (`benches/ort_peer.py`): one
/// session, built and warmed up once, whose runs are timed on request, so that its turns and
/// resnetc's alternate within the same seconds.
struct Peer {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Peer {
    /// Starts `script` with `py` for `args`, with `preload` preloaded, and waits until its
    /// session is ready.
    fn start(py: &str, script: &str, args: &[String], preload: Option<&str>) -> Peer {
        use std::process::Stdio;
        let mut command = Command::new(py);
        if let Some(lib) = preload {
            command.env("LD_PRELOAD", lib);
        }
        let mut child = command
            .arg(script)
            .args(["--threads", &THREADS.to_string()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {py} {script}: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut peer = Peer {
            child,
            stdin,
            stdout,
        };
        let ready = peer.answer();
        assert_eq!(ready["ready"], true, "{script} did not get ready: {ready}");
        peer
    }

    /// The peer's next JSON line; panics with its exit status if it has none.
    fn answer(&mut self) -> serde_json::Value {
        use std::io::BufRead;
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).expect("the peer's output");
        if n == 0 {
            let status = self.child.wait().expect("the peer's exit status");
            panic!("the ONNX Runtime peer stopped ({status}); its errors are above");
        }
        serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    /// Milliseconds of each of `n` runs, timed by the peer around its session's run.
    fn runs(&mut self, n: usize) -> Vec<f64> {
        use std::io::Write;
        writeln!(self.stdin, "{n}").expect("the peer's input");
        self.stdin.flush().expect("the peer's input");
        let answer = self.answer();
        let ms: Vec<f64> = answer["ms"]
            .as_array()
            .unwrap_or_else(|| panic!("no times in {answer}"))
            .iter()
            .map(|v| v.as_f64().expect("a time in ms"))
            .collect();
        assert_eq!(ms.len(), n, "the peer timed {} runs, not {n}", ms.len());
        ms
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        use std::io::Write;
        // An empty line ends the peer; then wait for it, so that no process outlives the bench.
        let _ = writeln!(self.stdin,);
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

/// One network to time: its example, and how ONNX Runtime gets the same model.
struct Case {
    arch: &'static str,
    /// Run on the fixture's weights and input (and the peer from `benches/ort_families.py`).
    fixture: bool,
    /// Images per run (seeded cases only); throughput is batch / time.
    batch: usize,
}

impl Case {
    /// The name that picks it on the command line: the arch, `_b8` appended for batch 8.
    fn name(&self) -> String {
        if self.batch == 1 {
            self.arch.to_string()
        } else {
            format!("{}_b{}", self.arch, self.batch)
        }
    }
}

const CASES: [Case; 7] = [
    Case {
        arch: "resnet18",
        fixture: false,
        batch: 1,
    },
    Case {
        arch: "resnet50",
        fixture: false,
        batch: 1,
    },
    Case {
        arch: "resnet18",
        fixture: false,
        batch: 8,
    },
    Case {
        arch: "resnet50",
        fixture: false,
        batch: 8,
    },
    Case {
        arch: "mobilenet_v2",
        fixture: true,
        batch: 1,
    },
    Case {
        arch: "densenet121",
        fixture: true,
        batch: 1,
    },
    Case {
        arch: "efficientnet_b0",
        fixture: true,
        batch: 1,
    },
];

/// The interpreter's program (Winograd for the 3x3 convs if `winograd`) and input for one
/// case.
fn prepare(
    root: &str,
    case: &Case,
    winograd: bool,
) -> (resnetc::interp::plan::Program, ndarray::ArrayD<f32>) {
    use ndarray_npy::ReadNpyExt;
    let arch = case.arch;
    let text = std::fs::read_to_string(format!("{root}/examples/{arch}.res")).unwrap();
    let source = resnetc::span::Source::new(arch, text);
    let checked = resnetc::check(&source, None);
    let net = checked.network().unwrap();
    let (g, shapes) = (net.graph(), net.shapes());
    if !case.fixture {
        let weights = resnetc::interp::weights::seeded(g, shapes, 0);
        let input =
            ndarray::ArrayD::<f32>::from_elem(ndarray::IxDyn(&[case.batch, 3, 224, 224]), 0.1);
        return (net.plan_with(weights, winograd), input);
    }
    let fixtures = format!("{root}/../shared/fixtures");
    let bytes = std::fs::read(format!("{fixtures}/{arch}.safetensors")).unwrap();
    let bytes = resnetc::interp::weights::FileBytes::Read(bytes);
    let weights = resnetc::interp::weights::from_safetensors(g, shapes, bytes)
        .unwrap_or_else(|e| panic!("{arch}: the fixture's weights do not fit: {e:?}"));
    let file = std::fs::File::open(format!("{fixtures}/{arch}.input.npy")).unwrap();
    let input = ndarray::ArrayD::<f32>::read_npy(file).unwrap();
    (net.plan_with(weights, winograd), input)
}

/// The peer's Python and script for a case, or why they are missing.
fn peer(root: &str, case: &Case) -> Result<(String, String), String> {
    let home = std::env::var("HOME").unwrap_or_default();
    let (py, script, hint) = if case.fixture {
        (
            std::env::var("RESNETC_PYTHON")
                .unwrap_or(format!("{home}/.cache/resnetc-venv/bin/python")),
            format!("{root}/benches/ort_peer.py"),
            "run ./test.sh, which makes the comparison venv, or set RESNETC_PYTHON",
        )
    } else {
        (
            std::env::var("RESNETC_BENCH_PY")
                .unwrap_or(format!("{home}/.cache/resnetc-bench-venv/bin/python")),
            format!("{root}/benches/ort_peer.py"),
            "run `PY=$(../shared/bench/setup.sh)` and set RESNETC_BENCH_PY=$PY",
        )
    };
    if std::path::Path::new(&py).exists() && std::path::Path::new(&script).exists() {
        Ok((py, script))
    } else {
        Err(format!(
            "ONNX Runtime is not set up for {}: {hint}",
            case.arch
        ))
    }
}

/// As the `resnetc` binary allocates: large blocks in huge pages.
#[global_allocator]
static ALLOCATOR: resnetc::machine::memory::HugePages = resnetc::machine::memory::HugePages;

fn main() {
    // As the `resnetc` binary does.
    resnetc::machine::memory::keep_freed_memory();
    let root = env!("CARGO_MANIFEST_DIR");
    // `cargo bench` passes `--bench`; other arguments name the networks to time.
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let cases: Vec<&Case> = CASES
        .iter()
        .filter(|c| picked.is_empty() || picked.iter().any(|p| *p == c.name()))
        .collect();
    let mut peers = Vec::new();
    for case in &cases {
        match peer(root, case) {
            Ok(p) => peers.push(p),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
    }
    let preload = peer_preload(root);
    println!(
        "resnetc on {}, ONNX Runtime on {}",
        options().isa.name(),
        if preload.is_some() {
            "avx2 (AVX-512 hidden from its CPUID)"
        } else {
            "this CPU's best"
        }
    );
    println!("arch             round  resnetc_ms  onnxruntime_ms  ratio  direct_ms  direct_ratio");
    for (case, (py, script)) in cases.iter().zip(&peers) {
        let arch = case.arch;
        let name = case.name();
        let (program, input) = prepare(root, case, true);
        let (direct, _) = prepare(root, case, false);
        let fixtures = format!("{root}/../shared/fixtures");
        let args: Vec<String> = if case.fixture {
            vec![
                "--family".into(),
                arch.into(),
                "--weights".into(),
                format!("{fixtures}/{arch}.safetensors"),
                "--input".into(),
                format!("{fixtures}/{arch}.input.npy"),
            ]
        } else {
            vec![
                "--arch".into(),
                arch.into(),
                "--batch".into(),
                case.batch.to_string(),
            ]
        };
        let mut ort = Peer::start(py, script, &args, preload.as_deref());
        for p in [&program, &direct] {
            for _ in 0..3 {
                std::hint::black_box(resnetc::interp::run_program(
                    p,
                    vec![input.clone()],
                    options(),
                ));
            }
        }
        let (mut ratios, mut direct_ratios) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let mut samples: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
            let mut theirs = Vec::new();
            for _ in 0..TURNS {
                std::thread::sleep(PAUSE);
                time_resnetc([&program, &direct], &input, RUNS / TURNS, &mut samples);
                std::thread::sleep(PAUSE);
                theirs.extend(ort.runs(RUNS / TURNS));
            }
            let [ours, plain] = samples.map(median);
            let theirs = median(theirs);
            ratios.push(ours / theirs);
            direct_ratios.push(plain / theirs);
            println!(
                "{name:<16} {round:>5}  {ours:>10.1}  {theirs:>14.1}  {:>5.2}  {plain:>9.1}  {:>12.2}",
                ours / theirs,
                plain / theirs
            );
        }
        drop(ort);
        println!(
            "{name:<16} median ratio resnetc / onnxruntime: {:.2} (Winograd), {:.2} (direct)",
            median(ratios),
            median(direct_ratios)
        );
    }
}
