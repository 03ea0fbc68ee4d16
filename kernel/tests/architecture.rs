//! The invariants ARCHITECTURE.md states about which module knows what, checked on the sources:
//! each rule names the only files whose code (not comments, not tests) may use a crate or an
//! API. A new file that needs one belongs in the module that owns it.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// Every `.rs` file under `dir`, relative to the workspace.
fn sources(dir: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut stack = vec![workspace().join(dir)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(workspace()).unwrap().to_string_lossy().into_owned();
                found.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    assert!(!found.is_empty(), "no sources under {dir}");
    found
}

/// The code of a file: without comments and without its tests (a `tests.rs` file, or what
/// follows `#[cfg(test)]`).
fn code(path: &str, text: &str) -> String {
    if path.ends_with("/tests.rs") || path.ends_with("/testing.rs") {
        return String::new();
    }
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Files under `dir` whose code contains any of `needles`, except those starting with one of `allowed`.
fn offenders(dir: &str, needles: &[&str], allowed: &[&str]) -> Vec<String> {
    sources(dir)
        .into_iter()
        .filter(|(path, _)| !allowed.iter().any(|a| path.starts_with(a)))
        .filter(|(path, text)| needles.iter().any(|n| code(path, text).contains(n)))
        .map(|(path, _)| path)
        .collect()
}

#[test]
fn only_the_transport_knows_zeromq() {
    assert_eq!(offenders("kernel/src", &["zeromq", "jupyter_zmq_client"], &["kernel/src/transport.rs"]), Vec::<String>::new());
}

#[test]
fn only_the_evcxr_backend_knows_evcxr() {
    // `main` hands the process to `evcxr::runtime_hook()` first thing (the rustc wrapper role).
    let allowed = ["kernel/src/evcxr_backend", "kernel/src/main.rs", "kernel/src/user_process"];
    assert_eq!(offenders("kernel/src", &["evcxr::", "EVCXR_", "CommandContext"], &allowed), Vec::<String>::new());
    // The user process replaces evcxr's runtime loop: it speaks evcxr's line protocol (its
    // `EVCXR_` lines), without the crate.
    assert_eq!(offenders("kernel/src/user_process", &["evcxr::", "CommandContext"], &[]), Vec::<String>::new());
    let main = std::fs::read_to_string(workspace().join("kernel/src/main.rs")).unwrap();
    assert_eq!(code("kernel/src/main.rs", &main).matches("evcxr::").count(), 1, "main uses evcxr only for runtime_hook");
}

#[test]
fn magics_know_no_sockets_and_no_evcxr() {
    assert_eq!(offenders("magics/src", &["evcxr", "EVCXR", "zeromq", "jupyter_protocol"], &[]), Vec::<String>::new());
}

#[test]
fn only_the_cuda_module_knows_cudarc() {
    assert_eq!(offenders("kernel/src", &["cudarc"], &["kernel/src/cuda/"]), Vec::<String>::new());
}

#[test]
fn the_dispatch_core_knows_no_backend_but_the_trait() {
    let engines = ["evcxr_backend", "EvcxrBackend", "jit::", "JitBackend", "cudarc", "std::process"];
    let core = ["kernel/src/dispatch.rs", "kernel/src/cell.rs", "kernel/src/history.rs"];
    let found: Vec<String> = sources("kernel/src")
        .into_iter()
        .filter(|(path, text)| core.contains(&path.as_str()) && engines.iter().any(|e| code(path, text).contains(e)))
        .map(|(path, _)| path)
        .collect();
    assert_eq!(found, Vec::<String>::new());
}

#[test]
fn busy_and_idle_are_published_in_one_place() {
    let found: Vec<(String, usize)> = sources("kernel/src")
        .into_iter()
        .map(|(path, text)| {
            let code = code(&path, &text);
            (path, code.matches("Status::busy()").count() + code.matches("Status::idle()").count())
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(found, [("kernel/src/dispatch.rs".to_string(), 2)]);
}

#[test]
fn jit_codegen_is_pure() {
    let io = ["std::fs", "std::process", "std::env", "std::net", "File::"];
    assert_eq!(offenders("jit/codegen/src", &io, &[]), Vec::<String>::new());
}

#[test]
fn the_cache_is_written_in_one_place() {
    // Temporary names and renames into place: only `cache::publish` does that.
    assert_eq!(offenders("kernel/src", &["fs::rename", ".tmp\""], &["kernel/src/cache.rs"]), Vec::<String>::new());
}

#[test]
fn no_module_grows_past_600_lines() {
    for (path, text) in sources("kernel/src") {
        assert!(text.lines().count() <= 600, "{path} has {} lines: it has two jobs, split it", text.lines().count());
    }
}
