//! The bridge to the session's thread pool (see the crate docs for why it is in the kernel).
//!
//! The ABI, shared with `kernel/src/pool.rs`:
//! - `rjk_pool_run(n, ctx, task)` runs `task(ctx, i)` for every `i < n` on the pool and returns
//!   when all are done; `task` must not unwind;
//! - `rjk_pool_threads()` is the pool's size for the next run.
//!
//! Only a pointer and integers cross it, never a Rust type.

use std::any::Any;
use std::ffi::c_void;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Mutex, OnceLock};

type Task = extern "C" fn(ctx: *const c_void, index: usize);
type RunFn = unsafe extern "C" fn(n: usize, ctx: *const c_void, task: Task);
type ThreadsFn = extern "C" fn() -> usize;

struct Host {
    run: RunFn,
    threads: ThreadsFn,
}

// libc's two names, declared here: the `libc` crate would be one more (large) crate for
// rust-analyzer to load in every session.
unsafe extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const std::ffi::c_char) -> *mut c_void;
}
/// glibc's `RTLD_DEFAULT`: search the global symbols of the process.
const RTLD_DEFAULT: *mut c_void = std::ptr::null_mut();

/// The kernel's pool, when this code runs inside the kernel's user process.
fn host() -> Option<&'static Host> {
    static HOST: OnceLock<Option<Host>> = OnceLock::new();
    HOST.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and NUL-terminated names; the symbols, when present,
        // have exactly these signatures (kernel/src/pool.rs).
        unsafe {
            let run = dlsym(RTLD_DEFAULT, c"rjk_pool_run".as_ptr());
            let threads = dlsym(RTLD_DEFAULT, c"rjk_pool_threads".as_ptr());
            if run.is_null() || threads.is_null() {
                return None;
            }
            Some(Host {
                run: std::mem::transmute::<*mut c_void, RunFn>(run),
                threads: std::mem::transmute::<*mut c_void, ThreadsFn>(threads),
            })
        }
    })
    .as_ref()
}

/// Whether parallel code runs on the kernel's pool (false: rayon's global pool).
pub fn on_kernel_pool() -> bool {
    host().is_some()
}

pub(crate) fn threads() -> usize {
    match host() {
        Some(host) => (host.threads)(),
        None => rayon::current_num_threads(),
    }
}

struct Job<'a, F> {
    f: &'a F,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

extern "C" fn trampoline<F: Fn(usize) + Sync>(ctx: *const c_void, index: usize) {
    // SAFETY: `ctx` is the `Job<F>` that `run_tasks` keeps alive until the pool returns.
    let job = unsafe { &*(ctx as *const Job<'_, F>) };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| (job.f)(index))) {
        job.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(payload);
    }
}

/// Raises a task's panic on the calling thread. A text message panics anew, so the panic hook
/// (the kernel's report of the cell's panic) sees it here; other payloads are resumed as they are.
fn raise_again(payload: Box<dyn Any + Send>) -> ! {
    let message = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned());
    match message {
        Some(message) => panic!("{message}"),
        None => resume_unwind(payload),
    }
}

/// Runs `f(0)`, ..., `f(n - 1)` on the pool and returns when all have run. A panic in any of
/// them is raised again here, after the others finished.
pub(crate) fn run_tasks<F: Fn(usize) + Sync>(n: usize, f: F) {
    match (n, host()) {
        (0, _) => {}
        (_, Some(host)) => {
            let job = Job { f: &f, panic: Mutex::new(None) };
            // SAFETY: `job` outlives the call, which returns only when every task is done.
            unsafe { (host.run)(n, &job as *const Job<'_, F> as *const c_void, trampoline::<F>) };
            if let Some(payload) = job.panic.into_inner().unwrap_or_else(|e| e.into_inner()) {
                raise_again(payload);
            }
        }
        (_, None) => {
            use rayon::prelude::*;
            (0..n).into_par_iter().for_each(|i| f(i));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_task_runs_once() {
        let hits: Vec<AtomicUsize> = (0..100).map(|_| AtomicUsize::new(0)).collect();
        run_tasks(hits.len(), |i| {
            hits[i].fetch_add(1, Ordering::SeqCst);
        });
        assert!(hits.iter().all(|h| h.load(Ordering::SeqCst) == 1));
    }

    #[test]
    fn a_panic_in_a_task_reaches_the_caller() {
        let caught = catch_unwind(|| run_tasks(8, |i| assert!(i != 5, "task five")));
        let payload = caught.unwrap_err();
        let message = payload.downcast_ref::<String>().cloned().or(payload.downcast_ref::<&str>().map(|s| s.to_string()));
        assert!(message.unwrap_or_default().contains("task five"));
    }

    #[test]
    fn outside_the_kernel_the_fallback_pool_is_used() {
        assert!(!on_kernel_pool());
        assert_eq!(threads(), rayon::current_num_threads());
    }
}
