//! Property tests: `check` never panics, whatever the text.

use proptest::prelude::*;

fn check(text: &str) {
    let source = resnetc::span::Source::new("prop.res", text);
    let checked = resnetc::check(&source, None);
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
