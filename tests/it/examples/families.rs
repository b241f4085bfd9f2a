//! The networks beyond ResNet (DenseNet, MobileNetV2, EfficientNet, ...): parameter keys equal
//! torchvision's state_dict keys (from the fixtures' JSON, made by PyTorch), parameter counts
//! equal the published figures, and MACs equal a count derived here by hand from each
//! architecture's published configuration table.

use super::summary;

/// The fixture's JSON, made by PyTorch: `../shared/fixtures/MODEL.json`.
fn fixture_json(model: &str) -> serde_json::Value {
    let path = crate::root()
        .join("../shared/fixtures")
        .join(format!("{model}.json"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        panic!(
            "{} is missing: the tests need ../shared/fixtures",
            path.display()
        );
    };
    serde_json::from_str(&text).unwrap()
}

/// The parameter keys an example expects, in graph order.
fn parameter_keys(file: &str) -> Vec<String> {
    let source = resnetc::span::Source::new(file, crate::read(format!("examples/{file}")));
    let checked = resnetc::check(&source, None);
    assert!(checked.diagnostics.is_empty(), "{:#?}", checked.diagnostics);
    let (g, shapes) = (
        checked.graph.as_ref().unwrap(),
        checked.shapes.as_ref().unwrap(),
    );
    resnetc::interp::weights::expected(g, shapes)
        .into_iter()
        .map(|e| e.key)
        .collect()
}

/// The example's keys are torchvision's, in torchvision's module order.
fn keys_equal_torchvision(file: &str, model: &str) {
    let json = fixture_json(model);
    let torchvision: Vec<String> = json["state_dict_keys_in_module_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let ours = parameter_keys(file);
    let first_difference = ours
        .iter()
        .zip(&torchvision)
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(torchvision.len()));
    assert_eq!(
        (ours.len(), first_difference),
        (torchvision.len(), torchvision.len()),
        "{file}: first difference at key {first_difference}: ours {:?}, torchvision {:?}",
        ours.get(first_difference),
        torchvision.get(first_difference)
    );
}

#[test]
fn densenet121_matches_torchvision() {
    keys_equal_torchvision("densenet121.res", "densenet121");
    let s = summary("densenet121.res", None);
    // torchvision's documentation: 7,978,856 parameters; the fixture's count is PyTorch's own.
    assert_eq!(s.params, 7_978_856);
    assert_eq!(
        s.params,
        fixture_json("densenet121")["param_count"].as_u64().unwrap()
    );

    // MACs from the configuration (Huang et al. 2017, table 1; growth 32, bottleneck 4 * 32
    // = 128, blocks of 6, 12, 24, 16 layers at 56, 28, 14, 7 pixels, 64 stem channels,
    // compression 0.5). Stem: 7x7 conv 3 -> 64 at 112x112.
    let mut macs: u64 = 3 * 49 * 64 * 112 * 112;
    // Batchnorm learnable parameters, for the comparison with torchinfo below.
    let mut bn_params: u64 = 2 * 64;
    let mut c = 64;
    for (block, (n_layers, size)) in [(6, 56), (12, 28), (24, 14), (16, 7)].iter().enumerate() {
        let pixels = size * size;
        for _ in 0..*n_layers {
            // 1x1 conv c -> 128 then 3x3 conv 128 -> 32; two batchnorms, on c and 128.
            macs += (c * 128 + 9 * 128 * 32) * pixels;
            bn_params += 2 * (c + 128);
            c += 32;
        }
        if block < 3 {
            // Transition: batchnorm on c, 1x1 conv c -> c / 2 before the 2x2 average pool.
            macs += c * (c / 2) * pixels;
            bn_params += 2 * c;
            c /= 2;
        }
    }
    assert_eq!(c, 1024);
    bn_params += 2 * 1024; // norm5
    macs += 1024 * 1000; // classifier
    assert_eq!(s.macs, macs);

    // torchinfo (the fixture's `torchinfo_mult_adds`) also counts, for every layer that is not
    // a conv, one multiply-add per learnable parameter: each batchnorm's weight and bias, and
    // the classifier's bias. Conv and linear weights count the same in both conventions.
    let torchinfo = fixture_json("densenet121")["torchinfo_mult_adds"]
        .as_u64()
        .unwrap();
    assert_eq!(torchinfo, macs + bn_params + 1000);
}

/// `floor((size + 2 pad - k) / stride) + 1`, the conv output size, for the hand derivations.
fn conv_out(size: u64, k: u64, stride: u64) -> u64 {
    (size + 2 * (k / 2) - k) / stride + 1
}

#[test]
fn mobilenet_v2_matches_torchvision() {
    keys_equal_torchvision("mobilenet_v2.res", "mobilenet_v2");
    let s = summary("mobilenet_v2.res", None);
    // torchvision's documentation: 3,504,872 parameters.
    assert_eq!(s.params, 3_504_872);
    assert_eq!(
        s.params,
        fixture_json("mobilenet_v2")["param_count"]
            .as_u64()
            .unwrap()
    );

    // MACs from the paper's table 2 (Sandler et al. 2018): rows of expansion t, channels c,
    // repeats n, stride s. Stem: 3x3 conv 3 -> 32, stride 2, at 112x112.
    let mut macs: u64 = 9 * 3 * 32 * 112 * 112;
    let mut bn_params: u64 = 2 * 32;
    let (mut c_in, mut size) = (32, 112);
    let table = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ];
    for (t, c, n, s) in table {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let hidden = c_in * t;
            if t != 1 {
                // 1x1 expansion at the input size.
                macs += c_in * hidden * size * size;
                bn_params += 2 * hidden;
            }
            // 3x3 depthwise: 9 MACs per output; then the 1x1 projection.
            size = conv_out(size, 3, stride);
            macs += 9 * hidden * size * size + hidden * c * size * size;
            bn_params += 2 * hidden + 2 * c;
            c_in = c;
        }
    }
    assert_eq!(size, 7);
    // Head: 1x1 conv 320 -> 1280 at 7x7, then the classifier 1280 -> 1000.
    macs += 320 * 1280 * 49 + 1280 * 1000;
    bn_params += 2 * 1280;
    assert_eq!(s.macs, macs);
    // torchinfo also counts one multiply-add per batchnorm weight and bias and per classifier
    // bias (see the DenseNet test).
    let torchinfo = fixture_json("mobilenet_v2")["torchinfo_mult_adds"]
        .as_u64()
        .unwrap();
    assert_eq!(torchinfo, macs + bn_params + 1000);
}

#[test]
fn efficientnet_b0_matches_torchvision() {
    keys_equal_torchvision("efficientnet_b0.res", "efficientnet_b0");
    let s = summary("efficientnet_b0.res", None);
    // torchvision's documentation: 5,288,548 parameters.
    assert_eq!(s.params, 5_288_548);
    assert_eq!(
        s.params,
        fixture_json("efficientnet_b0")["param_count"]
            .as_u64()
            .unwrap()
    );

    // MACs from the paper's table 1 (Tan and Le 2019): rows of expansion t, kernel k, stride
    // s, channels c, repeats n. Stem: 3x3 conv 3 -> 32, stride 2, at 112x112.
    let mut macs: u64 = 9 * 3 * 32 * 112 * 112;
    let (mut bn_params, mut se_biases): (u64, u64) = (2 * 32, 0);
    let (mut c_in, mut size) = (32, 112);
    let table = [
        (1, 3, 1, 16, 1),
        (6, 3, 2, 24, 2),
        (6, 5, 2, 40, 2),
        (6, 3, 2, 80, 3),
        (6, 5, 1, 112, 3),
        (6, 5, 2, 192, 4),
        (6, 3, 1, 320, 1),
    ];
    for (t, k, s, c, n) in table {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let hidden = c_in * t;
            // The gate squeezes to a quarter of the block's input channels (at least 1).
            let squeeze = (c_in / 4).max(1);
            if t != 1 {
                macs += c_in * hidden * size * size;
                bn_params += 2 * hidden;
            }
            size = conv_out(size, k, stride);
            // k x k depthwise; the gate's two 1x1 convs on 1x1 maps; the 1x1 projection.
            macs += k * k * hidden * size * size + 2 * hidden * squeeze + hidden * c * size * size;
            bn_params += 2 * hidden + 2 * c;
            se_biases += squeeze + hidden;
            c_in = c;
        }
    }
    assert_eq!(size, 7);
    macs += 320 * 1280 * 49 + 1280 * 1000;
    bn_params += 2 * 1280;
    assert_eq!(s.macs, macs);
    // torchinfo also counts one multiply-add per batchnorm weight and bias, per bias of the
    // gates' convs (their output is 1x1) and per classifier bias.
    let torchinfo = fixture_json("efficientnet_b0")["torchinfo_mult_adds"]
        .as_u64()
        .unwrap();
    assert_eq!(torchinfo, macs + bn_params + se_biases + 1000);
}

#[test]
fn se_resnet50_with_linear_gates_adds_the_gates_to_resnet50() {
    // Each gate on C channels: linear C -> C/16 and C/16 -> C with biases, as in the paper:
    // 2 * C * C/16 + C/16 + C parameters and 2 * C * C/16 MACs. Stages: C = 256 (3 blocks),
    // 512 (4), 1024 (6), 2048 (3), over torchvision's ResNet-50 (25,557,032 parameters,
    // 4,089,184,256 MACs): the paper's 28.09M parameters.
    let stages = [(256u64, 3u64), (512, 4), (1024, 6), (2048, 3)];
    let params: u64 = stages
        .iter()
        .map(|&(c, n)| n * (2 * c * (c / 16) + c / 16 + c))
        .sum();
    let macs: u64 = stages.iter().map(|&(c, n)| n * 2 * c * (c / 16)).sum();
    let s = summary("se_resnet50_linear.res", None);
    assert_eq!(s.params, 25_557_032 + params);
    assert_eq!(s.params, 28_088_024);
    assert_eq!(s.macs, 4_089_184_256 + macs);
    // The gate is [N, C, 1, 1] again after `unflatten`, as `x * gate` needs.
    let gate = s
        .layers
        .iter()
        .find(|l| l.path == "layer1.0.se.unflatten#0")
        .unwrap();
    assert_eq!(gate.dims, [1, 256, 1, 1]);
}
