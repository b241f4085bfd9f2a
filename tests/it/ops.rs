//! Op semantics against PyTorch: each op run through the interpreter on a fixed input equals
//! what PyTorch computes (through the comparison venv, `tests/py/`).

use std::process::Command;

/// Run `x -> OP` through resnetc on `x` (96 values) as `[2, 3, 4, 4]`.
fn run_op(op: &str, x: &[f32]) -> Vec<f32> {
    let text = format!("network n {{ input x: [2, 3, 4, 4]\n output x -> {op} }}");
    let (_, checked) = crate::check_text("op.res", &text);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let (g, shapes) = (checked.graph.unwrap(), checked.shapes.unwrap());
    let weights = resnetc::interp::weights::seeded(&g, &shapes, 1);
    let program = resnetc::interp::plan::plan(&g, &shapes, weights);
    let x = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 3, 4, 4]), x.to_vec()).unwrap();
    let out = resnetc::interp::run(
        &program,
        vec![x],
        resnetc::interp::RunOptions { threads: 1 },
    );
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
