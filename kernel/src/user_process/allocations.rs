//! Heap allocations counted for `%timeit -a`: the binary replaces the C library's allocating
//! functions for everything the process loads (every cell, every jit library, std itself), each
//! a call of glibc's own (`__libc_malloc`, ...), counted only while a count is on.
//!
//! Off, the cost is one relaxed load and a branch per allocation (see docs/benchmarks.md). `free`
//! is glibc's, untouched: these return glibc's own blocks. Counted: `malloc`, `calloc`,
//! `realloc` (as an allocation of its new size), `posix_memalign`, `aligned_alloc`, `memalign`,
//! on any thread (a parallel region's workers too).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static COUNTING: AtomicBool = AtomicBool::new(false);
static COUNT: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" {
    fn __libc_malloc(size: usize) -> *mut c_void;
    fn __libc_calloc(count: usize, size: usize) -> *mut c_void;
    fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
}

#[inline(always)]
fn count(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        COUNT.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Starts a count from zero (`%timeit -a`'s harness calls it through `dlsym`).
#[unsafe(no_mangle)]
pub extern "C" fn rjk_alloc_start() {
    COUNT.store(0, Ordering::Relaxed);
    BYTES.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
}

/// Stops the count; writes the allocations and bytes since [`rjk_alloc_start`].
///
/// # Safety
/// `count` and `bytes` are valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rjk_alloc_stop(count: *mut u64, bytes: *mut u64) {
    COUNTING.store(false, Ordering::SeqCst);
    // SAFETY: the caller's contract.
    unsafe {
        *count = COUNT.load(Ordering::Relaxed);
        *bytes = BYTES.load(Ordering::Relaxed);
    }
}

/// # Safety
/// As `malloc(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    count(size);
    // SAFETY: glibc's malloc, same contract.
    unsafe { __libc_malloc(size) }
}

/// # Safety
/// As `calloc(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    count(n.saturating_mul(size));
    // SAFETY: glibc's calloc, same contract.
    unsafe { __libc_calloc(n, size) }
}

/// # Safety
/// As `realloc(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    count(size);
    // SAFETY: glibc's realloc, same contract.
    unsafe { __libc_realloc(ptr, size) }
}

/// # Safety
/// As `posix_memalign(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> libc::c_int {
    if !align.is_power_of_two() || align % std::mem::size_of::<usize>() != 0 {
        return libc::EINVAL;
    }
    count(size);
    // SAFETY: glibc's memalign, with an alignment checked as posix_memalign does.
    let p = unsafe { __libc_memalign(align, size) };
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller's contract.
    unsafe { *out = p };
    0
}

/// # Safety
/// As `aligned_alloc(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    count(size);
    // SAFETY: glibc's memalign (what its aligned_alloc calls).
    unsafe { __libc_memalign(align, size) }
}

/// # Safety
/// As `memalign(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    count(size);
    // SAFETY: glibc's memalign.
    unsafe { __libc_memalign(align, size) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The count is the process's: other tests allocating meanwhile would be counted. So the
    /// test below runs alone, in a process of its own (this test binary, asked for it only).
    #[test]
    fn counts_allocations_only_while_on() {
        let name = "user_process::allocations::tests::counting_alone";
        let run = std::process::Command::new(std::env::current_exe().expect("the test binary"))
            .args([name, "--exact", "--ignored", "--test-threads=1"])
            .output()
            .expect("the test binary runs");
        let output = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success() && output.contains("1 passed"), "{output}{}", String::from_utf8_lossy(&run.stderr));
    }

    #[test]
    #[ignore = "run alone by counts_allocations_only_while_on"]
    fn counting_alone() {
        // Called directly: whether the test binary's own allocations come here is up to its linker
        // (the kernel binary exports these; tests/test_inspect.py counts through it).
        let mut out = (0u64, 0u64);
        // SAFETY: each block is freed with free; the out pointers are valid.
        unsafe {
            libc::free(malloc(10));
            rjk_alloc_start();
            let blocks = [malloc(100), calloc(4, 25), realloc(std::ptr::null_mut(), 50), aligned_alloc(64, 128), memalign(32, 64)];
            let mut p = std::ptr::null_mut();
            assert_eq!(posix_memalign(&mut p, 64, 200), 0);
            assert_eq!(p as usize % 64, 0);
            assert_eq!(posix_memalign(&mut std::ptr::null_mut(), 3, 100), libc::EINVAL);
            rjk_alloc_stop(&mut out.0, &mut out.1);
            libc::free(malloc(1000));
            for block in blocks.into_iter().chain([p]) {
                assert!(!block.is_null());
                libc::free(block);
            }
        }
        assert_eq!(out, (6, 100 + 100 + 50 + 128 + 64 + 200));
        let mut after = (1u64, 1u64);
        rjk_alloc_start();
        // SAFETY: valid out pointers.
        unsafe { rjk_alloc_stop(&mut after.0, &mut after.1) };
        assert_eq!(after, (0, 0), "a count starts from zero");
    }
}
