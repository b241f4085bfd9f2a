//! Valid input sizes (`check --sizes`): the listed sets are exact. Each test re-checks the
//! network with the size written into the input declaration by the test itself (a text edit,
//! not resnetc's substitution) at every boundary of every progression, on both sides, at the
//! first failure and at a spread of other sizes; and compares with sets derived by hand from
//! the conv and pool arithmetic where the network allows it.

use resnetc::shape::sizes::{AxisSizes, SizeRange};
use resnetc::span::Source;

/// The valid sizes `check --sizes lo..hi` reports for the file's one network.
fn analyse(name: &str, text: &str, lo: u64, hi: u64) -> Vec<AxisSizes> {
    let (source, checked) = crate::check_text(name, text);
    assert!(!checked.has_errors(), "{name} must check as written");
    let opts = resnetc::summary::Options {
        sizes: Some(SizeRange { lo, hi }),
        ..Default::default()
    };
    let summaries = checked.summaries_with(&source, &opts);
    summaries[0].valid_sizes.clone().expect("sizes analysed")
}

/// The source with dimension `axis` (2 = H, 3 = W) of input `input`'s declaration set to
/// `size`: the test's own edit of the text.
fn with_size(text: &str, input: &str, axis: usize, size: u64) -> String {
    let decl = format!("input {input}: [");
    let start = text.find(&decl).expect("the input is declared") + decl.len();
    let end = start + text[start..].find(']').unwrap();
    let mut dims: Vec<String> = text[start..end]
        .split(',')
        .map(|d| d.trim().to_string())
        .collect();
    dims[axis] = size.to_string();
    format!("{}{}{}", &text[..start], dims.join(", "), &text[end..])
}

/// Every listed size as a set.
fn expand(values: &[[u64; 3]]) -> std::collections::BTreeSet<u64> {
    let mut set = std::collections::BTreeSet::new();
    for &[a, b, step] in values {
        assert!(
            a <= b && step >= 1,
            "malformed progression {a}..{b} step {step}"
        );
        assert!(
            (b - a) % step == 0,
            "{a}..{b} step {step} does not end on a step"
        );
        let mut v = a;
        while v <= b {
            set.insert(v);
            v += step;
        }
    }
    set
}

/// Re-check at the sizes where a wrong answer would show: both sides of every boundary of
/// every progression, the first failure, and about 40 others across the range.
fn verify(name: &str, text: &str, lo: u64, hi: u64) -> Vec<AxisSizes> {
    let report = analyse(name, text, lo, hi);
    for a in &report {
        let axis = if a.axis == "H" { 2 } else { 3 };
        let valid = expand(&a.values);
        let mut probe = std::collections::BTreeSet::new();
        for &[s, e, step] in &a.values {
            probe.extend([s, s + 1, s + step - 1, s + step, e, e + 1]);
            probe.extend([s.saturating_sub(1), e.saturating_sub(1)]);
        }
        let spread = (hi - lo) / 40 + 1;
        probe.extend(
            (lo..=hi)
                .step_by(spread as usize)
                .map(|v| v + (v * 7919) % spread),
        );
        probe.extend([lo, hi]);
        for size in probe.into_iter().filter(|v| (lo..=hi).contains(v)) {
            let edited = with_size(text, &a.input, axis, size);
            let source = Source::new(name, edited.as_str());
            let checked = resnetc::check_file_plain(&source, None);
            assert_eq!(
                !checked.has_errors(),
                valid.contains(&size),
                "{name}: {} {} = {size}: listed {:?}, but the edited file {}",
                a.input,
                a.axis,
                a.values,
                if checked.has_errors() {
                    "fails"
                } else {
                    "checks"
                }
            );
        }
        if let Some(f) = &a.first_failure {
            assert!(!valid.contains(&f.size));
            assert!(
                (lo..f.size).all(|v| valid.contains(&v)),
                "{name}: a failing size below the first failure {}",
                f.size
            );
            let edited = with_size(text, &a.input, axis, f.size);
            let (_, checked) = crate::check_text(name, &edited);
            assert!(
                checked.diagnostics.iter().any(|d| d.code == f.code),
                "{name}: {} {} = {}: {} is not among the diagnostics",
                a.input,
                a.axis,
                f.size,
                f.code.as_str()
            );
        } else {
            assert_eq!(valid.len() as u64, hi - lo + 1);
        }
    }
    report
}

fn values(report: &[AxisSizes], axis: &str) -> Vec<[u64; 3]> {
    report
        .iter()
        .find(|a| a.axis == axis)
        .unwrap()
        .values
        .clone()
}

/// ResNet-50 at 224: every downsampling op maps a size h to ceil(h / 2): the stem conv
/// (7x7/2, pad 3: floor((h + 6 - 7) / 2) + 1 = floor((h - 1) / 2) + 1), the max pool (3x3/2,
/// pad 1: floor((h - 1) / 2) + 1), the stride-2 3x3 convs (pad 1, same) and the 1x1/2
/// projections (pad 0: floor((h - 1) / 2) + 1). So both operands of every add have the same
/// size, and every window fits its padded input already at h = 1 (7 <= 1 + 6, 3 <= 1 + 2,
/// 1 <= 1). Every H and W from 1 checks.
#[test]
fn resnet50_accepts_every_size() {
    let text = crate::read("examples/resnet50.res");
    let report = verify("resnet50.res", &text, 1, 1024);
    assert_eq!(values(&report, "H"), vec![[1, 1024, 1]]);
    assert_eq!(values(&report, "W"), vec![[1, 1024, 1]]);
    assert!(
        report
            .iter()
            .all(|a| a.first_failure.is_none() && a.coupled_by.is_none())
    );
}

/// CIFAR ResNet-20: the option-A shortcut subsamples with stride 2 (ceil(h / 2) rows kept),
/// as the 3x3/2 pad-1 conv of the main path does: every size from 1 checks.
#[test]
fn cifar_resnet20_accepts_every_size() {
    let text = crate::read("examples/cifar_resnet20.res");
    let report = verify("cifar_resnet20.res", &text, 1, 256);
    assert_eq!(values(&report, "H"), vec![[1, 256, 1]]);
}

/// DenseNet-121: the stem gives ceil(H / 4) as ResNet's does; each of the three transitions
/// average-pools 2x2/2 without padding (floor(h / 2), and needs h >= 2). The third sees
/// floor(floor(ceil(H / 4) / 2) / 2) >= 2, i.e. ceil(H / 4) >= 8, i.e. H >= 29.
#[test]
fn densenet121_accepts_29_and_more() {
    let text = crate::read("examples/densenet121.res");
    let report = verify("densenet121.res", &text, 1, 300);
    assert_eq!(values(&report, "H"), vec![[29, 300, 1]]);
    let f = report[0].first_failure.as_ref().unwrap();
    assert_eq!((f.size, f.code.as_str()), (1, "E0206"));
}

/// ResNet-D: after the stem (ceil(H / 4)), three stages each add a 3x3/2 pad-1 conv (ceil(h /
/// 2)) to a 2x2/2 average pool (floor(h / 2)): equal only for even h. So ceil(H / 4), its half
/// and its quarter are even: ceil(H / 4) is a multiple of 8, i.e. H in 32k-3..32k.
#[test]
fn resnet_d_accepts_four_sizes_in_every_32() {
    let text = crate::read("tests/ui/sizes/resnet_d.res");
    let report = verify("resnet_d.res", &text, 1, 1024);
    let by_hand: Vec<[u64; 3]> = (29..=32).map(|s| [s, s + 992, 32]).collect();
    assert_eq!(values(&report, "H"), by_hand);
    assert_eq!(values(&report, "W"), by_hand);
    let f = report[0].first_failure.as_ref().unwrap();
    assert_eq!((f.size, f.code.as_str()), (1, "E0206"));
    // At 33 the pool still fits: the add is what fails.
    let (_, checked) = crate::check_text("d", &with_size(&text, "image", 2, 33));
    assert!(
        checked
            .diagnostics
            .iter()
            .any(|d| d.code.as_str() == "E0203")
    );
}

/// A flatten into a linear layer that states 8 * 16 * 24 = 3072 features, on a 32 x 48 input
/// (H and W differ): the 2x2/2 pool must give 16 rows (H in 32..33) with W as declared, and 24
/// columns (W in 48..49) with H as declared. The sizes are coupled through the flatten.
#[test]
fn flatten_into_linear_couples_the_axes() {
    let text = crate::read("tests/ui/sizes/flatten_linear.res");
    let report = verify("flatten_linear.res", &text, 1, 128);
    assert_eq!(values(&report, "H"), vec![[32, 33, 1]]);
    assert_eq!(values(&report, "W"), vec![[48, 49, 1]]);
    for a in &report {
        assert_eq!(a.coupled_by.as_deref(), Some("flatten#0"));
    }
    // Without stated features every size from 2 (the pool's window) checks, still coupled.
    let free = text.replace("linear(3072 -> 10)", "linear(10)");
    let report = verify("free.res", &free, 1, 128);
    assert_eq!(values(&report, "H"), vec![[2, 128, 1]]);
    assert!(report.iter().all(|a| a.coupled_by.is_some()));
}

/// A symbolic H and W: `check` analyses 1..1024 unasked (the other axis stays a symbol).
#[test]
fn symbolic_sizes_are_analysed_by_default() {
    let text = crate::read("tests/ui/sizes/symbolic.res");
    let (source, checked) = crate::check_text("symbolic.res", &text);
    let summaries = checked.summaries(&source);
    let s = &summaries[0];
    assert_eq!(s.sizes_range, Some(SizeRange { lo: 1, hi: 1024 }));
    // 5x5 conv: H - 4 >= 1; then the 2x2 pool: H - 4 >= 2.
    let report = verify("symbolic.res", &text, 1, 1024);
    assert_eq!(values(&report, "H"), vec![[6, 1024, 1]]);
    // A declared size is not analysed unless asked.
    let (source, plain) = crate::check_text("r", &crate::read("examples/resnet18.res"));
    assert!(plain.summaries(&source)[0].valid_sizes.is_none());
}

#[test]
fn sizes_flag_in_every_format_and_its_usage_errors() {
    let o = crate::cli::resnetc(&[
        "check",
        "tests/ui/sizes/resnet_d.res",
        "--sizes",
        "1..64",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let h = &v["network"]["valid_sizes"][0];
    assert_eq!(h["input"], "image");
    assert_eq!(h["axis"], "H");
    assert_eq!(h["values"], serde_json::json!([[29, 32, 1], [61, 64, 1]]));
    assert_eq!(h["first_failure"]["code"], "E0206");
    assert_eq!(h["first_failure"]["path"], "layer2.0.avgpool#0");
    let o = crate::cli::resnetc(&[
        "check",
        "tests/ui/sizes/resnet_d.res",
        "--sizes",
        "1..64",
        "--format",
        "yaml",
    ]);
    let y: serde_yaml::Value = serde_yaml::from_slice(&o.stdout).unwrap();
    assert_eq!(y["network"]["valid_sizes"][1]["axis"].as_str(), Some("W"));
    // The plain network is not the source's: its sizes are not analysed.
    let o = crate::cli::resnetc(&[
        "check",
        "--plain",
        "examples/resnet50.res",
        "--sizes",
        "1..8",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--plain"));
    for bad in ["0..4", "9..4", "x", "1..99999999999"] {
        let o = crate::cli::resnetc(&["check", "examples/resnet50.res", "--sizes", bad]);
        assert_eq!(o.status.code(), Some(2), "--sizes {bad}");
        assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    }
}

/// A network that decides its layers from `height(x)`: the graph itself changes with the
/// size, so sizes whose decision differs are checked in full. By hand: below 8 rows there is
/// no pool and the 4x4 conv needs H >= 4; from 8 the pool leaves floor(H / 2) >= 4. W never
/// changes the decision (H stays 16, pooled): floor(W / 2) >= 4, W >= 8.
#[test]
fn sizes_that_change_the_graph_are_checked_in_full() {
    let text = crate::read("tests/ui/sizes/introspect.res");
    let report = verify("introspect.res", &text, 1, 64);
    assert_eq!(values(&report, "H"), vec![[4, 64, 1]]);
    assert_eq!(values(&report, "W"), vec![[8, 64, 1]]);
    let f = report[0].first_failure.as_ref().unwrap();
    assert_eq!(
        (f.size, f.code.as_str(), f.path.as_str()),
        (1, "E0206", "conv#1")
    );
}
