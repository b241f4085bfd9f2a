//! `resnetc graph`: golden DOT files beside their sources in `tests/ui/graph/`, determinism,
//! every example rendered by Graphviz without a warning, and the command as a user meets it
//! (formats, `-o`, exit codes, a missing Graphviz). `RESNETC_BLESS=1` rewrites the goldens.

use resnetc::export::{DotOptions, to_dot};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const INSTALL_GRAPHVIZ: &str = "Graphviz's `dot` is not installed, so the SVG test cannot run: \
     install graphviz (`apt-get install graphviz`, `brew install graphviz`); CI installs it";

/// A ResNet-152-sized stage: 36 bottleneck blocks in one sequence.
const DEEP: &str = "
block bottleneck(planes: int, stride: int = 1, down: bool = false) {
    input x
    y = x -> conv1: conv(planes, k: 1) -> bn1: batchnorm -> relu
          -> conv2: conv(planes, k: 3, stride: stride, pad: 1) -> bn2: batchnorm -> relu
          -> conv3: conv(planes * 4, k: 1) -> bn3: batchnorm
    s = if down { x -> downsample: [conv(planes * 4, k: 1, stride: stride), batchnorm] } else { x }
    output relu(y + s)
}
network deep {
    input image: [N, 64, 56, 56]
    out = image -> layer3: [bottleneck(64, stride: 2, down: true), bottleneck(64) * 35]
    output out
}
";

/// The DOT for a network of a source text (the only one for `None`), as `resnetc graph`
/// draws it.
fn dot_of_network(name: &str, text: &str, network: Option<&str>, depth: Option<usize>) -> String {
    let source = resnetc::span::Source::new(name, text);
    let checked = resnetc::check(&source, network);
    let graph = checked
        .graph
        .as_ref()
        .unwrap_or_else(|| panic!("{name} does not lower: {:#?}", checked.diagnostics));
    to_dot(
        graph,
        checked.shapes.as_ref(),
        &checked.diagnostics,
        &DotOptions { depth },
    )
}

fn dot_of_text(name: &str, text: &str, depth: Option<usize>) -> String {
    dot_of_network(name, text, None, depth)
}

/// The DOT for a file relative to the repository root.
fn dot_of(rel: &str, depth: Option<usize>) -> String {
    dot_of_text(rel, &crate::read(rel), depth)
}

fn assert_golden(rel: &str, actual: &str) {
    if let Some(failure) = crate::ui::golden(&crate::root().join(rel), actual) {
        panic!("{failure}");
    }
}

#[test]
fn graph_golden_small_residual_network() {
    let dot = dot_of("tests/ui/graph/small.res", None);
    assert_golden("tests/ui/graph/small.dot", &dot);
    // One identity shortcut (blue, dashed); one projection, orange along its whole path.
    assert_eq!(dot.matches("style=dashed").count(), 1, "{dot}");
    let orange = dot
        .lines()
        .filter(|l| l.contains(" -> ") && l.contains("#e6550d"));
    assert_eq!(orange.count(), 3, "{dot}");
    assert!(dot.contains("conv 3x3/2, 16→32"), "{dot}");
    assert!(dot.contains("subgraph cluster_"), "{dot}");
}

#[test]
fn graph_golden_shape_error_still_draws() {
    let dot = dot_of("tests/ui/graph/mismatch.res", None);
    assert_golden("tests/ui/graph/mismatch.dot", &dot);
    // Both instances of the block share the add's span; only the failing one is red.
    let red: Vec<&str> = dot.lines().filter(|l| l.contains("#ffcccc")).collect();
    assert_eq!(red.len(), 1, "{dot}");
    assert!(red[0].contains("layer1.1.add#0"), "{}", red[0]);
    assert!(
        red[0].contains("error[E0203]: shape mismatch in residual add"),
        "{}",
        red[0]
    );
}

#[test]
fn graph_golden_resnet50_depth_1() {
    let dot = dot_of("examples/resnet50.res", Some(1));
    assert_golden("tests/ui/graph/resnet50_depth1.dot", &dot);
    assert!(dot.contains("label=\"layer3: bottleneck × 6\""), "{dot}");
    assert!(!dot.contains("subgraph"), "{dot}");
}

#[test]
fn graph_styles_each_kind_of_shortcut() {
    let into_add = |dot: &str, color: &str| {
        let edges = dot
            .lines()
            .filter(|l| l.contains(" -> ") && l.contains("weight=0"));
        edges.filter(|l| l.contains(color)).count()
    };
    // ResNet-50: 16 blocks, the first of each stage projects (1x1 conv) the shortcut.
    let dot = dot_of("examples/resnet50.res", None);
    assert_eq!(into_add(&dot, "#1f77b4"), 12, "identity");
    assert_eq!(into_add(&dot, "#e6550d"), 4, "projection");
    // CIFAR ResNet-20: 9 blocks, two with a parameter-free option-A shortcut.
    let dot = dot_of("examples/cifar_resnet20.res", None);
    assert_eq!(into_add(&dot, "#1f77b4"), 7, "identity");
    assert_eq!(into_add(&dot, "#8e44ad"), 2, "parameter-free");
    assert_eq!(into_add(&dot, "#e6550d"), 0, "projection");
}

#[test]
fn graph_collapses_a_long_stage_into_one_node() {
    let dot = dot_of_text("deep.res", DEEP, Some(1));
    assert!(dot.contains("label=\"layer3: bottleneck × 36\""), "{dot}");
    assert_eq!(dot.matches(" -> ").count(), 2, "{dot}");
    // One level deeper: 36 block clusters, each downsample collapsed into one node.
    let dot = dot_of_text("deep.res", DEEP, Some(2));
    assert_eq!(dot.matches("subgraph cluster_").count(), 37, "{dot}");
    assert!(
        dot.contains("label=\"layer3.0.downsample\\nconv → batchnorm\""),
        "{dot}"
    );
}

#[test]
fn graph_output_is_deterministic() {
    for rel in [
        "examples/resnet50.res",
        "tests/ui/graph/small.res",
        "tests/ui/graph/mismatch.res",
    ] {
        for depth in [None, Some(0), Some(1), Some(2)] {
            let first = dot_of(rel, depth);
            let second = dot_of(rel, depth);
            assert!(
                first == second,
                "{rel} at depth {depth:?} drew twice differently"
            );
        }
    }
}

/// The `.res` files that must draw cleanly: every example and the graph UI cases.
fn drawable_sources() -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["examples", "tests/ui/graph"] {
        for entry in std::fs::read_dir(crate::root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "res") {
                files.push(format!(
                    "{dir}/{}",
                    path.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    files.sort();
    files
}

/// Run `dot -Tsvg` on a DOT text; `None` when Graphviz is not installed.
fn graphviz_svg(dot: &str) -> Option<Output> {
    let mut child = match Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run `dot`: {e}"),
    };
    let mut stdin = child.stdin.take().unwrap();
    let input = dot.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    Some(out)
}

#[test]
fn graph_every_example_renders_with_graphviz_without_warnings() {
    let files = drawable_sources();
    assert!(
        files.iter().any(|f| f.starts_with("examples/")),
        "no examples found"
    );
    let mut failures = Vec::new();
    for rel in &files {
        let text = crate::read(rel);
        let parsed = resnetc::syntax::parse(&text).unwrap_or_else(|d| panic!("{rel}: {d:#?}"));
        for net in &parsed.networks {
            let network = Some(net.name.name.as_str());
            for depth in [None, Some(1)] {
                let dot = dot_of_network(rel, &text, network, depth);
                let out = graphviz_svg(&dot).unwrap_or_else(|| panic!("{INSTALL_GRAPHVIZ}"));
                let stderr = String::from_utf8_lossy(&out.stderr);
                let svg = String::from_utf8_lossy(&out.stdout);
                if !out.status.success() || !stderr.trim().is_empty() || !svg.contains("<svg") {
                    failures.push(format!(
                        "{rel} {network:?} (depth {depth:?}): dot {}: {stderr}",
                        out.status
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- the command ----

fn resnetc(args: &[&str], path_env: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_resnetc"));
    cmd.args(args)
        .current_dir(crate::root())
        .env_remove("NO_COLOR");
    if let Some(path) = path_env {
        cmd.env("PATH", path);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn graph_command_prints_dot_to_stdout() {
    let o = resnetc(&["graph", "tests/ui/graph/small.res"], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), crate::read("tests/ui/graph/small.dot"));
    assert_eq!(text(&o.stderr), "");
}

#[test]
fn graph_command_draws_a_network_with_errors_and_exits_1() {
    let o = resnetc(
        &["graph", "--color", "never", "tests/ui/graph/mismatch.res"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("error[E0203]"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(text(&o.stdout), crate::read("tests/ui/graph/mismatch.dot"));
}

#[test]
fn graph_command_writes_nothing_without_a_graph() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("bad.res");
    std::fs::write(&src, "network bad { input x: [N, 3, 8, 8] output y }").unwrap();
    let out = dir.path().join("bad.dot");
    let o = resnetc(
        &["graph", src.to_str().unwrap(), "-o", out.to_str().unwrap()],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(!out.exists());
    assert_eq!(dir_entries(dir.path()), ["bad.res"]);
}

#[test]
fn graph_command_renders_svg_and_png_by_extension() {
    if graphviz_svg("digraph {}").is_none() {
        panic!("{INSTALL_GRAPHVIZ}");
    }
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("net.svg");
    let png = dir.path().join("net.png");
    let forced = dir.path().join("net.out");
    for (out, extra) in [(&svg, None), (&png, None), (&forced, Some("svg"))] {
        let mut args = vec![
            "graph",
            "examples/resnet50.res",
            "--depth",
            "2",
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend(extra.iter().flat_map(|f| ["--format", *f]));
        let o = resnetc(&args, None);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        assert_eq!(text(&o.stderr), "");
    }
    assert!(text(&std::fs::read(&svg).unwrap()).contains("<svg"));
    assert!(
        std::fs::read(&png)
            .unwrap()
            .starts_with(b"\x89PNG\r\n\x1a\n")
    );
    assert!(text(&std::fs::read(&forced).unwrap()).contains("<svg"));
    // The temporary files were renamed into place, none left behind.
    assert_eq!(dir_entries(dir.path()), ["net.out", "net.png", "net.svg"]);
}

#[test]
fn graph_command_without_graphviz_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net.svg");
    let o = resnetc(
        &[
            "graph",
            "tests/ui/graph/small.res",
            "-o",
            out.to_str().unwrap(),
        ],
        Some("/nonexistent"),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("apt-get install graphviz") && err.contains("brew install graphviz"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        dir_entries(dir.path()).is_empty(),
        "a failed render left a file behind"
    );
}

#[test]
fn graph_command_refuses_to_overwrite_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("net.res");
    let original = crate::read("tests/ui/graph/small.res");
    std::fs::write(&src, &original).unwrap();
    let path = src.to_str().unwrap();
    let o = resnetc(&["graph", path, "-o", path], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("refusing to overwrite the input file"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read_to_string(&src).unwrap(), original);
}

#[test]
fn graph_command_rejects_an_unknown_format() {
    let o = resnetc(
        &["graph", "tests/ui/graph/small.res", "--format", "pdf"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("pdf"), "{}", text(&o.stderr));
}

#[test]
fn graph_command_refuses_a_format_its_output_name_contradicts() {
    let dir = tempfile::tempdir().unwrap();
    for (name, format, named) in [("net.png", "svg", "PNG"), ("net.dot", "png", "DOT")] {
        let out = dir.path().join(name);
        let args = [
            "graph",
            "tests/ui/graph/small.res",
            "--format",
            format,
            "-o",
        ];
        let o = resnetc(&[&args[..], &[out.to_str().unwrap()]].concat(), None);
        assert_eq!(o.status.code(), Some(2));
        let err = text(&o.stderr);
        assert!(
            err.contains(&format!("names a {named} file, but --format {format}")),
            "{err}"
        );
    }
    assert!(
        dir_entries(dir.path()).is_empty(),
        "a refused output was written"
    );
    // The same format in both is fine.
    let out = dir.path().join("net.dot");
    let args = ["graph", "tests/ui/graph/small.res", "--format", "dot", "-o"];
    let o = resnetc(&[&args[..], &[out.to_str().unwrap()]].concat(), None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&std::fs::read(&out).unwrap()).contains("digraph"));
}

#[test]
fn graph_draws_each_error_of_one_cause_red() {
    // H and W swapped in one input: the adds at both scales are one diagnostic, two red ops,
    // each with its own shapes.
    let dot = dot_of("tests/ui/shape/cause_swapped_input.res", None);
    let red: Vec<&str> = dot.lines().filter(|l| l.contains("#ffcccc")).collect();
    assert_eq!(red.len(), 2, "{dot}");
    assert!(
        red[0].contains("cannot add [N, 16, 64, 48] and [N, 16, 48, 64]"),
        "{}",
        red[0]
    );
    assert!(
        red[1].contains("cannot add [N, 32, 32, 24] and [N, 32, 24, 32]"),
        "{}",
        red[1]
    );
}
