//! Tidy checks of the layering ARCHITECTURE.md states, read from the sources: `syntax` knows
//! no `ir`, `shape`, `interp` or `export`; `ir` knows no `shape`; only `cli` does IO (no file
//! calls, no printing elsewhere); kernels import only `shape::formula` and the SIMD tiles of
//! `machine::simd` from the rest of the crate; and the code map names every source file.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// (path relative to the root, text) of every file under `src/DIR`.
fn sources(dir: &str) -> Vec<(String, String)> {
    let root = crate::root();
    let mut files = Vec::new();
    rust_files(&root.join("src").join(dir), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Lines of code (comments dropped) that contain any of `needles`.
fn offending(files: &[(String, String)], needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in files {
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if needles.iter().any(|n| code.contains(n)) {
                found.push(format!("{path}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn syntax_knows_no_later_phase_and_ir_no_shapes() {
    let bad = offending(
        &sources("syntax"),
        &[
            "crate::ir",
            "crate::shape",
            "crate::interp",
            "crate::export",
        ],
    );
    assert!(
        bad.is_empty(),
        "syntax reaches a later phase:\n{}",
        bad.join("\n")
    );
    let bad = offending(&sources("ir"), &["crate::shape"]);
    assert!(bad.is_empty(), "ir reaches shape:\n{}", bad.join("\n"));
}

#[test]
fn only_cli_does_io() {
    let io = [
        "std::fs::read",
        "std::fs::write",
        "std::fs::metadata",
        "File::open",
        "File::create",
        "std::fs::remove",
        "std::io::stdin",
        "std::io::stdout",
        "std::io::stderr",
        "println!",
        "eprintln!",
        "print!(",
        "eprint!(",
    ];
    let mut files = sources("");
    files.retain(|(p, _)| !p.starts_with("src/cli/") && p != "src/main.rs");
    let bad = offending(&files, &io);
    assert!(bad.is_empty(), "IO outside src/cli:\n{}", bad.join("\n"));
}

#[test]
fn kernels_import_only_the_formulas_the_simd_tiles_and_lined_zeros() {
    let mut bad = Vec::new();
    for (path, text) in sources("interp/kernels") {
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(at) = rest.find("crate::") {
                let tail = &rest[at..];
                if !tail.starts_with("crate::shape::formula")
                    && !tail.starts_with("crate::machine::simd")
                    && !tail.starts_with("crate::machine::memory::zeros")
                {
                    bad.push(format!("{path}:{}: {}", i + 1, line.trim()));
                }
                rest = &tail["crate::".len()..];
            }
        }
    }
    assert!(
        bad.is_empty(),
        "kernels reach into the crate:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_code_map_names_every_source_file() {
    let map = crate::read("ARCHITECTURE.md");
    let mut missing = Vec::new();
    for (path, _) in sources("") {
        let name = path.rsplit('/').next().unwrap();
        let dir = path.rsplit('/').nth(1).unwrap();
        let named = map.contains(&format!("`{name}`"))
            || map.contains(&path)
            || map.contains(&format!("{dir}/{name}"));
        if !named {
            missing.push(path);
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name: {missing:?}"
    );
}
