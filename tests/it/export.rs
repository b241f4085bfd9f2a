//! `resnetc export`: bad input is refused before anything is written; what is written equals
//! what PyTorch computes (the comparisons need the venv, see `crate::python`).

use crate::cli::{assert_clean_failure, resnetc};

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
