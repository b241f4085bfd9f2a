//! Every example checks cleanly, and its totals equal the published torchvision figures.
//! Expected numbers come from torchvision's documentation and hand-derived arithmetic.

/// What the tests read of a summary, owned.
struct Summary {
    params: u64,
    macs: u64,
    layers: Vec<Layer>,
}

struct Layer {
    path: String,
    op: &'static str,
    dims: Vec<u64>,
    params: u64,
    macs: u64,
}

/// Check one network of an example file; panic with the diagnostics if it has any.
fn summary(file: &str, network: Option<&str>) -> Summary {
    summary_of(
        &format!("examples/{file}"),
        &crate::read(format!("examples/{file}")),
        network,
    )
}

fn summary_of(name: &str, text: &str, network: Option<&str>) -> Summary {
    let source = resnetc::span::Source::new(name, text);
    let checked = resnetc::check(&source, network);
    assert!(
        checked.diagnostics.is_empty(),
        "{name}: {:#?}",
        checked.diagnostics
    );
    let s = checked.summary().expect("a checked network has a summary");
    Summary {
        params: s.params.expect("every size is known"),
        macs: s.macs.expect("every size is known"),
        layers: s
            .layers
            .iter()
            .map(|l| Layer {
                path: l.path.to_string(),
                op: l.op,
                dims: l.shape.concrete(1).expect("known sizes"),
                params: l.params.expect("every size is known"),
                macs: l.macs.expect("every size is known"),
            })
            .collect(),
    }
}

/// The network names a file defines, from its `network NAME` lines.
fn networks(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("network "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn every_example_checks_without_errors_or_warnings() {
    let mut n_checked = 0;
    for entry in std::fs::read_dir(crate::root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "res") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        for net in networks(&text) {
            summary(&name, Some(&net));
            n_checked += 1;
        }
    }
    assert!(n_checked >= 16, "only {n_checked} example networks found");
}

#[test]
fn totals_equal_published_torchvision_figures() {
    // torchvision's model documentation (224x224, 1000 classes); CIFAR figures from He et al.
    // 2015 option A (0.27M and 0.85M) with MACs derived by hand from the architecture.
    let table = [
        ("resnet18.res", 11_689_512, 1_814_073_344),
        ("resnet34.res", 21_797_672, 3_663_761_408),
        ("resnet50.res", 25_557_032, 4_089_184_256),
        ("resnet101.res", 44_549_160, 7_801_405_440),
        ("resnet152.res", 60_192_808, 11_513_626_624),
        ("cifar_resnet20.res", 269_722, 40_551_040),
        ("cifar_resnet56.res", 853_018, 125_485_696),
    ];
    for (file, params, macs) in table {
        let s = summary(file, None);
        assert_eq!((s.params, s.macs), (params, macs), "{file}");
    }
    // torchvision documents these two with exact parameters and MACs to three significant
    // digits ("GFLOPS" 4.23 and 11.4, which count multiply-adds): within half a unit of the
    // last published digit.
    for (file, params, gmacs, half_unit) in [
        ("resnext50_32x4d.res", 25_028_904, 4.23, 0.005),
        ("wide_resnet50_2.res", 68_883_240, 11.4, 0.05),
    ] {
        let s = summary(file, None);
        assert_eq!(s.params, params, "{file}");
        let g = s.macs as f64 / 1e9;
        assert!(
            (g - gmacs).abs() <= half_unit,
            "{file}: {g} GMACs, published {gmacs}"
        );
    }
}

#[test]
fn parameter_count_of_fixtures_matches() {
    // ../shared/fixtures/*.json record PyTorch's own count: sum(p.numel() for p in parameters()).
    for (file, fixture) in [
        ("resnet18.res", "resnet18.json"),
        ("cifar_resnet20.res", "cifar_resnet20.json"),
    ] {
        let path = crate::root().join("../shared/fixtures").join(fixture);
        let Ok(json) = std::fs::read_to_string(&path) else {
            panic!(
                "{} is missing: the tests need ../shared/fixtures",
                path.display()
            );
        };
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            summary(file, None).params,
            v["param_count"].as_u64().unwrap(),
            "{file}"
        );
    }
}

#[test]
fn se_resnet50_adds_the_gates_to_resnet50() {
    // Each gate on C channels adds a C -> C/16 and a C/16 -> C 1x1 conv with biases:
    // 2 * C * C/16 + C/16 + C. Stages: C = 256 (3 blocks), 512 (4), 1024 (6), 2048 (3):
    // 3 * 8,464 + 4 * 33,312 + 6 * 132,160 + 3 * 526,464 = 2,530,992 over ResNet-50's
    // 25,557,032 = 28,088,024 (the paper's 28.09M).
    let gate = |c: u64| 2 * c * (c / 16) + c / 16 + c;
    let extra = 3 * gate(256) + 4 * gate(512) + 6 * gate(1024) + 3 * gate(2048);
    assert_eq!(extra, 2_530_992);
    assert_eq!(summary("se_resnet50.res", None).params, 25_557_032 + extra);
}

#[test]
fn resnet18_conv1_costs() {
    // 64 * 3 * 7 * 7 = 9,408 weights; 64 * 112 * 112 outputs * 147 MACs = 118,013,952.
    let s = summary("resnet18.res", None);
    let conv1 = s.layers.iter().find(|l| l.path == "conv1").unwrap();
    assert_eq!((conv1.params, conv1.macs), (9_408, 118_013_952));
}

#[test]
fn resnet18_stage_sizes_follow_the_input_size() {
    // Stem: conv 7x7/2 pad 3, then maxpool 3x3/2 pad 1; each later stage halves with a 3x3/2
    // pad 1 conv: floor((n + 2 - 3) / 2) + 1. At 224: 112, 56 | 56, 28, 14, 7.
    // At 225: 113, 57 | 57, 29, 15, 8.
    let text = crate::read("examples/resnet18.res");
    for (size, expected) in [(224, [56, 28, 14, 7]), (225, [57, 29, 15, 8])] {
        let text = text.replace("[N, 3, 224, 224]", &format!("[N, 3, {size}, {size}]"));
        let s = summary_of("resnet18.res", &text, None);
        for (stage, want) in expected.iter().enumerate() {
            // The stage's output is the last op of its last block: the ReLU after the add.
            let layer = s
                .layers
                .iter()
                .rfind(|l| l.path.starts_with(&format!("layer{}.1.", stage + 1)))
                .unwrap();
            assert_eq!(layer.op, "relu");
            let dims = &layer.dims;
            assert_eq!(
                (dims[2], dims[3]),
                (*want, *want),
                "stage {} at {size}",
                stage + 1
            );
        }
    }
}

#[test]
fn identity_mapping_unit_orders_share_parameters_but_not_graphs() {
    // Per unit: two 3x3 convs (2 * 9 * c * c) and two batchnorms (2 * 2 * c), three units per
    // stage at c = 16, 32, 64: 14,016 + 55,680 + 221,952. Stem conv + bn: 432 + 32. Transitions
    // (1x1 conv + bn): 512 + 64 and 2,048 + 128. Classifier 64 * 10 + 10. Total 295,514.
    let nets = [
        "original_net",
        "bn_after_add_net",
        "relu_before_add_net",
        "relu_preact_net",
        "full_preact_net",
    ];
    let mut op_orders = Vec::new();
    for net in nets {
        let s = summary("identity_mappings.res", Some(net));
        assert_eq!(s.params, 295_514, "{net}");
        let order: Vec<&str> = s
            .layers
            .iter()
            .filter(|l| l.path.starts_with("layer1.0."))
            .map(|l| l.op)
            .collect();
        op_orders.push(order);
    }
    for i in 0..op_orders.len() {
        for j in i + 1..op_orders.len() {
            assert_ne!(
                op_orders[i], op_orders[j],
                "{} and {} have the same unit",
                nets[i], nets[j]
            );
        }
    }
}

/// Every `res` snippet of the docs checks cleanly, or gives exactly the codes its first line
/// states (`# warning: W0101`); snippets of README.md too. Keeps the docs true.
#[test]
fn documentation_snippets_check() {
    let mut n_snippets = 0;
    for doc in ["docs/language.md", "README.md"] {
        let text = crate::read(doc);
        let mut rest = text.as_str();
        while let Some(start) = rest.find("```res\n") {
            let body_start = start + "```res\n".len();
            let len = rest[body_start..].find("```").expect("a closed code block");
            let snippet = &rest[body_start..body_start + len];
            rest = &rest[body_start + len + 3..];
            n_snippets += 1;
            let expected: Vec<&str> = snippet
                .lines()
                .next()
                .and_then(|l| {
                    l.strip_prefix("# warning:")
                        .or_else(|| l.strip_prefix("# error:"))
                })
                .map(|codes| codes.split_whitespace().collect())
                .unwrap_or_default();
            let source = resnetc::span::Source::new(doc, snippet);
            let file = resnetc::syntax::parse(snippet)
                .unwrap_or_else(|d| panic!("{doc}: {d:?}\n{snippet}"));
            // A snippet may hold several networks, or only blocks (then there is nothing to lower).
            let networks: Vec<String> = file.networks.iter().map(|n| n.name.name.clone()).collect();
            for net in &networks {
                let checked = resnetc::check(&source, Some(net));
                let mut codes: Vec<&str> = checked
                    .diagnostics
                    .iter()
                    .map(|d| d.code.as_str())
                    .collect();
                codes.dedup();
                assert_eq!(codes, expected, "{doc}, network `{net}`:\n{snippet}");
            }
        }
    }
    assert!(n_snippets >= 10, "only {n_snippets} snippets found");
}

#[test]
fn resnet18_op_counts() {
    // Stem conv + 8 blocks x 2 convs + 3 projections = 20 convs, each followed by a batchnorm;
    // ReLU after the stem and twice per block = 17; one residual add per block = 8.
    let source = resnetc::span::Source::new("resnet18.res", crate::read("examples/resnet18.res"));
    let checked = resnetc::check(&source, None);
    let s = checked.summary().unwrap();
    let counts: Vec<(&str, usize)> = s.ops.iter().map(|(op, n)| (*op, *n)).collect();
    assert_eq!(
        counts,
        [
            ("add", 8),
            ("batchnorm", 20),
            ("conv", 20),
            ("flatten", 1),
            ("global_avgpool", 1),
            ("linear", 1),
            ("maxpool", 1),
            ("relu", 17)
        ]
    );
    assert_eq!(s.blocks.get("basic"), Some(&8));
}

mod families;

#[test]
fn inception_resnet_block17_has_its_parameters_by_hand_and_the_ports_keys() {
    let s = summary("inception_resnet_block17.res", None);
    // A conv-batchnorm-ReLU unit: c_out * c_in * k_h * k_w weights, no bias, and a weight and
    // a bias per channel for the batchnorm.
    let basic = |c_in: u64, c_out: u64, k_h: u64, k_w: u64| c_out * c_in * k_h * k_w + 2 * c_out;
    // Block17 on 1088 channels: branch0 a 1x1 to 192 (208,896 + 384); branch1 a 1x1 to 128
    // (139,264 + 256), a 1x7 to 160 (143,360 + 320) and a 7x1 to 192 (215,040 + 384); the
    // 1x1 projection of the 192 + 192 concatenated channels back to 1088, with bias
    // (417,792 + 1,088). 1,126,784 in all.
    let block17 = basic(1088, 192, 1, 1)
        + basic(1088, 128, 1, 1)
        + basic(128, 160, 1, 7)
        + basic(160, 192, 7, 1)
        + (384 * 1088 + 1088);
    assert_eq!(block17, 1_126_784);
    // Stem 3x3 to 64 (1,728 + 128), 1x1 to 1088 (69,632 + 2,176), three Block17, a linear
    // head 1088 -> 10 with bias (10,890): 3,464,906.
    let total = basic(3, 64, 3, 3) + basic(64, 1088, 1, 1) + 3 * block17 + (1088 * 10 + 10);
    assert_eq!(total, 3_464_906);
    assert_eq!(s.params, total);
    // 17 x 17 after the stem's 3x3 at stride 2 without padding: (35 - 3) / 2 + 1.
    let last = s.layers.iter().rev().find(|l| l.op == "relu").unwrap();
    assert_eq!(last.dims, [1, 1088, 17, 17]);
    // The common PyTorch port's Block17 (tests/py/block17.py) has the same parameters under
    // the same names.
    let out = std::process::Command::new(crate::python())
        .arg(crate::root().join("tests/py/block17.py"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(port["params"].as_u64(), Some(block17));
    let text = crate::read("examples/inception_resnet_block17.res");
    let (_, checked) = crate::check_one("inception_resnet_block17.res", &text);
    let net = checked.network().unwrap();
    let ours: Vec<String> = resnetc::interp::weights::expected(net.graph(), net.shapes())
        .into_iter()
        .filter_map(|e| e.key.strip_prefix("repeat_1.1.").map(str::to_string))
        .collect();
    let theirs: Vec<String> = port["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ours, theirs);
}

#[test]
fn inception_resnet_block17_runs_on_a_random_input() {
    let o = crate::cli::resnetc(&[
        "run",
        "examples/inception_resnet_block17.res",
        "--random-input",
        "--batch",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", crate::cli::stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("output logits: [2, 10]"), "{out}");
}
mod unet;
