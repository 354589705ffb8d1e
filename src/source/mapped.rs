//! Large plain files are read through a memory map instead of being copied by a reader thread:
//! the kernel's copy into a buffer was about 8% of the CPU of a big scan. Workers decode
//! straight from the mapped pages, and give each chunk's pages back when done, so the resident
//! memory stays a few chunks, not the file.

use std::fs::File;
use std::os::fd::AsRawFd;

/// A read-only private mapping of a whole file.
pub struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and lives until drop; sharing `&[u8]` views is sound.
unsafe impl Send for Mapped {}
unsafe impl Sync for Mapped {}

/// Files smaller than this are read the ordinary way.
pub const MIN_MAPPED: u64 = 64 << 20;

impl Mapped {
    /// Maps a regular file; `None` when it is not one or the mapping fails.
    pub fn open(file: &File) -> Option<Mapped> {
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() == 0 {
            return None;
        }
        let len = usize::try_from(meta.len()).ok()?;
        // SAFETY: a fresh read-only private mapping of an open file; checked for failure.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        // SAFETY: advice on our own mapping.
        unsafe { libc::madvise(ptr, len, libc::MADV_SEQUENTIAL) };
        Some(Mapped { ptr, len })
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for the life of `self`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    /// Drops the resident pages wholly inside `[start, end)` (they are read back from the file
    /// if touched again).
    pub fn release(&self, start: usize, end: usize) {
        let page = 4096;
        let a = start.div_ceil(page) * page;
        let b = end / page * page;
        if b > a {
            // SAFETY: a page-aligned range inside our mapping; the data stays valid (a private
            // read-only file mapping refaults from the file).
            unsafe {
                libc::madvise(
                    (self.ptr as *mut u8).add(a) as *mut libc::c_void,
                    b - a,
                    libc::MADV_DONTNEED,
                )
            };
        }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmapping what `open` mapped, once.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}
