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

/// Set in cargo's environment for the session's builds: this process is the rustc wrapper.
const WRAPPER_VAR: &str = "RJK_RUSTC_WRAPPER";
/// evcxr's variable for "evcxr's own wrapper is wanted" (its `:cache`).
const EVCXR_WRAPPER_VAR: &str = "EVCXR_RUSTC_WRAPPER";
/// The runtime's crate name.
const RUNTIME_CRATE: &str = "jit";
/// The session crate's name (evcxr's).
const SESSION_CRATE: &str = "ctx";
/// In the session crate's output directory: the file name of the runtime library the last cell
/// linked.
pub const RUNTIME_RECORD: &str = "rjk-runtime";

/// The variables of evcxr's build environment that make `binary` cargo's rustc wrapper.
pub fn build_env(binary: &Path) -> [(&'static str, String); 2] {
    [("RUSTC_WRAPPER", binary.display().to_string()), (WRAPPER_VAR, "1".to_string())]
}

/// When this process is the rustc wrapper: compiles and exits. Otherwise returns (and evcxr's
/// hook may take it, for evcxr's own wrapper).
pub fn run_if_wrapper() {
    if std::env::var_os(WRAPPER_VAR).is_none() {
        return;
    }
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some((rustc, rest)) = args.split_first() else { return };
    let Some(plan) = Plan::of(rest) else {
        if std::env::var_os(EVCXR_WRAPPER_VAR).is_some() {
            return;
        }
        let error = Command::new(rustc).args(rest).exec();
        eprintln!("error: could not run rustc: {error}");
        std::process::exit(1);
    };
    if let Some((dir, name)) = &plan.record {
        if let Err(e) = std::fs::write(dir.join(RUNTIME_RECORD), name) {
            eprintln!("error: could not write {}: {e}", dir.join(RUNTIME_RECORD).display());
            std::process::exit(1);
        }
    }
    let error = Command::new(rustc).args(&plan.args).exec();
    eprintln!("error: could not run rustc: {error}");
    std::process::exit(1);
}

/// What to run instead of rustc's arguments as cargo gave them.
#[derive(Debug, PartialEq)]
struct Plan {
    args: Vec<OsString>,
    /// The session crate's output directory and the runtime library it links.
    record: Option<(PathBuf, String)>,
}

impl Plan {
    /// `args`: rustc's arguments. `None`: run them as they are.
    fn of(args: &[OsString]) -> Option<Plan> {
        let text: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
        let crate_name = value(&text, "--crate-name")?;
        let crate_types = values(&text, "--crate-type");
        if crate_name == RUNTIME_CRATE && crate_types == ["lib"] {
            let mut args = args.to_vec();
            args.extend(["--crate-type".into(), "dylib".into()]);
            return Some(Plan { args, record: None });
        }
        if crate_name != SESSION_CRATE {
            return None;
        }
        // `--extern jit=<deps>/libjit-<hash>.rlib` (a build; `cargo check` passes `.rmeta`).
        let mut record = None;
        let mut out = Vec::with_capacity(args.len());
        for (i, arg) in args.iter().enumerate() {
            let rlib = (i > 0 && text[i - 1] == "--extern")
                .then(|| text[i].strip_prefix(&format!("{RUNTIME_CRATE}=")))
                .flatten()
                .filter(|path| path.ends_with(".rlib"));
            match rlib.map(|path| PathBuf::from(path).with_extension("so")).filter(|so| so.exists()) {
                Some(so) => {
                    let name = so.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    record = value(&text, "--out-dir").map(|dir| (PathBuf::from(dir), name));
                    out.push(OsString::from(format!("{RUNTIME_CRATE}={}", so.display())));
                }
                None => out.push(arg.clone()),
            }
        }
        Some(Plan { args: out, record })
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

    const RUNTIME: &str = "--crate-name jit --edition=2021 src/lib.rs --crate-type lib --emit=dep-info,metadata,link \
                           -C opt-level=3 -C metadata=b664945e -C extra-filename=-b664945e --out-dir /a/deps \
                           -L dependency=/a/deps --extern rayon=/a/deps/librayon-1.rlib -Cprefer-dynamic";

    #[test]
    fn the_runtime_is_built_as_a_dylib_too() {
        let plan = Plan::of(&args(RUNTIME)).unwrap();
        assert_eq!(plan.args[plan.args.len() - 2..], [OsString::from("--crate-type"), OsString::from("dylib")]);
        assert_eq!(plan.record, None);
        assert_eq!(Plan::of(&args(&RUNTIME.replace("--crate-name jit", "--crate-name ndarray"))), None);
        assert_eq!(Plan::of(&args(&RUNTIME.replace("--crate-type lib", "--crate-type lib --crate-type dylib"))), None);
    }

    #[test]
    fn cells_link_the_runtimes_dylib_and_say_which() {
        let dir = std::env::temp_dir().join(format!("rjk-wrapper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rlib = dir.join("libjit-b664945e.rlib");
        let line = format!("--crate-name ctx src/lib.rs --crate-type cdylib --out-dir {} --extern jit={} -Cprefer-dynamic", dir.display(), rlib.display());
        // No dylib beside the rlib (not built by this wrapper): as it is.
        assert_eq!(Plan::of(&args(&line)).unwrap().args, args(&line));
        std::fs::write(dir.join("libjit-b664945e.so"), b"").unwrap();
        let plan = Plan::of(&args(&line)).unwrap();
        assert!(plan.args.contains(&OsString::from(format!("jit={}", dir.join("libjit-b664945e.so").display()))), "{:?}", plan.args);
        assert_eq!(plan.record, Some((dir.clone(), "libjit-b664945e.so".to_string())));
        // `cargo check`: metadata only.
        let check = line.replace(".rlib", ".rmeta");
        assert_eq!(Plan::of(&args(&check)).unwrap(), Plan { args: args(&check), record: None });
        assert_eq!(Plan::of(&args(&line.replace("--crate-name ctx", "--crate-name other"))), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
