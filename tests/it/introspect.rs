//! Shape introspection in expressions (`channels(x)`, `height(x)`, `width(x)`): the sizes
//! read are the inferred ones, the branch they select is the one built, and ResNet-50 written
//! with `down = stride != 1 or channels(x) != planes * 4` has torchvision's very keys.

use std::process::Command;

/// The paths of the layers with parameters of a network that checks cleanly.
fn param_paths(text: &str) -> Vec<String> {
    let (_, checked) = crate::check_one("introspect.res", text);
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    let net = checked.network().unwrap();
    resnetc::interp::weights::expected(net.graph(), net.shapes())
        .into_iter()
        .map(|e| e.key)
        .collect()
}

#[test]
fn a_block_projects_its_shortcut_only_where_its_input_channels_differ() {
    let keys = param_paths(
        "block unit(planes: int, stride: int = 1) {
            input x
            down = stride != 1 or channels(x) != planes
            y = x -> c: conv(planes, k: 3, stride: stride, pad: 1)
            s = if down { x -> proj: conv(planes, k: 1, stride: stride) } else { x }
            output y + s
        }
        network n {
            input x: [N, 8, 16, 16]
            output x -> a: unit(8) -> b: unit(16) -> c: unit(16) -> d: unit(16, stride: 2)
        }",
    );
    // `a`: 8 in, 8 out, stride 1: no projection. `b`: 8 in, 16 out. `c`: 16 in, 16 out.
    // `d`: stride 2.
    assert_eq!(
        keys,
        [
            "a.c.weight",
            "b.c.weight",
            "b.proj.weight",
            "c.c.weight",
            "d.c.weight",
            "d.proj.weight"
        ]
    );
}

#[test]
fn height_and_width_read_the_inferred_sizes() {
    // After a stride-2 conv with pad 1 and a 3x1 kernel: H = (20 + 2 - 3) / 2 + 1 = 10,
    // W = (12 + 2 - 1) / 2 + 1 = 7. The pool's window is the whole map: 10x7 -> 1x1.
    let text = "network n {
        input x: [N, 3, 20, 12]
        y = x -> conv(4, k: [3, 1], stride: 2, pad: 1)
        output y -> avgpool(k: [height(y), width(y)]) -> flatten -> fc: linear(channels(y) * 2)
    }";
    let (_, checked) = crate::check_one("hw.res", text);
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    let s = checked.summary().unwrap();
    let shapes: Vec<Vec<u64>> = s
        .layers
        .iter()
        .map(|l| l.shape.concrete(1).unwrap())
        .collect();
    assert_eq!(shapes[0], [1, 4, 10, 7]);
    assert_eq!(shapes[1], [1, 4, 1, 1]);
    assert_eq!(shapes.last().unwrap(), &[1, 8]);
}

#[test]
fn resnet50_with_channels_has_the_keys_and_figures_of_torchvision() {
    let out = Command::new(crate::python())
        .arg(crate::root().join("tests/py/state_dict_keys.py"))
        .arg("resnet50")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let torch: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let torch: Vec<String> = torch["resnet50"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let text = crate::read("examples/resnet50.res");
    assert!(
        text.contains("channels(x)"),
        "resnet50.res no longer reads its input's channels"
    );
    assert_eq!(param_paths(&text), torch);
}
