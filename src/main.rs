//! The `resnetc` binary: everything happens in `resnetc::cli`.
#![forbid(unsafe_code)]

/// Large blocks (weights, activations) in transparent huge pages where the kernel offers them.
#[global_allocator]
static ALLOCATOR: resnetc::machine::memory::HugePages = resnetc::machine::memory::HugePages;

fn main() {
    resnetc::machine::memory::keep_freed_memory();
    std::process::exit(resnetc::cli::main());
}
