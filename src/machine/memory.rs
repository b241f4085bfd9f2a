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
//! once per run, ran 6% faster with them (docs/benchmarks.md). It also starts the blocks of
//! [`LINED_BLOCK`] bytes and more that are asked for uninitialised on a cache line ([`LINE`]),
//! where glibc gives 16 bytes; the kernels take their outputs so ([`zeros`]), and their copies
//! and scratch grow so. The kernels read and write the activations in 64-byte vectors, and a
//! plane of a 56x56 or 28x28 map is a whole number of lines, so on a lined block each such
//! vector is one line instead of two halves: ResNet-50 with AVX-512 on 2 threads about 6%
//! faster (docs/benchmarks.md).

/// Ask the allocator to serve blocks of up to 32 MiB from its main heap, for every thread, and
/// to keep freed memory rather than hand it back to the kernel (on glibc; elsewhere nothing
/// changes). Affects the whole process: the `resnetc` binary calls it at start, before any
/// thread is spawned. (Small blocks still come from each thread's own cache, without a lock.)
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const TRIM_THRESHOLD: libc::c_int = 1 << 30;
        // SAFETY: `mallopt` only sets allocator parameters; it takes any parameter number and
        // value (returning 0 for ones it refuses), is safe to call from any thread at any time
        // in glibc, and touches no memory of ours.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MAPPED_BLOCK as libc::c_int);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// `len` zeros in a vector whose memory is asked for uninitialised and then written, so that
/// under [`HugePages`] a large one starts on a cache line: for the kernels' outputs. A vector
/// of zeros asked for as such (`vec![0.0; len]`, `Array::zeros`) comes from `calloc`, which
/// [`HugePages`] leaves as it is: on a heap's fresh memory it writes nothing (the kernel's
/// pages are zero), where zeroing a lined block by hand touched every page at once: ResNet-152's
/// `run`, whose packed weights are such vectors, took 0.78 s and 293.7 MB at its peak instead
/// of 0.51 s and 266.9 MB with every zeroed block lined (Intel Xeon, 2026-12-06).
pub fn zeros(len: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    // Opaque to the optimiser, which may turn an allocation and the zeros written after it
    // into one `alloc_zeroed` call.
    std::hint::black_box(v.as_mut_ptr());
    v.resize(len, 0.0);
    v
}

/// The smallest block glibc maps by itself once [`keep_freed_memory`] has run (its largest
/// mmap threshold on 64-bit targets; past it a request is refused): 32 MiB.
pub const MAPPED_BLOCK: usize = 32 << 20;

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

/// The alignment [`HugePages`] gives the blocks it lines (asked for uninitialised, from
/// [`LINED_BLOCK`] bytes up to [`MAPPED_BLOCK`]): a cache line.
pub const LINE: usize = 64;

/// The smallest block [`HugePages`] starts on a cache line: 64 KiB, the size of the
/// activations, copies and scratch the kernels stream through (the smallest of ResNet's at
/// batch 1, a 7x7 map of 512 channels, is 100 KB). Below it a block is as the system's
/// allocator places it.
pub const LINED_BLOCK: usize = 64 << 10;

/// Whether [`HugePages`] takes a block of `layout` from the C allocator itself, on a cache line:
/// from [`LINED_BLOCK`] bytes up to (not including) [`MAPPED_BLOCK`], asking no more than the
/// 16 bytes `malloc` aligns to (more is left to `System`), on Linux; blocks asked for zeroed
/// are not (see [`zeros`]). The blocks glibc maps by itself stay `System`'s: `realloc` remaps
/// them without a copy, where a block on a line would be copied by hand.
fn lined(layout: std::alloc::Layout) -> bool {
    cfg!(target_os = "linux")
        && (LINED_BLOCK..MAPPED_BLOCK).contains(&layout.size())
        && layout.align() <= 16
}

/// A block of `size` bytes (at least one) on a cache line from the C allocator, or null.
#[cfg(target_os = "linux")]
fn alloc_lined(size: usize) -> *mut u8 {
    let mut p = std::ptr::null_mut();
    // SAFETY: `LINE` is a power of two and a multiple of the size of a pointer, as
    // `posix_memalign` requires; it writes `p` only on success, and the block it returns may
    // be given to `realloc` and `free` as any other of `malloc`'s.
    if unsafe { libc::posix_memalign(&mut p, LINE, size) } != 0 {
        return std::ptr::null_mut();
    }
    p.cast()
}

#[cfg(not(target_os = "linux"))]
fn alloc_lined(_: usize) -> *mut u8 {
    unreachable!("`lined` holds only on Linux")
}

/// `realloc` for a block [`lined`] holds for, before or after: the C allocator's, which keeps
/// the block where it is when it shrinks; where it moves a block that is to be lined
/// (`realign`: [`lined`] holds for it after) to an address off a line, the block is copied
/// once more onto one (if that fails, the block stays where `realloc` put it, still valid for
/// its layout).
///
/// # Safety
/// `p` came from the C allocator (this allocator's blocks of at most 16 bytes' alignment all
/// do) and is live; `size` is not zero.
#[cfg(target_os = "linux")]
unsafe fn realloc_lined(p: *mut u8, size: usize, realign: bool) -> *mut u8 {
    // SAFETY: the caller's guarantees are `realloc`'s.
    let q: *mut u8 = unsafe { libc::realloc(p.cast(), size) }.cast();
    if q.is_null() || !realign || (q as usize).is_multiple_of(LINE) {
        return q;
    }
    let r = alloc_lined(size);
    if r.is_null() {
        return q;
    }
    // SAFETY: `q` and `r` are two live blocks of `size` bytes each; `q`, now copied, is freed
    // once and not used again.
    unsafe {
        std::ptr::copy_nonoverlapping(q, r, size);
        libc::free(q.cast());
    }
    r
}

#[cfg(not(target_os = "linux"))]
unsafe fn realloc_lined(_: *mut u8, _: usize, _: bool) -> *mut u8 {
    unreachable!("`lined` holds only on Linux")
}

// SAFETY: a block `lined` holds for comes from `posix_memalign` on a line (so at the alignment
// its layout asks, at most 16) and goes back through `realloc` and `free`; every other request
// is handed to `System` unchanged (it serves alignments of up to 16 from `malloc` too, so a
// block may pass from one way to the other through `realloc`: `realloc_lined` takes any block
// of `malloc`'s). `advise_huge` only advises pages inside the block returned.
unsafe impl std::alloc::GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = if lined(layout) {
            alloc_lined(layout.size())
        } else {
            // SAFETY: the caller's guarantees are `System`'s.
            unsafe { std::alloc::System.alloc(layout) }
        };
        advise_huge(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // Left to `calloc`, lined or not (see `zeros`).
        // SAFETY: as in `alloc`.
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        advise_huge(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: std::alloc::Layout) {
        if lined(layout) {
            // SAFETY: `p` came from the C allocator at an alignment of at most 16
            // (`alloc_lined`, `realloc_lined`, or `calloc` through `System.alloc_zeroed`),
            // whose `free` takes any of its blocks, and the caller gives it back once.
            unsafe { libc::free(p.cast()) }
        } else {
            // SAFETY: `p` came from `System` with `layout`, or from the C allocator with an
            // alignment of at most 16, which `System`'s `free` takes the same way.
            unsafe { std::alloc::System.dealloc(p, layout) }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        let after = std::alloc::Layout::from_size_align(size, layout.align()).is_ok_and(lined);
        let q = if lined(layout) || after {
            // SAFETY: both layouts align to at most 16, so `p` came from the C allocator
            // (`alloc_lined`, or `System`'s `malloc` or `calloc`); `size` is not zero (the
            // caller's guarantee).
            unsafe { realloc_lined(p, size, after) }
        } else {
            // SAFETY: as in `dealloc`, and the caller's guarantees on `size` are `System`'s.
            unsafe { std::alloc::System.realloc(p, layout, size) }
        };
        advise_huge(q, size);
        q
    }
}

#[cfg(test)]
mod tests {
    use super::{HUGE_BLOCK, HugePages, LINE, LINED_BLOCK, MAPPED_BLOCK, huge_range};
    use std::alloc::{GlobalAlloc, Layout};

    /// Blocks of at least `LINED_BLOCK` bytes start on a cache line, through growing and
    /// shrinking, and keep their contents.
    #[test]
    #[cfg(target_os = "linux")]
    fn large_blocks_start_on_a_cache_line() {
        let a = HugePages;
        let on_line = |p: *mut u8| !p.is_null() && (p as usize).is_multiple_of(LINE);
        // SAFETY: every block is allocated with a non-zero size, used within its size, and
        // given back once with the layout it has then.
        unsafe {
            let mut blocks = Vec::new();
            for size in [
                LINED_BLOCK,
                LINED_BLOCK + 4,
                3 << 20,
                5 << 20,
                MAPPED_BLOCK - 4,
            ] {
                let layout = Layout::from_size_align(size, 4).unwrap();
                let p = a.alloc(layout);
                assert!(on_line(p), "{size} bytes at {p:p}");
                blocks.push((p, layout));
            }
            // A small block grown past the threshold, and back down: still on a line while
            // large, its first bytes kept.
            let small = Layout::from_size_align(1000, 4).unwrap();
            let p = a.alloc(small);
            std::ptr::write_bytes(p, 7, 1000);
            let p = a.realloc(p, small, 2 << 20);
            assert!(on_line(p));
            assert!(std::slice::from_raw_parts(p, 1000).iter().all(|&b| b == 7));
            let big = Layout::from_size_align(2 << 20, 4).unwrap();
            let p = a.realloc(p, big, LINED_BLOCK + 100);
            assert!(on_line(p));
            assert!(std::slice::from_raw_parts(p, 1000).iter().all(|&b| b == 7));
            let p2 = a.realloc(
                p,
                Layout::from_size_align(LINED_BLOCK + 100, 4).unwrap(),
                500,
            );
            assert!(std::slice::from_raw_parts(p2, 500).iter().all(|&b| b == 7));
            a.dealloc(p2, Layout::from_size_align(500, 4).unwrap());
            for (p, layout) in blocks {
                a.dealloc(p, layout);
            }
        }
    }

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
