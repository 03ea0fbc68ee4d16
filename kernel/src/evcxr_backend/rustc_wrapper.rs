//! The rustc wrapper role: cargo's `RUSTC_WRAPPER` for the session's builds, set through
//! evcxr's build environment ([`build_env`]), for two crates.
//!
//! - The runtime (`jit`, an rlib to cargo): rustc builds it as a `dylib` too, beside the rlib and
//!   named like it (`libjit-<cargo's hash>.so`, its soname too): one file per build, so a session
//!   whose dependencies change the runtime's build (a `:dep` that turns on a feature of a crate
//!   it uses) gets a library of its own, loaded beside the old one, and never one cargo thinks
//!   is another (cargo names a `dylib` crate's files without its hash).
//! - The session crate (`ctx`, each cell): its `--extern jit=...rlib` becomes that `.so`, so
//!   the cell links the runtime dynamically (one copy per process); which one is written to
//!   `rjk-runtime` beside it ([`RUNTIME_RECORD`]), where the jit compiler finds it.
//!
//! Every other crate is compiled as rustc would (or by evcxr's own wrapper, when evcxr asks).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in cargo's environment for the session's builds: this process is the rustc wrapper (a C
/// string: the allocator reads it before anything is allocated, `allocator::short_lived`).
pub(crate) const WRAPPER_VAR: &std::ffi::CStr = c"RJK_RUSTC_WRAPPER";

fn wrapper_var() -> &'static str {
    WRAPPER_VAR.to_str().expect("an ASCII name")
}
/// evcxr's variable for "evcxr's own wrapper is wanted" (its `:cache`).
const EVCXR_WRAPPER_VAR: &str = "EVCXR_RUSTC_WRAPPER";
/// The runtime's crate name.
const RUNTIME_CRATE: &str = "jit";
/// The session crate's name (evcxr's).
const SESSION_CRATE: &str = "ctx";
/// In the session crate's output directory: the file name of the runtime library the last cell
/// linked.
pub const RUNTIME_RECORD: &str = "rjk-runtime";

/// The runtime's library named in `deps`'s [`RUNTIME_RECORD`], if it is there; with the time the
/// record was written.
pub fn recorded_runtime(deps: &Path) -> Option<(PathBuf, std::time::SystemTime)> {
    let record = deps.join(RUNTIME_RECORD);
    let written = std::fs::metadata(&record).ok()?.modified().ok()?;
    let name = std::fs::read_to_string(record).ok()?;
    let library = deps.join(name.trim());
    (!name.trim().is_empty() && library.exists()).then_some((library, written))
}

/// The variables of evcxr's build environment that make `binary` cargo's rustc wrapper.
pub fn build_env(binary: &Path) -> [(&'static str, String); 2] {
    [("RUSTC_WRAPPER", binary.display().to_string()), (wrapper_var(), "1".to_string())]
}

/// When this process is the rustc wrapper: compiles and exits. Otherwise returns (and evcxr's
/// hook may take it, for evcxr's own wrapper).
pub fn run_if_wrapper() {
    if std::env::var_os(wrapper_var()).is_none() {
        return;
    }
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some((rustc, rest)) = args.split_first() else { return };
    let plan = Plan::of(rest);
    if plan.is_none() && std::env::var_os(EVCXR_WRAPPER_VAR).is_some() {
        return;
    }
    run(rustc, rest, plan, false)
}

/// The wrapper's work for one rustc call (`rustc` and its arguments, as cargo gave them): the
/// runtime's rlib build remembered, the session crate linked to the runtime's `dylib` (built first if
/// needed, and recorded), then rustc in this process's place. The cargo front's fast path comes here
/// too ([`super::cargo_front`]); there the session crate's call goes through the kept cells
/// ([`super::cell_cache`]).
pub fn wrap(rustc: &OsString, rest: &[OsString]) -> ! {
    run(rustc, rest, Plan::of(rest), true)
}

/// [`wrap`], with `rest`'s plan made already; `fast`: without cargo.
fn run(rustc: &OsString, rest: &[OsString], plan: Option<Plan>, fast: bool) -> ! {
    let Some(mut plan) = plan else {
        let error = Command::new(rustc).args(rest).exec();
        eprintln!("error: could not run rustc: {error}");
        std::process::exit(1);
    };
    if let Some(args_file) = &plan.remember {
        // The runtime's rlib, as cargo asks (its dependencies may be metadata only yet, so the
        // dylib is built later, with the first cell that links it).
        let _ = std::fs::write(args_file, rest.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join("\n"));
    }
    if plan.session {
        super::cargo_front::record_if_asked(rustc, rest);
    }
    if let Some(dylib) = &plan.dylib {
        if let Err(e) = build_dylib(rustc, dylib) {
            eprintln!("error: could not build the jit runtime as a shared library: {e}");
            std::process::exit(1);
        }
    }
    if let Some((dir, name)) = &plan.record {
        if let Err(e) = std::fs::write(dir.join(RUNTIME_RECORD), name) {
            eprintln!("error: could not write {}: {e}", dir.join(RUNTIME_RECORD).display());
            std::process::exit(1);
        }
    }
    if plan.session {
        super::cell_fn::rename_in(&plan.args);
        let link = super::cell_link::for_call(&plan.args);
        plan.args.extend(link);
    }
    if fast && plan.session {
        super::cell_cache::compile(rustc, &plan.args, super::cargo_front::passed_on);
    }
    let error = Command::new(rustc).args(&plan.args).exec();
    eprintln!("error: could not run rustc: {error}");
    std::process::exit(1);
}

/// Builds `<deps>/libjit-<hash>.so` (`dylib`) from the runtime's rlib build's arguments, saved
/// beside the rlib, unless it is there and newer than the rlib: the same crate, as a `dylib`
/// only, against its dependencies' rlibs (complete by now: a cell links them).
fn build_dylib(rustc: &OsString, dylib: &Path) -> std::io::Result<()> {
    let rlib = dylib.with_extension("rlib");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(dylib).is_some_and(|so| modified(&rlib).is_some_and(|r| so >= r)) {
        return Ok(());
    }
    let saved = std::fs::read_to_string(dylib.with_extension("args"))?;
    let args = dylib_args(saved.lines());
    let output = Command::new(rustc).args(&args).output()?;
    if !output.status.success() {
        return Err(std::io::Error::other(String::from_utf8_lossy(&output.stderr).into_owned()));
    }
    Ok(())
}

/// The rlib build's arguments turned into the dylib's: crate type `dylib`, only the library
/// emitted (not the metadata cargo reads), no incremental state, dependencies as rlibs.
fn dylib_args<'a>(saved: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut saved = saved.peekable();
    while let Some(arg) = saved.next() {
        match arg {
            "--crate-type" => {
                saved.next();
                out.extend(["--crate-type".to_string(), "dylib".to_string()]);
            }
            "--json" | "--error-format" => {
                saved.next();
            }
            "-C" if saved.peek().is_some_and(|next| next.starts_with("incremental=")) => {
                saved.next();
            }
            "--extern" => {
                let ext = saved.next().unwrap_or_default();
                out.push("--extern".to_string());
                out.push(match ext.strip_suffix(".rmeta") {
                    Some(stem) => format!("{stem}.rlib"),
                    None => ext.to_string(),
                });
            }
            _ if arg.starts_with("--emit") => {
                if arg == "--emit" {
                    saved.next();
                }
                out.push("--emit=link".to_string());
            }
            _ if arg.starts_with("--json=") || arg.starts_with("--error-format=") => {}
            _ => out.push(arg.to_string()),
        }
    }
    out
}

/// What to run instead of rustc's arguments as cargo gave them.
#[derive(Debug, PartialEq)]
struct Plan {
    args: Vec<OsString>,
    /// The runtime's rlib build: where to save its arguments (for [`build_dylib`]).
    remember: Option<PathBuf>,
    /// The session crate: the runtime's `dylib` it links, built first if needed.
    dylib: Option<PathBuf>,
    /// The session crate's output directory and the runtime library it links.
    record: Option<(PathBuf, String)>,
    /// The session crate (the cargo front records its call).
    session: bool,
}

impl Plan {
    /// `args`: rustc's arguments. `None`: run them as they are.
    fn of(args: &[OsString]) -> Option<Plan> {
        let text: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
        let crate_name = value(&text, "--crate-name")?;
        let crate_types = values(&text, "--crate-type");
        if crate_name == RUNTIME_CRATE && crate_types == ["lib"] && values(&text, "--emit").iter().any(|e| e.split(',').any(|k| k == "link")) {
            let out_dir = PathBuf::from(value(&text, "--out-dir")?);
            let extra = text.iter().find_map(|a| a.strip_prefix("extra-filename=")).or_else(|| text.iter().find_map(|a| a.strip_prefix("-Cextra-filename=")))?;
            return Some(Plan { args: args.to_vec(), remember: Some(out_dir.join(format!("lib{RUNTIME_CRATE}{extra}.args"))), dylib: None, record: None, session: false });
        }
        if crate_name != SESSION_CRATE {
            return None;
        }
        // `--extern jit=<deps>/libjit-<hash>.rlib` (a build; `cargo check` passes `.rmeta`).
        let mut plan = Plan { args: Vec::with_capacity(args.len()), remember: None, dylib: None, record: None, session: true };
        for (i, arg) in args.iter().enumerate() {
            let rlib = (i > 0 && text[i - 1] == "--extern")
                .then(|| text[i].strip_prefix(&format!("{RUNTIME_CRATE}=")))
                .flatten()
                .filter(|path| path.ends_with(".rlib"))
                .map(PathBuf::from)
                .filter(|rlib| rlib.with_extension("args").exists());
            match rlib {
                Some(rlib) => {
                    let so = rlib.with_extension("so");
                    let name = so.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    plan.record = value(&text, "--out-dir").map(|dir| (PathBuf::from(dir), name));
                    plan.args.push(OsString::from(format!("{RUNTIME_CRATE}={}", so.display())));
                    plan.dylib = Some(so);
                }
                None => plan.args.push(arg.clone()),
            }
        }
        Some(plan)
    }
}

/// The values of `flag` (`--flag value` and `--flag=value`).
fn values<'a>(args: &[&'a str], flag: &str) -> Vec<&'a str> {
    let joined = format!("{flag}=");
    let mut found = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        if *arg == flag {
            found.extend(args.get(i + 1).copied());
        } else if let Some(v) = arg.strip_prefix(&joined) {
            found.push(v);
        }
    }
    found
}

fn value<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    values(args, flag).first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    const RUNTIME: &str = "--crate-name jit --edition=2021 src/lib.rs --error-format=json --json=artifacts --crate-type lib \
                           --emit=dep-info,metadata,link -C opt-level=3 -C metadata=b664945e -C extra-filename=-b664945e \
                           --out-dir /a/deps -C incremental=/a/inc -L dependency=/a/deps --extern rayon=/a/deps/librayon-1.rmeta \
                           -Cprefer-dynamic";

    #[test]
    fn the_runtimes_rlib_build_is_remembered() {
        let plan = Plan::of(&args(RUNTIME)).unwrap();
        assert_eq!(plan.args, args(RUNTIME), "built as cargo asks");
        assert_eq!(plan.remember, Some(PathBuf::from("/a/deps/libjit-b664945e.args")));
        assert_eq!(Plan::of(&args(&RUNTIME.replace("--crate-name jit", "--crate-name ndarray"))), None);
        assert_eq!(Plan::of(&args(&RUNTIME.replace("--emit=dep-info,metadata,link", "--emit=dep-info,metadata"))), None, "cargo check");
    }

    #[test]
    fn the_dylib_is_built_from_the_rlibs_arguments() {
        let dylib = dylib_args(RUNTIME.split(' '));
        assert_eq!(
            dylib.join(" "),
            "--crate-name jit --edition=2021 src/lib.rs --crate-type dylib --emit=link -C opt-level=3 -C metadata=b664945e \
             -C extra-filename=-b664945e --out-dir /a/deps -L dependency=/a/deps --extern rayon=/a/deps/librayon-1.rlib -Cprefer-dynamic"
        );
    }

    #[test]
    fn cells_link_the_runtimes_dylib_and_say_which() {
        let dir = std::env::temp_dir().join(format!("rjk-wrapper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rlib = dir.join("libjit-b664945e.rlib");
        let line = format!("--crate-name ctx src/lib.rs --crate-type cdylib --out-dir {} --extern jit={} -Cprefer-dynamic", dir.display(), rlib.display());
        // A runtime this wrapper did not build: as it is.
        assert_eq!(Plan::of(&args(&line)).unwrap().args, args(&line));
        std::fs::write(dir.join("libjit-b664945e.args"), RUNTIME.replace(' ', "\n")).unwrap();
        let plan = Plan::of(&args(&line)).unwrap();
        let so = dir.join("libjit-b664945e.so");
        assert!(plan.args.contains(&OsString::from(format!("jit={}", so.display()))), "{:?}", plan.args);
        assert_eq!(plan.dylib, Some(so));
        assert_eq!(plan.record, Some((dir.clone(), "libjit-b664945e.so".to_string())));
        // `cargo check`: metadata only.
        let check = line.replace(".rlib", ".rmeta");
        assert_eq!(Plan::of(&args(&check)).unwrap().args, args(&check));
        assert_eq!(Plan::of(&args(&line.replace("--crate-name ctx", "--crate-name other"))), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
