//! The [`Backend`] that runs cells with evcxr. **The only module that uses the evcxr crate.**
//!
//! evcxr compiles each cell into a shared object and runs it in a child process (this same
//! binary, started through `evcxr::runtime_hook`). Variables live in that child; items,
//! `use`s and dependencies live in evcxr's state in this process. What goes in front of a
//! cell: the session prelude and the panic hook ([`prelude`]), and a layer's [`Front`] (jit
//! wrappers, the runtime's imports), all after the cell's leading evcxr commands.

use std::path::Path;
use std::sync::Arc;

use crossbeam_channel::{never, Receiver};
use evcxr::{CommandContext, CompilationError, Error as EvcxrError};

use crate::backend::{discard, Backend, CellError, Completions, Front, Interrupter, MimeBundle, OutputSink, RunError};
use crate::diagnostics::{self, CellSpan, Diagnostic};
use crate::host_stderr::HostStderr;
use crate::interrupt::RunState;
use crate::input::{Answer, Input};
use crate::output::{pump_output, Panic, Report};
use crate::user_process::stdin::{decode_prompt, escape, INPUT_EOF, INPUT_INTERRUPTED, INPUT_LINE};
use prelude::{split_commands, unsupported_command, PANIC_HOOK, PRELUDE_ITEMS, RUNTIME_ERRORS};
pub use registry::Registry;

pub mod cargo_front;
pub(crate) mod cell_cache;
mod cell_fn;
pub mod cell_link;
pub use cell_cache::DIR as KEPT_CELLS_DIR;
mod prelude;
mod registry;
pub mod rustc_wrapper;
pub mod rustc_zygote;

/// Configures evcxr for a workspace slot: its `evcxr.toml` in `config` (plain cells at
/// opt-level 0, cells built in `build`), named by `EVCXR_CONFIG_DIR` in this process's
/// environment, which evcxr reads when it starts. Call before any thread starts.
pub fn configure(config: &Path, build: &Path) -> std::io::Result<()> {
    write_config(config, build, "0")?;
    std::env::set_var("EVCXR_CONFIG_DIR", config);
    Ok(())
}

/// `evcxr.toml` in `config`: the session crate in `build`, with `opt_level` (see [`session_manifest`]).
fn write_config(config: &Path, build: &Path, opt_level: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(config)?;
    let toml = format!("[evcxr]\nopt_level = {opt_level:?}\ntmpdir = {:?}\n", build.display().to_string());
    std::fs::write(config.join("evcxr.toml"), toml)
}

/// The environment of evcxr's builds, for [`crate::build_env::set_for_builds`] (so that cargo,
/// and rust-analyzer's cargo calls, have it from evcxr's first build on): the cells' flags (cells
/// find compiled jit functions through them; cargo rebuilds every dependency when they change), as
/// `CARGO_ENCODED_RUSTFLAGS`, which cargo takes over the `RUSTFLAGS` evcxr sets, and this binary as
/// cargo's rustc wrapper (it names the runtime's library by its build).
pub fn build_environment() -> std::io::Result<Vec<(&'static str, String)>> {
    let binary = std::env::current_exe()?;
    let mut env = vec![(ENCODED_RUSTFLAGS, encoded(&cell_rustflags("")))];
    env.extend(rustc_wrapper::build_env(&binary));
    Ok(env)
}

/// Whether the session crate in `build` was last built with the runtime in `runtime` (its manifest
/// names it, and the runtime's library the rustc wrapper recorded in `deps` is there), so that the
/// runtime can join the session from evcxr's start with nothing to build.
pub fn built_with_runtime(build: &Path, deps: &Path, runtime: &Path) -> bool {
    let manifest = std::fs::read_to_string(build.join("Cargo.toml")).unwrap_or_default();
    manifest.contains(&runtime_dependency(runtime)) && rustc_wrapper::recorded_runtime(deps).is_some()
}

fn runtime_dependency(runtime: &Path) -> String {
    format!("[dependencies.jit]\npath = {:?}\n", runtime.display().to_string())
}

/// What goes into evcxr's opt level setting when the runtime joins the session: the session
/// crate's opt level (0) and, after it, the runtime as a dependency.
///
/// evcxr writes `opt-level = {opt level}` verbatim into the `[profile.dev]` table of the
/// session crate's Cargo.toml, followed by its own profile keys and `[dependencies]`; its
/// keys end up in `[package.metadata]`, where cargo ignores them, and the same values are set
/// here first. Why not `:dep`: it costs 0.6 s more (evcxr checks the dependency with `cargo
/// metadata` and builds once more). From evcxr's start when the session crate was built with it
/// before ([`EvcxrBackend::start`]): rust-analyzer then loads the session's crates once; when the
/// runtime joins later, it loads std again with them, at the next analysis (~2.5 s).
fn session_manifest(runtime: &Path) -> String {
    format!(
        "0\ndebug = false\nstrip = \"debuginfo\"\nrpath = true\nlto = false\ndebug-assertions = true\n\
         codegen-units = 16\npanic = 'unwind'\nincremental = true\noverflow-checks = true\n\n\
         {}\n[package.metadata.evcxr-profile]",
        runtime_dependency(runtime)
    )
}

pub struct EvcxrBackend {
    ctx: CommandContext,
    /// The session prelude has not been compiled yet: it goes in front of the next cell
    /// (one compile instead of two, and none at start).
    needs_items: bool,
    /// The user process is new: the panic hook goes in front of the next cell.
    needs_hook: bool,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    host: Option<HostStderr>,
    state: Arc<RunState>,
    registry: Registry,
    input: Arc<Input>,
}

impl EvcxrBackend {
    /// Starts evcxr (and its child process) with the session crate in `build`, as configured
    /// by [`configure`] (see [`crate::setup::prepare_environment`], which also puts `lib_dirs`
    /// on the user process's `LD_LIBRARY_PATH`); cells link jit libraries from `lib_dirs`.
    /// `cargo_home`: the learner's own registry, should the one they have be read-only
    /// ([`Registry`]).
    /// `input`: where the cells' stdin reads go.
    /// `runtime`: the runtime's sources, when the session crate was built with them before
    /// ([`built_with_runtime`]): the runtime is in the session's manifest from evcxr's first build.
    pub fn start(host: Option<HostStderr>, build: &Path, lib_dirs: &[std::path::PathBuf], cargo_home: &Path, input: Arc<Input>, runtime: Option<&Path>) -> anyhow::Result<(Self, Arc<dyn Interrupter>)> {
        let started = std::time::Instant::now();
        link_jit_libraries(build, lib_dirs)?;
        if let (Some(runtime), Some(config)) = (runtime, std::env::var_os("EVCXR_CONFIG_DIR")) {
            write_config(Path::new(&config), build, &session_manifest(runtime))?;
        }
        // The user process's snapshots, orphaned when they take over, are adopted by this process.
        crate::crash::become_subreaper();
        // Its build environment is this process's ([`build_environment`]).
        let (mut ctx, outputs) = CommandContext::new().map_err(|e| anyhow::anyhow!("evcxr failed to start: {e}"))?;
        // Cells link with rustc's own linker (rust-lld, through cc): evcxr's default when mold is
        // installed, `mold -run cargo`, puts mold's preload library in front of every cell's build
        // for no faster link of a cell (~7 ms more per cell; docs/benchmarks.md).
        ctx.execute(":linker system").map_err(|e| anyhow::anyhow!("evcxr refused its linker setting: {e}"))?;
        tracing::info!(ms = started.elapsed().as_millis() as u64, build = %build.display(), "evcxr started");
        let state = RunState::new(ctx.process_handle());
        let interrupter = state.interrupter();
        let backend = EvcxrBackend {
            ctx,
            needs_items: true,
            needs_hook: true,
            stdout: outputs.stdout,
            stderr: outputs.stderr,
            host,
            state,
            registry: Registry::new(cargo_home),
            input,
        };
        Ok((backend, interrupter))
    }

    /// What goes in front of the learner's code in the next compile.
    fn prefix(&self, front: &Front<'_>) -> String {
        let mut prefix = String::new();
        if self.needs_items {
            prefix.push_str(PRELUDE_ITEMS.trim_start());
        }
        if self.needs_hook {
            prefix.push_str(PANIC_HOOK.trim_start());
        }
        prefix.push_str(front.items);
        prefix
    }

    /// Runs evcxr while pumping output to `sink` and answering the cell's input requests;
    /// returns evcxr's result and what the pump learned.
    fn run_pumped(&mut self, code: &str, sink: OutputSink<'_>) -> (Result<evcxr::EvalOutputs, EvcxrError>, Report) {
        let (done_tx, done_rx) = crossbeam_channel::bounded::<bool>(1);
        let host_lines = self.host.as_ref().map(|h| h.lines.clone()).unwrap_or_else(never);
        let main_tid = Some(self.state.child_pid());
        let (stdout, stderr, ctx) = (&self.stdout, &self.stderr, &mut self.ctx);
        let (input, state) = (&self.input, &self.state);
        // One line per request, on the user process's command pipe (`user_process::stdin`).
        let answer = |prompt: &str, password: bool| match input.read(&decode_prompt(prompt), password, &|| state.interrupted()) {
            Answer::Line(text) => format!("{INPUT_LINE}{}", escape(&text)),
            Answer::Eof { note } => {
                if let Some(note) = note {
                    sink(crate::backend::LiveOutput::Stderr(note.to_string()));
                }
                INPUT_EOF.to_string()
            }
            Answer::Interrupted => INPUT_INTERRUPTED.to_string(),
        };
        std::thread::scope(|scope| {
            let pump = scope.spawn(move || pump_output(sink, main_tid, stdout, stderr, &host_lines, &done_rx));
            let mut callbacks = evcxr::EvalCallbacks { input_reader: &|request| answer(&request.prompt, request.is_password) };
            let result = ctx.execute_with_callbacks(code, &mut callbacks);
            // A cell that did not compile did not run, and a user process that died without a
            // snapshot says nothing more: no end-of-cell line comes.
            let _ = done_tx.send(!matches!(result, Err(EvcxrError::CompilationErrors(_) | EvcxrError::SubprocessTerminated(_))));
            let report = pump.join().unwrap_or_default();
            (result, report)
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
            diagnostics::headline(&ename, &format!(" at {at}:")),
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

    fn run_cell(&mut self, front: &Front<'_>, code: &str, sink: OutputSink<'_>) -> Result<Option<MimeBundle>, RunError> {
        let cell = |e: CellError| RunError::Cell(e);
        // evcxr reads `:dep` and its other commands only at the top of a cell: the prefix goes
        // after them (lines are kept: each command is one line).
        let (commands, rust) = split_commands(code);
        if let Some((command, why)) = unsupported_command(&commands) {
            return Err(cell(CellError::new("UnsupportedCommand", format!("`{command}` is not supported by this kernel: {why}. Nothing ran; nothing was lost."))));
        }
        let variables_before = self.variables();
        if let Some(runtime) = front.dependency {
            // Idempotent; rust-analyzer reloads the workspace once, with the next analysis.
            self.ctx.set_opt_level(&session_manifest(runtime)).map_err(|e| cell(CellError::new("Error", e.to_string())))?;
        }
        self.state.begin();
        if let Some(host) = &self.host {
            host.set_capturing(true);
        }
        let prefix = self.prefix(front);
        let prefix_lines = prefix.lines().count();
        let (result, report) = self.run_pumped(&format!("{commands}{prefix}{rust}"), sink);
        if let Some(host) = &self.host {
            host.set_capturing(false);
        }
        self.state.end();

        let terminated = matches!(result, Err(EvcxrError::SubprocessTerminated(_)));
        match &result {
            // The cell's items (the prelude's and the front's too) are committed; the hook runs
            // in this process (or in its snapshot, which took over: a copy of it).
            Ok(_) => (self.needs_items, self.needs_hook) = (false, false),
            // A new user process: it needs the hook again.
            Err(EvcxrError::SubprocessTerminated(_)) => {
                self.needs_hook = true;
                self.state.restarted();
            }
            Err(_) => {}
        }
        // The process that ran the cell died, and its snapshot took over: nothing was lost.
        if let Some((dead, now)) = report.took_over {
            let ending = self.state.restored(dead, now);
            tracing::warn!(?ending, "the user process died between cells; its snapshot took over");
        }
        let ending = report.restored.map(|(dead, now)| self.state.restored(dead, now));
        self.state.reap_orphans();
        let off = crate::user_process::snapshot::off().then_some(crate::user_process::snapshot::OFF);
        let no_snapshot = match report.no_snapshot.as_deref().or(off) {
            Some("cuda") => " (no snapshot was taken before the cell: the session uses the GPU, and a CUDA context cannot be copied into one)",
            Some("off") => " (snapshots are off: RUST_JIT_KERNEL_SNAPSHOTS=off)",
            Some(_) => " (no snapshot could be taken before the cell)",
            None => "",
        };
        if self.state.interrupted() {
            if self.state.stopped_compile() && !terminated {
                let evalue = "the cell was stopped while it compiled, so it did not run. Nothing was lost: all variables are kept.";
                return Err(cell(CellError::new("Interrupted", evalue)));
            }
            if terminated {
                return Err(cell(lost_state_error("Interrupted", &format!("The cell was stopped{no_snapshot}"), &variables_before)));
            }
            let evalue = match ending {
                Some(_) => "the cell was stopped. Nothing was lost: the session is as it was before this cell, with every variable.",
                None => "the cell was stopped. Nothing was lost: all variables are kept.",
            };
            return Err(cell(CellError::new("Interrupted", evalue)));
        }
        if let Some(ending) = ending {
            let cause = crate::crash::cause(ending, &report.last_words, false);
            tracing::warn!(%cause, "user process died; its snapshot took over");
            let evalue = format!(
                "the cell's process {cause}. The session is as it was before this cell: every variable is kept \
                 (the output the cell printed before it died is above)."
            );
            return Err(cell(diagnostics::error("ProcessCrashed", evalue)));
        }
        let panic = report.panic;
        match result {
            Ok(outputs) => {
                for phase in &outputs.phases {
                    tracing::debug!(phase = %phase.name, ms = phase.duration.as_millis() as u64, "evcxr phase");
                }
                if let Some(panic) = panic {
                    return Err(cell(self.panic_error(panic, code)));
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
                let error = diagnostics::compile_error(&diagnostics, code);
                // Only the code in front of the cell failed: the layer that put it there says why.
                Err(if !in_cell && !front.items.is_empty() { RunError::Front(error) } else { cell(error) })
            }
            Err(EvcxrError::SubprocessTerminated(message)) => {
                tracing::warn!(%message, "user process ended");
                let what = format!("The user process ended while the cell ran ({}){no_snapshot}", message.trim());
                Err(cell(lost_state_error("ProcessCrashed", &what, &variables_before)))
            }
            Err(EvcxrError::TypeRedefinedVariablesLost(variables)) => Err(cell(CellError::new(
                "VariablesLost",
                format!("a type was redefined, so these variables were lost: {}", variables.join(", ")),
            ))),
            Err(other) => {
                let mut evalue = other.to_string().trim().to_string();
                if evalue.starts_with("Couldn't automatically determine type") && !crate::setup::std_sources_known() {
                    evalue = format!("{evalue}\nNote: {}.", crate::setup::RUST_SRC_MISSING);
                }
                Err(cell(CellError::new("Error", evalue)))
            }
        }
    }
}

impl Backend for EvcxrBackend {
    fn execute_with(&mut self, front: &Front<'_>, code: &str, sink: OutputSink<'_>) -> Result<Option<MimeBundle>, RunError> {
        match self.run_cell(front, code, sink) {
            Err(RunError::Cell(error)) if self.registry.cannot_write(&error.evalue) => {
                let notice = self.registry.switch().map_err(|e| RunError::Cell(CellError::new("SetupError", e.to_string())))?;
                sink(crate::backend::LiveOutput::Stderr(notice));
                self.run_cell(front, code, sink)
            }
            result => result,
        }
    }

    fn result_part(&self, mime: &str, text: &str) -> String {
        // evcxr collects what a cell prints between these markers into its result's MIME types.
        use crate::user_process::display::{BEGIN_CONTENT, END_CONTENT};
        format!("println!(\"{BEGIN_CONTENT} {mime}\\n{{}}\\n{END_CONTENT}\", {text});")
    }

    fn items(&self) -> Vec<String> {
        self.ctx.defined_item_names().map(str::to_string).collect()
    }

    fn interruptible(&mut self, work: &mut dyn FnMut()) -> bool {
        // Interrupt stops the compile like a cargo build (see `interrupt`).
        self.state.begin();
        work();
        let interrupted = self.state.interrupted();
        self.state.end();
        interrupted
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
        self.set_env_in_kernel(name, value)?;
        // The running user process: the next cell sees it, nothing restarts.
        let code = format!("unsafe {{ ::std::env::set_var({name:?}, {value:?}); }}");
        self.execute(&code, &discard).map(|_| ()).map_err(|e| {
            let evalue = format!("the kernel has {name}={value}, but the user process could not be updated: {}", e.evalue);
            CellError::new(&e.ename, evalue)
        })
    }

    fn set_env_in_kernel(&mut self, name: &str, value: &str) -> Result<(), CellError> {
        // This process: cargo and rustc inherit it, and so does a restarted user process; a
        // variable the kernel sets for its builds is the cells' only.
        if !crate::build_env::set_for_cells(name, value) {
            std::env::set_var(name, value);
        }
        if name == "RUSTFLAGS" {
            // The cells' flags ([`build_environment`]) with the learner's after them.
            self.execute(&format!(":build_env {ENCODED_RUSTFLAGS}={}", encoded(&cell_rustflags(value))), &discard)?;
        }
        Ok(())
    }

    fn variables(&self) -> Vec<String> {
        let mut names: Vec<String> = self.ctx.variables_and_types().map(|(name, _)| name.to_string()).collect();
        names.sort();
        names
    }
}

/// The names, in the session crate's directory, of the links to the directories of jit
/// libraries (the own cache's, the shared cache's).
const LINK_DIRS: [&str; 2] = ["jit-lib-0", "jit-lib-1"];

/// cargo's flags for all its rustc calls, each separated by 0x1f; over `RUSTFLAGS`.
const ENCODED_RUSTFLAGS: &str = "CARGO_ENCODED_RUSTFLAGS";

/// `flags` as [`ENCODED_RUSTFLAGS`] gives them: split where cargo splits `RUSTFLAGS`.
fn encoded(flags: &str) -> String {
    flags.split_whitespace().collect::<Vec<_>>().join("\u{1f}")
}

/// RUSTFLAGS of cell builds: what evcxr needs (`-Cprefer-dynamic`), where the jit functions'
/// libraries are to link (the user process loads them through `LD_LIBRARY_PATH`), and the
/// learner's own flags. The same for every session and learner: cargo rebuilds every
/// dependency when RUSTFLAGS change, so the session crate's dependencies built in a shared
/// cache are fresh in a learner's slot only with the same flags; hence relative paths (rustc
/// runs in the session crate's directory), to links there ([`link_jit_libraries`]).
fn cell_rustflags(learner: &str) -> String {
    let search: Vec<String> = LINK_DIRS.iter().map(|dir| format!("-L native={dir}")).collect();
    format!("-Cprefer-dynamic {} {learner}", search.join(" ")).trim_end().to_string()
}

/// Links the directories of jit libraries into the session crate's directory `build` (see
/// [`cell_rustflags`]); at most two.
fn link_jit_libraries(build: &Path, dirs: &[std::path::PathBuf]) -> std::io::Result<()> {
    assert!(dirs.len() <= LINK_DIRS.len(), "at most {} jit library directories", LINK_DIRS.len());
    for (name, dir) in LINK_DIRS.iter().zip(dirs) {
        let link = build.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(dir, &link)?;
    }
    Ok(())
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

/// The user process ended (crashed, or killed by an interrupt): what was lost.
fn lost_state_error(ename: &str, what: &str, lost: &[String]) -> CellError {
    let lost_text = if lost.is_empty() {
        "No variables were defined, so none were lost".to_string()
    } else {
        format!("These variables were lost: {}", lost.join(", "))
    };
    let evalue = format!(
        "{what}. The user process was restarted. {lost_text}. \
         Functions, types, `use` items and dependencies are kept."
    );
    diagnostics::error(ename, evalue)
}
