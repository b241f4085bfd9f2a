//! The `resnetc` binary: everything happens in `resnetc::cli`.
#![forbid(unsafe_code)]

fn main() {
    resnetc::machine::memory::keep_freed_memory();
    std::process::exit(resnetc::cli::main());
}
