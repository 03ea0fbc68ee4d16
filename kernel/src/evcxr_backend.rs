//! The [`Backend`] that runs cells with evcxr. The only module that knows evcxr.
//!
//! evcxr compiles each cell into a shared object and runs it in a child process (this same
//! binary, started through `evcxr::runtime_hook`). Variables live in that child; items,
//! `use`s and dependencies live in evcxr's state in this process.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{never, select, Receiver};
use evcxr::{CommandContext, CompilationError, Error as EvcxrError};

use crate::backend::{Backend, CellError, Completions, Interrupter, LiveOutput, MimeBundle, OutputSink};
use crate::jit::{self, JitCompiler};
use crate::diagnostics::{self, CellSpan, Diagnostic};
use crate::host_stderr::HostStderr;
use crate::output::{OutputPump, Panic};

/// How long stderr must stay quiet after a cell ends before its output is complete.
/// (The child's stderr is read by another thread; the panic text is written before the
/// cell returns, so it is normally already there.)
const STDERR_SETTLE: Duration = Duration::from_millis(5);

/// The Rust toolchain this kernel uses, found once at start.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub sysroot: PathBuf,
    /// e.g. `1.95.0`
    pub version: String,
    pub host: String,
    pub commit: String,
}

impl Toolchain {
    /// Asks `rustc` (through rustup, so toolchain overrides apply) for its sysroot, then the
    /// toolchain's own rustc for the rest.
    pub fn discover() -> anyhow::Result<Toolchain> {
        let run = |program: &Path, args: &[&str]| -> anyhow::Result<String> {
            let output = std::process::Command::new(program).args(args).output()
                .map_err(|e| anyhow::anyhow!("cannot run {}: {e} (is Rust installed?)", program.display()))?;
            anyhow::ensure!(output.status.success(), "{} {:?} failed: {}", program.display(), args, String::from_utf8_lossy(&output.stderr).trim());
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
        };
        let sysroot = PathBuf::from(run(Path::new("rustc"), &["--print", "sysroot"])?);
        let rustc = sysroot.join("bin/rustc");
        let rustc = if rustc.exists() { rustc } else { PathBuf::from("rustc") };
        let info = run(&rustc, &["-vV"])?;
        let field = |name: &str| {
            info.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_default()
        };
        Ok(Toolchain { version: field("release:"), host: field("host:"), commit: field("commit-hash:"), sysroot })
    }

    /// The toolchain's std sources (the `rust-src` component), if installed.
    fn library_src(&self) -> Option<PathBuf> {
        let dir = self.sysroot.join("lib/rustlib/src/rust/library");
        dir.join("core").exists().then_some(dir)
    }
}

/// The parts of std's sources that rust-analyzer reads to know std's types: `core`, `alloc`,
/// `std` and what they include by path, without tests, benches and `core::arch` (16 MB of
/// intrinsics no lesson uses). Halves the kernel's memory and speeds its start. Built once per
/// toolchain in the cache; `None` when `rust-src` is missing (rust-analyzer then goes without).
fn analysis_sources(cache: &Path, toolchain: &Toolchain) -> Option<PathBuf> {
    let source = toolchain.library_src()?;
    let key = format!("{}-{}", toolchain.version, toolchain.commit.get(..9).unwrap_or(&toolchain.commit));
    let target = cache.join("analysis-src").join(key).join("library");
    if target.join(".complete").exists() {
        return Some(target);
    }
    let build = || -> std::io::Result<()> {
        let _ = std::fs::remove_dir_all(&target);
        for name in ["core", "alloc", "std", "backtrace", "portable-simd"] {
            if source.join(name).exists() {
                copy_sources(&source.join(name), &target.join(name))?;
            }
        }
        let arch = target.join("stdarch/crates/core_arch/src");
        std::fs::create_dir_all(&arch)?;
        std::fs::write(arch.join("mod.rs"), "//! core::arch is left out of the kernel's analysis sources.\n")?;
        std::fs::write(target.join(".complete"), "")
    };
    match build() {
        Ok(()) => Some(target),
        Err(error) => {
            tracing::warn!(%error, "could not prepare analysis sources; rust-analyzer reads all of std");
            None
        }
    }
}

/// Copies a source tree, leaving out `tests` and `benches` directories.
fn copy_sources(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if entry.file_type()?.is_dir() {
            if name != "tests" && name != "benches" {
                copy_sources(&path, &to.join(&name))?;
            }
        } else {
            std::fs::copy(&path, to.join(&name))?;
        }
    }
    Ok(())
}

/// The kernel's cache directory (`$RUST_JIT_KERNEL_CACHE`, else `~/.cache/rust-jit-kernel`).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RUST_JIT_KERNEL_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("rust-jit-kernel")
}

/// A build directory reserved for this kernel process (kept between runs so that cargo's
/// incremental state and built dependencies are reused; locked so two kernels never share one).
pub struct Workspace {
    pub dir: PathBuf,
    _lock: File,
}

/// Prepares the process environment for evcxr. Call before any thread starts.
///
/// - reserves a workspace; `EVCXR_CONFIG_DIR` holds an `evcxr.toml` that sets opt-level 0 for
///   plain cells and the build directory;
/// - puts the toolchain's `bin` first on `PATH` (no rustup proxy in front of every cargo and
///   rustc call) and its libstd on `LD_LIBRARY_PATH`;
/// - points rust-analyzer at trimmed std sources (`RUST_SRC_PATH`).
pub fn prepare_environment(cache: &Path, toolchain: &Toolchain) -> std::io::Result<Workspace> {
    let workspace = reserve_workspace(cache)?;
    prepend_path("PATH", vec![toolchain.sysroot.join("bin")]);
    prepend_path(
        "LD_LIBRARY_PATH",
        vec![toolchain.sysroot.join("lib/rustlib").join(&toolchain.host).join("lib"), toolchain.sysroot.join("lib")],
    );
    if std::env::var_os("RUST_SRC_PATH").is_none() {
        if let Some(src) = analysis_sources(cache, toolchain) {
            std::env::set_var("RUST_SRC_PATH", src);
        }
    }
    Ok(workspace)
}

fn prepend_path(var: &str, mut dirs: Vec<PathBuf>) {
    if let Some(existing) = std::env::var_os(var) {
        dirs.extend(std::env::split_paths(&existing));
    }
    if let Ok(joined) = std::env::join_paths(dirs) {
        std::env::set_var(var, joined);
    }
}

fn reserve_workspace(cache: &Path) -> std::io::Result<Workspace> {
    let sessions = cache.join("sessions");
    std::fs::create_dir_all(&sessions)?;
    for slot in 0.. {
        let lock = File::create(sessions.join(format!("{slot}.lock")))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue;
        }
        let dir = sessions.join(slot.to_string());
        let build = dir.join("build");
        let config = dir.join("config");
        std::fs::create_dir_all(&build)?;
        std::fs::create_dir_all(&config)?;
        let toml = format!("[evcxr]\nopt_level = \"0\"\ntmpdir = {:?}\n", build.display().to_string());
        std::fs::write(config.join("evcxr.toml"), toml)?;
        seed_build(cache, &build);
        std::env::set_var("EVCXR_CONFIG_DIR", &config);
        std::env::set_var(INTERRUPT_FILE_VAR, dir.join("interrupt"));
        return Ok(Workspace { dir, _lock: lock });
    }
    unreachable!()
}

/// What goes into evcxr's opt level setting when the runtime joins the session: the session
/// crate's opt level (0) and, after it, the runtime as a dependency.
///
/// evcxr writes `opt-level = {opt level}` verbatim into the `[profile.dev]` table of the
/// session crate's Cargo.toml, followed by its own profile keys and `[dependencies]`; its
/// keys end up in `[package.metadata]`, where cargo ignores them, and the same values are set
/// here first. Why not `:dep`: it costs 0.6 s more (evcxr checks the dependency with `cargo
/// metadata` and builds once more). Why not from the start: rust-analyzer reads every crate
/// the session depends on when it starts (+0.4 s and +50 MiB for every session, arrays or not).
fn session_manifest(runtime: &Path) -> String {
    format!(
        "0\ndebug = false\nstrip = \"debuginfo\"\nrpath = true\nlto = false\ndebug-assertions = true\n\
         codegen-units = 16\npanic = 'unwind'\nincremental = true\noverflow-checks = true\n\n\
         [dependencies.jit]\npath = {:?}\n\n[package.metadata.evcxr-profile]",
        runtime.display().to_string()
    )
}

/// Builds the session crate and the runtime once in a workspace slot, so the first kernel
/// after `rust-jit-kernel install` starts as fast as later ones. Returns how long it took.
pub fn warm_up(cache: &Path) -> anyhow::Result<Duration> {
    let started = std::time::Instant::now();
    let toolchain = Toolchain::discover()?;
    let workspace = prepare_environment(cache, &toolchain)?;
    let (mut backend, _) = EvcxrBackend::start(None, &workspace.dir, &toolchain)?;
    let ignore = |_: crate::backend::LiveOutput| {};
    // A plain cell, then one that brings in the runtime (cargo builds ndarray and rayon), then
    // the release build of the runtime that jit functions link.
    for cell in ["1 + 1", "Array2::<f64>::zeros((2, 2)).sum()"] {
        backend.execute(cell, &ignore).map_err(|e| anyhow::anyhow!("{}: {}", e.ename, e.evalue))?;
    }
    backend.jit.runtime_rlib().map_err(|e| anyhow::anyhow!("{}: {}", e.ename, e.evalue))?;
    save_seed(cache, &workspace.dir.join("build"))?;
    Ok(started.elapsed())
}

/// Where `install` keeps a copy of a built session crate (dependencies included), so that a
/// new workspace slot (a second kernel running at once) starts built.
fn seed_dir(cache: &Path) -> PathBuf {
    cache.join("seed")
}

fn save_seed(cache: &Path, build: &Path) -> std::io::Result<()> {
    let staging = cache.join(format!(".seed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    copy_tree(build, &staging)?;
    let _ = std::fs::remove_dir_all(seed_dir(cache));
    std::fs::rename(&staging, seed_dir(cache))
}

/// Fills an empty build directory from the seed, if there is one (else cargo builds it).
fn seed_build(cache: &Path, build: &Path) {
    let seed = seed_dir(cache);
    if build.join("target").exists() || !seed.join("target").exists() {
        return;
    }
    if let Err(error) = copy_tree(&seed, build) {
        tracing::warn!(%error, "could not copy the seed build; cargo builds from scratch");
    }
}

/// `cp -a from/. to`: keeps modification times, which cargo's freshness checks compare.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    let status = std::process::Command::new("cp").arg("-a").arg(from.join(".")).arg(to).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("cp -a {} {} failed", from.display(), to.display())))
    }
}

/// Items every session starts with.
///
/// `EvcxrDebugDisplay`: evcxr shows a trailing expression by first compiling
/// `(expr).evcxr_display()` and, when that fails (the usual case), compiling again with
/// `{:?}`. This blanket trait makes the first attempt succeed for every `Debug` value, so a
/// cell like `1 + 1` compiles once instead of twice. Inherent `evcxr_display` methods still win.
const PRELUDE_ITEMS: &str = r#"
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

/// The runtime's prelude (ndarray's, `prange`, `num_threads`) and the crates it re-exports.
/// These imports, and the runtime as a dependency ([`session_manifest`]), go in front of the
/// first cell that uses one of their names ([`jit::uses_runtime`]) or a jit function: once they
/// are there, rust-analyzer reads ndarray for every cell (about 0.4 s the first time and 20 ms
/// a cell after), which sessions without arrays need not pay.
const RUNTIME_PRELUDE: &str = "#[allow(unused_imports)]\nuse jit::prelude::*;\n#[allow(unused_imports)]\nuse jit::{ndarray, rayon};\n";

/// The cell's leading evcxr commands (`:dep ...`), with the blank lines, `//` comments and `!`
/// shell lines evcxr accepts among them, and the rest. The commands end in a newline, so that
/// what goes after them starts a line of its own.
fn split_commands(code: &str) -> (String, &str) {
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

/// Error names the runtime panics with (`Name: message`), shown as the error's name.
const RUNTIME_ERRORS: [&str; 1] = ["CudaError"];

/// Installed in the user process (and again after it restarts): a panic on the cell's thread
/// is reported on stdout as one `RJK_PANIC location<TAB>message` line, which arrives in order
/// with the cell's output; panics on other threads print as Rust prints them.
const PANIC_HOOK: &str = r#"
{
    let main_thread = ::std::thread::current().id();
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
        if ::std::thread::current().id() == main_thread {
            let escaped = message.replace('\\', "\\\\").replace('\n', "\\n");
            println!("RJK_PANIC {location}\t{escaped}");
        } else {
            let thread = ::std::thread::current();
            eprintln!("thread '{}' panicked at {location}:\n{message}", thread.name().unwrap_or("<unnamed>"));
        }
    }));
}
"#;

/// What a running cell shares with the control channel.
struct RunState {
    running: Mutex<bool>,
    /// Counts cells, so a late watchdog never stops a later cell.
    generation: AtomicU64,
    interrupted: AtomicBool,
    /// The interrupt stopped a compile (cargo), not the user process.
    stopped_compile: AtomicBool,
    child: Arc<Mutex<std::process::Child>>,
    /// While it exists, code that checks it (the `%timeit` harness) stops: `RJK_INTERRUPT_FILE`.
    flag: Option<PathBuf>,
}

/// How long an interrupted cell may take to stop by itself before the user process is killed.
const INTERRUPT_GRACE: Duration = Duration::from_millis(1000);

/// The environment variable naming the interrupt flag file.
pub const INTERRUPT_FILE_VAR: &str = "RJK_INTERRUPT_FILE";

pub struct EvcxrBackend {
    ctx: CommandContext,
    /// The session prelude has not been compiled yet: it goes in front of the next cell
    /// (one compile instead of two, and none at start).
    needs_items: bool,
    /// The user process is new: the panic hook goes in front of the next cell.
    needs_hook: bool,
    /// The runtime has not joined the session yet: it joins with the next cell that uses it
    /// (the dependency and the prelude's imports).
    needs_runtime: bool,
    /// [`session_manifest`] for this session's runtime.
    manifest: String,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    host: Option<HostStderr>,
    state: Arc<RunState>,
    jit: JitCompiler,
    /// Items that make jit functions compiled since the last successful compile callable;
    /// they go in front of the next cell evcxr compiles.
    pending_glue: String,
}

impl EvcxrBackend {
    /// Starts evcxr (and its child process). Slow: it compiles a first cell.
    ///
    /// `slot` is the workspace directory (see [`prepare_environment`]).
    pub fn start(host: Option<HostStderr>, slot: &Path, toolchain: &Toolchain) -> anyhow::Result<(Self, Arc<dyn Interrupter>)> {
        let started = std::time::Instant::now();
        let cache = cache_dir();
        // Dependencies (ndarray, rayon, the runtime) optimised, the cell crate at 0. Cargo
        // reads this file above evcxr's own build directory; a `.cargo/config.toml` in the slot
        // itself (nearer, so it wins) may change it for one slot.
        let sessions = slot.parent().unwrap_or(slot);
        std::fs::create_dir_all(sessions.join(".cargo"))?;
        std::fs::write(sessions.join(".cargo/config.toml"), DEPENDENCY_PROFILE)?;
        let runtime = jit::write_runtime(&cache)?;
        let toolchain_id = format!("{}-{}", toolchain.version, toolchain.commit.get(..9).unwrap_or(&toolchain.commit));
        let jit = JitCompiler::new(&cache, &runtime, &toolchain.sysroot.join("bin"), &toolchain.host, &toolchain_id);
        let (mut ctx, outputs) = CommandContext::new().map_err(|e| anyhow::anyhow!("evcxr failed to start: {e}"))?;
        // Cells find compiled jit functions here. Set before the first build: cargo rebuilds
        // every dependency when RUSTFLAGS change.
        ctx.execute(&format!(":build_env RUSTFLAGS={}", cell_rustflags(jit.lib_dir(), "")))
            .map_err(|e| anyhow::anyhow!("evcxr refused the build flags: {e}"))?;
        tracing::info!(ms = started.elapsed().as_millis() as u64, "evcxr started");
        let state = Arc::new(RunState {
            running: Mutex::new(false),
            generation: AtomicU64::new(0),
            interrupted: AtomicBool::new(false),
            stopped_compile: AtomicBool::new(false),
            child: ctx.process_handle(),
            flag: std::env::var_os(INTERRUPT_FILE_VAR).map(PathBuf::from),
        });
        let interrupter = Arc::new(EvcxrInterrupter { state: state.clone() });
        let backend = EvcxrBackend {
            ctx,
            needs_items: true,
            needs_hook: true,
            needs_runtime: true,
            manifest: session_manifest(&runtime),
            stdout: outputs.stdout,
            stderr: outputs.stderr,
            host,
            state,
            jit,
            pending_glue: String::new(),
        };
        Ok((backend, interrupter))
    }

    /// What goes in front of the learner's `code` in the next compile.
    fn prefix(&self, code: &str) -> String {
        let mut prefix = String::new();
        if self.needs_items {
            prefix.push_str(PRELUDE_ITEMS.trim_start());
        }
        if self.runtime_prelude_due(code) {
            prefix.push_str(RUNTIME_PRELUDE);
        }
        if self.needs_hook {
            prefix.push_str(PANIC_HOOK.trim_start());
        }
        prefix.push_str(&self.pending_glue);
        prefix
    }

    /// Whether the runtime's prelude goes in front of `code` (jit wrappers name its types too).
    fn runtime_prelude_due(&self, code: &str) -> bool {
        self.needs_runtime && (!self.pending_glue.is_empty() || jit::uses_runtime(code))
    }

    /// Runs evcxr while pumping output to `sink`; returns evcxr's result and any panic.
    fn run_pumped(&mut self, code: &str, sink: OutputSink<'_>) -> (Result<evcxr::EvalOutputs, EvcxrError>, Option<Panic>) {
        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
        let host_lines = self.host.as_ref().map(|h| h.lines.clone()).unwrap_or_else(never);
        let main_tid = Some(self.state.child.lock().unwrap().id());
        let (stdout, stderr, ctx) = (&self.stdout, &self.stderr, &mut self.ctx);
        std::thread::scope(|scope| {
            let pump = scope.spawn(move || pump_output(sink, main_tid, stdout, stderr, &host_lines, &done_rx));
            let result = ctx.execute(code);
            let _ = done_tx.send(());
            let panic = pump.join().unwrap_or(None);
            (result, panic)
        })
    }

    fn panic_error(&self, panic: Panic, code: &str) -> CellError {
        let line = self.cell_line_of(&panic.location, code);
        let at = line.map(|l| format!("cell line {l}")).unwrap_or_else(|| panic.location.clone());
        // The runtime's own errors (e.g. `CudaError: CUDA is not available: ...`) keep their name.
        let (ename, message) = match panic.message.split_once(": ") {
            Some((name, rest)) if RUNTIME_ERRORS.contains(&name) => (name.to_string(), rest.to_string()),
            _ => ("panic".to_string(), panic.message.clone()),
        };
        let evalue = format!("{message} (at {at})");
        let traceback = vec![
            format!("\x1b[1;31m{ename}\x1b[0m at {at}:"),
            message,
            "Variables defined before this cell are kept; those the cell defined are not.".to_string(),
        ];
        CellError { ename, evalue, traceback }
    }

    /// Maps `src/lib.rs:LINE:COL` in evcxr's generated crate to a line of the cell (a panic in
    /// a jit library or in a dependency is left as it is).
    fn cell_line_of(&self, location: &str, code: &str) -> Option<usize> {
        if !location.starts_with("src/lib.rs:") {
            return None;
        }
        let line: usize = location.rsplit(':').nth(1)?.parse().ok()?;
        let source = self.ctx.last_source().ok()?;
        let text = source.lines().nth(line.checked_sub(1)?)?.trim();
        if text.is_empty() {
            return None;
        }
        let lines: Vec<&str> = code.lines().map(str::trim).collect();
        let exact = lines.iter().position(|l| *l == text);
        let within = || lines.iter().position(|l| !l.is_empty() && (l.contains(text) || text.contains(l)));
        exact.or_else(within).map(|i| i + 1)
    }

    fn lost_state_error(&self, ename: &str, what: &str, lost: &[String]) -> CellError {
        let lost_text = if lost.is_empty() {
            "No variables were defined, so none were lost".to_string()
        } else {
            format!("These variables were lost: {}", lost.join(", "))
        };
        let evalue = format!(
            "{what}. The user process was restarted. {lost_text}. \
             Functions, types, `use` items and dependencies are kept."
        );
        CellError { ename: ename.to_string(), traceback: vec![format!("\x1b[1;31m{ename}\x1b[0m: {evalue}")], evalue }
    }
}

/// Reads the user process's output until the cell ends, batching what is available.
fn pump_output(
    sink: OutputSink<'_>,
    main_tid: Option<u32>,
    stdout: &Receiver<String>,
    stderr: &Receiver<String>,
    host: &Receiver<String>,
    done: &Receiver<()>,
) -> Option<Panic> {
    let mut pump = OutputPump::new(sink, main_tid);
    let (mut out_rx, mut err_rx, mut host_rx) = (stdout.clone(), stderr.clone(), host.clone());
    let mut finishing = false;
    loop {
        let mut got = false;
        if finishing {
            select! {
                recv(out_rx) -> l => match l { Ok(l) => { pump.stdout_line(&l); got = true } Err(_) => out_rx = never() },
                recv(err_rx) -> l => match l { Ok(l) => { pump.stderr_line(&l); got = true } Err(_) => err_rx = never() },
                recv(host_rx) -> l => match l { Ok(l) => { pump.stderr_line(&l); got = true } Err(_) => host_rx = never() },
                default(STDERR_SETTLE) => {}
            }
            if !got {
                break;
            }
        } else {
            select! {
                recv(out_rx) -> l => match l { Ok(l) => pump.stdout_line(&l), Err(_) => out_rx = never() },
                recv(err_rx) -> l => match l { Ok(l) => pump.stderr_line(&l), Err(_) => err_rx = never() },
                recv(host_rx) -> l => match l { Ok(l) => pump.stderr_line(&l), Err(_) => host_rx = never() },
                recv(done) -> _ => finishing = true,
            }
        }
        // Take whatever else is already waiting, then send it as one message per stream.
        for _ in 0..10_000 {
            if let Ok(l) = out_rx.try_recv() {
                pump.stdout_line(&l);
            } else if let Ok(l) = err_rx.try_recv() {
                pump.stderr_line(&l);
            } else if let Ok(l) = host_rx.try_recv() {
                pump.stderr_line(&l);
            } else {
                break;
            }
        }
        pump.flush();
    }
    pump.finish()
}

impl EvcxrBackend {
    /// Compiles the cell's `#[jit]` functions, then runs the rest of the cell with evcxr.
    fn execute_jit(&mut self, code: &str, split: jit_codegen::SplitCell, sink: OutputSink<'_>) -> Result<Option<MimeBundle>, CellError> {
        if !self.jit.runtime_built() {
            sink(LiveOutput::Stdout("jit: building the runtime in release mode (once, about a minute)\n".to_string()));
        }
        let variables = self.variables();
        let items: std::collections::BTreeSet<String> = self.ctx.defined_item_names().map(str::to_string).collect();
        // Interrupt stops rustc like a cargo build (see `EvcxrInterrupter`).
        self.state.begin();
        for function in in_dependency_order(&split.functions) {
            let known = |name: &str| items.contains(name) || variables.iter().any(|v| v == name);
            let compiled = self.jit.compile(function, code, &split.uses, &known);
            if self.state.interrupted.load(Ordering::SeqCst) {
                self.state.end();
                let evalue = "the cell was stopped while a #[jit] function compiled, so it did not run. Nothing was lost: all variables are kept.";
                return Err(CellError::new("Interrupted", evalue));
            }
            let compiled = compiled.inspect_err(|_| self.state.end())?;
            sink(LiveOutput::Stdout(format!("{}\n", compiled.report())));
            self.pending_glue.push_str(&compiled.wrapper);
        }
        self.state.end();
        if split.rest_is_empty() {
            // Nothing for evcxr: the functions become callable with the next cell it compiles.
            self.jit.add_uses(&split.uses);
            return Ok(None);
        }
        let result = self.run_cell(&split.rest, sink);
        if result.is_ok() {
            self.jit.add_uses(&split.uses);
        }
        result
    }

    fn run_cell(&mut self, code: &str, sink: OutputSink<'_>) -> Result<Option<MimeBundle>, CellError> {
        let variables_before = self.variables();
        self.state.begin();
        if let Some(host) = &self.host {
            host.set_capturing(true);
        }
        let prefix = self.prefix(code);
        let runtime_prelude = self.runtime_prelude_due(code);
        if runtime_prelude {
            // Idempotent; rust-analyzer reloads the workspace once, with the next analysis.
            self.ctx.set_opt_level(&self.manifest).map_err(|e| CellError::new("Error", e.to_string()))?;
        }
        let prefix_lines = prefix.lines().count();
        // evcxr reads `:dep` and its other commands only at the top of a cell: the prefix goes
        // after them (lines are kept: each command is one line).
        let (commands, rust) = split_commands(code);
        let (result, panic) = self.run_pumped(&format!("{commands}{prefix}{rust}"), sink);
        if let Some(host) = &self.host {
            host.set_capturing(false);
        }
        self.state.end();

        match &result {
            // The cell's items (the prelude's and the jit glue too) are committed; the hook runs
            // in this process.
            Ok(_) => {
                (self.needs_items, self.needs_hook) = (false, false);
                self.needs_runtime &= !runtime_prelude;
                self.pending_glue.clear();
            }
            // A new user process: it needs the hook again.
            Err(EvcxrError::SubprocessTerminated(_)) => self.needs_hook = true,
            Err(_) => {}
        }
        if self.state.interrupted.load(Ordering::SeqCst) {
            if self.state.stopped_compile.load(Ordering::SeqCst) && !matches!(result, Err(EvcxrError::SubprocessTerminated(_))) {
                let evalue = "the cell was stopped while it compiled, so it did not run. Nothing was lost: all variables are kept.";
                return Err(CellError::new("Interrupted", evalue));
            }
            if matches!(result, Err(EvcxrError::SubprocessTerminated(_))) {
                return Err(self.lost_state_error("Interrupted", "The cell was stopped", &variables_before));
            }
            let evalue = "the cell was stopped. Nothing was lost: all variables are kept.";
            return Err(CellError::new("Interrupted", evalue));
        }
        match result {
            Ok(outputs) => {
                for phase in &outputs.phases {
                    tracing::debug!(phase = %phase.name, ms = phase.duration.as_millis() as u64, "evcxr phase");
                }
                if let Some(panic) = panic {
                    return Err(self.panic_error(panic, code));
                }
                let bundle: MimeBundle = outputs.content_by_mime_type.into_iter().collect();
                // `()` (a cell ending in a loop or a `match` of statements) is no result, as
                // IPython shows no `None`.
                let unit = bundle.len() == 1 && bundle.get("text/plain").is_some_and(|t| t.trim() == "()");
                Ok(if bundle.is_empty() || unit { None } else { Some(bundle) })
            }
            Err(EvcxrError::CompilationErrors(errors)) => {
                let diagnostics: Vec<Diagnostic> = errors.iter().map(|e| diagnostic(e, prefix_lines)).collect();
                let in_cell = diagnostics.iter().any(|d| d.labels.iter().any(|(span, _)| span.is_some()));
                let mut error = diagnostics::compile_error(&diagnostics, code);
                if !in_cell && !self.pending_glue.is_empty() {
                    // Only the code in front of the cell failed: a jit function's wrapper that does
                    // not compile here. Dropped, or it would fail every later cell.
                    self.pending_glue.clear();
                    error.evalue = format!(
                        "a #[jit] function compiled, but cells cannot call it ({}); define it again with a signature \
                         that uses only std and ndarray types",
                        error.evalue
                    );
                }
                Err(error)
            }
            Err(EvcxrError::SubprocessTerminated(message)) => {
                tracing::warn!(%message, "user process ended");
                let what = format!("The user process ended while the cell ran ({})", message.trim());
                Err(self.lost_state_error("ProcessCrashed", &what, &variables_before))
            }
            Err(EvcxrError::TypeRedefinedVariablesLost(variables)) => Err(CellError::new(
                "VariablesLost",
                format!("a type was redefined, so these variables were lost: {}", variables.join(", ")),
            )),
            Err(other) => Err(CellError::new("Error", other.to_string().trim().to_string())),
        }
    }
}

impl Backend for EvcxrBackend {
    fn execute(&mut self, code: &str, sink: OutputSink<'_>) -> Result<Option<MimeBundle>, CellError> {
        match jit_codegen::split(code) {
            Err(e) => Err(jit::codegen_error(&e, code)),
            Ok(split) if split.functions.is_empty() => {
                let result = self.run_cell(code, sink);
                if result.is_ok() {
                    // `use` items of plain cells reach later jit functions too.
                    self.jit.add_uses(&split.uses);
                }
                result
            }
            Ok(split) => self.execute_jit(code, split, sink),
        }
    }

    fn complete(&mut self, code: &str, cursor: usize) -> Completions {
        match self.ctx.completions(code, cursor) {
            Ok(found) => {
                let mut matches: Vec<String> = Vec::new();
                for c in found.completions {
                    if !matches.contains(&c.code) {
                        matches.push(c.code);
                    }
                }
                Completions { matches, start: found.start_offset, end: found.end_offset }
            }
            Err(error) => {
                tracing::debug!(%error, "completion failed");
                Completions { matches: Vec::new(), start: cursor, end: cursor }
            }
        }
    }

    fn inspect(&mut self, code: &str, cursor: usize) -> Option<MimeBundle> {
        // Hover looks at the code up to the cursor: extend it to the end of the identifier.
        let end = code[cursor..]
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(code.len(), |(i, _)| cursor + i);
        match self.ctx.hover_at(code, end) {
            // evcxr answers "No documentation found" rather than nothing.
            Ok((plain, html)) if !plain.trim().is_empty() && plain.trim() != "No documentation found" => {
                let mut bundle = MimeBundle::from([("text/plain".to_string(), plain)]);
                if !html.trim().is_empty() {
                    bundle.insert("text/html".to_string(), html);
                }
                Some(bundle)
            }
            Ok(_) => None,
            Err(error) => {
                tracing::debug!(%error, "hover failed");
                None
            }
        }
    }

    fn set_env(&mut self, name: &str, value: &str) -> Result<(), CellError> {
        // This process: cargo and rustc inherit it, and so does a restarted user process.
        std::env::set_var(name, value);
        let quiet = |_: crate::backend::LiveOutput| {};
        if name == "RUSTFLAGS" {
            // evcxr sets RUSTFLAGS for cargo itself (cells need -Cprefer-dynamic); its build
            // environment comes after, so the learner's flags go there, with evcxr's kept.
            self.execute(&format!(":build_env RUSTFLAGS={}", cell_rustflags(self.jit.lib_dir(), value)), &quiet)?;
        }
        // The running user process: the next cell sees it, nothing restarts.
        let code = format!("unsafe {{ ::std::env::set_var({name:?}, {value:?}); }}");
        self.execute(&code, &quiet).map(|_| ()).map_err(|e| {
            let evalue = format!("the kernel has {name}={value}, but the user process could not be updated: {}", e.evalue);
            CellError::new(&e.ename, evalue)
        })
    }

    fn variables(&self) -> Vec<String> {
        let mut names: Vec<String> = self.ctx.variables_and_types().map(|(name, _)| name.to_string()).collect();
        names.sort();
        names
    }
}

/// The cell's functions, each after the ones of the cell it calls (a cycle keeps cell order).
fn in_dependency_order(functions: &[jit_codegen::JitFn]) -> Vec<&jit_codegen::JitFn> {
    let mut ordered: Vec<&jit_codegen::JitFn> = Vec::new();
    let mut left: Vec<&jit_codegen::JitFn> = functions.iter().collect();
    while !left.is_empty() {
        let ready = left
            .iter()
            .position(|f| !left.iter().any(|g| g.name != f.name && f.references.contains(&g.name)))
            .unwrap_or(0);
        ordered.push(left.remove(ready));
    }
    ordered
}

/// The profile of the session's dependencies (see [`EvcxrBackend::start`]): optimised, and
/// otherwise a debug build like the cells (debug assertions and overflow checks on), as
/// Cargo's book suggests for dependencies that are slow unoptimised.
const DEPENDENCY_PROFILE: &str = "[profile.dev.package.\"*\"]\nopt-level = 3\n";

/// RUSTFLAGS of cell builds: what evcxr needs (`-Cprefer-dynamic`), where the jit functions'
/// libraries are (to link, and to load), and the learner's own flags.
fn cell_rustflags(jit_lib: &Path, learner: &str) -> String {
    let lib = jit_lib.display();
    format!("-Cprefer-dynamic -L native={lib} -Clink-arg=-Wl,-rpath,{lib} {learner}").trim_end().to_string()
}

/// evcxr's error as a [`Diagnostic`], with lines counted from the learner's first line
/// (`prefix_lines` lines of prelude went in front).
fn diagnostic(error: &CompilationError, prefix_lines: usize) -> Diagnostic {
    let labels = error
        .spanned_messages()
        .iter()
        .map(|m| {
            let span = m.span.filter(|s| s.start_line > prefix_lines).map(|s| CellSpan {
                start_line: s.start_line - prefix_lines,
                start_column: s.start_column,
                end_line: s.end_line - prefix_lines,
                end_column: s.end_column,
            });
            (span, m.label.clone())
        })
        .collect();
    let mut help: Vec<String> = error.help().iter().map(|h| h.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    if error.message().contains("cannot find attribute `jit`") || error.message().contains("cannot find attribute `vectorize`") {
        help.push("#[jit] works on functions at the top level of a cell".to_string());
    }
    if let Some(hint) = error.evcxr_extra_hint() {
        help.push(hint.to_string());
    }
    Diagnostic {
        level: error.level().to_string(),
        code: error.code().map(str::to_string),
        message: error.message(),
        labels,
        help,
    }
}

/// Stops a running cell: a compile in progress is stopped by killing cargo (nothing is
/// lost); a running cell by killing the user process (evcxr restarts it; variables are lost).
struct EvcxrInterrupter {
    state: Arc<RunState>,
}

impl RunState {
    /// A cell (or its jit compile) starts: interrupts from now on are for it.
    fn begin(&self) {
        let mut running = self.running.lock().unwrap();
        *running = true;
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.interrupted.store(false, Ordering::SeqCst);
        self.stopped_compile.store(false, Ordering::SeqCst);
        self.clear_flag();
    }

    fn end(&self) {
        *self.running.lock().unwrap() = false;
        self.clear_flag();
    }

    fn clear_flag(&self) {
        if let Some(flag) = &self.flag {
            let _ = std::fs::remove_file(flag);
        }
    }
}

impl Interrupter for EvcxrInterrupter {
    /// A compile in progress is stopped at once (cargo is killed). A running cell is asked to
    /// stop (the flag file, which `%timeit` checks between chunks) and gets [`INTERRUPT_GRACE`];
    /// if it is still running then, the user process is killed.
    fn interrupt(&self) -> bool {
        let running = self.state.running.lock().unwrap();
        if !*running {
            return false;
        }
        self.state.interrupted.store(true, Ordering::SeqCst);
        let user_pid = self.state.child.lock().unwrap().id();
        if kill_children_except(std::process::id(), user_pid) > 0 {
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
                let _ = state.child.lock().unwrap().kill();
            }
        });
        true
    }

    fn terminate(&self) {
        let user_pid = self.state.child.lock().unwrap().id();
        kill_children_except(std::process::id(), user_pid);
        let _ = self.state.child.lock().unwrap().kill();
    }
}

/// Parent pid of `pid`, from /proc.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Kills every child of `parent` except `keep`, with all their descendants. Returns how many
/// children were killed.
fn kill_children_except(parent: u32, keep: u32) -> usize {
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    let parents: Vec<(u32, u32)> = pids.iter().filter_map(|&p| Some((p, parent_of(p)?))).collect();
    let mut doomed: Vec<u32> = parents.iter().filter(|(p, pp)| *pp == parent && *p != keep).map(|(p, _)| *p).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

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
