//! The user process's half of the GPU path: one CUDA context, one stream, a stream-ordered
//! memory pool (plain allocations where the device has none) and the modules loaded so far,
//! behind the exported C functions `rjk_cuda_*` (listed in `exports.rs`) that the runtime
//! (`jit/runtime/src/cuda.rs`, the ABI's other side) finds with `dlsym`. Every cell is a shared
//! object of its own, so this state cannot live in a cell or a jit library.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr};
use std::sync::{Mutex, OnceLock};

use cudarc::driver::{result as cu, sys};

use super::nvrtc::{nvrtc_present, target, NO_NVRTC};
use super::USE_CPU;

/// Threads per block of every launch.
const BLOCK: u32 = 256;

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

static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();

/// Whether this process has a CUDA context (which `fork` cannot copy).
pub fn has_context() -> bool {
    matches!(GPU.get(), Some(Ok(_)))
}

/// The process's GPU, opened on first use, bound to the calling thread.
fn gpu() -> Result<&'static Gpu, String> {
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
        unsafe { launch(gpu()?, image, name, n, params) }
    })
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
unsafe fn launch(gpu: &Gpu, image: &[u8], name: &CStr, n: u64, params: &[u64]) -> Result<(), String> {
    let function = function(gpu, image, name)?;
    let mut values = params.to_vec();
    let mut pointers: Vec<*mut c_void> = values.iter_mut().map(|v| v as *mut u64 as *mut c_void).collect();
    let blocks = n.div_ceil(BLOCK as u64).clamp(1, gpu.multiprocessors as u64 * 32) as u32;
    // SAFETY: per the caller; `values` outlives the launch, which is waited for here.
    unsafe {
        cu::launch_kernel(function, (blocks, 1, 1), (BLOCK, 1, 1), 0, gpu.stream, &mut pointers).map_err(|e| driver_error("launching the kernel", e))?;
        cu::stream::synchronize(gpu.stream).map_err(|e| driver_error("running the kernel", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
