//! The cargo front: the `cargo` evcxr runs for the session crate, this binary under that name.
//!
//! Every cell is a `cargo build` of the session crate in which only `src/lib.rs` changed. cargo
//! itself then takes ~70 ms of a trivial cell's ~300 (its start, the lock file, the dependency
//! graph, every dependency's fingerprint) to decide what it decided last time: run rustc on the
//! session crate, with the same arguments. The front remembers that decision and takes it again:
//!
//! - **When cargo ran** (`build`, through the front: [`slow`]), the rustc wrapper wrote down the
//!   session crate's rustc call as cargo made it (its arguments and whole environment:
//!   [`record_if_asked`]); once cargo has run it (the cell compiled or not), the front keeps it as
//!   the slot's plan, under a key: the front's arguments, working directory and environment (but
//!   for the variables cargo only passes on, [`PASSED_VARS`]), and the bytes of `Cargo.toml`,
//!   `Cargo.lock` and every cargo configuration file that applies ([`key`]).
//! - **The next `build`** whose key is the plan's, and whose `--extern` files are all there, runs the
//!   plan's rustc call itself (in this process's place, through the wrapper's code, so the runtime's
//!   library is still checked), after writing evcxr's "which shared object" file. Anything else
//!   (another key: a `:dep`, `:build_env`, another kernel binary or toolchain; `check`, `clean`;
//!   a cargo a cell runs) is the real cargo's, `RJK_REAL_CARGO`.
//! - **What rust-analyzer asks cargo** when it loads the session crate (`metadata`,
//!   `locate-project`, `rustc --print cfg`, ...) is answered from the cache while what cargo read
//!   for the answer holds ([`answers`]).
//!
//! rustc's JSON diagnostics go to evcxr as cargo would pass them (evcxr reads rustc's own JSON
//! as well as cargo's wrapping); a failed build exits non-zero. cargo's fingerprint of the session
//! crate is stale after a fast build, so the next cargo run rebuilds it, which it would anyway (its
//! source changed).
//!
//! How evcxr finds the front: [`prepare`] makes a toolchain directory in the slot, `bin/cargo` (the
//! front) and `bin/rustc` (a link to the real one); `PATH` and `RUSTUP_TOOLCHAIN` name it, so both
//! of evcxr's ways to find cargo and rustc (`rustup which`, then `PATH`) find them at once. (Without
//! the link, `rustup which rustc` fails, and with `RUST_BACKTRACE` set it spends ~80 ms of every
//! start printing its backtrace before evcxr looks on `PATH`.) The user process gets back the
//! `RUSTUP_TOOLCHAIN` the kernel was started with ([`crate::build_env`]).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The real cargo, for everything the front does not do itself.
pub const REAL_CARGO_VAR: &str = "RJK_REAL_CARGO";
/// Set in the real cargo's environment by the front: where the wrapper writes the session crate's
/// rustc call.
const RECORD_VAR: &str = "RJK_CELL_RECORD";
/// evcxr's variable naming the file where the build writes the path of the cell's shared object.
const EVCXR_SO_PATH_VAR: &str = "EVCXR_EXECUTION_SO_PATH";
/// cargo's jobserver, in the environment it gives rustc.
const JOBSERVER_VARS: [&str; 3] = ["CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"];
/// Variables that cargo passes to rustc without reading them, and that differ where the plan does
/// not: Jupyter's, new with each server and notebook, and those of `mold -run`, which evcxr puts in
/// front of its first builds. Not in the plan's key; a plan run gives rustc their values now.
const PASSED_VARS: [&str; 4] = ["JPY_PARENT_PID", "JPY_SESSION_NAME", "LD_PRELOAD", "MOLD_PATH"];

/// One of [`PASSED_VARS`].
pub(super) fn passed_on(name: &std::ffi::OsStr) -> bool {
    PASSED_VARS.iter().any(|passed| name == *passed)
}
/// Set to `off`: evcxr runs cargo itself (for comparisons).
pub const SWITCH_VAR: &str = "RUST_JIT_KERNEL_CARGO_FRONT";
/// The directory of the cache that holds the answers to rust-analyzer's questions ([`answers`]);
/// a sealed shared cache has none (they name the admin's slot).
pub const ANSWERS: &str = "cargo-answers";
/// The plan, in the session crate's target directory (`cargo clean` removes it).
const PLAN: &str = "target/rjk-cell-build.json";
/// The slow path's record, beside it.
const RECORD: &str = "target/rjk-cell-build.record.json";

/// The slot's toolchain directory for evcxr (`<slot>/toolchain/bin/cargo`, a link to this binary;
/// `bin/rustc`, one to the real rustc), named by `RUSTUP_TOOLCHAIN` (this process's environment:
/// call before any thread starts), with the real cargo in `RJK_REAL_CARGO`; returns its `bin`, for
/// the caller to put first on `PATH`. `None` with `RUST_JIT_KERNEL_CARGO_FRONT=off`.
pub fn prepare(slot: &Path, real_bin: &Path, answers: &Path) -> std::io::Result<Option<PathBuf>> {
    if std::env::var_os(SWITCH_VAR).is_some_and(|v| v == "off") {
        return Ok(None);
    }
    let bin = slot.join("toolchain/bin");
    std::fs::create_dir_all(&bin)?;
    let link = |to: &Path, name: &str| {
        let at = bin.join(name);
        let _ = std::fs::remove_file(&at);
        std::os::unix::fs::symlink(to, at)
    };
    link(&std::env::current_exe()?, "cargo")?;
    let rustc = real_bin.join("rustc");
    if rustc.exists() {
        link(&rustc, "rustc")?;
    }
    std::env::set_var(REAL_CARGO_VAR, real_bin.join("cargo"));
    std::env::set_var(answers::DIR_VAR, answers);
    crate::build_env::set_for_builds("RUSTUP_TOOLCHAIN", slot.join("toolchain"));
    Ok(Some(bin))
}

/// When this process was started as `cargo`: does what cargo was asked and exits.
pub fn run_if_front() {
    let mut args = std::env::args_os();
    if args.next().as_deref().map(Path::new).and_then(Path::file_name) != Some("cargo".as_ref()) {
        return;
    }
    let args: Vec<OsString> = args.collect();
    let Some(real) = std::env::var_os(REAL_CARGO_VAR) else {
        eprintln!("error: this is rust-jit-kernel's cargo front, started without {REAL_CARGO_VAR}");
        std::process::exit(101);
    };
    if let (true, Some(kept), Ok(dir)) = (answers::is_question(&args), std::env::var_os(answers::DIR_VAR), std::env::current_dir()) {
        let (answer, status) = answers::answer(&real, &args, &dir, Path::new(&kept));
        answer.give();
        std::process::exit(status);
    }
    if args.first().is_some_and(|a| a == "build") {
        if let Ok(dir) = std::env::current_dir() {
            let key = key(&args, &dir, std::env::vars_os().collect());
            if let Some(plan) = Plan::load(&dir, key) {
                plan.run();
            }
            std::process::exit(slow(&real, &args, &dir, key));
        }
    }
    let error = Command::new(&real).args(&args).exec();
    eprintln!("error: could not run cargo ({}): {error}", Path::new(&real).display());
    std::process::exit(101);
}

/// Runs the real cargo, asking the wrapper to record the session crate's rustc call; keeps it as
/// the plan when cargo got as far as that call (the cell compiled or not). Returns cargo's exit status.
fn slow(real: &OsString, args: &[OsString], dir: &Path, key: u64) -> i32 {
    let record = dir.join(RECORD);
    let _ = std::fs::remove_file(&record);
    let status = match Command::new(real).args(args).env(RECORD_VAR, &record).status() {
        Ok(status) => status,
        Err(error) => {
            eprintln!("error: could not run cargo ({}): {error}", Path::new(real).display());
            return 101;
        }
    };
    let _ = std::fs::remove_file(dir.join(PLAN));
    // A record means the session crate's rustc ran, every dependency built: its call is the plan
    // also when the cell did not compile.
    if status.code().is_some() {
        if let Ok(call) = std::fs::read_to_string(&record) {
            let plan = serde_json::json!({ "key": format!("{key:016x}"), "call": serde_json::from_str::<serde_json::Value>(&call).unwrap_or_default() });
            let _ = std::fs::write(dir.join(PLAN), plan.to_string());
        }
    }
    let _ = std::fs::remove_file(&record);
    status.code().unwrap_or(101)
}

/// In the rustc wrapper, for the session crate: when the front asked, writes down this call (rustc,
/// its arguments, the whole environment cargo gave it).
pub fn record_if_asked(rustc: &OsString, args: &[OsString]) {
    let Some(record) = std::env::var_os(RECORD_VAR) else { return };
    let text = |s: &OsString| s.to_string_lossy().into_owned();
    let env: BTreeMap<String, String> = std::env::vars_os().filter(|(k, _)| k != RECORD_VAR).map(|(k, v)| (text(&k), text(&v))).collect();
    let call = serde_json::json!({ "rustc": text(rustc), "args": args.iter().map(text).collect::<Vec<_>>(), "env": env });
    let _ = std::fs::write(record, call.to_string());
}

/// What decides cargo's plan for the session crate: the front's arguments, directory and
/// environment (not [`PASSED_VARS`]), and the bytes of the manifest, the lock file and the cargo configuration files
/// that apply (the directory's and its parents' `.cargo/config.toml`, `CARGO_HOME`'s).
/// `env`: the process's environment.
fn key(args: &[OsString], dir: &Path, mut env: Vec<(OsString, OsString)>) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    // This binary (a plan another build of the kernel made is not taken).
    std::env::current_exe().and_then(std::fs::metadata).and_then(|m| m.modified()).ok().hash(&mut hasher);
    args.hash(&mut hasher);
    dir.hash(&mut hasher);
    env.retain(|(name, _)| !passed_on(name));
    env.sort();
    env.hash(&mut hasher);
    for file in cargo_files(dir, &env) {
        std::fs::read(&file).ok().hash(&mut hasher);
    }
    hasher.finish()
}

/// The files cargo reads in `dir` before anything else: the manifest, the lock file and the cargo
/// configuration files that apply (the directory's and its parents' `.cargo/config.toml`,
/// `CARGO_HOME`'s). `env`: the process's environment.
fn cargo_files(dir: &Path, env: &[(OsString, OsString)]) -> Vec<PathBuf> {
    let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| PathBuf::from(v));
    let mut files = vec![dir.join("Cargo.toml"), dir.join("Cargo.lock")];
    for ancestor in dir.ancestors() {
        files.push(ancestor.join(".cargo/config.toml"));
        files.push(ancestor.join(".cargo/config"));
    }
    if let Some(home) = var("CARGO_HOME").or_else(|| var("HOME").map(|h| h.join(".cargo"))) {
        files.push(home.join("config.toml"));
        files.push(home.join("config"));
    }
    files
}

/// The session crate's rustc call, as the last cargo run made it.
#[derive(Debug, PartialEq)]
struct Plan {
    rustc: OsString,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
}

impl Plan {
    /// The slot's plan, if made under `key` and its `--extern` files are all there.
    fn load(dir: &Path, key: u64) -> Option<Plan> {
        let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(PLAN)).ok()?).ok()?;
        if saved["key"].as_str()? != format!("{key:016x}") {
            return None;
        }
        let plan = Plan::from_json(&saved["call"])?;
        let complete = plan.externs().all(|path| path.exists());
        complete.then_some(plan)
    }

    fn from_json(call: &serde_json::Value) -> Option<Plan> {
        let rustc = OsString::from(call["rustc"].as_str()?);
        let args = call["args"].as_array()?.iter().map(|a| a.as_str().map(OsString::from)).collect::<Option<_>>()?;
        let env = call["env"].as_object()?.iter().map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect::<Option<_>>()?;
        Some(Plan { rustc, args, env })
    }

    /// The files named by `--extern NAME=PATH`.
    fn externs(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.args.windows(2).filter(|w| w[0] == "--extern").filter_map(|w| w[1].to_str()?.split_once('=').map(|(_, p)| PathBuf::from(p)))
    }

    /// Takes cargo's place: evcxr's so-path file written, the environment cargo gave rustc (with
    /// [`PASSED_VARS`] as they are now), then the rustc wrapper's work (which ends in rustc, or
    /// in the cell's kept library: [`super::cell_cache`]).
    fn run(self) -> ! {
        if let (Some(file), Some(output)) = (std::env::var_os(EVCXR_SO_PATH_VAR), super::cell_cache::output(&self.args)) {
            let _ = std::fs::write(file, output.display().to_string());
        }
        for (name, _) in std::env::vars_os().filter(|(name, _)| !passed_on(name)) {
            std::env::remove_var(name);
        }
        // Not cargo's jobserver: its descriptors are not this process's.
        let recorded = |name: &str| !JOBSERVER_VARS.contains(&name) && !passed_on(name.as_ref());
        for (name, value) in self.env.iter().filter(|(name, _)| recorded(name)) {
            std::env::set_var(name, value);
        }
        super::rustc_wrapper::wrap(&self.rustc, &self.args)
    }
}

mod answers;

#[cfg(test)]
mod tests;
