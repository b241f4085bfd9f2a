//! `.npy` input: decoding arbitrary bytes never panics or allocates what a header claims,
//! and a decoded array is validated against a small network and run when it fits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resnetc::interp::{self, Inputs, Request, RunOptions, input};
use resnetc::span::Source;
use std::sync::OnceLock;

const NET: &str = "network small {
    input x: [N, 2, 4, 4]
    y = x -> conv(3, k: 3, pad: 1) -> batchnorm -> relu -> maxpool(k: 2)
    output y -> global_avgpool -> flatten -> linear(5) -> softmax
}";

fn checked() -> &'static resnetc::Checked {
    static CHECKED: OnceLock<resnetc::Checked> = OnceLock::new();
    CHECKED.get_or_init(|| resnetc::check(&Source::new("small.res", NET), None))
}

fuzz_target!(|data: &[u8]| {
    let Ok(x) = input::from_npy(data) else {
        return;
    };
    let net = checked().network().expect("the fuzz network checks");
    if x.len() > 1 << 16 {
        return;
    }
    let request = Request {
        weights: None,
        inputs: Inputs::Given(vec![("fuzz.npy".into(), x)]),
        seed: 0,
        options: RunOptions::new(1),
        memory_limit: Some(64 << 20),
    };
    let _ = interp::run(&net, request);
});
