//! The Rust code the evcxr backend puts in front of a learner's cell (the session prelude, the
//! panic hook), and where it goes: after the cell's leading evcxr commands.

/// Items every session starts with.
///
/// `EvcxrDebugDisplay`: evcxr shows a trailing expression by first compiling
/// `(expr).evcxr_display()` and, when that fails (the usual case), compiling again with
/// `{:?}`. This blanket trait makes the first attempt succeed for every `Debug` value, so a
/// cell like `1 + 1` compiles once instead of twice. Inherent `evcxr_display` methods still win.
pub const PRELUDE_ITEMS: &str = r#"
#[allow(dead_code)]
trait EvcxrDebugDisplay {
    fn evcxr_display(&self);
}
impl<T: ::std::fmt::Debug + ?Sized> EvcxrDebugDisplay for T {
    fn evcxr_display(&self) {
        use ::std::io::Write;
        let text = format!("{:?}", self);
        let stdout = ::std::io::stdout();
        let mut out = stdout.lock();
        let _ = write!(out, "EVCXR_BEGIN_CONTENT text/plain\n{}\nEVCXR_END_CONTENT\n", text);
        let _ = out.flush();
    }
}
"#;

/// The cell's leading evcxr commands (`:dep ...`), with the blank lines, `//` comments and `!`
/// shell lines evcxr accepts among them, and the rest. The commands end in a newline, so that
/// what goes after them starts a line of its own.
pub fn split_commands(code: &str) -> (String, &str) {
    let mut end = 0;
    let mut commands = false;
    for line in code.split_inclusive('\n') {
        let trimmed = line.trim();
        if !(trimmed.is_empty() || trimmed.starts_with(':') || trimmed.starts_with("//") || trimmed.starts_with('!')) {
            break;
        }
        commands |= trimmed.starts_with(':') || trimmed.starts_with('!');
        end += line.len();
    }
    if !commands {
        return (String::new(), code);
    }
    let (head, rest) = code.split_at(end);
    let mut head = head.to_string();
    if !head.ends_with('\n') {
        head.push('\n');
    }
    (head, rest)
}

/// evcxr commands that would break the session here, and why: the first one in `commands` (a
/// cell's leading commands, [`split_commands`]).
pub fn unsupported_command(commands: &str) -> Option<(&str, &'static str)> {
    const UNSUPPORTED: [(&str, &str); 2] = [
        (":allow_static_linking", "it builds dependencies as shared libraries, which fails with this toolchain for every later cell"),
        (":opt", "plain cells stay at opt-level 0 (use #[jit] for optimised code), and it would drop the runtime the session links"),
    ];
    commands.lines().map(str::trim).find_map(|line| {
        let name = line.split_whitespace().next()?;
        UNSUPPORTED.iter().find(|(command, _)| *command == name).map(|(_, why)| (line, *why))
    })
}

/// Error names the runtime panics with (`Name: message`), shown as the error's name.
pub const RUNTIME_ERRORS: [&str; 1] = ["CudaError"];

/// Installed in the user process (and again after it restarts): a panic on the cell's thread
/// is reported on stdout as one `RJK_PANIC location<TAB>message` line, which arrives in order
/// with the cell's output; panics on other threads print as Rust prints them. And the user
/// process learns how to flush the cells' stdout (`libstd.so`'s, not its own), which it does
/// before a snapshot and before asking for input (`user_process::stdin`).
pub const PANIC_HOOK: &str = r#"
{
    extern "C" fn rjk_flush_cells_stdout() {
        use ::std::io::Write;
        let _ = ::std::io::stdout().flush();
    }
    unsafe extern "C" {
        fn dlsym(handle: *mut ::std::ffi::c_void, symbol: *const ::std::ffi::c_char) -> *mut ::std::ffi::c_void;
    }
    let register = unsafe { dlsym(::std::ptr::null_mut(), c"rjk_set_stdout_flush".as_ptr()) };
    if !register.is_null() {
        let register: extern "C" fn(extern "C" fn()) = unsafe { ::std::mem::transmute(register) };
        register(rjk_flush_cells_stdout);
    }
    unsafe extern "C" {
        fn gettid() -> i32;
    }
    // The thread that runs the cell: the kernel binary says which (the session pool's thread
    // when the cell links the runtime); this one when it cannot.
    let cell_thread = unsafe { dlsym(::std::ptr::null_mut(), c"rjk_cell_thread".as_ptr()) };
    let cell_thread: Option<extern "C" fn() -> i32> = (!cell_thread.is_null()).then(|| unsafe { ::std::mem::transmute(cell_thread) });
    let main_thread = ::std::thread::current().id();
    let on_cell_thread = move || match cell_thread {
        Some(cell_thread) => cell_thread() == unsafe { gettid() },
        None => ::std::thread::current().id() == main_thread,
    };
    ::std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            s.to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "Box<dyn Any>".to_string()
        };
        let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())).unwrap_or_default();
        if on_cell_thread() {
            let escaped = message.replace('\\', "\\\\").replace('\n', "\\n");
            println!("RJK_PANIC {location}\t{escaped}");
        } else {
            let thread = ::std::thread::current();
            eprintln!("thread '{}' panicked at {location}:\n{message}", thread.name().unwrap_or("<unnamed>"));
        }
    }));
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_that_would_break_the_session_are_refused() {
        assert_eq!(unsupported_command(":dep rand = \"0.9\"\n:allow_static_linking 0\n").map(|c| c.0), Some(":allow_static_linking 0"));
        assert_eq!(unsupported_command(":opt 2").map(|c| c.0), Some(":opt 2"));
        assert_eq!(unsupported_command(":dep rand\n:vars\n:optimize"), None);
    }

    #[test]
    fn commands_stay_at_the_top() {
        let split = |code| {
            let (head, rest) = split_commands(code);
            (head, rest.to_string())
        };
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(split(":dep plotters = \"0.3\"\n\n:vars\nlet x = 1;\n:not_a_command"), s(":dep plotters = \"0.3\"\n\n:vars\n", "let x = 1;\n:not_a_command"));
        assert_eq!(split("1 + 1"), s("", "1 + 1"));
        assert_eq!(split("// a comment\n1 + 1"), s("", "// a comment\n1 + 1"));
        // Jupyter sends a cell without its last newline: the prefix must not join the command.
        assert_eq!(split(":dep a"), s(":dep a\n", ""));
        assert_eq!(split("// dependencies\n:dep a = \"1\"\n!ls\nuse a::b;"), s("// dependencies\n:dep a = \"1\"\n!ls\n", "use a::b;"));
    }
}
