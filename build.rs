//! Generates the ONNX message types from the vendored `proto/onnx.proto` (ONNX's own schema)
//! with prost, compiled by protox, a protobuf compiler written in Rust: the build needs no
//! `protoc` binary and downloads nothing.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = protox::compile(["onnx.proto"], ["proto"])?;
    // The schema's comments are not Rust docs: their indented blocks would become doctests.
    prost_build::Config::new()
        .disable_comments(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
