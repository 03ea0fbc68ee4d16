//! The binary's Rust allocator: mimalloc in the kernel, glibc's `malloc` in the user process and in
//! the roles started for every cell (the cargo front, the rustc wrapper: [`short_lived`]).
//!
//! The kernel spends most of a start in rust-analyzer (evcxr's type inference of the cells'
//! variables: parsing and expanding macros), which allocates and frees small trees all the time;
//! glibc's allocator was ~15% of those samples (`malloc`, `_int_free`, `malloc_consolidate`).
//! **The user process keeps glibc's**: cells are shared objects whose own copy of std allocates with
//! the system's `malloc` (through the binary's counting wrappers, `user_process::allocations`), and a
//! value made by a cell may be freed by the binary's code or the other way round, so both must use
//! one allocator there. The role is fixed for a process's life by its environment (evcxr starts
//! the user process so: `user_process::is_user_process`, which allocates nothing), read at the first
//! allocation. `RUST_JIT_KERNEL_MIMALLOC=off` keeps glibc's everywhere (for A/B measurements).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

/// The allocator `main.rs` installs with `#[global_allocator]`.
pub struct KernelAllocator;

const UNKNOWN: u8 = 0;
const SYSTEM: u8 = 1;
const MIMALLOC: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Which allocator this process uses; decided at its first allocation.
#[inline]
fn choice() -> u8 {
    match CHOICE.load(Ordering::Relaxed) {
        UNKNOWN => {
            let user_process = crate::user_process::is_user_process();
            // SAFETY: a NUL-terminated name; getenv only reads the environment, and its value is a C
            // string while the environment is unchanged (no other thread runs yet at a first allocation
            // that matters: `main`'s).
            let off = unsafe {
                let value = libc::getenv(c"RUST_JIT_KERNEL_MIMALLOC".as_ptr());
                !value.is_null() && std::ffi::CStr::from_ptr(value).to_bytes() == b"off"
            };
            let choice = if user_process || off || short_lived() { SYSTEM } else { MIMALLOC };
            // Two threads racing at the very first allocation both read the same environment.
            CHOICE.store(choice, Ordering::Relaxed);
            choice
        }
        choice => choice,
    }
}

/// The roles started for every cell, which allocate little and end within milliseconds: the cargo
/// front (started as `cargo`) and the rustc wrapper (`rustc_wrapper::WRAPPER_VAR`, which cargo's
/// environment carries). mimalloc's first allocations there touched memory the machine had not
/// backed yet: 0.5 ms of a front's start usually, 6-20 ms in a third of the cells on a 2-core VM
/// (`clear_page_erms` under `mi_manage_os_memory_ex2` and `mi_page_free_list_extend`,
/// docs/benchmarks.md). Allocates nothing: glibc's name of the program, the environment.
fn short_lived() -> bool {
    unsafe extern "C" {
        static program_invocation_short_name: *const libc::c_char;
    }
    // SAFETY: glibc sets the name (a C string) before `main`, and nothing changes it; getenv as above.
    unsafe {
        let name = program_invocation_short_name;
        (!name.is_null() && std::ffi::CStr::from_ptr(name).to_bytes() == b"cargo") || !libc::getenv(crate::evcxr_backend::rustc_wrapper::WRAPPER_VAR.as_ptr()).is_null()
    }
}

// SAFETY: each call goes to one allocator, the same one for the whole process (see `choice`).
unsafe impl GlobalAlloc for KernelAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if choice() == MIMALLOC { unsafe { mimalloc::MiMalloc.alloc(layout) } } else { unsafe { System.alloc(layout) } }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if choice() == MIMALLOC { unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) } } else { unsafe { System.alloc_zeroed(layout) } }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if choice() == MIMALLOC { unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) } } else { unsafe { System.dealloc(ptr, layout) } }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if choice() == MIMALLOC {
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        } else {
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}
