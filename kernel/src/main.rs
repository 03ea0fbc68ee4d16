use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use jupyter_protocol::ConnectionInfo;
use rust_jit_kernel::dispatch::{kernel_info, Control, Flow, Shell};
use rust_jit_kernel::cache::{cache_dir, Caches};
use rust_jit_kernel::setup::{self, Toolchain};
use rust_jit_kernel::{prepare, shared};
use rust_jit_kernel::install::{self, Location};
use rust_jit_kernel::backend::{Interrupter, LateInterrupter};
use rust_jit_kernel::unavailable::Unavailable;
use rust_jit_kernel::input::Input;
use rust_jit_kernel::{host_stderr, transport};
use std::sync::Arc;

/// A Jupyter kernel for Rust, with IPython-style magics and #[jit].
#[derive(Parser)]
#[command(name = "rust-jit-kernel", version, about)]
struct Cli {
    /// Run the kernel on the sockets named in this Jupyter connection file.
    #[arg(long, value_name = "FILE")]
    connection_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Install the `rust-jit` kernelspec ("Rust (JIT)"), and build the session crate once so the
    /// first kernel starts fast. With --sys-prefix or --prefix, an install for every user of the
    /// machine: the binary and a read-only shared cache go to PREFIX/share/rust-jit-kernel, and
    /// learners' kernels build only what is not there, in their own caches.
    Install {
        #[command(flatten)]
        place: Where,
        /// Only write the kernelspec; skip building the session crate.
        #[arg(long)]
        no_warm_up: bool,
        /// Run these notebooks once, so that their `:dep` lines and `#[jit]` / `#[vectorize]`
        /// functions come from the cache when learners run them.
        #[arg(long, value_name = "NOTEBOOK", num_args = 1..)]
        prepare: Vec<PathBuf>,
    },
    /// Remove the `rust-jit` kernelspec.
    Uninstall(Where),
}

#[derive(Args)]
#[group(multiple = false)]
struct Where {
    /// In the user's Jupyter data directory (the default).
    #[arg(long)]
    user: bool,
    /// In the active Python environment ($VIRTUAL_ENV or python3's sys.prefix).
    #[arg(long)]
    sys_prefix: bool,
    /// Under PREFIX/share/jupyter/kernels.
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<PathBuf>,
}

impl Where {
    fn location(&self) -> Location {
        match (&self.prefix, self.sys_prefix) {
            (Some(prefix), _) => Location::Prefix(prefix.clone()),
            (None, true) => Location::SysPrefix,
            _ => Location::User,
        }
    }
}

#[global_allocator]
static ALLOCATOR: rust_jit_kernel::allocator::KernelAllocator = rust_jit_kernel::allocator::KernelAllocator;

fn main() -> ExitCode {
    // evcxr runs this same binary as the process that holds the user's variables (our own loop,
    // with snapshots and stdin), as cargo (`cargo_front`, for the session crate's builds) and as a
    // rustc wrapper (ours, `rustc_wrapper`, or evcxr's); in those roles these calls never return.
    if rust_jit_kernel::user_process::is_user_process() {
        rust_jit_kernel::user_process::run();
    }
    rust_jit_kernel::evcxr_backend::cargo_front::run_if_front();
    rust_jit_kernel::evcxr_backend::rustc_wrapper::run_if_wrapper();
    evcxr::runtime_hook();
    rust_jit_kernel::exports::keep();

    let cli = Cli::parse();
    let result = match (&cli.command, &cli.connection_file) {
        (Some(Command::Install { place, no_warm_up, prepare }), _) => {
            if *no_warm_up && !prepare.is_empty() {
                eprintln!("rust-jit-kernel: --prepare needs the build that --no-warm-up skips; use one of them");
                return ExitCode::from(2);
            }
            install_kernel(&place.location(), *no_warm_up, prepare)
        }
        (Some(Command::Uninstall(w)), _) => {
            install::uninstall(&w.location()).map(|dir| println!("Removed {}", dir.display()))
        }
        (None, Some(file)) => run_kernel(file),
        (None, None) => {
            eprintln!("rust-jit-kernel: nothing to do; use --connection-file FILE, install or uninstall (see --help)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            host_stderr::restore();
            eprintln!("rust-jit-kernel: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `install`: the kernelspec, and the cache build (see [`prepare::build`]); for a shared
/// install, the binary and the shared cache beside the kernelspec.
fn install_kernel(location: &Location, no_warm_up: bool, notebooks: &[PathBuf]) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    // Needed only to build; a user install without the build works with no toolchain.
    let toolchain = Toolchain::discover();
    if toolchain.as_ref().is_ok_and(|t| t.library_src().is_none()) {
        eprintln!("warning: {}.", setup::RUST_SRC_MISSING);
    }
    let report = |built: &prepare::Built, cache: &std::path::Path| {
        println!("Built the session crate in {:.1} s (cache: {})", built.took.as_secs_f64(), cache.display());
        for run in &built.notebooks {
            println!("Prepared {} ({} code cells, {} failed)", run.path.display(), run.cells, run.failed.len());
            for (cell, error) in &run.failed {
                println!("  code cell {cell}: {}", error.lines().next().unwrap_or_default());
            }
        }
    };
    let Some(dir) = location.shared_dir()? else {
        let dir = install::install(location, &exe, Default::default())?;
        println!("Installed kernelspec rust-jit (Rust (JIT)) in {}", dir.display());
        if !no_warm_up {
            report(&prepare::build(&cache_dir(), &toolchain?, notebooks)?, &cache_dir());
        }
        return Ok(());
    };
    let toolchain = toolchain?;
    install::clear_shared(&dir)?;
    // The prefix as anyone would make it (the cache itself starts private, then is sealed).
    std::fs::create_dir_all(dir.parent().expect("<prefix>/share"))?;
    let manifest = if no_warm_up {
        None
    } else {
        // Built where it will be read (its paths are part of what cargo checks), then sealed.
        report(&prepare::build(&dir, &toolchain, notebooks)?, &dir);
        let names = notebooks.iter().map(|p| p.file_name().unwrap_or(p.as_os_str()).to_string_lossy().into_owned()).collect();
        Some(shared::Manifest::for_this(&toolchain, names))
    };
    let binary = install::copy_binary(&dir, &exe)?;
    if let Some(manifest) = &manifest {
        shared::seal(&dir, manifest)?;
    }
    let env = install::shared_env(manifest.as_ref().map(|_| dir.as_path()), &toolchain.bin());
    let spec = install::install(location, &binary, env)?;
    println!("Installed kernelspec rust-jit (Rust (JIT)) in {} for every user (binary and shared cache: {})", spec.display(), dir.display());
    Ok(())
}

fn read_connection_file(path: &PathBuf) -> anyhow::Result<ConnectionInfo> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read connection file {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("bad connection file {}: {e}", path.display()))
}

fn run_kernel(connection_file: &PathBuf) -> anyhow::Result<()> {
    let info = read_connection_file(connection_file)?;
    // SAFETY: mallopt before any other thread allocates; fewer arenas keep rust-analyzer's
    // memory from spreading over one arena per thread.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };

    // Before any thread starts: capture our stderr (cargo progress) and reserve a build dir.
    let (host, log) = host_stderr::capture()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_JIT_KERNEL_LOG").unwrap_or_else(|_| "warn,rust_jit_kernel=info".into()),
        )
        .with_writer(move || log.clone())
        .with_ansi(false)
        .init();
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "kernel starting");
    // Our own panics go to the log (fd 2 is the capture pipe now).
    std::panic::set_hook(Box::new(|info| tracing::error!("kernel panic: {info}")));
    // Without a toolchain the kernel still starts, and says why on every cell.
    let cache = cache_dir();
    let session = match Toolchain::discover() {
        Err(error) => Err(Unavailable::new("ToolchainNotFound", format!("{error:#}"))),
        Ok(toolchain) => {
            let opened = shared::open(&toolchain);
            if let Some(notice) = &opened.notice {
                tracing::warn!("{notice}");
            }
            let caches = Caches { own: cache.clone(), shared: opened.root };
            setup::prepare_environment(&caches, &toolchain).map(|workspace| (workspace, toolchain, caches, opened.notice)).map_err(|error| {
                Unavailable::new("SetupError", format!("the kernel could not prepare its cache in {}: {error}", cache.display()))
            })
        }
    };
    let version = session.as_ref().map_or("unknown".to_string(), |(_, toolchain, ..)| toolchain.version.clone());

    let info_reply = kernel_info(&version);
    let (outbox, outgoing) = transport::outbox();
    let input = Input::new(outbox.clone());
    let engine_input = input.clone();
    let (shell_tx, shell_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();

    // The engine thread owns evcxr and serves shell requests one at a time. The sockets are
    // bound while it starts, so clients connect and get kernel_info at once.
    let interrupter = Arc::new(LateInterrupter::default());
    let engine_interrupter = interrupter.clone();
    let engine_outbox = outbox.clone();
    std::thread::Builder::new().name("engine".into()).spawn(move || {
        let flow = match session {
            Ok((workspace, toolchain, caches, notice)) => setup::start_session(Some(host), &caches, &workspace, &toolchain, engine_input.clone()).map(|(mut backend, session_interrupter)| {
                engine_interrupter.set(session_interrupter);
                if let Some(notice) = notice {
                    backend.notify_once(notice);
                }
                Shell::new(backend, engine_outbox).with_input(engine_input).run(shell_rx)
            }),
            Err(unavailable) => Ok(Shell::new(unavailable, engine_outbox).run(shell_rx)),
        };
        let _ = done_tx.send(flow);
    })?;

    let control = Control::new(outbox, interrupter.clone(), info_reply);
    let session_id = uuid_like();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let flow = runtime.block_on(transport::serve(&info, &session_id, outgoing, shell_tx, control, input, done_rx));
    interrupter.terminate();
    let flow = flow?;
    tracing::info!(?flow, "kernel shutting down");
    // The engine thread may be inside a cell; leave without waiting for it.
    std::process::exit(if matches!(flow, Flow::Shutdown { .. }) { 0 } else { 1 });
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{:032x}", nanos ^ ((std::process::id() as u128) << 64))
}
