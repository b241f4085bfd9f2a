//! "Checked ⇒ runs": whatever `check` accepts, the interpreter runs, on every rank each op's
//! registry entry accepts, with the output shapes shape inference gave, and never panics.

use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// `resnetc run - --random-input` on `text`: exit code and stderr.
fn run_stdin(text: &str) -> (Option<i32>, String, String) {
    let out = crate::cli::resnetc_stdin(&["run", "-", "--random-input"], text.as_bytes());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_runs(text: &str, shape: &str) {
    let (code, out, err) = run_stdin(text);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains(shape), "expected `{shape}` in: {out}");
}

#[test]
fn an_add_of_two_flattened_values_runs() {
    assert_runs(
        "network n { input x: [1, 2, 3, 3]\n y = x -> flatten\n output y + y }",
        "[1, 18]",
    );
}

#[test]
fn softmax_over_the_channels_of_an_nchw_value_runs() {
    assert_runs(
        "network n { input x: [1, 3, 4, 4]\n output x -> softmax }",
        "[1, 3, 4, 4]",
    );
}

#[test]
fn a_product_of_two_linear_outputs_runs() {
    assert_runs(
        "network n { input x: [1, 2, 3, 3]\n a = x -> flatten -> linear(10)\n output a * a }",
        "[1, 10]",
    );
}

#[test]
fn softmax_over_channels_sums_to_one_at_every_pixel() {
    // PyTorch's softmax(dim=1): at each pixel, the channels' values sum to 1.
    let (_, checked) = crate::check_one(
        "s.res",
        "network n { input x: [2, 3, 2, 2]\n output x -> softmax }",
    );
    let net = checked.network().unwrap();
    let program = net.plan(resnetc::interp::weights::seeded(
        net.graph(),
        net.shapes(),
        1,
    ));
    let x = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[2, 3, 2, 2]), |i| {
        (i[0] * 7 + i[1] * 3 + i[2] * 2 + i[3]) as f32 * 0.3 - 2.0
    });
    let y =
        &resnetc::interp::run_program(&program, vec![x], resnetc::interp::RunOptions::new(1))[0].1;
    for n in 0..2 {
        for h in 0..2 {
            for w in 0..2 {
                let sum: f32 = (0..3).map(|c| y[[n, c, h, w]]).sum();
                assert!(
                    (sum - 1.0).abs() < 1e-6,
                    "pixel ({n}, {h}, {w}) sums to {sum}"
                );
            }
        }
    }
}

/// Every one-operand op of any rank.
const ACTIVATIONS: &[&str] = &[
    "relu",
    "sigmoid",
    "tanh",
    "leaky_relu(0.2)",
    "softmax",
    "identity",
    "dropout(0.3)",
    "relu6",
    "silu",
    "swish",
    "hardswish",
    "hardsigmoid",
    "gelu",
];

/// One step of a generated network, applied to the previous value `v`, as a choice and
/// numbers to draw its arguments from.
type Step = (u8, [u32; 6]);

/// Build the source of a network from steps, keeping track of the rank and channels so that
/// most steps are valid; the check decides. Every value is an output, so every node's shape
/// is compared.
fn network(c: u32, h: u32, w: u32, steps: &[Step]) -> String {
    let mut text = format!("network gen {{\n input v0: [N, {c}, {h}, {w}]\n");
    let (mut rank4, mut ch) = (true, c);
    for (i, (choice, a)) in steps.iter().enumerate() {
        let v = format!("v{i}");
        let stride = |x: u32| if x % 5 == 4 { 1_000_000_000 } else { x % 3 + 1 };
        let expr = if rank4 {
            match choice % 16 {
                0 => {
                    let k = a[1] % 3 + 1;
                    let groups = if a[5] % 2 == 0 { 1 } else { ch };
                    let out = groups * (a[0] % 3 + 1);
                    ch = out;
                    format!(
                        "{v} -> conv({out}, k: {k}, stride: {}, pad: {}, dilation: {}, groups: {groups}, bias: {})",
                        stride(a[2]),
                        a[3] % (k + 1),
                        a[4] % 2 + 1,
                        a[5] % 3 == 0
                    )
                }
                1 => format!(
                    "{v} -> batchnorm({ch}, eps: {})",
                    [1.0e-5, 0.001, 0.1][a[0] as usize % 3]
                ),
                2 => format!("{v} -> {}", ACTIVATIONS[a[0] as usize % ACTIVATIONS.len()]),
                3 | 4 => {
                    let k = a[1] % 4 + 1;
                    let op = if choice % 16 == 3 {
                        "maxpool"
                    } else {
                        "avgpool"
                    };
                    let count = if op == "avgpool" {
                        format!(", count_pad: {}", a[5] % 2 == 0)
                    } else {
                        String::new()
                    };
                    format!(
                        "{v} -> {op}(k: {k}, stride: {}, pad: {}, ceil: {}{count})",
                        stride(a[2]),
                        a[3] % (k / 2 + 1),
                        a[4] % 2 == 0
                    )
                }
                5 if a[0] % 2 == 0 => format!("{v} -> global_avgpool"),
                5 => format!(
                    "{v} -> adaptive_avgpool([{}, {}])",
                    a[1] % 5 + 1,
                    a[2] % 5 + 1
                ),
                6 => format!("{v} + {v}"),
                7 => format!("{v} * {v}"),
                8 if a[0] % 3 == 0 => format!("{v} * ({v} -> global_avgpool -> sigmoid)"),
                8 if a[0] % 3 == 1 => format!("{v} * ({v} -> conv(1, k: 1) -> sigmoid)"),
                8 => format!("0.5 * {v} + {v} * 2"),
                9 => {
                    ch *= 2;
                    format!("concat({v}, {v})")
                }
                10 => {
                    let out = ch + 2 * (a[0] % 3);
                    ch = out;
                    format!("{v} -> shortcut_a({out}, stride: {})", a[2] % 3 + 1)
                }
                11 => {
                    let k = a[1] % 3 + 1;
                    let s = a[2] % 3 + 1;
                    let (dil, out) = (a[4] % 2 + 1, a[0] % 3 + 1);
                    let groups = if a[5] % 2 == 0 { 1 } else { ch };
                    ch = groups * out;
                    format!(
                        "{v} -> conv_transpose({}, k: {k}, stride: {s}, pad: {}, output_pad: {}, dilation: {dil}, groups: {groups}, bias: {})",
                        ch,
                        a[3] % 3,
                        a[3] % s.max(dil),
                        a[5] % 3 == 0
                    )
                }
                12 => {
                    let mode = [
                        "",
                        ", mode: bilinear",
                        ", mode: bilinear, align_corners: true",
                    ][a[0] as usize % 3];
                    match a[1] % 3 {
                        0 => format!(
                            "{v} -> upsample(scale: [{}, {}]{mode})",
                            a[2] % 3 + 1,
                            a[3] % 2 + 1
                        ),
                        1 => format!(
                            "{v} -> upsample(size: [{}, {}]{mode})",
                            a[2] % 9 + 1,
                            a[3] % 9 + 1
                        ),
                        _ => format!("{v} -> upsample(like: v0{mode})"),
                    }
                }
                13 => format!("{v} -> crop(like: {v} -> maxpool(k: {}))", a[0] % 3 + 1),
                14 => format!(
                    "{v} -> pad([{}, {}, {}, {}])",
                    a[0] % 3,
                    a[1] % 3,
                    a[2] % 3,
                    a[3] % 3
                ),
                _ => {
                    rank4 = false;
                    format!("{v} -> flatten")
                }
            }
        } else {
            match choice % 6 {
                0 => format!("{v} -> linear({}, bias: {})", a[0] % 5 + 1, a[1] % 2 == 0),
                1 => format!("{v} -> {}", ACTIVATIONS[a[0] as usize % ACTIVATIONS.len()]),
                2 => format!("{v} + {v}"),
                3 => format!("{v} * {v}"),
                4 => format!("{v} -> softmax"),
                _ => format!("{v} -> relu"),
            }
        };
        text.push_str(&format!(" v{} = {expr}\n", i + 1));
    }
    for i in 0..=steps.len() {
        text.push_str(&format!(" output v{i}\n"));
    }
    text.push_str("}\n");
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Whatever `check` accepts runs, and every value has its inferred shape.
    #[test]
    fn whatever_checks_runs_with_the_inferred_shapes(
        batch in 1..3usize,
        c in 1..4u32,
        h in 1..9u32,
        w in 1..9u32,
        steps in proptest::collection::vec((any::<u8>(), any::<[u32; 6]>()), 1..8),
    ) {
        let text = network(c, h, w, &steps);
        let (_, checked) = crate::check_one("gen.res", &text);
        if checked.has_errors() {
            return Ok(());
        }
        let net = checked.network().unwrap();
        let (g, shapes) = (net.graph(), net.shapes());
        let weights = resnetc::interp::weights::seeded(g, shapes, 7);
        let program = net.plan(weights);
        let x = ndarray::ArrayD::<f32>::from_elem(ndarray::IxDyn(&[batch, c as usize, h as usize, w as usize]), 0.5);
        let outputs = resnetc::interp::run_program(&program, vec![x], resnetc::interp::RunOptions::new(1));
        for (out, (_, y)) in g.outputs.iter().zip(&outputs) {
            let inferred = shapes.get(out.node).unwrap().concrete(batch as u64).unwrap();
            let actual: Vec<u64> = y.shape().iter().map(|&d| d as u64).collect();
            prop_assert_eq!(actual, inferred, "{} in\n{}", out.name, text);
        }
    }
}

#[test]
fn most_generated_networks_check() {
    // The generator is only useful if most of what it makes is accepted: count a fixed sample.
    let mut accepted = 0;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec((any::<u8>(), any::<[u32; 6]>()), 1..8);
    for _ in 0..200 {
        let steps = strategy.new_tree(&mut runner).unwrap().current();
        let (_, checked) = crate::check_one("gen.res", &network(3, 8, 8, &steps));
        accepted += usize::from(!checked.has_errors());
    }
    assert!(
        accepted >= 100,
        "only {accepted} of 200 generated networks check"
    );
}
