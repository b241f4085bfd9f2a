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
