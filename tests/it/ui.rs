//! Golden UI tests: every `tests/ui/**/NAME.res` is checked and its diagnostics compared
//! with `NAME.stderr`, its summary with `NAME.stdout` (when the network checks).
//! `RESNETC_BLESS=1 cargo test` rewrites the golden files; read the diff as code.
//!
//! The first line may state the expected codes, `# codes: E0202 E0203 W0101`; they are
//! checked both ways: each appears, and no other does. A second line `# sizes: LO..HI` asks for
//! the valid input sizes over that range, as `check --sizes LO..HI` does.

use resnetc::cli::Format;
use resnetc::cli::check::render_plain_with;
use std::path::{Path, PathBuf};

fn ui_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            ui_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "res") {
            out.push(p);
        }
    }
}

/// Compare `actual` with the golden file (or write it when blessing). Returns a failure text.
pub fn golden(path: &Path, actual: &str) -> Option<String> {
    let bless = std::env::var_os("RESNETC_BLESS").is_some();
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return None;
    }
    if bless {
        if actual.is_empty() {
            let _ = std::fs::remove_file(path);
        } else {
            std::fs::write(path, actual).unwrap();
        }
        return None;
    }
    Some(format!(
        "{} differs (RESNETC_BLESS=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    ))
}

#[test]
fn ui_golden_files() {
    let root = crate::root();
    let mut files = Vec::new();
    ui_files(&root.join("tests/ui"), &mut files);
    assert!(files.len() >= 10, "the UI suite lost its files");
    let mut failures = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(file).unwrap();
        let (source, checked) = crate::check_text(&rel, &text);
        let sizes = text
            .lines()
            .nth(1)
            .and_then(|l| l.strip_prefix("# sizes:"))
            .map(|r| r.trim().parse().expect("a range `LO..HI` after `# sizes:`"));
        let opts = resnetc::summary::Options {
            sizes,
            ..Default::default()
        };
        let (stdout, stderr) = render_plain_with(&source, &checked, Format::Human, &opts);
        failures.extend(golden(&file.with_extension("stderr"), &stderr));
        failures.extend(golden(&file.with_extension("stdout"), &stdout));
        if let Some(header) = text.lines().next().and_then(|l| l.strip_prefix("# codes:")) {
            let mut expected: Vec<&str> = header.split_whitespace().collect();
            expected.sort();
            expected.dedup();
            let mut actual: Vec<&str> = checked
                .diagnostics
                .iter()
                .map(|d| d.code.as_str())
                .collect();
            actual.sort();
            actual.dedup();
            if expected != actual {
                failures.push(format!(
                    "{rel}: expected codes {expected:?}, found {actual:?}"
                ));
            }
        } else if !rel.starts_with("tests/ui/graph/") {
            failures.push(format!(
                "{rel}: first line must be `# codes: ...` (empty for none)"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every diagnostic code has an explain page and at least one UI test that produces it.
#[test]
fn every_code_has_an_explain_page_and_a_ui_test() {
    let root = crate::root();
    let mut files = Vec::new();
    ui_files(&root.join("tests/ui"), &mut files);
    let all_headers: String = files
        .iter()
        .filter_map(|f| {
            std::fs::read_to_string(f)
                .ok()?
                .lines()
                .next()
                .map(str::to_string)
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut missing = Vec::new();
    for code in resnetc::diag::Code::ALL {
        let page = code.page();
        for section in ["## Example", "## Why", "## Fix"] {
            if !page.contains(section) {
                missing.push(format!("{}: explain page lacks `{section}`", code.as_str()));
            }
        }
        // Codes that need a file-level condition outside the .res text are tested in cli.rs.
        let cli_only = matches!(
            code.as_str(),
            "E0004" | "E0301" | "E0302" | "E0303" | "E0304"
        );
        if !cli_only && !all_headers.contains(code.as_str()) {
            missing.push(format!(
                "{}: no UI test states it in `# codes:`",
                code.as_str()
            ));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The diagnostic README.md shows is the one resnetc prints (the golden file of that case).
#[test]
fn readme_diagnostic_is_current() {
    let readme = crate::read("README.md");
    let start = readme
        .find("```\nerror[E0203]")
        .expect("README shows an E0203 diagnostic")
        + 4;
    let end = start + readme[start..].find("```").unwrap();
    let golden = crate::read("tests/ui/shape/resnet_d_odd_size.stderr");
    assert_eq!(readme[start..end].trim_end(), golden.trim_end());
}
