//! Interrupting a running cell (from the control channel's thread).
//!
//! A compile in progress (cargo, or rustc for a jit function: children of the kernel process)
//! is killed, and nothing is lost. A running cell is asked to stop through a flag file that
//! code may check (the `%timeit` harness does, between timed chunks), and gets
//! [`INTERRUPT_GRACE`]; if it still runs, the user process is killed, and its snapshot (taken
//! before the cell) takes over with every variable (`user_process::snapshot`; without one, evcxr
//! restarts it). Processes are found in `/proc`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::Interrupter;

/// What a running cell shares with the control channel.
pub struct RunState {
    running: Mutex<bool>,
    /// Counts cells, so a late watchdog never stops a later cell.
    generation: AtomicU64,
    interrupted: AtomicBool,
    /// The interrupt stopped a compile (cargo), not the user process.
    stopped_compile: AtomicBool,
    /// The user process evcxr started.
    child: Arc<Mutex<std::process::Child>>,
    /// The user process now, when a snapshot took over from evcxr's (0: evcxr's).
    live: AtomicU32,
    /// While it exists, code that checks it (the `%timeit` harness) stops: `RJK_INTERRUPT_FILE`.
    flag: Option<PathBuf>,
}

impl RunState {
    /// The state of a session whose user process is `child`; the flag file is named by
    /// [`INTERRUPT_FILE_VAR`] in this process's environment (set by `setup`).
    pub fn new(child: Arc<Mutex<std::process::Child>>) -> Arc<RunState> {
        Arc::new(RunState {
            running: Mutex::new(false),
            generation: AtomicU64::new(0),
            interrupted: AtomicBool::new(false),
            stopped_compile: AtomicBool::new(false),
            child,
            live: AtomicU32::new(0),
            flag: std::env::var_os(INTERRUPT_FILE_VAR).map(PathBuf::from),
        })
    }

    /// What stops this session's cells.
    pub fn interrupter(self: &Arc<Self>) -> Arc<dyn Interrupter> {
        Arc::new(ProcessInterrupter { state: self.clone() })
    }

    /// Whether an interrupt came since the cell began.
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Whether that interrupt stopped a compile rather than the user process.
    pub fn stopped_compile(&self) -> bool {
        self.stopped_compile.load(Ordering::SeqCst)
    }

    /// The user process's pid (the one running now: evcxr's, or a snapshot that took over).
    pub fn child_pid(&self) -> u32 {
        match self.live.load(Ordering::SeqCst) {
            0 => self.child.lock().unwrap_or_else(|e| e.into_inner()).id(),
            pid => pid,
        }
    }

    /// The user process died and its snapshot `now` took over: reaps `dead` and says how it
    /// ended.
    pub fn restored(&self, dead: u32, now: u32) -> crate::crash::Ending {
        let ending = crate::crash::reap(dead, &self.child);
        self.live.store(now, Ordering::SeqCst);
        ending
    }

    /// Reaps the orphans adopted during the cell (see [`crate::crash::reap_orphans`]).
    pub fn reap_orphans(&self) {
        let evcxrs = self.child.lock().unwrap_or_else(|e| e.into_inner()).id();
        crate::crash::reap_orphans(evcxrs);
    }

    /// evcxr restarted the user process (it died without a snapshot): reaps the dead one if a
    /// snapshot had taken over, and follows evcxr's new process.
    pub fn restarted(&self) {
        let pid = self.live.swap(0, Ordering::SeqCst);
        if pid != 0 {
            crate::crash::reap(pid, &self.child);
        }
    }
}

/// How long an interrupted cell may take to stop by itself before the user process is killed.
const INTERRUPT_GRACE: Duration = Duration::from_millis(1000);

/// The environment variable naming the interrupt flag file (the contract with the code magics
/// generate).
pub use magics::INTERRUPT_FILE_VAR;

/// Stops a running cell: a compile in progress is stopped by killing cargo (nothing is
/// lost); a running cell by killing the user process (evcxr restarts it; variables are lost).
struct ProcessInterrupter {
    state: Arc<RunState>,
}

impl RunState {
    /// A cell (or its jit compile) starts: interrupts from now on are for it.
    pub fn begin(&self) {
        let mut running = self.running.lock().unwrap();
        *running = true;
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.interrupted.store(false, Ordering::SeqCst);
        self.stopped_compile.store(false, Ordering::SeqCst);
        self.clear_flag();
    }

    pub fn end(&self) {
        *self.running.lock().unwrap() = false;
        self.clear_flag();
    }

    fn clear_flag(&self) {
        if let Some(flag) = &self.flag {
            let _ = std::fs::remove_file(flag);
        }
    }
}

impl Interrupter for ProcessInterrupter {
    /// A compile in progress is stopped at once (cargo is killed). A running cell is asked to
    /// stop (the flag file, which `%timeit` checks between chunks) and gets [`INTERRUPT_GRACE`];
    /// if it is still running then, the user process is killed.
    fn interrupt(&self) -> bool {
        let running = self.state.running.lock().unwrap();
        if !*running {
            return false;
        }
        self.state.interrupted.store(true, Ordering::SeqCst);
        if kill_compiles(std::process::id()) > 0 {
            self.state.stopped_compile.store(true, Ordering::SeqCst);
            return true;
        }
        if let Some(flag) = &self.state.flag {
            let _ = std::fs::write(flag, b"interrupt");
        }
        let generation = self.state.generation.load(Ordering::SeqCst);
        let state = self.state.clone();
        drop(running);
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + INTERRUPT_GRACE;
            while std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
                if !*state.running.lock().unwrap() || state.generation.load(Ordering::SeqCst) != generation {
                    return;
                }
            }
            let running = state.running.lock().unwrap();
            if *running && state.generation.load(Ordering::SeqCst) == generation {
                state.kill_user_process();
            }
        });
        true
    }

    fn terminate(&self) {
        kill_children_except(std::process::id(), self.state.child_pid());
        self.state.kill_user_process();
    }
}

impl RunState {
    fn kill_user_process(&self) {
        match self.live.load(Ordering::SeqCst) {
            0 => {
                let _ = self.child.lock().unwrap_or_else(|e| e.into_inner()).kill();
            }
            // SAFETY: our (adopted) child, not reaped until `restored`/`restarted` says so.
            pid => unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            },
        }
    }
}

/// A process as `/proc/<pid>/stat` has it.
pub struct Proc {
    pub pid: u32,
    pub parent: u32,
    pub name: String,
    /// A zombie: dead, not reaped yet.
    pub zombie: bool,
}

/// Every process of the machine this process can see.
pub fn processes() -> Vec<Proc> {
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    pids.into_iter().filter_map(process).collect()
}

/// This process's children, from each of its threads' `children` file (a child's parent is the
/// thread that started or adopted it); every process on the machine where that file is missing.
pub fn children() -> Vec<Proc> {
    let me = std::process::id();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    let mut pids = Vec::new();
    for task in tasks.flatten() {
        match std::fs::read_to_string(task.path().join("children")) {
            Ok(text) => pids.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok())),
            Err(_) => return processes().into_iter().filter(|p| p.parent == me).collect(),
        }
    }
    pids.into_iter().filter_map(process).collect()
}

fn process(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let mut rest = stat[close + 1..].split_whitespace();
    let state = rest.next()?;
    let parent = rest.next()?.parse().ok()?;
    Some(Proc { pid, parent, name: stat[open + 1..close].to_string(), zombie: state == "Z" })
}

/// Kills the compiles in progress: the live `cargo` and `rustc` children of `parent` (not the
/// user process, nor the orphans this process adopts, e.g. mold's helper or the cargo front's
/// reader of a rustc that linked), with all their descendants, and then the rustc forks of its
/// rustc zygote (`evcxr_backend::rustc_zygote`, which stays). Returns how many compiles there were:
/// a fork counts through its cargo front, which waits for it until it linked (a fork that runs
/// on after that, finishing its incremental session, is not a compile of the cell, nor killed).
fn kill_compiles(parent: u32) -> usize {
    let all = processes();
    let compiles: Vec<u32> = all.iter().filter(|p| p.parent == parent && !p.zombie && (p.name == "cargo" || p.name == "rustc")).map(|p| p.pid).collect();
    if compiles.is_empty() {
        return 0;
    }
    let zygotes: Vec<u32> = all.iter().filter(|p| p.parent == parent && p.name == crate::evcxr_backend::rustc_zygote::NAME).map(|p| p.pid).collect();
    let forks = all.iter().filter(|p| !p.zombie && zygotes.contains(&p.parent)).map(|p| p.pid);
    let count = compiles.len();
    kill_with_descendants(compiles.into_iter().chain(forks).collect());
    count
}

/// Kills every child of `parent` except `keep`, with all their descendants. Returns how many
/// children were killed.
fn kill_children_except(parent: u32, keep: u32) -> usize {
    let children = processes().iter().filter(|p| p.parent == parent && p.pid != keep).map(|p| p.pid).collect();
    kill_with_descendants(children)
}

fn kill_with_descendants(mut doomed: Vec<u32>) -> usize {
    let parents: Vec<(u32, u32)> = processes().iter().map(|p| (p.pid, p.parent)).collect();
    let children = doomed.len();
    let mut i = 0;
    while i < doomed.len() {
        let d = doomed[i];
        doomed.extend(parents.iter().filter(|(_, pp)| *pp == d).map(|(p, _)| *p));
        i += 1;
    }
    for pid in doomed {
        // SAFETY: sending a signal to a pid we just found as our descendant.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    children
}
