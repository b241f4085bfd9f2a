//! `check` (parse + lower + infer + summary) on ResNet-152, on the Inception-ResNet example
//! (per-axis kernels, `channels(x)`), on the two U-Nets and on generated networks of 1,000,
//! 10,000 and 100,000 blocks: checking should be linear in the network's size. And
//! `check` with verified fixes on ResNet-152 with one and with ten independent errors, beside
//! the clean check in the same run. And the valid input sizes of ResNet-50 over 1..1024
//! (`check --sizes 1..1024` without printing) beside its clean check.
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
    // The same check without the summary: what the summary's groups and fields cost.
    group.bench_function("resnet152_no_summary", |b| {
        b.iter(|| {
            let source = resnetc::span::Source::new("bench.res", black_box(resnet152.as_str()));
            resnetc::check(&source, None).diagnostics.len()
        })
    });
    let inception = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/inception_resnet_block17.res"
    ))
    .unwrap();
    group.bench_function("inception_resnet_block17", |b| {
        b.iter(|| check(black_box(&inception)))
    });
    for name in ["unet", "unet_padded"] {
        let path = format!("{}/examples/{name}.res", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        group.bench_function(name, |b| b.iter(|| check(black_box(&text))));
    }
    for n in [1_000, 10_000, 100_000] {
        let text = generated(n);
        if n == 100_000 {
            group.sample_size(10);
        }
        group.bench_function(format!("generated_{n}_blocks"), |b| {
            b.iter(|| check(black_box(&text)))
        });
    }
    // One error: layer3 without its projection (E0203).
    let one = resnet152.replacen(
        "bottleneck(256, stride: 2, down: true)",
        "bottleneck(256, stride: 2)",
        1,
    );
    // Ten independent errors: batchnorms stating 7 channels between layer3's blocks (E0202;
    // a stated-channels error still yields a shape, so each is found and fixed on its own).
    let ten = resnet152.replacen(
        "bottleneck(256) * 35",
        &format!(
            "bottleneck(256) * 25{}",
            ", bottleneck(256), batchnorm(7)".repeat(10)
        ),
        1,
    );
    for (name, text, errors) in [("one_error", &one, 1), ("ten_errors", &ten, 10)] {
        let source = resnetc::span::Source::new("bench.res", text.as_str());
        let checked = resnetc::check_file(&source, None);
        let fixed = checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error() && !d.fixes.is_empty())
            .count();
        assert_eq!(fixed, errors, "every injected error gets a verified fix");
        group.bench_function(format!("resnet152_fixes_{name}"), |b| {
            b.iter(|| {
                resnetc::check_file(black_box(&source), None)
                    .diagnostics
                    .len()
            })
        });
    }
    let resnet50 = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/resnet50.res"
    ))
    .unwrap();
    let opts = resnetc::summary::Options {
        sizes: Some(resnetc::shape::sizes::SizeRange { lo: 1, hi: 1024 }),
        ..Default::default()
    };
    group.bench_function("resnet50", |b| b.iter(|| check(black_box(&resnet50))));
    group.bench_function("resnet50_sizes_1_1024", |b| {
        b.iter(|| {
            let source = resnetc::span::Source::new("bench.res", black_box(resnet50.as_str()));
            let checked = resnetc::check_file(&source, None);
            let s = checked.summaries_with(&source, &opts);
            s[0].valid_sizes.as_ref().map_or(0, Vec::len)
        })
    });
    group.finish();
}

criterion_group!(check_benches, benches);
criterion_main!(check_benches);
