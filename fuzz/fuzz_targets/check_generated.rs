//! `check` on structure-aware generated networks, then "checked ⇒ runs": every op with
//! arguments from small sizes to edge values (0, 2^62, 2^63 - 1), ranks mixed by flatten and
//! linear, adds, products and concats of any earlier values. Whatever checks must run with a
//! random input (under a memory bound) or be refused with a message; never a panic or abort.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use resnetc::interp::{self, Inputs, Request, RunOptions};
use resnetc::span::Source;
use std::fmt::Write;

/// A size: mostly small, sometimes an edge value.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Size {
    Small(u8),
    Edge(u8),
}

impl Size {
    fn text(self) -> String {
        match self {
            Size::Small(v) => (v % 9).to_string(),
            Size::Edge(e) => match e % 8 {
                0 => "0".into(),
                1 => "4294967296".into(),
                2 => "4611686018427387904".into(),
                3 => "9223372036854775807".into(),
                4 => "1000000000".into(),
                5 => "2305843009213693952".into(),
                6 => "65".into(),
                _ => "17".into(),
            },
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Stage {
    Conv {
        c: Size,
        k: Size,
        stride: Size,
        pad: Size,
        dilation: Size,
        groups: Size,
        bias: bool,
    },
    BatchNorm,
    Relu,
    Sigmoid,
    Tanh,
    LeakyRelu(i8),
    Softmax,
    Dropout,
    Identity,
    MaxPool {
        k: Size,
        stride: Size,
        pad: Size,
        ceil: bool,
    },
    AvgPool {
        k: Size,
        stride: Size,
        pad: Size,
        ceil: bool,
        count_pad: bool,
    },
    GlobalAvgPool,
    Flatten,
    Linear {
        c: Size,
        bias: bool,
    },
    ShortcutA {
        c: Size,
        stride: Size,
    },
}

#[derive(Arbitrary, Debug)]
enum Stmt {
    Pipe { from: u8, stages: Vec<Stage> },
    Add(u8, u8),
    Mul(u8, u8),
    Concat(u8, u8, u8),
}

#[derive(Arbitrary, Debug)]
struct Net {
    batch_symbolic: bool,
    c: Size,
    h: Size,
    w: Size,
    stmts: Vec<Stmt>,
    output: u8,
}

fn stage_text(s: &Stage) -> String {
    match s {
        Stage::Conv {
            c,
            k,
            stride,
            pad,
            dilation,
            groups,
            bias,
        } => format!(
            "conv({}, k: {}, stride: {}, pad: {}, dilation: {}, groups: {}, bias: {bias})",
            c.text(),
            k.text(),
            stride.text(),
            pad.text(),
            dilation.text(),
            groups.text()
        ),
        Stage::BatchNorm => "batchnorm".into(),
        Stage::Relu => "relu".into(),
        Stage::Sigmoid => "sigmoid".into(),
        Stage::Tanh => "tanh".into(),
        Stage::LeakyRelu(s) => format!("leaky_relu({}.0)", s),
        Stage::Softmax => "softmax".into(),
        Stage::Dropout => "dropout(0.1)".into(),
        Stage::Identity => "identity".into(),
        Stage::MaxPool {
            k,
            stride,
            pad,
            ceil,
        } => format!(
            "maxpool(k: {}, stride: {}, pad: {}, ceil: {ceil})",
            k.text(),
            stride.text(),
            pad.text()
        ),
        Stage::AvgPool {
            k,
            stride,
            pad,
            ceil,
            count_pad,
        } => format!(
            "avgpool(k: {}, stride: {}, pad: {}, ceil: {ceil}, count_pad: {count_pad})",
            k.text(),
            stride.text(),
            pad.text()
        ),
        Stage::GlobalAvgPool => "global_avgpool".into(),
        Stage::Flatten => "flatten".into(),
        Stage::Linear { c, bias } => format!("linear({}, bias: {bias})", c.text()),
        Stage::ShortcutA { c, stride } => {
            format!("shortcut_a({}, stride: {})", c.text(), stride.text())
        }
    }
}

fn render(net: &Net) -> String {
    let mut text = String::from("network generated {\n");
    let batch = if net.batch_symbolic {
        "N".to_string()
    } else {
        "2".to_string()
    };
    let _ = writeln!(
        text,
        "    input v0: [{batch}, {}, {}, {}]",
        net.c.text(),
        net.h.text(),
        net.w.text()
    );
    let n = net.stmts.len().min(12);
    for (i, stmt) in net.stmts.iter().take(n).enumerate() {
        let v = |k: &u8| format!("v{}", *k as usize % (i + 1));
        let rhs = match stmt {
            Stmt::Pipe { from, stages } => {
                let mut e = v(from);
                for s in stages.iter().take(6) {
                    e = format!("{e} -> {}", stage_text(s));
                }
                e
            }
            Stmt::Add(a, b) => format!("{} + {}", v(a), v(b)),
            Stmt::Mul(a, b) => format!("{} * {}", v(a), v(b)),
            Stmt::Concat(a, b, c) => format!("concat({}, {}, {})", v(a), v(b), v(c)),
        };
        let _ = writeln!(text, "    v{} = {rhs}", i + 1);
    }
    let _ = writeln!(text, "    output v{}\n}}", net.output as usize % (n + 1));
    text
}

fuzz_target!(|net: Net| {
    let text = render(&net);
    let source = Source::new("generated.res", text.as_str());
    let file = resnetc::check_file(&source, None);
    let _ = resnetc::cli::check::render_plain(&source, &file, resnetc::cli::Format::Short);
    let Some(network) = file.networks.first().and_then(|c| c.network()) else {
        return;
    };
    let request = Request {
        weights: None,
        inputs: Inputs::Random { batch: 2 },
        seed: 0,
        options: RunOptions::new(1),
        // Small enough that the fuzzer stays fast; larger runs are refused, not made.
        memory_limit: Some(32 << 20),
    };
    let _ = interp::run(&network, request);
});
