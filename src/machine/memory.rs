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
//!
//! [`HugePages`] is the allocator the binary installs: the system's, with the large blocks
//! (weights, activations) advised into 2 MiB pages, which the kernel of the Intel Xeon measured
//! gives only on request. ResNet-50's last stage, whose 60 MB of weights stream from memory
//! once per run, ran 6% faster with them (docs/benchmarks.md).

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

/// The smallest block [`HugePages`] asks huge pages for: 4 MiB, so that a block holds at
/// least one whole 2 MiB page.
pub const HUGE_BLOCK: usize = 4 << 20;

/// The system allocator, asking the kernel to back the 2 MiB-aligned interior of every block
/// of at least [`HUGE_BLOCK`] bytes with transparent huge pages (`madvise(MADV_HUGEPAGE)`, on
/// Linux; elsewhere it is the system allocator). Where the kernel gives huge pages only on
/// request (`/sys/kernel/mm/transparent_hugepage/enabled` set to `madvise`), a network's
/// weights and large activations otherwise sit in 4 KiB pages: the last stages stream their
/// weights from memory in 4 KiB pieces, each a TLB miss, and a conv on a 56x56 map writes
/// 256 planes in 256 different pages per tile. Only whole pages inside one block are advised,
/// so no memory outside a block is ever backed on its account. The `resnetc` binary and the
/// run benchmarks install it with `#[global_allocator]`.
pub struct HugePages;

/// The whole 2 MiB pages inside a block of `len` bytes at address `at`, as `(start, end)`
/// addresses, when it has any and is at least [`HUGE_BLOCK`] long.
pub fn huge_range(at: usize, len: usize) -> Option<(usize, usize)> {
    const PAGE: usize = 2 << 20;
    if len < HUGE_BLOCK || at == 0 {
        return None;
    }
    let start = at.checked_next_multiple_of(PAGE)?;
    let end = at.checked_add(len)? / PAGE * PAGE;
    (end > start).then_some((start, end))
}

#[cfg(target_os = "linux")]
fn advise_huge(p: *mut u8, len: usize) {
    if let Some((start, end)) = huge_range(p as usize, len) {
        // SAFETY: `start..end` lies inside the block just allocated at `p` (`len` bytes,
        // `huge_range`), which this process owns; `MADV_HUGEPAGE` only sets how the kernel
        // backs those pages and never changes or discards their contents. A failure (huge
        // pages disabled) changes nothing, so its result is ignored.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_: *mut u8, _: usize) {}

// SAFETY: every method hands the request to `System` unchanged and returns what it returns;
// `advise_huge` only advises pages inside the block `System` returned.
unsafe impl std::alloc::GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees are `System`'s.
        let p = unsafe { std::alloc::System.alloc(layout) };
        advise_huge(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        advise_huge(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `p` came from `System` with `layout` (this allocator's other methods).
        unsafe { std::alloc::System.dealloc(p, layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        // SAFETY: as in `dealloc`, and the caller's guarantees on `size` are `System`'s.
        let q = unsafe { std::alloc::System.realloc(p, layout, size) };
        advise_huge(q, size);
        q
    }
}

#[cfg(test)]
mod tests {
    use super::{HUGE_BLOCK, huge_range};

    /// Only whole 2 MiB pages inside the block are advised, and only for large blocks.
    #[test]
    fn huge_range_is_the_whole_pages_inside_a_large_block() {
        const PAGE: usize = 2 << 20;
        assert_eq!(huge_range(PAGE, HUGE_BLOCK - 1), None);
        assert_eq!(huge_range(0, 1 << 30), None);
        assert_eq!(huge_range(PAGE, HUGE_BLOCK), Some((PAGE, 3 * PAGE)));
        assert_eq!(huge_range(PAGE + 1, HUGE_BLOCK), Some((2 * PAGE, 3 * PAGE)));
        assert_eq!(huge_range(usize::MAX - HUGE_BLOCK + 2, HUGE_BLOCK), None);
        for at in [1usize, 4095, PAGE - 7, 3 * PAGE + 12345] {
            for len in [HUGE_BLOCK, HUGE_BLOCK + 1, 5 * PAGE + 3, 64 << 20] {
                let (s, e) = huge_range(at, len).expect("4 MiB or more hold a whole page");
                assert!(s >= at && e <= at + len && s % PAGE == 0 && e % PAGE == 0 && e > s);
            }
        }
    }
}
