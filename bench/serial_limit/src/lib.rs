//! The lesson's function at 1000x1000 three ways, for `bench/serial_limit.py`, which calls them
//! with ctypes in the same process as Numba and NumPy, interleaved: where is the floor of a serial
//! `a + trace` on this machine?
//!
//! - `ndarray_op`: `a + trace`, ndarray's operator: what a serial `#[jit]` function compiles to;
//! - `streamed`: the result computed 16 KiB at a time and copied out with streaming stores (no
//!   read of each destination line), as the runtime writes large parallel results;
//! - `huge_pages`: `ndarray_op` with the result's memory in transparent huge pages (madvise),
//!   as NumPy asks for arrays of 4 MiB or more.
//!
//! Each takes the input (a C-contiguous n x n f64 array NumPy owns) and a repeat count, and
//! drops each result before the next call, as `%timeit` does.

use std::mem::MaybeUninit;

use ndarray::{Array2, ArrayView2};

fn trace(a: &ArrayView2<'_, f64>) -> f64 {
    let mut trace = 0.0;
    for i in 0..a.nrows() {
        trace += a[[i, i]].tanh();
    }
    trace
}

/// # Safety
/// `data` points at `n * n` f64s.
unsafe fn input<'a>(data: *const f64, n: usize) -> ArrayView2<'a, f64> {
    ArrayView2::from_shape_ptr((n, n), data)
}

#[no_mangle]
pub unsafe extern "C" fn ndarray_op(data: *const f64, n: usize, reps: usize) {
    let a = input(data, n);
    for _ in 0..reps {
        let out: Array2<f64> = &a + trace(&a);
        std::hint::black_box(&out);
    }
}

unsafe fn stream_copy(src: *const u8, dst: *mut u8, bytes: usize) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
    let head = dst.align_offset(16).min(bytes);
    std::ptr::copy_nonoverlapping(src, dst, head);
    let mut i = head;
    while i + 16 <= bytes {
        _mm_stream_si128(dst.add(i).cast::<__m128i>(), _mm_loadu_si128(src.add(i).cast::<__m128i>()));
        i += 16;
    }
    std::ptr::copy_nonoverlapping(src.add(i), dst.add(i), bytes - i);
}

#[no_mangle]
pub unsafe extern "C" fn streamed(data: *const f64, n: usize, reps: usize) {
    const CHUNK: usize = 2048;
    let a = input(data, n);
    let src = a.as_slice().expect("contiguous");
    let mut buffer = vec![MaybeUninit::<f64>::uninit(); CHUNK];
    for _ in 0..reps {
        let t = trace(&a);
        let mut out = Array2::<f64>::uninit(a.raw_dim());
        let dst = out.as_mut_ptr().cast::<f64>();
        for (c, chunk) in src.chunks(CHUNK).enumerate() {
            for (b, &x) in buffer.iter_mut().zip(chunk) {
                b.write(x + t);
            }
            stream_copy(buffer.as_ptr().cast(), dst.add(c * CHUNK).cast(), chunk.len() * 8);
        }
        std::arch::x86_64::_mm_sfence();
        std::hint::black_box(&out.assume_init());
    }
}

#[no_mangle]
pub unsafe extern "C" fn huge_pages(data: *const f64, n: usize, reps: usize) {
    let a = input(data, n);
    let src = a.as_slice().expect("contiguous");
    // One 2 MiB-aligned region, advised once, reused for every result (as malloc reuses a freed block).
    let bytes = src.len() * 8;
    let region = libc::mmap(std::ptr::null_mut(), bytes + (2 << 20), libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
    assert_ne!(region, libc::MAP_FAILED);
    let aligned = ((region as usize + (2 << 20) - 1) & !((2 << 20) - 1)) as *mut f64;
    libc::madvise(aligned.cast(), bytes, libc::MADV_HUGEPAGE);
    for _ in 0..reps {
        let t = trace(&a);
        let out = std::slice::from_raw_parts_mut(aligned, src.len());
        for (o, &x) in out.iter_mut().zip(src) {
            *o = x + t;
        }
        std::hint::black_box(&out);
    }
    libc::munmap(region, bytes + (2 << 20));
}
