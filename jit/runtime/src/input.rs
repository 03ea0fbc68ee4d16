//! Input from the notebook's user, as Python's `input()` and `getpass()`.
//!
//! In the kernel, `std::io::stdin()` already reads from the frontend (an `input_request` per
//! line); these add a prompt shown by the frontend and, for [`password`], hidden typing. Outside
//! the kernel they read a line of the process's stdin (the prompt printed first).
//!
//! The ABI, shared with `kernel/src/user_process/stdin.rs`: `rjk_input(prompt, len, password,
//! ctx, out)` calls `out(ctx, text, len)` with the line and returns 0, or returns 1 at the end of
//! input.

use std::ffi::c_void;

type OutFn = extern "C" fn(ctx: *mut c_void, text: *const u8, len: usize);
type InputFn = unsafe extern "C" fn(prompt: *const u8, len: usize, password: i32, ctx: *mut c_void, out: OutFn) -> i32;

unsafe extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const std::ffi::c_char) -> *mut c_void;
}

extern "C" fn keep(ctx: *mut c_void, text: *const u8, len: usize) {
    // SAFETY: `ctx` is the `String` `ask` passes; `text` is valid for `len` bytes during the call.
    let line = unsafe { &mut *(ctx as *mut String) };
    line.push_str(&String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(text, len) }));
}

fn ask(prompt: &str, password: bool) -> Option<String> {
    // SAFETY: a NUL-terminated name with RTLD_DEFAULT (null); the symbol has this signature.
    let input = unsafe { dlsym(std::ptr::null_mut(), c"rjk_input".as_ptr()) };
    if input.is_null() {
        use std::io::Write;
        print!("{prompt}");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        return match std::io::stdin().read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
        };
    }
    // SAFETY: see above; `keep` is called with the line while `line` lives.
    let input = unsafe { std::mem::transmute::<*mut c_void, InputFn>(input) };
    let mut line = String::new();
    let status = unsafe { input(prompt.as_ptr(), prompt.len(), password as i32, (&mut line as *mut String).cast(), keep) };
    (status == 0).then_some(line)
}

/// A line typed by the user after `prompt` (without its newline); `None` when there is no input
/// (the notebook runs without a frontend that answers, e.g. in CI).
pub fn line(prompt: &str) -> Option<String> {
    ask(prompt, false)
}

/// A line typed hidden (a password); `None` when there is no input.
pub fn password(prompt: &str) -> Option<String> {
    ask(prompt, true)
}
