use super::*;

/// The toolchain's rustc (as `setup` finds it).
fn toolchain_rustc() -> PathBuf {
    crate::setup::Toolchain::discover().expect("a Rust toolchain").sysroot.join("bin/rustc")
}

/// A zygote of the toolchain's rustc, listening in a scratch directory, and that directory.
struct Zygote {
    dir: PathBuf,
    pid: u32,
}

impl Zygote {
    fn start(name: &str) -> Zygote {
        assert!(!LIBRARY.is_empty(), "build.rs built the zygote's library");
        let dir = std::env::temp_dir().join(format!("rjk-zygote-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("build")).unwrap();
        let pid = start(&Caches::own_only(&dir.join("cache")), &toolchain_rustc(), &dir.join("build")).expect("the zygote starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while UnixStream::connect(dir.join("build").join(SOCKET)).is_err() {
            assert!(std::time::Instant::now() < deadline, "the zygote listens");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Zygote { dir, pid }
    }

    /// rustc through the zygote, in its directory, with `env` only; its exit code and output.
    fn run(&self, rustc: &Path, args: &[&str], env: &[(&str, &str)]) -> Option<(Option<i32>, String, String)> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let env = env.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect::<Vec<_>>();
        let rustc = through_zygote(&self.dir.join("build").join(SOCKET), rustc.as_os_str(), &args, &self.dir, env.into_iter(), 0)?;
        let read = |fd: OwnedFd| {
            let mut text = String::new();
            std::fs::File::from(fd).read_to_string(&mut text).unwrap();
            text
        };
        let (stdout, stderr) = (read(rustc.stdout.try_clone().unwrap()), read(rustc.stderr.try_clone().unwrap()));
        Some((rustc.wait().unwrap(), stdout, stderr))
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        // SAFETY: our own child.
        unsafe {
            libc::kill(self.pid as i32, libc::SIGKILL);
            libc::waitpid(self.pid as i32, std::ptr::null_mut(), 0);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_fork_of_the_zygote_compiles_with_the_calls_arguments_directory_and_environment() {
    let zygote = Zygote::start("compiles");
    std::fs::write(zygote.dir.join("cell.rs"), "pub const V: &str = env!(\"RJK_ZYGOTE_TEST\");\n#[unsafe(no_mangle)] pub extern \"C\" fn f() {}\n").unwrap();
    let path = std::env::var("PATH").unwrap();
    // A relative source and output: the call's directory, not the zygote's.
    let args = ["--crate-name", "cell", "--crate-type", "cdylib", "--edition=2024", "--error-format=json", "--json=artifacts", "cell.rs", "-o", "libcell.so"];
    let (code, _, stderr) = zygote.run(&toolchain_rustc(), &args, &[("RJK_ZYGOTE_TEST", "from the call"), ("PATH", &path)]).expect("served");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(zygote.dir.join("libcell.so").exists());
    assert!(stderr.contains("\"emit\":\"link\""), "{stderr}");
    // Without the variable, `env!` fails: the zygote's own environment is not the call's.
    let (code, _, stderr) = zygote.run(&toolchain_rustc(), &args, &[("PATH", &path)]).expect("served");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("RJK_ZYGOTE_TEST"), "{stderr}");
    // Forks one after another, and beside each other.
    let runs: Vec<_> = (0..3).map(|_| std::thread::scope(|s| s.spawn(|| zygote.run(&toolchain_rustc(), &["--version"], &[])).join().unwrap())).collect();
    for run in runs {
        let (code, stdout, _) = run.expect("served");
        assert_eq!(code, Some(0));
        assert!(stdout.starts_with("rustc "), "{stdout}");
    }
}

#[test]
fn the_zygote_serves_only_a_call_of_its_own_rustc_and_what_an_argument_file_can_carry() {
    let zygote = Zygote::start("refuses");
    let open_fds = || std::fs::read_dir(format!("/proc/{}/fd", zygote.pid)).unwrap().count();
    let before = open_fds();
    assert!(zygote.run(Path::new("/bin/true"), &["--version"], &[]).is_none(), "another program");
    // (The zygote closes its end of the connection just after answering.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while open_fds() != before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(open_fds(), before, "a refused request's descriptors are closed");
    assert!(zygote.run(&toolchain_rustc(), &["--cfg", "a\nb"], &[]).is_none(), "a newline in an argument");
    assert!(through_zygote(&zygote.dir.join("elsewhere.sock"), toolchain_rustc().as_os_str(), &[], &zygote.dir, std::iter::empty(), 0).is_none());
    // Still serving.
    assert_eq!(zygote.run(&toolchain_rustc(), &["--version"], &[]).expect("served").0, Some(0));
}

#[test]
fn a_killed_fork_ends_without_an_exit_code() {
    let zygote = Zygote::start("killed");
    // rustc reading its source from a stdin that never ends.
    let (reader, mut writer) = std::io::pipe().unwrap();
    let args = [OsString::from("-")];
    let rustc = through_zygote(&zygote.dir.join("build").join(SOCKET), toolchain_rustc().as_os_str(), &args, &zygote.dir, std::iter::empty(), reader.as_raw_fd()).expect("served");
    writer.write_all(b"fn main() {").unwrap();
    let forks: Vec<u32> = crate::interrupt::processes().iter().filter(|p| p.parent == zygote.pid).map(|p| p.pid).collect();
    assert_eq!(forks.len(), 1, "one fork, the zygote's child");
    // SAFETY: the zygote's fork, not reaped yet.
    unsafe { libc::kill(forks[0] as i32, libc::SIGKILL) };
    assert_eq!(rustc.wait().unwrap(), None);
}

#[test]
fn the_kernel_and_the_library_agree_on_the_protocol() {
    // The facts both sides of the socket need, written once each side: the library has no
    // dependencies, not even on this crate.
    let library = include_str!("../../../zygote/zygote.rs");
    assert!(library.contains(&format!("const MAGIC: u32 = 0x{:04x}_{:04x};", MAGIC >> 16, MAGIC & 0xffff)), "MAGIC");
    assert!(library.contains(&format!("const SOCKET_VAR: &str = \"{SOCKET_VAR}\";")), "SOCKET_VAR");
    let fd = ARGS_FILE.strip_prefix("@/proc/self/fd/").expect("an fd");
    assert!(library.contains(&format!("const ARGS_FD: c_int = {fd};")), "ARGS_FILE");
    assert!(library.contains(&format!("PR_SET_NAME, c\"{NAME}\"")), "NAME");
}
