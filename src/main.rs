//! The `resnetc` binary: everything happens in `resnetc::cli`.
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(resnetc::cli::main());
}
