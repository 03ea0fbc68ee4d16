//! The user process: the role evcxr starts this binary in (`EVCXR_IS_RUNTIME` set) to hold the
//! learner's variables and run each compiled cell. It speaks evcxr's protocol (a
//! `LOAD_AND_RUN <so> <fn>` line in, `EVCXR_EXECUTION_COMPLETE` out when the cell's function
//! returns) in place of evcxr's own loop, for two things evcxr's loop cannot do:
//!
//! - **Snapshots** ([`snapshot`]): between cells, the process forks; the copy waits, the
//!   original runs the next cell. When the cell ends, the copy goes. When the process
//!   running the cell dies (segfault, abort, stack overflow, `process::exit`, SIGKILL from the
//!   out-of-memory killer or an interrupt), the copy takes over as the user process, with every
//!   variable as it was before the cell, and says so on stdout ([`RESTORED`]); evcxr sees a
//!   cell that panicked and keeps its state.
//! - **stdin** ([`stdin`]): commands arrive on a copy of fd 0 made at start; the cells' own
//!   stdin reads (fd 0) become input requests that evcxr forwards to the kernel.

pub mod allocations;
pub mod chart;
pub mod display;
pub mod snapshot;
pub mod stdin;

use std::ffi::{c_void, CString};

/// The variable evcxr sets in the environment of the process it starts as the user process.
const EVCXR_IS_RUNTIME: &std::ffi::CStr = c"EVCXR_IS_RUNTIME";
/// evcxr's end-of-cell line.
const EXECUTION_COMPLETE: &str = "EVCXR_EXECUTION_COMPLETE";
/// evcxr's line for "the cell panicked": it keeps the variables from before the cell.
const PANIC_NOTIFICATION: &str = "EVCXR_PANIC_NOTIFICATION";

/// `RJK_CELL_END <ns>`: the user process's last line on stderr for each cell, with the time
/// ([`monotonic_ns`]), written once the snapshot the next cell finds is taken (after evcxr's
/// end-of-cell line on stdout). The kernel's output pump ends the cell with it
/// (`output::pump_output`): whatever the cell wrote to stderr came before it, so nothing waits
/// for the pipe to go quiet; the kernel replies only once a process killed between cells has
/// a snapshot to take over (within the pump's wait); and the time tells it from the line of a cell it did not pump
/// (evcxr's own at start).
pub const CELL_END: &str = "RJK_CELL_END ";

/// The system's monotonic clock (`CLOCK_MONOTONIC`, the same in every process), in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes the current time into `now`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// `RJK_RESTORED <dead pid> <new pid>` on stdout: the process that ran the cell died and its
/// snapshot, process `<new pid>`, is the user process now (written just before the end of the
/// cell).
pub const RESTORED: &str = "RJK_RESTORED ";
/// `RJK_TOOK_OVER <dead pid> <new pid>`: the same, for a process that died between cells (seen
/// with the next cell, which runs as usual).
pub const TOOK_OVER: &str = "RJK_TOOK_OVER ";
/// `RJK_NO_SNAPSHOT <why>` on stdout: the cell runs without a snapshot (a CUDA context cannot
/// be copied by `fork`; or `fork` failed). Not for evcxr's own first cell (nothing reads the
/// cell output evcxr passes on while it starts), nor when snapshots are off (the kernel knows).
pub const NO_SNAPSHOT: &str = "RJK_NO_SNAPSHOT ";

/// Whether this process was started as the user process. Allocates nothing (`getenv` reads the
/// environment in place): the binary's allocator (`crate::allocator`) asks before anything is allocated.
pub fn is_user_process() -> bool {
    // SAFETY: a NUL-terminated name; getenv only reads the environment.
    !unsafe { libc::getenv(EVCXR_IS_RUNTIME.as_ptr()) }.is_null()
}

/// Writes `text` to fd 1 directly (not through either copy of std's stdout, whose lock a
/// thread that did not survive a fork may hold).
fn say(text: &str) {
    write_all(1, text);
}

/// [`CELL_END`] on stderr.
fn say_cell_end() {
    write_all(2, &format!("{CELL_END}{}\n", monotonic_ns()));
}

fn write_all(fd: i32, text: &str) {
    let mut bytes = text.as_bytes();
    while !bytes.is_empty() {
        // SAFETY: writing from a live buffer.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// How much more the out-of-memory killer should prefer the user process (and its snapshots) to
/// the kernel process (`oom_score_adj`; a process may raise its own): a session that runs out of
/// memory loses the cell, not the kernel.
const OOM_SCORE_ADJ: &str = "500";

/// Serves evcxr until it closes the command pipe. Never returns.
pub fn run() -> ! {
    let _ = std::fs::write("/proc/self/oom_score_adj", OOM_SCORE_ADJ);
    crate::build_env::restore_for_cells();
    stdin::take_commands();
    let mut store: *mut c_void = std::ptr::null_mut();
    let mut first = true;
    // A cell ended and its [`CELL_END`] is still to say.
    let mut ended = false;
    loop {
        // Between cells: the snapshot of the session as the next cell finds it.
        let snapshot = match snapshot::take() {
            snapshot::Taken::Running(guard) => Ok(guard),
            snapshot::Taken::Off(why) => Err(why),
            snapshot::Taken::Restored { dead, in_cell } => {
                // This process is the snapshot: the original died. Everything is as it was
                // before its cell; evcxr is told the cell panicked.
                let me = std::process::id();
                if in_cell {
                    say(&format!("{RESTORED}{dead} {me}\n{PANIC_NOTIFICATION}\n{EXECUTION_COMPLETE}\n"));
                } else {
                    say(&format!("{TOOK_OVER}{dead} {me}\n"));
                }
                ended = in_cell;
                continue;
            }
        };
        if std::mem::take(&mut ended) {
            say_cell_end();
        }
        let Some(line) = stdin::command() else { break };
        let Some((so, name)) = line.strip_prefix("LOAD_AND_RUN ").and_then(|rest| rest.rsplit_once(' ')) else {
            // A reply to an input request that came after its cell ended (an interrupt).
            continue;
        };
        let (user_fn, in_pool) = match load(so, name) {
            Ok(f) => f,
            Err(error) => {
                eprintln!("While processing instruction `{line}`, got error: {error}");
                std::process::exit(99);
            }
        };
        match &snapshot {
            Ok(guard) => guard.cell_starts(),
            Err(why) if !first && why != snapshot::OFF => say(&format!("{NO_SNAPSHOT}{why}\n")),
            Err(_) => {}
        }
        cell_thread_is_this_one();
        store = match in_pool {
            // SAFETY: the runtime's function (see its docs): it runs the cell on a thread of the
            // session pool while this thread waits.
            Some(run) => unsafe { run(user_fn, store, cell_thread_is_this_one) },
            None => user_fn(store),
        };
        cell_thread_is_this_one();
        drop(snapshot);
        // What the cell printed without a newline is its output too.
        stdin::flush_cell_stdout();
        say(&format!("{EXECUTION_COMPLETE}\n"));
        ended = true;
        first = false;
    }
    std::process::exit(0);
}

/// The symbol of every cell's function: the evcxr backend writes evcxr's `run_user_code_N` under
/// this one name (`evcxr_backend/cell_fn.rs`), which [`load`] looks up before the name evcxr sends.
pub const CELL_SYMBOL: &str = "__rjk_cell_code";

type UserFn = extern "C" fn(*mut c_void) -> *mut c_void;
/// The runtime's `rjk_run_cell` (`jit/runtime/src/pool.rs`): runs a cell in the session pool.
type RunCellFn = unsafe extern "C" fn(UserFn, *mut c_void, extern "C" fn()) -> *mut c_void;

/// The thread running the current cell (its kernel thread id): this process's main thread, or
/// the session pool's thread the runtime runs it on.
static CELL_THREAD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn cell_thread_is_this_one() {
    // SAFETY: gettid has no preconditions.
    CELL_THREAD.store(unsafe { libc::gettid() }, std::sync::atomic::Ordering::SeqCst);
}

/// The thread id of the thread running the current cell: the session's panic hook reports a
/// panic there as the cell's (`evcxr_backend/prelude.rs`), others as Rust prints them.
#[unsafe(no_mangle)]
pub extern "C" fn rjk_cell_thread() -> i32 {
    CELL_THREAD.load(std::sync::atomic::Ordering::SeqCst)
}

/// Loads a cell's shared object (never unloaded: its thread-locals' destructors may run at
/// exit) and finds its function ([`CELL_SYMBOL`], else `name`, evcxr's), and the runtime's way
/// to run it when the cell links the runtime.
fn load(so: &str, name: &str) -> Result<(UserFn, Option<RunCellFn>), String> {
    let path = CString::new(so).map_err(|e| e.to_string())?;
    let symbol = CString::new(name).map_err(|e| e.to_string())?;
    let cell_symbol = CString::new(CELL_SYMBOL).map_err(|e| e.to_string())?;
    let dl_error = || {
        // SAFETY: dlerror returns a thread-local C string or null.
        let e = unsafe { libc::dlerror() };
        if e.is_null() { "unknown dlopen error".to_string() } else { unsafe { std::ffi::CStr::from_ptr(e) }.to_string_lossy().into_owned() }
    };
    // SAFETY: loading a shared object evcxr just built; its constructors run.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(dl_error());
    }
    // SAFETY: looking up a symbol in the library just opened (opened RTLD_LOCAL: the handle's
    // scope is the library and its dependencies, never another cell's library).
    let mut f = unsafe { libc::dlsym(handle, cell_symbol.as_ptr()) };
    if f.is_null() {
        // SAFETY: as above.
        f = unsafe { libc::dlsym(handle, symbol.as_ptr()) };
    }
    if f.is_null() {
        return Err(dl_error());
    }
    // SAFETY: looking up a symbol in the library and its dependencies.
    let run = unsafe { libc::dlsym(handle, c"rjk_run_cell".as_ptr()) };
    // SAFETY: evcxr generates this function with this signature; the runtime defines its own
    // (jit/runtime/src/pool.rs).
    unsafe {
        let run = (!run.is_null()).then(|| std::mem::transmute::<*mut c_void, RunCellFn>(run));
        Ok((std::mem::transmute::<*mut c_void, UserFn>(f), run))
    }
}
