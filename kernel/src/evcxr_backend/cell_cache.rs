//! Compiled cells kept, as ccache keeps objects: a cell whose rustc call is one made before in
//! this slot (the same compiler, arguments, environment and source, the same files behind its
//! `--extern`s and the libraries it links by name, and the same bytes in every file rustc read for
//! it) gets that call's library and messages back without rustc. The source counts as the same in
//! any of the orders evcxr writes it in ([`canonical`]) when the call gave a library and no
//! messages (messages name lines); where the order differs, a panic in an item of an earlier cell
//! names the line of the order it was compiled in (a panic in the cell itself, its line in the
//! cell). "Restart and run all", a lesson run again, and the start's warm-up come back in a few
//! milliseconds instead of 100-400.
//!
//! Only on the cargo front's fast path (rustc in cargo's place, [`super::cargo_front`]), for the
//! session crate: there nothing else reads what rustc leaves beside its library. Kept in the
//! slot, `<out-dir>/../rjk-cells/<key>/`: `lib.so` (when rustc succeeded), `stdout`, `stderr`,
//! and `inputs` (the exit code, the files rustc read with the hash of their bytes, the variables
//! it read), published whole ([`crate::cache::publish`]); the newest [`KEPT`] are kept.
//! A call rustc did not finish (killed: an interrupt), or whose dependency file it did not write,
//! is not kept. `RUST_JIT_KERNEL_CELL_CACHE=off` turns it off. A call rustc compiles is over, for
//! the front, at rustc's note that it wrote the library ([`rustc_until_linked`]).

use std::ffi::{OsStr, OsString};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set to `off`: every cell is compiled by rustc.
pub const SWITCH_VAR: &str = "RUST_JIT_KERNEL_CELL_CACHE";
/// Beside the session crate's output directory.
pub const DIR: &str = "rjk-cells";
/// Entries kept per slot (each a cell's library: about 0.1-1 MB).
const KEPT: usize = 200;

/// Compiles the session crate with `rustc` and `args` (rustc's whole call, in the session
/// crate's directory), or gives back the kept result of the same call; exits with rustc's status.
/// `passed_on`: the variables that are not the call's (the cargo front's).
pub fn compile(rustc: &OsStr, args: &[OsString], passed_on: fn(&OsStr) -> bool) -> ! {
    let env = std::env::vars_os().filter(|(name, _)| !passed_on(name)).collect();
    let call = std::env::var_os(SWITCH_VAR).is_none_or(|v| v != "off").then(|| Call::of(rustc, args, env)).flatten();
    let Some(call) = call else {
        use std::os::unix::process::CommandExt;
        let error = Command::new(rustc).args(args).exec();
        eprintln!("error: could not run rustc: {error}");
        std::process::exit(1);
    };
    let outcome = call.outcome(rustc, args);
    let _ = std::io::stdout().write_all(&outcome.stdout);
    let _ = std::io::stderr().write_all(&outcome.stderr);
    std::process::exit(outcome.code.unwrap_or(101))
}

/// What a rustc call gave: its exit code (`None`: it did not run, or was killed), its output.
#[derive(Debug, PartialEq)]
struct Outcome {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// The shared object rustc writes for the session crate: `<--out-dir>/lib<crate name>.so`.
pub fn output(args: &[OsString]) -> Option<PathBuf> {
    let value = |flag: &str| args.windows(2).find(|w| w[0] == flag).and_then(|w| w[1].to_str());
    Some(Path::new(value("--out-dir")?).join(format!("lib{}.so", value("--crate-name")?)))
}

/// One rustc call, as the cache sees it.
struct Call {
    key: u64,
    /// The entries' directory.
    dir: PathBuf,
    /// rustc's library.
    output: PathBuf,
    /// The dependency file rustc writes (`--emit=dep-info`).
    dep_info: PathBuf,
    /// The environment rustc runs in, but for variables not the call's.
    env: Vec<(OsString, OsString)>,
    /// The sources keyed in any order, with the hash of their bytes as they are.
    sources: Vec<(String, String)>,
}

impl Call {
    /// `None` when the call is not one the cache knows how to see (no output directory, no
    /// dependency file asked for, or arguments that are not text).
    /// `env`: the environment rustc runs in, but for variables that are not the call's.
    fn of(rustc: &OsStr, args: &[OsString], mut env: Vec<(OsString, OsString)>) -> Option<Call> {
        let text: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
        let value = |flag: &str| text.windows(2).find(|w| w[0] == flag).map(|w| w[1]);
        let out_dir = Path::new(value("--out-dir")?);
        let krate = value("--crate-name")?;
        let emits = text.iter().filter_map(|a| a.strip_prefix("--emit=")).chain(text.windows(2).filter(|w| w[0] == "--emit").map(|w| w[1]));
        if !emits.flat_map(|e| e.split(',')).any(|kind| kind == "dep-info") {
            return None;
        }
        let extra = text.iter().find_map(|a| a.strip_prefix("extra-filename=").or_else(|| a.strip_prefix("-Cextra-filename="))).unwrap_or("");
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        rustc.hash(&mut hasher);
        stamp(&resolved(rustc)).hash(&mut hasher);
        std::env::current_dir().ok()?.hash(&mut hasher);
        args.hash(&mut hasher);
        env.sort();
        env.hash(&mut hasher);
        let (mut sources, mut dirs, mut texts) = (Vec::new(), Vec::new(), Vec::new());
        for (i, arg) in text.iter().enumerate() {
            let flag = if i > 0 { text[i - 1] } else { "" };
            if flag == "--extern" {
                if let Some((_, path)) = arg.split_once('=') {
                    stamp(Path::new(path)).hash(&mut hasher);
                }
            } else if let Some(dir) = search_dir(flag, arg) {
                dirs.push(dir);
            } else if arg.ends_with(".rs") {
                // The crate's source (or a flag's value that names a file: keyed all the same), in
                // any of evcxr's orders.
                match std::fs::read_to_string(arg) {
                    Ok(text) => {
                        canonical::pieces(&text).hash(&mut hasher);
                        sources.push((arg.to_string(), bytes_hash(Some(text.as_bytes()))));
                        texts.push(text);
                    }
                    Err(_) => std::fs::read(arg).ok().hash(&mut hasher),
                }
            }
        }
        // The libraries it links where it looks for them (the jit functions' among them).
        let names = linked(&text, &texts);
        for dir in &dirs {
            for name in &names {
                (dir, name, stamp(&dir.join(format!("lib{name}.so"))), stamp(&dir.join(format!("lib{name}.a")))).hash(&mut hasher);
            }
        }
        Some(Call {
            key: hasher.finish(),
            dir: out_dir.join("..").join(DIR),
            output: out_dir.join(format!("lib{krate}.so")),
            dep_info: out_dir.join(format!("{krate}{extra}.d")),
            env,
            sources,
        })
    }

    fn entry(&self) -> PathBuf {
        self.dir.join(format!("{:016x}", self.key))
    }

    /// The kept outcome of the call, or rustc's (then kept).
    fn outcome(&self, rustc: &OsStr, args: &[OsString]) -> Outcome {
        if let Some(kept) = self.replay() {
            return kept;
        }
        // Its absence after rustc says rustc did not write it.
        let _ = std::fs::remove_file(&self.dep_info);
        match rustc_until_linked(rustc, args) {
            Ok(outcome) => {
                if let Some(code) = outcome.code {
                    self.keep(code, &outcome.stdout, &outcome.stderr);
                }
                outcome
            }
            Err(error) => Outcome { code: None, stdout: Vec::new(), stderr: format!("error: could not run rustc: {error}\n").into_bytes() },
        }
    }

    /// The kept outcome, its library put where rustc writes it. `None` when there is none, or a
    /// file rustc read has changed since.
    fn replay(&self) -> Option<Outcome> {
        let entry = self.entry();
        let inputs: serde_json::Value = serde_json::from_slice(&std::fs::read(entry.join("inputs")).ok()?).ok()?;
        let code = inputs["code"].as_i64()? as i32;
        for file in inputs["files"].as_array()? {
            let (path, hash) = (file[0].as_str()?, file[1].as_str()?);
            match self.sources.iter().find(|(source, _)| source == path) {
                // In another order, only a library and no messages (which would name its lines).
                Some((_, now)) if now != hash && inputs["messages"].as_bool() != Some(false) => return None,
                Some(_) => {}
                None if content_hash(Path::new(path)) != hash => return None,
                None => {}
            }
        }
        for var in inputs["env"].as_array()? {
            let now = self.env.iter().find(|(name, _)| name == var[0].as_str().unwrap_or_default()).and_then(|(_, v)| v.to_str());
            if now != var[1].as_str() {
                return None;
            }
        }
        let (stdout, stderr) = (std::fs::read(entry.join("stdout")).ok()?, std::fs::read(entry.join("stderr")).ok()?);
        if code == 0 {
            crate::cache::publish(&self.output, |at| std::fs::copy(entry.join("lib.so"), at).map(drop), |e| e).ok()?;
        }
        // Newest first when entries are dropped.
        let _ = std::fs::File::options().write(true).open(entry.join("inputs")).and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Some(Outcome { code: Some(code), stdout, stderr })
    }

    /// Keeps what rustc made of the call, if it wrote its dependency file (removed before it
    /// ran); drops the oldest entries past [`KEPT`].
    fn keep(&self, code: i32, stdout: &[u8], stderr: &[u8]) {
        let Ok(deps) = std::fs::read_to_string(&self.dep_info) else { return };
        let (files, env) = read_dep_info(&deps);
        let files: Vec<serde_json::Value> = files.iter().map(|f| serde_json::json!([f, content_hash(Path::new(f))])).collect();
        // Anything but rustc's notes of what it wrote names lines of the source.
        let messages = code != 0 || !stdout.is_empty() || String::from_utf8_lossy(stderr).lines().any(|line| !line.starts_with("{\"$message_type\":\"artifact\""));
        let inputs = serde_json::json!({ "code": code, "files": files, "env": env, "messages": messages });
        let _ = std::fs::remove_dir_all(self.entry());
        let written = crate::cache::publish(
            &self.entry(),
            |at| {
                std::fs::create_dir_all(at)?;
                if code == 0 {
                    std::fs::copy(&self.output, at.join("lib.so"))?;
                }
                std::fs::write(at.join("stdout"), stdout)?;
                std::fs::write(at.join("stderr"), stderr)?;
                std::fs::write(at.join("inputs"), inputs.to_string())
            },
            |e| e,
        );
        if written.is_err() {
            return;
        }
        drop_oldest(&self.dir, KEPT);
    }
}

/// rustc's note that it wrote the library (`--json=artifacts`): the linker has ended, and nothing
/// is left of a compile that went this far but its incremental session finalized and its
/// memory freed.
fn wrote_library(stderr: &[u8]) -> bool {
    stderr.split(|b| *b == b'\n').any(|line| line.starts_with(b"{\"$message_type\":\"artifact\"") && line.windows(14).any(|w| w == b"\"emit\":\"link\"}"))
}

/// Runs rustc (a fork of the session's zygote: [`super::rustc_zygote`]) and gives its outcome as soon as it has written the library ([`wrote_library`]): ~5 ms
/// before it ends, which a child of this process waits out, reading whatever rustc still writes
/// (so that rustc never writes to a closed pipe); without that note, when rustc ends.
fn rustc_until_linked(rustc: &OsStr, args: &[OsString]) -> std::io::Result<Outcome> {
    use std::os::fd::AsRawFd;
    let child = super::rustc_zygote::spawn(rustc, args)?;
    let mut fds = [child.stdout.as_raw_fd(), child.stderr.as_raw_fd()];
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut buffer = [0u8; 65536];
    while fds.iter().any(|fd| *fd >= 0) {
        let mut polled = fds.map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
        // SAFETY: polling two descriptors this process holds (a negative one is skipped).
        if unsafe { libc::poll(polled.as_mut_ptr(), 2, -1) } < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(std::io::Error::last_os_error());
        }
        for (i, p) in polled.iter().enumerate().filter(|(_, p)| p.fd >= 0 && p.revents != 0) {
            // SAFETY: reading into a live buffer from a descriptor this process holds.
            let n = unsafe { libc::read(p.fd, buffer.as_mut_ptr().cast(), buffer.len()) };
            match n {
                n if n > 0 => (if i == 0 { &mut stdout } else { &mut stderr }).extend_from_slice(&buffer[..n as usize]),
                n if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
                _ => fds[i] = -1,
            }
        }
        if fds[1] >= 0 && stderr.ends_with(b"\n") && wrote_library(&stderr) {
            drain_in_background(fds);
            return Ok(Outcome { code: Some(0), stdout, stderr });
        }
    }
    Ok(Outcome { code: child.wait()?, stdout, stderr })
}

/// Reads `fds` to their end in a child of this process that holds nothing else (so that whoever
/// reads this process's output sees its end when this process ends); here when there can be
/// no child.
fn drain_in_background(fds: [i32; 2]) {
    let drain = || {
        let mut buffer = [0u8; 4096];
        for fd in fds.into_iter().filter(|fd| *fd >= 0) {
            // SAFETY: reading into a live buffer until the end (or an error).
            while unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) } > 0 {}
        }
    };
    // SAFETY: the child only reads, closes and exits (no allocation, no lock: another thread of
    // this process, rust-analyzer's parser's, may hold one).
    match unsafe { libc::fork() } {
        0 => unsafe {
            // Not `cargo`: the kernel adopts it when the front ends, and it is no compile of a
            // cell to an interrupt (`interrupt::kill_compiles`).
            libc::prctl(libc::PR_SET_NAME, c"rjk-drain".as_ptr());
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            // Every other descriptor (`close_range`, Linux 5.9; where it fails they stay open).
            let mut from = 3;
            for fd in [fds[0].min(fds[1]), fds[0].max(fds[1]), i32::MAX].into_iter().filter(|fd| *fd >= 3) {
                if fd > from {
                    libc::syscall(libc::SYS_close_range, from as u32, (fd - 1) as u32, 0u32);
                }
                from = fd.saturating_add(1);
            }
            drain();
            libc::_exit(0)
        },
        -1 => drain(),
        _ => {}
    }
}

/// The directory of a library search path that is not cargo's own (`-L dependency=`, whose
/// files change with every build and are stamped through the `--extern`s that use them): where
/// the libraries the call links ([`linked`]) are stamped.
fn search_dir(flag: &str, arg: &str) -> Option<PathBuf> {
    let spec = if flag == "-L" { arg } else { arg.strip_prefix("-L")? };
    if flag == "-L" && arg.starts_with('-') {
        return None;
    }
    let path = match spec.split_once('=') {
        Some((kind, path)) if ["native", "all", "crate", "framework"].contains(&kind) => path,
        Some(("dependency", _)) => return None,
        _ => spec,
    };
    Some(PathBuf::from(path))
}

/// The native libraries a call links by name: `-l [KIND[:MODIFIERS]=]NAME[:RENAME]` in its
/// arguments, `#[link(name = "NAME")]` in its sources (how a cell calls a jit function), sorted.
fn linked(args: &[&str], sources: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        let spec = if *arg == "-l" { args.get(i + 1).copied() } else { arg.strip_prefix("-l").filter(|s| !s.is_empty()) };
        if let Some(spec) = spec {
            let name = spec.rsplit_once('=').map_or(spec, |(_, name)| name);
            names.push(name.split(':').next().unwrap_or(name).to_string());
        }
    }
    for text in sources {
        for (_, rest) in text.match_indices("link(name = \"").map(|(at, m)| (at, &text[at + m.len()..])) {
            names.extend(rest.split_once('"').map(|(name, _)| name.to_string()));
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Size, modification time and inode of a file.
fn stamp(path: &Path) -> Option<(u64, i64, i64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.mtime() * 1_000_000_000 + meta.mtime_nsec(), meta.ino() as i64))
}

/// `rustc` as a file: itself when it names one, else found on `PATH`.
fn resolved(rustc: &OsStr) -> PathBuf {
    let named = Path::new(rustc);
    if named.components().count() > 1 {
        return named.to_path_buf();
    }
    crate::setup::on_path(named).unwrap_or_else(|| named.to_path_buf())
}

fn content_hash(path: &Path) -> String {
    bytes_hash(std::fs::read(path).ok().as_deref())
}

/// The hash of a file's bytes (`None`: it could not be read), as entries write it.
fn bytes_hash(bytes: Option<&[u8]>) -> String {
    format!("{:016x}", crate::cache::key(&bytes))
}

/// The files and variables a dependency file (make's syntax, as rustc writes it) says were read:
/// every prerequisite, and `# env-dep:NAME[=VALUE]` lines (the value `null` when unset).
fn read_dep_info(text: &str) -> (Vec<String>, Vec<serde_json::Value>) {
    let mut files: Vec<String> = Vec::new();
    let mut env = Vec::new();
    for line in text.lines() {
        if let Some(var) = line.strip_prefix("# env-dep:") {
            let (name, value) = var.split_once('=').map_or((var, None), |(n, v)| (n, Some(v)));
            env.push(serde_json::json!([name, value]));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some(colon) = target_end(line) else { continue };
        let mut word = String::new();
        let mut chars = line[colon + 1..].chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek().is_some_and(|n| *n == ' ' || *n == '\\' || *n == '#' || *n == ':') => word.push(chars.next().unwrap_or(' ')),
                ' ' | '\t' => {
                    if !word.is_empty() && !files.contains(&word) {
                        files.push(std::mem::take(&mut word));
                    }
                    word.clear();
                }
                _ => word.push(c),
            }
        }
        if !word.is_empty() && !files.contains(&word) {
            files.push(word);
        }
    }
    (files, env)
}

/// Where a rule's target ends: the first `:` not escaped and followed by a space or the line's end.
fn target_end(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    (0..bytes.len()).find(|&i| bytes[i] == b':' && (i == 0 || bytes[i - 1] != b'\\') && bytes.get(i + 1).is_none_or(|b| *b == b' ' || *b == b'\t'))
}

/// Removes all but the `kept` entries of `dir` most recently kept or replayed.
fn drop_oldest(dir: &Path, kept: usize) {
    let mut entries: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((std::fs::metadata(e.path().join("inputs")).ok()?.modified().ok()?, e.path())))
        .collect();
    if entries.len() <= kept {
        return;
    }
    entries.sort();
    for (_, path) in &entries[..entries.len() - kept] {
        let _ = std::fs::remove_dir_all(path);
    }
}

mod canonical;

#[cfg(test)]
mod tests;
