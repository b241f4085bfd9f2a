//! Property tests: `check` never panics, whatever the text.

use proptest::prelude::*;

fn check(text: &str) {
    let source = resnetc::span::Source::new("prop.res", text);
    let checked = resnetc::check_file(&source, None);
    // Rendering must not panic either.
    let _ = resnetc::cli::check::render_plain(&source, &checked, resnetc::cli::Format::Human);
}

const EXAMPLES: &[&str] = &[
    include_str!("../../examples/resnet18.res"),
    include_str!("../../examples/cifar_resnet20.res"),
    include_str!("../../examples/preact_resnet110.res"),
    include_str!("../../tests/ui/shape/tutorial_block.res"),
    include_str!("../../tests/ui/shape/se_gate_channels.res"),
];

/// Tokens that make mutations likely to reach lowering and shape inference.
const TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "->",
    "+",
    "*",
    "-",
    "/",
    "=",
    "0",
    "1",
    "3",
    "64",
    "999999999999",
    "x",
    "relu",
    "conv",
    "k",
    "stride",
    "input",
    "output",
    "block",
    "network",
    "if",
    "else",
    "true",
    "#",
    "\n",
    "4 -> 3",
    "batchnorm(7)",
    "basic(3)",
    "* 0",
    "\u{e9}",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn check_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        check(&text);
    }

    #[test]
    fn check_never_panics_on_mutated_examples(
        example in 0..EXAMPLES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..3u8, 0..TOKENS.len()), 1..6),
    ) {
        let mut text = EXAMPLES[example].to_string();
        for (at, kind, token) in edits {
            let mut pos = at.index(text.len() + 1);
            while !text.is_char_boundary(pos) {
                pos -= 1;
            }
            match kind {
                0 => text.insert_str(pos, TOKENS[token]),
                1 => {
                    let mut end = (pos + 1 + token % 8).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(pos..end, "");
                }
                _ => {
                    let mut end = (pos + 2).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(pos..end, TOKENS[token]);
                }
            }
        }
        check(&text);
    }
}

#[test]
fn the_deepest_accepted_nesting_parses_on_a_test_thread_stack() {
    let depth = resnetc::syntax::MAX_NESTING;
    let text = format!(
        "network n {{ input x: [1, 3, 8, 8]\n output {}x{} -> relu }}\n",
        "(".repeat(depth - 1),
        ")".repeat(depth - 1)
    );
    let source = resnetc::span::Source::new("deep.res", text);
    let checked = resnetc::check(&source, None);
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
}

/// One random layer of a generated network, as source text.
fn layer() -> impl Strategy<Value = String> {
    prop_oneof![
        (1..6u32, 1..4u32, 1..3u32, 0..2u32)
            .prop_map(|(c, k, s, p)| format!("conv({c}, k: {k}, stride: {s}, pad: {p})")),
        (1..3u32, 1..4u32).prop_map(|(k, g)| format!(
            "conv({}, k: {k}, pad: {}, groups: 1)",
            g * 2,
            k / 2
        )),
        Just("batchnorm".to_string()),
        Just("relu".to_string()),
        Just("sigmoid".to_string()),
        (1..3u32, 1..3u32, any::<bool>())
            .prop_map(|(k, s, c)| format!("maxpool(k: {}, stride: {s}, ceil: {c})", k + 1)),
        (1..3u32, any::<bool>())
            .prop_map(|(s, c)| format!("avgpool(k: 2, stride: {s}, ceil: {c})")),
        Just("res(3)".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// For random small valid networks, the interpreter's output shape is the inferred one.
    #[test]
    fn interpreter_output_shape_is_the_inferred_shape(
        batch in 1..3usize,
        c in 1..4u32,
        h in 3..12u32,
        w in 3..12u32,
        layers in proptest::collection::vec(layer(), 1..6),
        head in any::<bool>(),
    ) {
        let mut text = String::from("block res(k: int) {\n input x\n output x + (x -> conv_r: conv(1, k: k, pad: k / 2) -> conv(1 -> 1, k: 1) -> expand: conv(1 -> 1, k: 1)) \n}\n");
        // `res` only fits a 1-channel input; map to 1 channel first when it is used.
        let body: Vec<String> = layers.iter().map(|l| if l.starts_with("res") { format!("conv(1, k: 1) -> {l}") } else { l.clone() }).collect();
        let tail = if head { " -> global_avgpool -> flatten -> fc: linear(3)" } else { "" };
        text.push_str(&format!("network gen {{\n input x: [N, {c}, {h}, {w}]\n output x -> {}{tail}\n}}\n", body.join(" -> ")));
        let source = resnetc::span::Source::new("gen.res", text.clone());
        let checked = resnetc::check(&source, None);
        prop_assume!(!checked.has_errors());
        let (g, shapes) = (checked.graph.as_ref().unwrap(), checked.shapes.as_ref().unwrap());
        let x = ndarray::ArrayD::<f32>::from_elem(ndarray::IxDyn(&[batch, c as usize, h as usize, w as usize]), 0.5);
        let request = resnetc::interp::Request {
            weights: None,
            inputs: resnetc::interp::Inputs::Given(vec![("x".into(), x)]),
            seed: 7,
            options: resnetc::interp::RunOptions::new(2),
            memory_limit: None,
        };
        let outputs = resnetc::interp::run(&checked.network().unwrap(), request).unwrap().outputs;
        let inferred = shapes.get(g.outputs[0].node).unwrap().concrete(batch as u64).unwrap();
        let actual: Vec<u64> = outputs[0].1.shape().iter().map(|&d| d as u64).collect();
        prop_assert_eq!(actual, inferred, "{}", text);
    }
}
