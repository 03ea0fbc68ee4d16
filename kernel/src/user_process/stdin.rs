//! The user process's stdin: commands from evcxr, and the cells' own reads of fd 0.
//!
//! At start, [`take_commands`] moves evcxr's command pipe from fd 0 to another descriptor and
//! puts `/dev/null` on fd 0. This binary defines `read` (exported, so the cells' `libstd.so`
//! binds to it, as a preloaded library's would): a read of fd 0 in the user process becomes an
//! input request. It writes evcxr's `EVCXR_INPUT_REQUEST:<prompt>` line on stdout; evcxr asks
//! the kernel (which sends `input_request` to the frontend, or answers end-of-file at once when
//! the request does not allow stdin), and writes the answer on the command pipe, one line:
//! [`INPUT_LINE`] and the text (escaped), [`INPUT_EOF`], or [`INPUT_INTERRUPTED`] (the process
//! then ends itself, so that its snapshot takes over). Every other read is the system call
//! itself.
//!
//! Before a request, what the cells printed is flushed (their `print!("Name: ")` prompt), and
//! [`PROMPT_END`] ends that line for evcxr, which reads stdout by lines (the kernel takes the
//! marker out again).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Mutex;

/// evcxr's input request lines (`evcxr_input`'s protocol).
const GET_CMD: &str = "EVCXR_INPUT_REQUEST";
const GET_CMD_PASSWORD: &str = "EVCXR_INPUT_REQUEST_PASSWORD";
/// The kernel's answer: a line of input (`\n` and `\\` escaped).
pub const INPUT_LINE: &str = "RJK_INPUT ";
/// The kernel's answer: end of input (stdin not allowed).
pub const INPUT_EOF: &str = "RJK_INPUT_EOF";
/// The kernel's answer: the cell was interrupted while it waited. The process ends itself, as an
/// interrupt ends a running cell (its snapshot takes over).
pub const INPUT_INTERRUPTED: &str = "RJK_INPUT_INTERRUPTED";
/// Ends the line the cell's prompt is on, for evcxr; not shown.
pub const PROMPT_END: &str = "\u{1}RJK_PROMPT_END";

/// The descriptor commands arrive on (-1 outside the user process).
static COMMANDS: AtomicI32 = AtomicI32::new(-1);
/// Set in the user process: reads of fd 0 are input requests.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Bytes of the command pipe read but not used yet, and of an input line not yet returned.
static PENDING: Mutex<(Vec<u8>, Vec<u8>)> = Mutex::new((Vec::new(), Vec::new()));
/// The cells' stdout flush (registered by the session's panic hook block).
static FLUSH: AtomicUsize = AtomicUsize::new(0);

/// Moves the command pipe off fd 0 (see the module's documentation).
pub fn take_commands() {
    // SAFETY: duplicating and replacing this process's own descriptors.
    unsafe {
        let commands = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if commands < 0 || null < 0 {
            return;
        }
        libc::dup2(null, 0);
        libc::close(null);
        COMMANDS.store(commands, Ordering::SeqCst);
    }
    ACTIVE.store(true, Ordering::SeqCst);
}

fn sys_read(fd: libc::c_int, buf: *mut c_void, count: usize) -> isize {
    // SAFETY: the caller's buffer and length, passed through.
    unsafe { libc::syscall(libc::SYS_read, fd, buf, count) as isize }
}

/// The next line on the command pipe, without its newline; `None` at end of file.
pub fn command() -> Option<String> {
    let fd = COMMANDS.load(Ordering::SeqCst);
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(at) = pending.0.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.0.drain(..=at).collect();
            return Some(String::from_utf8_lossy(&line[..at]).into_owned());
        }
        let mut buf = [0u8; 4096];
        let n = sys_read(fd, buf.as_mut_ptr().cast(), buf.len());
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return None;
        }
        pending.0.extend_from_slice(&buf[..n as usize]);
    }
}

/// Flushes what the cells wrote to their (`libstd.so`'s) stdout.
pub fn flush_cell_stdout() {
    let f = FLUSH.load(Ordering::SeqCst);
    if f != 0 {
        // SAFETY: registered by `rjk_set_stdout_flush` from a cell's code, which stays loaded.
        let f: extern "C" fn() = unsafe { std::mem::transmute(f) };
        f();
    }
}

/// Registers the function that flushes the cells' stdout (the session's panic hook block calls
/// it once per user process).
#[unsafe(no_mangle)]
pub extern "C" fn rjk_set_stdout_flush(flush: extern "C" fn()) {
    FLUSH.store(flush as usize, Ordering::SeqCst);
}

/// Asks the kernel for one line (see the module's documentation): the line with its newline,
/// or `None` at end of input.
fn request(prompt: &str, password: bool) -> Option<Vec<u8>> {
    flush_cell_stdout();
    let cmd = if password { GET_CMD_PASSWORD } else { GET_CMD };
    super::say(&format!("{PROMPT_END}\n{cmd}:{}\n", encode_prompt(prompt)));
    let answer = command()?;
    if answer == INPUT_INTERRUPTED {
        // SAFETY: ending this process, as the interrupt would.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    let text = answer.strip_prefix(INPUT_LINE)?;
    let mut line = unescape(text).into_bytes();
    line.push(b'\n');
    Some(line)
}

/// The text of a marker line escaped as the panic hook and [`escape`] escape it (a backslash
/// before `n` for a newline, before another backslash for a backslash).
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some('n')) => {
                out.push('\n');
                chars.next();
            }
            ('\\', Some('\\')) => {
                out.push('\\');
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// A prompt as it travels in evcxr's request line, which ends at a newline and whose prompt
/// evcxr cuts at the first `:`: `%`, `:` and newlines percent-encoded.
fn encode_prompt(prompt: &str) -> String {
    prompt.replace('%', "%25").replace(':', "%3A").replace('\n', "%0A")
}

/// The prompt [`encode_prompt`] encoded.
pub fn decode_prompt(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3);
        let decoded = match code {
            Some("25") => Some('%'),
            Some("3A") => Some(':'),
            Some("0A") => Some('\n'),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// How the kernel writes a line of input for [`request`] to read.
pub fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// `read(2)`, as every caller in this process (and the cells' `libstd.so`) calls it: fd 0 of the
/// user process is input from the frontend, everything else is the system call.
///
/// # Safety
/// As `read(2)`: `buf` must be valid for `count` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn read(fd: libc::c_int, buf: *mut c_void, count: usize) -> isize {
    if fd != 0 || !ACTIVE.load(Ordering::Relaxed) || count == 0 {
        return sys_read(fd, buf, count);
    }
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    if pending.1.is_empty() {
        drop(pending);
        match request("", false) {
            Some(line) => {
                pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
                pending.1 = line;
            }
            None => return 0,
        }
    }
    let n = count.min(pending.1.len());
    // SAFETY: `buf` holds `count >= n` bytes (the caller's contract).
    unsafe { std::ptr::copy_nonoverlapping(pending.1.as_ptr(), buf.cast::<u8>(), n) };
    pending.1.drain(..n);
    n as isize
}

/// One line of input for the runtime's `jit::input` (`prompt` shown by the frontend; `password`:
/// typed hidden). Calls `out(ctx, text, len)` with the line (without its newline) and returns 0,
/// or returns 1 at end of input.
///
/// # Safety
/// `prompt` must be valid for `len` bytes; `out` is called once with a buffer valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rjk_input(
    prompt: *const u8,
    len: usize,
    password: i32,
    ctx: *mut c_void,
    out: extern "C" fn(*mut c_void, *const u8, usize),
) -> i32 {
    // SAFETY: the caller's contract.
    let prompt = String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(prompt, len) }).into_owned();
    match request(&prompt, password != 0) {
        Some(mut line) => {
            line.pop();
            out(ctx, line.as_ptr(), line.len());
            0
        }
        None => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_lines_survive_the_trip() {
        for text in ["plain", "back\\slash", "two\nlines", "\\n literally"] {
            assert_eq!(unescape(&escape(text)), text);
        }
        for prompt in ["Name: ", "100%: %3A", "a\nb", "%", ""] {
            let encoded = encode_prompt(prompt);
            assert!(!encoded.contains(':') && !encoded.contains('\n'));
            assert_eq!(decode_prompt(&encoded), prompt);
        }
    }

    #[test]
    fn outside_the_user_process_read_is_the_system_call() {
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        assert_eq!(unsafe { libc::write(fds[1], b"abc".as_ptr().cast(), 3) }, 3);
        let mut buf = [0u8; 8];
        assert_eq!(unsafe { read(fds[0], buf.as_mut_ptr().cast(), 8) }, 3);
        assert_eq!(&buf[..3], b"abc");
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }
}
