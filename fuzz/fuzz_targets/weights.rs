//! Weights loading: arbitrary safetensors bytes against a small network either load (and
//! then run) or are refused with a message or diagnostics; never a panic or a huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resnetc::interp::{self, Inputs, Request, RunOptions, weights};
use resnetc::span::Source;
use std::sync::OnceLock;

const NET: &str = "network small {
    input x: [1, 2, 4, 4]
    y = x -> conv1: conv(2, k: 1, bias: true) -> bn1: batchnorm -> relu
    output y -> flatten -> fc: linear(3)
}";

fn checked() -> &'static resnetc::Checked {
    static CHECKED: OnceLock<resnetc::Checked> = OnceLock::new();
    CHECKED.get_or_init(|| resnetc::check(&Source::new("small.res", NET), None))
}

fuzz_target!(|data: &[u8]| {
    let net = checked().network().expect("the fuzz network checks");
    let Ok(w) = weights::from_safetensors(
        net.graph(),
        net.shapes(),
        weights::FileBytes::Read(data.to_vec()),
    ) else {
        return;
    };
    let request = Request {
        weights: Some(w),
        inputs: Inputs::Random { batch: 1 },
        seed: 0,
        options: RunOptions::new(1),
        memory_limit: Some(64 << 20),
    };
    let _ = interp::run(&net, request);
});
