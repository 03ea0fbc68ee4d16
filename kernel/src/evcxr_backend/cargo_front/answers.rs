//! Answers to what rust-analyzer asks cargo about the session crate.
//!
//! When evcxr's rust-analyzer loads the session crate (at every kernel start, and after a `:dep`),
//! it asks cargo seven questions, most of them one after another: `locate-project`, `config get`,
//! `--version`, `metadata` (twice), `rustc --print target-spec-json` and `rustc --print cfg`, each a
//! cargo start and some of them rustc's, ~0.45 s of a start on 2 cores. Between two starts the
//! answers are the same. The front keeps each answer cargo gave with success, in the cache, under a
//! key of what cargo read to give it ([`key`]), and gives it again while that holds.
//!
//! The key: the arguments, the working directory, the environment cargo and rustc read (names that
//! start with `CARGO`, `RUST` or `RJK_`, and `PATH`, `HOME`; rust-analyzer's copy of the lock file,
//! `CARGO_RESOLVER_LOCKFILE_PATH`, a new temporary file each time, by its bytes), the bytes of the
//! files cargo reads (the manifest, the lock file, every cargo configuration file that applies,
//! the manifests of path dependencies), the real cargo and rustc (their size and time), and this
//! binary. Registry packages never change once downloaded, so their manifests are not in it.

use std::ffi::{OsStr, OsString};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory of the answers (`<cache>/cargo-answers`), set by [`super::prepare`]; without it
/// every question goes to cargo.
pub const DIR_VAR: &str = "RJK_CARGO_ANSWERS";
/// rust-analyzer's temporary copy of the lock file, which `metadata` reads instead of `Cargo.lock`.
const LOCKFILE_VAR: &str = "CARGO_RESOLVER_LOCKFILE_PATH";
/// How deep path dependencies of path dependencies are followed.
const PATH_DEPTH: usize = 4;

/// Whether cargo is asked something that builds nothing and writes nothing that matters: the
/// commands rust-analyzer runs.
pub fn is_question(args: &[OsString]) -> bool {
    let words: Option<Vec<&str>> = args.iter().map(|a| a.to_str()).collect();
    let Some(words) = words else { return false };
    let mut rest = &words[..];
    while let ["-Z", _, tail @ ..] = rest {
        rest = tail;
    }
    match rest {
        ["--version"] | ["-V"] | ["locate-project", ..] | ["metadata", ..] | ["config", "get", ..] => true,
        // `--print` of cargo's, not after `--` (rustc's, with the dependencies built first).
        ["rustc", tail @ ..] => tail.iter().take_while(|w| **w != "--").any(|w| *w == "--print" || w.starts_with("--print=")),
        _ => false,
    }
}

/// Answers a question ([`is_question`]) from `answers` (the directory), or asks the real cargo
/// and keeps its answer when it succeeded; returns what cargo printed and its exit status.
pub fn answer(real: &OsStr, args: &[OsString], dir: &Path, answers: &Path) -> (Answer, i32) {
    let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let file = answers.join(format!("{:016x}.json", key(args, dir, &env, Path::new(real))));
    if let Some(kept) = Answer::load(&file) {
        return (kept, 0);
    }
    match Command::new(real).args(args).current_dir(dir).output() {
        Ok(output) => {
            let got = Answer { stdout: output.stdout, stderr: output.stderr };
            if output.status.success() {
                got.keep(&file);
            }
            (got, output.status.code().unwrap_or(101))
        }
        Err(error) => {
            let message = format!("error: could not run cargo ({}): {error}\n", Path::new(real).display());
            (Answer { stdout: Vec::new(), stderr: message.into_bytes() }, 101)
        }
    }
}

/// What cargo printed.
#[derive(Debug, PartialEq)]
pub struct Answer {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Answer {
    fn load(file: &Path) -> Option<Answer> {
        let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
        let text = |name: &str| saved[name].as_str().map(|s| s.as_bytes().to_vec());
        Some(Answer { stdout: text("stdout")?, stderr: text("stderr")? })
    }

    /// Kept only as text (cargo's answers are UTF-8); published whole, so a reader never sees half.
    fn keep(&self, file: &Path) {
        let (Ok(stdout), Ok(stderr)) = (std::str::from_utf8(&self.stdout), std::str::from_utf8(&self.stderr)) else { return };
        let json = serde_json::json!({ "stdout": stdout, "stderr": stderr }).to_string();
        let _ = crate::cache::publish(file, |staging| std::fs::write(staging, &json), |e| e);
    }

    /// Prints it as cargo did.
    pub fn give(&self) {
        let _ = std::io::stdout().write_all(&self.stdout);
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().write_all(&self.stderr);
    }
}

/// The key of an answer (see the module's documentation). `env`: the process's environment;
/// `real`: the real cargo.
fn key(args: &[OsString], dir: &Path, env: &[(OsString, OsString)], real: &Path) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    "cargo-answers-1".hash(&mut hasher);
    let stamp = |path: &Path| std::fs::metadata(path).ok().map(|m| (m.len(), m.modified().ok()));
    std::env::current_exe().ok().as_deref().map(stamp).hash(&mut hasher);
    stamp(real).hash(&mut hasher);
    stamp(&real.with_file_name("rustc")).hash(&mut hasher);
    args.hash(&mut hasher);
    dir.hash(&mut hasher);
    let mut read: Vec<(&OsString, &OsString)> = env.iter().filter(|(name, _)| cargo_reads(name)).map(|(k, v)| (k, v)).collect();
    read.sort();
    for (name, value) in read {
        name.hash(&mut hasher);
        if name == LOCKFILE_VAR {
            std::fs::read(value).ok().hash(&mut hasher);
        } else {
            value.hash(&mut hasher);
        }
    }
    let mut files = super::cargo_files(dir, env);
    let manifests: Vec<PathBuf> = args.windows(2).filter(|w| w[0] == "--manifest-path").map(|w| dir.join(&w[1])).collect();
    for manifest in manifests.iter().chain([dir.join("Cargo.toml")].iter()) {
        files.push(manifest.with_file_name("Cargo.lock"));
        files.extend(path_manifests(manifest));
    }
    files.extend(manifests);
    for file in files {
        file.hash(&mut hasher);
        std::fs::read(&file).ok().hash(&mut hasher);
    }
    hasher.finish()
}

/// The variables cargo (and the rustc it asks) may read.
fn cargo_reads(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    ["CARGO", "RUST", "RJK_"].iter().any(|prefix| name.starts_with(prefix)) || name == "PATH" || name == "HOME"
}

/// The manifest itself and those of its path dependencies (`path = "..."` naming a directory with a
/// `Cargo.toml`), and theirs, [`PATH_DEPTH`] deep.
fn path_manifests(manifest: &Path) -> Vec<PathBuf> {
    let mut found = vec![manifest.to_path_buf()];
    let mut next = 0;
    for _ in 0..PATH_DEPTH {
        let end = found.len();
        for index in next..end {
            let text = std::fs::read_to_string(&found[index]).unwrap_or_default();
            let base = found[index].parent().map(Path::to_path_buf).unwrap_or_default();
            for value in path_values(&text) {
                let candidate = base.join(value).join("Cargo.toml");
                if candidate.is_file() && !found.contains(&candidate) {
                    found.push(candidate);
                }
            }
        }
        next = end;
    }
    found
}

/// The values of `path = "..."` in a manifest's text (in tables and inline tables alike).
fn path_values(text: &str) -> Vec<&str> {
    let mut values = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("path") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + 4..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-') {
            continue;
        }
        let Some(value) = rest.trim_start().strip_prefix('=').map(str::trim_start) else { continue };
        let Some(value) = value.strip_prefix('"') else { continue };
        if let Some(end) = value.find('"') {
            values.push(&value[..end]);
        }
    }
    values
}

#[cfg(test)]
mod tests;
