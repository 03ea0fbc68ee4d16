//! Compiles one `#[jit]` function in a crate of its own with full optimisation, by calling
//! rustc directly, and caches the result by content.
//!
//! The crate is a shared library (`<cache>/jit/lib/lib<crate>.so`) that links the runtime
//! (`jit`, with ndarray and rayon) dynamically: the session's own build of it, the `libjit-<hash>.so`
//! the cells link (optimised, without debug assertions: the session's dependency profile), so
//! the process has one copy of the runtime, of rayon and of the session pool. ndarray's generic
//! code is compiled into the crate with its flags (`-Ctarget-cpu=native`). std is linked
//! dynamically too, as cells do. It exports one `#[no_mangle]` function; cells call it
//! through a wrapper with the same signature (see [`jit_codegen::JitFn::cell_wrapper`]),
//! linked with `-l`. Cells never depend on the crate itself, so evcxr's `cargo check` and
//! rust-analyzer see only the signature. Knows nothing of the session: the layer
//! ([`super::JitBackend`]) says what to compile.

use std::path::{Path, PathBuf};
use std::time::Instant;

use jit_codegen::cuda::DeviceImage;
use jit_codegen::{CrateSource, JitFn};

use crate::backend::CellError;
use crate::cache::{self, Caches};
use crate::evcxr_backend::rustc_wrapper::RUNTIME_RECORD;
use crate::setup::Toolchain;

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
    // Line tables only: the listings (`%jit_asm`) map instructions to cell lines; no code changes.
    "-Cdebuginfo=line-tables-only",
    "-Cembed-bitcode=no",
    "-Cpanic=unwind",
];

/// rustc's flags for the listing of a function compiled as plain cells are (`%jit_asm --naive`):
/// the session's cells are built at opt-level 0 with debug assertions and overflow checks.
const NAIVE_FLAGS: [&str; 7] = [
    "-Cprefer-dynamic",
    "-Copt-level=0",
    "-Cdebug-assertions=on",
    "-Coverflow-checks=on",
    "-Ccodegen-units=1",
    "-Cdebuginfo=line-tables-only",
    "-Cpanic=unwind",
];

/// How rustc writes assembly: Intel syntax on x86 (as most references and Compiler Explorer show it).
const ASM_SYNTAX: &[&str] = if cfg!(target_arch = "x86_64") { &["-Cllvm-args=-x86-asm-syntax=intel"] } else { &[] };

/// Where jit libraries are, inside a cache.
pub const LIB_DIR: &str = "jit/lib";

/// Where the listings of functions compiled as plain cells are (`%jit_asm --naive`).
pub const NAIVE_DIR: &str = "jit/naive";

/// What rustc wrote beside a library (`lib<crate>.so`): its assembly (`.s`), LLVM IR (`.ll`),
/// the crate's source (`.rs`) and [`BuildRecord`] (`.json`), published before the library.
pub fn sidecar(library: &Path, extension: &str) -> PathBuf {
    library.with_extension(extension)
}

/// How a library was built, beside it (`lib<crate>.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BuildRecord {
    pub function: String,
    pub seconds: f64,
    pub flags: Vec<String>,
    pub rustc: String,
    /// The crate's source file, as its debug info names it.
    pub source_name: String,
    /// The crate line of the function's first line.
    pub first_line: usize,
    /// Crate line and column of each operator that resolved to the runtime's parallel
    /// elementwise version (rustc's `rjk:parallel-elementwise` warnings; see `jit::ops`).
    pub elementwise: Vec<(usize, usize)>,
}

impl BuildRecord {
    pub fn read(library: &Path) -> Option<BuildRecord> {
        serde_json::from_str(&std::fs::read_to_string(sidecar(library, "json")).ok()?).ok()
    }
}

/// The note of the runtime's parallel operator methods (`jit/runtime/src/ops.rs`).
pub const ELEMENTWISE_NOTE: &str = "rjk:parallel-elementwise";

/// Where rustc's warnings say an operator resolved to the parallel elementwise version.
fn elementwise_sites(stderr: &str) -> Vec<(usize, usize)> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "warning" && v["message"].as_str().is_some_and(|m| m.contains(ELEMENTWISE_NOTE)))
        .filter_map(|v| {
            let span = v["spans"].as_array()?.iter().find(|s| s["is_primary"] == true)?.clone();
            Some((span["line_start"].as_u64()? as usize, span["column_start"].as_u64()? as usize))
        })
        .collect()
}

/// See [`FLAGS`].
const RUNTIME_TARGET_TUNING: &str = "-Ctarget-feature=+prefer-256-bit";

/// One compiled function.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub name: String,
    /// The crate (and library) it was compiled into.
    pub krate: String,
    /// The wrapper cells call (see [`jit_codegen::JitFn::cell_wrapper`]).
    pub wrapper: String,
    /// Seconds rustc took; `None` when it came from the cache.
    pub seconds: Option<f64>,
    /// The library (its listings and [`BuildRecord`] beside it).
    pub library: PathBuf,
    /// `#[vectorize(target = "cuda")]`: what NVRTC did (see [`crate::cuda::nvrtc::Image::report`]).
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

/// What the jit layer needs of a compiler (the tests give it a fake).
pub trait Compile {
    /// Whether the session's build of the runtime is there (else the layer has the session
    /// build it first).
    fn runtime_built(&self) -> bool;

    /// Compiles `function` (or finds it in the cache), with the session's jit functions it
    /// calls (`deps`, compiled in) and the `use` items it may see. `plain` tells whether a name
    /// is defined in the session outside jit functions (for the nopython error); `cell` is the
    /// cell text.
    fn compile(&self, function: &JitFn, deps: &[&JitFn], uses: &[String], cell: &str, plain: &dyn Fn(&str) -> bool) -> Result<Compiled, CellError>;

    /// Compiles `function` as plain cells are (opt-level 0) for its listing only (or finds it
    /// in the cache); its `library` is the path whose [`sidecar`]s hold it (there is no library).
    fn naive(&self, function: &JitFn, deps: &[&JitFn], uses: &[String], cell: &str) -> Result<Compiled, CellError>;
}

/// rustc and the cache.
pub struct JitCompiler {
    caches: Caches,
    rustc: PathBuf,
    /// [`Toolchain::id`] (part of the cache key).
    toolchain: String,
    host: String,
    /// Where the session's cargo puts its dependencies: the runtime's `libjit-<hash>.so` (see
    /// [`crate::workspace::Workspace::deps`]).
    session_deps: PathBuf,
    /// `-Clink-arg=-fuse-ld=mold` when mold is installed (part of the cache key).
    linker: Option<String>,
    /// When the session started (see [`JitCompiler::runtime_dylib`]).
    started: std::time::SystemTime,
}

impl JitCompiler {
    /// `session_deps`: where the session's build of the runtime is (or will be).
    pub fn new(caches: &Caches, session_deps: &Path, toolchain: &Toolchain) -> Self {
        let lib_dir = caches.own.join(LIB_DIR);
        // Cells search it from the start.
        let _ = std::fs::create_dir_all(&lib_dir);
        let bin = toolchain.bin();
        let rustc = if bin.join("rustc").exists() { bin.join("rustc") } else { PathBuf::from("rustc") };
        JitCompiler {
            caches: caches.clone(),
            rustc,
            toolchain: toolchain.id(),
            host: toolchain.host.clone(),
            session_deps: session_deps.to_path_buf(),
            linker: find_mold().map(|_| "-Clink-arg=-fuse-ld=mold".to_string()),
            started: std::time::SystemTime::now(),
        }
    }

    /// The session's build of the runtime, a `dylib`: the one the last cell linked
    /// (`libjit-<cargo's hash>.so`, named in [`RUNTIME_RECORD`] by the rustc wrapper).
    /// Only one this session built: a record from before (a seed's, an earlier session's) may
    /// name a build of other features than this session's cells link.
    fn runtime_dylib(&self) -> Option<PathBuf> {
        let (library, written) = crate::evcxr_backend::rustc_wrapper::recorded_runtime(&self.session_deps)?;
        (written >= self.started).then_some(library)
    }

    /// Which build of the runtime `dylib` is (part of a jit library's key): its name, which is
    /// cargo's hash of its build (package, features, dependencies, profile), and its size.
    fn runtime_identity(dylib: &Path) -> Option<(String, u64)> {
        let len = std::fs::metadata(dylib).ok()?.len();
        Some((dylib.file_name()?.to_string_lossy().into_owned(), len))
    }

    /// The content key of a crate: its source, the build of the runtime it links, the
    /// toolchain, the flags, the linker and the CPU. Not where the toolchain or the runtime is:
    /// a shared cache built with them serves learners who reach the same ones by other paths.
    fn key(&self, source: &str, runtime: &(String, u64), naive: bool) -> u64 {
        let flags: &[&str] = if naive { &NAIVE_FLAGS } else { &FLAGS };
        cache::key(&(source, flags, ASM_SYNTAX, &self.linker, cache::cpu_id(), &self.toolchain, runtime))
    }

    /// Runs rustc for `krate` (`naive`: the listing only, at opt-level 0; else the library
    /// too), publishing into the cache at `library` what it wrote; on failure returns rustc's
    /// stderr (JSON diagnostics).
    fn rustc(&self, function: &JitFn, krate: &str, source: &CrateSource, runtime: &Path, library: &Path, naive: bool) -> Result<(), String> {
        let io = |e: std::io::Error| format!("{{\"message\":\"could not run rustc: {e}\",\"level\":\"error\"}}");
        let (flags, crate_type, published): (&[&str], _, _) = if naive { (&NAIVE_FLAGS, "lib", sidecar(library, "json")) } else { (&FLAGS, "cdylib", library.to_path_buf()) };
        cache::publish(&published, |out| {
            // The source beside the temporary name, removed with it; debug info names it `<crate>.rs`.
            let src = out.with_extension("rs");
            std::fs::write(&src, &source.text).map_err(io)?;
            let (asm, ir) = (out.with_extension("s"), out.with_extension("ll"));
            let mut emit = format!("--emit=asm={},llvm-ir={}", asm.display(), ir.display());
            if !naive {
                emit.push_str(&format!(",link={}", out.display()));
            }
            let started = Instant::now();
            let output = std::process::Command::new(&self.rustc)
                .args(["--edition", "2021", "--crate-type", crate_type, "--crate-name", krate, "--error-format=json", "--target", &self.host])
                .args(flags)
                .args(ASM_SYNTAX)
                .args(&self.linker)
                .arg(format!("--remap-path-prefix={}={krate}.rs", src.display()))
                .arg("-L")
                .arg(format!("dependency={}", self.session_deps.display()))
                .arg("--extern")
                .arg(format!("jit={}", runtime.display()))
                .arg(emit)
                .arg(&src)
                .output();
            let seconds = started.elapsed().as_secs_f64();
            let kept = (|| {
                let output = output.map_err(io)?;
                if !output.status.success() {
                    return Err(String::from_utf8_lossy(&output.stderr).into_owned());
                }
                let record = BuildRecord {
                    function: function.name.clone(),
                    seconds,
                    flags: flags.iter().chain(ASM_SYNTAX).map(|f| f.to_string()).collect(),
                    rustc: self.toolchain.clone(),
                    source_name: format!("{krate}.rs"),
                    first_line: source.first_line,
                    elementwise: elementwise_sites(&String::from_utf8_lossy(&output.stderr)),
                };
                // The listings first: whoever finds the library (or, naive, the record) finds them.
                for (from, extension) in [(&asm, "s"), (&ir, "ll"), (&src, "rs")] {
                    cache::publish(&sidecar(library, extension), |to| std::fs::copy(from, to).map(|_| ()).map_err(io), io)?;
                }
                let json = serde_json::to_string_pretty(&record).unwrap_or_default();
                if naive {
                    std::fs::write(out, json).map_err(io)
                } else {
                    std::fs::write(sidecar(library, "json"), json).map_err(io)
                }
            })();
            for leftover in [&src, &asm, &ir] {
                let _ = std::fs::remove_file(leftover);
            }
            kept
        }, io)
    }

    /// The runtime this session's cells link, and which build it is.
    fn runtime(&self) -> Result<(PathBuf, (String, u64)), CellError> {
        let missing = || CellError::new("JitError", format!("the session has no build of the jit runtime (no {RUNTIME_RECORD} in {})", self.session_deps.display()));
        let runtime = self.runtime_dylib().ok_or_else(missing)?;
        let identity = Self::runtime_identity(&runtime).ok_or_else(missing)?;
        Ok((runtime, identity))
    }
}

/// Crate and symbol names are ASCII whatever the function's name.
fn ascii(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

impl Compile for JitCompiler {
    fn runtime_built(&self) -> bool {
        self.runtime_dylib().is_some()
    }

    fn compile(&self, function: &JitFn, deps: &[&JitFn], uses: &[String], cell: &str, plain: &dyn Fn(&str) -> bool) -> Result<Compiled, CellError> {
        let (runtime, identity) = self.runtime()?;
        // A cuda ufunc's kernel first: its crate embeds the image.
        let mut device = None;
        let image = match function.vectorize.as_ref().and_then(|u| u.cuda.as_ref()) {
            Some(cuda) => {
                let image = crate::cuda::nvrtc::build(cuda, cell, &self.caches)?;
                device = Some(image.report(&function.name));
                Some(match image {
                    crate::cuda::nvrtc::Image::Ready { path, .. } => DeviceImage::Ready(path.display().to_string()),
                    crate::cuda::nvrtc::Image::Unavailable(why) => DeviceImage::Unavailable(why),
                })
            }
            None => None,
        };
        let source = |krate: &str| jit_codegen::crate_source_with_image(function, krate, deps, uses, image.as_ref());
        let krate = format!("jit_{}_{:016x}", ascii(&function.name), self.key(&source("KRATE").text, &identity, false));
        let source = source(&krate);
        let library = self.caches.find_file(Path::new(LIB_DIR).join(format!("lib{krate}.so")));
        let wrapper = function.cell_wrapper(&krate);
        let mut compiled = Compiled { name: function.name.clone(), krate: krate.clone(), wrapper, seconds: None, library: library.clone(), device };
        if !library.exists() {
            let started = Instant::now();
            self.rustc(function, &krate, &source, &runtime, &library, false)
                .map_err(|stderr| super::errors::rustc_error(&stderr, &krate, function, &source, cell, plain))?;
            compiled.seconds = Some(started.elapsed().as_secs_f64());
        }
        Ok(compiled)
    }

    fn naive(&self, function: &JitFn, deps: &[&JitFn], uses: &[String], cell: &str) -> Result<Compiled, CellError> {
        let (runtime, identity) = self.runtime()?;
        // As written: a parallel function's rewrite is not what a plain cell would compile.
        let written = |f: &JitFn| JitFn { source: f.written.clone(), vectorize: None, ..f.clone() };
        let (function, deps): (JitFn, Vec<JitFn>) = (written(function), deps.iter().map(|d| written(d)).collect());
        let deps: Vec<&JitFn> = deps.iter().collect();
        let source = |krate: &str| jit_codegen::crate_source(&function, krate, &deps, uses);
        let krate = format!("naive_{}_{:016x}", ascii(&function.name), self.key(&source("KRATE").text, &identity, true));
        let source = source(&krate);
        // Its record is what says it is complete (there is no library).
        let base = self.caches.find_file(Path::new(NAIVE_DIR).join(format!("lib{krate}.json"))).with_extension("so");
        let mut compiled = Compiled { name: function.name.clone(), krate: krate.clone(), wrapper: String::new(), seconds: None, library: base.clone(), device: None };
        if !sidecar(&base, "json").exists() {
            let started = Instant::now();
            self.rustc(&function, &krate, &source, &runtime, &base, true)
                .map_err(|stderr| super::errors::rustc_error(&stderr, &krate, &function, &source, cell, &|_| false))?;
            compiled.seconds = Some(started.elapsed().as_secs_f64());
        }
        Ok(compiled)
    }
}

/// mold, when installed (evcxr links cells with it too).
fn find_mold() -> Option<PathBuf> {
    crate::setup::on_path("mold")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_marks_its_parallel_operators_with_the_note_read_here() {
        let ops = include_str!("../../../jit/runtime/src/ops.rs");
        assert!(ops.contains(&format!("#[deprecated(note = \"{ELEMENTWISE_NOTE}\")]")));
    }

    #[test]
    fn rustcs_warnings_say_which_operators_went_parallel() {
        let warning = |line: u64, column: u64, note: &str| {
            format!(
                r#"{{"$message_type":"diagnostic","message":"use of deprecated method `jit::ops::ArrayAdd::__jit_add`: {note}","level":"warning","spans":[{{"file_name":"k.rs","line_start":{line},"column_start":{column},"is_primary":true}},{{"file_name":"k.rs","line_start":1,"column_start":1,"is_primary":false}}]}}"#
            )
        };
        let stderr = [warning(7, 22, ELEMENTWISE_NOTE), warning(8, 3, "something else"), "not json".to_string(), warning(9, 5, ELEMENTWISE_NOTE)].join("\n");
        assert_eq!(elementwise_sites(&stderr), vec![(7, 22), (9, 5)]);
    }

    #[test]
    fn report() {
        let c = Compiled { name: "f".into(), krate: "jit_f_0".into(), wrapper: String::new(), seconds: Some(1.234), library: PathBuf::new(), device: None };
        assert_eq!(c.report(), "jit: compiled f in 1.23 s");
        let cached = Compiled { seconds: None, ..c };
        assert_eq!(cached.report(), "jit: f from the cache");
        let gpu = Compiled { device: Some("cuda: f for sm_90 from the cache".into()), ..cached };
        assert_eq!(gpu.report(), "cuda: f for sm_90 from the cache\njit: f from the cache");
    }
}
