//! `resnetc run` on images: PNG and JPEG files (or directories of them) given as `--input`,
//! run in batches of `--batch`, one result line per image, a progress bar on stderr.
//!
//! This module reads the files (each bounded) and prints; decoding and preprocessing are the
//! library's ([`crate::interp::picture`]), and running is an [`crate::interp::Session`] planned once.
//! A bad image is reported and skipped: the others still run, and the run exits 1 at the end.
//!
//! The images of a batch are read and decoded side by side, on as many threads as `--threads`
//! (at most [`DECODE_THREADS`]), within the memory one image at a time may take: the files
//! read at once within [`picture::MAX_FILE_BYTES`], the pixels decoded at once within
//! [`picture::DecodeLimits::RUN`]'s bytes ([`Budget`]).

use super::run::{ClassScore, RunArgs, RunReport, timing_text, top_classes, top_text};
use super::{CliError, EXIT_ERRORS, EXIT_OK, Format, ReadError, memory, read_bounded};
use crate::diag::render::JsonDiagnostic;
use crate::interp::picture::{self, Preprocess};
use crate::interp::{Network, RunOptions, Session, weights::Weights};
use crate::ir::DimSpec;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ndarray::{Array3, ArrayD, Axis};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Most threads that read and decode a batch's images side by side.
const DECODE_THREADS: usize = 8;

/// Bytes that the images read or decoded side by side hold at once: each takes its share
/// ([`Budget::take`]) before it holds it, waiting while others hold too much, and gives it
/// back when it is done (the share's drop). One share is never more than the whole, so each
/// image is read and decoded in time, alone if it must be.
struct Budget {
    total: u64,
    left: std::sync::Mutex<u64>,
    freed: std::sync::Condvar,
}

/// A share of a [`Budget`], given back when dropped.
struct Share<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    fn new(total: u64) -> Budget {
        Budget {
            total,
            left: std::sync::Mutex::new(total),
            freed: std::sync::Condvar::new(),
        }
    }

    /// A share of `bytes` (at most the whole), once the others leave that much.
    fn take(&self, bytes: u64) -> Share<'_> {
        let bytes = bytes.min(self.total);
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        while *left < bytes {
            left = self.freed.wait(left).unwrap_or_else(|e| e.into_inner());
        }
        *left -= bytes;
        Share {
            budget: self,
            bytes,
        }
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        let mut left = self.budget.left.lock().unwrap_or_else(|e| e.into_inner());
        *left += self.bytes;
        self.budget.freed.notify_all();
    }
}

/// The memory a batch's images take while they are read and decoded side by side: the same
/// as one at a time at most.
struct Budgets {
    files: Budget,
    pixels: Budget,
}

impl Budgets {
    fn new() -> Budgets {
        Budgets {
            files: Budget::new(picture::MAX_FILE_BYTES),
            pixels: Budget::new(picture::DecodeLimits::RUN.max_bytes),
        }
    }
}

/// The extensions of the images a directory run picks up (any case).
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Extensions of image formats resnetc does not read: such a file is an image input (and
/// refused as one, by its format), not a `.npy` tensor.
const OTHER_IMAGE_EXTENSIONS: [&str; 12] = [
    "gif", "bmp", "webp", "tif", "tiff", "ico", "avif", "heic", "heif", "tga", "qoi", "pnm",
];

/// How images become tensors (`run` with image inputs only).
#[derive(clap::Args, Debug)]
pub struct ImageArgs {
    /// Images: resize the shorter side to S pixels, then crop the center (default: 8/7 of
    /// the input's height or width, 256 for 224).
    #[arg(long, value_name = "S", allow_negative_numbers = true,
          value_parser = |t: &str| super::parse_number(t, "a size in pixels", 1, picture::MAX_SIDE.into()).map(|n| n as u32))]
    pub resize: Option<u32>,
    /// Images: the center crop, S or HxW: the input's declared height and width (the default;
    /// stated to make a script say it).
    #[arg(long, value_name = "S|HxW", value_parser = parse_crop)]
    pub crop: Option<[u32; 2]>,
    /// Images: the per-channel mean subtracted after scaling to [0, 1] (default: ImageNet's
    /// 0.485,0.456,0.406).
    #[arg(long, value_name = "R,G,B", value_parser = parse_rgb, allow_hyphen_values = true)]
    pub mean: Option<[f32; 3]>,
    /// Images: the per-channel std divided by (default: ImageNet's 0.229,0.224,0.225).
    #[arg(long, value_name = "R,G,B", value_parser = parse_rgb, allow_hyphen_values = true)]
    pub std: Option<[f32; 3]>,
}

fn parse_crop(text: &str) -> Result<[u32; 2], String> {
    let side = |t: &str| {
        t.trim()
            .parse::<u32>()
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("`{text}` is not a crop size: give S or HxW, e.g. 224"))
    };
    match text.split_once(['x', 'X']) {
        Some((h, w)) => Ok([side(h)?, side(w)?]),
        None => side(text).map(|s| [s, s]),
    }
}

fn parse_rgb(text: &str) -> Result<[f32; 3], String> {
    let values: Vec<f32> = text
        .split(',')
        .map(|t| t.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`{text}` is not three numbers R,G,B"))?;
    <[f32; 3]>::try_from(values).map_err(|_| format!("`{text}` is not three numbers R,G,B"))
}

/// Whether `--input` names images: a directory, or a file with an image extension.
pub fn wanted(inputs: &[PathBuf]) -> bool {
    inputs
        .iter()
        .any(|p| p.is_dir() || image_extension(p).is_some())
}

/// A path's extension when it is an image's (read or not), lower-case.
fn image_extension(p: &Path) -> Option<String> {
    let ext = p.extension()?.to_str()?.to_ascii_lowercase();
    (IMAGE_EXTENSIONS.contains(&ext.as_str()) || OTHER_IMAGE_EXTENSIONS.contains(&ext.as_str()))
        .then_some(ext)
}

/// The preprocessing flags apply to images only: refuse them on a `.npy` run.
pub fn refuse_flags(a: &ImageArgs) -> Result<(), CliError> {
    let given = [
        ("--resize", a.resize.is_some()),
        ("--crop", a.crop.is_some()),
        ("--mean", a.mean.is_some()),
        ("--std", a.std.is_some()),
    ];
    match given.iter().find(|(_, on)| *on) {
        Some((flag, _)) => Err(CliError::io(format!(
            "{flag} applies to image inputs (PNG or JPEG files, or directories of them)"
        ))),
        None => Ok(()),
    }
}

/// One line of `--format json` (or one YAML document): an image's result or its error.
#[derive(Serialize)]
struct ImageLine<'a> {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top: Option<Vec<ClassScore>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Serialize one record as a line of JSON, or as one document of a YAML stream.
pub fn to_line<T: Serialize>(value: &T, format: Format) -> Result<String, CliError> {
    let text = match format {
        Format::Yaml => serde_yaml::to_string(value)
            .map(|s| format!("---\n{s}"))
            .map_err(|e| e.to_string()),
        _ => serde_json::to_string(value)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string()),
    };
    text.map_err(|e| CliError {
        message: format!("cannot serialize: {e}"),
        code: super::EXIT_INTERNAL,
    })
}

/// The images to run, in order: each file given (a pipe too, `<(...)`), and each directory's
/// images (its regular files named `.png`, `.jpg` or `.jpeg`) sorted by name.
fn list(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    for p in inputs {
        if !p.is_dir() {
            if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
                return Err(CliError::io(format!(
                    "`{}` is a .npy tensor, given with images: run tensors and images separately",
                    p.display()
                )));
            }
            if !p.exists() {
                return Err(CliError::io(format!(
                    "cannot read image `{}`: no such file",
                    p.display()
                )));
            }
            files.push(p.clone());
            continue;
        }
        let entries = std::fs::read_dir(p)
            .map_err(|e| CliError::io(format!("cannot list `{}`: {e}", p.display())))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|f| {
                let hidden = f
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'));
                let ext = f.extension().and_then(|e| e.to_str());
                // Regular files only (through symlinks): a FIFO or a device named `x.png`
                // would block the read or never end.
                !hidden
                    && f.is_file()
                    && ext.is_some_and(|e| {
                        IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                    })
            })
            .collect();
        if found.is_empty() {
            return Err(CliError::io(format!(
                "`{}` holds no images (files ending in .png, .jpg or .jpeg)",
                p.display()
            )));
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// How images are preprocessed: the network's defaults, overridden by the flags.
fn preprocess(a: &ImageArgs, net: Network) -> Result<Preprocess, CliError> {
    let mut p = Preprocess::for_network(net.graph()).map_err(CliError::input)?;
    if let Some(crop) = a.crop.filter(|c| *c != p.crop) {
        let decl = &net.graph().inputs[0];
        return Err(CliError::io(format!(
            "--crop {}x{} does not fit input `{}` {}: the crop is the image the network takes",
            crop[0],
            crop[1],
            decl.name,
            memory::dims_text(&decl.dims)
        )));
    }
    p.resize = a.resize.unwrap_or(p.resize);
    p.mean = a.mean.unwrap_or(p.mean);
    p.std = a.std.unwrap_or(p.std);
    p.validate().map_err(CliError::io)?;
    Ok(p)
}

/// Read and preprocess one image within `budgets` (its file's bytes taken from the files'
/// budget before it is read, as its size says, or the largest file's when it has none; its
/// decoding's from the pixels' before any pixel is decoded); the error names the file.
fn load(path: &Path, p: &Preprocess, budgets: &Budgets) -> Result<Array3<f32>, String> {
    let shown = format!("`{}`", path.display());
    let size = std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map_or(picture::MAX_FILE_BYTES, |m| m.len());
    let _file = budgets.files.take(size);
    let bytes = read_bounded(path, picture::MAX_FILE_BYTES, "image").map_err(|e| match e {
        ReadError::TooLarge(_) => format!(
            "{shown} is larger than the {} MiB resnetc reads of an image",
            picture::MAX_FILE_BYTES >> 20
        ),
        ReadError::Io(e) => e.message,
    })?;
    picture::to_tensor_reserving(&bytes, p, |bytes| budgets.pixels.take(bytes))
        .map_err(|m| format!("{shown} {m}"))
}

/// Every image of `paths`, in order, read and decoded side by side on `pool` (one after the
/// other without one).
fn load_all(
    paths: &[PathBuf],
    p: &Preprocess,
    budgets: &Budgets,
    pool: Option<&rayon::ThreadPool>,
) -> Vec<Result<Array3<f32>, String>> {
    use rayon::prelude::*;
    match pool {
        Some(pool) if paths.len() > 1 => pool.install(|| {
            paths
                .par_iter()
                .with_max_len(1)
                .map(|path| load(path, p, budgets))
                .collect()
        }),
        _ => paths.iter().map(|path| load(path, p, budgets)).collect(),
    }
}

/// Run every image in batches; print a result line per image, the failures and the timing
/// at the end. Exit 1 when any image failed.
pub fn run(
    a: &RunArgs,
    net: Network,
    weights: Option<Weights>,
    options: RunOptions,
    labels: Option<&[String]>,
    output: Option<&Path>,
    report: &mut RunReport,
) -> Result<i32, CliError> {
    let machine = matches!(a.format, Format::Json | Format::Yaml);
    let p = preprocess(&a.image, net)?;
    let files = list(&a.feed.input)?;
    // A stated batch is the only one the network runs; a symbolic one is --batch.
    let (batch, fixed) = match net.graph().inputs[0].dims.first() {
        Some(DimSpec::Known(n)) => {
            if a.feed.batch.is_some_and(|b| b != *n) {
                return Err(CliError::io(format!(
                    "network `{}` declares batch {n}; --batch cannot change it",
                    net.graph().name
                )));
            }
            (*n, true)
        }
        _ => (a.feed.batch.unwrap_or(1), false),
    };
    let (session, warnings) = Session::start(
        net,
        weights,
        a.feed.seed(),
        options,
        memory::available(),
        batch,
    )
    .map_err(CliError::input)?;
    super::run::note_seeded_weights(a, net);
    for w in warnings {
        if machine {
            report.diagnostics.push(JsonDiagnostic::plain_warning(&w));
        } else {
            say!("warning: {w}");
        }
    }
    let bar = progress(files.len() as u64);
    let started = Instant::now();
    let mut failures: Vec<String> = Vec::new();
    let mut kept: Vec<ArrayD<f32>> = Vec::new();
    let mut n_ok = 0usize;
    // Images whose output holds NaN or infinite values (see `interp::non_finite_outputs`).
    let mut non_finite = 0usize;
    let chunk = usize::try_from(batch).unwrap_or(usize::MAX);
    let budgets = Budgets::new();
    let decoders = options.threads.min(DECODE_THREADS).min(files.len());
    let pool = (decoders > 1)
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(decoders)
                .build()
                .ok()
        })
        .flatten();
    // The images are read and decoded a group at a time (whole batches, enough images for
    // every decoding thread), then run a batch at a time.
    let group = chunk.saturating_mul(decoders.max(1).div_ceil(chunk));
    let mut loaded = Vec::new().into_iter();
    for (i, paths) in files.chunks(chunk).enumerate() {
        if i % (group / chunk) == 0 {
            let start = i * chunk;
            let end = start.saturating_add(group).min(files.len());
            loaded = load_all(&files[start..end], &p, &budgets, pool.as_ref()).into_iter();
        }
        let mut good: Vec<(&PathBuf, Array3<f32>)> = Vec::new();
        for (path, loaded) in paths.iter().zip(loaded.by_ref()) {
            match loaded {
                Ok(x) => good.push((path, x)),
                Err(m) => {
                    let line = ImageLine {
                        file: path.display().to_string(),
                        output: None,
                        top: None,
                        error: Some(m.clone()),
                    };
                    if machine {
                        bar.suspend(|| super::write_stdout(to_line(&line, a.format)?.as_bytes()))?;
                    }
                    failures.push(m);
                    bar.inc(1);
                }
            }
        }
        if good.is_empty() {
            continue;
        }
        let mut tensors: Vec<Array3<f32>> = good.iter().map(|(_, x)| x.clone()).collect();
        // A stated batch is filled up with black images, whose results are dropped.
        while fixed && (tensors.len() as u64) < batch {
            tensors.push(Array3::zeros(tensors[0].raw_dim()));
        }
        let name = format!(
            "{} image{}",
            good.len(),
            if good.len() == 1 { "" } else { "s" }
        );
        let outputs = session
            .run(vec![(name, picture::batch(&tensors))])
            .map_err(CliError::input)?;
        let (out_name, y) = &outputs[0];
        let mut text = String::new();
        for (i, (path, _)) in good.iter().enumerate() {
            let row = y.index_axis(Axis(0), i);
            non_finite += usize::from(row.iter().any(|v| !v.is_finite()));
            if output.is_some() {
                kept.push(row.to_owned());
            }
            let top = (a.top > 0 && row.ndim() == 1).then(|| {
                let row = row.view().into_dimensionality().expect("checked: 1-D");
                top_classes(row, a.top, labels, a.probs)
            });
            if machine {
                let line = ImageLine {
                    file: path.display().to_string(),
                    output: Some(out_name),
                    top,
                    error: None,
                };
                text.push_str(&to_line(&line, a.format)?);
            } else {
                let result = top.map_or_else(
                    || format!("output {out_name}: {:?}", row.shape()),
                    |t| top_text(&t, a.probs),
                );
                text.push_str(&format!("{}: {result}\n", path.display()));
            }
        }
        bar.suspend(|| super::write_stdout(text.as_bytes()))?;
        n_ok += good.len();
        bar.inc(good.len() as u64);
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    if let Some(path) = output {
        let views: Vec<_> = kept.iter().map(|r| r.view()).collect();
        if let Ok(all) = ndarray::stack(Axis(0), &views) {
            super::run::write_npy_atomically(path, &all)?;
        }
    }
    if non_finite > 0 {
        let w = format!(
            "the output of {non_finite} image{} holds NaN or infinite values; those results mean nothing",
            if non_finite == 1 { "" } else { "s" }
        );
        if machine {
            report.diagnostics.push(JsonDiagnostic::plain_warning(&w));
        } else {
            say!("warning: {w}");
        }
    }
    finish(machine, n_ok, files.len(), elapsed, failures, report)
}

/// The end of a run: each failure (stderr, or a diagnostic of the last JSON line), then the
/// timing (human format).
fn finish(
    machine: bool,
    n_ok: usize,
    n_all: usize,
    elapsed: std::time::Duration,
    failures: Vec<String>,
    report: &mut RunReport,
) -> Result<i32, CliError> {
    if !machine && n_ok > 0 {
        say!("{}", timing_text(n_ok, "image", elapsed));
    }
    if failures.is_empty() {
        return Ok(EXIT_OK);
    }
    let summary = format!(
        "{} of {n_all} image{} could not be run",
        failures.len(),
        if n_all == 1 { "" } else { "s" }
    );
    for m in failures.iter().chain(std::iter::once(&summary)) {
        if machine {
            report.diagnostics.push(JsonDiagnostic::plain(m));
        } else {
            say!("error: {m}");
        }
    }
    Ok(EXIT_ERRORS)
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
fn progress(n: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {pos}/{len} images, {per_sec}, {eta} left")
    {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::Budget;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Shares taken from many threads at once never add up to more than the budget; a share
    /// larger than the whole is cut to it (and still given); every share is given back.
    #[test]
    fn shares_of_a_budget_never_exceed_it() {
        let budget = Budget::new(100);
        let held = AtomicU64::new(0);
        let most = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for t in 0..8u64 {
                let (budget, held, most) = (&budget, &held, &most);
                scope.spawn(move || {
                    for i in 0..200u64 {
                        let want = (t * 37 + i * 11) % 130;
                        let share = budget.take(want);
                        let now = held.fetch_add(share.bytes, Ordering::SeqCst) + share.bytes;
                        most.fetch_max(now, Ordering::SeqCst);
                        assert_eq!(share.bytes, want.min(100));
                        std::thread::yield_now();
                        held.fetch_sub(share.bytes, Ordering::SeqCst);
                    }
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 100);
        assert!(most.load(Ordering::SeqCst) > 0);
        assert_eq!(*budget.left.lock().unwrap(), 100);
    }
}
