//! Op semantics against PyTorch: each op run through the interpreter on a fixed input equals
//! what PyTorch computes (through the comparison venv, `tests/py/`).

use std::process::Command;

/// Run `x -> OP` through resnetc on `x` (96 values) as `[2, 3, 4, 4]`.
fn run_op(op: &str, x: &[f32]) -> Vec<f32> {
    let text = format!("network n {{ input x: [2, 3, 4, 4]\n output x -> {op} }}");
    let (_, checked) = crate::check_one("op.res", &text);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let (g, shapes) = (checked.graph.unwrap(), checked.shapes.unwrap());
    let weights = resnetc::interp::weights::seeded(&g, &shapes, 1);
    let program = resnetc::interp::plan::plan(&g, &shapes, weights);
    let x = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 3, 4, 4]), x.to_vec()).unwrap();
    let out = resnetc::interp::run_program(&program, vec![x], resnetc::interp::RunOptions::new(1));
    out[0].1.iter().copied().collect()
}

#[test]
fn activations_equal_pytorch() {
    let out = Command::new(crate::python())
        .arg(crate::root().join("tests/py/activations.py"))
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
    assert!(expected.len() >= 11);
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
    let (g, shapes) = (checked.graph.unwrap(), checked.shapes.unwrap());
    let weights = resnetc::interp::weights::seeded(&g, &shapes, 3);
    let program = resnetc::interp::plan::plan(&g, &shapes, weights);
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
