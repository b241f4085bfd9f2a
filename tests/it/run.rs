//! `resnetc run` against PyTorch: the fixtures in ../shared/fixtures hold torchvision weights,
//! inputs and PyTorch's float64 outputs. The bound `max|y - y64| <= 1e-4 * max|y64|` has
//! about 300x headroom over f32 summation-order noise and still catches real bugs (see the
//! fixtures' README).

use crate::cli::{assert_clean_failure, resnetc, stderr};
use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;
use std::path::PathBuf;
use std::process::Output;

fn fixture(name: &str) -> PathBuf {
    let p = crate::root().join("../shared/fixtures").join(name);
    assert!(
        p.exists(),
        "{} is missing: the tests need ../shared/fixtures",
        p.display()
    );
    p
}

fn npy(path: &std::path::Path) -> ArrayD<f32> {
    ArrayD::<f32>::read_npy(std::fs::File::open(path).unwrap()).unwrap()
}

fn npy64(path: &std::path::Path) -> ArrayD<f64> {
    ArrayD::<f64>::read_npy(std::fs::File::open(path).unwrap()).unwrap()
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// `resnetc run examples/EXAMPLE` on the fixture weights and input of MODEL, plus `extra`.
fn run_on_fixture(example: &str, model: &str, extra: &[&str]) -> Output {
    let (weights, input) = (
        fixture(&format!("{model}.safetensors")),
        fixture(&format!("{model}.input.npy")),
    );
    let example = format!("examples/{example}");
    let mut args = vec![
        "run",
        &example,
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    resnetc(&args)
}

/// Run an example on a fixture and compare with PyTorch's float64 logits and top-5.
fn matches_pytorch(example: &str, model: &str) {
    let dir = temp_dir();
    let out = dir.path().join("y.npy");
    let o = run_on_fixture(example, model, &["-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let y = npy(&out);
    let y64 = npy64(&fixture(&format!("{model}.logits_f64.npy")));
    assert_eq!(y.shape(), y64.shape());
    let max_ref = y64.iter().fold(0f64, |m, v| m.max(v.abs()));
    let max_err = y
        .iter()
        .zip(y64.iter())
        .fold(0f64, |m, (a, b)| m.max((f64::from(*a) - b).abs()));
    eprintln!("{model}: max|y - y64| = {max_err:.3e}, max|y64| = {max_ref:.3}");
    assert!(
        max_err <= 1e-4 * max_ref,
        "{model}: max|y - y64| = {max_err}, max|y64| = {max_ref}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{model}.json"))).unwrap())
            .unwrap();
    for (i, row) in y.outer_iter().enumerate() {
        let mut idx: Vec<usize> = (0..row.len()).collect();
        idx.sort_by(|&p, &q| row[q].total_cmp(&row[p]));
        let expected: Vec<u64> = json["top5"][i]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let got: Vec<u64> = idx[..5].iter().map(|&c| c as u64).collect();
        assert_eq!(got, expected, "{model} sample {i}");
    }
    // The top-5 printed on stdout is the same.
    let text = String::from_utf8(o.stdout).unwrap();
    let first = json["top5"][0][0].as_u64().unwrap();
    assert!(
        text.contains(&format!("sample 0: top-5 {first} (")),
        "{text}"
    );
}

#[test]
fn resnet18_matches_pytorch() {
    matches_pytorch("resnet18.res", "resnet18");
}

#[test]
fn cifar_resnet20_option_a_matches_pytorch() {
    matches_pytorch("cifar_resnet20.res", "cifar_resnet20");
}

#[test]
fn densenet121_matches_pytorch() {
    matches_pytorch("densenet121.res", "densenet121");
}

#[test]
fn mobilenet_v2_matches_pytorch() {
    matches_pytorch("mobilenet_v2.res", "mobilenet_v2");
}

#[test]
fn efficientnet_b0_matches_pytorch() {
    matches_pytorch("efficientnet_b0.res", "efficientnet_b0");
}

/// Write a safetensors file with the given tensors (name, dtype, shape, raw bytes).
fn safetensors_file(
    dir: &std::path::Path,
    tensors: &[(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)],
) -> PathBuf {
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.to_string(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let path = dir.join("w.safetensors");
    safetensors::serialize_to_file(views, None, &path).unwrap();
    path
}

const SMALL: &str = "tests/ui/shape/symbolic_batch_ok.res";

#[test]
fn a_negative_batchnorm_variance_is_warned_about() {
    let dir = temp_dir();
    let net = dir.path().join("bn.res");
    std::fs::write(
        &net,
        "network n {\n    input image: [N, 3, 4, 4]\n    output scores = image -> bn: batchnorm -> global_avgpool -> flatten\n}\n",
    )
    .unwrap();
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let weights = |var: &[f32]| {
        safetensors_file(
            dir.path(),
            &[
                (
                    "bn.weight",
                    safetensors::Dtype::F32,
                    vec![3],
                    f32s(&[1.0; 3]),
                ),
                ("bn.bias", safetensors::Dtype::F32, vec![3], f32s(&[0.0; 3])),
                (
                    "bn.running_mean",
                    safetensors::Dtype::F32,
                    vec![3],
                    f32s(&[0.0; 3]),
                ),
                (
                    "bn.running_var",
                    safetensors::Dtype::F32,
                    vec![3],
                    f32s(var),
                ),
            ],
        )
    };
    let run = |w: &std::path::Path| {
        resnetc(&[
            "run",
            net.to_str().unwrap(),
            "--weights",
            w.to_str().unwrap(),
            "--random-input",
        ])
    };
    let o = run(&weights(&[1.0, -2.0, 1.0]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("`bn.running_var` holds 1 negative value"),
        "{err}"
    );
    // Channel 1 divides by sqrt(-2 + eps): its score is NaN, and said to be.
    assert!(
        err.contains("output `scores` holds 1 NaN or infinite value of 3"),
        "{err}"
    );
    let o = run(&weights(&[1.0, 2.0, 1.0]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

#[test]
fn bad_weights_are_reported_clearly() {
    let dir = temp_dir();
    let w = |name: &str| dir.path().join(name);
    // Missing file: an IO error.
    assert_clean_failure(
        &resnetc(&[
            "run",
            SMALL,
            "--weights",
            "no/such.safetensors",
            "--random-input",
        ]),
        2,
        "cannot read weights",
    );
    // Not safetensors, and truncated.
    std::fs::write(w("junk.safetensors"), b"this is not a weights file").unwrap();
    assert_clean_failure(
        &resnetc(&[
            "run",
            SMALL,
            "--weights",
            w("junk.safetensors").to_str().unwrap(),
            "--random-input",
        ]),
        1,
        "not a valid safetensors file",
    );
    let good = std::fs::read(fixture("cifar_resnet20.safetensors")).unwrap();
    std::fs::write(w("cut.safetensors"), &good[..good.len() / 2]).unwrap();
    assert_clean_failure(
        &resnetc(&[
            "run",
            "examples/cifar_resnet20.res",
            "--weights",
            w("cut.safetensors").to_str().unwrap(),
            "--random-input",
        ]),
        1,
        "not a valid safetensors file",
    );
    // A file far larger than the network's weights is not read.
    let o = resnetc(&[
        "run",
        SMALL,
        "--weights",
        fixture("resnet18.safetensors").to_str().unwrap(),
        "--random-input",
    ]);
    assert_clean_failure(&o, 1, "is it the right file?");
    // A wrong network for these weights: missing, unexpected and mis-shaped tensors, all at once.
    let o = resnetc(&[
        "run",
        "examples/resnet18.res",
        "--weights",
        fixture("cifar_resnet20.safetensors").to_str().unwrap(),
        "--random-input",
    ]);
    assert_clean_failure(&o, 1, "E0301");
    let err = stderr(&o);
    assert!(err.contains("E0302") && err.contains("E0303"), "{err}");
    assert!(err.contains("layer1.0.conv1.weight"), "{err}");
}

#[test]
fn weights_of_another_dtype_are_refused() {
    let dir = temp_dir();
    let text = "network n { input x: [1, 2, 4, 4]\n output x -> conv1: conv(3, k: 1) }\n";
    let net = dir.path().join("n.res");
    std::fs::write(&net, text).unwrap();
    for dtype in [safetensors::Dtype::F16, safetensors::Dtype::F64] {
        let size = if dtype == safetensors::Dtype::F16 {
            2
        } else {
            8
        };
        let path = safetensors_file(
            dir.path(),
            &[("conv1.weight", dtype, vec![3, 2, 1, 1], vec![0u8; 6 * size])],
        );
        let o = resnetc(&[
            "run",
            net.to_str().unwrap(),
            "--weights",
            path.to_str().unwrap(),
            "--random-input",
        ]);
        assert_clean_failure(&o, 1, "E0304");
    }
    let path = safetensors_file(
        dir.path(),
        &[(
            "conv1.weight",
            safetensors::Dtype::F32,
            vec![3, 2, 1, 1],
            vec![0u8; 24],
        )],
    );
    let o = resnetc(&[
        "run",
        net.to_str().unwrap(),
        "--weights",
        path.to_str().unwrap(),
        "--random-input",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn bad_inputs_are_reported_clearly() {
    let dir = temp_dir();
    let write = |name: &str, a: ndarray::ArrayD<f64>| {
        let p = dir.path().join(name);
        ndarray_npy::write_npy(&p, &a).unwrap();
        p
    };
    let f64_input = write(
        "f64.npy",
        ndarray::ArrayD::zeros(ndarray::IxDyn(&[1, 3, 32, 32])),
    );
    assert_clean_failure(
        &resnetc(&["run", SMALL, "--input", f64_input.to_str().unwrap()]),
        1,
        "holds float64 values, but resnetc runs on float32; convert it in numpy: `np.save(path, x.astype(np.float32))`",
    );
    let f32_path = |name: &str, shape: &[usize]| {
        let p = dir.path().join(name);
        ndarray_npy::write_npy(&p, &ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(shape))).unwrap();
        p
    };
    let rank3 = f32_path("rank3.npy", &[3, 32, 32]);
    assert_clean_failure(
        &resnetc(&["run", SMALL, "--input", rank3.to_str().unwrap()]),
        1,
        "declared [N, 3, 32, 32]",
    );
    let wrong = f32_path("wrong.npy", &[2, 3, 31, 32]);
    assert_clean_failure(
        &resnetc(&["run", SMALL, "--input", wrong.to_str().unwrap()]),
        1,
        "declared [N, 3, 32, 32]",
    );
    // A symbolic batch binds to the file's batch.
    let batch4 = f32_path("batch4.npy", &[4, 3, 32, 32]);
    let o = resnetc(&["run", SMALL, "--input", batch4.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("[4, 10]"));
    assert_clean_failure(&resnetc(&["run", SMALL]), 2, "--input");
    // A header that claims far more data than the file holds: an error, not a huge allocation.
    let mut header =
        "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 3, 32, 32), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0u8; 64]);
    let lying = dir.path().join("lying.npy");
    std::fs::write(&lying, bytes).unwrap();
    assert_clean_failure(
        &resnetc(&["run", SMALL, "--input", lying.to_str().unwrap()]),
        1,
        "is truncated: its header promises",
    );
    assert_clean_failure(
        &resnetc(&["run", SMALL, "--input", "no/such.npy"]),
        2,
        "cannot read input",
    );
}

#[test]
fn outputs_are_written_atomically_and_never_over_an_input() {
    let dir = temp_dir();
    let out = dir.path().join("y.npy");
    let o = resnetc(&[
        "run",
        SMALL,
        "--random-input",
        "--batch",
        "2",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(npy(&out).shape(), &[2, 10]);
    // Only the output is left in the directory: no temporary file.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert_clean_failure(
        &resnetc(&["run", SMALL, "--random-input", "-o", "no/such/dir/y.npy"]),
        2,
        "does not exist",
    );
    let copy = dir.path().join("net.res");
    std::fs::copy(crate::root().join(SMALL), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    assert_clean_failure(
        &resnetc(&[
            "run",
            copy.to_str().unwrap(),
            "--random-input",
            "-o",
            copy.to_str().unwrap(),
        ]),
        2,
        "refusing to overwrite",
    );
    assert_eq!(std::fs::read(&copy).unwrap(), before);
}

#[test]
fn a_network_too_large_for_memory_is_refused_before_allocating() {
    let text = "network huge { input x: [N, 64, 100000, 100000]\n output x -> conv(64, k: 3, pad: 1) -> relu }\n";
    let dir = temp_dir();
    let net = dir.path().join("huge.res");
    std::fs::write(&net, text).unwrap();
    assert_clean_failure(
        &resnetc(&["run", net.to_str().unwrap(), "--random-input"]),
        1,
        "GiB are available",
    );
}

#[test]
fn only_the_batch_may_be_symbolic_when_running() {
    assert_clean_failure(
        &resnetc(&[
            "run",
            "tests/ui/shape/symbolic_channels.res",
            "--random-input",
        ]),
        1,
        "dimension `C` of input `image` is symbolic",
    );
}

#[test]
fn a_network_with_errors_is_not_run() {
    assert_clean_failure(
        &resnetc(&["run", "tests/ui/shape/tutorial_block.res", "--random-input"]),
        1,
        "E0203",
    );
}

/// The most values a program holds at once: each is freed after its last reader.
fn peak_live_values(program: &resnetc::interp::plan::Program) -> usize {
    let mut live = program.inputs.len();
    let mut peak = live;
    for step in &program.steps {
        live += 1;
        peak = peak.max(live);
        live -= step.free.len();
    }
    peak
}

#[test]
fn activations_are_freed_after_their_last_use() {
    // A bottleneck block needs at most: its input (kept for the shortcut), the branch value
    // being computed, the value it is computed from, and the projected shortcut; so a whole
    // ResNet-50 never holds more than 4 activations, whatever its depth. Batchnorm is folded
    // into the conv before it, each residual add into the conv that computes one of its
    // operands, ReLU into the conv before it, and the max pool into the stem.
    let text = crate::read("examples/resnet50.res");
    let source = resnetc::span::Source::new("resnet50.res", text);
    let checked = resnetc::check(&source, None);
    let net = checked.network().unwrap();
    let weights = resnetc::interp::weights::seeded(net.graph(), net.shapes(), 0);
    let program = net.plan(weights);
    assert_eq!(
        program.steps.len(),
        53 + 1 + 1 + 1,
        "53 convs (bn, relu, the 16 residual adds and the stem's max pool fused), pool, \
         flatten, fc"
    );
    assert!(
        peak_live_values(&program) <= 4,
        "peak {}",
        peak_live_values(&program)
    );
}

#[test]
fn running_without_weights_says_the_weights_are_random() {
    let note = "note: no --weights given: running on seeded random weights (seed 7)";
    let o = resnetc(&[
        "run",
        "examples/cifar_resnet20.res",
        "--random-input",
        "--seed",
        "7",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains(note), "{}", stderr(&o));
    // With weights, no note; in JSON the document alone, stderr quiet.
    let o = run_on_fixture("cifar_resnet20.res", "cifar_resnet20", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("note: no --weights"), "{}", stderr(&o));
    let o = resnetc(&[
        "run",
        "examples/cifar_resnet20.res",
        "--random-input",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let _: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // A usage error comes alone: the note waits until the run has passed its checks.
    let o = resnetc(&["run", "examples/cifar_resnet20.res"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("give one with --input"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("note: no --weights"), "{}", stderr(&o));
    // A network without parameters draws no weights: no note.
    let net = "network t {\n    input x: [1, 3, 8, 8]\n    output x -> relu -> maxpool(k: 2)\n}\n";
    let o = crate::cli::resnetc_stdin(&["run", "-", "--random-input"], net.as_bytes());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("note: no --weights"), "{}", stderr(&o));
}

#[test]
fn a_seed_with_nothing_to_seed_is_refused() {
    // Weights from a file and the input from a file: --seed would change nothing.
    let o = run_on_fixture("cifar_resnet20.res", "cifar_resnet20", &["--seed", "3"]);
    assert_clean_failure(&o, 2, "--seed has nothing to seed");
    assert!(o.stdout.is_empty());
    // With --random-input it seeds the input, with seeded weights it seeds them: both run,
    // and two seeds give two inputs.
    let weights = fixture("cifar_resnet20.safetensors");
    let random = |seed: &str| {
        let w = weights.to_str().unwrap();
        let args = ["run", "examples/cifar_resnet20.res", "--weights", w];
        let o = resnetc(&[&args[..], &["--random-input", "--seed", seed]].concat());
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        o.stdout
    };
    assert_ne!(random("3"), random("4"));
    let o = resnetc(&[
        "analyze",
        "examples/cifar_resnet20.res",
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        fixture("cifar_resnet20.input.npy").to_str().unwrap(),
        "--seed",
        "3",
    ]);
    assert_clean_failure(&o, 2, "--seed has nothing to seed");
    // A network without parameters draws no weights: with --input, the seed seeds nothing
    // either, in `run` and in `analyze`; with --random-input it seeds the input.
    // (The fixture's input fits the network, so only the seed is refused.)
    let net =
        "network t {\n    input x: [2, 3, 32, 32]\n    output x -> relu -> maxpool(k: 2)\n}\n";
    let x = fixture("cifar_resnet20.input.npy");
    let x = x.to_str().unwrap();
    for cmd in ["run", "analyze"] {
        let o = crate::cli::resnetc_stdin(&[cmd, "-", "--input", x, "--seed", "3"], net.as_bytes());
        assert_clean_failure(
            &o,
            2,
            "--seed has nothing to seed: network `t` has no parameters",
        );
        assert!(o.stdout.is_empty());
    }
    let o = crate::cli::resnetc_stdin(
        &["run", "-", "--random-input", "--seed", "3"],
        net.as_bytes(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn run_prints_one_json_document() {
    let o = run_on_fixture(
        "cifar_resnet20.res",
        "cifar_resnet20",
        &["--format", "json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("cifar_resnet20.json")).unwrap())
            .unwrap();
    assert_eq!(v["diagnostics"].as_array().unwrap().len(), 0);
    assert_eq!(v["outputs"][0]["shape"], serde_json::json!([2, 10]));
    for sample in 0..2 {
        let classes: Vec<u64> = v["outputs"][0]["top"][sample]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["class"].as_u64().unwrap())
            .collect();
        assert_eq!(serde_json::json!(classes), json["top5"][sample]);
    }
    // Weights that do not fit: the diagnostics are in the document, and the exit code is 1.
    let o = resnetc(&[
        "run",
        "examples/resnet18.res",
        "--weights",
        fixture("cifar_resnet20.safetensors").to_str().unwrap(),
        "--random-input",
        "--format",
        "yaml",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_yaml::Value = serde_yaml::from_slice(&o.stdout).unwrap();
    assert_eq!(v["diagnostics"][0]["code"].as_str(), Some("E0301"));
}

#[test]
fn a_batch_runs_a_few_images_at_a_time_with_the_same_results() {
    // ResNet-50's largest value per image is a 256x56x56 f32 output of `layer1` (3,211,264
    // bytes; the stem's 64x112x112 output, as large, is pooled within the stem's step and never
    // held whole), so a pass of at most 8 MiB holds two images, and a batch of 3 runs as 2 + 1.
    let text = crate::read("examples/resnet50.res");
    let source = resnetc::span::Source::new("resnet50.res", text);
    let checked = resnetc::check(&source, None);
    let net = checked.network().unwrap();
    let weights = resnetc::interp::weights::seeded(net.graph(), net.shapes(), 0);
    let program = net.plan(weights);
    assert_eq!(program.image_bytes, Some(256 * 56 * 56 * 4));
    // A batch of 3 holds at most 8 MiB / 3 = 2,796,202 bytes an image: `layer2`'s values
    // (512x28x28 f32, 1,605,632 bytes) do, `layer1`'s output does not, and the last step to
    // read it is `layer2.0`'s downsample (which adds its conv3's output): the steps up to it
    // run in passes (2 + 1), `layer2.1` on all three images at once.
    let at = |split: resnetc::interp::BatchSplit| {
        let path = |i: usize| net.graph().node(program.steps[i].node).path.clone();
        (split.per_pass, path(split.head - 1), path(split.head))
    };
    let split = resnetc::interp::batch_split_of(&program, 3);
    assert_eq!(
        at(split),
        (2, "layer2.0.relu#2".into(), "layer2.1.relu#0".into())
    );
    // At batch 8, 1 MiB an image: from `layer3.1` (its 1024x14x14 values, 802,816 bytes),
    // after `layer3.0`'s downsample, the last to read `layer2`'s output.
    let split = resnetc::interp::batch_split_of(&program, 8);
    assert_eq!(
        at(split),
        (2, "layer3.0.relu#2".into(), "layer3.1.relu#0".into())
    );
    // Two images fit in a pass: no cut.
    assert_eq!(resnetc::interp::batch_split_of(&program, 2).head, 0);
    let input = ArrayD::from_shape_fn(ndarray::IxDyn(&[3, 3, 224, 224]), |d| {
        ((d[0] * 7 + d[1] * 5 + d[2] * 3 + d[3]) % 17) as f32 / 17.0 - 0.5
    });
    let opts = resnetc::interp::RunOptions::new(2);
    let passes = resnetc::interp::run_program(&program, vec![input.clone()], opts);
    let whole = resnetc::interp::run_observed(&program, vec![input], opts, &mut |_, _| {});
    assert_eq!(passes.len(), 1);
    assert_eq!(passes[0].0, whole[0].0);
    assert_eq!(passes[0].1.shape(), &[3, 1000]);
    let scale = whole[0].1.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (a, b) in passes[0].1.iter().zip(whole[0].1.iter()) {
        assert!((a - b).abs() <= 1e-5 * scale, "{a} vs {b}");
    }
    // The images differ, so a pass that mixed them up would show.
    let logits = &passes[0].1;
    assert_ne!(
        logits.index_axis(ndarray::Axis(0), 0),
        logits.index_axis(ndarray::Axis(0), 2)
    );
}

/// A batch cut into passes for its first steps and run whole for the rest gives the bits of
/// the whole batch run at once, and of each image alone: with a value of the passes read only
/// at the end (a skip over the cut), an output computed in the passes, and a last pass of
/// fewer images.
#[test]
fn a_batch_run_in_passes_then_whole_gives_the_same_bits() {
    // 1 MiB an image for `x` and `a` (an average pool, which no conv takes into its step as it
    // takes a max pool), at most 64 KiB after it: at batch 9, a pass holds 8 images (8 MiB /
    // 1 MiB), and every value from `small` on fits 8 MiB for all 9.
    let text = "network split {
        input x: [N, 4, 256, 256]
        a = x -> c1: conv(4, k: 3, pad: 1) -> relu
        s = a -> avgpool(k: 4, stride: 4)
        small = s -> maxpool(k: 2, stride: 2)
        t = s -> c2: conv(4, k: 3, pad: 1) -> relu -> maxpool(k: 2, stride: 2)
        u = t -> c3: conv(4, k: 1)
        output u + small
        output s
    }";
    let source = resnetc::span::Source::new("split.res", text.to_string());
    let checked = resnetc::check(&source, None);
    let net = checked.network().unwrap();
    let weights = resnetc::interp::weights::seeded(net.graph(), net.shapes(), 1);
    let program = net.plan(weights);
    let split = resnetc::interp::batch_split_of(&program, 9);
    let path = |i: usize| net.graph().node(program.steps[i].node).path.clone();
    assert_eq!(split.per_pass, 8);
    assert!(
        path(split.head - 1).starts_with("avgpool") && path(split.head).starts_with("maxpool"),
        "cut between {} and {}",
        path(split.head - 1),
        path(split.head)
    );
    assert_eq!(resnetc::interp::batch_split_of(&program, 8).head, 0);
    let input = ArrayD::from_shape_fn(ndarray::IxDyn(&[9, 4, 256, 256]), |d| {
        ((d[0] * 13 + d[1] * 7 + d[2] * 3 + d[3]) % 23) as f32 / 23.0 - 0.5
    });
    let opts = resnetc::interp::RunOptions::new(2);
    let cut = resnetc::interp::run_program(&program, vec![input.clone()], opts);
    let whole = resnetc::interp::run_observed(&program, vec![input.clone()], opts, &mut |_, _| {});
    assert_eq!(cut.len(), 2);
    for ((name, a), (other, b)) in cut.iter().zip(&whole) {
        assert_eq!(name, other);
        assert_eq!(a.shape()[0], 9);
        assert_eq!(a, b, "output {name}");
    }
    for i in 0..9 {
        let one = input
            .slice_axis(ndarray::Axis(0), (i..i + 1).into())
            .to_owned();
        let alone = resnetc::interp::run_program(&program, vec![one], opts);
        for ((name, a), (_, b)) in cut.iter().zip(&alone) {
            let a = a.slice_axis(ndarray::Axis(0), (i..i + 1).into());
            assert_eq!(a, b.view(), "output {name} of image {i}");
        }
    }
}

/// A plain `model.state_dict()` saved to safetensors holds each batchnorm's
/// `num_batches_tracked` counter (an int64 scalar): it is skipped, where a tensor no layer
/// has is still refused.
#[test]
fn batchnorm_counters_of_a_state_dict_are_skipped() {
    let dir = temp_dir();
    let text = "network n { input x: [1, 2, 4, 4]\n output x -> conv1: conv(3, k: 1) -> bn1: batchnorm }\n";
    let net = dir.path().join("n.res");
    std::fs::write(&net, text).unwrap();
    let f32s = |n: usize| vec![0u8; 4 * n];
    let f32_tensor = |name: &'static str, shape: Vec<usize>| {
        let len = shape.iter().product();
        (name, safetensors::Dtype::F32, shape, f32s(len))
    };
    let mut tensors = vec![
        f32_tensor("conv1.weight", vec![3, 2, 1, 1]),
        f32_tensor("bn1.weight", vec![3]),
        f32_tensor("bn1.bias", vec![3]),
        f32_tensor("bn1.running_mean", vec![3]),
        f32_tensor("bn1.running_var", vec![3]),
        (
            "bn1.num_batches_tracked",
            safetensors::Dtype::I64,
            vec![],
            vec![0u8; 8],
        ),
    ];
    let run = |path: &std::path::Path| {
        resnetc(&[
            "run",
            net.to_str().unwrap(),
            "--weights",
            path.to_str().unwrap(),
            "--random-input",
        ])
    };
    let path = safetensors_file(dir.path(), &tensors);
    let o = run(&path);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A counter beside a layer that is not a batchnorm matches nothing.
    tensors.push((
        "conv1.num_batches_tracked",
        safetensors::Dtype::I64,
        vec![],
        vec![0u8; 8],
    ));
    let path = safetensors_file(dir.path(), &tensors);
    let o = run(&path);
    assert_clean_failure(&o, 1, "E0302");
    assert!(
        stderr(&o).contains("conv1.num_batches_tracked"),
        "{}",
        stderr(&o)
    );
    assert!(
        !stderr(&o).contains("bn1.num_batches_tracked"),
        "{}",
        stderr(&o)
    );
}

/// Whether `/proc/cpuinfo` names an AMD CPU of family 25 (19h: Zen 3 and Zen 4), whose cores
/// run AVX-512 in 256-bit halves: read apart from the CPUID that `Isa::wide_products` asks.
fn zen3_or_4() -> bool {
    let info = cpuinfo();
    let field = |name| cpuinfo_field(&info, name).unwrap_or_default();
    field("vendor_id") == "AuthenticAMD" && field("cpu family") == "25"
}

/// `/proc/cpuinfo`, whole.
fn cpuinfo() -> String {
    std::fs::read_to_string("/proc/cpuinfo").expect("Linux has /proc/cpuinfo")
}

/// The value of the first `name : value` line of `/proc/cpuinfo` text `info` (the first CPU's).
fn cpuinfo_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
}

/// Only AVX-512 on a core with full-width 512-bit units counts as products faster than
/// AVX2's (the planner then keeps 3x3 convs under 28x28 off Winograd): not on Zen 4, whose
/// AVX-512 runs at AVX2's rate, and never with AVX2 or in portable code.
#[test]
fn avx512_runs_at_full_width_except_on_zen4() {
    use resnetc::machine::simd::Isa;
    let zen = zen3_or_4();
    for isa in Isa::available() {
        assert_eq!(
            isa.wide_products(),
            isa.name() == "avx512" && !zen,
            "{isa:?}, AMD family 19h: {zen}"
        );
    }
}

#[test]
fn two_outputs_of_one_value_both_get_it() {
    // Each output is moved out of the run's values, so a value named by two outputs must
    // still reach both (and a third output, the input itself, its own).
    let text = "network twice {\n    input x: [1, 2, 2, 2]\n    y = x -> relu\n    \
                output a = y\n    output b = y\n    output c = x\n}\n";
    let source = resnetc::span::Source::new("twice.res", text.to_string());
    let checked = resnetc::check(&source, None);
    let net = checked.network().expect("the network checks");
    let weights = resnetc::interp::weights::seeded(net.graph(), net.shapes(), 0);
    let program = net.plan(weights);
    let x = ndarray::ArrayD::from_shape_vec(
        ndarray::IxDyn(&[1, 2, 2, 2]),
        vec![-2.0, -1.0, 0.5, 1.0, 2.0, -3.0, 4.0, -0.25],
    )
    .unwrap();
    let relu = x.mapv(|v: f32| v.max(0.0));
    let outs = resnetc::interp::run_observed(
        &program,
        vec![x.clone()],
        resnetc::interp::RunOptions::new(1),
        &mut |_, _| {},
    );
    let names: Vec<&str> = outs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(outs[0].1, relu);
    assert_eq!(outs[1].1, relu);
    assert_eq!(outs[2].1, x);
}

#[test]
fn a_program_reuses_its_last_runs_memory_and_computes_the_same() {
    // Outputs written into memory a previous run left (stale values) must be the same as
    // into fresh memory: a run at batch 3, then at batch 1, against fresh programs.
    let text = "network chain {\n    input x: [N, 16, 48, 48]\n    \
                a = x -> conv(32, k: 3, pad: 1) -> relu\n    \
                b = a -> conv(16, k: 1) -> relu -> conv(32, k: 3, pad: 1)\n    \
                c = relu(b + a) -> conv(16, k: 1)\n    \
                output c -> conv(8, k: 3, pad: 1) -> relu\n}\n";
    let source = resnetc::span::Source::new("chain.res", text.to_string());
    let checked = resnetc::check(&source, None);
    let net = checked.network().expect("the network checks");
    let plan = || {
        net.plan(resnetc::interp::weights::seeded(
            net.graph(),
            net.shapes(),
            7,
        ))
    };
    let input = |n: usize, seed: f32| {
        ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[n, 16, 48, 48]), |i| {
            ((i[0] * 7 + i[1] * 13 + i[2] * 3 + i[3]) as f32 * 0.37 + seed).sin()
        })
    };
    let run = |p: &resnetc::interp::plan::Program, x: ndarray::ArrayD<f32>| {
        resnetc::interp::run_program(p, vec![x], resnetc::interp::RunOptions::new(2))
            .remove(0)
            .1
    };
    let program = plan();
    assert_eq!(program.kept_memory(), (0, 0, 0));
    let first = run(&program, input(3, 0.0));
    let (buffers, _, _) = program.kept_memory();
    assert!(
        buffers > 0,
        "a run leaves its dead values' memory to the next"
    );
    assert_eq!(run(&program, input(3, 0.5)), run(&plan(), input(3, 0.5)));
    assert_eq!(run(&program, input(1, 0.25)), run(&plan(), input(1, 0.25)));
    // After batch 1, no buffer larger than its largest value (32 channels of 48x48, where a
    // batch-3 run's buffers of 16 and 32 channels are 1.5 and 3 times as large) stays kept,
    // and no more than three times that value together (`SPARE_SHARE`).
    let largest = 32 * 48 * 48;
    let (_, values, biggest) = program.kept_memory();
    assert!(
        biggest <= largest,
        "a buffer of {biggest} values kept after batch 1"
    );
    assert!(values <= 3 * largest, "{values} values kept after batch 1");
    assert_eq!(first, run(&plan(), input(3, 0.0)));
}

/// The CPUID bit the convs read for `prefetchw` is the one Linux reports as `3dnowprefetch`.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn prefetchw_bit_agrees_with_the_kernel() {
    let info = cpuinfo();
    let flags = cpuinfo_field(&info, "flags").expect("a flags line");
    let listed = flags.split_whitespace().any(|f| f == "3dnowprefetch");
    assert_eq!(resnetc::machine::simd::has_prefetchw(), listed, "{flags}");
}
