//! Session setup, before evcxr starts: the toolchain, the trimmed std sources rust-analyzer
//! reads, the locked workspace slot (its `evcxr.toml`), the environment evcxr and the user
//! process inherit, the seed build that fills a new slot, and `install`'s warm-up.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::Backend;
use crate::cache;
use crate::interrupt::INTERRUPT_FILE_VAR;

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
    /// toolchain's own rustc for the rest. The error is one line that says what to do.
    pub fn discover() -> anyhow::Result<Toolchain> {
        Self::find().map_err(|cause| {
            anyhow::anyhow!(
                "no Rust toolchain found for this kernel ({cause:#}). Install Rust with rustup (https://rustup.rs), or, for an \
                 install shared by many users, put the toolchain's bin on PATH and set RUSTUP_HOME and CARGO_HOME in the \
                 kernelspec's env"
            )
        })
    }

    fn find() -> anyhow::Result<Toolchain> {
        let run = |program: &Path, args: &[&str]| -> anyhow::Result<String> {
            let output = std::process::Command::new(program).args(args).output()
                .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", program.display()))?;
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stderr: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            anyhow::ensure!(output.status.success(), "`{} {}` failed: {}", program.display(), args.join(" "), stderr.join("; "));
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

    /// Names this toolchain in cache paths (`1.95.0-0123abcde`).
    pub fn id(&self) -> String {
        format!("{}-{}", self.version, self.commit.get(..9).unwrap_or(&self.commit))
    }

    /// The toolchain's `bin` directory (rustc, cargo).
    pub fn bin(&self) -> PathBuf {
        self.sysroot.join("bin")
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
    let target = cache.join("analysis-src").join(toolchain.id()).join("library");
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

/// A build directory reserved for this kernel process (kept between runs so that cargo's
/// incremental state and built dependencies are reused; locked so two kernels never share one).
pub struct Workspace {
    pub dir: PathBuf,
    _lock: File,
}

/// Prepares the process environment for evcxr. Call before any thread starts.
///
/// - keeps the cache private (mode 0700, this user's: [`cache::ensure_private`]);
/// - reserves a workspace; `EVCXR_CONFIG_DIR` holds an `evcxr.toml` that sets opt-level 0 for
///   plain cells and the build directory;
/// - puts the toolchain's `bin` first on `PATH` (no rustup proxy in front of every cargo and
///   rustc call) and its libstd on `LD_LIBRARY_PATH`;
/// - points rust-analyzer at trimmed std sources (`RUST_SRC_PATH`).
pub fn prepare_environment(cache: &Path, toolchain: &Toolchain) -> std::io::Result<Workspace> {
    cache::ensure_private(cache)?;
    let workspace = reserve_workspace(cache)?;
    prepend_path("PATH", vec![toolchain.bin()]);
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

/// The profile of the session's dependencies: optimised, and otherwise a debug build like the
/// cells (debug assertions and overflow checks on), as Cargo's book suggests for dependencies
/// that are slow unoptimised. The cell crate stays at opt-level 0 (`evcxr.toml`).
const DEPENDENCY_PROFILE: &str = "[profile.dev.package.\"*\"]\nopt-level = 3\n";

fn reserve_workspace(cache: &Path) -> std::io::Result<Workspace> {
    let sessions = cache.join("sessions");
    // Cargo reads this file above every slot's build directory; a `.cargo/config.toml` in one
    // slot (nearer, so it wins) may change it for that slot.
    cache::private_dirs(&sessions.join(".cargo"))?;
    std::fs::write(sessions.join(".cargo/config.toml"), DEPENDENCY_PROFILE)?;
    for slot in 0.. {
        let lock = File::create(sessions.join(format!("{slot}.lock")))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue;
        }
        let dir = sessions.join(slot.to_string());
        let build = dir.join("build");
        cache::private_dirs(&build)?;
        crate::evcxr_backend::configure(&dir.join("config"), &build)?;
        seed_build(cache, &build);
        std::env::set_var(INTERRUPT_FILE_VAR, dir.join("interrupt"));
        return Ok(Workspace { dir, _lock: lock });
    }
    unreachable!()
}

/// Builds the session crate and the runtime once in a workspace slot, so the first kernel
/// after `rust-jit-kernel install` starts as fast as later ones. Returns how long it took.
pub fn warm_up(cache: &Path) -> anyhow::Result<Duration> {
    let started = std::time::Instant::now();
    let toolchain = Toolchain::discover()?;
    let workspace = prepare_environment(cache, &toolchain)?;
    let (mut backend, _) = start_session(None, cache, &workspace, &toolchain)?;
    let failed = |e: crate::backend::CellError| anyhow::anyhow!("{}: {}", e.ename, e.evalue);
    // A plain cell, then one that brings in the runtime (cargo builds ndarray and rayon), then
    // the release build of the runtime that jit functions link.
    for cell in ["1 + 1", "Array2::<f64>::zeros((2, 2)).sum()"] {
        backend.execute(cell, &crate::backend::discard).map_err(failed)?;
    }
    backend.compiler().runtime_rlib().map_err(failed)?;
    save_seed(cache, &workspace.dir.join("build"))?;
    Ok(started.elapsed())
}

/// Where `install` keeps a copy of a built session crate (dependencies included), so that a
/// new workspace slot (a second kernel running at once) starts built.
fn seed_dir(cache: &Path) -> PathBuf {
    cache.join("seed")
}

fn save_seed(cache: &Path, build: &Path) -> std::io::Result<()> {
    // A new seed replaces the old one (it is not named by its content).
    let _ = std::fs::remove_dir_all(seed_dir(cache));
    cache::publish(&seed_dir(cache), |staging| copy_tree(build, staging), |e| e)
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


/// The session's backend: the jit layer over evcxr, with the runtime's sources written to the
/// cache; and what interrupts it. Slow: evcxr starts its user process.
pub fn start_session(
    host: Option<crate::host_stderr::HostStderr>,
    cache: &Path,
    workspace: &Workspace,
    toolchain: &Toolchain,
) -> anyhow::Result<(crate::jit::JitBackend<crate::evcxr_backend::EvcxrBackend>, std::sync::Arc<dyn crate::backend::Interrupter>)> {
    let runtime = crate::jit::runtime::write_sources(cache)?;
    let compiler = crate::jit::JitCompiler::new(cache, &runtime, toolchain);
    let (evcxr, interrupter) = crate::evcxr_backend::EvcxrBackend::start(host, &workspace.dir, compiler.lib_dir())?;
    Ok((crate::jit::JitBackend::new(evcxr, compiler, runtime), interrupter))
}
