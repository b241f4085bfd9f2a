//! Op semantics against PyTorch: each op run through the interpreter on a fixed input equals
//! what PyTorch computes (through the comparison venv, `tests/py/`).

use std::process::Command;

/// Run `x -> OP` through resnetc on `x` (96 values) as `[2, 3, 4, 4]`.
fn run_op(op: &str, x: &[f32]) -> Vec<f32> {
    let text = format!("network n {{ input x: [2, 3, 4, 4]\n output x -> {op} }}");
    let (_, checked) = crate::check_one("op.res", &text);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let net = checked.network().unwrap();
    let weights = resnetc::interp::weights::seeded(net.graph(), net.shapes(), 1);
    let program = net.plan(weights);
    let x = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 3, 4, 4]), x.to_vec()).unwrap();
    let out = resnetc::interp::run_program(&program, vec![x], resnetc::interp::RunOptions::new(1));
    out[0].1.iter().copied().collect()
}

#[test]
fn parameter_free_ops_equal_pytorch() {
    let out = Command::new(crate::python())
        .arg(crate::root().join("tests/py/ops.py"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect()
    };
    // PyTorch's linspace rounds differently from ndarray's: use its very input.
    let x = floats(&expected.remove("x").unwrap());
    assert!(expected.len() >= 25);
    for (op, values) in &expected {
        let want = floats(values);
        let got = run_op(op, &x);
        assert_eq!(got.len(), want.len(), "{op}");
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 + 1e-6 * b.abs(),
                "{op}[{i}]: resnetc {a}, PyTorch {b}"
            );
        }
    }
}

/// Run a network on `x` with seeded weights (seed 3); the first output, flattened.
fn run_net(text: &str, x: ndarray::ArrayD<f32>) -> Vec<f32> {
    let (_, checked) = crate::check_one("net.res", text);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let net = checked.network().unwrap();
    let weights = resnetc::interp::weights::seeded(net.graph(), net.shapes(), 3);
    let program = net.plan(weights);
    let out = resnetc::interp::run_program(&program, vec![x], resnetc::interp::RunOptions::new(1));
    out[0].1.iter().copied().collect()
}

#[test]
fn batchnorm_uses_its_eps_alone_and_folded_into_a_conv() {
    let x = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[1, 2, 3, 3]), |i| {
        (i[1] * 9 + i[2] * 3 + i[3]) as f32 - 8.0
    });
    // Seeded batchnorm statistics are weight 1, bias 0, mean 0, var 1, so the op divides by
    // sqrt(1 + eps): with eps 0.44, by 1.2.
    let alone = run_net(
        "network n { input x: [1, 2, 3, 3]\n output x -> batchnorm(eps: 0.44) }",
        x.clone(),
    );
    for (y, x) in alone.iter().zip(x.iter()) {
        assert!((y - x / 1.2).abs() < 1e-5, "{y} vs {}", x / 1.2);
    }
    // Folded into the conv before it: the conv's output (same seed, same weights) over 1.2.
    let conv = run_net(
        "network n { input x: [1, 2, 3, 3]\n output x -> c: conv(2, k: 1) }",
        x.clone(),
    );
    let folded = run_net(
        "network n { input x: [1, 2, 3, 3]\n output x -> c: conv(2, k: 1) -> bn: batchnorm(eps: 0.44) }",
        x,
    );
    for (y, c) in folded.iter().zip(&conv) {
        assert!((y - c / 1.2).abs() < 1e-5, "{y} vs {}", c / 1.2);
    }
}

/// Run a network on `x` with seeded weights; every output, flattened.
fn run_all(text: &str, x: ndarray::ArrayD<f32>) -> Vec<Vec<f32>> {
    let (_, checked) = crate::check_one("net.res", text);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let net = checked.network().unwrap();
    let weights = resnetc::interp::weights::seeded(net.graph(), net.shapes(), 5);
    let program = net.plan(weights);
    resnetc::interp::run_program(&program, vec![x], resnetc::interp::RunOptions::new(1))
        .into_iter()
        .map(|(_, y)| y.iter().copied().collect())
        .collect()
}

#[test]
fn gates_from_linear_layers_and_spatial_gates_scale_as_broadcasting_does() {
    let x = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[2, 4, 3, 3]), |i| {
        (i[0] * 36 + i[1] * 9 + i[2] * 3 + i[3]) as f32 * 0.1 - 3.0
    });
    let outs = run_all(
        "network n { input x: [2, 4, 3, 3]
         g = x -> global_avgpool -> flatten -> linear(2) -> relu -> linear(4) -> sigmoid -> unflatten([4, 1, 1])
         s = x -> conv(1, k: 1) -> sigmoid
         output g
         output s
         output x * g
         output x * s
         output 0.2 * x
         output x * 3 }",
        x.clone(),
    );
    let (g, s) = (&outs[0], &outs[1]);
    assert_eq!((g.len(), s.len()), (2 * 4, 2 * 9));
    for (i, &v) in x.iter().enumerate() {
        let (n, c, p) = (i / 36, (i / 9) % 4, i % 9);
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-6 * (1.0 + b.abs());
        assert!(close(outs[2][i], v * g[n * 4 + c]), "channel gate at {i}");
        assert!(close(outs[3][i], v * s[n * 9 + p]), "spatial gate at {i}");
        assert!(close(outs[4][i], 0.2 * v), "0.2 * x at {i}");
        assert!(close(outs[5][i], v * 3.0), "x * 3 at {i}");
    }
}

#[test]
fn conditional_sequence_items_are_present_only_when_their_condition_holds() {
    let text = "block unit(planes: int, stride: int = 1) {
        input x
        down = stride != 1
        y = x -> conv(planes, k: 3, stride: stride, pad: 1)
        s = x -> downsample: [relu, if down { conv(planes, k: 1, stride: stride), batchnorm }, identity]
        output y + s
    }
    network n { input x: [N, 4, 8, 8]
        output x -> a: unit(4) -> b: unit(8, stride: 2) }";
    let (_, checked) = crate::check_one("cond.res", text);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let g = checked.graph.unwrap();
    let paths: Vec<&str> = g.node_ids().map(|id| g.node(id).path.as_str()).collect();
    // Left out, the items take no index: `identity` is item 1 in `a`, item 3 in `b`.
    for p in [
        "a.downsample.0",
        "a.downsample.1",
        "b.downsample.1",
        "b.downsample.2",
        "b.downsample.3",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    assert!(!paths.contains(&"a.downsample.2"), "{paths:?}");
    assert!(matches!(
        g.node(
            g.node_ids()
                .find(|&id| g.node(id).path == "b.downsample.1")
                .unwrap()
        )
        .op,
        resnetc::ir::Op::Conv(_)
    ));
}
