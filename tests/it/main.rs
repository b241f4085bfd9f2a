//! The one integration-test binary: UI golden tests, examples, CLI behaviour, properties.

mod analyze;
mod cli;
mod examples;
mod export;
mod export_onnx;
mod fixes;
mod graph;
mod images;
mod introspect;
mod lined;
mod ops;
mod picture;
mod props;
mod ranks;
mod registry;
mod robust;
mod run;
mod sizes;
mod summary;
mod tidy;
mod ui;
mod valid_sizes;

use std::path::{Path, PathBuf};

/// The `resnetc` binary's allocator, so that what runs in this process allocates as a run
/// does (`lined`).
#[global_allocator]
static ALLOCATOR: resnetc::machine::memory::HugePages = resnetc::machine::memory::HugePages;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Read a file relative to the repository root.
pub fn read(rel: impl AsRef<Path>) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Check a source text as `resnetc check` would, from a display name and text.
pub fn check_text(name: &str, text: &str) -> (resnetc::span::Source, resnetc::CheckedFile) {
    let source = resnetc::span::Source::new(name, text);
    let checked = resnetc::check_file(&source, None);
    (source, checked)
}

/// Check the one network of a source text, as `resnetc::check` does.
pub fn check_one(name: &str, text: &str) -> (resnetc::span::Source, resnetc::Checked) {
    let source = resnetc::span::Source::new(name, text);
    let checked = resnetc::check(&source, None);
    (source, checked)
}

/// The Python interpreter of the comparison venv (PyTorch, ONNX, ONNX Runtime), which
/// `./test.sh` creates: `RESNETC_PYTHON`, or `~/.cache/resnetc-venv/bin/python`.
///
/// Panics (the test fails, it never skips) when there is none.
#[allow(dead_code)]
pub fn python() -> PathBuf {
    let path = std::env::var_os("RESNETC_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/resnetc-venv/bin/python"))
        })
        .unwrap_or_default();
    assert!(
        path.is_file(),
        "no Python venv for the comparison tests at {}: run ./test.sh, which creates it",
        path.display()
    );
    path
}
