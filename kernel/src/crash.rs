//! How the user process ended, when its snapshot took over (`user_process::snapshot`): the
//! kernel reaps the dead process (its child: the kernel is a child subreaper, so every
//! orphaned snapshot is adopted by it) and says in the cell's error what happened.

use std::sync::{Arc, Mutex};

/// Makes this process adopt its orphaned descendants (the snapshot that takes over when the
/// user process dies), so that it can wait for them and learn how they ended. Linux only; where
/// it fails, the cause of a crash is unknown but nothing else changes.
pub fn become_subreaper() {
    // SAFETY: a prctl that takes one integer.
    let done = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0;
    if !done {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot become a child subreaper");
    }
}

/// Reaps this process's zombie children except `keep` (evcxr's user process, which evcxr waits
/// for): the orphans it adopted as a subreaper (mold's helper, a dead cell's own children).
/// Call when nothing else here waits for a child (between cells: no compile runs).
pub fn reap_orphans(keep: u32) {
    for p in crate::interrupt::children() {
        if p.zombie && p.pid != keep {
            let mut status = 0;
            // SAFETY: reaping our own dead child, without blocking.
            unsafe { libc::waitpid(p.pid as i32, &mut status, libc::WNOHANG) };
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Signal(i32),
    Unknown,
}

/// Stops (if it still runs, e.g. it `exec`'d) and reaps `dead`, which evcxr started as `child`
/// or which this process adopted.
pub fn reap(dead: u32, child: &Arc<Mutex<std::process::Child>>) -> Ending {
    use std::os::unix::process::ExitStatusExt;
    // SAFETY: `dead` is our child, not reaped yet, so its pid cannot have been reused; a
    // process already exiting keeps its own exit status.
    unsafe { libc::kill(dead as i32, libc::SIGKILL) };
    let mut child = child.lock().unwrap_or_else(|e| e.into_inner());
    if child.id() == dead {
        // Through `Child`, so that evcxr (which holds it) knows it is gone.
        return match child.wait() {
            Ok(status) => status.code().map(Ending::Exited).or(status.signal().map(Ending::Signal)).unwrap_or(Ending::Unknown),
            Err(_) => Ending::Unknown,
        };
    }
    drop(child);
    let mut status = 0;
    // SAFETY: waiting for our own (adopted) child.
    if unsafe { libc::waitpid(dead as i32, &mut status, 0) } != dead as i32 {
        return Ending::Unknown;
    }
    if libc::WIFEXITED(status) {
        Ending::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Ending::Signal(libc::WTERMSIG(status))
    } else {
        Ending::Unknown
    }
}

/// What the dead process's last words on stderr tell (Rust's own reports).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LastWords {
    pub stack_overflow: bool,
    /// `memory allocation of N bytes failed`.
    pub allocation_failed: Option<String>,
}

impl LastWords {
    /// Notes a stderr line.
    pub fn hear(&mut self, line: &str) {
        if line.contains("has overflowed its stack") {
            self.stack_overflow = true;
        } else if line.starts_with("memory allocation of ") && line.ends_with(" failed") {
            self.allocation_failed = Some(line.to_string());
        }
    }
}

/// What happened, for the cell's error: "the cell's process ..." completes it.
pub fn cause(ending: Ending, words: &LastWords, interrupted: bool) -> String {
    let signal = |n: i32| match n {
        libc::SIGSEGV => "a segmentation fault (SIGSEGV)".to_string(),
        libc::SIGBUS => "a bus error (SIGBUS)".to_string(),
        libc::SIGILL => "an illegal instruction (SIGILL)".to_string(),
        libc::SIGFPE => "an arithmetic fault (SIGFPE)".to_string(),
        libc::SIGABRT => "an abort (SIGABRT)".to_string(),
        libc::SIGKILL if interrupted => "the interrupt (SIGKILL)".to_string(),
        libc::SIGKILL => "SIGKILL, most likely from the out-of-memory killer (the machine or the session's memory limit ran out)".to_string(),
        n => format!("signal {n}"),
    };
    if words.stack_overflow {
        return "overflowed its stack (endless recursion?) and aborted".to_string();
    }
    if let Some(line) = &words.allocation_failed {
        return format!("ran out of memory ({line}) and aborted");
    }
    match ending {
        Ending::Exited(code) => format!("exited with status {code} (`std::process::exit({code})`)"),
        Ending::Signal(n) => format!("was ended by {}", signal(n)),
        Ending::Unknown => "died".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_say_what_happened() {
        let quiet = LastWords::default();
        assert!(cause(Ending::Exited(3), &quiet, false).contains("std::process::exit(3)"));
        assert!(cause(Ending::Signal(libc::SIGSEGV), &quiet, false).contains("segmentation fault"));
        assert!(cause(Ending::Signal(libc::SIGKILL), &quiet, false).contains("out-of-memory killer"));
        assert!(cause(Ending::Signal(libc::SIGKILL), &quiet, true).contains("interrupt"));
        let mut words = LastWords::default();
        words.hear("thread 'main' (123) has overflowed its stack");
        assert!(cause(Ending::Signal(libc::SIGABRT), &words, false).contains("overflowed its stack"));
        let mut words = LastWords::default();
        words.hear("memory allocation of 17592186044416 bytes failed");
        assert!(cause(Ending::Signal(libc::SIGABRT), &words, false).contains("ran out of memory (memory allocation of 17592186044416 bytes failed)"));
    }

    #[test]
    fn a_dead_child_is_seen_as_a_zombie_child() {
        // (`reap_orphans` itself is not called here: it would reap other tests' children.)
        let mut child = std::process::Command::new("true").spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(crate::interrupt::children().iter().any(|p| p.pid == child.id() && p.zombie));
        assert!(child.wait().unwrap().success());
    }

    #[test]
    fn an_adopted_child_is_reaped_with_its_status() {
        let child = Arc::new(Mutex::new(std::process::Command::new("true").spawn().unwrap()));
        let other = std::process::Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(reap(other.id(), &child), Ending::Exited(3));
        let pid = child.lock().unwrap().id();
        assert_eq!(reap(pid, &child), Ending::Exited(0));
    }
}
