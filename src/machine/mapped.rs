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

    /// Hand the whole pages inside `range` back to the operating system. Later reads of them
    /// still see the file's bytes (they are read again from the file); they are only no
    /// longer resident. Out-of-range parts are ignored; failure is harmless and ignored.
    pub fn release(&self, range: Range<usize>) {
        const PAGE: usize = 4096;
        let start = range.start.div_ceil(PAGE) * PAGE;
        let end = (range.end.min(self.map.len()) / PAGE) * PAGE;
        if end > start {
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
