//! `resnetc export --format onnx` against ONNX's own tools and ONNX Runtime: every example
//! passes `onnx.checker.check_model(full_check=True)` and ONNX's shape inference agrees with the
//! shapes resnetc records; on the PyTorch fixtures, ONNX Runtime's output equals PyTorch's
//! float64 logits within `1e-4 * max|y_f64|` (the bound of the run tests, see the fixtures'
//! README) and equals resnetc's own `run` within the same bound, with and without
//! `--fold-batchnorm`. The Python side is in tests/py, one process per test.

use crate::cli::{assert_clean_failure, resnetc, stderr};
use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;
use prost::Message;
use resnetc::export::onnx::proto::ModelProto;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    let p = crate::root().join("../shared/fixtures").join(name);
    assert!(
        p.exists(),
        "{} is missing: the tests need ../shared/fixtures",
        p.display()
    );
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `resnetc export FILE --format onnx -o OUT` plus `extra`; asserts success.
fn export(file: &str, out: &Path, extra: &[&str]) {
    let mut args = vec!["export", file, "--format", "onnx", "-o", s(out)];
    args.extend_from_slice(extra);
    let o = resnetc(&args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
}

/// Run a script of tests/py with the venv's Python; returns stdout, and fails with both
/// streams when the script fails.
fn python(script: &str, args: &[&Path]) -> String {
    let o = Command::new(crate::python())
        .arg(crate::root().join("tests/py").join(script))
        .args(args)
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{script} failed:\n{out}\n{err}");
    out.into_owned()
}

/// Every network of every example: (file relative to the root, network name).
fn example_networks() -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(crate::root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "res"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let ast = resnetc::syntax::parse(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let rel = format!("examples/{}", f.file_name().unwrap().to_str().unwrap());
        for n in ast.networks {
            out.push((rel.clone(), n.name.name));
        }
    }
    out
}

#[test]
fn every_example_passes_the_onnx_checker_and_its_shape_inference() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, (file, network)) in example_networks().iter().enumerate() {
        let out = dir.path().join(format!("{network}.onnx"));
        // Every other one folded, so that both forms are checked.
        let fold: &[&str] = if i % 2 == 1 {
            &["--fold-batchnorm"]
        } else {
            &[]
        };
        export(
            file,
            &out,
            &[&["-n", network, "--seed", "1"], fold].concat(),
        );
        files.push(out);
    }
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let out = python("check_onnx.py", &refs);
    let ok = out.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(ok, files.len(), "{out}");
}

fn npy(path: &Path) -> ArrayD<f32> {
    ArrayD::<f32>::read_npy(std::fs::File::open(path).unwrap()).unwrap()
}

fn npy64(path: &Path) -> ArrayD<f64> {
    ArrayD::<f64>::read_npy(std::fs::File::open(path).unwrap()).unwrap()
}

/// max|a - b|.
fn max_diff(a: &ArrayD<f32>, b: impl Iterator<Item = f64>) -> f64 {
    a.iter()
        .zip(b)
        .fold(0f64, |m, (x, y)| m.max((f64::from(*x) - y).abs()))
}

fn top5(row: ndarray::ArrayViewD<f32>) -> Vec<u64> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&p, &q| row[q].total_cmp(&row[p]));
    idx[..5].iter().map(|&c| c as u64).collect()
}

#[test]
fn onnx_runtime_equals_pytorch_and_run_on_the_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new(); // (model, fold, onnx file, ORT output, resnetc output)
    let mut args: Vec<PathBuf> = Vec::new();
    for (example, model) in [
        ("resnet18", "resnet18"),
        ("cifar_resnet20", "cifar_resnet20"),
        ("densenet121", "densenet121"),
        ("mobilenet_v2", "mobilenet_v2"),
        ("efficientnet_b0", "efficientnet_b0"),
    ] {
        let (weights, input) = (
            fixture(&format!("{model}.safetensors")),
            fixture(&format!("{model}.input.npy")),
        );
        let file = format!("examples/{example}.res");
        let ours = dir.path().join(format!("{model}.run.npy"));
        let o = resnetc(&[
            "run",
            &file,
            "--weights",
            s(&weights),
            "--input",
            s(&input),
            "-o",
            s(&ours),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        for fold in [false, true] {
            let onnx = dir.path().join(format!("{model}.{fold}.onnx"));
            let flag: &[&str] = if fold { &["--fold-batchnorm"] } else { &[] };
            export(&file, &onnx, &[&["--weights", s(&weights)], flag].concat());
            let y = dir.path().join(format!("{model}.{fold}.ort.npy"));
            args.extend([onnx.clone(), input.clone(), y.clone()]);
            cases.push((model, fold, y, ours.clone()));
        }
    }
    let refs: Vec<&Path> = args.iter().map(PathBuf::as_path).collect();
    python("run_onnx.py", &refs);
    for (model, fold, y_ort, y_run) in cases {
        let (y, ours) = (npy(&y_ort), npy(&y_run));
        let y64 = npy64(&fixture(&format!("{model}.logits_f64.npy")));
        assert_eq!(y.shape(), y64.shape());
        let bound = 1e-4 * y64.iter().fold(0f64, |m, v| m.max(v.abs()));
        let vs_pytorch = max_diff(&y, y64.iter().copied());
        let vs_run = max_diff(&y, ours.iter().map(|&v| f64::from(v)));
        eprintln!(
            "{model} fold={fold}: ORT vs f64 {vs_pytorch:.3e}, vs run {vs_run:.3e}, bound {bound:.3e}"
        );
        assert!(
            vs_pytorch <= bound,
            "{model} fold={fold}: {vs_pytorch} > {bound}"
        );
        assert!(vs_run <= bound, "{model} fold={fold}: {vs_run} > {bound}");
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("{model}.json"))).unwrap(),
        )
        .unwrap();
        for (i, row) in y.outer_iter().enumerate() {
            let want: Vec<u64> = serde_json::from_value(json["top5"][i].clone()).unwrap();
            assert_eq!(top5(row.view()), want, "{model} fold={fold} sample {i}");
        }
    }
}

fn decode(path: &Path) -> ModelProto {
    ModelProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap()
}

#[test]
fn names_come_from_the_network_and_the_batch_stays_symbolic() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, folded) = (dir.path().join("a.onnx"), dir.path().join("b.onnx"));
    export("examples/resnet18.res", &plain, &[]);
    export("examples/resnet18.res", &folded, &["--fold-batchnorm"]);
    let m = decode(&plain);
    assert_eq!(
        (m.ir_version, m.opset_import[0].version),
        (Some(8), Some(17))
    );
    let g = m.graph.unwrap();
    let (input, output) = (&g.input[0], &g.output[0]);
    assert_eq!((input.name(), output.name()), ("image", "logits"));
    let dims = |vi: &resnetc::export::onnx::proto::ValueInfoProto| -> Vec<String> {
        use resnetc::export::onnx::proto::{tensor_shape_proto::dimension::Value, type_proto};
        let Some(type_proto::Value::TensorType(t)) = &vi.r#type.as_ref().unwrap().value else {
            panic!("not a tensor")
        };
        let shape = t.shape.as_ref().unwrap();
        shape
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(Value::DimValue(v)) => v.to_string(),
                Some(Value::DimParam(p)) => p.clone(),
                None => "?".into(),
            })
            .collect()
    };
    assert_eq!(dims(input), ["N", "3", "224", "224"]);
    assert_eq!(dims(output), ["N", "1000"]);
    let node = g
        .node
        .iter()
        .find(|n| n.name() == "layer2.0.downsample.0")
        .unwrap();
    assert_eq!(node.op_type(), "Conv");
    assert_eq!(node.input[1], "layer2.0.downsample.0.weight");
    let keys: Vec<&str> = g.initializer.iter().map(|t| t.name()).collect();
    // torchvision's 102 state_dict keys less the 20 num_batches_tracked: 20 convs, 20
    // batchnorms with 4 tensors each, fc weight and bias.
    assert_eq!(keys.len(), 20 + 20 * 4 + 2);
    assert!(keys.contains(&"layer4.1.bn2.running_var") && keys.contains(&"fc.bias"));
    let n_bn = |g: &resnetc::export::onnx::proto::GraphProto| {
        g.node
            .iter()
            .filter(|n| n.op_type() == "BatchNormalization")
            .count()
    };
    assert_eq!(n_bn(&g), 20);
    // Folded: every batchnorm follows a conv, so none is left and each conv gets a bias.
    let f = decode(&folded).graph.unwrap();
    assert_eq!(n_bn(&f), 0);
    let keys: Vec<&str> = f.initializer.iter().map(|t| t.name()).collect();
    assert_eq!(keys.len(), 20 * 2 + 2);
    assert!(keys.contains(&"conv1.bias") && !keys.iter().any(|k| k.contains("bn")));
}

#[test]
fn triton_repository_has_the_model_and_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("models");
    std::fs::create_dir(&repo).unwrap();
    let o = resnetc(&[
        "export",
        "examples/cifar_resnet20.res",
        "--format",
        "onnx",
        "--triton",
        s(&repo),
        "--max-batch-size",
        "16",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        o.stdout.is_empty(),
        "--triton without -o writes only the repository"
    );
    let entry = repo.join("cifar_resnet20");
    let config = std::fs::read_to_string(entry.join("config.pbtxt")).unwrap();
    // The network declares `image: [N, 3, 32, 32]` and outputs `logits` of 10 classes.
    let expected = r#"name: "cifar_resnet20"
platform: "onnxruntime_onnx"
max_batch_size: 16
input [
  {
    name: "image"
    data_type: TYPE_FP32
    dims: [ 3, 32, 32 ]
  }
]
output [
  {
    name: "logits"
    data_type: TYPE_FP32
    dims: [ 10 ]
  }
]
"#;
    assert_eq!(config, expected);
    let g = decode(&entry.join("1/model.onnx")).graph.unwrap();
    assert_eq!((g.input[0].name(), g.output[0].name()), ("image", "logits"));

    // A fixed batch cannot be batched by Triton: max_batch_size 0 and full dims.
    let net = dir.path().join("fixed.res");
    std::fs::write(
        &net,
        "network fixed {\n    input x: [2, 3, 8, 8]\n    output y = x -> conv1: conv(4, k: 3)\n}\n",
    )
    .unwrap();
    let o = resnetc(&["export", s(&net), "--format", "onnx", "--triton", s(&repo)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let config = std::fs::read_to_string(repo.join("fixed/config.pbtxt")).unwrap();
    assert!(config.contains("max_batch_size: 0\n"), "{config}");
    assert!(
        config.contains("dims: [ 2, 3, 8, 8 ]") && config.contains("dims: [ 2, 4, 6, 6 ]"),
        "{config}"
    );
}

#[test]
fn bad_onnx_exports_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.onnx");
    let args = |extra: &[&str]| {
        let mut a = vec!["export", "examples/cifar_resnet20.res", "--format", "onnx"];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        resnetc(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // Weights of another network: the diagnostics of `run`, at the layers.
    let other = fixture("resnet18.safetensors");
    let small = dir.path().join("w.safetensors");
    // The CIFAR fixture with one tensor renamed: one missing, one unexpected.
    let bytes = std::fs::read(fixture("cifar_resnet20.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .map(|(k, v)| {
            (
                if k == "linear.bias" {
                    "fc.bias".to_string()
                } else {
                    k
                },
                v,
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &small).unwrap();
    let o = run(&["--weights", s(&small), "-o", s(&out)]);
    assert_clean_failure(&o, 1, "E0301");
    assert!(
        stderr(&o).contains("E0302") && stderr(&o).contains("linear.bias"),
        "{}",
        stderr(&o)
    );
    assert_clean_failure(
        &run(&["--weights", s(&other), "-o", s(&out)]),
        1,
        "is it the right file?",
    );
    // A missing directory, an input as the output, a missing Triton repository.
    let missing = dir.path().join("no/such/m.onnx");
    assert_clean_failure(&run(&["-o", s(&missing)]), 2, "does not exist");
    assert_clean_failure(
        &run(&["-o", "examples/cifar_resnet20.res"]),
        2,
        "refusing to overwrite the input",
    );
    assert_clean_failure(
        &run(&["--triton", s(&dir.path().join("nope"))]),
        2,
        "nope` does not exist",
    );
    assert_clean_failure(
        &run(&["--triton", "examples/cifar_resnet20.res"]),
        2,
        "is not a directory",
    );
    assert_clean_failure(
        &run(&["--max-batch-size", "4", "-o", s(&out)]),
        2,
        "--triton",
    );
    assert!(!out.exists() && !dir.path().join("no").exists() && !dir.path().join("nope").exists());
}

/// The code block of README.md that starts with `first_line`, without its fences.
fn readme_block(first_line: &str) -> String {
    let readme = crate::read("README.md");
    let start = readme
        .find(&format!("```\n{first_line}"))
        .or_else(|| readme.find(&format!("```python\n{first_line}")))
        .unwrap_or_else(|| panic!("no README block starts with `{first_line}`"));
    let body = &readme[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_string()
}

#[test]
fn the_readme_serving_example_runs_and_its_triton_config_is_what_export_writes() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("models");
    std::fs::create_dir(&repo).unwrap();
    let model = dir.path().join("resnet18.onnx");
    export("examples/resnet18.res", &model, &["--triton", s(&repo)]);
    let config = std::fs::read_to_string(repo.join("resnet18/config.pbtxt")).unwrap();
    assert_eq!(config, readme_block("name: \"resnet18\""));
    let snippet = readme_block("import numpy as np");
    assert!(snippet.contains("onnxruntime"), "{snippet}");
    let o = Command::new(crate::python())
        .args(["-c", &snippet])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.starts_with("(4, 1000) ["), "{out}");
}

/// One network with every op: each mapping checked by ONNX's checker and shape inference and
/// run by ONNX Runtime. The pools cover ceil mode, padding and `count_pad: false`.
const EVERY_OP: &str = "network every_op {
    input x: [N, 4, 9, 9]
    a = x -> c1: conv(8, k: 3, pad: 1, bias: true) -> b1: batchnorm -> relu6
    s = a -> silu -> hardswish
    h = a -> hardsigmoid -> softmax
    t = a -> gelu -> leaky_relu(0.1) -> tanh
    m = s * (a -> global_avgpool -> sigmoid)
    p = concat(m, h, t) -> maxpool(k: 2, stride: 2, ceil: true) -> relu
    q = p -> avgpool(k: 3, stride: 2, pad: 1, count_pad: false) -> shortcut_a(32, stride: 2)
    r = 0.5 * (q -> c2: conv(32, k: 1) -> b2: batchnorm) + (q -> flatten -> unflatten([32, 2, 2]))
    output logits = r -> identity -> dropout(0.2) -> adaptive_avgpool(1) -> flatten -> fc: linear(10)
}
";

#[test]
fn every_op_runs_in_onnx_runtime_as_in_run() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("every_op.res");
    std::fs::write(&net, EVERY_OP).unwrap();
    // Inputs from -6 to 6, so that every activation's bends are crossed.
    let x = ndarray::Array::from_shape_fn((2, 4, 9, 9), |(n, c, h, w)| {
        ((n * 324 + c * 81 + h * 9 + w) as f32 * 0.37).sin() * 6.0
    });
    let input = dir.path().join("x.npy");
    ndarray_npy::write_npy(&input, &x).unwrap();
    let ours = dir.path().join("run.npy");
    let o = resnetc(&[
        "run",
        s(&net),
        "--seed",
        "5",
        "--input",
        s(&input),
        "-o",
        s(&ours),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut args = Vec::new();
    for fold in [false, true] {
        let onnx = dir.path().join(format!("every_op.{fold}.onnx"));
        let flag: &[&str] = if fold { &["--fold-batchnorm"] } else { &[] };
        export(s(&net), &onnx, &[&["--seed", "5"], flag].concat());
        args.extend([
            onnx,
            input.clone(),
            dir.path().join(format!("ort.{fold}.npy")),
        ]);
    }
    let refs: Vec<&Path> = args.iter().map(PathBuf::as_path).collect();
    python("run_onnx.py", &refs);
    python("check_onnx.py", &[refs[0], refs[3]]);
    let ours = npy(&ours);
    let bound = 1e-4 * ours.iter().fold(0f64, |m, v| m.max(f64::from(v.abs())));
    for fold in [false, true] {
        let y = npy(&dir.path().join(format!("ort.{fold}.npy")));
        assert_eq!(y.shape(), [2, 10]);
        let diff = max_diff(&y, ours.iter().map(|&v| f64::from(v)));
        assert!(
            diff <= bound,
            "fold={fold}: max|ORT - run| = {diff} > {bound}"
        );
    }
}

/// The ops of encoder-decoder networks: transposed convs (bias, output_pad, groups, dilation),
/// upsampling by a factor, to a size and to another value's size (nearest, bilinear, aligned
/// corners), center crops and zero padding.
const DECODER_OPS: &str = "network decoder {
    input x: [N, 4, 9, 9]
    d = x -> up: conv_transpose(8, k: 3, stride: 2, pad: 1, output_pad: 1, bias: true) -> relu
    e = d -> upsample(scale: 2, mode: bilinear) -> pad([1, 0, 2, 1])
          -> g: conv_transpose(4, k: [2, 3], stride: 2, groups: 2, dilation: [2, 1]) -> upsample(scale: [1, 2])
    aligned = upsample(d, like: e, mode: bilinear, align_corners: true) -> crop(like: d)
    resized = d -> upsample(size: [5, 7]) -> pad(1) -> upsample(like: d)
    output y = concat(e -> crop(like: d), aligned, resized, x -> upsample(like: d))
}
";

#[test]
fn decoder_ops_run_in_onnx_runtime_as_in_run() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("decoder.res");
    std::fs::write(&net, DECODER_OPS).unwrap();
    let x = ndarray::Array::from_shape_fn((2, 4, 9, 9), |(n, c, h, w)| {
        ((n * 324 + c * 81 + h * 9 + w) as f32 * 0.37).sin() * 6.0
    });
    let input = dir.path().join("x.npy");
    ndarray_npy::write_npy(&input, &x).unwrap();
    let ours = dir.path().join("run.npy");
    let o = resnetc(&[
        "run",
        s(&net),
        "--seed",
        "5",
        "--input",
        s(&input),
        "-o",
        s(&ours),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let onnx = dir.path().join("decoder.onnx");
    export(s(&net), &onnx, &["--seed", "5"]);
    let ort = dir.path().join("ort.npy");
    python("run_onnx.py", &[&onnx, &input, &ort]);
    python("check_onnx.py", &[&onnx]);
    let ours = npy(&ours);
    let bound = 1e-4 * ours.iter().fold(0f64, |m, v| m.max(f64::from(v.abs())));
    let y = npy(&ort);
    // 9 -> 18 by the transposed conv; 4 + 8 + 8 + 4 channels.
    assert_eq!(y.shape(), [2, 24, 18, 18]);
    let diff = max_diff(&y, ours.iter().map(|&v| f64::from(v)));
    assert!(diff <= bound, "max|ORT - run| = {diff} > {bound}");
}

#[test]
fn padded_unet_runs_in_onnx_runtime_as_in_run() {
    // At 64x64 (the example is 256x256): the same seeded weights, a smaller input.
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("unet_padded.res");
    let text =
        crate::read("examples/unet_padded.res").replace("[N, 3, 256, 256]", "[N, 3, 64, 64]");
    std::fs::write(&net, text).unwrap();
    let x = ndarray::Array::from_shape_fn((1, 3, 64, 64), |(_, c, h, w)| {
        ((c * 4096 + h * 64 + w) as f32 * 0.37).sin() * 2.0
    });
    let input = dir.path().join("x.npy");
    ndarray_npy::write_npy(&input, &x).unwrap();
    let ours = dir.path().join("run.npy");
    let o = resnetc(&[
        "run",
        s(&net),
        "--seed",
        "3",
        "--input",
        s(&input),
        "-o",
        s(&ours),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let onnx = dir.path().join("unet_padded.onnx");
    export(s(&net), &onnx, &["--seed", "3", "--fold-batchnorm"]);
    let ort = dir.path().join("ort.npy");
    python("run_onnx.py", &[&onnx, &input, &ort]);
    let ours = npy(&ours);
    let bound = 1e-4 * ours.iter().fold(0f64, |m, v| m.max(f64::from(v.abs())));
    let y = npy(&ort);
    assert_eq!(y.shape(), [1, 2, 64, 64]);
    let diff = max_diff(&y, ours.iter().map(|&v| f64::from(v)));
    assert!(diff <= bound, "max|ORT - run| = {diff} > {bound}");
}

#[test]
fn an_op_without_an_onnx_equivalent_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("bins.res");
    // 5 rows into 3 bins: PyTorch's bins are rows 0..2, 1..4 and 3..5, of 2, 3 and 2 rows: no
    // single ONNX pool.
    std::fs::write(
        &net,
        "network bins {\n    input x: [N, 2, 5, 5]\n    output y = x -> pool: adaptive_avgpool(out: [3, 3])\n}\n",
    )
    .unwrap();
    let out = dir.path().join("bins.onnx");
    let o = resnetc(&["export", s(&net), "--format", "onnx", "-o", s(&out)]);
    assert_clean_failure(
        &o,
        1,
        "`adaptive_avgpool` (at `pool`) has no equivalent in ONNX",
    );
    assert!(!out.exists());
    // 7 rows into 3 bins are 0..3, 2..5, 4..7: a 3-row window at stride 2.
    std::fs::write(
        &net,
        "network bins {\n    input x: [N, 2, 7, 7]\n    output y = x -> pool: adaptive_avgpool(out: [3, 3])\n}\n",
    )
    .unwrap();
    export(s(&net), &out, &[]);
    let g = decode(&out).graph.unwrap();
    assert_eq!(g.node[0].op_type(), "AveragePool");
    let attr = |name: &str| {
        g.node[0]
            .attribute
            .iter()
            .find(|a| a.name() == name)
            .unwrap()
            .ints
            .clone()
    };
    assert_eq!(
        (attr("kernel_shape"), attr("strides")),
        (vec![3, 3], vec![2, 2])
    );
}
