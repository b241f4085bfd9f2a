//! The C allocator's handling of freed memory, tuned for a run's activations.
//!
//! A run allocates and frees activations of up to tens of megabytes, layer after layer. By
//! default glibc serves such a block with a fresh `mmap` and returns it to the kernel on free
//! (or trims it off the heap), so the next layer's output is fresh pages again and its first
//! write to every page is a page fault: ResNet-50 at batch 8 took about 15,000 faults per run,
//! and its 7x7 stem conv ran at 94 GFLOP/s instead of 216. [`keep_freed_memory`] asks the
//! allocator to keep freed memory for reuse instead; the peak (the most memory live at once)
//! does not grow, since what is kept is what the next layers take again. It also keeps every
//! thread on the one main heap: a run executes on a worker thread of its pool, whose own arena
//! grows in separate heaps of at most 64 MiB, and there the freed memory was not reliably
//! kept: at batch 8 (ResNet-50's stem output alone is 25.7 MB) some processes faulted in
//! 400,000 to 650,000 fresh pages over 33 runs and took twice as long in their stem conv,
//! where on the main heap every process takes about 54,000.

/// Ask the allocator to serve blocks of up to 32 MiB from its main heap, for every thread, and
/// to keep freed memory rather than hand it back to the kernel (on glibc; elsewhere nothing
/// changes). Affects the whole process: the `resnetc` binary calls it at start, before any
/// thread is spawned. (Small blocks still come from each thread's own cache, without a lock.)
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc's largest mmap threshold on 64-bit targets; past it a request is refused.
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        const TRIM_THRESHOLD: libc::c_int = 1 << 30;
        // SAFETY: `mallopt` only sets allocator parameters; it takes any parameter number and
        // value (returning 0 for ones it refuses), is safe to call from any thread at any time
        // in glibc, and touches no memory of ours.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
