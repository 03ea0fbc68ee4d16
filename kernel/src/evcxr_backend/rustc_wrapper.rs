//! The rustc wrapper role: cargo's `RUSTC_WRAPPER` for the session's builds, set through
//! evcxr's build environment ([`build_env`]), for one crate: the runtime's `dylib`.
//!
//! Cargo names a `dylib` without a hash (`libjit.so`), and the user process keeps the one it
//! loaded: when the session's dependencies change the runtime's build (a `:dep` that turns on
//! a feature of a crate it uses), cells built against the new `libjit.so` would bind to the old
//! one, loaded under the same name. So the runtime's library gets a name of its own build: its
//! soname is `libjit-<hash>.so` (a hash of cargo's `-C metadata` and the flags), and a hard link
//! of that name is made beside it. Cells and jit libraries record that name; a new build is
//! loaded beside the old one. Every other crate is compiled as rustc would (or by evcxr's own
//! wrapper, when evcxr asks for it).

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
    let Some(build) = RuntimeBuild::of(&args) else {
        if std::env::var_os(EVCXR_WRAPPER_VAR).is_some() {
            return;
        }
        let error = Command::new(rustc).args(rest).exec();
        eprintln!("error: could not run rustc: {error}");
        std::process::exit(1);
    };
    let status = Command::new(rustc).args(rest).arg(format!("-Clink-arg=-Wl,-soname,{}", build.soname)).status();
    let code = match status {
        Ok(status) if status.success() => match build.link() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: could not name the runtime's library {}: {e}", build.soname);
                1
            }
        },
        Ok(status) => status.code().unwrap_or(1),
        Err(e) => {
            eprintln!("error: could not run rustc: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// A rustc invocation that builds the runtime as a `dylib`.
#[derive(Debug, PartialEq)]
struct RuntimeBuild {
    /// Where rustc writes it (`--out-dir`).
    out_dir: PathBuf,
    /// `libjit-<hash>.so`.
    soname: String,
    /// Whether rustc links it (not only its metadata, as `cargo check` asks).
    links: bool,
}

impl RuntimeBuild {
    /// `args`: rustc's path, then its arguments.
    fn of(args: &[OsString]) -> Option<RuntimeBuild> {
        let args: Vec<&str> = args.iter().skip(1).map(|a| a.to_str()).collect::<Option<_>>()?;
        // `--flag value` and `--flag=value`.
        let values = |flag: &str| {
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
        };
        let value = |flag: &str| values(flag).first().copied();
        if value("--crate-name") != Some(RUNTIME_CRATE) || !values("--crate-type").contains(&"dylib") {
            return None;
        }
        // What makes one build differ from another: cargo's metadata (package, features,
        // dependencies, profile) and the flags. Not paths: two slots' builds of the same
        // runtime are the same library.
        let mut identity: Vec<&str> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = args[i];
            if (arg == "-C" || arg == "--cfg") && i + 1 < args.len() {
                if !args[i + 1].starts_with("incremental=") {
                    identity.push(args[i + 1]);
                }
                i += 2;
                continue;
            }
            if arg.starts_with("-C") && !arg.starts_with("-Cincremental") || arg.starts_with("--cfg") {
                identity.push(arg);
            }
            i += 1;
        }
        let soname = format!("lib{RUNTIME_CRATE}-{:016x}.so", crate::cache::key(&identity));
        let links = value("--emit").is_none_or(|emit| emit.split(',').any(|e| e == "link"));
        Some(RuntimeBuild { out_dir: PathBuf::from(value("--out-dir")?), soname, links })
    }

    /// The hard link `libjit-<hash>.so` beside the `libjit.so` rustc wrote.
    fn link(&self) -> std::io::Result<()> {
        if !self.links {
            return Ok(());
        }
        let named = self.out_dir.join(&self.soname);
        let _ = std::fs::remove_file(&named);
        std::fs::hard_link(self.out_dir.join(format!("lib{RUNTIME_CRATE}.so")), named)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    const BUILD: &str = "rustc --crate-name jit --edition=2021 src/lib.rs --crate-type dylib --crate-type rlib \
                         --emit=dep-info,link -C opt-level=3 -C metadata=b664945e -C incremental=/a/inc --out-dir /a/deps \
                         -L dependency=/a/deps --extern rayon=/a/deps/librayon.rlib -Cprefer-dynamic";

    #[test]
    fn only_the_runtimes_dylib_is_renamed() {
        assert_eq!(RuntimeBuild::of(&args(BUILD)).map(|b| b.links), Some(true));
        assert_eq!(RuntimeBuild::of(&args(&BUILD.replace("--emit=dep-info,link", "--emit dep-info,link"))).map(|b| b.links), Some(true));
        assert_eq!(RuntimeBuild::of(&args(&BUILD.replace("--crate-type dylib ", ""))), None);
        assert_eq!(RuntimeBuild::of(&args(&BUILD.replace("jit", "ndarray"))), None);
        let check = RuntimeBuild::of(&args(&BUILD.replace("--emit=dep-info,link", "--emit dep-info,metadata"))).unwrap();
        assert!(!check.links);
    }

    #[test]
    fn the_name_follows_metadata_and_flags_not_paths() {
        let name = |line: &str| RuntimeBuild::of(&args(line)).unwrap().soname;
        let base = name(BUILD);
        assert!(base.starts_with("libjit-") && base.ends_with(".so"), "{base}");
        assert_eq!(base, name(&BUILD.replace("/a/", "/b/")));
        assert_ne!(base, name(&BUILD.replace("metadata=b664945e", "metadata=0000")));
        assert_ne!(base, name(&BUILD.replace("-Cprefer-dynamic", "-Cprefer-dynamic -Ctarget-cpu=native")));
        assert_eq!(RuntimeBuild::of(&args(BUILD)).unwrap().out_dir, PathBuf::from("/a/deps"));
    }
}
