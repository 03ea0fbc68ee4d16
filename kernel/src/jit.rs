//! `#[jit]`: compiles each function in a crate of its own with full optimisation, by calling
//! rustc directly, and caches the result by content.
//!
//! The crate is a shared library (`<cache>/jit/lib/lib<crate>.so`) that links the runtime
//! (`jit`, with ndarray and rayon) built once by cargo in release mode with
//! `-Ctarget-cpu=native` (`<cache>/jit/runtime/<hash>`: no debug assertions in ndarray's or
//! the runtime's code either), and std dynamically, as cells do. The cells' own build of the
//! same crates (a debug build at opt-level 3) has the same types, field for field: same
//! sources, features and compiler. It exports one `#[no_mangle]` function;
//! cells call it through a wrapper with the same signature (see
//! [`jit_codegen::JitFn::cell_wrapper`]), linked with `-l`. Cells never depend on the crate
//! itself, so evcxr's `cargo check` and rust-analyzer see only the signature.
//! Knows nothing of evcxr's internals beyond the build directory layout.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use jit_codegen::{CodegenError, CrateSource, JitFn};
use serde_json::Value;

use crate::backend::CellError;
use crate::diagnostics::{self, CellSpan, Diagnostic};

/// rustc's flags for a jit crate (part of the cache key).
const FLAGS: [&str; 10] = [
    "-Cprefer-dynamic",
    "-Copt-level=3",
    "-Cdebug-assertions=off",
    "-Coverflow-checks=off",
    "-Ctarget-cpu=native",
    // On CPUs with AVX-512, 256-bit vectors (LLVM's choice for most of them already):
    // 3-5% faster on the lesson's array loops on this machine's AMD EPYC.
    RUNTIME_TARGET_TUNING,
    "-Ccodegen-units=1",
    "-Cdebuginfo=0",
    "-Cembed-bitcode=no",
    "-Cpanic=unwind",
];

/// See [`FLAGS`].
const RUNTIME_TARGET_TUNING: &str = "-Ctarget-feature=+prefer-256-bit";

/// The runtime's sources, written to the cache for evcxr's cargo to build as a path dependency.
const RUNTIME_FILES: [(&str, &str); 7] = [
    ("Cargo.toml", include_str!("../../jit/runtime/Cargo.toml")),
    ("src/cuda.rs", include_str!("../../jit/runtime/src/cuda.rs")),
    ("src/lib.rs", include_str!("../../jit/runtime/src/lib.rs")),
    ("src/ops.rs", include_str!("../../jit/runtime/src/ops.rs")),
    ("src/par.rs", include_str!("../../jit/runtime/src/par.rs")),
    ("src/pool.rs", include_str!("../../jit/runtime/src/pool.rs")),
    ("src/ufunc.rs", include_str!("../../jit/runtime/src/ufunc.rs")),
];

/// Writes the runtime crate under `<cache>/runtime/<content hash>` (once) and returns its path.
pub fn write_runtime(cache: &Path) -> std::io::Result<PathBuf> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    RUNTIME_FILES.hash(&mut hasher);
    let dir = cache.join("runtime").join(format!("{:016x}", hasher.finish()));
    if !dir.join("Cargo.toml").exists() {
        let staging = cache.join("runtime").join(format!(".staging-{}", std::process::id()));
        for (name, text) in RUNTIME_FILES {
            let path = staging.join(name);
            std::fs::create_dir_all(path.parent().expect("a file in a folder"))?;
            std::fs::write(path, text)?;
        }
        if std::fs::rename(&staging, &dir).is_err() {
            // Another kernel wrote it first.
            let _ = std::fs::remove_dir_all(&staging);
        }
    }
    Ok(dir)
}

/// One compiled function.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub name: String,
    /// The wrapper cells call (see [`jit_codegen::JitFn::cell_wrapper`]).
    pub wrapper: String,
    /// Seconds rustc took; `None` when it came from the cache.
    pub seconds: Option<f64>,
    /// `#[vectorize(target = "cuda")]`: what NVRTC did (see [`crate::cuda::Image::report`]).
    pub device: Option<String>,
}

impl Compiled {
    /// The line the cell prints.
    pub fn report(&self) -> String {
        let line = match self.seconds {
            Some(s) => format!("jit: compiled {} in {s:.2} s", self.name),
            None => format!("jit: {} from the cache", self.name),
        };
        match &self.device {
            Some(device) => format!("{device}\n{line}"),
            None => line,
        }
    }

}

/// The session's jit functions and how to compile more.
pub struct JitCompiler {
    cache: PathBuf,
    rustc: PathBuf,
    host: String,
    /// Where compiled crates go (and where cells look for them).
    lib_dir: PathBuf,
    cargo: PathBuf,
    /// The runtime's sources (see [`write_runtime`]).
    runtime_src: PathBuf,
    /// Cargo's target directory for the release build of the runtime.
    runtime_target: PathBuf,
    /// The session's jit functions by name, with their crates.
    functions: BTreeMap<String, (JitFn, String)>,
    linker: Option<String>,
    /// The session's `use` items (only those a jit function may use are passed on).
    uses: Vec<String>,
}

impl JitCompiler {
    /// `runtime_src` is where [`write_runtime`] put the runtime; `bin` the toolchain's `bin`;
    /// `toolchain` names the toolchain (its release build of the runtime is its own).
    pub fn new(cache: &Path, runtime_src: &Path, bin: &Path, host: &str, toolchain: &str) -> Self {
        let lib_dir = cache.join("jit").join("lib");
        // Cells search it from the start.
        let _ = std::fs::create_dir_all(&lib_dir);
        let tool = |name: &str| if bin.join(name).exists() { bin.join(name) } else { PathBuf::from(name) };
        let hash = runtime_src.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        JitCompiler {
            cache: cache.to_path_buf(),
            rustc: tool("rustc"),
            cargo: tool("cargo"),
            host: host.to_string(),
            lib_dir,
            runtime_src: runtime_src.to_path_buf(),
            runtime_target: cache.join("jit").join("runtime").join(format!("{hash}-{toolchain}-{}", cpu_id())),
            functions: BTreeMap::new(),
            uses: Vec::new(),
            linker: find_mold().map(|_| "-Clink-arg=-fuse-ld=mold".to_string()),
        }
    }

    /// The directory cells search for compiled functions.
    pub fn lib_dir(&self) -> &Path {
        &self.lib_dir
    }

    pub fn is_jit(&self, name: &str) -> bool {
        self.functions.contains_key(name)
    }

    fn release_dir(&self) -> PathBuf {
        self.runtime_target.join(&self.host).join("release")
    }

    pub fn runtime_built(&self) -> bool {
        self.release_dir().join("libjit.rlib").exists()
    }

    /// The release build of the runtime, built now if it is not there (once per runtime
    /// version and toolchain: about a minute; `install` does it ahead).
    pub fn runtime_rlib(&self) -> Result<PathBuf, CellError> {
        let rlib = self.release_dir().join("libjit.rlib");
        if rlib.exists() {
            return Ok(rlib);
        }
        let build = |offline: bool| {
            let mut command = std::process::Command::new(&self.cargo);
            command
                .args(["build", "--release", "--quiet", "--target", &self.host, "--manifest-path"])
                .arg(self.runtime_src.join("Cargo.toml"))
                .env("CARGO_TARGET_DIR", &self.runtime_target)
                .env("RUSTFLAGS", format!("-Ctarget-cpu=native {RUNTIME_TARGET_TUNING}"))
                .env_remove("RUSTC_WRAPPER");
            if offline {
                command.arg("--offline");
            }
            command.output()
        };
        // The crates are in cargo's cache after the session's own build: no network needed.
        // Not again after an interrupt (cargo killed by a signal).
        let output = match build(true) {
            Ok(out) if out.status.success() || std::os::unix::process::ExitStatusExt::signal(&out.status).is_some() => Ok(out),
            _ => build(false),
        };
        match output {
            Ok(out) if out.status.success() && rlib.exists() => Ok(rlib),
            Ok(out) => Err(CellError::new(
                "JitError",
                format!("building the jit runtime failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
            )),
            Err(e) => Err(CellError::new("JitError", format!("could not run cargo to build the jit runtime: {e}"))),
        }
    }

    /// Remembers the `use` items of a cell that compiled, for the jit functions compiled after
    /// it. A later `use` of a name replaces the earlier one (as in evcxr).
    pub fn add_uses(&mut self, uses: &[String]) {
        self.uses = merged_uses(&self.uses, uses);
    }

    /// Compiles `function` (or finds it in the cache). `known` tells whether a name is defined
    /// in the session outside jit functions (for the nopython error); `cell` is the cell text.
    /// `cell_uses` are the cell's own `use` items (remembered with [`Self::add_uses`] once the
    /// cell has compiled).
    pub fn compile(&mut self, function: &JitFn, cell: &str, cell_uses: &[String], known: &dyn Fn(&str) -> bool) -> Result<Compiled, CellError> {
        let runtime = self.runtime_rlib()?;
        // A cuda ufunc's kernel first: its crate embeds the image.
        let with_image;
        let mut device = None;
        let function = match function.vectorize.as_ref().and_then(|u| u.cuda.as_ref()) {
            Some(cuda) => {
                let image = crate::cuda::build(cuda, cell, &self.cache)?;
                device = Some(image.report(&function.name));
                let mut f = function.clone();
                f.vectorize.as_mut().expect("a ufunc").device_image = Some(match image {
                    crate::cuda::Image::Ready { path, .. } => Ok(path.display().to_string()),
                    crate::cuda::Image::Unavailable(why) => Err(why),
                });
                with_image = f;
                &with_image
            }
            None => function,
        };
        let deps = self.dependencies(function);
        let uses = merged_uses(&self.uses, cell_uses);
        let draft = jit_codegen::crate_source(function, "KRATE", &deps, &uses);
        // Crate and symbol names are ASCII whatever the function's name.
        let ascii: String = function.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
        let krate = format!("jit_{ascii}_{:016x}", self.key(&draft.text, &runtime));
        let source = jit_codegen::crate_source(function, &krate, &deps, &uses);
        let library = self.lib_dir.join(format!("lib{krate}.so"));
        let mut compiled = Compiled { name: function.name.clone(), wrapper: function.cell_wrapper(&krate), seconds: None, device };
        if !library.exists() {
            let started = Instant::now();
            self.rustc(&krate, &source, &runtime, &library).map_err(|stderr| self.error(&stderr, &krate, function, &source, cell, known))?;
            compiled.seconds = Some(started.elapsed().as_secs_f64());
        }
        self.functions.insert(function.name.clone(), (function.clone(), krate));
        Ok(compiled)
    }

    /// The session's jit functions `function` calls, directly or through others (their
    /// current definitions), each once.
    fn dependencies(&self, function: &JitFn) -> Vec<&JitFn> {
        let mut found: Vec<&JitFn> = Vec::new();
        let mut queue: Vec<&String> = function.references.iter().collect();
        while let Some(name) = queue.pop() {
            if *name == function.name || found.iter().any(|f| f.name == *name) {
                continue;
            }
            if let Some((dep, _)) = self.functions.get(name) {
                found.push(dep);
                queue.extend(dep.references.iter());
            }
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        found
    }

    /// The content key of a crate: its source, the runtime it links, rustc and the flags.
    fn key(&self, source: &str, runtime: &Path) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        source.hash(&mut hasher);
        FLAGS.hash(&mut hasher);
        cpu_id().hash(&mut hasher);
        self.rustc.hash(&mut hasher);
        if let Ok(meta) = std::fs::metadata(&self.rustc) {
            (meta.len(), meta.modified().ok()).hash(&mut hasher);
        }
        runtime.hash(&mut hasher);
        if let Ok(meta) = std::fs::metadata(runtime) {
            (meta.len(), meta.modified().ok()).hash(&mut hasher);
        }
        hasher.finish()
    }

    /// Runs rustc; on failure returns its stderr (JSON diagnostics).
    fn rustc(&self, krate: &str, source: &CrateSource, runtime: &Path, library: &Path) -> Result<(), String> {
        let io = |e: std::io::Error| format!("{{\"message\":\"could not run rustc: {e}\",\"level\":\"error\"}}");
        std::fs::create_dir_all(&self.lib_dir).map_err(io)?;
        let unique = format!("{krate}.{}", std::process::id());
        let src = self.lib_dir.join(format!("{unique}.rs"));
        let out = self.lib_dir.join(format!("{unique}.so.tmp"));
        std::fs::write(&src, &source.text).map_err(io)?;
        let mut command = std::process::Command::new(&self.rustc);
        command
            .args(["--edition", "2021", "--crate-type", "cdylib", "--crate-name", krate, "--error-format=json", "--target", &self.host])
            .args(FLAGS)
            .args(&self.linker)
            .arg("-L")
            .arg(format!("dependency={}", self.release_dir().join("deps").display()))
            .arg("--extern")
            .arg(format!("jit={}", runtime.display()));
        let output = command.arg("-o").arg(&out).arg(&src).output().map_err(io)?;
        let _ = std::fs::remove_file(&src);
        if !output.status.success() {
            let _ = std::fs::remove_file(&out);
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        std::fs::rename(&out, library).map_err(io)
    }

    /// rustc's errors against the cell's lines; a name from outside the jit world becomes the
    /// nopython error.
    fn error(&self, stderr: &str, krate: &str, function: &JitFn, source: &CrateSource, cell: &str, known: &dyn Fn(&str) -> bool) -> CellError {
        let diagnostics: Vec<Diagnostic> = stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["level"] == "error" && !v["message"].as_str().is_some_and(|m| m.starts_with("aborting due to")))
            .map(|v| diagnostic(&v, krate, function, source))
            .collect();
        if let Some(name) = diagnostics.iter().find_map(|d| unresolved_name(d).filter(|n| known(n) && !self.is_jit(n))) {
            let evalue = format!(
                "`{name}` is defined in a plain cell, and #[jit] function `{}` cannot use it: a #[jit] function \
                 may use only std, ndarray, rayon, the jit runtime and other #[jit] functions. \
                 Mark `{name}` with #[jit] too, or pass it to `{}` as an argument.",
                function.name, function.name
            );
            let mut error = diagnostics::compile_error(&diagnostics, cell);
            error.traceback.insert(0, format!("\x1b[1;31mJitError\x1b[0m: {evalue}"));
            return CellError { ename: "JitError".to_string(), evalue, traceback: error.traceback };
        }
        if diagnostics.is_empty() {
            return CellError::new("JitError", format!("rustc failed to compile `{}`: {}", function.name, stderr.trim()));
        }
        diagnostics::compile_error(&diagnostics, cell)
    }
}

/// Names the runtime's prelude brings into scope (ndarray 0.17's prelude, the runtime's own,
/// the re-exported crates).
const RUNTIME_NAMES: &[&str] = &[
    "ArcArray", "Array", "ArrayBase", "ArrayRef", "ArrayView", "ArrayViewMut", "CowArray", "LayoutRef", "RawArrayView",
    "RawArrayViewMut", "RawRef", "Axis", "Dim", "Dimension", "ArrayRef0", "ArrayRef1", "ArrayRef2", "ArrayRef3",
    "ArrayRef4", "ArrayRef5", "ArrayRef6", "ArrayRefD", "Array0", "Array1", "Array2", "Array3", "Array4", "Array5",
    "Array6", "ArrayD", "ArrayView0", "ArrayView1", "ArrayView2", "ArrayView3", "ArrayView4", "ArrayView5",
    "ArrayView6", "ArrayViewD", "ArrayViewMut0", "ArrayViewMut1", "ArrayViewMut2", "ArrayViewMut3", "ArrayViewMut4",
    "ArrayViewMut5", "ArrayViewMut6", "ArrayViewMutD", "Ix0", "Ix1", "Ix2", "Ix3", "Ix4", "Ix5", "Ix6", "IxDyn",
    "arr0", "arr1", "arr2", "aview0", "aview1", "aview2", "aview_mut1", "array", "azip", "s", "ShapeBuilder",
    "NewAxis", "AsArray", "NdFloat", "prange", "num_threads", "ndarray", "rayon", "jit", "cuda", "to_device",
    "DeviceArray",
];

/// Whether `code` names something from the runtime's prelude (words in strings and comments
/// count too: a false yes only imports the prelude early).
pub fn uses_runtime(code: &str) -> bool {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|word| RUNTIME_NAMES.contains(&word))
}

/// This CPU (model and feature flags), for cache keys: code built with `-Ctarget-cpu=native`
/// may not run on another CPU sharing the cache (a home directory on a cluster).
fn cpu_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| info.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_string();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (field("model name"), field("flags")).hash(&mut hasher);
        format!("{:08x}", hasher.finish() as u32)
    })
    .clone()
}

/// `earlier` with `later` added; an item that imports a name an earlier one imported replaces
/// it. Only items a jit function may use (rooted in std, core, alloc, ndarray, rayon, jit).
fn merged_uses(earlier: &[String], later: &[String]) -> Vec<String> {
    let mut out: Vec<String> = earlier.to_vec();
    for item in later {
        let allowed = jit_codegen::use_root(item).is_some_and(|r| jit_codegen::ALLOWED_ROOTS.contains(&r.as_str()));
        if !allowed {
            continue;
        }
        let names = jit_codegen::use_names(item);
        out.retain(|old| old != item && jit_codegen::use_names(old).is_disjoint(&names));
        out.push(item.clone());
    }
    out
}

/// mold, when installed (evcxr links cells with it too).
fn find_mold() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join("mold")).find(|p| p.is_file())
}

/// Error codes rustc gives a name it cannot find.
const UNRESOLVED: [&str; 7] = ["E0425", "E0412", "E0433", "E0422", "E0423", "E0531", "E0405"];

fn unresolved_name(d: &Diagnostic) -> Option<String> {
    if !d.code.as_deref().is_some_and(|c| UNRESOLVED.contains(&c)) {
        return None;
    }
    let start = d.message.find('`')? + 1;
    let len = d.message[start..].find('`')?;
    Some(d.message[start..start + len].to_string())
}

/// One rustc JSON diagnostic, its spans moved to the cell's lines.
fn diagnostic(v: &Value, krate: &str, function: &JitFn, source: &CrateSource) -> Diagnostic {
    let labels = v["spans"]
        .as_array()
        .into_iter()
        .flatten()
        // The crate's own file only: spans in std's or ndarray's sources are not cell lines.
        .filter(|s| s["file_name"].as_str().is_some_and(|f| f.contains(krate)))
        .map(|s| {
            let line = |key: &str| s[key].as_u64().map(|n| n as usize);
            let span = (|| {
                Some(CellSpan {
                    start_line: source.cell_line(function, line("line_start")?)?,
                    start_column: line("column_start")?,
                    end_line: source.cell_line(function, line("line_end")?)?,
                    end_column: line("column_end")?,
                })
            })();
            (span, s["label"].as_str().unwrap_or_default().to_string(), s["is_primary"].as_bool().unwrap_or(false))
        })
        .collect::<Vec<_>>();
    let mut labels: Vec<(Option<CellSpan>, String, bool)> = labels;
    labels.sort_by_key(|(_, _, primary)| !primary);
    let help = v["children"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let message = c["message"].as_str()?;
            let suggestion = c["spans"][0]["suggested_replacement"].as_str();
            Some(match suggestion {
                Some(s) if !s.is_empty() => format!("{}: `{}`", message, s.trim()),
                _ => message.to_string(),
            })
        })
        .filter(|m| !m.contains("__jit_") && !m.contains("jit::"))
        .collect();
    let message = v["message"].as_str().unwrap_or_default().to_string();
    Diagnostic {
        level: "error".to_string(),
        code: v["code"]["code"].as_str().map(str::to_string),
        message: readable(&message),
        labels: labels.into_iter().map(|(s, l, _)| (s, readable(&l))).collect(),
        help,
    }
}

/// Names of the parallel rewrite, as the learner wrote them.
fn readable(text: &str) -> String {
    text.replace("::jit::ops::Bin<", "(")
        .replace("jit::ops::Bin<", "(")
        .replace("__jit_add", "`+`")
        .replace("__jit_sub", "`-`")
        .replace("__jit_mul", "`*`")
        .replace("__jit_div", "`/`")
}

/// A codegen problem (bad option, generic function, ...) as the cell's error.
pub fn codegen_error(e: &CodegenError, cell: &str) -> CellError {
    let span = CellSpan { start_line: e.line, start_column: e.column, end_line: e.line, end_column: e.column + 1 };
    let d = Diagnostic {
        level: "error".to_string(),
        code: None,
        message: e.message.clone(),
        labels: vec![(Some(span), String::new())],
        help: e.help.iter().cloned().collect(),
    };
    let mut error = diagnostics::compile_error(&[d], cell);
    error.ename = "JitError".to_string();
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustc_diagnostics_map_to_cell_lines() {
        let cell = "let x = 1;\n#[jit]\nfn f() -> f64 {\n    helper(2)\n}";
        let split = jit_codegen::split(cell).unwrap();
        let function = &split.functions[0];
        let source = jit_codegen::crate_source(function, "jit_f_0", &[], &[]);
        let line = source.first_line + 2;
        let json = format!(
            r#"{{"$message_type":"diagnostic","message":"cannot find function `helper` in this scope","code":{{"code":"E0425"}},"level":"error","spans":[{{"file_name":"x.rs","line_start":{line},"line_end":{line},"column_start":5,"column_end":11,"is_primary":true,"label":"not found in this scope"}}],"children":[]}}"#
        );
        let jit = JitCompiler::new(Path::new("/nonexistent"), Path::new("/nonexistent"), Path::new("/nonexistent"), "x86_64-unknown-linux-gnu", "1.95.0");
        let plain = jit.error(&json, "x", function, &source, cell, &|_| false);
        assert_eq!(plain.ename, "CompilationError");
        assert!(plain.evalue.contains("(cell line 4)"), "{}", plain.evalue);
        let nopython = jit.error(&json, "x", function, &source, cell, &|n| n == "helper");
        assert_eq!(nopython.ename, "JitError");
        assert!(nopython.evalue.contains("`helper` is defined in a plain cell"), "{}", nopython.evalue);
        assert!(nopython.traceback.iter().any(|l| l.contains("helper(2)")));
    }

    #[test]
    fn cells_that_use_the_runtime() {
        assert!(uses_runtime("let a = Array2::<f64>::zeros((2, 2));"));
        assert!(uses_runtime("use ndarray::Zip;"));
        assert!(uses_runtime("let v = array![1, 2];"));
        assert!(uses_runtime("for i in prange(0..4) {}"));
        assert!(!uses_runtime("let x = 1 + 1;\nfn arrays() {}"));
    }

    /// The list above has every name of ndarray's prelude (read from cargo's copy of its
    /// sources): a name it lacked would not compile in a cell that uses nothing else.
    #[test]
    fn runtime_names_cover_ndarrays_prelude() {
        let manifest = include_str!("../../jit/runtime/Cargo.toml");
        let version = manifest.split("ndarray = { version = \"=").nth(1).and_then(|r| r.split('"').next()).expect("ndarray's pinned version");
        let home = std::env::var_os("CARGO_HOME").map(std::path::PathBuf::from).unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap()).join(".cargo"));
        let prelude = std::fs::read_dir(home.join("registry/src"))
            .expect("cargo's registry sources")
            .filter_map(Result::ok)
            .map(|index| index.path().join(format!("ndarray-{version}/src/prelude.rs")))
            .find(|p| p.exists())
            .expect("ndarray's sources (cargo fetched them to build the runtime)");
        let text = std::fs::read_to_string(prelude).unwrap();
        let mut seen = 0;
        for statement in text.split("pub use crate::").skip(1) {
            let statement = statement.split(';').next().unwrap();
            for name in statement.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()) {
                assert!(RUNTIME_NAMES.contains(&name), "`{name}` from ndarray's prelude is missing in RUNTIME_NAMES");
                seen += 1;
            }
        }
        assert!(seen > 50, "read {seen} names only");
    }

    #[test]
    fn every_runtime_source_is_embedded() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../jit/runtime/src");
        for entry in std::fs::read_dir(src).unwrap() {
            let name = format!("src/{}", entry.unwrap().file_name().to_string_lossy());
            assert!(RUNTIME_FILES.iter().any(|(f, _)| *f == name), "{name} is missing in RUNTIME_FILES");
        }
    }

    #[test]
    fn later_uses_replace_earlier_ones_of_the_same_name() {
        let uses = merged_uses(&["use std::f64::consts::PI;".into(), "use std::collections::HashMap;".into()], &[
            "use std::f32::consts::PI;".into(),
            "use my_crate::Thing;".into(),
        ]);
        assert_eq!(uses, vec!["use std::collections::HashMap;".to_string(), "use std::f32::consts::PI;".to_string()]);
    }

    #[test]
    fn report() {
        let c = Compiled { name: "f".into(), wrapper: String::new(), seconds: Some(1.234), device: None };
        assert_eq!(c.report(), "jit: compiled f in 1.23 s");
        let cached = Compiled { seconds: None, ..c };
        assert_eq!(cached.report(), "jit: f from the cache");
        let gpu = Compiled { device: Some("cuda: f for sm_90 from the cache".into()), ..cached };
        assert_eq!(gpu.report(), "cuda: f for sm_90 from the cache\njit: f from the cache");
    }
}
