//! The summary as torchinfo users read it: trainable and non-trainable counts against
//! PyTorch's own files and hand arithmetic, memory, receptive fields and effective strides
//! derived by hand, and the table grouped by stage and block at the depth asked for.

use resnetc::summary::{Group, Options, Summary};

fn with_summary<T>(file: &str, depth: Option<usize>, f: impl FnOnce(&Summary) -> T) -> T {
    let text = crate::read(file);
    let (source, checked) = crate::check_text(file, &text);
    assert!(!checked.has_errors(), "{file} must check");
    let opts = Options {
        depth,
        ..Default::default()
    };
    let summaries = checked.summaries_with(&source, &opts);
    f(&summaries[0])
}

fn group<'a>(s: &'a Summary, path: &str) -> &'a Group<'a> {
    s.groups.iter().find(|g| g.path == path).unwrap()
}

/// Trainable counts equal PyTorch's `sum(p.numel() for p in model.parameters())` (each
/// fixture's JSON); non-trainable counts equal the elements of the `running_mean` and
/// `running_var` tensors of the fixture's state_dict (its safetensors file, written by
/// PyTorch without `num_batches_tracked`); and the parameter memory equals the bytes of every
/// tensor in that file, all float32.
#[test]
fn counts_and_memory_equal_pytorchs_state_dict() {
    for (name, example) in [
        ("resnet18", "examples/resnet18.res"),
        ("cifar_resnet20", "examples/cifar_resnet20.res"),
        ("mobilenet_v2", "examples/mobilenet_v2.res"),
        ("densenet121", "examples/densenet121.res"),
        ("efficientnet_b0", "examples/efficientnet_b0.res"),
    ] {
        let fixtures = crate::root().join("../shared/fixtures");
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixtures.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        let bytes = std::fs::read(fixtures.join(format!("{name}.safetensors"))).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let numel = |k: &str| st.tensor(k).unwrap().shape().iter().product::<usize>() as u64;
        let names = st.names();
        let running: u64 = names
            .iter()
            .filter(|k| k.ends_with(".running_mean") || k.ends_with(".running_var"))
            .map(|k| numel(k))
            .sum();
        let data_bytes: u64 = names.iter().map(|k| numel(k) * 4).sum();
        with_summary(example, None, |s| {
            assert_eq!(s.params, meta["param_count"].as_u64(), "{name} trainable");
            assert_eq!(
                s.non_trainable_params,
                Some(running),
                "{name} non-trainable"
            );
            assert_eq!(s.param_mb.map(|m| m.0), Some(data_bytes), "{name} bytes");
        });
    }
}

/// By hand: ResNet-18's batchnorms have 64 (stem) + 4 x 64 + 5 x 128 + 5 x 256 + 5 x 512
/// channels (four per stage, and a projection's in stages 2-4) = 4,800; running mean and
/// variance are 2 x 4,800 = 9,600. ResNet-50's: the stem's 64, then per block 6 x planes
/// (bn1, bn2: planes; bn3: 4 planes) and per stage 4 x planes for the projection, that is
/// 64 plus (3 x 6 + 4) x 64, (4 x 6 + 4) x 128, (6 x 6 + 4) x 256 and (3 x 6 + 4) x 512:
/// 26,560 channels, so 53,120. ResNet-18's layer1 holds four 3x3 convs of 64 x 64
/// (147,456) and four batchnorms (512).
#[test]
fn non_trainable_counts_by_hand() {
    with_summary("examples/resnet18.res", None, |s| {
        assert_eq!(s.params, Some(11_689_512));
        assert_eq!(s.non_trainable_params, Some(9_600));
        // (11,689,512 + 9,600) x 4 bytes.
        assert_eq!(s.param_mb.map(|m| m.0), Some(46_796_448));
        let l1 = group(s, "layer1");
        assert_eq!(l1.counts.params, Some(147_968));
        assert_eq!(l1.counts.non_trainable, Some(4 * 2 * 64));
        // Activations of the stem conv: 64 x 112 x 112 floats.
        let conv1 = s.layers.iter().find(|l| l.path == "conv1").unwrap();
        assert_eq!(conv1.activation_mb.map(|m| m.0), Some(64 * 112 * 112 * 4));
    });
    with_summary("examples/resnet50.res", None, |s| {
        assert_eq!(s.params, Some(25_557_032));
        assert_eq!(s.non_trainable_params, Some(53_120));
    });
}

/// ResNet-18 by the recurrence r_out = r_in + (k - 1) * dilation * j_in, j_out = j_in * s:
/// stem conv 7x7/2: r 7, j 2; max pool 3x3/2: r 7 + 2 x 2 = 11, j 4. Each basic block adds
/// two 3x3 convs, 2 x j each, the first of stages 2-4 with stride 2 (the 1x1 projection adds
/// nothing and sees less). layer1: 11 + 4 x (2 x 4) = 43, j 4. layer2: 43 + 2 x 4 (the
/// strided conv, at j 4) + 3 x 2 x 8 = 99, j 8. layer3: 99 + 2 x 8 + 3 x 2 x 16 = 211, j 16.
/// layer4: 211 + 2 x 16 + 3 x 2 x 32 = 435, j 32.
#[test]
fn resnet18_receptive_fields_by_hand() {
    with_summary("examples/resnet18.res", None, |s| {
        for (stage, rf, jump) in [
            ("layer1", 43, 4),
            ("layer2", 99, 8),
            ("layer3", 211, 16),
            ("layer4", 435, 32),
        ] {
            let g = group(s, stage);
            assert_eq!(g.receptive_field, Some([rf, rf]), "{stage}");
            assert_eq!(g.jump, Some([jump, jump]), "{stage}");
        }
        // layer2.0 alone: its strided conv at 43 + 8 = 51, then 51 + 2 x 8 = 67.
        assert_eq!(group(s, "layer2.0").receptive_field, Some([67, 67]));
        // After the global pool there is no field.
        let fc = s.layers.iter().find(|l| l.path == "fc").unwrap();
        assert_eq!(fc.receptive_field, None);
    });
}

/// Rectangular windows give each axis its own field: a 1x7 conv then a 7x1 conv see 7 x 7.
#[test]
fn rectangular_windows_have_fields_per_axis() {
    let text = "network f {
        input x: [N, 8, 17, 17]
        output x -> conv(8, k: [1, 7], pad: [0, 3]) -> conv(8, k: [3, 1], stride: [2, 1], pad: [1, 0])
    }";
    let (source, checked) = crate::check_text("f.res", text);
    let summaries = checked.summaries(&source);
    let s = &summaries[0];
    assert_eq!(s.layers[0].receptive_field, Some([1, 7]));
    assert_eq!(s.layers[1].receptive_field, Some([3, 7]));
    assert_eq!(s.layers[1].jump, Some([2, 1]));
}

/// The table at depth 0 has a row per stage, at the default depth also one per block
/// instance, at depth 2 the ops inside; ResNet-152's default table fits on a screen or two.
#[test]
fn table_depth_groups_by_stage_and_block() {
    let table = |depth| with_summary("examples/resnet152.res", depth, |s| s.to_table());
    let rows = |t: &str, prefix: &str| {
        t.lines()
            .filter(|l| l.trim_start().starts_with(prefix))
            .count()
    };
    let shallow = table(Some(0));
    assert_eq!(rows(&shallow, "layer3 "), 1);
    assert!(shallow.contains("bottleneck × 36"));
    assert_eq!(rows(&shallow, "layer3."), 0);
    let default = table(None);
    assert_eq!(rows(&default, "layer3."), 36, "{default}");
    assert_eq!(rows(&default, "layer3.0.conv1"), 0);
    // 4 stem ops, 4 stages, 50 blocks, 3 head ops.
    let n_rows = default
        .lines()
        .filter(|l| l.contains("[N, ") && !l.starts_with("  input") && !l.starts_with("  output"))
        .count();
    assert_eq!(n_rows, 4 + 4 + 50 + 3, "{default}");
    let deep = table(Some(2));
    assert_eq!(rows(&deep, "layer3.0.conv1 "), 1);
    assert_eq!(rows(&deep, "layer3.0.downsample "), 1);
    assert_eq!(rows(&deep, "layer3.0.downsample.0"), 0);
    // Every depth shows the same totals.
    for t in [&shallow, &default, &deep] {
        assert!(t.contains("total params: 60,192,808 trainable"), "{t}");
    }
}

#[test]
fn depth_flag_and_json_groups() {
    let o = crate::cli::resnetc(&["check", "examples/resnet18.res", "--depth", "0"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("layer4            basic × 2"), "{out}");
    assert!(!out.contains("layer4.0"), "{out}");
    let o = crate::cli::resnetc(&["check", "examples/resnet18.res", "--format", "yaml"]);
    let y: serde_yaml::Value = serde_yaml::from_slice(&o.stdout).unwrap();
    let net = &y["network"];
    assert_eq!(net["non_trainable_params"].as_u64(), Some(9_600));
    let groups = net["groups"].as_sequence().unwrap();
    let l4 = groups.iter().find(|g| g["path"] == "layer4").unwrap();
    assert_eq!(l4["kind"].as_str(), Some("sequence"));
    assert_eq!(l4["level"].as_u64(), Some(1));
    assert_eq!(l4["jump"][0].as_u64(), Some(32));
    let b = groups.iter().find(|g| g["path"] == "layer4.1").unwrap();
    assert_eq!(b["block"].as_str(), Some("basic"));
    assert_eq!(b["level"].as_u64(), Some(2));
    let o = crate::cli::resnetc(&["check", "examples/resnet18.res", "--depth", "x"]);
    assert_eq!(o.status.code(), Some(2));
}
