//! How the process keeps the memory that tensor work frees.
//!
//! A training step allocates and frees buffers of megabytes hundreds of times (every
//! activation, gradient and im2col matrix). glibc's malloc serves large ones with a
//! fresh `mmap` and unmaps them on free, so every step pays for page faults, for the
//! kernel zeroing each page, and for TLB shootdowns across the threads: 13% of a
//! SNDCGAN32 iteration's samples under `perf`, a third of BigGAN64's (whose attention
//! maps are over 32 MiB, past the largest mmap threshold glibc accepts). Serving every
//! allocation from the heap and never trimming it keeps freed memory for the next step
//! instead: SNDCGAN32 7% faster per iteration, BigGAN64 at width 32 33%, peak memory
//! unchanged. The cost: the process holds its peak heap until it exits.

/// Serves every allocation from the heap (no `mmap`) and never trims it. Call it once,
/// early in `main`, before threads start; a no-op off glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; both values are in range.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
