//! `export --format onnx` of ResNet-152 with seeded weights (about 240 MB), phase by phase,
//! against writing the same bytes with `std::fs::write` and copying the file in the same run:
//! is the export bound by writing the bytes?
//!
//! Run with `cargo bench --bench export_onnx`. Each phase is timed over a few rounds and the
//! median is printed, in wall time and in CPU time of the process (user + system, from
//! /proc/self/stat): on a shared machine the wall time mostly measures the other processes. The
//! file goes to a temporary directory in the target directory.

use std::io::Write;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Wall time and CPU time (user + system) of `f`.
fn time<T>(f: impl FnOnce() -> T) -> (T, [Duration; 2]) {
    let (t, cpu) = (Instant::now(), cpu_time());
    let out = f();
    (out, [t.elapsed(), cpu_time().saturating_sub(cpu)])
}

/// The process's user + system time so far (Linux clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Write `bytes` to `path` and wait until they are on disk, as the CLI's atomic write does.
fn write_synced(path: &std::path::Path, bytes: &[u8]) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/examples/resnet152.res")).unwrap();
    let source = resnetc::span::Source::new("resnet152.res", text);
    let dir = tempfile::tempdir_in(format!("{root}/target")).unwrap();
    let (model_path, copy_path) = (dir.path().join("m.onnx"), dir.path().join("copy.onnx"));
    let opts = resnetc::export::onnx::Options::default();
    let mut phases: [[Vec<Duration>; 2]; 7] = Default::default();
    let mut size = 0;
    for _ in 0..ROUNDS {
        let (checked, t_check) = time(|| resnetc::check(&source, None));
        let (g, shapes) = (checked.graph.unwrap(), checked.shapes.unwrap());
        let (w, t_seed) = time(|| resnetc::interp::weights::seeded(&g, &shapes, 0));
        let (model, t_model) =
            time(|| resnetc::export::onnx::to_model(&g, &shapes, &w, opts).unwrap());
        let (bytes, t_encode) = time(|| resnetc::export::onnx::encode(&model).unwrap());
        drop(model);
        let ((), t_write) = time(|| write_synced(&model_path, &bytes));
        // The peers: the same bytes written again, and the file copied, each synced.
        let ((), t_plain) = time(|| write_synced(&copy_path, &bytes));
        let ((), t_cp) = time(|| {
            std::fs::copy(&model_path, &copy_path).unwrap();
            std::fs::File::open(&copy_path).unwrap().sync_all().unwrap();
        });
        size = bytes.len();
        for (p, t) in phases
            .iter_mut()
            .zip([t_check, t_seed, t_model, t_encode, t_write, t_plain, t_cp])
        {
            p[0].push(t[0]);
            p[1].push(t[1]);
        }
    }
    let names = [
        "check",
        "seeded weights",
        "to_model (weights -> initializers)",
        "encode (protobuf)",
        "write + fsync (export's write)",
        "peer: std::fs::write + fsync, same bytes",
        "peer: std::fs::copy + fsync of the file",
    ];
    println!(
        "ResNet-152, {:.1} MB, median of {ROUNDS} rounds:",
        size as f64 / 1e6
    );
    println!("  {:<42} {:>8} {:>8}", "phase", "wall ms", "CPU ms");
    for (name, [wall, cpu]) in names.iter().zip(phases) {
        let ms = |v| median(v).as_secs_f64() * 1e3;
        println!("  {name:<42} {:>8.0} {:>8.0}", ms(wall), ms(cpu));
    }
}
