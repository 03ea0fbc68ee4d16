//! The session's one thread pool, a rayon pool kept here.
//!
//! **This crate exists once per user process.** It is a Rust `dylib` (see `Cargo.toml`): every
//! cell and every `#[jit]` library links the same `libjit.so`, so rayon's statics and this
//! module's exist once, and `rayon::current_num_threads()`, `rayon::join` and `par_iter` in a
//! plain cell or in a jit function all run on the pool below.
//!
//! - Its size follows `RAYON_NUM_THREADS` (else the number of cores) as it is when a cell
//!   starts: the kernel's user process runs every cell that links this crate inside the pool
//!   ([`rjk_run_cell`]), so the cell's own code is on one of its threads; when the size
//!   changed, a pool of the new size is built and the old one's threads end.
//! - A parallel region ([`run_tasks`]) is cut once, into one part per thread, and runs with
//!   `rayon::join` from the calling thread, which does a part itself: a part nobody has taken
//!   yet when the caller is done, the caller takes back (so a small region costs about its serial
//!   time). Idle workers spin briefly (rayon yields a few dozen rounds) before they sleep, so an
//!   idle session uses no CPU.
//! - After a `fork` (the kernel's snapshots), the copy has none of the pool's threads: the next
//!   use builds a new pool (the old one is leaked: dropping it would signal threads that are
//!   not there).
//! - Outside the kernel (tests, benchmarks), the same pool is used the same way.

use std::any::Any;
use std::ffi::c_void;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};

use rayon::ThreadPool;

static SESSION: Mutex<Option<Arc<ThreadPool>>> = Mutex::new(None);
/// Set in the child of a `fork` (`pthread_atfork`).
static FORKED: AtomicBool = AtomicBool::new(false);

// libc's functions, declared here: the `libc` crate would be one more (large) crate for
// rust-analyzer to load in every session.
unsafe extern "C" {
    fn pthread_atfork(prepare: Option<extern "C" fn()>, parent: Option<extern "C" fn()>, child: Option<extern "C" fn()>) -> i32;
}

extern "C" fn forked() {
    FORKED.store(true, Ordering::SeqCst);
}

/// The size the pool should have now.
pub(crate) fn wanted_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Stack of each pool thread: the cells' code runs on them, so as much as a main thread has.
const STACK_BYTES: usize = 8 << 20;

/// The session pool at the size `RAYON_NUM_THREADS` asks for now.
pub fn session() -> Arc<ThreadPool> {
    static AT_FORK: Once = Once::new();
    // SAFETY: registers a handler that only stores to an atomic.
    AT_FORK.call_once(|| unsafe {
        pthread_atfork(None, None, Some(forked));
    });
    let wanted = wanted_threads();
    // The lock is free at a fork: the kernel forks between cells, from the thread that runs them.
    let mut slot = SESSION.lock().unwrap_or_else(|e| e.into_inner());
    if FORKED.swap(false, Ordering::SeqCst) {
        std::mem::forget(slot.take());
    }
    if let Some(pool) = slot.as_ref().filter(|p| p.current_num_threads() == wanted) {
        return pool.clone();
    }
    let build = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("jit-pool-{i}"))
            .stack_size(STACK_BYTES)
            .build()
            .map(Arc::new)
    };
    match build(wanted) {
        Ok(pool) => {
            *slot = Some(pool.clone());
            pool
        }
        // Out of threads: keep serving with the pool there is, else a pool of one.
        Err(_) => slot.clone().unwrap_or_else(|| build(1).expect("a pool of one thread")),
    }
}

/// The number of threads parallel code runs on here: the pool's this thread is in, else the
/// session pool's.
pub(crate) fn threads() -> usize {
    match rayon::current_thread_index() {
        Some(_) => rayon::current_num_threads(),
        None => session().current_num_threads(),
    }
}

/// Runs a cell's function inside the session pool (on one of its threads) and returns what it
/// returns; `started` is called first, on that thread. The kernel's user process calls this,
/// found with `dlsym` in each cell's library, for every cell that links the runtime.
///
/// # Safety
/// `cell` must be safe to call with `store` on another thread while the caller waits (the
/// caller's thread does nothing meanwhile).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rjk_run_cell(
    cell: extern "C" fn(*mut c_void) -> *mut c_void,
    store: *mut c_void,
    started: extern "C" fn(),
) -> *mut c_void {
    let store = store as usize;
    let out = session().install(move || {
        started();
        cell(store as *mut c_void) as usize
    });
    out as *mut c_void
}

/// Raises a task's panic on the calling thread. A text message panics anew, so the panic hook
/// (the kernel's report of the cell's panic) sees it on the cell's thread; other payloads are
/// resumed as they are.
fn raise_again(payload: Box<dyn Any + Send>) -> ! {
    let message = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned());
    match message {
        Some(message) => panic!("{message}"),
        None => resume_unwind(payload),
    }
}

/// Runs `f(0)`, ..., `f(n - 1)` in parallel and returns when all have run: on the pool this
/// thread is in (the cell's), else inside the session pool. A panic in any of them is raised
/// again here, after the others finished.
pub(crate) fn run_tasks<F: Fn(usize) + Sync>(n: usize, f: F) {
    let panic: Mutex<Option<Box<dyn Any + Send>>> = Mutex::new(None);
    let task = |i: usize| {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(i))) {
            panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(payload);
        }
    };
    match n {
        0 => {}
        1 => task(0),
        _ if rayon::current_thread_index().is_some() => split(0, n, &task),
        _ => session().install(|| split(0, n, &task)),
    }
    if let Some(payload) = panic.into_inner().unwrap_or_else(|e| e.into_inner()) {
        raise_again(payload);
    }
}

/// `task(i)` for `i` in `start..end`, halves with `rayon::join` (the first half on this thread).
fn split(start: usize, end: usize, task: &(dyn Fn(usize) + Sync)) {
    if end - start == 1 {
        task(start);
    } else {
        let mid = start + (end - start) / 2;
        rayon::join(|| split(start, mid, task), || split(mid, end, task));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_task_runs_once() {
        for n in [1, 2, 3, 7, 100] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            run_tasks(hits.len(), |i| {
                hits[i].fetch_add(1, Ordering::SeqCst);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::SeqCst) == 1));
        }
    }

    #[test]
    fn a_panic_in_a_task_reaches_the_caller() {
        let caught = catch_unwind(|| run_tasks(8, |i| assert!(i != 5, "task five")));
        let payload = caught.unwrap_err();
        let message = payload.downcast_ref::<String>().cloned().or(payload.downcast_ref::<&str>().map(|s| s.to_string()));
        assert!(message.unwrap_or_default().contains("task five"));
    }

    extern "C" fn cell(store: *mut c_void) -> *mut c_void {
        // The cell's code sees the session pool as rayon's current pool.
        assert_eq!(rayon::current_num_threads(), wanted_threads());
        assert!(rayon::current_thread_index().is_some());
        (store as usize + 1) as *mut c_void
    }

    extern "C" fn started() {}

    #[test]
    fn cells_run_in_the_session_pool_which_follows_rayon_num_threads() {
        // The only test here that touches the environment.
        for n in ["3", "1", "2"] {
            unsafe { std::env::set_var("RAYON_NUM_THREADS", n) };
            let out = unsafe { rjk_run_cell(cell, 41 as *mut c_void, started) };
            assert_eq!(out as usize, 42);
            assert_eq!(threads(), n.parse::<usize>().unwrap());
        }
        // After a fork, a new pool.
        let before = session();
        forked();
        assert!(!Arc::ptr_eq(&before, &session()));
        std::mem::forget(before);
        unsafe { std::env::remove_var("RAYON_NUM_THREADS") };
    }
}
