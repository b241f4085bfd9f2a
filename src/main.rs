//! The `resnetc` binary: everything happens in `resnetc::cli`.

fn main() {
    std::process::exit(resnetc::cli::main());
}
