//! The `resnetc` binary as a user meets it: exit codes, bad files, hostile input, machine
//! output. Bad input must give a clear message and a non-zero exit code, never a panic.

use std::io::Write;
use std::process::{Command, Output, Stdio};

pub fn resnetc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .args(args)
        .current_dir(crate::root())
        .output()
        .unwrap()
}

pub fn resnetc_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .args(args)
        .current_dir(crate::root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert a run failed cleanly: the expected exit code, a message, and no panic.
pub fn assert_clean_failure(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
}

#[test]
fn check_succeeds_on_an_example_with_a_table() {
    let o = resnetc(&["check", "examples/resnet50.res"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("total params: 25,557,032"), "{out}");
    assert!(out.contains("  layer4.2  "), "{out}");
    let o = resnetc(&["check", "examples/resnet50.res", "--depth", "2"]);
    assert!(
        String::from_utf8(o.stdout)
            .unwrap()
            .contains("layer4.2.conv3")
    );
}

#[test]
fn missing_file_and_directory_are_io_errors() {
    assert_clean_failure(&resnetc(&["check", "no/such/file.res"]), 2, "no such file");
    assert_clean_failure(&resnetc(&["check", "examples"]), 2, "is a directory");
}

#[test]
fn usage_errors_exit_2() {
    assert_clean_failure(&resnetc(&["check"]), 2, "Usage");
    assert_clean_failure(&resnetc(&["frobnicate"]), 2, "unrecognized subcommand");
    assert_clean_failure(
        &resnetc(&["check", "examples/resnet18.res", "--format", "xml"]),
        2,
        "invalid value",
    );
}

#[test]
fn empty_file_has_no_network() {
    assert_clean_failure(&resnetc_stdin(&["check", "-"], b""), 1, "E0101");
}

#[test]
fn binary_input_is_rejected_as_not_utf8() {
    let bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    assert_clean_failure(&resnetc_stdin(&["check", "-"], &bytes), 1, "E0004");
    // Valid UTF-8 with control characters is a syntax error, not a crash.
    assert_clean_failure(
        &resnetc_stdin(&["check", "-"], b"\0\x01\x02network"),
        1,
        "E0001",
    );
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let depth = 100_000;
    let text = format!(
        "network n {{\n input x: [1, 3, 8, 8]\n output {}x{}\n}}\n",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    assert_clean_failure(
        &resnetc_stdin(&["check", "-"], text.as_bytes()),
        1,
        "nested too deep",
    );
    let text = format!(
        "network n {{\n input x: [1, 3, 8, 8]\n output {}x\n}}\n",
        "-".repeat(depth)
    );
    let o = resnetc_stdin(&["check", "-"], text.as_bytes());
    assert_clean_failure(&o, 1, "E0108");
}

#[test]
fn deeply_nested_blocks_are_refused() {
    let n = 100_000;
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!(
            "block b{i} {{ input x\n output x -> b{} }}\n",
            i + 1
        ));
    }
    text.push_str(&format!("block b{n} {{ input x\n output x }}\nnetwork net {{ input x: [1, 3, 8, 8]\n output x -> b0 }}\n"));
    assert_clean_failure(&resnetc_stdin(&["check", "-"], text.as_bytes()), 1, "E0117");
}

#[test]
fn huge_repetition_is_refused_before_allocating() {
    let text = "block u { input x\n output x -> relu }\nnetwork n { input x: [1, 3, 8, 8]\n output x -> [u * 1000000000000] }\n";
    assert_clean_failure(&resnetc_stdin(&["check", "-"], text.as_bytes()), 1, "E0110");
}

#[test]
fn megabyte_identifiers_and_ten_megabyte_files_work() {
    let name = "a".repeat(1 << 20);
    let text = format!("network n {{ input {name}: [1, 3, 8, 8]\n output {name} -> relu }}\n");
    let o = resnetc_stdin(&["check", "-"], text.as_bytes());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = format!("network n {{ input x: [1, 3, 8, 8]\n output x -> {name} }}\n");
    assert_clean_failure(&resnetc_stdin(&["check", "-"], text.as_bytes()), 1, "E0103");

    // About 10 MB: 250,000 statements in one network.
    let mut text = String::from("network big {\n  input v0: [N, 8, 4, 4]\n");
    let n = 250_000;
    for i in 1..=n {
        text.push_str(&format!("  v{i} = v{} -> relu  # a comment\n", i - 1));
    }
    text.push_str(&format!("  output v{n}\n}}\n"));
    assert!(text.len() > 9_000_000);
    let o = resnetc_stdin(&["check", "-", "--format", "short"], text.as_bytes());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn json_output_matches_its_golden_file() {
    for (case, args) in [
        (
            "tutorial_block",
            vec![
                "check",
                "tests/ui/shape/tutorial_block.res",
                "--format",
                "json",
            ],
        ),
        (
            "symbolic_batch_ok",
            vec![
                "check",
                "tests/ui/shape/symbolic_batch_ok.res",
                "--format",
                "json",
            ],
        ),
        (
            "sizes_flatten_linear",
            vec![
                "check",
                "tests/ui/sizes/flatten_linear.res",
                "--sizes",
                "1..128",
                "--format",
                "json",
            ],
        ),
    ] {
        let o = resnetc(&args);
        let out = String::from_utf8(o.stdout).unwrap();
        // Valid JSON with the documented top-level keys.
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(v["diagnostics"].is_array());
        let golden = crate::root().join(format!("tests/ui/json/{case}.json"));
        if let Some(diff) = crate::ui::golden(&golden, &out) {
            panic!("{diff}");
        }
    }
    let o = resnetc(&[
        "check",
        "tests/ui/shape/tutorial_block.res",
        "--format",
        "yaml",
    ]);
    let v: serde_yaml::Value = serde_yaml::from_slice(&o.stdout).unwrap();
    assert_eq!(v["diagnostics"][1]["code"].as_str(), Some("W0101"));
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn explain_prints_every_page_and_rejects_unknown_codes() {
    for code in resnetc::diag::Code::ALL {
        let o = resnetc(&["explain", code.as_str()]);
        assert_eq!(o.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&o.stdout).starts_with(code.as_str()));
    }
    assert_clean_failure(&resnetc(&["explain", "E9999"]), 2, "no such error code");
    // `--list` lists all; with a code too, one of the two is a mistake.
    let o = resnetc(&["explain", "--list"]);
    assert_eq!(o.status.code(), Some(0));
    let listed = String::from_utf8_lossy(&o.stdout).lines().count();
    assert_eq!(listed, resnetc::diag::Code::ALL.len());
    assert_clean_failure(
        &resnetc(&["explain", "--list", "E0203"]),
        2,
        "'--list' cannot be used with",
    );
}

#[test]
fn a_directory_as_the_source_is_named_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .args(["check", "-"])
        .stdin(std::fs::File::open(dir.path()).unwrap())
        .output()
        .unwrap();
    assert_clean_failure(
        &o,
        2,
        "cannot read standard input: it is a directory, not a file",
    );
    let path = dir.path().to_str().unwrap();
    assert_clean_failure(
        &resnetc(&["check", path]),
        2,
        "is a directory, not a .res file",
    );
}

#[test]
fn numeric_flags_say_what_they_take_even_for_a_negative_number() {
    let run = ["run", "examples/cifar_resnet20.res", "--random-input"];
    for (flag, value, needle) in [
        (
            "--top",
            "-1",
            "`-1` is not a number of classes: give 0 or more",
        ),
        (
            "--top",
            "five",
            "`five` is not a number of classes: give 0 or more",
        ),
        ("--seed", "-1", "`-1` is not a seed: give 0 or more"),
        (
            "--batch",
            "-1",
            "`-1` is not a batch size: give 1 to 2^63 - 1",
        ),
        (
            "--batch",
            "0",
            "`0` is not a batch size: give 1 to 2^63 - 1",
        ),
        ("--threads", "-1", "`-1` is not a number of threads"),
    ] {
        let o = resnetc(&[&run[..], &[flag, value]].concat());
        assert_clean_failure(&o, 2, needle);
        assert!(!stderr(&o).contains("tip: to pass"), "{}", stderr(&o));
    }
    // The limits themselves are taken.
    let o = resnetc(&[&run[..], &["--top", "0", "--seed", "18446744073709551615"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn warnings_alone_exit_0_and_errors_exit_1() {
    assert_eq!(
        resnetc(&["check", "tests/ui/lower/unused_value.res"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        resnetc(&["check", "tests/ui/shape/tutorial_block.res"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn color_follows_the_flag() {
    let o = resnetc(&[
        "check",
        "tests/ui/shape/tutorial_block.res",
        "--color",
        "always",
    ]);
    assert!(stderr(&o).contains("\u{1b}["));
    let o = resnetc(&[
        "check",
        "tests/ui/shape/tutorial_block.res",
        "--color",
        "never",
    ]);
    assert!(!stderr(&o).contains("\u{1b}["));
    // `auto` never colors a pipe; on a terminal it colors unless NO_COLOR is set. `script`
    // (util-linux) gives the command a terminal.
    let o = resnetc(&["check", "tests/ui/shape/tutorial_block.res"]);
    assert!(!stderr(&o).contains("\u{1b}["));
    let on_tty = |no_color: bool| {
        let cmd = format!(
            "{} check tests/ui/shape/tutorial_block.res",
            env!("CARGO_BIN_EXE_resnetc")
        );
        let mut c = Command::new("script");
        c.args(["-q", "-c", &cmd, "/dev/null"])
            .current_dir(crate::root())
            .env_remove("NO_COLOR");
        if no_color {
            c.env("NO_COLOR", "1");
        }
        let o = c
            .output()
            .expect("`script` (util-linux) runs the command on a terminal");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(on_tty(false).contains("\u{1b}["));
    assert!(!on_tty(true).contains("\u{1b}["));
}

#[test]
fn check_checks_every_network_and_the_others_need_a_choice() {
    let text = crate::read("examples/identity_mappings.res");
    let all = resnetc_stdin(&["check", "-"], text.as_bytes());
    assert_eq!(all.status.code(), Some(0), "{}", stderr(&all));
    let out = String::from_utf8_lossy(&all.stdout);
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("network "))
        .collect();
    let mut defined = resnetc::network_names(&resnetc::span::Source::new("x", text.clone()))
        .expect("the example parses");
    defined.sort();
    let mut shown: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    shown.sort();
    assert!(defined.len() > 1);
    assert_eq!(shown, defined, "one summary per network");
    let json = resnetc_stdin(&["check", "-", "--format", "json"], text.as_bytes());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["networks"].as_array().unwrap().len(), defined.len());
    for cmd in ["run", "graph"] {
        assert_clean_failure(&resnetc_stdin(&[cmd, "-"], text.as_bytes()), 1, "--network");
    }
    let o = resnetc_stdin(
        &["check", "-", "--network", "full_preact_net"],
        text.as_bytes(),
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .matches("\nnetwork ")
            .count()
            + 1,
        1
    );
    for cmd in ["check", "run", "graph"] {
        assert_clean_failure(
            &resnetc_stdin(&[cmd, "-", "--network", "nope"], text.as_bytes()),
            2,
            "has no network of that name",
        );
    }
}

#[test]
fn check_fix_applies_the_best_fixes_in_place_and_rechecks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.res");
    let original = crate::read("tests/ui/shape/stage_without_downsample.res");
    std::fs::write(&path, &original).unwrap();
    let p = path.to_str().unwrap();
    // Without --fix nothing is written.
    let o = resnetc(&["check", p]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
    let o = resnetc(&["check", p, "--fix"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("fixed 1 error"), "{}", stderr(&o));
    let fixed = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        fixed,
        original.replace("basic(128, stride: 2)", "basic(128, stride: 2, down: true)")
    );
    assert_eq!(resnetc(&["check", p]).status.code(), Some(0));
    assert_clean_failure(
        &resnetc_stdin(&["check", "-", "--fix"], original.as_bytes()),
        2,
        "--fix",
    );
}

#[cfg(unix)]
#[test]
fn rewritten_files_keep_their_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    // A private source fixed in place stays private.
    let src = dir.path().join("net.res");
    std::fs::write(
        &src,
        crate::read("tests/ui/shape/stage_without_downsample.res"),
    )
    .unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = resnetc(&["check", src.to_str().unwrap(), "--fix"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(mode(&src), 0o600);
    // An output written over an existing file keeps that file's mode.
    let dot = dir.path().join("net.dot");
    std::fs::write(&dot, "old").unwrap();
    std::fs::set_permissions(&dot, std::fs::Permissions::from_mode(0o640)).unwrap();
    let o = resnetc(&[
        "graph",
        "examples/resnet18.res",
        "-o",
        dot.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&dot).unwrap().contains("digraph"));
    assert_eq!(mode(&dot), 0o640);
    // A new output gets what any new file gets here (the umask's), not the temporary file's.
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "").unwrap();
    let new = dir.path().join("new.dot");
    let o = resnetc(&[
        "graph",
        "examples/resnet18.res",
        "-o",
        new.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(mode(&new), mode(&plain));
}

/// `args` run with stderr a pipe whose reader is already gone (`2>&1 | head -1` once `head`
/// has its line): the exit code.
fn code_with_stderr_closed(args: &[&str]) -> Option<i32> {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .args(args)
        .current_dir(crate::root())
        .stdout(Stdio::null())
        .stderr(writer)
        .status()
        .unwrap()
        .code()
}

#[test]
fn a_closed_stderr_keeps_the_exit_code() {
    // Diagnostics (written by the renderer), then a message from the command's error.
    assert_eq!(
        code_with_stderr_closed(&["check", "tests/ui/shape/groups_not_dividing.res"]),
        Some(1)
    );
    assert_eq!(
        code_with_stderr_closed(&["check", "no/such/file.res"]),
        Some(2)
    );
    // A warning line, then the run's timing line.
    assert_eq!(
        code_with_stderr_closed(&[
            "run",
            "examples/resnet18.res",
            "--random-input",
            "--seed",
            "1"
        ]),
        Some(0)
    );
}
