//! How a cell is linked: by the toolchain's `rust-lld` directly, not through `cc`.
//!
//! rustc links a cell as it links any `cdylib` on Linux: it runs `cc`, which runs `collect2`,
//! which runs rustup's `ld.lld` wrapper, which runs `rust-lld`: four process starts for one link,
//! ~10 ms of a ~100 ms cell on 2 cores (docs/benchmarks.md). Here the session crate's rustc call
//! names `rust-lld` as its linker (`-C linker-flavor=ld.lld`), with what `cc` would have added:
//! gcc's start files (`crti.o`, `crtbeginS.o`, `crtendS.o`, `crtn.o`) and its library
//! directories, asked of `cc` once ([`discover`]). **A link this way is tried once per toolchain
//! and C compiler** (a one-line `cdylib`, [`probe`]) and the outcome kept in the cache; where it
//! fails, or a piece is missing (no `rust-lld`, no `cc`, a start file `cc` cannot find), cells are
//! linked through `cc` as before, and so is a call that chooses its own linker or link arguments
//! ([`for_call`]). `RUST_JIT_KERNEL_CELL_LINKER=cc` keeps `cc` (for A/B runs).
//!
//! The arguments travel in the build environment ([`VAR`]: the kernel sets them, the rustc
//! wrapper appends them to the session crate's call); they are untracked by rustc's incremental
//! state, so switching does not recompile a cell.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cache::Caches;
use crate::setup::Toolchain;

/// The build environment's variable: the session crate's extra rustc arguments, separated by
/// `\x1f` (as in `CARGO_ENCODED_RUSTFLAGS`).
pub const VAR: &str = "RJK_CELL_LINK";
/// `cc`: link cells through `cc` (rustc's default).
pub const SWITCH_VAR: &str = "RUST_JIT_KERNEL_CELL_LINKER";
const SEPARATOR: char = '\x1f';

/// The arguments for [`VAR`]: from the cache, or found and tried now; `None` (link through `cc`)
/// when switched off, or when this machine cannot link so.
pub fn prepare(caches: &Caches, toolchain: &Toolchain) -> Option<String> {
    if std::env::var(SWITCH_VAR).is_ok_and(|v| v == "cc") {
        return None;
    }
    prepare_with(caches, toolchain, &crate::setup::on_path("cc")?)
}

/// [`prepare`] with `cc`, the C compiler rustc would run.
fn prepare_with(caches: &Caches, toolchain: &Toolchain, cc: &Path) -> Option<String> {
    let lld = toolchain.sysroot.join("lib/rustlib").join(&toolchain.host).join("bin/rust-lld");
    let stamp = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.len(), m.modified().ok()));
    let key = crate::cache::key(&(toolchain.id(), cc, stamp(cc), std::fs::canonicalize(cc).ok(), stamp(&lld)));
    let kept = caches.own.join("cell-link").join(format!("{key:016x}"));
    if let Ok(text) = std::fs::read_to_string(&kept) {
        // "cc": tried and failed; otherwise the arguments, each file of which must still be there.
        return (text != "cc" && still_there(&text)).then_some(text);
    }
    let probe_dir = kept.with_file_name(format!(".probe-{}", std::process::id()));
    let found = discover(cc, &lld).filter(|args| probe(toolchain, args, &probe_dir).is_ok());
    let _ = std::fs::remove_dir_all(&probe_dir);
    let text = found.unwrap_or_else(|| "cc".to_string());
    let _ = crate::cache::publish(&kept, |tmp| std::fs::write(tmp, &text), |e| e);
    (text != "cc").then_some(text)
}

/// What the rustc wrapper appends to the session crate's call (`args`, as it will run): [`VAR`]'s
/// arguments, unless the call links nothing or has a linker or link arguments of its own.
pub fn for_call(args: &[OsString]) -> Vec<OsString> {
    let Some(extra) = std::env::var_os(VAR) else { return Vec::new() };
    let text: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    let links = text.windows(2).any(|w| w[0] == "--emit" && w[1].split(',').any(|k| k == "link"))
        || text.iter().filter_map(|a| a.strip_prefix("--emit=")).any(|e| e.split(',').any(|k| k == "link"));
    let own_linking = text.iter().any(|a| ["linker", "link-arg", "link-self-contained"].iter().any(|flag| a.trim_start_matches("-C").starts_with(flag)));
    if !links || own_linking {
        return Vec::new();
    }
    extra.to_string_lossy().split(SEPARATOR).map(OsString::from).collect()
}

/// rustc's arguments for linking with `lld` directly: the linker, what gcc passes it, gcc's start files (in the order
/// `cc` puts them; after the objects, which does not matter: nothing else a cell links adds to
/// `.init`) and gcc's library directories, as `cc -print-file-name` and `-print-search-dirs` name
/// them.
fn discover(cc: &Path, lld: &Path) -> Option<String> {
    if !lld.is_file() {
        return None;
    }
    let ask = |arg: &str| -> Option<String> {
        let out = Command::new(cc).arg(arg).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    // `--build-id` and `--hash-style=gnu`: what Debian's and Fedora's gcc pass too.
    let mut args = vec![format!("-Clinker={}", lld.display()), "-Clinker-flavor=ld.lld".into(), "-Clink-arg=--build-id".into(), "-Clink-arg=--hash-style=gnu".into()];
    for file in ["crti.o", "crtbeginS.o", "crtendS.o", "crtn.o"] {
        // `cc` prints the bare name of a file it cannot find.
        let path = PathBuf::from(ask(&format!("-print-file-name={file}"))?);
        let path = std::fs::canonicalize(&path).ok().filter(|p| p.is_absolute() && p.is_file())?;
        args.push(format!("-Clink-arg={}", path.display()));
    }
    let dirs = ask("-print-search-dirs")?;
    let libraries = dirs.lines().find_map(|l| l.strip_prefix("libraries:"))?.trim_start().trim_start_matches('=');
    let mut seen = Vec::new();
    for dir in std::env::split_paths(libraries) {
        if let Ok(dir) = std::fs::canonicalize(&dir) {
            if dir.is_dir() && !seen.contains(&dir) {
                args.push(format!("-Clink-arg=-L{}", dir.display()));
                seen.push(dir);
            }
        }
    }
    let text = args.join(&SEPARATOR.to_string());
    (!text.contains('\n')).then_some(text)
}

/// Links a one-line `cdylib` that uses std with `args` (and with the cells' `-Cprefer-dynamic`),
/// in `dir`.
fn probe(toolchain: &Toolchain, args: &str, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("probe.rs"), "#[unsafe(no_mangle)] pub extern \"C\" fn rjk_probe() -> usize { std::env::args().count() }\n")?;
    let out = Command::new(toolchain.bin().join("rustc"))
        .args(["--edition=2024", "--crate-type", "cdylib", "-Cprefer-dynamic", "probe.rs"])
        .args(args.split(SEPARATOR))
        .current_dir(dir)
        .output()?;
    if !out.status.success() || !dir.join("libprobe.so").is_file() {
        tracing::info!(stderr = %String::from_utf8_lossy(&out.stderr), "cells link through cc: rust-lld alone could not link");
        return Err(std::io::Error::other("link failed"));
    }
    Ok(())
}

/// Whether every file that kept arguments name is still there (gcc upgraded in place, say).
fn still_there(text: &str) -> bool {
    text.split(SEPARATOR).all(|arg| {
        let path = arg.strip_prefix("-Clinker=").or_else(|| arg.strip_prefix("-Clink-arg=")).unwrap_or("");
        path.starts_with("-") || !path.starts_with('/') || Path::new(path).exists()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &str) -> Vec<OsString> {
        args.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn only_a_linking_call_without_its_own_linker_gets_them() {
        // The process's environment: a name no other test sets.
        std::env::set_var(VAR, "-Clinker=/x/rust-lld\x1f-Clinker-flavor=ld.lld");
        assert_eq!(for_call(&os("--crate-name ctx --emit=dep-info,link src/lib.rs")), os("-Clinker=/x/rust-lld -Clinker-flavor=ld.lld"));
        assert_eq!(for_call(&os("--crate-name ctx --emit dep-info,link src/lib.rs")).len(), 2);
        assert!(for_call(&os("--crate-name ctx --emit=dep-info,metadata src/lib.rs")).is_empty(), "cargo check links nothing");
        assert!(for_call(&os("--crate-name ctx --emit=link -C linker=clang")).is_empty());
        assert!(for_call(&os("--crate-name ctx --emit=link -Clink-arg=-Wl,-rpath,/a")).is_empty());
        assert!(for_call(&os("--crate-name ctx --emit=link -C link-args=-fuse-ld=mold")).is_empty());
        std::env::remove_var(VAR);
    }

    /// A directory of its own for a test, with executable scripts written into it.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rjk-cell-link-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn script(path: &Path, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A toolchain in `dir` whose rustc runs `rustc_body` and that has a rust-lld.
    fn toolchain(dir: &Path, rustc_body: &str) -> Toolchain {
        let toolchain = Toolchain { sysroot: dir.join("sysroot"), version: "1.0.0".into(), host: "x86_64-unknown-linux-gnu".into(), commit: "abc".into() };
        script(&toolchain.sysroot.join("lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld"), "exit 0");
        script(&toolchain.bin().join("rustc"), rustc_body);
        toolchain
    }

    #[test]
    fn gccs_start_files_and_directories_are_asked_of_cc() {
        let dir = scratch("discover");
        for file in ["crti.o", "crtbeginS.o", "crtendS.o", "crtn.o"] {
            std::fs::write(dir.join(file), "").unwrap();
        }
        let cc = dir.join("cc");
        let d = dir.display();
        script(&cc, &format!("case \"$1\" in\n-print-file-name=*) echo {d}/${{1#-print-file-name=}};;\n-print-search-dirs) echo 'install: /x'; echo 'libraries: ={d}:/nowhere:{d}/../{}';;\nesac", dir.file_name().unwrap().to_string_lossy()));
        let lld = dir.join("rust-lld");
        script(&lld, "exit 0");
        let args = discover(&cc, &lld).expect("found");
        let args: Vec<&str> = args.split(SEPARATOR).collect();
        assert_eq!(&args[..4], [format!("-Clinker={}", lld.display()).as_str(), "-Clinker-flavor=ld.lld", "-Clink-arg=--build-id", "-Clink-arg=--hash-style=gnu"]);
        assert_eq!(&args[4..8], ["crti.o", "crtbeginS.o", "crtendS.o", "crtn.o"].map(|f| format!("-Clink-arg={d}/{f}")));
        assert_eq!(&args[8..], [format!("-Clink-arg=-L{d}")], "directories that exist, once each");

        // A start file cc does not know (it prints the bare name): cc links.
        script(&cc, "case \"$1\" in -print-file-name=*) echo ${1#-print-file-name=};; *) echo 'libraries: =/usr/lib';; esac");
        assert_eq!(discover(&cc, &lld), None);
        assert_eq!(discover(&cc, &dir.join("no-rust-lld")), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_try_is_kept_and_cells_link_through_cc() {
        let dir = scratch("probe");
        let caches = Caches::own_only(&dir.join("cache"));
        let cc = dir.join("cc");
        std::fs::write(dir.join("crt.o"), "").unwrap();
        script(&cc, &format!("case \"$1\" in -print-file-name=*) echo {}/crt.o;; *) echo 'libraries: =/';; esac", dir.display()));
        // rustc cannot link so: "cc" is kept, and rustc is not asked again.
        let failing = toolchain(&dir, &format!("echo run >> {}/rustc-runs; exit 1", dir.display()));
        assert_eq!(prepare_with(&caches, &failing, &cc), None);
        assert_eq!(prepare_with(&caches, &failing, &cc), None);
        assert_eq!(std::fs::read_to_string(dir.join("rustc-runs")).unwrap().lines().count(), 1, "tried once");
        // Another toolchain that links: its arguments, kept.
        let dir2 = scratch("probe-ok");
        let linking = toolchain(&dir2, "touch libprobe.so");
        let args = prepare_with(&caches, &Toolchain { version: "2.0.0".into(), ..linking }, &cc).expect("links");
        assert!(args.starts_with("-Clinker=") && args.contains("crt.o"), "{args}");
        assert!(std::fs::read_dir(caches.own.join("cell-link")).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(".probe")), "no probe left");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&dir2);
    }

    #[test]
    fn kept_arguments_hold_while_their_files_are_there() {
        let dir = std::env::temp_dir().join(format!("rjk-cell-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("crti.o");
        std::fs::write(&file, "").unwrap();
        let text = format!("-Clinker-flavor=ld.lld\x1f-Clink-arg={}\x1f-Clink-arg=-L/nowhere", file.display());
        assert!(still_there(&text));
        std::fs::remove_file(&file).unwrap();
        assert!(!still_there(&text));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
