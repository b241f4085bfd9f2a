//! `check` (parse + lower + infer + summary) on ResNet-152 and on generated networks of
//! 1,000, 10,000 and 100,000 blocks: checking should be linear in the network's size.
//!
//! Run with `cargo bench --bench check`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn check(text: &str) -> usize {
    let source = resnetc::span::Source::new("bench.res", text);
    let checked = resnetc::check(&source, None);
    assert!(!checked.has_errors());
    checked.summary().map_or(0, |s| s.layers.len())
}

/// A network of `n` basic residual blocks (8 ops each).
fn generated(n: usize) -> String {
    format!(
        "block unit(c: int) {{\n  input x\n  y = x -> conv1: conv(c, k: 3, pad: 1) -> bn1: batchnorm -> relu\n        -> conv2: conv(c, k: 3, pad: 1) -> bn2: batchnorm\n  output relu(y + x)\n}}\nnetwork gen {{\n  input image: [N, 16, 8, 8]\n  output image -> body: [unit(16) * {n}]\n}}\n"
    )
}

fn benches(c: &mut Criterion) {
    let resnet152 = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/resnet152.res"
    ))
    .unwrap();
    let mut group = c.benchmark_group("check");
    group.sample_size(20);
    group.bench_function("resnet152", |b| b.iter(|| check(black_box(&resnet152))));
    for n in [1_000, 10_000, 100_000] {
        let text = generated(n);
        if n == 100_000 {
            group.sample_size(10);
        }
        group.bench_function(format!("generated_{n}_blocks"), |b| {
            b.iter(|| check(black_box(&text)))
        });
    }
    group.finish();
}

criterion_group!(check_benches, benches);
criterion_main!(check_benches);
