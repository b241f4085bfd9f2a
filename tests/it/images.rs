//! `run` on images, the command line: bad images, directories, labels, probabilities and
//! flags. Every file is made here, in a temporary directory (the image crate writes the good
//! ones); the network is a small one with a 32x32 RGB input and 10 classes.

use crate::cli::{assert_clean_failure, resnetc, stderr};
use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;
use std::path::{Path, PathBuf};

const SMALL: &str = "tests/ui/shape/symbolic_batch_ok.res";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A `w x h` PNG (or JPEG, by the extension) of a seeded pattern.
fn image_file(dir: &Path, name: &str, w: u32, h: u32) -> PathBuf {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7 + y) as u8, (y * 5) as u8, (x ^ y) as u8])
    });
    let path = dir.join(name);
    img.save(&path).unwrap();
    path
}

fn stdout_lines(o: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn corrupt_truncated_and_unsupported_images_are_named_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = std::fs::read(image_file(d, "good.png", 48, 40)).unwrap();
    let jpeg = std::fs::read(image_file(d, "good.jpg", 48, 40)).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "corrupt.png",
            [&good[..16], &[0xAB; 200][..]].concat(),
            "is a corrupt or truncated PNG image",
        ),
        (
            "truncated.png",
            good[..good.len() / 2].to_vec(),
            "is a truncated PNG image",
        ),
        (
            "truncated.jpg",
            jpeg[..jpeg.len() / 3].to_vec(),
            "is a truncated JPEG image",
        ),
        (
            "corrupt.jpg",
            [
                &jpeg[..20],
                &[0xAB; 200][..],
                &[0xFF, 0xDA, 0, 2, 0xFF, 0xD9],
            ]
            .concat(),
            "is a corrupt or truncated JPEG image",
        ),
        (
            "cut_in_scan.jpg",
            jpeg[..jpeg.len() * 3 / 4].to_vec(),
            "is a truncated JPEG image (its last scan has no end marker)",
        ),
        (
            "anim.gif",
            b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(),
            "is a GIF image; resnetc reads PNG and JPEG images",
        ),
        (
            "notes.png",
            b"just text".to_vec(),
            "is not a PNG or JPEG image",
        ),
        ("empty.jpg", Vec::new(), "is empty, not an image"),
    ];
    for (name, bytes, needle) in cases {
        let path = d.join(name);
        std::fs::write(&path, bytes).unwrap();
        let o = resnetc(&["run", SMALL, "--input", s(&path)]);
        assert_clean_failure(&o, 1, &format!("`{}` {needle}", path.display()));
        assert!(
            stdout_lines(&o).is_empty(),
            "{name}: {:?}",
            stdout_lines(&o)
        );
    }
}

#[test]
fn images_whose_outputs_are_not_finite_are_counted_in_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("images");
    std::fs::create_dir(&d).unwrap();
    image_file(&d, "a.png", 32, 32);
    image_file(&d, "b.png", 40, 32);
    let net = dir.path().join("overflow.res");
    std::fs::write(&net, crate::robust::OVERFLOWING).unwrap();
    let o = resnetc(&[
        "run",
        s(&net),
        "--input",
        s(&d),
        "--crop",
        "32",
        "--resize",
        "32",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: the output of 2 images holds NaN or infinite values"),
        "{}",
        stderr(&o)
    );
    let o = resnetc(&["run", SMALL, "--input", s(&d)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("NaN"), "{}", stderr(&o));
}

/// A progressive JPEG is refused when its pixels and coefficients together would take more
/// than 1 GiB to decode, before decoding: a 40x24 file whose frame header now claims
/// 12000x12000 pixels (432 MB of RGB, within the limit on its own) and whose first scan is
/// padded so that its coded data could hold that many blocks. Decoding it would hold the
/// output and 3 components' coefficients of 2 bytes each: 144e6 * (3 + 6) bytes, 1236 MiB.
#[test]
fn a_progressive_jpeg_is_refused_when_its_coefficients_pass_the_limit() {
    let mut jpeg =
        std::fs::read(crate::root().join("tests/data/progressive-444-40x24.jpg")).unwrap();
    // SOF2 (FF C2): length (2), precision (1), height (2), width (2).
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC2]).unwrap();
    jpeg[sof + 5..sof + 7].copy_from_slice(&12000u16.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&12000u16.to_be_bytes());
    // After the first start-of-scan segment (its length counts itself, not the marker).
    let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let data = sos + 2 + usize::from(u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]));
    jpeg.splice(data..data, std::iter::repeat_n(0u8, 20_000));
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("huge.jpg");
    std::fs::write(&img, &jpeg).unwrap();
    let o = resnetc(&["run", SMALL, "--input", s(&img)]);
    assert_clean_failure(
        &o,
        1,
        "huge.jpg` is a progressive JPEG image larger than resnetc decodes: its 12000x12000 pixels take 1236 MiB to decode (at most 1024 MiB)",
    );
}

#[test]
fn one_bad_image_in_a_directory_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    image_file(d, "a.png", 40, 32);
    std::fs::write(d.join("b.png"), b"\x89PNG\r\n\x1a\n broken").unwrap();
    image_file(d, "c.jpg", 32, 50);
    // Not images: skipped without a word.
    std::fs::write(d.join("notes.txt"), "a text file").unwrap();
    std::fs::write(d.join(".hidden.png"), "hidden").unwrap();
    let o = resnetc(&["run", SMALL, "--input", s(d), "--batch", "2", "--top", "3"]);
    assert_clean_failure(&o, 1, "1 of 3 images could not be run");
    let err = stderr(&o);
    assert!(
        err.contains(&format!("`{}`", d.join("b.png").display())),
        "{err}"
    );
    let lines = stdout_lines(&o);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with(&format!("{}: top-3 ", d.join("a.png").display())));
    assert!(lines[1].starts_with(&format!("{}: top-3 ", d.join("c.jpg").display())));
    // JSON lines: one per image in order, the bad one with its error, then the diagnostics.
    let o = resnetc(&["run", SMALL, "--input", s(d), "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let docs: Vec<serde_json::Value> = stdout_lines(&o)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 4, "{docs:?}");
    assert_eq!(docs[0]["top"].as_array().unwrap().len(), 5);
    assert!(docs[1]["error"].as_str().unwrap().contains("b.png"));
    assert!(docs[1].get("top").is_none());
    assert!(docs[2]["file"].as_str().unwrap().ends_with("c.jpg"));
    let diags = docs[3]["diagnostics"].as_array().unwrap();
    assert!(diags.iter().all(|d| d["severity"] == "error"));
    assert!(diags[0]["message"].as_str().unwrap().contains("b.png"));
}

/// The images of a directory are read and decoded side by side (as many threads as
/// `--threads`): the result lines, their order, and the `-o` outputs are those of one thread
/// decoding one image at a time, whatever the batch, with a bad image among them.
#[test]
fn images_decoded_side_by_side_give_what_one_at_a_time_gives() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for i in 0..7u32 {
        let ext = if i % 2 == 0 { "png" } else { "jpg" };
        image_file(d, &format!("i{i}.{ext}"), 36 + 5 * i, 60 - 3 * i);
    }
    std::fs::write(d.join("i3b.png"), b"\x89PNG\r\n\x1a\n broken").unwrap();
    let run = |threads: &str, batch: &str| {
        let out = d.join(format!("out-{threads}-{batch}.npy"));
        let o = resnetc(&[
            "run",
            SMALL,
            "--input",
            s(d),
            "--threads",
            threads,
            "--batch",
            batch,
            "--top",
            "3",
            "-o",
            s(&out),
        ]);
        assert_clean_failure(&o, 1, "1 of 8 images could not be run");
        let y = ArrayD::<f32>::read_npy(std::fs::File::open(&out).unwrap()).unwrap();
        (stdout_lines(&o), y)
    };
    let (lines, y) = run("1", "1");
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert_eq!(y.shape(), &[7, 10]);
    for (threads, batch) in [("2", "1"), ("2", "3"), ("4", "2"), ("3", "8")] {
        let (l, yb) = run(threads, batch);
        assert_eq!(l, lines, "--threads {threads} --batch {batch}");
        assert_eq!(yb, y, "--threads {threads} --batch {batch}");
    }
}

#[test]
fn a_directory_without_images_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = resnetc(&["run", SMALL, "--input", s(dir.path())]);
    assert_clean_failure(
        &o,
        2,
        &format!("`{}` holds no images", dir.path().display()),
    );
    std::fs::write(dir.path().join("readme.txt"), "no images here").unwrap();
    std::fs::create_dir(dir.path().join("sub.png")).unwrap();
    let o = resnetc(&["run", SMALL, "--input", s(dir.path())]);
    assert_clean_failure(&o, 2, "holds no images");
}

#[test]
fn a_directory_takes_only_regular_files() {
    // A FIFO named like an image would block its read forever (nothing writes to it): it is
    // skipped, as are directories; a symlink to an image is taken.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = image_file(d, "a.png", 40, 36);
    std::os::unix::fs::symlink(&img, d.join("b.png")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(d.join("fifo.png"))
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .args(["run", SMALL, "--input", s(d), "--top", "1"])
        .current_dir(crate::root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("`run` on a directory with a FIFO did not finish within 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let files: Vec<String> = stdout_lines(&o)
        .iter()
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    assert_eq!(
        files,
        [s(&img).to_string(), s(&d.join("b.png")).to_string()]
    );
}

#[test]
fn labels_must_have_one_line_per_class() {
    let dir = tempfile::tempdir().unwrap();
    let img = image_file(dir.path(), "x.png", 40, 40);
    let labels = dir.path().join("labels.txt");
    for (text, n) in [
        ("a\nb\nc\nd\ne\nf\ng\nh\ni\n", 9),
        ("", 0),
        ("0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10", 11),
    ] {
        std::fs::write(&labels, text).unwrap();
        let o = resnetc(&["run", SMALL, "--input", s(&img), "--labels", s(&labels)]);
        assert_clean_failure(
            &o,
            1,
            &format!(
                "labels `{}` has {n} lines, but output `logits` has 10 classes",
                labels.display()
            ),
        );
    }
    let o = resnetc(&["run", SMALL, "--random-input", "--labels", "no/such.txt"]);
    assert_clean_failure(&o, 2, "no/such.txt");
}

/// Labels name the classes; `--probs` shows softmax probabilities, computed here from the
/// logits that `-o` writes.
#[test]
fn labels_and_probabilities_are_shown_beside_the_classes() {
    let dir = tempfile::tempdir().unwrap();
    let img = image_file(dir.path(), "x.png", 64, 48);
    let labels = dir.path().join("labels.txt");
    let names: Vec<String> = (0..10).map(|i| format!("class number {i}")).collect();
    std::fs::write(&labels, names.join("\r\n") + "\r\n").unwrap();
    let y_path = dir.path().join("y.npy");
    let args = [
        "run",
        SMALL,
        "--input",
        s(&img),
        "--labels",
        s(&labels),
        "--probs",
        "--top",
        "3",
        "--seed",
        "3",
        "-o",
        s(&y_path),
    ];
    let o = resnetc(&[&args[..], &["--format", "json"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let y = ArrayD::<f32>::read_npy(std::fs::File::open(&y_path).unwrap()).unwrap();
    assert_eq!(y.shape(), &[1, 10]);
    let logits: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
    let max = logits.iter().cloned().fold(f64::MIN, f64::max);
    let sum: f64 = logits.iter().map(|v| (v - max).exp()).sum();
    let line: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let top = line["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    for c in top {
        let class = c["class"].as_u64().unwrap() as usize;
        assert_eq!(c["label"], names[class]);
        let p = (logits[class] - max).exp() / sum;
        assert!((c["prob"].as_f64().unwrap() - p).abs() < 1e-6, "{c}");
        assert!((c["score"].as_f64().unwrap() - logits[class]).abs() < 1e-6);
    }
    // The human line: index, name, probability.
    let o = resnetc(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let best = top[0]["class"].as_u64().unwrap() as usize;
    let p = top[0]["prob"].as_f64().unwrap();
    let expected = format!(
        "{}: top-3 {best} class number {best} ({p:.4}), ",
        img.display()
    );
    assert!(
        stdout_lines(&o)[0].starts_with(&expected),
        "{:?}",
        stdout_lines(&o)
    );
    assert!(stderr(&o).contains("ran 1 image in"), "{}", stderr(&o));
    // Labels work on a .npy run too.
    let o = resnetc(&[
        "run",
        SMALL,
        "--random-input",
        "--labels",
        s(&labels),
        "--top",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("class number"));
    assert!(stderr(&o).contains("ran 1 sample in"), "{}", stderr(&o));
}

#[test]
fn image_flags_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let img = image_file(dir.path(), "x.png", 40, 40);
    for (extra, needle) in [
        (
            &["--resize", "20"][..],
            "resize 20 is smaller than the crop 32x32: an image's shorter side is resized to it before the center crop, so it must be at least 32",
        ),
        (
            &["--resize", "40000"],
            "`40000` is not a size in pixels: give 1 to 32768",
        ),
        (
            &["--resize", "0"],
            "`0` is not a size in pixels: give 1 to 32768",
        ),
        (
            &["--resize", "-3"],
            "`-3` is not a size in pixels: give 1 to 32768",
        ),
        (&["--crop", "0"], "is not a crop size"),
        (&["--mean", "0.5,0.5"], "is not three numbers"),
        (
            &["--std", "1,0,1"],
            "std 0 for channel G: each channel's std must be finite and non-zero",
        ),
        (
            &["--mean", "0,0,inf"],
            "mean inf for channel B: each channel's mean must be finite",
        ),
        // A negative value is a value, not a flag.
        (&["--std", "-1,0,1"], "std 0 for channel G"),
        (
            &["--crop", "24x32", "--resize", "40"],
            "--crop 24x32 does not fit input `image` [N, 3, 32, 32]",
        ),
    ] {
        let o = resnetc(&[&["run", SMALL, "--input", s(&img)][..], extra].concat());
        assert_clean_failure(&o, 2, needle);
    }
    let o = resnetc(&[
        "run",
        SMALL,
        "--input",
        s(&img),
        "--crop",
        "32x32",
        "--resize",
        "40",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Preprocessing flags belong to images; a .npy input is not resized.
    let o = resnetc(&["run", SMALL, "--random-input", "--crop", "32"]);
    assert_clean_failure(&o, 2, "--crop applies to image inputs");
    // Tensors and images do not mix; a network without an RGB input takes no images.
    let npy = dir.path().join("x.npy");
    ndarray_npy::write_npy(&npy, &ndarray::Array4::<f32>::zeros((1, 3, 32, 32))).unwrap();
    let o = resnetc(&["run", SMALL, "--input", s(&img), "--input", s(&npy)]);
    assert_clean_failure(&o, 2, "run tensors and images separately");
    let gray = dir.path().join("gray.res");
    std::fs::write(
        &gray,
        "network gray {\n    input x: [N, 1, 8, 8]\n    output y = x -> flatten\n}\n",
    )
    .unwrap();
    let o = resnetc(&["run", s(&gray), "--input", s(&img)]);
    assert_clean_failure(&o, 1, "network `gray` cannot take images");
}

#[test]
fn images_are_recognised_by_their_extension() {
    let dir = tempfile::tempdir().unwrap();
    // A PNG without an image name is read as a tensor, and the message says what it is.
    let png = image_file(dir.path(), "x.png", 40, 40);
    let renamed = dir.path().join("x.bin");
    std::fs::copy(&png, &renamed).unwrap();
    let o = resnetc(&["run", SMALL, "--input", s(&renamed)]);
    assert_clean_failure(&o, 1, "is a Png image, not a .npy file");
    // Upper-case extensions are images too; a missing image is an IO error.
    let upper = dir.path().join("Y.JPG");
    std::fs::copy(image_file(dir.path(), "y.jpg", 40, 40), &upper).unwrap();
    let o = resnetc(&["run", SMALL, "--input", s(&upper)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let missing = dir.path().join("missing.png");
    let o = resnetc(&["run", SMALL, "--input", s(&missing)]);
    assert_clean_failure(&o, 2, "missing.png");
}
