//! `resnetc analyze`: the signal propagation statistics against PyTorch's (the fixtures'
//! `NAME.spp.json`, computed in float64 with forward hooks), by hand on a network without
//! parameters (golden JSON), the plain transformation through its graph and `check`, and the
//! plots (SVG parsed as XML, PNG decoded).

use crate::cli::{assert_clean_failure, resnetc, stderr};
use resnetc::analyze::plain::to_plain;
use resnetc::export::{DotOptions, to_dot};
use resnetc::ir::Op;
use std::path::PathBuf;
use std::process::Output;

fn fixture(name: &str) -> PathBuf {
    let p = crate::root().join("../shared/fixtures").join(name);
    assert!(
        p.exists(),
        "{} is missing: the tests need ../shared/fixtures",
        p.display()
    );
    p
}

fn analyze_on_fixture(example: &str, model: &str, extra: &[&str]) -> Output {
    let (weights, input) = (
        fixture(&format!("{model}.safetensors")),
        fixture(&format!("{model}.input.npy")),
    );
    let example = format!("examples/{example}");
    let mut args = vec![
        "analyze",
        &example,
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    resnetc(&args)
}

fn json(o: &Output) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Every block's path, depth and three figures equal PyTorch's within 1e-4 relative.
fn matches_pytorch(example: &str, model: &str) {
    let ours = json(&analyze_on_fixture(example, model, &["--format", "json"]));
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(&format!("{model}.spp.json"))).unwrap(),
    )
    .unwrap();
    let (ours, theirs) = (
        ours["blocks"].as_array().unwrap(),
        reference["blocks"].as_array().unwrap(),
    );
    let paths = |v: &[serde_json::Value]| -> Vec<String> {
        v.iter()
            .map(|b| b["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(paths(ours), paths(theirs), "{model}: the blocks differ");
    let mut worst = 0f64;
    for (a, b) in ours.iter().zip(theirs) {
        assert_eq!(a["depth"], b["depth"], "{model} {}", b["path"]);
        for key in ["mean_sq", "var", "residual_var"] {
            let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
            let rel = (x - y).abs() / y.abs();
            worst = worst.max(rel);
            assert!(
                rel <= 1e-4,
                "{model} {} {key}: {x} against PyTorch's {y} ({rel:.1e} relative)",
                b["path"]
            );
        }
    }
    eprintln!("{model}: worst relative difference {worst:.2e}");
}

#[test]
fn resnet18_statistics_match_pytorch() {
    matches_pytorch("resnet18.res", "resnet18");
}

#[test]
fn cifar_resnet20_statistics_match_pytorch() {
    matches_pytorch("cifar_resnet20.res", "cifar_resnet20");
}

#[test]
fn shortcuts_are_told_apart() {
    let o = analyze_on_fixture(
        "cifar_resnet20.res",
        "cifar_resnet20",
        &["--format", "json"],
    );
    let kinds: Vec<String> = json(&o)["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["shortcut"].as_str().unwrap().to_string())
        .collect();
    // Option A: the first block of stages 2 and 3 subsamples and zero-pads.
    let mut expected = vec!["identity"; 9];
    expected[3] = "parameter-free";
    expected[6] = "parameter-free";
    assert_eq!(kinds, expected);
}

/// `tiny.res` has no parameters; its figures are derived by hand in the comments and are
/// exact in binary floating point. The golden JSON holds the whole document.
#[test]
fn tiny_network_by_hand_and_golden_json() {
    let o = resnetc(&[
        "analyze",
        "tests/ui/analyze/tiny.res",
        "--input",
        "tests/ui/analyze/tiny.input.npy",
        "--format",
        "json",
    ]);
    let v = json(&o);
    let b = &v["blocks"];
    // stage.0: y = relu(x) holds [1, 0, 3, 0] and [2, 2, 2, 2]; y + x holds [2, -1, 6, -3]
    // (mean 1, variance (1 + 4 + 25 + 16) / 4 = 11.5) and [4, 4, 4, 4].
    assert_eq!(b[0]["path"], "stage.0");
    assert_eq!(b[0]["mean_sq"], (1.0 + 16.0) / 2.0);
    assert_eq!(b[0]["var"], 11.5 / 2.0);
    // The residual branch relu(x): means 1 and 2, variances 1.5 and 0.
    assert_eq!(b[0]["residual_var"], 1.5 / 2.0);
    assert_eq!(b[0]["residual_mean_sq"], (1.0 + 4.0) / 2.0);
    // The shortcut x: means 0 and 2, variances 5 and 0.
    assert_eq!(b[0]["shortcut"], "identity");
    assert_eq!(b[0]["shortcut_var"], 5.0 / 2.0);
    // stage.1: maxpool then relu gives 6 and 4, the average pool 1 and 4; the sum 7 and 8.
    assert_eq!(b[1]["shortcut"], "parameter-free");
    assert_eq!(b[1]["mean_sq"], (49.0 + 64.0) / 2.0);
    assert_eq!(b[1]["var"], 0.0);
    assert_eq!(b[1]["residual_mean_sq"], (36.0 + 16.0) / 2.0);
    assert_eq!(b[1]["shortcut_mean_sq"], (1.0 + 16.0) / 2.0);
    let text = String::from_utf8(o.stdout).unwrap();
    if let Some(failure) =
        crate::ui::golden(&crate::root().join("tests/ui/analyze/tiny.json"), &text)
    {
        panic!("{failure}");
    }
}

/// The plain network of `small.res`: its graph has no add and no `downsample`, it checks, and
/// it has the residual network's parameters less the projection's 576 (see the file).
#[test]
fn plain_network_through_its_graph_and_check() {
    let rel = "tests/ui/analyze/small.res";
    let (source, file) = crate::check_text(rel, &crate::read(rel));
    let checked = &file.networks[0];
    let g = checked.graph.as_ref().unwrap();
    let plain = to_plain(g);
    assert_eq!(plain.n_removed, 2);
    let pg = &plain.graph;
    assert!(pg.node_ids().all(|id| pg.node(id).op != Op::Add));
    assert!(
        pg.node_ids()
            .all(|id| !pg.node(id).path.contains("downsample"))
    );
    let (shapes, diags) = resnetc::shape::infer(pg, &source);
    assert!(diags.is_empty(), "{diags:#?}");
    let plain_checked = resnetc::Checked {
        graph: Some(pg.clone()),
        shapes: Some(shapes.clone()),
        diagnostics: Vec::new(),
    };
    let params = |c: &resnetc::Checked| c.summary().unwrap().params.unwrap();
    assert_eq!(params(&plain_checked), params(checked) - 576);
    let plain_file = resnetc::CheckedFile {
        networks: vec![plain_checked],
        diagnostics: Vec::new(),
    };
    let (table, errors) =
        resnetc::cli::check::render_plain(&source, &plain_file, resnetc::cli::Format::Human);
    assert_eq!(errors, "");
    let dot = to_dot(pg, Some(&shapes), &[], &DotOptions { depth: None });
    let mut failures = Vec::new();
    failures.extend(crate::ui::golden(
        &crate::root().join("tests/ui/analyze/small.plain.stdout"),
        &table,
    ));
    failures.extend(crate::ui::golden(
        &crate::root().join("tests/ui/analyze/small.plain.dot"),
        &dot,
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The commands print the same.
    let o = resnetc(&["check", "--plain", rel]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8(o.stdout).unwrap(), table);
    let o = resnetc(&["graph", "--plain", rel]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8(o.stdout).unwrap(), dot);
}

#[test]
fn plain_run_has_no_shortcuts() {
    let o = analyze_on_fixture("resnet18.res", "resnet18", &["--plain", "--format", "json"]);
    let v = json(&o);
    assert_eq!(v["plain"], true);
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 8);
    for b in blocks {
        assert!(b["shortcut"].is_null(), "{b}");
        // The block output is relu(residual branch): its variance is below the branch's.
        assert!(b["var"].as_f64().unwrap() < b["residual_var"].as_f64().unwrap());
    }
}

/// The SVG is well-formed XML of the stated size with the title and axis texts; the PNG decodes
/// to the same size and is not blank.
#[test]
fn a_network_without_blocks_has_no_plot_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("plain.res");
    std::fs::write(
        &net,
        "network plain {\n    input x: [N, 3, 16, 16]\n    output x -> conv(8, k: 3, pad: 1) -> relu\n}\n",
    )
    .unwrap();
    let svg = dir.path().join("spp.svg");
    let args = ["analyze", net.to_str().unwrap(), "--random-input", "--plot"];
    let o = resnetc(&[&args[..], &[svg.to_str().unwrap()]].concat());
    assert_clean_failure(
        &o,
        1,
        "nothing to plot: network `plain` instantiates no block",
    );
    assert!(!svg.exists(), "an empty plot was written");
    // Without --plot the same analysis runs and says why its table is empty.
    let o = resnetc(&args[..3]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("(no blocks"));
}

#[test]
fn plots_render() {
    let dir = tempfile::tempdir().unwrap();
    let (svg, png) = (dir.path().join("spp.svg"), dir.path().join("spp.png"));
    for out in [&svg, &png] {
        let o = resnetc(&[
            "analyze",
            "tests/ui/analyze/small.res",
            "--random-input",
            "--batch",
            "2",
            "--plot",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(root.attribute("width"), Some("960"));
    assert_eq!(root.attribute("height"), Some("560"));
    let texts: Vec<String> = root
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .collect();
    for needle in [
        "small · weights from seed 0 · batch 2",
        "block depth",
        "average channel variance",
        "residual branch variance",
        "layer1",
    ] {
        assert!(
            texts.iter().any(|t| t == needle),
            "no `{needle}` in {texts:?}"
        );
    }
    let lines = root
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    assert!(lines >= 3, "the three curves are missing");

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (960, 560));
    let pixels = &buf[..info.buffer_size()];
    let dark = pixels
        .chunks(3)
        .filter(|p| p.iter().all(|&c| c < 100))
        .count();
    assert!(dark > 1000, "the PNG is (nearly) blank: {dark} dark pixels");
}

#[test]
fn bad_usage_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("out.pdf");
    let o = resnetc(&[
        "analyze",
        "tests/ui/analyze/tiny.res",
        "--random-input",
        "--plot",
        pdf.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, 2, "name it OUT.svg or OUT.png");
    // The plot never overwrites an input, here the source itself.
    let source = dir.path().join("net.svg");
    std::fs::copy(crate::root().join("tests/ui/analyze/tiny.res"), &source).unwrap();
    let before = std::fs::read(&source).unwrap();
    let o = resnetc(&[
        "analyze",
        source.to_str().unwrap(),
        "--random-input",
        "--plot",
        source.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, 2, "refusing to overwrite the input");
    assert_eq!(std::fs::read(&source).unwrap(), before);
    let missing = dir.path().join("no/such/dir/spp.svg");
    let o = resnetc(&[
        "analyze",
        "tests/ui/analyze/tiny.res",
        "--random-input",
        "--plot",
        missing.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, 2, "does not exist");
    // A network with errors is not run, and no plot is written.
    let svg = dir.path().join("spp.svg");
    let o = resnetc(&[
        "analyze",
        "tests/ui/shape/tutorial_block.res",
        "--random-input",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, 1, "error[E02");
    assert!(!svg.exists());
}

/// Rows are residual blocks: a block holding only residual blocks (a stage) is not a row, a
/// block nested in a residual block (a gate) is part of it, a block without an add (a stem)
/// is a row of its own.
#[test]
fn rows_are_residual_blocks() {
    let text = "
block stem { input x  output x -> conv(8, k: 3, pad: 1) -> relu }
block gate(c: int) { input x  g = x -> global_avgpool -> conv(c, k: 1) -> sigmoid  output x * g }
block unit(c: int) {
    input x
    y = x -> conv(c, k: 3, pad: 1) -> relu -> se: gate(c)
    output relu(y + x)
}
block stage(c: int) { input x  output x -> b: [unit(c) * 2] }
network net {
    input image: [N, 3, 8, 8]
    out = image -> head: stem -> s1: stage(8) -> s2: stage(8)
    output out
}";
    let (_, checked) = crate::check_one("rows.res", text);
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    let rows = resnetc::analyze::sites(checked.graph.as_ref().unwrap());
    let paths: Vec<(&str, &str, bool)> = rows
        .iter()
        .map(|r| (r.path.as_str(), r.block.as_str(), r.add.is_some()))
        .collect();
    assert_eq!(
        paths,
        [
            ("head", "stem", false),
            ("s1.b.0", "unit", true),
            ("s1.b.1", "unit", true),
            ("s2.b.0", "unit", true),
            ("s2.b.1", "unit", true),
        ]
    );
}
