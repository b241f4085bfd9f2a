//! Verified fixes, from the outside: generated networks (blocks, repetition, projections,
//! dilation, concat, squeeze-excitation gates of convs or of linear layers and `unflatten`) get
//! one injected shape bug; `resnetc check --format json` must report it, and every fix it
//! offers, applied by this test to the text, must make the file check clean when the CLI runs
//! on it again.

use proptest::prelude::*;
use std::process::Command;

/// `resnetc check - --format json` on a text: (exit code, document).
fn check_json(text: &str) -> (i32, serde_json::Value) {
    let out = crate::cli::resnetc_stdin(&["check", "-", "--format", "json"], text.as_bytes());
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), doc)
}

/// Apply a fix's edits (byte offsets into `text`) from the last to the first.
fn apply(text: &str, fix: &serde_json::Value) -> String {
    let mut edits: Vec<(usize, usize, String)> = fix["edits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["start"].as_u64().unwrap() as usize,
                e["end"].as_u64().unwrap() as usize,
                e["replacement"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (start, end, with) in edits {
        out.replace_range(start..end, &with);
    }
    out
}

/// A generated network, valid as written.
#[derive(Clone, Debug)]
struct Net {
    c0: u32,
    c1: u32,
    size: u32,
    r1: u32,
    r2: u32,
    growth: u32,
    dense: u32,
    se: bool,
    /// The gate of linear layers, reshaped by `unflatten` (with `se`).
    se_linear: bool,
    dilated: bool,
}

impl Net {
    fn text(&self) -> String {
        let se = if self.se && self.se_linear {
            "    g = y -> global_avgpool -> flatten -> fc1: linear(planes / 2) -> relu -> fc2: linear(planes) -> sigmoid\n          -> unflatten([planes, 1, 1])\n    z = y * g\n"
        } else if self.se {
            "    g = y -> global_avgpool -> fc1: conv(planes / 2, k: 1) -> relu -> fc2: conv(planes, k: 1) -> sigmoid\n    z = y * g\n"
        } else {
            "    z = y\n"
        };
        let dilated = if self.dilated {
            format!(", unit({}, dilation: 2)", self.c1)
        } else {
            String::new()
        };
        let features = self.c1 + self.growth * self.dense;
        format!(
            "block unit(planes: int, stride: int = 1, down: bool = false, dilation: int = 1) {{
    input x
    y = x -> conv1: conv(planes, k: 3, stride: stride, pad: dilation, dilation: dilation) -> bn1: batchnorm -> relu
          -> conv2: conv(planes, k: 3, pad: 1) -> bn2: batchnorm
{se}    shortcut = if down {{
        x -> downsample: [conv(planes, k: 1, stride: stride), batchnorm]
    }} else {{
        x
    }}
    output relu(z + shortcut)
}}

block dense(growth: int) {{
    input x
    output concat(x, x -> conv(growth, k: 3, pad: 1) -> relu)
}}

network gen {{
    input image: [N, 3, {s}, {s}]
    output image -> stem: conv(3 -> {c0}, k: 3, pad: 1) -> relu
        -> layer1: [unit({c0}) * {r1}]
        -> layer2: [unit({c1}, stride: 2, down: true){dilated}, unit({c1}) * {r2}]
        -> [dense({g}) * {d}]
        -> global_avgpool -> flatten -> fc: linear({features} -> 10)
}}
",
            s = self.size,
            c0 = self.c0,
            r1 = self.r1,
            c1 = self.c1,
            r2 = self.r2,
            g = self.growth,
            d = self.dense,
        )
    }
}

/// The bugs a person makes, as text edits of a valid network: `None` when the network has
/// no place for this one.
fn inject(net: &Net, text: &str, bug: u8) -> Option<String> {
    let once = |from: &str, to: &str| text.contains(from).then(|| text.replacen(from, to, 1));
    match bug {
        // A stage without its projection.
        0 => once(
            &format!("unit({}, stride: 2, down: true)", net.c1),
            &format!("unit({}, stride: 2)", net.c1),
        ),
        // A literal width from one instance inside the shared block.
        1 => once("conv2: conv(planes,", &format!("conv2: conv({},", net.c0)),
        // Padding that ignores the dilation.
        2 if net.dilated => once("pad: dilation,", "pad: 1,"),
        // A gate of the wrong width.
        3 if net.se => once("fc2: conv(planes, k: 1)", "fc2: conv(planes / 2, k: 1)"),
        // A projection without the stride.
        4 => once("conv(planes, k: 1, stride: stride)", "conv(planes, k: 1)"),
        // A repetition count that grows the concat too far.
        5 => once(
            &format!("dense({}) * {}", net.growth, net.dense),
            &format!("dense({}) * {}", net.growth, net.dense + 2),
        ),
        // An input declared with other channels.
        6 => once("input image: [N, 3,", "input image: [N, 4,"),
        // No pooling before the classifier.
        7 => once("global_avgpool -> flatten -> fc:", "flatten -> fc:"),
        // A linear gate reshaped to the wrong size.
        8 if net.se && net.se_linear => {
            once("unflatten([planes, 1, 1])", "unflatten([planes, 2, 1])")
        }
        _ => None,
    }
}

fn net() -> impl Strategy<Value = Net> {
    (
        (1..4u32, 1..4u32, 2..6u32),
        (1..3u32, 1..3u32, 1..4u32, 1..3u32),
        (any::<bool>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |((a, b, sz), (r1, r2, growth, dense), (se, se_linear, dilated))| Net {
                c0: 4 * a,
                c1: 4 * (a + b),
                size: 4 * sz,
                r1,
                r2,
                growth: 2 * growth,
                dense,
                se,
                se_linear,
                dilated,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_offered_fix_makes_the_file_check_clean(net in net(), bug in 0..9u8) {
        let valid = net.text();
        let (code, doc) = check_json(&valid);
        prop_assert_eq!(code, 0, "the generated network must check:\n{}\n{}", valid, doc);
        prop_assert_eq!(doc["diagnostics"].as_array().map(Vec::len), Some(0), "{}", doc);
        let Some(text) = inject(&net, &valid, bug) else {
            return Ok(());
        };
        let (code, doc) = check_json(&text);
        prop_assert_eq!(code, 1, "the bug must be reported:\n{}", text);
        for d in doc["diagnostics"].as_array().unwrap() {
            for fix in d["fixes"].as_array().unwrap() {
                let fixed = apply(&text, fix);
                let (code, after) = check_json(&fixed);
                prop_assert!(
                    code == 0 && after["diagnostics"].as_array().is_some_and(Vec::is_empty),
                    "fix {} of {} does not make the file check clean:\n{}\n{}",
                    fix["message"], d["message"], fixed, after["diagnostics"]
                );
            }
        }
    }
}

/// Each kind of bug gets the fix a person would make on one fixed network: as the best fix,
/// or, where another edit is as small and as right (the stated features of the classifier
/// for a repetition count; the stated input channels for a declaration), among the fixes.
#[test]
fn each_bug_gets_the_fix_a_person_would_make() {
    let net = Net {
        c0: 8,
        c1: 16,
        size: 16,
        r1: 2,
        r2: 1,
        growth: 4,
        dense: 2,
        se: true,
        se_linear: false,
        dilated: true,
    };
    let valid = net.text();
    let expected = [
        (0, "pass `down: true` to `unit(16, stride: 2)`", true),
        (1, "change `8` to `planes`", true),
        (2, "change `pad: 1` to `pad: dilation`", true),
        (3, "change `planes / 2` to `planes`", true),
        (4, "add `stride: stride`", true),
        (5, "repeat 2 times instead of 4", false),
        (6, "declare `image` with 3 channels", false),
        (7, "pool before flattening", true),
    ];
    let mut failures = Vec::new();
    for (bug, want, best) in expected {
        let text = inject(&net, &valid, bug).unwrap();
        let (_, doc) = check_json(&text);
        let offered: Vec<String> = doc["diagnostics"][0]["fixes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| f["message"].as_str().unwrap_or("").to_string())
            .collect();
        let found = if best {
            offered.first().is_some_and(|m| m.contains(want))
        } else {
            offered.iter().any(|m| m.contains(want))
        };
        if !found {
            failures.push(format!("bug {bug}: fixes {offered:?}, expected {want:?}"));
        }
    }
    // The gate of linear layers: its `unflatten` sizes.
    let linear = Net {
        se_linear: true,
        ..net
    };
    let text = inject(&linear, &linear.text(), 8).unwrap();
    let (_, doc) = check_json(&text);
    let best = doc["diagnostics"][0]["fixes"][0]["message"].as_str();
    if !best.is_some_and(|m| m.contains("change `[planes, 2, 1]` to `[planes, 1, 1]`")) {
        failures.push(format!("bug 8: best fix {best:?}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Errors that share a cause are one diagnostic, and every fix it offers, applied by this test,
/// clears them all; an edit that clears only one of them is not offered (applied alone, it
/// leaves an error).
#[test]
fn a_fix_for_errors_of_one_cause_clears_them_all() {
    let cases = [
        ("cause_input_declaration", Some(("3 -> 16", "4 -> 16"))),
        ("cause_swapped_input", None),
        ("cause_block_argument", Some(("64 -> 10", "32 -> 10"))),
        ("cause_call_argument_two_ops", None),
        ("cause_network_level_width", None),
        ("cause_concat_inputs", None),
    ];
    for (name, one_only) in cases {
        let path = crate::root().join(format!("tests/ui/shape/{name}.res"));
        let text = std::fs::read_to_string(path).unwrap();
        let (code, doc) = check_json(&text);
        assert_eq!(code, 1, "{name}: {doc}");
        let diags = doc["diagnostics"].as_array().unwrap();
        assert_eq!(
            diags.len(),
            1,
            "{name}: one diagnostic for one cause: {doc}"
        );
        let fixes = diags[0]["fixes"].as_array().unwrap();
        assert!(!fixes.is_empty(), "{name}: a verified fix: {doc}");
        for fix in fixes {
            let fixed = apply(&text, fix);
            let (code, after) = check_json(&fixed);
            assert!(
                code == 0 && after["diagnostics"].as_array().is_some_and(Vec::is_empty),
                "{name}: fix {} leaves {}",
                fix["message"],
                after["diagnostics"]
            );
        }
        if let Some((from, to)) = one_only {
            let edited = text.replacen(from, to, 1);
            assert_ne!(edited, text);
            assert_eq!(
                check_json(&edited).0,
                1,
                "{name}: `{to}` alone fixes one error"
            );
            assert!(
                fixes
                    .iter()
                    .all(|f| !f["message"].as_str().unwrap().contains(&format!("`{to}`"))),
                "{name}: a fix of one error only is offered: {doc}"
            );
        }
    }
}

/// `check --fix` on errors merged by their cause: one edit, every error gone.
#[test]
fn check_fix_clears_every_error_of_one_cause() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.res");
    let original = crate::read("tests/ui/shape/cause_input_declaration.res");
    std::fs::write(&path, &original).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .args(["check", path.to_str().unwrap(), "--fix"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let fixed = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        fixed,
        original.replace("input image: [N, 4, 64, 64]", "input image: [N, 3, 64, 64]")
    );
}
