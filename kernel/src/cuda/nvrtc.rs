//! The kernel process's half of the GPU path: NVRTC compiles a cuda ufunc's CUDA C for the GPU
//! that is there (a CUBIN for its architecture) or, with no GPU, to PTX (so errors still
//! show), and the image is cached by content under `<cache>/jit/cuda`. NVRTC's log is shown
//! against the cell (the CUDA C carries `#line` directives naming cell lines).

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use cudarc::driver::{result as cu, sys};
use cudarc::nvrtc::{result as nvrtc, sys as nvrtc_sys};
use jit_codegen::cuda::CudaSource;

use super::USE_CPU;
use crate::backend::CellError;
use crate::cache::{self, Caches};
use crate::diagnostics::{self, CellSpan, Diagnostic};

/// A kernel image ready to embed in the function's crate, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Image {
    /// A NUL-terminated CUBIN or PTX file.
    Ready { path: PathBuf, target: String, seconds: Option<f64> },
    /// NVRTC is not installed: the function is defined, calling it is an error saying this.
    Unavailable(String),
}

impl Image {
    /// The line the cell prints after `jit: compiled ...`.
    pub fn report(&self, name: &str) -> String {
        match self {
            Image::Ready { target, seconds: Some(s), .. } => format!("cuda: NVRTC compiled {name} for {target} in {s:.2} s"),
            Image::Ready { target, seconds: None, .. } => format!("cuda: {name} for {target} from the cache"),
            Image::Unavailable(why) => format!("cuda: {why}; calling {name} will be an error ({USE_CPU})"),
        }
    }
}

pub(super) const NO_NVRTC: &str = "CUDA is not available: libnvrtc (NVRTC, CUDA's runtime compiler) was not found (install the \
                        CUDA toolkit, or `pip install nvidia-cuda-nvrtc` and put its nvidia/cu13/lib on LD_LIBRARY_PATH)";

/// Whether libnvrtc can be loaded.
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to load the library.
    unsafe { nvrtc_sys::is_culib_present() }
}

/// The first GPU, as the kernel process sees it: compute capability (`(9, 0)`) and the CUDA
/// version its driver supports (`13000` for 13.0), when a driver and a GPU are there.
fn first_gpu() -> Option<((i32, i32), i32)> {
    static GPU: OnceLock<Option<((i32, i32), i32)>> = OnceLock::new();
    *GPU.get_or_init(|| {
        // SAFETY: only tries to load the library.
        if !unsafe { sys::is_culib_present() } {
            return None;
        }
        cu::init().ok()?;
        let device = cu::device::get(0).ok()?;
        let mut driver = 0;
        // SAFETY: a valid device and attributes; `driver` is writable.
        unsafe {
            sys::cuDriverGetVersion(&mut driver).result().ok()?;
            let major = cu::device::get_attribute(device, sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR).ok()?;
            let minor = cu::device::get_attribute(device, sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR).ok()?;
            Some(((major, minor), driver))
        }
    })
}

/// The architectures this NVRTC compiles for (`75` for sm_75, ...).
fn nvrtc_architectures() -> Vec<i32> {
    let mut count = 0;
    // SAFETY: `count` is writable, then the buffer has `count` entries.
    unsafe {
        if nvrtc_sys::nvrtcGetNumSupportedArchs(&mut count) != nvrtc_sys::nvrtcResult::NVRTC_SUCCESS || count <= 0 {
            return Vec::new();
        }
        let mut archs = vec![0; count as usize];
        if nvrtc_sys::nvrtcGetSupportedArchs(archs.as_mut_ptr()) != nvrtc_sys::nvrtcResult::NVRTC_SUCCESS {
            return Vec::new();
        }
        archs
    }
}

/// What to compile for: a CUBIN for the GPU here (`sm_90`) when NVRTC knows it, else PTX (for
/// the newest architecture NVRTC knows that is not newer than the GPU, which the driver compiles
/// on load; or NVRTC's default with no GPU). An NVRTC of a newer CUDA major version than the
/// driver makes code the driver cannot load: that is said instead.
pub(super) fn target() -> Result<Option<String>, String> {
    let Some(((major, minor), driver)) = first_gpu() else { return Ok(None) };
    let (nvrtc_major, nvrtc_minor) = nvrtc_version();
    if nvrtc_major > driver / 1000 {
        return Err(format!(
            "CUDA is not available: NVRTC {nvrtc_major}.{nvrtc_minor} (CUDA's runtime compiler, found on LD_LIBRARY_PATH) is newer than \
             this GPU's driver (CUDA {}.{}), which cannot load what it compiles; install the NVRTC of CUDA {} \
             (`pip install nvidia-cuda-nvrtc-cu{}` and its lib folder first on LD_LIBRARY_PATH) or a newer driver",
            driver / 1000,
            driver % 1000 / 10,
            driver / 1000,
            driver / 1000
        ));
    }
    let wanted = major * 10 + minor;
    let known = nvrtc_architectures();
    if known.contains(&wanted) {
        return Ok(Some(format!("sm_{wanted}")));
    }
    Ok(known.iter().copied().filter(|&a| a <= wanted).max().map(|a| format!("compute_{a}")))
}
fn nvrtc_version() -> (i32, i32) {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: two writable ints.
    unsafe { nvrtc_sys::nvrtcVersion(&mut major, &mut minor) };
    (major, minor)
}

/// Compiles `source` (the translation of a function of `cell`) for this machine's GPU, or finds
/// it in `<cache>/jit/cuda`.
pub fn build(source: &CudaSource, cell: &str, caches: &Caches) -> Result<Image, CellError> {
    if !nvrtc_present() {
        return Ok(Image::Unavailable(NO_NVRTC.to_string()));
    }
    let arch = match target() {
        Ok(arch) => arch,
        Err(why) => return Ok(Image::Unavailable(why)),
    };
    let (target, extension) = match &arch {
        Some(sm) if sm.starts_with("sm_") => (sm.clone(), "cubin"),
        Some(compute) => (format!("PTX for {compute}"), "ptx"),
        None => ("PTX (no GPU here)".to_string(), "ptx"),
    };
    let name = format!("{}_{:016x}.{extension}", source.kernel, cache::key(&(&source.text, &arch, nvrtc_version())));
    let path = caches.find_file(Path::new("jit/cuda").join(name));
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    if path.exists() {
        return Ok(Image::Ready { path, target, seconds: None });
    }
    let started = Instant::now();
    let mut image = compile(&source.text, arch.as_deref()).map_err(|log| nvrtc_error(&log, cell, source))?;
    image.push(0);
    let io = |e: std::io::Error| CellError::new("CudaError", format!("could not write the kernel image to {}: {e}", dir.display()));
    cache::publish(&path, |partial| std::fs::write(partial, &image).map_err(&io), &io)?;
    Ok(Image::Ready { path, target, seconds: Some(started.elapsed().as_secs_f64()) })
}

/// NVRTC: a CUBIN for a real architecture (`sm_90`), PTX for a virtual one (`compute_90`) or
/// for NVRTC's default. On failure the compile log.
pub fn compile(text: &str, arch: Option<&str>) -> Result<Vec<u8>, String> {
    let src = CString::new(text).map_err(|_| "the CUDA C contains a NUL byte".to_string())?;
    let program = nvrtc::create_program(&src, Some(c"cell.cu")).map_err(|e| format!("nvrtcCreateProgram: {e:?}"))?;
    let mut options = vec!["--std=c++17".to_string()];
    if let Some(arch) = arch {
        options.push(format!("--gpu-architecture={arch}"));
    }
    // SAFETY: a live program; it is destroyed once, at the end.
    let out = unsafe {
        let compiled = nvrtc::compile_program(program, &options);
        let out = match compiled {
            Err(e) => Err(nvrtc::get_program_log(program)
                .map(|log| CStr::from_ptr(log.as_ptr()).to_string_lossy().into_owned())
                .unwrap_or_else(|_| format!("{e:?}"))),
            Ok(()) if arch.is_some_and(|a| a.starts_with("sm_")) => cubin(program),
            Ok(()) => nvrtc::get_ptx(program)
                .map(|ptx| CStr::from_ptr(ptx.as_ptr()).to_bytes().to_vec())
                .map_err(|e| format!("nvrtcGetPTX: {e:?}")),
        };
        let _ = nvrtc::destroy_program(program);
        out
    };
    out
}

/// # Safety
/// `program` is a live, compiled program.
unsafe fn cubin(program: nvrtc_sys::nvrtcProgram) -> Result<Vec<u8>, String> {
    let mut size = 0usize;
    // SAFETY: per the caller; `size` is writable, then the buffer has `size` bytes.
    unsafe {
        nvrtc_sys::nvrtcGetCUBINSize(program, &mut size).result().map_err(|e| format!("nvrtcGetCUBINSize: {e:?}"))?;
        let mut bytes = vec![0u8; size];
        nvrtc_sys::nvrtcGetCUBIN(program, bytes.as_mut_ptr() as *mut c_char).result().map_err(|e| format!("nvrtcGetCUBIN: {e:?}"))?;
        Ok(bytes)
    }
}

/// NVRTC's log against the cell, rendered as rustc's errors are: each `cell(N): level: message`
/// line is a diagnostic on line N of the cell.
fn nvrtc_error(log: &str, cell: &str, source: &CudaSource) -> CellError {
    let lines: Vec<&str> = cell.lines().collect();
    let diagnostics: Vec<Diagnostic> = log
        .lines()
        .filter_map(|entry| {
            let (line, rest) = entry.strip_prefix("cell(")?.split_once("): ")?;
            let line: usize = line.parse().ok()?;
            let (level, message) = rest.split_once(": ").unwrap_or(("error", rest));
            let text = lines.get(line.checked_sub(1)?)?;
            let indent = text.chars().take_while(|c| c.is_whitespace()).count();
            let span = CellSpan { start_line: line, start_column: indent + 1, end_line: line, end_column: text.chars().count() + 1 };
            Some(Diagnostic { level: level.to_string(), message: message.to_string(), labels: vec![(Some(span), String::new())], ..Default::default() })
        })
        .collect();
    let name = source.kernel.trim_end_matches("_kernel");
    let headline = diagnostics::headline("CudaCompileError", &format!(": NVRTC could not compile the CUDA C translation of {name}:"));
    if diagnostics.is_empty() {
        let mut traceback = vec![headline];
        traceback.extend(log.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
        let evalue = log.lines().find(|l| !l.trim().is_empty()).unwrap_or("NVRTC failed").to_string();
        return CellError { ename: "CudaCompileError".to_string(), evalue, traceback };
    }
    let mut error = diagnostics::compile_error(&diagnostics, cell);
    error.traceback.insert(0, headline);
    CellError { ename: "CudaCompileError".to_string(), ..error }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translated(cell: &str) -> CudaSource {
        let split = jit_codegen::split(cell).unwrap();
        split.functions[0].vectorize.as_ref().unwrap().cuda.clone().unwrap()
    }

    /// Needs libnvrtc (the test command provides it; see jit/codegen's NVRTC test).
    fn nvrtc_or_skip() -> bool {
        if nvrtc_present() {
            return true;
        }
        assert!(std::env::var_os("RJK_REQUIRE_NVRTC").is_none(), "libnvrtc not found");
        eprintln!("skipped: libnvrtc not found");
        false
    }

    #[test]
    fn builds_once_then_comes_from_the_cache() {
        if !nvrtc_or_skip() {
            return;
        }
        let cache = std::env::temp_dir().join(format!("rjk-cuda-test-{}", std::process::id()));
        let cell = "let n = 1;\n#[vectorize(target = \"cuda\")]\nfn add_ufunc(x: i64, y: i64) -> i64 { x + y }";
        let source = translated(cell);
        let first = build(&source, cell, &Caches::own_only(&cache)).unwrap();
        let Image::Ready { path, seconds: Some(_), .. } = &first else { panic!("{first:?}") };
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(bytes.last(), Some(&0), "NUL-terminated");
        assert!(first.report("add_ufunc").starts_with("cuda: NVRTC compiled add_ufunc for "));
        let again = build(&source, cell, &Caches::own_only(&cache)).unwrap();
        assert!(matches!(&again, Image::Ready { seconds: None, .. }), "{again:?}");
        assert!(again.report("add_ufunc").ends_with("from the cache"));
        let _ = std::fs::remove_dir_all(&cache);
    }

    #[test]
    fn nvrtc_errors_are_shown_against_the_cell() {
        if !nvrtc_or_skip() {
            return;
        }
        let cell = "// one\n// two\nlet y = 3;";
        let source = CudaSource {
            kernel: "broken_kernel".to_string(),
            params: vec![],
            output: jit_codegen::cuda::Scalar::I64,
            text: "#line 3 \"cell\"\n__device__ long long f() { return undefined_name; }\n".to_string(),
        };
        let error = build(&source, cell, &Caches::own_only(&std::env::temp_dir())).unwrap_err();
        assert_eq!(error.ename, "CudaCompileError");
        assert!(error.evalue.starts_with("error: ") && error.evalue.contains("undefined_name"), "{}", error.evalue);
        assert!(error.evalue.ends_with("(cell line 3)"), "{}", error.evalue);
        let plain: Vec<String> = error.traceback.iter().map(|l| diagnostics::strip_ansi(l)).collect();
        assert!(plain[0].starts_with("CudaCompileError: NVRTC could not compile the CUDA C translation of broken"), "{plain:?}");
        assert!(plain.iter().any(|l| l == "3 | let y = 3;"), "{plain:?}");
    }
}
