//! Compiles one `#[jit]` function in a crate of its own with full optimisation, by calling
//! rustc directly, and caches the result by content.
//!
//! The crate is a shared library (`<cache>/jit/lib/lib<crate>.so`) that links the runtime
//! (`jit`, with ndarray and rayon) built once by cargo in release mode with
//! `-Ctarget-cpu=native` (`<cache>/jit/runtime/<hash>`: no debug assertions in ndarray's or
//! the runtime's code either), and std dynamically, as cells do. The cells' own build of the
//! same crates (a debug build at opt-level 3) has the same types, field for field: same
//! sources, features and compiler. It exports one `#[no_mangle]` function; cells call it
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
    "-Cdebuginfo=0",
    "-Cembed-bitcode=no",
    "-Cpanic=unwind",
];

/// Where jit libraries are, inside a cache.
pub const LIB_DIR: &str = "jit/lib";

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
    /// Whether the release build of the runtime is there (else the next compile builds it).
    fn runtime_built(&self) -> bool;

    /// Compiles `function` (or finds it in the cache), with the session's jit functions it
    /// calls (`deps`, compiled in) and the `use` items it may see. `plain` tells whether a name
    /// is defined in the session outside jit functions (for the nopython error); `cell` is the
    /// cell text.
    fn compile(&self, function: &JitFn, deps: &[&JitFn], uses: &[String], cell: &str, plain: &dyn Fn(&str) -> bool) -> Result<Compiled, CellError>;
}

/// rustc and the cache.
pub struct JitCompiler {
    caches: Caches,
    rustc: PathBuf,
    /// [`Toolchain::id`] (part of the cache key).
    toolchain: String,
    cargo: PathBuf,
    host: String,
    /// The runtime's sources (see [`super::runtime::write_sources`]).
    runtime_src: PathBuf,
    /// Cargo's target directory for the release build of the runtime (the shared cache's when
    /// it has the build, else the own cache's).
    runtime_target: PathBuf,
    /// `-Clink-arg=-fuse-ld=mold` when mold is installed (part of the cache key).
    linker: Option<String>,
}

impl JitCompiler {
    /// `runtime_src` is where [`super::runtime::write_sources`] put the runtime; its release
    /// build is the toolchain's own.
    pub fn new(caches: &Caches, runtime_src: &Path, toolchain: &Toolchain) -> Self {
        let lib_dir = caches.own.join(LIB_DIR);
        // Cells search it from the start.
        let _ = std::fs::create_dir_all(&lib_dir);
        let bin = toolchain.bin();
        let tool = |name: &str| if bin.join(name).exists() { bin.join(name) } else { PathBuf::from(name) };
        let hash = runtime_src.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let host = &toolchain.host;
        let runtime_target = caches.find(
            format!("jit/runtime/{hash}-{}-{}", toolchain.id(), cache::cpu_id()),
            format!("{host}/release/libjit.rlib"),
        );
        JitCompiler {
            caches: caches.clone(),
            rustc: tool("rustc"),
            toolchain: toolchain.id(),
            cargo: tool("cargo"),
            host: toolchain.host.clone(),
            runtime_src: runtime_src.to_path_buf(),
            runtime_target,
            linker: find_mold().map(|_| "-Clink-arg=-fuse-ld=mold".to_string()),
        }
    }

    fn release_dir(&self) -> PathBuf {
        self.runtime_target.join(&self.host).join("release")
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

    /// The content key of a crate: its source, the runtime it links, the toolchain, the flags,
    /// the linker and the CPU. Not where the toolchain is: a shared cache built with it serves
    /// learners who reach the same toolchain by another path.
    fn key(&self, source: &str, runtime: &Path) -> u64 {
        let stamp = |path: &Path| std::fs::metadata(path).ok().map(|m| (m.len(), m.modified().ok()));
        cache::key(&(source, FLAGS, &self.linker, cache::cpu_id(), &self.toolchain, runtime, stamp(runtime)))
    }

    /// Runs rustc into `library` (published into the cache when it succeeds); on failure
    /// returns rustc's stderr (JSON diagnostics).
    fn rustc(&self, krate: &str, source: &CrateSource, runtime: &Path, library: &Path) -> Result<(), String> {
        let io = |e: std::io::Error| format!("{{\"message\":\"could not run rustc: {e}\",\"level\":\"error\"}}");
        cache::publish(library, |out| {
            // The source beside the library's temporary name, removed with it.
            let src = out.with_extension("rs");
            std::fs::write(&src, &source.text).map_err(io)?;
            let output = std::process::Command::new(&self.rustc)
                .args(["--edition", "2021", "--crate-type", "cdylib", "--crate-name", krate, "--error-format=json", "--target", &self.host])
                .args(FLAGS)
                .args(&self.linker)
                .arg("-L")
                .arg(format!("dependency={}", self.release_dir().join("deps").display()))
                .arg("--extern")
                .arg(format!("jit={}", runtime.display()))
                .arg("-o")
                .arg(out)
                .arg(&src)
                .output();
            let _ = std::fs::remove_file(&src);
            let output = output.map_err(io)?;
            if output.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&output.stderr).into_owned()) }
        }, io)
    }
}

impl Compile for JitCompiler {
    fn runtime_built(&self) -> bool {
        self.release_dir().join("libjit.rlib").exists()
    }

    fn compile(&self, function: &JitFn, deps: &[&JitFn], uses: &[String], cell: &str, plain: &dyn Fn(&str) -> bool) -> Result<Compiled, CellError> {
        let runtime = self.runtime_rlib()?;
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
        // Crate and symbol names are ASCII whatever the function's name.
        let ascii: String = function.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
        let krate = format!("jit_{ascii}_{:016x}", self.key(&source("KRATE").text, &runtime));
        let source = source(&krate);
        let library = self.caches.find_file(Path::new(LIB_DIR).join(format!("lib{krate}.so")));
        let wrapper = function.cell_wrapper(&krate);
        let mut compiled = Compiled { name: function.name.clone(), krate: krate.clone(), wrapper, seconds: None, device };
        if !library.exists() {
            let started = Instant::now();
            self.rustc(&krate, &source, &runtime, &library)
                .map_err(|stderr| super::errors::rustc_error(&stderr, &krate, function, &source, cell, plain))?;
            compiled.seconds = Some(started.elapsed().as_secs_f64());
        }
        Ok(compiled)
    }
}

/// mold, when installed (evcxr links cells with it too).
fn find_mold() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join("mold")).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report() {
        let c = Compiled { name: "f".into(), krate: "jit_f_0".into(), wrapper: String::new(), seconds: Some(1.234), device: None };
        assert_eq!(c.report(), "jit: compiled f in 1.23 s");
        let cached = Compiled { seconds: None, ..c };
        assert_eq!(cached.report(), "jit: f from the cache");
        let gpu = Compiled { device: Some("cuda: f for sm_90 from the cache".into()), ..cached };
        assert_eq!(gpu.report(), "cuda: f for sm_90 from the cache\njit: f from the cache");
    }
}
