//! The session's rustc zygote: one rustc per session, started with the kernel and stopped before
//! its `main`, that forks a rustc for each cell the cargo front compiles (`cell_cache`). A rustc
//! spends ~8 ms of a 2-core machine before its `main` (librustc_driver's and libLLVM's
//! relocations and static constructors); a fork of the zygote has done it already (~6-10 ms less
//! per cell, docs/benchmarks.md).
//!
//! The zygote is the toolchain's own rustc with a library preloaded (`kernel/zygote/zygote.rs`,
//! built by `build.rs` and embedded here), which takes over before `main` and listens on
//! [`SOCKET`] beside the session crate's directory (the slot is private to its user; the zygote
//! also checks the caller's user). A request carries rustc's path (the zygote serves only a call
//! of itself), the directory, the arguments (given to the fork as an `@file`), the environment
//! and the three standard streams; the answer is the fork's pid, then its wait status. **Anything
//! the zygote does not serve is started as before** (no zygote, another rustc, an argument with
//! a newline, a refusal): [`spawn`] falls back to a child process. The zygote ends with the
//! kernel; its forks are compiles to an interrupt (`interrupt::kill_compiles`).

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::cache::{self, Caches};

/// The zygote's socket, relative to the session crate's directory (where cargo and the cargo
/// front run rustc): in the slot, beside that directory (which is copied as a seed; the slot is
/// private to its user). A relative name has no length limit on the directory.
pub const SOCKET: &str = "../rjk-rustc.sock";
/// The zygote's name (`/proc/<pid>/comm`); its forks are named `rustc`.
pub const NAME: &str = "rjk-zygote";
/// The preloaded library (empty when `build.rs` could not build it).
const LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/librjk_zygote.so"));
/// The library's variable naming the socket (`zygote.rs`).
const SOCKET_VAR: &str = "RJK_RUSTC_ZYGOTE";
/// The zygote's command line: its forks read their arguments from this `@file` (`zygote.rs`).
const ARGS_FILE: &str = "@/proc/self/fd/200";
/// The first bytes of a request (`zygote.rs`).
const MAGIC: u32 = 0x5a4a_4b52;
/// `off`: no zygote; every rustc starts as before.
pub const SWITCH_VAR: &str = "RUST_JIT_KERNEL_RUSTC_ZYGOTE";

/// Starts the session's zygote for the toolchain's `rustc`, listening beside `build` (the
/// session crate's directory, [`SOCKET`]); its pid. `None` when there is no library, or it could not start (cells
/// then start rustc as before; [`SWITCH_VAR`] `off` too).
pub fn start(caches: &Caches, rustc: &Path, build: &Path) -> Option<u32> {
    if std::env::var_os(SWITCH_VAR).is_some_and(|v| v == "off") {
        return None;
    }
    let library = library(caches)?;
    let rustc = std::fs::canonicalize(rustc).ok()?;
    std::fs::create_dir_all(build).ok()?;
    let child = Command::new(&rustc)
        .arg(ARGS_FILE)
        .current_dir(build)
        .env("LD_PRELOAD", &library)
        .env(SOCKET_VAR, SOCKET)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        // Reaped by `crash::reap_orphans` when it ends (it ends with this process).
        Ok(child) => Some(child.id()),
        Err(error) => {
            tracing::warn!(%error, "the rustc zygote did not start");
            None
        }
    }
}

/// The library in the cache (the shared cache's copy when it has one), written there once.
fn library(caches: &Caches) -> Option<PathBuf> {
    if LIBRARY.is_empty() {
        return None;
    }
    let path = caches.find_file(format!("rustc-zygote/{:016x}/librjk_zygote.so", cache::key(&LIBRARY)));
    if !path.exists() {
        cache::publish(&path, |at| std::fs::write(at, LIBRARY), |e| e).ok()?;
    }
    Some(path)
}

/// A rustc started for one call: its output pipes, and how its end is learnt.
pub struct Rustc {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    ending: Ending,
}

enum Ending {
    Child(Child),
    /// The zygote's connection: the fork's wait status comes on it.
    Zygote(UnixStream),
}

/// Starts rustc with `args` in this directory and environment, its stdin this process's and
/// its stdout and stderr piped: a fork of the session's zygote when it serves the call, else a
/// child.
pub fn spawn(rustc: &OsStr, args: &[OsString]) -> std::io::Result<Rustc> {
    let here = std::env::current_dir()?;
    if let Some(forked) = through_zygote(Path::new(SOCKET), rustc, args, &here, std::env::vars_os(), 0) {
        return Ok(forked);
    }
    let mut child = Command::new(rustc).args(args).stdin(Stdio::inherit()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let (stdout, stderr) = (child.stdout.take().expect("piped").into(), child.stderr.take().expect("piped").into());
    Ok(Rustc { stdout, stderr, ending: Ending::Child(child) })
}

impl Rustc {
    /// Waits for rustc's end: its exit code, `None` when a signal ended it (or the zygote
    /// ended first).
    pub fn wait(self) -> std::io::Result<Option<i32>> {
        match self.ending {
            Ending::Child(mut child) => Ok(child.wait()?.code()),
            Ending::Zygote(mut connection) => {
                connection.set_read_timeout(None)?;
                let mut status = [0u8; 4];
                match connection.read_exact(&mut status) {
                    Ok(()) => {
                        let status = i32::from_le_bytes(status);
                        Ok(libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)))
                    }
                    Err(_) => Ok(None),
                }
            }
        }
    }
}

/// The request's body: NUL-separated rustc, directory, argument count, arguments, and the
/// environment as `NAME=VALUE`s (paths, arguments and variables hold no NUL). `None` when an
/// argument has a newline, which an `@file` cannot carry.
fn request(rustc: &Path, dir: &Path, args: &[OsString], env: impl Iterator<Item = (OsString, OsString)>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let field = |bytes: &[u8], body: &mut Vec<u8>| {
        body.extend_from_slice(bytes);
        body.push(0);
    };
    field(rustc.as_os_str().as_encoded_bytes(), &mut body);
    field(dir.as_os_str().as_encoded_bytes(), &mut body);
    field(args.len().to_string().as_bytes(), &mut body);
    for arg in args {
        let arg = arg.as_encoded_bytes();
        if arg.contains(&b'\n') {
            return None;
        }
        field(arg, &mut body);
    }
    for (name, value) in env {
        let mut entry = name.into_encoded_bytes();
        entry.push(b'=');
        entry.extend_from_slice(value.as_encoded_bytes());
        field(&entry, &mut body);
    }
    Some(body)
}

/// Asks the zygote listening at `socket` to run `rustc` with `args` in `dir` with `env` and
/// `stdin`; `None` when it is not there or does not serve the call.
fn through_zygote(socket: &Path, rustc: &OsStr, args: &[OsString], dir: &Path, env: impl Iterator<Item = (OsString, OsString)>, stdin: i32) -> Option<Rustc> {
    let connection = UnixStream::connect(socket).ok()?;
    let rustc = std::fs::canonicalize(rustc).ok()?;
    let body = request(&rustc, dir, args, env)?;
    let (stdout, stdout_end) = pipe()?;
    let (stderr, stderr_end) = pipe()?;
    let mut header = [0u8; 8];
    header[..4].copy_from_slice(&MAGIC.to_le_bytes());
    header[4..].copy_from_slice(&(body.len() as u32).to_le_bytes());
    send_with_fds(&connection, &header, [stdin, stdout_end.as_raw_fd(), stderr_end.as_raw_fd()]).ok()?;
    (&connection).write_all(&body).ok()?;
    drop((stdout_end, stderr_end));
    connection.set_read_timeout(Some(std::time::Duration::from_secs(10))).ok()?;
    let mut pid = [0u8; 4];
    (&connection).read_exact(&mut pid).ok()?;
    (i32::from_le_bytes(pid) > 0).then_some(Rustc { stdout, stderr, ending: Ending::Zygote(connection) })
}

/// A pipe (read end, write end), both closed on exec.
fn pipe() -> Option<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `pipe2` writes two descriptors into the array, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: both were just made and are owned nowhere else.
    Some(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends `bytes` with three descriptors (`SCM_RIGHTS`).
fn send_with_fds(connection: &UnixStream, bytes: &[u8], fds: [i32; 3]) -> std::io::Result<()> {
    // SAFETY: `CMSG_SPACE` is arithmetic.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(&fds) as u32) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() };
    // SAFETY: a zeroed `msghdr` is a valid empty one; its fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: the control buffer holds one header with room for the descriptors (`CMSG_SPACE`).
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(&fds) as u32) as usize;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast::<i32>(), fds.len());
    }
    // SAFETY: `msg` points at live buffers for the call.
    let sent = unsafe { libc::sendmsg(connection.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if sent != bytes.len() as isize {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
