//! glibc allocator settings the commands choose (process-wide, so the command line's, not the
//! library's). An environment's `MALLOC_*` variables still win.

/// glibc's allocator gives each thread that allocates an arena of its own, up to eight a
/// core, and memory freed in one arena is not reused by another. An export's threads (readers,
/// workers, the device-table writer, the file writers) then fault in fresh pages for buffers
/// another arena has free: with one arena a core an export faulted a quarter fewer pages,
/// took 0.95x the time and 0.9x the peak memory, and `alerts` 0.88x the peak memory in the
/// same time.
pub fn one_arena_a_core() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: `mallopt` only sets a tunable; this runs first in `main`, before any
        // thread is started.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, cores.min(i32::MAX as usize) as i32);
        }
    }
}

/// Keeps freed memory in the process for the next allocation, up to the peak. A writer of
/// Parquet files builds and frees the columns of each file, a few megabytes at a time; by
/// default glibc hands blocks that size back to the kernel (`mmap`, or trimming the heap) as
/// they are freed, and the next file's columns fault the same amount in again, zeroed. For
/// the reference export that was about a fifth of its system time: with the memory kept, it
/// took 0.91x the time (5 alternating pairs), at 1.06x the peak memory. Not for a long-lived
/// process (`serve`), whose peak it would hold.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = |var: &str, param: i32, value: i32| {
            if std::env::var_os(var).is_none() {
                // SAFETY: `mallopt` only sets a tunable; callers run it before they start
                // threads.
                unsafe {
                    libc::mallopt(param, value);
                }
            }
        };
        set("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 256 << 20);
        set("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
