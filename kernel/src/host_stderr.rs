//! Captures the kernel process's own stderr, so that cargo's "Compiling ..." lines (which
//! evcxr writes there during `:dep` builds) reach the learner as stream output instead of
//! the server log. Everything else still goes to the real stderr (the log).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};

/// Lines of cargo progress captured while a cell runs.
#[derive(Clone)]
pub struct HostStderr {
    capturing: Arc<AtomicBool>,
    pub lines: Receiver<String>,
}

impl HostStderr {
    pub fn set_capturing(&self, on: bool) {
        self.capturing.store(on, Ordering::SeqCst);
    }
}

/// A writer to the original stderr, for logs.
#[derive(Clone)]
pub struct LogWriter(Arc<Mutex<File>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap().flush()
    }
}

fn is_progress(line: &str) -> bool {
    let line = line.trim_start();
    ["Compiling ", "Downloading ", "Downloaded ", "Updating ", "Locking "].iter().any(|p| line.starts_with(p))
}

static ORIGINAL: std::sync::OnceLock<i32> = std::sync::OnceLock::new();

/// Puts the original stderr back on fd 2 (for a last error message before exit).
pub fn restore() {
    if let Some(&fd) = ORIGINAL.get() {
        // SAFETY: fd is our duplicate of the original stderr, still open.
        unsafe { libc::dup2(fd, 2) };
    }
}

/// Redirects fd 2 into a pipe read by a thread. Returns the capture and a writer to the
/// original stderr.
pub fn capture() -> std::io::Result<(HostStderr, LogWriter)> {
    let mut fds = [0; 2];
    // SAFETY: plain POSIX calls on fresh descriptors; fd 2 is replaced atomically by dup2.
    let original = unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let original = libc::dup(2);
        if original < 0 || libc::dup2(fds[1], 2) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        libc::close(fds[1]);
        let _ = ORIGINAL.set(libc::dup(original));
        File::from_raw_fd(original)
    };
    let log = LogWriter(Arc::new(Mutex::new(original)));
    // SAFETY: fds[0] is the read end of the pipe we just made, owned by nobody else.
    let reader = unsafe { File::from_raw_fd(fds[0]) };
    let capturing = Arc::new(AtomicBool::new(false));
    let (tx, rx): (Sender<String>, Receiver<String>) = crossbeam_channel::unbounded();
    let thread_capturing = capturing.clone();
    let mut thread_log = log.clone();
    std::thread::Builder::new().name("host-stderr".into()).spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if thread_capturing.load(Ordering::SeqCst) && is_progress(&line) {
                let _ = tx.send(line);
            } else {
                let _ = writeln!(thread_log, "{line}");
            }
        }
    })?;
    Ok((HostStderr { capturing, lines: rx }, log))
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_lines() {
        assert!(super::is_progress("   Compiling ndarray v0.17.1"));
        assert!(!super::is_progress("warning: something"));
    }
}
