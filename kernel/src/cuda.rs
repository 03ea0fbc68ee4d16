//! The GPU, through cudarc (loaded at run time: the kernel builds and runs on machines with no
//! CUDA at all). The only module that knows cudarc.
//!
//! Two halves, in the two processes the binary plays:
//! - **in the kernel process**, when a cell defines a `#[vectorize(target = "cuda")]`
//!   function: [`build`] compiles its CUDA C (from `jit_codegen::cuda`) with NVRTC, for the
//!   GPU that is there (a CUBIN for its architecture) or, with no GPU, to PTX (so errors
//!   still show), and caches the image by content under `<cache>/jit/cuda`. NVRTC's log is
//!   shown against the cell (the CUDA C carries `#line` directives naming cell lines).
//! - **in the user process**, which runs the cells: one CUDA context, one stream and the
//!   modules loaded so far, behind the exported C functions `rjk_cuda_*` that the runtime
//!   (`jit/runtime/src/cuda.rs`, the ABI's other side) finds with `dlsym`. Every cell is a
//!   shared object of its own, so this state cannot live in a cell or a jit library.
//!
//! cudarc panics when libcuda or libnvrtc is missing: both are looked for first. cudarc's
//! search covers CUDA 13 and CUDA 12 library names (`libnvrtc.so.13`, `libnvrtc.so.12`, ...).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr, CString};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use cudarc::driver::{result as cu, sys};
use cudarc::nvrtc::{result as nvrtc, sys as nvrtc_sys};
use jit_codegen::cuda::CudaSource;

use crate::backend::CellError;

/// What to do without a GPU (the runtime ends its messages the same way).
const USE_CPU: &str = "use target = \"cpu\" or \"parallel\"";

/// Threads per block of every launch.
const BLOCK: u32 = 256;

// ---------------------------------------------------------------------------------------------
// The kernel process: NVRTC.

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

const NO_NVRTC: &str = "CUDA is not available: libnvrtc (NVRTC, CUDA's runtime compiler) was not found (install the \
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
fn target() -> Result<Option<String>, String> {
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
pub fn build(source: &CudaSource, cell: &str, cache: &Path) -> Result<Image, CellError> {
    if !nvrtc_present() {
        return Ok(Image::Unavailable(NO_NVRTC.to_string()));
    }
    let arch = match target() {
        Ok(arch) => arch,
        Err(why) => return Ok(Image::Unavailable(why)),
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (&source.text, &arch, nvrtc_version()).hash(&mut hasher);
    let (target, extension) = match &arch {
        Some(sm) if sm.starts_with("sm_") => (sm.clone(), "cubin"),
        Some(compute) => (format!("PTX for {compute}"), "ptx"),
        None => ("PTX (no GPU here)".to_string(), "ptx"),
    };
    let dir = cache.join("jit").join("cuda");
    let path = dir.join(format!("{}_{:016x}.{extension}", source.kernel, hasher.finish()));
    if path.exists() {
        return Ok(Image::Ready { path, target, seconds: None });
    }
    let started = Instant::now();
    let mut image = compile(&source.text, arch.as_deref()).map_err(|log| nvrtc_error(&log, cell, source))?;
    image.push(0);
    let io = |e: std::io::Error| CellError::new("CudaError", format!("could not write the kernel image to {}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(io)?;
    let partial = path.with_extension(format!("{extension}.{}", std::process::id()));
    std::fs::write(&partial, &image).map_err(io)?;
    std::fs::rename(&partial, &path).map_err(io)?;
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

/// NVRTC's log against the cell: each `cell(N): ...` line is followed by line N of the cell.
fn nvrtc_error(log: &str, cell: &str, source: &CudaSource) -> CellError {
    let lines: Vec<&str> = cell.lines().collect();
    let mut traceback = vec![format!("\x1b[1;31mCudaCompileError\x1b[0m: NVRTC could not compile the CUDA C translation of {}:", source.kernel.trim_end_matches("_kernel"))];
    let mut first = None;
    for entry in log.lines().filter(|l| !l.trim().is_empty()) {
        traceback.push(entry.to_string());
        let line = entry.strip_prefix("cell(").and_then(|rest| rest.split(')').next()).and_then(|n| n.parse::<usize>().ok());
        if let Some(text) = line.and_then(|n| lines.get(n.wrapping_sub(1)).map(|t| (n, t))) {
            traceback.push(format!("{:>5} | {}", text.0, text.1));
            first.get_or_insert(entry.to_string());
        }
    }
    let evalue = first.unwrap_or_else(|| log.lines().find(|l| !l.trim().is_empty()).unwrap_or("NVRTC failed").to_string());
    CellError { ename: "CudaCompileError".to_string(), evalue, traceback }
}

// ---------------------------------------------------------------------------------------------
// The user process: the GPU itself.

struct Gpu {
    context: sys::CUcontext,
    stream: sys::CUstream,
    multiprocessors: u32,
    /// Stream-ordered allocation (`cuMemAllocAsync`) is there; else plain `cuMemAlloc`.
    pools: bool,
    name: String,
    /// Kernels loaded so far, by the address and length of their image (images live in jit
    /// libraries, which stay loaded for the life of the process).
    functions: Mutex<HashMap<(usize, usize, String), usize>>,
}

// SAFETY: the context and stream are handles usable from any thread (bound with
// `set_current` before each use); the map is behind a mutex.
unsafe impl Send for Gpu {}
unsafe impl Sync for Gpu {}

fn driver_error(call: &str, e: cu::DriverError) -> String {
    let name = e.error_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|_| format!("{:?}", e.0));
    let text = e.error_string().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{call} failed: {name} ({text})")
}

fn open_gpu() -> Result<Gpu, String> {
    let unavailable = |why: String| format!("CUDA is not available: {why}; {USE_CPU}");
    // SAFETY: only tries to load the library.
    if !unsafe { sys::is_culib_present() } {
        return Err(unavailable("libcuda.so (the NVIDIA driver) was not found, so there is no GPU to run on".to_string()));
    }
    cu::init().map_err(|e| unavailable(driver_error("cuInit", e)))?;
    if cu::device::get_count().map_err(|e| unavailable(driver_error("cuDeviceGetCount", e)))? == 0 {
        return Err(unavailable("the driver sees no GPU".to_string()));
    }
    let device = cu::device::get(0).map_err(|e| unavailable(driver_error("cuDeviceGet", e)))?;
    // SAFETY: a valid device; the primary context is retained for the life of the process.
    unsafe {
        let context = cu::primary_ctx::retain(device).map_err(|e| unavailable(driver_error("cuDevicePrimaryCtxRetain", e)))?;
        cu::ctx::set_current(context).map_err(|e| driver_error("cuCtxSetCurrent", e))?;
        let stream = cu::stream::create(cu::stream::StreamKind::NonBlocking).map_err(|e| driver_error("cuStreamCreate", e))?;
        let multiprocessors = cu::device::get_attribute(device, sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| driver_error("cuDeviceGetAttribute", e))?;
        // Keep up to 1 GiB of freed memory in the stream-ordered pool: a call allocates its
        // result and its copies of host operands, and the pool makes that cheap after the first
        // call (more than that goes back to the driver at the next synchronisation).
        let pools = cu::device::get_attribute(device, sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED).unwrap_or(0) != 0;
        if pools {
            if let Ok(pool) = cu::device::get_default_mem_pool(device) {
                let mut keep: u64 = 1 << 30;
                let _ = cu::mem_pool::set_attribute(
                    pool,
                    sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                    &mut keep as *mut u64 as *mut c_void,
                );
            }
        }
        let name = cu::device::get_name(device).unwrap_or_else(|_| "a CUDA GPU".to_string());
        Ok(Gpu { context, stream, multiprocessors: multiprocessors.max(1) as u32, pools, name, functions: Mutex::new(HashMap::new()) })
    }
}

/// The process's GPU, opened on first use, bound to the calling thread.
fn gpu() -> Result<&'static Gpu, String> {
    static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();
    let gpu = GPU.get_or_init(open_gpu).as_ref().map_err(Clone::clone)?;
    // SAFETY: the context is alive (retained).
    unsafe { cu::ctx::set_current(gpu.context) }.map_err(|e| driver_error("cuCtxSetCurrent", e))?;
    Ok(gpu)
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `f`; a failure is kept for `rjk_cuda_error` and returned as 1.
fn status(f: impl FnOnce() -> Result<(), String>) -> i32 {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(())) => 0,
        Ok(Err(message)) => {
            LAST_ERROR.with(|e| *e.borrow_mut() = message);
            1
        }
        Err(_) => {
            LAST_ERROR.with(|e| *e.borrow_mut() = "the CUDA library panicked (see stderr)".to_string());
            1
        }
    }
}

/// Copies `text` into a caller's buffer; returns the length written.
///
/// # Safety
/// `buffer` is writable for `capacity` bytes.
unsafe fn write_out(text: &str, buffer: *mut u8, capacity: usize) -> usize {
    let len = text.len().min(capacity);
    // SAFETY: per the caller.
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), buffer, len) };
    len
}

/// The GPU's name (its length) when cuda ufuncs can run here (a GPU, and an NVRTC that compiles
/// for it), or 0 with the reason they cannot kept for `rjk_cuda_error`.
///
/// # Safety
/// `name` is writable for `capacity` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rjk_cuda_device(name: *mut u8, capacity: usize) -> usize {
    let mut found = String::new();
    let usable = status(|| {
        let gpu = gpu()?;
        if !nvrtc_present() {
            return Err(format!("{NO_NVRTC}; {USE_CPU}"));
        }
        target().map_err(|why| format!("{why}; {USE_CPU}"))?;
        found = gpu.name.clone();
        Ok(())
    });
    if usable != 0 {
        return 0;
    }
    // SAFETY: per the caller.
    unsafe { write_out(&found, name, capacity) }.max(1)
}

/// The last failure's message on this thread (its length).
///
/// # Safety
/// `buffer` is writable for `capacity` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rjk_cuda_error(buffer: *mut u8, capacity: usize) -> usize {
    // SAFETY: per the caller.
    LAST_ERROR.with(|e| unsafe { write_out(&e.borrow(), buffer, capacity) })
}

/// Allocates `bytes` of device memory (stream-ordered).
///
/// # Safety
/// `ptr` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rjk_cuda_alloc(bytes: usize, ptr: *mut u64) -> i32 {
    status(|| {
        let gpu = gpu()?;
        let what = || format!("allocating {bytes} bytes on the GPU");
        // SAFETY: a live stream; `ptr` is writable per the caller.
        unsafe {
            *ptr = if gpu.pools {
                cu::malloc_async(gpu.stream, bytes).map_err(|e| driver_error(&what(), e))?
            } else {
                cu::malloc_sync(bytes).map_err(|e| driver_error(&what(), e))?
            };
        }
        Ok(())
    })
}

/// Frees memory from `rjk_cuda_alloc`.
///
/// # Safety
/// `ptr` came from `rjk_cuda_alloc` and is freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rjk_cuda_free(ptr: u64) {
    status(|| {
        let gpu = gpu()?;
        // SAFETY: per the caller. Without pools, wait for work that may still use it.
        unsafe {
            if gpu.pools {
                let _ = cu::free_async(ptr, gpu.stream);
            } else {
                let _ = cu::stream::synchronize(gpu.stream);
                let _ = cu::free_sync(ptr);
            }
        }
        Ok(())
    });
}

/// Copies `bytes` from the host to the device and waits for it (the host memory may be freed
/// as soon as this returns, and `%timeit to_device(&a)` times finished copies).
///
/// # Safety
/// `src` is readable for `bytes`; `dst` is device memory of at least `bytes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rjk_cuda_upload(dst: u64, src: *const u8, bytes: usize) -> i32 {
    status(|| {
        let gpu = gpu()?;
        // SAFETY: per the caller.
        unsafe {
            sys::cuMemcpyHtoDAsync_v2(dst, src as *const c_void, bytes, gpu.stream).result().map_err(|e| driver_error("copying to the GPU", e))?;
            cu::stream::synchronize(gpu.stream).map_err(|e| driver_error("copying to the GPU", e))
        }
    })
}

/// Copies `bytes` from the device to the host and waits for it.
///
/// # Safety
/// `dst` is writable for `bytes`; `src` is device memory of at least `bytes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rjk_cuda_download(dst: *mut u8, src: u64, bytes: usize) -> i32 {
    status(|| {
        let gpu = gpu()?;
        // SAFETY: per the caller.
        unsafe {
            sys::cuMemcpyDtoHAsync_v2(dst as *mut c_void, src, bytes, gpu.stream).result().map_err(|e| driver_error("copying from the GPU", e))?;
            cu::stream::synchronize(gpu.stream).map_err(|e| driver_error("waiting for the GPU", e))
        }
    })
}

/// Launches `kernel` of the module `image` over `n` elements (a grid-stride loop: at most 32
/// blocks per multiprocessor) with 64-bit parameters `params`, and waits for it: a call returns
/// finished work, so `%timeit` times the kernel.
///
/// # Safety
/// `image` is a NUL-terminated CUBIN or PTX of `len` bytes that stays loaded for the process;
/// `kernel` is a NUL-terminated name; `params` holds `count` values matching the kernel's
/// parameters, every pointer among them live device memory of the right size.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rjk_cuda_launch(image: *const u8, len: usize, kernel: *const c_char, n: u64, params: *const u64, count: usize) -> i32 {
    status(|| {
        // SAFETY: per the caller.
        let (image, name, params) = unsafe { (std::slice::from_raw_parts(image, len), CStr::from_ptr(kernel), std::slice::from_raw_parts(params, count)) };
        // SAFETY: per the caller.
        unsafe { launch(gpu()?, image, name, n, params, false) }.map(drop)
    })
}

/// [`rjk_cuda_launch`], timed on the GPU with CUDA events around the kernel alone (no
/// allocation, no copies, no host overhead): the GPU benchmark's kernel time, in microseconds.
///
/// # Safety
/// As for [`rjk_cuda_launch`].
pub unsafe fn kernel_time_us(image: &'static [u8], kernel: &CStr, n: u64, params: &[u64]) -> Result<f64, String> {
    // SAFETY: per the caller.
    unsafe { launch(gpu()?, image, kernel, n, params, true) }.map(|us| us.unwrap_or(f64::NAN))
}

/// The kernel `name` of `image`, loaded once per image.
fn function(gpu: &Gpu, image: &[u8], name: &CStr) -> Result<sys::CUfunction, String> {
    let key = (image.as_ptr() as usize, image.len(), name.to_string_lossy().into_owned());
    let mut functions = gpu.functions.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&f) = functions.get(&key) {
        return Ok(f as sys::CUfunction);
    }
    // The driver reads the image in place; a CUBIN is an ELF file, which it may want aligned
    // (images embedded with `include_bytes!` are not): load from an 8-byte-aligned copy.
    let mut aligned = vec![0u64; image.len().div_ceil(8)];
    // SAFETY: `aligned` has at least `image.len()` bytes.
    unsafe { std::ptr::copy_nonoverlapping(image.as_ptr(), aligned.as_mut_ptr() as *mut u8, image.len()) };
    // SAFETY: a NUL-terminated image (per `rjk_cuda_launch`); modules are never unloaded.
    let f = unsafe {
        let module = cu::module::load_data(aligned.as_ptr() as *const c_void).map_err(|e| driver_error("loading the kernel (cuModuleLoadData)", e))?;
        cu::module::get_function(module, name.to_owned()).map_err(|e| driver_error("cuModuleGetFunction", e))?
    };
    functions.insert(key, f as usize);
    Ok(f)
}

/// # Safety
/// As for [`rjk_cuda_launch`].
unsafe fn launch(gpu: &Gpu, image: &[u8], name: &CStr, n: u64, params: &[u64], timed: bool) -> Result<Option<f64>, String> {
    let function = function(gpu, image, name)?;
    let mut values = params.to_vec();
    let mut pointers: Vec<*mut c_void> = values.iter_mut().map(|v| v as *mut u64 as *mut c_void).collect();
    let blocks = n.div_ceil(BLOCK as u64).clamp(1, gpu.multiprocessors as u64 * 32) as u32;
    let events = if timed {
        let create = || cu::event::create(sys::CUevent_flags::CU_EVENT_DEFAULT).map_err(|e| driver_error("cuEventCreate", e));
        Some((create()?, create()?))
    } else {
        None
    };
    // SAFETY: per the caller; `values` outlives the launch, which is waited for here.
    unsafe {
        if let Some((start, _)) = events {
            cu::event::record(start, gpu.stream).map_err(|e| driver_error("cuEventRecord", e))?;
        }
        cu::launch_kernel(function, (blocks, 1, 1), (BLOCK, 1, 1), 0, gpu.stream, &mut pointers).map_err(|e| driver_error("launching the kernel", e))?;
        if let Some((_, end)) = events {
            cu::event::record(end, gpu.stream).map_err(|e| driver_error("cuEventRecord", e))?;
        }
        cu::stream::synchronize(gpu.stream).map_err(|e| driver_error("running the kernel", e))?;
        Ok(match events {
            Some((start, end)) => {
                let ms = cu::event::elapsed(start, end).map_err(|e| driver_error("cuEventElapsedTime", e));
                let _ = (cu::event::destroy(start), cu::event::destroy(end));
                Some(ms? as f64 * 1e3)
            }
            None => None,
        })
    }
}

/// Keeps the exported functions in the binary (see `pool::keep`).
#[inline(never)]
pub fn keep() {
    std::hint::black_box([
        rjk_cuda_device as *const () as usize,
        rjk_cuda_error as *const () as usize,
        rjk_cuda_alloc as *const () as usize,
        rjk_cuda_free as *const () as usize,
        rjk_cuda_upload as *const () as usize,
        rjk_cuda_download as *const () as usize,
        rjk_cuda_launch as *const () as usize,
    ]);
}

/// The names `kernel/build.rs` exports.
pub const EXPORTS: [&str; 7] = ["rjk_cuda_device", "rjk_cuda_error", "rjk_cuda_alloc", "rjk_cuda_free", "rjk_cuda_upload", "rjk_cuda_download", "rjk_cuda_launch"];

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
        let first = build(&source, cell, &cache).unwrap();
        let Image::Ready { path, seconds: Some(_), .. } = &first else { panic!("{first:?}") };
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(bytes.last(), Some(&0), "NUL-terminated");
        assert!(first.report("add_ufunc").starts_with("cuda: NVRTC compiled add_ufunc for "));
        let again = build(&source, cell, &cache).unwrap();
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
        let error = build(&source, cell, &std::env::temp_dir()).unwrap_err();
        assert_eq!(error.ename, "CudaCompileError");
        assert!(error.evalue.starts_with("cell(3): error") && error.evalue.contains("undefined_name"), "{}", error.evalue);
        assert!(error.traceback.iter().any(|l| l == "    3 | let y = 3;"), "{:?}", error.traceback);
    }

    #[test]
    fn cuda_12_libraries_are_looked_for_too() {
        let names = cudarc::get_lib_name_candidates("nvrtc");
        for name in ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"] {
            assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
        }
        assert!(cudarc::get_lib_name_candidates("cuda").iter().any(|n| n == "libcuda.so.1"));
    }

    #[test]
    fn the_build_script_exports_every_cuda_function() {
        let build = include_str!("../build.rs");
        for name in EXPORTS {
            assert!(build.contains(&format!("\"{name}\"")), "kernel/build.rs does not export {name}");
        }
    }

    #[test]
    fn without_a_driver_the_user_process_says_why() {
        // SAFETY: only tries to load the library.
        if unsafe { sys::is_culib_present() } {
            eprintln!("skipped: this machine has libcuda (the GPU tests cover it)");
            return;
        }
        let mut buffer = [0u8; 512];
        assert_eq!(unsafe { rjk_cuda_device(buffer.as_mut_ptr(), buffer.len()) }, 0);
        let len = unsafe { rjk_cuda_error(buffer.as_mut_ptr(), buffer.len()) };
        let message = String::from_utf8_lossy(&buffer[..len]).into_owned();
        assert!(message.starts_with("CUDA is not available: libcuda.so") && message.ends_with(USE_CPU), "{message}");
        let mut ptr = 0;
        assert_eq!(unsafe { rjk_cuda_alloc(16, &mut ptr) }, 1);
    }
}
