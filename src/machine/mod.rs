//! The machine: the only code in resnetc that uses `unsafe`.
//!
//! Three things need it. The GEMM micro-kernels ([`simd`]) use the CPU's vector instructions,
//! chosen at run time from the features the CPU reports (AVX-512, else AVX2 with FMA, else
//! portable Rust). Weights files are memory-mapped ([`mapped`]) so that loading does not hold
//! the file and the unpacked tensors at once, and the pages of each tensor are handed back to
//! the kernel once it has been read. And the C allocator is asked to keep freed memory for the
//! next layer's activations, and the kernel to back large blocks with huge pages
//! ([`memory`]). The crate root denies `unsafe_code`; this module alone allows it, and every
//! `unsafe` block here carries a `// SAFETY:` comment saying why it holds.
//! Everything this module exports is a safe function or type.
#![allow(unsafe_code)]

pub mod mapped;
pub mod memory;
pub mod simd;
