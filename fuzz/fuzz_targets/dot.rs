//! DOT export on arbitrary text: whatever checks (or fails to, with a graph), drawing it at
//! any depth must never panic. The first byte picks the depth.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resnetc::export::{DotOptions, to_dot};
use resnetc::span::Source;

fuzz_target!(|data: &[u8]| {
    let Some((&depth, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let source = Source::new("fuzz.res", text);
    let checked = resnetc::check(&source, None);
    if let Some(graph) = &checked.graph {
        let opts = DotOptions {
            depth: (depth < 8).then_some(depth as usize),
        };
        let _ = to_dot(graph, checked.shapes.as_ref(), &checked.diagnostics, &opts);
    }
});
