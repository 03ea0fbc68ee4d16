//! Copy-on-write snapshots of the user process, one per running cell.
//!
//! [`take`] forks when a cell has ended (and at start), so the snapshot is ready before the next
//! cell arrives: the fork happens while the kernel compiles that cell, not in the cell's time.
//! The original process runs the next cell; the copy (the snapshot) blocks reading a pipe whose
//! only writer is the original, which writes one byte when a cell starts
//! ([`Running::cell_starts`]). When the cell ends, the original kills the copy ([`Running`]'s
//! drop; reaped before the next fork). When the original dies, the pipe reads end-of-file and the
//! copy returns [`Taken::Restored`]: it is now the user process. The kernel is a child
//! subreaper (`setup`), so the copy, orphaned, becomes the kernel's child, and the kernel can
//! learn how the original ended (`waitpid`).
//!
//! What a copy does not have: the other threads (only the forking thread survives a fork). The
//! session's thread pool (in the runtime, `jit/runtime/src/pool.rs`) learns of the fork from a
//! `pthread_atfork` handler and is rebuilt on first use; a cell's own threads are gone. Open files and sockets are shared by both copies. A CUDA context cannot
//! be forked: while the process has one, cells run without snapshots.
//!
//! Memory: the copy shares every page with the original until one of them writes it; the cost
//! of a fork is copying page tables (see `bench/snapshot_bench.py`).

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Instant;

/// `RUST_JIT_KERNEL_SNAPSHOTS=off` (in the kernel's environment, e.g. a kernelspec's `env`): cells
/// run without snapshots, as in evcxr (a crash restarts the user process, variables lost).
pub const SNAPSHOTS_VAR: &str = "RUST_JIT_KERNEL_SNAPSHOTS";
/// [`Taken::Off`]'s reason when [`SNAPSHOTS_VAR`] is `off`.
pub const OFF: &str = "off";

/// glibc's tunable for malloc to `madvise(MADV_HUGEPAGE)` the memory it maps (glibc 2.35 and
/// later; older ones ignore it).
const HUGE_PAGES_TUNABLE: &str = "glibc.malloc.hugetlb=1";

/// Sets, for the processes this one starts (the user process), glibc's tunable that backs large
/// allocations with transparent huge pages where the system allows them on request (`madvise`,
/// the common setting): a fork then copies one page-table entry per 2 MiB instead of 512, which is
/// what makes a snapshot of a session holding a GiB of arrays cost well under a millisecond
/// (`bench/snapshot_bench.py`). A `GLIBC_TUNABLES` already set is kept, this one added.
pub fn ask_for_huge_pages() {
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if current.split(':').any(|t| t.starts_with("glibc.malloc.hugetlb=")) || off() {
        return;
    }
    let value = if current.is_empty() { HUGE_PAGES_TUNABLE.to_string() } else { format!("{current}:{HUGE_PAGES_TUNABLE}") };
    std::env::set_var("GLIBC_TUNABLES", value);
}

/// Whether snapshots are off in this process's environment (the kernel's and the user
/// process's are the same).
pub fn off() -> bool {
    std::env::var(SNAPSHOTS_VAR).is_ok_and(|v| v == OFF)
}

/// What the snapshot of the last cell that ended cost, in nanoseconds: [0] the fork (and
/// reaping the snapshot before), made between cells; [1] what the cell's own time paid (telling
/// the snapshot the cell starts, killing it after).
static LAST_COST_NS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
/// The snapshot now waiting: what its fork took, and the cell's share so far (ns).
static TAKE_NS: AtomicU64 = AtomicU64::new(0);
static IN_CELL_NS: AtomicU64 = AtomicU64::new(0);

/// The cost of the snapshot of the last cell that ended (before the one asking), in nanoseconds
/// (0: none was taken): `which` 0, the fork between cells; 1, the cell's own share. For
/// `bench/snapshot_bench.py`, which reads it from a cell through `dlsym`.
#[unsafe(no_mangle)]
pub extern "C" fn rjk_snapshot_cost_ns(which: u32) -> u64 {
    LAST_COST_NS.get(which as usize).map_or(0, |c| c.load(Ordering::SeqCst))
}

fn no_cost() {
    for c in &LAST_COST_NS {
        c.store(0, Ordering::SeqCst);
    }
}

/// What [`take`] gave.
pub enum Taken {
    /// A snapshot waits; run the cell, then drop this.
    Running(Running),
    /// No snapshot (the reason, for the kernel): run the cell as evcxr would.
    Off(String),
    /// This process is the snapshot, and the original (`dead`) has died: while it ran a cell
    /// (`in_cell`), or between cells.
    Restored { dead: u32, in_cell: bool },
}

/// The snapshot of a running cell.
pub struct Running {
    pid: libc::pid_t,
    pipe: libc::c_int,
}

impl Running {
    /// A cell starts: should this process die now, the snapshot reports the cell as failed.
    pub fn cell_starts(&self) {
        let started = Instant::now();
        // SAFETY: writing one byte from a local to our end of the pipe.
        unsafe { libc::write(self.pipe, b"c".as_ptr().cast(), 1) };
        IN_CELL_NS.store(started.elapsed().as_nanos() as u64, Ordering::SeqCst);
    }
}

/// The last snapshot killed, to be reaped before the next fork.
static KILLED: AtomicI32 = AtomicI32::new(0);

impl Drop for Running {
    fn drop(&mut self) {
        let started = Instant::now();
        // SAFETY: signalling our own child and closing our end of its pipe.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::close(self.pipe);
        }
        KILLED.store(self.pid, Ordering::SeqCst);
        LAST_COST_NS[0].store(TAKE_NS.load(Ordering::SeqCst), Ordering::SeqCst);
        LAST_COST_NS[1].store(IN_CELL_NS.load(Ordering::SeqCst) + started.elapsed().as_nanos() as u64, Ordering::SeqCst);
    }
}

/// Reaps the snapshot killed after the last cell (long gone by now, normally).
fn reap_killed() {
    let pid = KILLED.swap(0, Ordering::SeqCst);
    if pid > 0 {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
}

/// Forks a snapshot (see the module's documentation).
pub fn take() -> Taken {
    if off() {
        no_cost();
        return Taken::Off(OFF.to_string());
    }
    if crate::cuda::driver::has_context() {
        no_cost();
        return Taken::Off("cuda".to_string());
    }
    // What the cells printed and did not flush yet would be printed twice (once by each copy).
    super::stdin::flush_cell_stdout();
    let started = Instant::now();
    reap_killed();
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Taken::Off(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    let [read_end, write_end] = fds;
    let original = std::process::id();
    // SAFETY: the child only reads a pipe until the parent is gone or kills it; then it carries
    // on as the single-threaded copy this module describes.
    match unsafe { libc::fork() } {
        -1 => {
            let error = std::io::Error::last_os_error();
            // SAFETY: closing the descriptors we just made.
            unsafe {
                libc::close(read_end);
                libc::close(write_end);
            }
            Taken::Off(format!("fork: {error}"))
        }
        0 => {
            // SAFETY: our copies of the pipe's descriptors.
            unsafe { libc::close(write_end) };
            let mut byte = 0u8;
            let mut in_cell = false;
            loop {
                // SAFETY: reading one byte into a local.
                let n = unsafe { libc::read(read_end, (&mut byte as *mut u8).cast(), 1) };
                if n == 0 || (n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted) {
                    break;
                }
                in_cell |= n == 1;
            }
            // SAFETY: our descriptor.
            unsafe { libc::close(read_end) };
            Taken::Restored { dead: original, in_cell }
        }
        pid => {
            // SAFETY: the child's end.
            unsafe { libc::close(read_end) };
            TAKE_NS.store(started.elapsed().as_nanos() as u64, Ordering::SeqCst);
            Taken::Running(Running { pid, pipe: write_end })
        }
    }
}
