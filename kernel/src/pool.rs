//! The session's one thread pool. It lives in the user process (this same binary, started by
//! evcxr), and every cell reaches it through two exported C functions (`exports.rs`): cells are shared
//! objects with their own copies of rayon's statics, so a pool kept in a cell's code would be
//! one pool per cell. The ABI is described in `jit/runtime/src/pool.rs`; only a pointer and
//! integers cross it.
//!
//! The pool's size follows `RAYON_NUM_THREADS` as it is at each call (else the number of
//! cores): when it changes, the next call builds a pool of the new size and the old pool's
//! threads end.

use std::ffi::c_void;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

fn wanted_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

static POOL: Mutex<Option<Arc<rayon::ThreadPool>>> = Mutex::new(None);

/// In a forked copy of the process (a snapshot taking over, `user_process::snapshot`): the pool's
/// threads are not there, so the next call builds a new pool. The old one is leaked, not dropped
/// (dropping would signal threads that do not exist).
pub fn after_fork() {
    // The lock was free at the fork: only the forking thread takes it.
    let old = POOL.lock().unwrap_or_else(|e| e.into_inner()).take();
    std::mem::forget(old);
}

/// The pool for the next parallel call, rebuilt when the wanted size changed.
fn pool() -> Arc<rayon::ThreadPool> {
    let wanted = wanted_threads();
    let mut slot = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pool) = slot.as_ref().filter(|p| p.current_num_threads() == wanted) {
        return pool.clone();
    }
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(wanted)
        .thread_name(|i| format!("jit-pool-{i}"))
        .build()
        .map(Arc::new);
    match built {
        Ok(pool) => {
            *slot = Some(pool.clone());
            pool
        }
        // Out of threads: keep serving with the pool there is, else a pool of one.
        Err(_) => slot.clone().unwrap_or_else(|| Arc::new(rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a pool of one thread"))),
    }
}

/// The number of threads the next parallel call runs on.
#[unsafe(no_mangle)]
pub extern "C" fn rjk_pool_threads() -> usize {
    pool().current_num_threads()
}

/// Runs `task(ctx, i)` for every `i < n` on the pool; returns when all have run.
///
/// # Safety
/// `task` must not unwind, and must be safe to call with `ctx` from several threads at once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rjk_pool_run(n: usize, ctx: *const c_void, task: extern "C" fn(*const c_void, usize)) {
    let ctx = ctx as usize;
    pool().install(|| (0..n).into_par_iter().for_each(|i| task(ctx as *const c_void, i)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    extern "C" fn count(ctx: *const c_void, i: usize) {
        // SAFETY: the test passes a pointer to a live slice of counters with > i entries.
        let counters = unsafe { &*(ctx as *const Vec<AtomicUsize>) };
        counters[i].fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn runs_every_task_once_and_follows_rayon_num_threads() {
        let counters: Vec<AtomicUsize> = (0..50).map(|_| AtomicUsize::new(0)).collect();
        unsafe { rjk_pool_run(50, &counters as *const Vec<AtomicUsize> as *const c_void, count) };
        assert!(counters.iter().all(|c| c.load(Ordering::SeqCst) == 1));
        // The only test here that touches the environment.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "3") };
        assert_eq!(rjk_pool_threads(), 3);
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
        assert_eq!(rjk_pool_threads(), 1);
        unsafe { std::env::remove_var("RAYON_NUM_THREADS") };
    }
}
