//! A read-only memory-mapped file whose pages can be released once read.

use std::fs::File;
use std::ops::Range;

/// A file mapped read-only into memory.
///
/// Reading a tensor touches its pages, which then count in the process's resident memory;
/// [`Mapped::release`] drops them again once the tensor has been copied out, so that loading a
/// network holds about one tensor of the file at a time instead of all of it.
#[derive(Debug)]
pub struct Mapped {
    map: memmap2::Mmap,
}

impl Mapped {
    /// Map `file` (opened for reading).
    ///
    /// The file must not be truncated or rewritten while it is mapped: resnetc never writes
    /// its inputs, and another process doing so mid-run is outside what `run` guards against
    /// (as for any program that maps its input).
    pub fn open(file: &File) -> std::io::Result<Mapped> {
        // SAFETY: the mapping is read-only and private to this value; nothing in resnetc
        // writes to the file. The remaining hazard, another process truncating the file while
        // it is mapped, is inherent to memory-mapping and documented above.
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(Mapped { map })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Hand the pages around `range` back to the operating system: every page of the 2 MiB
    /// blocks it touches ([`release_span`]). Later reads of them still see the file's bytes
    /// (they are read again from the page cache); they are only no longer resident. Failure is
    /// harmless and ignored.
    ///
    /// Whole blocks, not just the pages inside `range`: the kernel keeps a file read ahead in
    /// large folios (up to 2 MiB) and maps a whole folio on the first fault in it, so reading
    /// one tensor maps the neighbouring tensors' pages too, including those of tensors taken
    /// and released before. Released page by page, a ResNet-152 file read from disk left
    /// 58 MB of such pages mapped (315 MB peak against 257 MB for the same file freshly
    /// written, whose cached pages were small). Releasing pages of a tensor not read yet only
    /// means it is faulted in again when it is.
    pub fn release(&self, range: Range<usize>) {
        if let Some((start, end)) = release_span(range, self.map.len()) {
            // SAFETY: the mapping is a shared read-only file mapping (memmap2 maps `Mmap` with
            // MAP_SHARED and PROT_READ), so MADV_DONTNEED only drops the pages from this
            // process's page tables: any later access faults them in again from the file with
            // the same contents, and no Rust reference observes a change.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start,
                    end - start,
                )
            };
        }
    }
}

/// The part of a mapping of `len` bytes that [`Mapped::release`] hands back for `range`: the
/// 2 MiB-aligned blocks `range` touches, cut at the mapping's end; `None` when that is empty.
pub fn release_span(range: Range<usize>, len: usize) -> Option<(usize, usize)> {
    const BLOCK: usize = 2 << 20;
    let end = range.end.min(len);
    if range.start >= end {
        return None;
    }
    let start = range.start / BLOCK * BLOCK;
    let end = end
        .checked_next_multiple_of(BLOCK)
        .unwrap_or(usize::MAX)
        .min(len);
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::release_span;

    /// The blocks a range touches, cut at the mapping's end; nothing for an empty range.
    #[test]
    fn release_span_covers_the_blocks_a_range_touches() {
        const B: usize = 2 << 20;
        assert_eq!(release_span(10..20, 100 * B), Some((0, B)));
        assert_eq!(release_span(B - 1..B + 1, 100 * B), Some((0, 2 * B)));
        assert_eq!(release_span(3 * B..5 * B, 100 * B), Some((3 * B, 5 * B)));
        assert_eq!(
            release_span(3 * B + 5..3 * B + 6, 3 * B + 100),
            Some((3 * B, 3 * B + 100))
        );
        assert_eq!(release_span(7..7, 100), None);
        assert_eq!(release_span(200..300, 100), None);
        assert_eq!(release_span(50..300, 100), Some((0, 100)));
    }
}
