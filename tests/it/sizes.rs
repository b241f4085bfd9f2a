//! Per-axis sizes (`k: [1, 7]`, `stride: [2, 1]`, `pad: [0, 3]`, `dilation: [2, 1]`): shapes,
//! parameters and MACs derived by hand; the interpreter against PyTorch's own functions on the
//! same weights; the ONNX export's attributes and its run in ONNX Runtime.

use crate::cli::{resnetc, stderr};
use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use prost::Message;
use std::path::Path;

/// Inception's factorized 7x7: a 1x7 then a 7x1 conv, each keeping H and W.
const FACTORIZED: &str = "network factorized {
    input x: [N, 128, 17, 17]
    a = x -> c17: conv(160, k: [1, 7], pad: [0, 3])
    b = a -> c71: conv(192, k: [7, 1], pad: [3, 0])
    c = b -> s: conv(8, k: [3, 1], stride: [2, 1], pad: [1, 0], dilation: [1, 2])
    output c -> maxpool(k: [3, 1], stride: [2, 1]) -> avgpool(k: [1, 3], pad: [0, 1])
}";

#[test]
fn a_1x7_and_7x1_pair_follow_the_shape_rule_per_axis() {
    let (_, checked) = crate::check_one("factorized.res", FACTORIZED);
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    let s = checked.summary().unwrap();
    let layer = |path: &str| {
        let l = s.layers.iter().find(|l| l.path == path).unwrap();
        (l.shape.concrete(1).unwrap()[1..].to_vec(), l.params, l.macs)
    };
    // 1x7, pad [0, 3]: H = (17 + 0 - 1) / 1 + 1 = 17, W = (17 + 6 - 7) / 1 + 1 = 17.
    // Weight [160, 128, 1, 7] = 143,360; MACs 160 * 17 * 17 * (128 * 7) = 41,431,040.
    assert_eq!(
        layer("c17"),
        (vec![160, 17, 17], Some(143_360), Some(41_431_040))
    );
    // 7x1, pad [3, 0]: 17 x 17 again. Weight [192, 160, 7, 1] = 215,040;
    // MACs 192 * 17 * 17 * (160 * 7) = 62,146,560.
    assert_eq!(
        layer("c71"),
        (vec![192, 17, 17], Some(215_040), Some(62_146_560))
    );
    // 3x1, stride [2, 1], pad [1, 0], dilation [1, 2]: H = (17 + 2 - 3) / 2 + 1 = 9,
    // W = (17 - 2 * 0 - 1) / 1 + 1 = 17 (a 1-wide kernel spans 1 at any dilation).
    // Weight [8, 192, 3, 1] = 4,608; MACs 8 * 9 * 17 * 192 * 3 = 705,024.
    assert_eq!(layer("s"), (vec![8, 9, 17], Some(4_608), Some(705_024)));
    // maxpool 3x1 / [2, 1]: H = (9 - 3) / 2 + 1 = 4, W = 17; avgpool 1x3 (stride = k), pad
    // [0, 1]: H = 4, W = (17 + 2 - 3) / 3 + 1 = 6.
    assert_eq!(s.outputs[0].shape.concrete(1).unwrap(), vec![1, 8, 4, 6]);
    assert_eq!(s.params, Some(143_360 + 215_040 + 4_608));
}

#[test]
fn rectangular_sizes_are_drawn_and_exported_per_axis() {
    let (source, checked) = crate::check_one("factorized.res", FACTORIZED);
    let (g, shapes) = (checked.graph.unwrap(), checked.shapes.unwrap());
    let dot = resnetc::export::dot::to_dot(&g, Some(&shapes), &[], &Default::default());
    for label in [
        "conv 1x7, 128→160",
        "conv 7x1, 160→192",
        "conv 3x1/2x1 dilation 1x2",
    ] {
        assert!(dot.contains(label), "{label} missing from the drawing");
    }
    let file = resnetc::syntax::parse(&source.text).unwrap();
    let py = resnetc::export::pytorch::to_pytorch(&source, &file, &g, &shapes).unwrap();
    for call in [
        "nn.Conv2d(128, 160, (1, 7), padding=(0, 3), bias=False)",
        "nn.Conv2d(160, 192, (7, 1), padding=(3, 0), bias=False)",
        "stride=(2, 1)",
        "dilation=(1, 2)",
        "kernel_size=(3, 1)",
        "padding=(0, 1)",
    ] {
        assert!(py.contains(call), "{call} missing from:\n{py}");
    }
}

/// Every per-axis argument of conv and both pools, with unequal axes, into one output (and a
/// batchnorm with its own epsilon, which the PyTorch export must carry).
const RECTANGULAR: &str = "network rectangular {
    input x: [2, 3, 9, 11]
    output y = x -> c1: conv(4, k: [1, 5], stride: [2, 1], pad: [0, 2], bias: true)
        -> bn: batchnorm(eps: 0.5) -> c2: conv(6, k: [3, 2], stride: [1, 2], pad: [2, 1], dilation: [2, 1], groups: 2, bias: true)
        -> maxpool(k: [2, 3], stride: [1, 2], pad: [1, 1], ceil: true)
        -> avgpool(k: [3, 1], stride: [2, 1], pad: [1, 0], count_pad: false)
}";

fn input() -> ArrayD<f32> {
    ArrayD::from_shape_fn(ndarray::IxDyn(&[2, 3, 9, 11]), |i| {
        ((i[0] * 297 + i[1] * 99 + i[2] * 11 + i[3]) as f32 * 0.61).sin()
    })
}

fn max_abs(a: &ArrayD<f32>) -> f32 {
    a.iter().fold(0f32, |m, v| m.max(v.abs()))
}

#[test]
fn rectangular_conv_and_pools_run_as_pytorch_computes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_, checked) = crate::check_one("rectangular.res", RECTANGULAR);
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    let net = checked.network().unwrap();
    let (g, shapes) = (net.graph(), net.shapes());
    // c1: H = (9 - 1) / 2 + 1 = 5, W = (11 + 4 - 5) + 1 = 11. c2: H = (5 + 4 - 2 * 2 - 1) + 1
    // = 5, W = (11 + 2 - 1 - 1) / 2 + 1 = 6. maxpool, ceil: H = ceil((5 + 2 - 2) / 1) + 1 = 6,
    // W = ceil((6 + 2 - 3) / 2) + 1 = 4 (both last windows start inside). avgpool: H =
    // (6 + 2 - 3) / 2 + 1 = 3, W = 4.
    let out = shapes.get(g.outputs[0].node).unwrap();
    assert_eq!(out.concrete(0).unwrap(), vec![2, 6, 3, 4]);
    // Weights: c1 [4, 3, 1, 5] + 4 = 64, bn 4 x 4 = 16, c2 [6, 2, 3, 2] + 6 = 78.
    assert_eq!(
        resnetc::interp::weights::expected(g, shapes)
            .iter()
            .map(|e| e.shape.iter().product::<usize>())
            .sum::<usize>(),
        158
    );
    let weights = dir.path().join("w.safetensors");
    crate::export::write_seeded_weights(g, shapes, &weights);
    let x = input();
    let x_path = dir.path().join("x.npy");
    x.write_npy(std::fs::File::create(&x_path).unwrap())
        .unwrap();
    let program = net.plan(resnetc::interp::weights::seeded(g, shapes, 7));
    let ours = resnetc::interp::run_program(&program, vec![x], resnetc::interp::RunOptions::new(2))
        .remove(0)
        .1;
    let torch_path = dir.path().join("torch.npy");
    let o = std::process::Command::new(crate::python())
        .arg(crate::root().join("tests/py/sizes.py"))
        .args([&weights, &x_path, &torch_path])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let torch = ArrayD::<f32>::read_npy(std::fs::File::open(&torch_path).unwrap()).unwrap();
    assert_eq!(torch.shape(), ours.shape());
    let bound = 1e-5 * max_abs(&torch).max(1.0);
    for (i, (a, b)) in ours.iter().zip(torch.iter()).enumerate() {
        assert!((a - b).abs() <= bound, "[{i}]: resnetc {a}, PyTorch {b}");
    }
}

#[test]
fn the_pytorch_export_of_rectangular_sizes_runs_as_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let source = resnetc::span::Source::new("rectangular.res", RECTANGULAR);
    let checked = resnetc::check(&source, None);
    let net = checked.network().unwrap();
    let file = resnetc::syntax::parse(RECTANGULAR).unwrap();
    let py =
        resnetc::export::pytorch::to_pytorch(&source, &file, net.graph(), net.shapes()).unwrap();
    for call in [
        "(1, 5)",
        "stride=(2, 1)",
        "padding=(0, 2)",
        "eps=0.5",
        "dilation=(2, 1)",
    ] {
        assert!(py.contains(call), "{call} missing from:\n{py}");
    }
    let module = dir.path().join("rectangular.py");
    std::fs::write(&module, py).unwrap();
    let weights = dir.path().join("w.safetensors");
    crate::export::write_seeded_weights(net.graph(), net.shapes(), &weights);
    let x_path = dir.path().join("x.npy");
    input()
        .write_npy(std::fs::File::create(&x_path).unwrap())
        .unwrap();
    let ours = net.plan(resnetc::interp::weights::seeded(
        net.graph(),
        net.shapes(),
        7,
    ));
    let y = resnetc::interp::run_program(&ours, vec![input()], resnetc::interp::RunOptions::new(1))
        .remove(0)
        .1;
    let y_path = dir.path().join("run.npy");
    y.write_npy(std::fs::File::create(&y_path).unwrap())
        .unwrap();
    let manifest = dir.path().join("manifest.json");
    let doc = serde_json::json!({
        "black": [module],
        "jobs": [{
            "name": "rectangular",
            "file": module,
            "weights": weights,
            "input": x_path,
            "expect": [{"npy": y_path, "what": "resnetc run", "top5": false, "output": 0}],
        }],
    });
    std::fs::write(&manifest, serde_json::to_vec(&doc).unwrap()).unwrap();
    let o = std::process::Command::new(crate::python())
        .arg(crate::root().join("tests/py/check_pytorch.py"))
        .arg(&manifest)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout.matches("ok ").count(), 1, "{stdout}");
}

fn attr(node: &resnetc::export::onnx::proto::NodeProto, name: &str) -> Vec<i64> {
    node.attribute
        .iter()
        .find(|a| a.name() == name)
        .unwrap_or_else(|| panic!("{} has no {name}", node.op_type()))
        .ints
        .clone()
}

#[test]
fn rectangular_sizes_export_to_onnx_per_axis_and_run_in_onnx_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("rectangular.res");
    std::fs::write(&net, RECTANGULAR).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let x_path = dir.path().join("x.npy");
    input()
        .write_npy(std::fs::File::create(&x_path).unwrap())
        .unwrap();
    let (ours, onnx, ort) = (
        dir.path().join("run.npy"),
        dir.path().join("r.onnx"),
        dir.path().join("ort.npy"),
    );
    let o = resnetc(&[
        "run",
        &s(&net),
        "--seed",
        "5",
        "--input",
        &s(&x_path),
        "-o",
        &s(&ours),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = resnetc(&[
        "export",
        &s(&net),
        "--format",
        "onnx",
        "--seed",
        "5",
        "-o",
        &s(&onnx),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let model =
        resnetc::export::onnx::proto::ModelProto::decode(std::fs::read(&onnx).unwrap().as_slice())
            .unwrap();
    let nodes = model.graph.unwrap().node;
    let by_type = |t: &str| {
        nodes
            .iter()
            .filter(|n| n.op_type() == t)
            .collect::<Vec<_>>()
    };
    let (convs, max, avg) = (by_type("Conv"), by_type("MaxPool"), by_type("AveragePool"));
    // ONNX pads are [h_begin, w_begin, h_end, w_end].
    let want = [
        (convs[0], [1, 5], [2, 1], [0, 2, 0, 2]),
        (convs[1], [3, 2], [1, 2], [2, 1, 2, 1]),
        (max[0], [2, 3], [1, 2], [1, 1, 1, 1]),
        (avg[0], [3, 1], [2, 1], [1, 0, 1, 0]),
    ];
    for (node, k, stride, pads) in want {
        assert_eq!(attr(node, "kernel_shape"), k, "{}", node.op_type());
        assert_eq!(attr(node, "strides"), stride, "{}", node.op_type());
        assert_eq!(attr(node, "pads"), pads, "{}", node.op_type());
    }
    assert_eq!(attr(convs[1], "dilations"), [2, 1]);
    let py = std::process::Command::new(crate::python())
        .arg(crate::root().join("tests/py/run_onnx.py"))
        .args([&onnx, &x_path, &ort])
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let read = |p: &Path| ArrayD::<f32>::read_npy(std::fs::File::open(p).unwrap()).unwrap();
    let (ours, ort) = (read(&ours), read(&ort));
    assert_eq!(ours.shape(), [2, 6, 3, 4]);
    assert_eq!(ort.shape(), ours.shape());
    let bound = 1e-5 * max_abs(&ours).max(1.0);
    for (i, (a, b)) in ours.iter().zip(ort.iter()).enumerate() {
        assert!((a - b).abs() <= bound, "[{i}]: run {a}, ONNX Runtime {b}");
    }
}
