//! Session setup, before evcxr starts: the toolchain, the std sources rust-analyzer reads
//! ([`crate::analysis_src`]), the workspace slot ([`crate::workspace`]), the environment evcxr and the user
//! process inherit, and the session's backend.

use std::path::{Path, PathBuf};

use crate::cache::{self, Caches};
use crate::workspace::{self, Workspace};

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
    pub fn library_src(&self) -> Option<PathBuf> {
        let dir = self.sysroot.join("lib/rustlib/src/rust/library");
        dir.join("core").exists().then_some(dir)
    }
}

/// What a learner or an admin is told when the toolchain has no std sources: rust-analyzer then
/// cannot infer the types of most variables (`let a = Array2::<f64>::zeros((3, 3));`).
pub const RUST_SRC_MISSING: &str = "the toolchain has no std sources (its `rust-src` component), which rust-analyzer \
    needs to know the types of the cells' variables: install them with `rustup component add rust-src`, then \
    restart the kernel (or give each variable its type: `let a: Array2<f64> = ...`)";

/// Whether this kernel's rust-analyzer has std's sources ([`prepare_environment`] points
/// `RUST_SRC_PATH` at them when the toolchain has them, or the user set it).
pub fn std_sources_known() -> bool {
    std::env::var_os("RUST_SRC_PATH").is_some()
}

/// Prepares the process environment for evcxr. Call before any thread starts.
///
/// - keeps the own cache private (mode 0700, this user's: [`cache::ensure_private`]);
/// - reserves a workspace slot ([`workspace::reserve`]); `EVCXR_CONFIG_DIR` holds an
///   `evcxr.toml` that sets opt-level 0 for plain cells and the build directory;
/// - puts the toolchain's `bin` first on `PATH` (no rustup proxy in front of every cargo and
///   rustc call), and before it the cargo front's ([`crate::evcxr_backend::cargo_front::prepare`]),
///   whose cells' rustc are forks of the session's rustc zygote, started here
///   ([`crate::evcxr_backend::rustc_zygote`]);
///   sets the build environment of evcxr's cargo ([`crate::evcxr_backend::build_environment`]),
///   which the cells do not inherit ([`crate::build_env`]); its libstd, the jit libraries' directories and the session's dependencies
///   (the runtime's `libjit-<hash>.so`) on `LD_LIBRARY_PATH` (the user process loads them from there);
/// - points rust-analyzer at std's sources reduced to signatures (`RUST_SRC_PATH`, [`crate::analysis_src`]);
/// - has glibc's malloc ask for transparent huge pages in the user process (cheaper snapshots:
///   [`crate::user_process::snapshot::ask_for_huge_pages`]).
pub fn prepare_environment(caches: &Caches, toolchain: &Toolchain) -> std::io::Result<Workspace> {
    cache::ensure_private(&caches.own)?;
    let workspace = workspace::reserve(caches)?;
    crate::evcxr_backend::Registry::use_own_if_made(&workspace.cargo_home);
    let mut path = vec![toolchain.bin()];
    if let Some(front) = crate::evcxr_backend::cargo_front::prepare(&workspace.dir, &toolchain.bin(), &caches.own.join(crate::evcxr_backend::cargo_front::ANSWERS))? {
        path.insert(0, front);
        // The rustc the cargo front's cells fork from (without the front, cargo starts rustc).
        crate::evcxr_backend::rustc_zygote::start(caches, &toolchain.bin().join("rustc"), &workspace.build);
    }
    prepend_path("PATH", path);
    for (name, value) in crate::evcxr_backend::build_environment()? {
        crate::build_env::set_for_builds(name, value);
    }
    if let Some(link) = crate::evcxr_backend::cell_link::prepare(caches, toolchain) {
        crate::build_env::set_for_builds(crate::evcxr_backend::cell_link::VAR, link);
    }
    let mut libraries = vec![toolchain.sysroot.join("lib/rustlib").join(&toolchain.host).join("lib"), toolchain.sysroot.join("lib")];
    libraries.extend(workspace.lib_dirs.iter().cloned());
    // The runtime's library (`libjit-<hash>.so`, see `evcxr_backend::rustc_wrapper`), for cells and jit libraries.
    libraries.push(workspace.deps(&toolchain.host));
    prepend_path("LD_LIBRARY_PATH", libraries);
    if std::env::var_os("RUST_SRC_PATH").is_none() {
        if let Some(src) = crate::analysis_src::prepare(caches, toolchain) {
            std::env::set_var("RUST_SRC_PATH", src);
        }
    }
    crate::user_process::snapshot::ask_for_huge_pages();
    Ok(workspace)
}

/// The first file `name` in a directory on `PATH`, as a shell would find the program.
pub fn on_path(name: impl AsRef<Path>) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name.as_ref())).find(|p| p.is_file())
}

fn prepend_path(var: &str, mut dirs: Vec<PathBuf>) {
    if let Some(existing) = std::env::var_os(var) {
        dirs.extend(std::env::split_paths(&existing));
    }
    if let Ok(joined) = std::env::join_paths(dirs) {
        std::env::set_var(var, joined);
    }
}

/// The session's backend: the jit layer over evcxr, with the runtime's sources written to the
/// cache; and what interrupts it. Slow: evcxr starts its user process.
pub fn start_session(
    host: Option<crate::host_stderr::HostStderr>,
    caches: &Caches,
    workspace: &Workspace,
    toolchain: &Toolchain,
    input: std::sync::Arc<crate::input::Input>,
) -> anyhow::Result<(crate::jit::JitBackend<crate::evcxr_backend::EvcxrBackend>, std::sync::Arc<dyn crate::backend::Interrupter>)> {
    let runtime = crate::jit::runtime::write_sources(caches)?;
    let compiler = crate::jit::JitCompiler::new(caches, &workspace.deps(&toolchain.host), toolchain);
    // Built before with this runtime: it is in the session from evcxr's start (rust-analyzer loads
    // the session's crates once).
    let built = crate::evcxr_backend::built_with_runtime(&workspace.build, &workspace.deps(&toolchain.host), &runtime);
    let (evcxr, interrupter) = crate::evcxr_backend::EvcxrBackend::start(host, &workspace.build, &workspace.lib_dirs, &workspace.cargo_home, input, built.then_some(runtime.as_path()))?;
    Ok((crate::jit::JitBackend::new(evcxr, compiler, runtime), interrupter))
}
