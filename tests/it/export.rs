//! `resnetc export`: bad input is refused before anything is written; what is written equals
//! what PyTorch computes (the comparisons need the venv, see `crate::python`).

use crate::cli::{assert_clean_failure, resnetc};
use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use safetensors::{Dtype, tensor::TensorView};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[test]
fn unknown_format_and_misplaced_options_are_usage_errors() {
    assert_clean_failure(
        &resnetc(&["export", "examples/resnet18.res", "--format", "tf"]),
        2,
        "invalid value 'tf'",
    );
    assert_clean_failure(
        &resnetc(&["export", "examples/resnet18.res"]),
        2,
        "--format",
    );
    for flag in [
        &["--seed", "3"][..],
        &["--fold-batchnorm"],
        &["--triton", "t"],
    ] {
        let mut args = vec!["export", "examples/resnet18.res", "--format", "pytorch"];
        args.extend_from_slice(flag);
        assert_clean_failure(&resnetc(&args), 2, "applies to --format onnx only");
    }
    // An output named for the other format: refused before anything is written.
    let dir = tempfile::tempdir().unwrap();
    for (name, format, needle) in [
        (
            "m.py",
            "onnx",
            "is named for Python source, but --format onnx writes an ONNX model",
        ),
        (
            "m.ONNX",
            "pytorch",
            "is named for an ONNX model, but --format pytorch writes Python",
        ),
    ] {
        let out = dir.path().join(name);
        let args = ["export", "examples/resnet18.res", "--format", format, "-o"];
        let o = resnetc(&[&args[..], &[out.to_str().unwrap()]].concat());
        assert_clean_failure(&o, 2, needle);
        assert!(!out.exists(), "{name} was written");
    }
}

#[test]
fn output_in_a_missing_directory_or_on_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/net.py");
    assert_clean_failure(
        &resnetc(&[
            "export",
            "examples/resnet18.res",
            "--format",
            "pytorch",
            "-o",
            missing.to_str().unwrap(),
        ]),
        2,
        "does not exist",
    );
    assert!(!dir.path().join("no").exists());
    let before = crate::read("examples/resnet18.res");
    assert_clean_failure(
        &resnetc(&[
            "export",
            "examples/resnet18.res",
            "--format",
            "pytorch",
            "-o",
            "./examples/../examples/resnet18.res",
        ]),
        2,
        "refusing to overwrite the input",
    );
    assert_eq!(crate::read("examples/resnet18.res"), before);
}

#[test]
fn a_network_with_errors_is_not_exported() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net.py");
    let o = resnetc(&[
        "export",
        "tests/ui/shape/batch_mismatch.res",
        "--format",
        "pytorch",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, 1, "E0203");
    assert!(o.stdout.is_empty());
    assert!(!out.exists());
}

#[test]
fn weights_that_do_not_fit_are_reported_as_run_reports_them() {
    let weights = crate::root().join("../shared/fixtures/cifar_resnet20.safetensors");
    let o = resnetc(&[
        "export",
        "examples/resnet18.res",
        "--format",
        "pytorch",
        "--weights",
        weights.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, 1, "the weights do not fit network `resnet18`");
    let err = crate::cli::stderr(&o);
    for code in ["E0301", "E0302", "E0303"] {
        assert!(err.contains(code), "{code} missing from: {err}");
    }
    assert!(o.stdout.is_empty());
}

/// The PyTorch text of network `network` (or the only one) of a file relative to the root.
fn pytorch_text(rel: &str, network: Option<&str>) -> String {
    let text = crate::read(rel);
    let source = resnetc::span::Source::new(rel, text.as_str());
    let checked = resnetc::check(&source, network);
    assert!(!checked.has_errors(), "{rel}: {:?}", checked.diagnostics);
    let file = resnetc::syntax::parse(&source.text).unwrap();
    let (g, shapes) = (checked.graph.unwrap(), checked.shapes.unwrap());
    resnetc::export::pytorch::to_pytorch(&source, &file, &g, &shapes)
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Seeded weights (seed 7) of a checked network, written as safetensors under their keys.
pub(crate) fn write_seeded_weights(
    g: &resnetc::ir::Graph,
    shapes: &resnetc::shape::Shapes,
    path: &Path,
) {
    use resnetc::interp::weights;
    let w = weights::seeded(g, shapes, 7);
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = weights::expected(g, shapes)
        .into_iter()
        .map(|e| {
            let t = w.get(&e.key).unwrap();
            let data = t.iter().flat_map(|v| v.to_le_bytes()).collect();
            (e.key, e.shape, data)
        })
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(k, shape, data)| {
            (
                k.clone(),
                TensorView::new(Dtype::F32, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// What the comparison script runs for one exported network.
#[derive(Serialize)]
struct Job {
    name: String,
    file: PathBuf,
    /// A safetensors file, or (for networks too large to write one quickly) the keys and
    /// shapes of resnetc's weights, which the script fills with random values.
    #[serde(skip_serializing_if = "Option::is_none")]
    weights: Option<PathBuf>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    keys: Vec<(String, Vec<usize>)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    random_input: Option<Vec<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shape: Option<Vec<usize>>,
    expect: Vec<Expect>,
}

#[derive(Serialize)]
struct Expect {
    npy: PathBuf,
    what: String,
    top5: bool,
    output: usize,
}

/// Networks with more parameters get their weights' keys and shapes in the manifest rather
/// than a seeded file (writing and reading a gigabyte would dominate the suite's time).
const SEEDED_FILE_MAX_PARAMS: usize = 2_000_000;

/// Export `rel` (network `network`) into `dir` with seeded weights; returns the job and the
/// checked network (`.network()` is its graph and shapes).
fn export_seeded(dir: &Path, rel: &str, network: Option<&str>) -> (Job, resnetc::Checked) {
    let text = crate::read(rel);
    let source = resnetc::span::Source::new(rel, text.as_str());
    let checked = resnetc::check(&source, network);
    let net = checked.network().unwrap();
    let (g, shapes) = (net.graph(), net.shapes());
    let name = g.name.clone();
    let file = dir.join(format!("{name}.py"));
    std::fs::write(&file, pytorch_text(rel, network)).unwrap();
    let expected = resnetc::interp::weights::expected(g, shapes);
    let n_params: usize = expected
        .iter()
        .map(|e| e.shape.iter().product::<usize>())
        .sum();
    let (weights, keys) = if n_params <= SEEDED_FILE_MAX_PARAMS {
        let path = dir.join(format!("{name}.safetensors"));
        write_seeded_weights(g, shapes, &path);
        (Some(path), Vec::new())
    } else {
        (
            None,
            expected.into_iter().map(|e| (e.key, e.shape)).collect(),
        )
    };
    let job = Job {
        name,
        file,
        weights,
        keys,
        input: None,
        random_input: None,
        shape: None,
        expect: Vec::new(),
    };
    (job, checked)
}

/// resnetc's own output for `x`, written as .npy.
fn resnetc_outputs(
    net: resnetc::interp::Network,
    weights: resnetc::interp::weights::Weights,
    x: ArrayD<f32>,
    dir: &Path,
) -> Vec<PathBuf> {
    let program = net.plan(weights);
    let outputs =
        resnetc::interp::run_program(&program, vec![x], resnetc::interp::RunOptions::new(2));
    outputs
        .iter()
        .enumerate()
        .map(|(i, (_, y))| {
            let path = dir.join(format!("{}.resnetc{i}.npy", net.graph().name));
            y.write_npy(std::fs::File::create(&path).unwrap()).unwrap();
            path
        })
        .collect()
}

fn fixture(name: &str) -> PathBuf {
    crate::root().join("../shared/fixtures").join(name)
}

/// The generated code of small networks, reviewed as code: `tests/ui/export/NAME.py`.
#[test]
fn pytorch_golden_files() {
    let mut failures = Vec::new();
    for name in ["small", "every_op", "labelled"] {
        let rel = format!("tests/ui/export/{name}.res");
        let text = pytorch_text(&rel, None);
        let golden = crate::root().join(format!("tests/ui/export/{name}.py"));
        failures.extend(crate::ui::golden(&golden, &text));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// One Python process checks every export: black's layout; every example's module loads its
/// seeded weights with strict=True and runs; the fixture networks equal PyTorch's float64
/// reference and resnetc's `run`; the golden networks (every op) equal resnetc's `run`.
#[test]
fn pytorch_exports_load_their_weights_and_equal_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let mut jobs = Vec::new();
    let mut files = Vec::new();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(crate::root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "res"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 15, "examples went missing");
    for path in &examples {
        let rel = format!("examples/{}", path.file_name().unwrap().to_string_lossy());
        let file = resnetc::syntax::parse(&crate::read(&rel)).unwrap();
        let names: Vec<String> = file.networks.iter().map(|n| n.name.name.clone()).collect();
        for net in &names {
            let (mut job, checked) = export_seeded(dir.path(), &rel, Some(net));
            let net = checked.network().unwrap();
            let (g, shapes) = (net.graph(), net.shapes());
            // A smaller image keeps the suite fast; the modules do not depend on the size.
            // The original U-Net's unpadded convs need at least a 188 tile, whose output is
            // the tile less 184 (Ronneberger et al. 2015), 4.
            let unpadded = rel == "examples/unet.res";
            let side = if unpadded { 188 } else { 32 };
            let dims: Vec<usize> = match &g.inputs[0].dims[..] {
                [_, c, h, w] => [1, dim(c), dim(h).min(side), dim(w).min(side)].to_vec(),
                other => panic!("{rel}: input {other:?}"),
            };
            let out = shapes.get(g.outputs[0].node).unwrap();
            let mut shape: Vec<usize> = out
                .0
                .iter()
                .map(|d| d.known().unwrap_or(1) as usize)
                .collect();
            if unpadded {
                shape = vec![1, 2, 4, 4];
            } else if shape.len() == 4 && shape[2] == dim(&g.inputs[0].dims[2]) {
                // A network that keeps the input's size (the padded U-Net) keeps the small one.
                shape[2..].copy_from_slice(&dims[2..]);
            }
            job.shape = Some(shape);
            job.random_input = Some(dims);
            files.push(job.file.clone());
            jobs.push(job);
        }
    }
    for (example, model) in [
        ("resnet18", "resnet18"),
        ("cifar_resnet20", "cifar_resnet20"),
        ("densenet121", "densenet121"),
        ("mobilenet_v2", "mobilenet_v2"),
        ("efficientnet_b0", "efficientnet_b0"),
    ] {
        let rel = format!("examples/{example}.res");
        let text = crate::read(&rel);
        let source = resnetc::span::Source::new(rel.as_str(), text.as_str());
        let checked = resnetc::check(&source, None);
        let net = checked.network().unwrap();
        let (g, shapes) = (net.graph(), net.shapes());
        let file = dir.path().join(format!("{model}.fixture.py"));
        std::fs::write(&file, pytorch_text(&rel, None)).unwrap();
        let weights = fixture(&format!("{model}.safetensors"));
        let input = fixture(&format!("{model}.input.npy"));
        let w = resnetc::interp::weights::from_safetensors(
            g,
            shapes,
            resnetc::interp::weights::FileBytes::Read(std::fs::read(&weights).unwrap()),
        )
        .unwrap();
        let x = ArrayD::<f32>::read_npy(std::fs::File::open(&input).unwrap()).unwrap();
        let ours = resnetc_outputs(net, w, x, dir.path());
        jobs.push(Job {
            name: format!("{model} (fixture)"),
            file,
            weights: Some(weights),
            keys: Vec::new(),
            input: Some(input),
            random_input: None,
            shape: None,
            expect: vec![
                Expect {
                    npy: fixture(&format!("{model}.logits_f64.npy")),
                    what: "PyTorch f64".into(),
                    top5: true,
                    output: 0,
                },
                Expect {
                    npy: ours[0].clone(),
                    what: "resnetc run".into(),
                    top5: true,
                    output: 0,
                },
            ],
        });
    }
    for name in ["small", "every_op", "labelled"] {
        let rel = format!("tests/ui/export/{name}.res");
        let (mut job, checked) = export_seeded(dir.path(), &rel, None);
        let net = checked.network().unwrap();
        let (g, shapes) = (net.graph(), net.shapes());
        let dims: Vec<usize> = g.inputs[0].dims.iter().map(|d| dim(d).max(2)).collect();
        let x = random(&dims);
        let input = dir.path().join(format!("{name}.input.npy"));
        x.write_npy(std::fs::File::create(&input).unwrap()).unwrap();
        let w = resnetc::interp::weights::seeded(g, shapes, 7);
        let ours = resnetc_outputs(net, w, x, dir.path());
        job.expect = ours
            .into_iter()
            .enumerate()
            .map(|(i, npy)| Expect {
                npy,
                what: format!("resnetc run (output {i})"),
                top5: false,
                output: i,
            })
            .collect();
        job.input = Some(input);
        files.push(crate::root().join(format!("tests/ui/export/{name}.py")));
        jobs.push(job);
    }
    // The Inception-ResNet example (1x7 and 7x1 kernels, batchnorm eps 0.001, residual
    // scaling) at its full input size: the module equals resnetc's `run`.
    let sub = dir.path().join("inception");
    std::fs::create_dir(&sub).unwrap();
    let (mut job, checked) = export_seeded(&sub, "examples/inception_resnet_block17.res", None);
    let net = checked.network().unwrap();
    let x = random(&[2, 3, 35, 35]);
    let input = sub.join("input.npy");
    x.write_npy(std::fs::File::create(&input).unwrap()).unwrap();
    // Its 3.5M parameters are past SEEDED_FILE_MAX_PARAMS: write the seeded file anyway (14
    // MB), so that both sides run on the same weights.
    let weights = sub.join("seeded.safetensors");
    write_seeded_weights(net.graph(), net.shapes(), &weights);
    (job.weights, job.keys) = (Some(weights), Vec::new());
    let w = resnetc::interp::weights::seeded(net.graph(), net.shapes(), 7);
    let ours = resnetc_outputs(net, w, x, &sub);
    job.expect = vec![Expect {
        npy: ours[0].clone(),
        what: "resnetc run".into(),
        top5: false,
        output: 0,
    }];
    job.input = Some(input);
    jobs.push(job);
    // The padded U-Net on seeded weights against `run`, at 64x64: its module takes any size,
    // and its weights do not depend on it.
    let rel = "examples/unet_padded.res";
    let (mut job, _) = export_seeded(dir.path(), rel, None);
    let small = crate::read(rel).replace("[N, 3, 256, 256]", "[N, 3, 64, 64]");
    let source = resnetc::span::Source::new(rel, small.as_str());
    let checked = resnetc::check(&source, None);
    let net = checked.network().unwrap();
    let weights = dir.path().join("unet_padded.safetensors");
    write_seeded_weights(net.graph(), net.shapes(), &weights);
    let x = random(&[1, 3, 64, 64]);
    let input = dir.path().join("unet_padded.input.npy");
    x.write_npy(std::fs::File::create(&input).unwrap()).unwrap();
    let w = resnetc::interp::weights::seeded(net.graph(), net.shapes(), 7);
    let ours = resnetc_outputs(net, w, x, dir.path());
    job.name = "unet_padded (seeded, 64x64)".into();
    job.weights = Some(weights);
    job.keys = Vec::new();
    job.input = Some(input);
    job.expect = vec![Expect {
        npy: ours[0].clone(),
        what: "resnetc run".into(),
        top5: false,
        output: 0,
    }];
    jobs.push(job);
    let manifest = dir.path().join("manifest.json");
    let doc = serde_json::json!({ "black": files, "jobs": jobs });
    std::fs::write(&manifest, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = std::process::Command::new(crate::python())
        .arg(crate::root().join("tests/py/check_pytorch.py"))
        .arg(&manifest)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every comparison ran: 2 per fixture, one per output of each golden network, one for the
    // Inception-ResNet example and one for the padded U-Net.
    assert_eq!(
        stdout.matches("ok ").count(),
        5 * 2 + 1 + 3 + 1 + 1 + 1,
        "{stdout}"
    );
}

/// A declared dimension, the batch as 2.
fn dim(d: &resnetc::ir::DimSpec) -> usize {
    match d {
        resnetc::ir::DimSpec::Known(v) => *v as usize,
        resnetc::ir::DimSpec::Sym(_) => 2,
    }
}

/// A deterministic input in [-2, 2).
fn random(dims: &[usize]) -> ArrayD<f32> {
    let n: usize = dims.iter().product();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 22) as f32 - 2.0
        })
        .collect();
    ArrayD::from_shape_vec(ndarray::IxDyn(dims), data).unwrap()
}

#[test]
fn pytorch_goes_to_stdout_or_atomically_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("resnet18.py");
    let weights = crate::root().join("../shared/fixtures/resnet18.safetensors");
    let o = resnetc(&[
        "export",
        "examples/resnet18.res",
        "--format",
        "pytorch",
        "--weights",
        weights.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", crate::cli::stderr(&o));
    assert!(o.stdout.is_empty());
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.starts_with("\"\"\"PyTorch module of network `resnet18`"));
    // Nothing but the file is left in the directory (no temporary file).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    for stdout in [&["-o", "-"][..], &[]] {
        let mut args = vec!["export", "examples/resnet18.res", "--format", "pytorch"];
        args.extend_from_slice(stdout);
        let o = resnetc(&args);
        assert_eq!(o.status.code(), Some(0), "{}", crate::cli::stderr(&o));
        assert_eq!(String::from_utf8(o.stdout).unwrap(), written);
    }
}

#[test]
fn a_network_pytorch_cannot_express_is_refused_without_a_partial_file() {
    // Each copy doubles the channels: no constructor argument says how many copy i gets.
    let text = "block double { input x\n output concat(x, x) }\n\
                network n { input x: [1, 4, 8, 8]\n output x -> [double * 3] -> conv(8, k: 1) }\n";
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("net.res");
    std::fs::write(&src, text).unwrap();
    let out = dir.path().join("net.py");
    let o = resnetc(&[
        "export",
        src.to_str().unwrap(),
        "--format",
        "pytorch",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_clean_failure(
        &o,
        1,
        "cannot export network `n` to PyTorch: the copies of this repeated item differ in their channels",
    );
    assert!(crate::cli::stderr(&o).contains("(line 4, in network `n`)"));
    assert!(!out.exists());
}

/// A sequence item under an `if` on a block's arguments: refused, with the line. Under a
/// condition that holds or fails in the block's every use, it is kept or left out.
#[test]
fn a_conditional_sequence_item_on_block_arguments_is_refused() {
    let text = "block b(c: int, pre: bool = false) { input x\n\
                output x -> [if pre { batchnorm, relu }, conv(c, k: 3, pad: 1)] }\n\
                network n { input x: [1, 3, 8, 8]\n\
                output x -> [conv(8, k: 1), if true { relu }, if false { sigmoid }, b(8)] }\n";
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("net.res");
    std::fs::write(&src, text).unwrap();
    let o = resnetc(&["export", src.to_str().unwrap(), "--format", "pytorch"]);
    assert_clean_failure(
        &o,
        1,
        "cannot export network `n` to PyTorch: a sequence item under an `if` on the block's arguments",
    );
    assert!(crate::cli::stderr(&o).contains("(line 2, in block `b`)"));
    // Without the block, the constant conditions are resolved: `relu` kept, `sigmoid` left out.
    let text = "network n { input x: [1, 3, 8, 8]\n\
                output x -> [conv(8, k: 1), if true { relu }, if false { sigmoid }] }\n";
    std::fs::write(&src, text).unwrap();
    let o = resnetc(&["export", src.to_str().unwrap(), "--format", "pytorch"]);
    let py = String::from_utf8(o.stdout).unwrap();
    assert!(
        py.contains("nn.Conv2d(3, 8, 1, bias=False), nn.ReLU()"),
        "{py}"
    );
    assert!(!py.contains("Sigmoid"), "{py}");
}
